//! Wires a [`Config`] into a ready-to-serve router.

use crate::config::{Config, Store};
use crate::http::{AppState, Settings, router};
use crate::package::access::AccessRules;
use crate::registry::Registry;
use crate::storage::fs::FsStorage;
use crate::storage::s3::S3Storage;
use crate::storage::{Storage, StorageError};
use axum::Router;
use std::sync::Arc;

pub async fn build(config: &Config) -> Result<Router, StorageError> {
    let storage: Arc<dyn Storage> = match &config.store {
        Store::Filesystem => Arc::new(FsStorage::new(&config.storage)?),
        Store::S3(s3) => Arc::new(S3Storage::connect(s3).await),
    };
    let registry = Arc::new(Registry::new(
        storage,
        AccessRules::new(config.packages.clone()),
    ));
    let settings = Arc::new(Settings {
        public_url: config.public_url.clone(),
        url_prefix: config.url_prefix.clone(),
        max_body_size: config.max_body_size,
    });
    Ok(router(AppState { registry, settings }))
}
