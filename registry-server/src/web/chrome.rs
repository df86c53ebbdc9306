//! What every page's frame shows (`base.html`): title and logo, asset URLs, the search box, who
//! is logged in and the logout form's CSRF token.

use super::csrf;
use super::viewer::Viewer;
use crate::http::AppState;

pub struct Chrome {
    pub title: String,
    /// The registry's path; every link starts with it.
    pub root: String,
    pub logo: Option<String>,
    pub css: String,
    pub theme_js: String,
    pub app_js: String,
    pub favicon: String,
    pub user: Option<String>,
    /// For the logout form; empty when nobody is logged in.
    pub csrf: String,
    /// What the search box shows.
    pub query: String,
    /// The current page relative to `root`, to come back to after login.
    pub here: String,
}

impl Chrome {
    pub async fn new(state: &AppState, viewer: &Viewer, query: &str) -> Chrome {
        let web = &state.web;
        let url = |file: &str| format!("{}-/ui/assets/{file}", viewer.root);
        let csrf = match &viewer.session {
            Some(_) => csrf_token(state, viewer).await.unwrap_or_default(),
            None => String::new(),
        };
        Chrome {
            title: web.title.clone(),
            root: viewer.root.clone(),
            logo: web.assets.logo_file().map(url),
            css: url(web.assets.css_file()),
            theme_js: url(web.assets.theme_js_file()),
            app_js: url(web.assets.app_js_file()),
            favicon: url(web.assets.favicon_file()),
            user: viewer.user().map(str::to_owned),
            csrf,
            query: query.to_owned(),
            here: viewer.here.clone(),
        }
    }
}

/// A CSRF token for this browser's forms; `None` when it has nothing to bind one to yet, or the
/// signing key cannot be read.
pub async fn csrf_token(state: &AppState, viewer: &Viewer) -> Option<String> {
    let binding = viewer.binding()?;
    let key = state
        .web
        .sessions
        .signing_key()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot read the web signing key"))
        .ok()?;
    Some(csrf::token(&key, &binding))
}
