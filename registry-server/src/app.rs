//! Wires a [`Config`] into a ready-to-serve router: the application level, above the HTTP API
//! (`http`) and the web UI on top of it (`web`), where the state they share is put together.

use crate::auth::Auth;
use crate::auth::access::AccessRules;
use crate::auth::sessions::Sessions;
use crate::auth::web_login::WebLogins;
use crate::config::{Config, Store};
use crate::http::{Settings, router};
use crate::metrics::Metrics;
use crate::registry::{PackumentCache, Registry, RepairPolicy};
use crate::signing::Signer;
use crate::storage::blob_cache::BlobCache;
use crate::storage::fs::FsStorage;
use crate::storage::instrumented::Instrumented;
use crate::storage::s3::S3Storage;
use crate::storage::{Storage, StorageError};
use crate::uplink::Uplinks;
use crate::web::Web;
use axum::Router;
use std::sync::Arc;

/// What handlers need, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub auth: Arc<Auth>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub web: Arc<Web>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot set up uplinks: {0}")]
    Uplink(String),
    #[error("cannot set up signing: {0}")]
    Signing(#[from] crate::signing::SigningError),
}

/// The backend behind the in-memory tarball cache, unless that is switched off.
fn cached(storage: impl Storage, config: &Config, metrics: &Arc<Metrics>) -> Arc<dyn Storage> {
    let c = &config.tarball_cache;
    if c.max_size == 0 {
        Arc::new(storage)
    } else {
        Arc::new(BlobCache::new(storage, c.max_size, c.revalidate_after, metrics.clone()))
    }
}

pub async fn build(config: &Config) -> Result<Router, BuildError> {
    let metrics = Arc::new(Metrics::default());
    let storage: Arc<dyn Storage> = match &config.store {
        Store::Filesystem => cached(
            Instrumented::new(FsStorage::new(&config.storage)?, metrics.clone()),
            config,
            &metrics,
        ),
        Store::S3(s3) => cached(
            Instrumented::new(S3Storage::connect(s3).await, metrics.clone()),
            config,
            &metrics,
        ),
    };
    let auth = Arc::new(Auth::new(storage.clone(), config));
    auth.start();
    let cache = PackumentCache::new(config.packument_cache.max_size, config.packument_cache.revalidate_after);
    let rules = AccessRules::new(config.packages.clone());
    let signer = Signer::start(&config.signing, storage.clone()).await?;
    let mut registry = Registry::new(storage.clone(), rules, cache, metrics.clone())
        .with_search_revalidation(config.packument_cache.revalidate_after)
        .with_signer(signer);
    let web = Web::new(
        &config.web,
        Sessions::new(storage.clone()),
        WebLogins::new(storage.clone()),
    )
    .await;
    if !config.uplinks.is_empty() {
        let uplinks = Uplinks::new(&config.uplinks, storage, metrics.clone()).map_err(BuildError::Uplink)?;
        registry = registry.with_uplinks(Arc::new(uplinks));
    }
    let repair = RepairPolicy::new(config.repair.interval, config.repair.grace);
    let registry = Arc::new(registry.with_repair(repair));
    crate::registry::repair::start(registry.clone());
    let settings = Arc::new(Settings {
        public_url: config.public_url.clone(),
        url_prefix: config.url_prefix.clone(),
        max_body_size: config.max_body_size,
        trusted_proxies: config.trusted_proxies.clone(),
    });
    let state = AppState {
        registry,
        auth,
        settings,
        metrics,
        web: Arc::new(web),
    };
    let pages = crate::web::pages(&state);
    Ok(router(state, pages))
}
