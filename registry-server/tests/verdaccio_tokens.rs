//! Tokens the real Verdaccio 6 issued keep working on this server over the same storage and
//! htpasswd file: its legacy AES tokens (with the 32-character secret of current installs and the
//! 64-character one of old installs) and its JWTs, for whoami, install and publish with the real
//! npm CLI; a token stops counting once its user is gone or its password changed.

mod common;

use common::verdaccio::Verdaccio;
use common::*;
use std::path::Path;

fn rules() -> &'static str {
    "packages:\n  '@*/*':\n    access: $all\n    publish: $authenticated\n  '**':\n    access: $all\n    publish: $authenticated\n"
}

/// Verdaccio's config over `storage` and `htpasswd`, with `security` (YAML, may be empty).
fn verdaccio_config(storage: &Path, htpasswd: &Path, security: &str) -> String {
    format!(
        "storage: {}\nauth:\n  htpasswd:\n    file: {}\n{}middlewares:\n  audit:\n    enabled: false\n\
         log: {{type: stdout, format: pretty, level: warn}}\n{security}",
        storage.display(),
        htpasswd.display(),
        rules()
    )
}

/// Ours: the same htpasswd file and `security` section (storage comes from `--storage`).
fn our_config(htpasswd: &Path, security: &str) -> String {
    format!(
        "auth:\n  htpasswd:\n    file: {}\n{}{security}",
        htpasswd.display(),
        rules()
    )
}

/// Whoami, install of what Verdaccio stored and a new publish, with `token` against `server`.
fn token_works_for_everything(server: &Server, token: &str, user: &str, package: &str, w: &Path) {
    let npm = Client::with_token(&server.url(), token);
    assert_eq!(npm.npm_ok(w, &["whoami"]).trim(), user);
    let p = project(w, &format!("install-{user}"));
    npm.npm_ok(&p, &["install", package]);
    assert_eq!(npm.require(&p, package), format!("{package}@1.0.0"));
    let next = write_package(
        w,
        package,
        "1.1.0",
        &[],
        &format!("module.exports = '{package}@1.1.0';\n"),
    );
    npm.npm_ok(&next, &["publish"]);
    let view: serde_json::Value =
        serde_json::from_str(&npm.npm_ok(w, &["view", &format!("{package}@1.1.0"), "--json"])).unwrap();
    assert_eq!(
        view["_npmUser"].as_str().unwrap().split(' ').next(),
        Some(user),
        "{view}"
    );
}

fn whoami_refused(server: &Server, token: &str, w: &Path) -> String {
    let out = Client::with_token(&server.url(), token).npm(w, &["whoami"]);
    let printed = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && printed.contains("E401"), "{printed}");
    printed
}

/// Publishes `package@1.0.0` to Verdaccio with `token`.
fn publish_to(verdaccio: &Verdaccio, token: &str, package: &str, w: &Path) {
    let folder = write_package(
        w,
        package,
        "1.0.0",
        &[],
        &format!("module.exports = '{package}@1.0.0';\n"),
    );
    Client::with_token(&verdaccio.url, token).npm_ok(&folder, &["publish"]);
}

