//! Logging in and out through the page, and the browser's half of `npm login --auth-type=web`:
//! npm's login URL is our login page (or, already logged in, a page asking to approve), and
//! approving lets npm's next poll take a token. Passwords are checked by the same entry point,
//! with the same failed-login limits, as the API's login. Every form carries a CSRF token and
//! must come from our origin.

use super::chrome::{Chrome, csrf_token};
use super::cookies;
use super::csrf::{self, Binding};
use super::respond::{self, failure, see_other};
use super::viewer::Viewer;
use crate::auth::AuthError;
use crate::auth::sessions::SESSION_TTL;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::identity::ClientAddr;
use crate::registry::RegistryError;
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginParams {
    next: String,
    cli: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: String,
    cli: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DecisionForm {
    csrf: String,
    cli: String,
    decision: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogoutForm {
    csrf: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    chrome: &'a Chrome,
    csrf: &'a str,
    next: &'a str,
    cli: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "approve.html")]
struct ApprovePage<'a> {
    chrome: &'a Chrome,
    csrf: &'a str,
    cli: &'a str,
    user: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    chrome: &'a Chrome,
    heading: &'a str,
    message: &'a str,
}

fn message(chrome: &Chrome, status: StatusCode, heading: &str, message: &str) -> Response {
    respond::page(
        status,
        &Message {
            chrome,
            heading,
            message,
        },
    )
}

const EXPIRED: &str = "This login link has expired or was already used. Run npm login again.";

/// Where to go after login: a path of ours relative to the registry's root, never elsewhere.
fn safe_next(next: &str) -> &str {
    let ok = !next.starts_with(['/', '\\'])
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next
            .split(['/', '?', '#'])
            .next()
            .is_none_or(|first| !first.contains(':'));
    if ok { next } else { "" }
}

/// The login form, with a nonce cookie to bind its CSRF token to when the browser has none.
async fn login_page(
    state: &AppState,
    mut viewer: Viewer,
    form: &LoginForm,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let fresh_nonce = viewer
        .nonce
        .is_none()
        .then(|| URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>()));
    if let Some(n) = &fresh_nonce {
        viewer.nonce = Some(n.clone());
    }
    let token = csrf_token(state, &viewer).await.unwrap_or_default();
    let chrome = Chrome::new(state, &viewer, "").await;
    let page = LoginPage {
        chrome: &chrome,
        csrf: &token,
        next: safe_next(&form.next),
        cli: &form.cli,
        username: &form.username,
        error,
    };
    let mut res = respond::page(status, &page);
    if let Some(n) = fresh_nonce {
        let cookie = cookies::set(cookies::NONCE, &n, &viewer.cookie_scope(), None);
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

async fn approve_page(state: &AppState, viewer: &Viewer, chrome: &Chrome, cli: &str) -> Response {
    let token = csrf_token(state, viewer).await.unwrap_or_default();
    let page = ApprovePage {
        chrome,
        csrf: &token,
        cli,
        user: viewer.user().unwrap_or_default(),
    };
    respond::page(StatusCode::OK, &page)
}

/// `GET /-/ui/login[?next=][&cli=]`.
pub async fn form(State(state): State<AppState>, viewer: Viewer, Query(q): Query<LoginParams>) -> Response {
    let chrome = Chrome::new(&state, &viewer, "").await;
    if !q.cli.is_empty() {
        match state.web.logins.is_pending(&q.cli).await {
            Ok(true) => {}
            Ok(false) => return message(&chrome, StatusCode::GONE, "Link expired", EXPIRED),
            Err(e) => return failure(&chrome, e.into()),
        }
        if viewer.session.is_some() {
            return approve_page(&state, &viewer, &chrome, &q.cli).await;
        }
    } else if viewer.session.is_some() {
        return see_other(&format!("{}{}", viewer.root, safe_next(&q.next)));
    }
    let form = LoginForm {
        next: q.next,
        cli: q.cli,
        ..LoginForm::default()
    };
    login_page(&state, viewer, &form, StatusCode::OK, None).await
}

/// Whether a form post is one of our forms in this browser: our origin, and a token bound to
/// the browser's session or nonce cookie.
async fn form_allowed(state: &AppState, viewer: &Viewer, headers: &HeaderMap, token: &str) -> bool {
    if !csrf::same_origin(headers, &viewer.base) {
        return false;
    }
    let Ok(key) = state.web.sessions.signing_key().await else {
        return false;
    };
    let session = viewer.session.as_ref().map(|s| Binding::Session(&s.id));
    let nonce = viewer.nonce.as_deref().map(Binding::Nonce);
    [session, nonce]
        .into_iter()
        .flatten()
        .any(|b| csrf::verify(&key, &b, token))
}

fn stale_form(chrome: &Chrome) -> Response {
    respond::problem(
        chrome,
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form is out of date or was not sent from this registry's pages. Reload the page and try again.",
    )
}

/// `POST /-/ui/login`.
pub async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !form_allowed(&state, &viewer, &headers, &f.csrf).await {
        return stale_form(&Chrome::new(&state, &viewer, "").await);
    }
    let user = f.username.trim().to_owned();
    if user.is_empty() || f.password.is_empty() {
        let error = "Enter your user name and password.";
        return login_page(&state, viewer, &f, StatusCode::BAD_REQUEST, Some(error)).await;
    }
    match state.auth.check_password(&user, &f.password, addr).await {
        Ok(()) => {}
        Err(AuthError::BadCredentials) => {
            let error = "Incorrect user name or password.";
            return login_page(&state, viewer, &f, StatusCode::UNAUTHORIZED, Some(error)).await;
        }
        Err(e @ (AuthError::TooManyAttempts(_) | AuthError::AddressBlocked(_))) => {
            let error = e.to_string();
            return login_page(&state, viewer, &f, StatusCode::TOO_MANY_REQUESTS, Some(&error)).await;
        }
        Err(e) => {
            let api = ApiError::from(e);
            let chrome = Chrome::new(&state, &viewer, "").await;
            return respond::problem(&chrome, api.status, "Cannot log in", "Try again in a moment.");
        }
    }
    // A new session at every login: a session id planted before login is worth nothing.
    if let Some(old) = &viewer.session_cookie
        && let Err(e) = state.web.sessions.end(old).await
    {
        tracing::warn!(error = %e, "could not end the previous web session");
    }
    let (cookie, session) = match state.web.sessions.start(&user).await {
        Ok(s) => s,
        Err(e) => return failure(&Chrome::new(&state, &viewer, "").await, e.into()),
    };
    tracing::info!(user = %user, "logged in to the web UI");
    let set_cookie = cookies::set(
        cookies::SESSION,
        &cookie,
        &viewer.cookie_scope(),
        Some(SESSION_TTL.as_secs() as i64),
    );
    let root = viewer.root.clone();
    let viewer = Viewer {
        who: state.auth.identity(&user),
        session: Some(session),
        ..viewer
    };
    let mut res = if f.cli.is_empty() {
        see_other(&format!("{root}{}", safe_next(&f.next)))
    } else {
        let chrome = Chrome::new(&state, &viewer, "").await;
        decided(&state, &chrome, &f.cli, Some(&user)).await
    };
    res.headers_mut().append(header::SET_COOKIE, set_cookie);
    res
}

