//! Wires a [`Config`] into a ready-to-serve router.

use crate::auth::Auth;
use crate::config::Config;
use crate::http::{AppState, Settings, router};
use crate::package::access::AccessRules;
use crate::registry::Registry;
use crate::storage::StorageError;
use crate::storage::fs::FsStorage;
use axum::Router;
use std::sync::Arc;

pub fn build(config: &Config) -> Result<Router, StorageError> {
    let storage: Arc<dyn crate::storage::Storage> = Arc::new(FsStorage::new(&config.storage)?);
    let auth = Arc::new(Auth::new(storage.clone(), config));
    auth.start();
    let registry = Arc::new(Registry::new(storage, AccessRules::new(config.packages.clone())));
    let settings = Arc::new(Settings {
        public_url: config.public_url.clone(),
        url_prefix: config.url_prefix.clone(),
        max_body_size: config.max_body_size,
    });
    Ok(router(AppState {
        registry,
        auth,
        settings,
    }))
}
