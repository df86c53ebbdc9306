//! A local OIDC issuer shaped like GitHub Actions' for trusted publishing tests: discovery
//! (`/.well-known/openid-configuration`), a JWKS with one RSA key (made by the openssl CLI), and
//! the token URL a job's `ACTIONS_ID_TOKEN_REQUEST_URL` names (`GET ...&audience=npm:<host>`
//! with `Authorization: Bearer <request token>` → `{"value": <RS256 JWT>}`). What the tokens say
//! is set per test, to make each kind of bad token.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// What the job's token request needs (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
pub const REQUEST_TOKEN: &str = "job-request-token";
const KID: &str = "test-key-1";

/// The openssl CLI, which `e2e/test.sh` installs when the machine lacks it.
pub fn openssl() -> &'static str {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the openssl CLI is missing: run e2e/test.sh (it installs it) or `apt-get install -y openssl`"
    );
    "openssl"
}

fn run(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new(openssl()).args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key: PKCS#1 DER (what jsonwebtoken signs with) and its JWK.
pub struct RsaKey {
    pub der: Vec<u8>,
    pub jwk: Value,
}

impl RsaKey {
    pub fn generate(kid: &str) -> RsaKey {
        let dir = tempfile::tempdir().unwrap();
        run(&["genrsa", "-out", "k.pem", "2048"], dir.path());
        let der = run(&["rsa", "-in", "k.pem", "-traditional", "-outform", "DER"], dir.path());
        let modulus = String::from_utf8(run(&["rsa", "-in", "k.pem", "-noout", "-modulus"], dir.path())).unwrap();
        let n = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
        let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"});
        RsaKey { der, jwk }
    }

    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.to_owned());
        h.typ = Some("JWT".into());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_der(&self.der)).unwrap()
    }
}

/// How the issuer's tokens differ from a good one.
#[derive(Default, Clone)]
pub struct Tokens {
    /// Claims laid over the good ones (`null` removes one).
    pub overrides: serde_json::Map<String, Value>,
    /// Signed with another key under the published key's id.
    pub forged: bool,
}

struct State {
    url: String,
    key: RsaKey,
    other: RsaKey,
    tokens: Tokens,
    /// Audiences the token URL was asked for.
    asked: Vec<String>,
}

pub struct Issuer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Issuer {
    pub fn start() -> Issuer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            url: format!("http://127.0.0.1:{port}"),
            key: RsaKey::generate(KID),
            other: RsaKey::generate(KID),
            tokens: Tokens::default(),
            asked: Vec::new(),
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
                    let s = s.clone();
                    async move { handle(&s, &uri, &headers) }
                });
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Issuer {
            port,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The issuer URL (`iss`), as a trusted publisher names it.
    pub fn url(&self) -> String {
        self.state.lock().unwrap().url.clone()
    }

    /// What a job's `ACTIONS_ID_TOKEN_REQUEST_URL` is (npm appends `&audience=...`).
    pub fn request_url(&self) -> String {
        format!("{}/token?api-version=2.0", self.url())
    }

    pub fn set_tokens(&self, tokens: Tokens) {
        self.state.lock().unwrap().tokens = tokens;
    }

    /// A token for `audience` as the token URL would give it now.
    pub fn token(&self, audience: &str) -> String {
        let s = self.state.lock().unwrap();
        mint(&s, audience)
    }

    /// The audiences jobs asked tokens for.
    pub fn asked(&self) -> Vec<String> {
        self.state.lock().unwrap().asked.clone()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// GitHub's claims for a release workflow of `acme/widgets` (a private repository: npm turns
/// provenance on only for public ones, and provenance needs Sigstore, out of reach here).
pub fn github_claims(issuer: &str, audience: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "jti": format!("{:x}", rand::random::<u64>()),
        "iss": issuer, "aud": audience,
        "sub": "repo:acme/widgets:ref:refs/heads/main",
        "iat": now, "nbf": now - 5, "exp": now + 300,
        "repository": "acme/widgets", "repository_owner": "acme", "repository_visibility": "private",
        "ref": "refs/heads/main", "event_name": "push", "runner_environment": "github-hosted",
        "workflow_ref": "acme/widgets/.github/workflows/release.yml@refs/heads/main",
        "job_workflow_ref": "acme/widgets/.github/workflows/release.yml@refs/heads/main",
    })
}

fn mint(s: &State, audience: &str) -> String {
    let mut claims = github_claims(&s.url, audience);
    for (k, v) in &s.tokens.overrides {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    let key = if s.tokens.forged { &s.other } else { &s.key };
    key.sign(KID, &claims)
}

fn handle(state: &Mutex<State>, uri: &Uri, headers: &HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    match uri.path() {
        "/.well-known/openid-configuration" => axum::Json(json!({
            "issuer": s.url, "jwks_uri": format!("{}/.well-known/jwks", s.url),
            "response_types_supported": ["id_token"], "id_token_signing_alg_values_supported": ["RS256"],
        }))
        .into_response(),
        "/.well-known/jwks" => axum::Json(json!({"keys": [s.key.jwk]})).into_response(),
        "/token" => {
            let authorized = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {REQUEST_TOKEN}"));
            if !authorized {
                return (StatusCode::UNAUTHORIZED, "{\"message\":\"bad request token\"}").into_response();
            }
            let audience = uri
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|p| p.strip_prefix("audience="))
                .map(|a| percent_encoding::percent_decode_str(a).decode_utf8_lossy().into_owned())
                .unwrap_or_default();
            s.asked.push(audience.clone());
            axum::Json(json!({"value": mint(&s, &audience)})).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