/// Records the browser's answer to a pending npm login and says what happens next.
async fn decided(state: &AppState, chrome: &Chrome, cli: &str, user: Option<&str>) -> Response {
    match state.web.logins.decide(cli, user).await {
        Ok(true) => match user {
            Some(u) => message(
                chrome,
                StatusCode::OK,
                "npm is logged in",
                &format!("npm on the command line is now logged in as {u}. You can close this tab."),
            ),
            None => message(
                chrome,
                StatusCode::OK,
                "Login refused",
                "npm on the command line was not logged in. You can close this tab.",
            ),
        },
        Ok(false) => message(chrome, StatusCode::GONE, "Link expired", EXPIRED),
        Err(e) => failure(chrome, RegistryError::from(e)),
    }
}

/// `POST /-/ui/approve`: approve or refuse a pending `npm login`.
pub async fn approve(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<DecisionForm>,
) -> Response {
    let chrome = Chrome::new(&state, &viewer, "").await;
    let Some(user) = viewer.user() else {
        let next: String = url::form_urlencoded::byte_serialize(f.cli.as_bytes()).collect();
        return see_other(&format!("{}-/ui/login?cli={next}", viewer.root));
    };
    if !form_allowed(&state, &viewer, &headers, &f.csrf).await {
        return stale_form(&chrome);
    }
    let user = (f.decision == "approve").then_some(user);
    decided(&state, &chrome, &f.cli, user).await
}

/// `POST /-/ui/logout`.
pub async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    if !form_allowed(&state, &viewer, &headers, &f.csrf).await {
        return stale_form(&Chrome::new(&state, &viewer, "").await);
    }
    if let Some(cookie) = &viewer.session_cookie
        && let Err(e) = state.web.sessions.end(cookie).await
    {
        return failure(&Chrome::new(&state, &viewer, "").await, e.into());
    }
    let mut res = see_other(&viewer.root);
    let clear = cookies::clear(cookies::SESSION, &viewer.cookie_scope());
    res.headers_mut().append(header::SET_COOKIE, clear);
    res
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_here() {
        assert_eq!(safe_next("-/ui/package/@s/p"), "-/ui/package/@s/p");
        assert_eq!(safe_next("?page=2"), "?page=2");
        assert_eq!(safe_next("-/ui/search?q=a:b"), "-/ui/search?q=a:b");
        for bad in [
            "//evil.example",
            "/x",
            "https://evil.example",
            "javascript:alert(1)",
            "\\\\evil",
            "a\nb",
        ] {
            assert_eq!(safe_next(bad), "", "{bad}");
        }
    }
}
