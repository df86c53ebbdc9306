//! `GET /-/ui/package/<name>`: a package's page. The packument comes from the registry's read
//! path (its access check, its in-memory prepared bytes, uplinks included); what the page shows
//! is read out of it once per packument revision and its README rendered once per content,
//! both kept in a cache bounded by `web.cache_size`. A request then costs the read path's cache
//! hit plus rendering the template.

use super::chrome::Chrome;
use super::model::{self, PackageModel};
use super::readme;
use super::respond::{self, failure};
use super::viewer::Viewer;
use crate::auth::Identity;
use crate::cpu_pool;
use crate::flight::Flights;
use crate::http::AppState;
use crate::http::path::split_name;
use crate::package::PackageName;
use crate::package::packument::client_view;
use crate::registry::{Kind, Prepared, Registry, RegistryError, StorageError};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A package's page content at one packument revision and base URL.
pub struct Built {
    /// The prepared packument's ETag: its revision and base URL.
    etag: String,
    model: PackageModel,
    readme: Arc<str>,
    tarball_size: Option<u64>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Page(String),
    Readme([u8; 32]),
}

#[derive(Clone)]
enum Item {
    Page(Arc<Built>),
    Readme(Arc<str>),
}

/// Roughly what an item holds, for the cache's bound.
fn weight(item: &Item) -> u32 {
    let bytes = match item {
        Item::Readme(html) => html.len() + 64,
        Item::Page(b) => {
            let m = &b.model;
            let versions: usize = m.versions.iter().map(|v| 96 + v.version.len()).sum();
            let deps: usize = m
                .dependencies
                .iter()
                .flat_map(|g| &g.dependencies)
                .map(|(n, r)| 64 + n.len() + r.len())
                .sum();
            1024 + versions + deps + m.description.as_ref().map_or(0, String::len)
        }
    };
    bytes.try_into().unwrap_or(u32::MAX)
}

pub struct PageCache {
    entries: Cache<Key, Item>,
    /// READMEs being rendered: concurrent views of one uncached page render it once.
    renders: Flights<Result<Arc<str>, String>>,
}

fn readme_key(name: &PackageName, markdown: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(name.as_str().as_bytes());
    h.update([0]);
    h.update(markdown.as_bytes());
    h.finalize().into()
}

fn render_failed(e: String) -> RegistryError {
    StorageError::Unavailable(format!("README rendering failed: {e}")).into()
}

fn blocking_failed(e: tokio::task::JoinError) -> RegistryError {
    StorageError::Unavailable(format!("page preparation failed: {e}")).into()
}

impl PageCache {
    pub fn new(max_bytes: u64) -> Self {
        PageCache {
            entries: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, item: &Item| weight(item))
                .build(),
            renders: Flights::default(),
        }
    }

    /// The README as HTML: from the cache, else rendered once however many ask at the same
    /// time, on the CPU pool (its cost is bounded in `readme`), detached from shutdown.
    async fn readme(&self, name: &PackageName, markdown: String) -> Result<Arc<str>, RegistryError> {
        let hash = readme_key(name, &markdown);
        let key = Key::Readme(hash);
        if let Some(Item::Readme(html)) = self.entries.get(&key) {
            return Ok(html);
        }
        let flight = hex::encode(hash);
        self.renders
            .run(&flight, || async move {
                if let Some(Item::Readme(html)) = self.entries.get(&key) {
                    return Ok(html);
                }
                let (bytes, started) = (markdown.len(), std::time::Instant::now());
                let html: Arc<str> = cpu_pool::detached(move || readme::render(&markdown)).await?.into();
                tracing::debug!(package = %name, bytes, html = html.len(), took_ms = started.elapsed().as_millis() as u64, "README rendered");
                self.entries.insert(key.clone(), Item::Readme(html.clone()));
                Ok(html)
            })
            .await
            .map_err(render_failed)
    }

    async fn page(
        &self,
        registry: &Registry,
        name: &PackageName,
        who: &Identity,
        prepared: Prepared,
        base: &str,
    ) -> Result<Arc<Built>, RegistryError> {
        let key = Key::Page(name.to_string());
        let etag = prepared.etag(Kind::Full).to_owned();
        if let Some(Item::Page(b)) = self.entries.get(&key)
            && b.etag == etag
        {
            return Ok(b);
        }
        // Once per revision: the page's model is read out of the document as clients see it.
        let stored = registry.merged(name, who).await?;
        let (n, base) = (name.clone(), base.to_owned());
        let (model, markdown) = tokio::task::spawn_blocking(move || {
            let doc = client_view(&stored, &n, &base);
            (
                PackageModel::from_packument(&doc),
                model::readme_source(&doc).to_owned(),
            )
        })
        .await
        .map_err(blocking_failed)?;
        let readme = self.readme(name, markdown).await?;
        let tarball_size = match &model.tarball_file {
            Some(file) => registry.local_tarball_size(name, file, who).await?,
            None => None,
        };
        let built = Arc::new(Built {
            etag,
            model,
            readme,
            tarball_size,
        });
        self.entries.insert(key, Item::Page(built.clone()));
        Ok(built)
    }
}

