//! The web UI: HTML pages served by this binary (no Node.js, nothing fetched from elsewhere by
//! the browser) over the registry service, with the same access rules as the API. Pages live
//! under `/-/ui/` (a prefix no package name can take) and the home page at `/`; Verdaccio's URLs
//! redirect here. Rooms: [`viewer`] (who is looking: the session cookie), [`csrf`], [`cookies`],
//! [`pages`] (home, search, suggestions), [`package_page`] (with its cache), [`model`] (what a
//! page shows, pure), [`readme`] and [`highlight`] (markdown to sanitized HTML), [`login`]
//! (login, logout, approving `npm login --auth-type=web`), [`redirect`], [`assets`] (embedded
//! CSS, JS and icons, the logo), [`respond`] (headers every page carries, error pages).

mod assets;
mod chrome;
mod cookies;
mod csrf;
mod highlight;
mod login;
mod logo;
mod model;
mod package_page;
mod pages;
mod readme;
mod redirect;
mod respond;
mod viewer;

use crate::auth::sessions::Sessions;
use crate::auth::web_login::WebLogins;
use crate::config;
use crate::http::{AppState, Pages, Route};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// The web UI's state: its settings, the session and web-login stores, assets and caches.
pub struct Web {
    pub enabled: bool,
    title: String,
    pub sessions: Sessions,
    pub logins: WebLogins,
    assets: assets::Assets,
    pages: package_page::PageCache,
}

impl Web {
    /// Reads the logo (a file or URL, once: it is served from memory) and prepares the assets.
    pub async fn new(config: &config::Web, sessions: Sessions, logins: WebLogins) -> Web {
        let logo = match (&config.logo, config.enable) {
            (Some(source), true) => logo::load(source)
                .await
                .inspect_err(|e| tracing::warn!("web.logo not shown: {e}"))
                .ok(),
            _ => None,
        };
        if config.enable {
            // The grammars load in the background, so the first README does not wait for them.
            std::thread::spawn(highlight::warm);
        }
        Web {
            enabled: config.enable,
            title: config.title.clone(),
            sessions,
            logins,
            assets: assets::Assets::new(logo),
            pages: package_page::PageCache::new(config.cache_size),
        }
    }
}

/// What the UI adds to the HTTP router: its routes, and browsers opening a package's API URL sent
/// to its page.
pub fn pages(state: &AppState) -> Pages {
    let state = state.clone();
    Pages {
        routes: routes(&state.web),
        around_packages: Box::new(move |packages| {
            packages.layer(axum::middleware::from_fn_with_state(state, redirect::browser_to_page))
        }),
    }
}

/// The largest form body the UI reads. Forms are read without a share of
/// `server.maxBodyBytesInFlight` (see `serve`), so each is kept small here.
const FORM_LIMIT: usize = 16 * 1024;

/// The UI's routes; with the UI off, only the home page, which answers 404.
fn routes(web: &Web) -> Vec<Route> {
    if !web.enabled {
        return vec![("/", "web", get(respond::disabled))];
    }
    vec![
        ("/", "web", get(pages::home)),
        ("/-/ui/search", "web", get(pages::search)),
        ("/-/ui/suggest", "web", get(pages::suggest)),
        ("/-/ui/package/{*name}", "web", get(package_page::show)),
        (
            "/-/ui/login",
            "web",
            get(login::form)
                .post(login::submit)
                .layer(DefaultBodyLimit::max(FORM_LIMIT)),
        ),
        (
            "/-/ui/logout",
            "web",
            post(login::logout).layer(DefaultBodyLimit::max(FORM_LIMIT)),
        ),
        (
            "/-/ui/approve",
            "web",
            post(login::approve).layer(DefaultBodyLimit::max(FORM_LIMIT)),
        ),
        ("/-/ui/assets/{file}", "web_asset", get(assets::serve)),
        ("/-/web", "web", get(redirect::verdaccio_home)),
        ("/-/web/", "web", get(redirect::verdaccio_home)),
        ("/-/web/{*rest}", "web", get(redirect::verdaccio_web)),
        ("/-/static/{*rest}", "web", get(redirect::verdaccio_static)),
    ]
}

impl axum::extract::FromRef<AppState> for Arc<Web> {
    fn from_ref(state: &AppState) -> Self {
        state.web.clone()
    }
}