#[test]
fn legacy_tokens_keep_working_while_their_user_and_password_do() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (storage, htpasswd) = (w.join("storage"), w.join("htpasswd"));
    let verdaccio = Verdaccio::start(w, &verdaccio_config(&storage, &htpasswd, ""));
    let token = verdaccio.login("legacy-user", "legacy-pass");
    let gone = verdaccio.login("gone-user", "gone-pass");
    let moved = verdaccio.login("moved-user", "old-pass");
    publish_to(&verdaccio, &token, "from-legacy", w);
    drop(verdaccio);
    assert!(!token.contains('.'), "a legacy token, not a JWT: {token}");
    let secret = std::fs::read_to_string(storage.join(".verdaccio-db.json")).unwrap();
    assert!(secret.contains("\"secret\""), "{secret}");

    // One user leaves, another gets a new password (as `htpasswd -B` would write it).
    let lines: Vec<String> = std::fs::read_to_string(&htpasswd)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("gone-user:") && !l.starts_with("moved-user:"))
        .map(str::to_owned)
        .collect();
    let new_hash = bcrypt::hash("new-pass", 5).unwrap();
    std::fs::write(&htpasswd, format!("{}\nmoved-user:{new_hash}\n", lines.join("\n"))).unwrap();

    let server = Server::start(&our_config(&htpasswd, ""), &storage);
    token_works_for_everything(&server, &token, "legacy-user", "from-legacy", w);
    let printed = whoami_refused(&server, &gone, w);
    assert!(printed.contains("invalid, expired or revoked"), "{printed}");
    whoami_refused(&server, &moved, w);
    // The secret is Verdaccio's and stays where Verdaccio keeps it; it never reaches the log.
    let secret: serde_json::Value = serde_json::from_str(&secret).unwrap();
    let secret = secret["secret"].as_str().unwrap();
    assert!(!server.log().contains(secret), "the secret is in the log");
    assert!(!server.log().contains(&token), "a token is in the log");
}

#[test]
fn legacy_tokens_of_old_installs_with_a_long_secret() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (storage, htpasswd) = (w.join("storage"), w.join("htpasswd"));
    // An install from before Verdaccio 5.31: a 64-character secret, kept by a Verdaccio 6 told not
    // to migrate it (which node 20 still allows), so it signs with node's old aes192 cipher.
    let long_secret = "f".repeat(16) + &"0123456789abcdef".repeat(3);
    std::fs::create_dir_all(&storage).unwrap();
    std::fs::write(
        storage.join(".verdaccio-db.json"),
        serde_json::json!({"list": [], "secret": long_secret}).to_string(),
    )
    .unwrap();
    let keep = "security:\n  api:\n    legacy: true\n    migrateToSecureLegacySignature: false\n";
    let verdaccio = Verdaccio::start(w, &verdaccio_config(&storage, &htpasswd, keep));
    let token = verdaccio.login("old-user", "old-install-pass");
    publish_to(&verdaccio, &token, "from-old-install", w);
    drop(verdaccio);
    let db: serde_json::Value =
        serde_json::from_slice(&std::fs::read(storage.join(".verdaccio-db.json")).unwrap()).unwrap();
    assert_eq!(db["secret"], long_secret.as_str(), "Verdaccio kept the long secret");

    let server = Server::start(&our_config(&htpasswd, keep), &storage);
    token_works_for_everything(&server, &token, "old-user", "from-old-install", w);
}

#[test]
fn jwts_keep_working_when_the_api_signs_jwts() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (storage, htpasswd) = (w.join("storage"), w.join("htpasswd"));
    let security =
        "security:\n  api:\n    jwt:\n      sign:\n        expiresIn: 7d\n  web:\n    sign:\n      expiresIn: 1h\n";
    let verdaccio = Verdaccio::start(w, &verdaccio_config(&storage, &htpasswd, security));
    let token = verdaccio.login("jwt-user", "jwt-pass");
    let gone = verdaccio.login("jwt-gone", "jwt-gone-pass");
    publish_to(&verdaccio, &token, "from-jwt", w);
    drop(verdaccio);
    assert_eq!(token.matches('.').count(), 2, "a JWT: {token}");
    let kept: String = std::fs::read_to_string(&htpasswd)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("jwt-gone:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&htpasswd, kept).unwrap();

    let server = Server::start(&our_config(&htpasswd, security), &storage);
    token_works_for_everything(&server, &token, "jwt-user", "from-jwt", w);
    whoami_refused(&server, &gone, w);

    // As in Verdaccio, the config decides the kind: with legacy tokens configured, a JWT is no
    // token of this registry (and so anonymous).
    drop(server);
    let legacy = Server::start(&our_config(&htpasswd, ""), &storage);
    whoami_refused(&legacy, &token, w);
}