pub struct Install {
    pub tool: &'static str,
    pub line: String,
}

#[derive(Template)]
#[template(path = "package.html")]
struct PackagePage<'a> {
    chrome: &'a Chrome,
    m: &'a PackageModel,
    readme: &'a str,
    installs: Vec<Install>,
    dependents: Vec<String>,
    published: Option<String>,
    unpacked_size: Option<String>,
    tarball_size: Option<String>,
    dependency_count: usize,
}

fn installs(name: &str) -> Vec<Install> {
    [
        ("npm", "npm install"),
        ("pnpm", "pnpm add"),
        ("yarn", "yarn add"),
        ("bun", "bun add"),
    ]
    .into_iter()
    .map(|(tool, command)| Install {
        tool,
        line: format!("{command} {name}"),
    })
    .collect()
}

/// The package a `/-/ui/package/...` path names: the name and nothing after it.
fn package_name(raw: &str) -> Option<PackageName> {
    match split_name(raw) {
        Ok((name, rest)) if rest.is_empty() => Some(name),
        _ => None,
    }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    chrome: &Chrome,
    name: &PackageName,
) -> Result<Response, RegistryError> {
    let prepared = state.registry.prepared(name, &viewer.who, &viewer.base).await?;
    let built = state
        .web
        .pages
        .page(&state.registry, name, &viewer.who, prepared, &viewer.base)
        .await?;
    let dependents = state.registry.dependents(name, &viewer.who).await?;
    let m = &built.model;
    let published = m
        .published
        .as_deref()
        .map(|p| format!("{} ({})", model::day(p), model::ago(p, chrono::Utc::now())));
    let page = PackagePage {
        chrome,
        m,
        readme: &built.readme,
        installs: installs(&m.name),
        dependents,
        published,
        unpacked_size: m.unpacked_size.map(model::size),
        tarball_size: built.tarball_size.map(model::size),
        dependency_count: m.dependencies.iter().map(|g| g.dependencies.len()).sum(),
    };
    Ok(respond::page(StatusCode::OK, &page))
}

pub async fn show(State(state): State<AppState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let chrome = Chrome::new(&state, &viewer, "").await;
    let Some(name) = package_name(&raw) else {
        return respond::problem(
            &chrome,
            StatusCode::NOT_FOUND,
            "Not found",
            "This is not a package name.",
        );
    };
    render(&state, &viewer, &chrome, &name)
        .await
        .unwrap_or_else(|e| failure(&chrome, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::access::AccessRules;
    use crate::config::Config;
    use crate::metrics::Metrics;
    use crate::package::publish::request_body;
    use crate::registry::PackumentCache;
    use crate::storage::memory::MemoryStorage;
    use std::time::Duration;

    #[tokio::test]
    async fn a_page_is_read_once_per_revision_and_a_readme_rendered_once_per_content() {
        let rules = Config::parse(
            "packages:\n  '**': {access: $all, publish: $all}\n",
            std::path::Path::new("."),
        )
        .unwrap()
        .config
        .packages;
        let registry = Registry::new(
            Arc::new(MemoryStorage::default()),
            AccessRules::new(rules),
            PackumentCache::new(1 << 20, Duration::from_secs(60)),
            Arc::new(Metrics::default()),
        );
        let (name, who, base) = (PackageName::parse("p").unwrap(), Identity::anonymous(), "http://h/");
        let publish = |version: &str| {
            let mut body = request_body("p", version, b"tarball bytes");
            body["readme"] = serde_json::json!("# Hello\n");
            body
        };
        registry
            .publish(&name, &publish("1.0.0"), &who, None, base)
            .await
            .unwrap();
        let cache = PageCache::new(1 << 20);
        let page = || async {
            let prepared = registry.prepared(&name, &who, base).await.unwrap();
            cache.page(&registry, &name, &who, prepared, base).await.unwrap()
        };
        let first = page().await;
        assert!(first.readme.contains("<h1>Hello</h1>"), "{}", first.readme);
        assert_eq!(first.tarball_size, Some(13));
        assert!(Arc::ptr_eq(&first, &page().await), "the same revision: the same page");
        registry
            .publish(&name, &publish("1.0.1"), &who, None, base)
            .await
            .unwrap();
        let second = page().await;
        assert_eq!(second.model.version.as_deref(), Some("1.0.1"));
        assert!(
            Arc::ptr_eq(&first.readme, &second.readme),
            "the same README is not rendered again"
        );
    }

    #[test]
    fn names_from_paths() {
        assert_eq!(package_name("@s/p").unwrap().as_str(), "@s/p");
        assert_eq!(package_name("lodash").unwrap().as_str(), "lodash");
        assert!(package_name("lodash/1.0.0").is_none());
        assert!(package_name("").is_none());
        assert!(package_name("../x").is_none());
    }
}
