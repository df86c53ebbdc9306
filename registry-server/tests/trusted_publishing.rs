//! npm's OIDC trusted publishing with the real npm CLI in a GitHub-Actions-shaped environment
//! (`GITHUB_ACTIONS`, `ACTIONS_ID_TOKEN_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_TOKEN`) against a
//! local issuer (`common/oidc_issuer.rs`), with no token in `.npmrc`: it publishes; and each kind
//! of bad token is refused, with the reason npm prints (it falls back silently to `.npmrc` auth,
//! so the reason shows with `--loglevel=verbose`).

mod common;

use common::oidc_issuer::{Issuer, REQUEST_TOKEN, Tokens};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;

struct Setup {
    work: tempfile::TempDir,
    issuer: Issuer,
    server: Server,
}

/// npm's audience for a registry at 127.0.0.1 (its hostname, without the port).
const AUDIENCE: &str = "npm:127.0.0.1";

fn publishers_config(issuer: &Issuer) -> String {
    format!(
        "packages:
  '@acme/*':
    access: $all
    publish: $authenticated
    trusted_publishers:
      - issuer: {}
        claims: {{repository: acme/widgets, workflow_ref: 'acme/widgets/.github/workflows/release.yml@*'}}
  '@private/*':
    access: $authenticated
    publish: $authenticated
  '**': {{access: $all, publish: $authenticated}}
",
        issuer.url()
    )
}

fn setup() -> Setup {
    let issuer = Issuer::start();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start_public(&publishers_config(&issuer), &work.path().join("storage"));
    Setup { work, issuer, server }
}

impl Setup {
    fn package(&self, name: &str, version: &str) -> PathBuf {
        write_package(
            self.work.path(),
            name,
            version,
            &[],
            "module.exports = 'published by CI'",
        )
    }

    /// `npm publish --loglevel=verbose` as a GitHub Actions job with `id-token: write` would run it.
    fn ci_publish(&self, dir: &Path) -> Output {
        let client = Client::anonymous(&self.server.url());
        client
            .command("npm", dir)
            .args(["publish", "--loglevel=verbose"])
            .env("GITHUB_ACTIONS", "true")
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", self.issuer.request_url())
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
            .env_remove("NPM_ID_TOKEN")
            .env_remove("GITLAB_CI")
            .env_remove("CIRCLECI")
            .output()
            .unwrap()
    }

    fn packument(&self, name: &str) -> Res {
        http()
            .get(&format!("{}{}", self.server.url(), name.replace('/', "%2f")))
            .send()
            .unwrap()
    }

    /// A CI publish with tokens made as `tokens` says: refused, npm printing `reason`, nothing
    /// published, and the server's log saying why.
    fn refused(&self, tokens: Tokens, reason: &str) {
        self.issuer.set_tokens(tokens);
        let out = self.ci_publish(&self.package("@acme/widgets", "1.0.0"));
        let printed = printed(&out);
        assert!(!out.status.success(), "published with a bad token:\n{printed}");
        assert!(
            printed.contains("Failed token exchange request with body message:") && printed.contains(reason),
            "npm does not print {reason:?}:\n{printed}"
        );
        assert!(
            printed.contains("ENEEDAUTH"),
            "npm fell back to .npmrc, which has no token:\n{printed}"
        );
        assert_eq!(self.packument("@acme/widgets").status, 404, "nothing was published");
        let log = self.server.log();
        assert!(
            log.contains("OIDC token exchange refused") && log.contains(reason),
            "the log does not say why:\n{log}"
        );
        assert_eq!(self.issuer.asked(), [AUDIENCE], "npm asked for its audience");
    }
}

fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn with(claims: Value) -> Tokens {
    Tokens {
        overrides: claims.as_object().unwrap().clone(),
        forged: false,
    }
}

#[test]
fn a_github_actions_job_publishes_with_no_token_of_its_own() {
    let s = setup();
    let out = s.ci_publish(&s.package("@acme/widgets", "1.0.0"));
    let printed = printed(&out);
    assert!(out.status.success(), "npm publish failed:\n{printed}");
    assert!(printed.contains("Successfully retrieved and set token"), "{printed}");
    assert_eq!(s.issuer.asked(), [AUDIENCE]);

    let doc = s.packument("@acme/widgets").json();
    let user = &doc["versions"]["1.0.0"]["_npmUser"];
    assert_eq!(user["name"], "repo:acme/widgets:ref:refs/heads/main", "{user}");
    assert_eq!(user["trustedPublisher"]["issuer"], s.issuer.url().as_str());
    assert_eq!(
        user["trustedPublisher"]["claims"],
        json!({"repository": "acme/widgets", "workflow_ref": "acme/widgets/.github/workflows/release.yml@refs/heads/main"})
    );
    assert!(s.server.log().contains("OIDC token exchanged"), "{}", s.server.log());

    // It installs like any package.
    let client = Client::anonymous(&s.server.url());
    let app = project(s.work.path(), "app");
    client.npm_ok(&app, &["install", "@acme/widgets@1.0.0"]);
    assert_eq!(client.require(&app, "@acme/widgets"), "published by CI");

    // The next release of the same workflow publishes too (a new exchange, a new token).
    let out = s.ci_publish(&s.package("@acme/widgets", "1.1.0"));
    assert!(out.status.success(), "{}", self::printed(&out));
}

#[test]
fn a_token_of_another_repository_is_refused() {
    setup().refused(
        with(json!({"repository": "evil/widgets"})),
        "repository is \"evil/widgets\", expected \"acme/widgets\"",
    );
}

#[test]
fn a_token_for_another_audience_is_refused() {
    setup().refused(
        with(json!({"aud": "npm:registry.elsewhere.example"})),
        "its audience is \"npm:registry.elsewhere.example\", this registry's is \"npm:127.0.0.1\"",
    );
}

#[test]
fn an_expired_token_is_refused() {
    let now = chrono::Utc::now().timestamp();
    setup().refused(
        with(json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600})),
        "it expired",
    );
}

#[test]
fn a_token_of_an_unknown_issuer_is_refused() {
    setup().refused(
        with(json!({"iss": "http://127.0.0.1:9"})),
        "are not trusted to publish @acme/widgets",
    );
}

#[test]
fn a_token_with_a_bad_signature_is_refused() {
    setup().refused(
        Tokens {
            forged: true,
            ..Tokens::default()
        },
        "its signature does not verify",
    );
}

/// The exchange as npm makes it, from the test: the short-lived token.
fn exchange(s: &Setup, package: &str, id_token: &str) -> Res {
    http()
        .request(
            Method::POST,
            &format!(
                "{}-/npm/v1/oidc/token/exchange/package/{}",
                s.server.url(),
                package.replace('/', "%2f")
            ),
        )
        .header("authorization", &format!("Bearer {id_token}"))
        .send()
        .unwrap()
}

#[test]
fn an_exchanged_token_publishes_its_package_and_no_other() {
    let s = setup();
    let r = exchange(&s, "@acme/widgets", &s.issuer.token(AUDIENCE));
    assert_eq!(r.status, 201, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_owned();

    let client = Client::with_token(&s.server.url(), &token);
    let out = client.npm(&s.package("@acme/gadgets", "1.0.0"), &["publish"]);
    let printed = printed(&out);
    assert!(!out.status.success(), "published another package:\n{printed}");
    assert!(
        printed.contains("E403") && printed.contains("may only publish @acme/widgets"),
        "{printed}"
    );
    assert_eq!(s.packument("@acme/gadgets").status, 404);

    // Nor any other change: no dist-tag, not even on its own package.
    client.npm_ok(&s.package("@acme/widgets", "1.0.0"), &["publish"]);
    let out = client.npm(s.work.path(), &["dist-tag", "add", "@acme/widgets@1.0.0", "beta"]);
    assert!(!out.status.success(), "{}", self::printed(&out));
    assert!(self::printed(&out).contains("may only publish @acme/widgets"));

    // A package whose rule trusts no publisher gets no token at all.
    let r = exchange(&s, "plain-package", &s.issuer.token(AUDIENCE));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("has no trusted publishers")
    );
}

#[test]
fn a_raw_id_token_is_no_registry_token() {
    let s = setup();
    let id_token = s.issuer.token(AUDIENCE);
    let client = Client::with_token(&s.server.url(), &id_token);
    let out = client.npm(&s.package("@acme/widgets", "1.0.0"), &["publish"]);
    let printed = printed(&out);
    assert!(!out.status.success(), "an id-token published:\n{printed}");
    assert!(
        printed.contains("E401") && printed.contains("the token sent is invalid, expired or revoked"),
        "{printed}"
    );
    assert_eq!(s.packument("@acme/widgets").status, 404);
    let r = http()
        .get(&format!("{}-/whoami", s.server.url()))
        .header("authorization", &format!("Bearer {id_token}"))
        .send()
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    // Without a token at all, the exchange says what it wants.
    let r = http()
        .request(
            Method::POST,
            &format!("{}-/npm/v1/oidc/token/exchange/package/@acme%2fwidgets", s.server.url()),
        )
        .send()
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Authorization: Bearer"), "{}", r.text());
}

#[test]
fn visibility_follows_the_access_rules() {
    let s = setup();
    let client = http();
    let visibility = |name: &str, token: Option<&str>| {
        let mut req = client.get(&format!(
            "{}-/package/{}/visibility",
            s.server.url(),
            name.replace('/', "%2f")
        ));
        if let Some(t) = token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        req.send().unwrap()
    };
    let r = visibility("@acme/widgets", None);
    assert_eq!((r.status, r.json()), (200, json!({"public": true})));
    let user = login(&s.server.url(), "alice", "alice-password").unwrap();
    let r = visibility("@private/lib", Some(&user));
    assert_eq!((r.status, r.json()), (200, json!({"public": false})));
    assert_eq!(
        visibility("@private/lib", None).status,
        401,
        "anonymous callers may not read it"
    );
}

#[test]
fn trusted_publishers_without_public_url_refuse_to_start() {
    let issuer = Issuer::start();
    let printed = Server::refused(&publishers_config(&issuer));
    assert!(
        printed.contains("packages.'@acme/*'.trusted_publishers") && printed.contains("needs public_url"),
        "{printed}"
    );
}

#[test]
fn an_audience_named_by_the_host_header_is_refused() {
    let s = setup();
    let spoofed = "registry.elsewhere.example";
    let r = http()
        .request(
            Method::POST,
            &format!("{}-/npm/v1/oidc/token/exchange/package/@acme%2fwidgets", s.server.url()),
        )
        .header("host", spoofed)
        .header(
            "authorization",
            &format!("Bearer {}", s.issuer.token(&format!("npm:{spoofed}"))),
        )
        .send()
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    let message = r.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("its audience is \"npm:registry.elsewhere.example\", this registry's is \"npm:127.0.0.1\""),
        "{message}"
    );
}

#[test]
fn an_id_token_is_exchanged_once_and_a_long_lived_one_never() {
    let s = setup();
    let id_token = s.issuer.token(AUDIENCE);
    let r = exchange(&s, "@acme/widgets", &id_token);
    assert_eq!(r.status, 201, "{}", r.text());
    let replay = exchange(&s, "@acme/widgets", &id_token);
    assert_eq!(replay.status, 401, "{}", replay.text());
    assert!(replay.text().contains("exchanged already"), "{}", replay.text());
    // Another replica on the same storage remembers it too.
    let other = Server::start_public(&publishers_config(&s.issuer), &s.server.storage);
    let r = http()
        .request(
            Method::POST,
            &format!("{}-/npm/v1/oidc/token/exchange/package/@acme%2fwidgets", other.url()),
        )
        .header("authorization", &format!("Bearer {id_token}"))
        .send()
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("exchanged already"), "{}", r.text());
    // A fresh token of the same job still works.
    let r = exchange(&s, "@acme/widgets", &s.issuer.token(AUDIENCE));
    assert_eq!(r.status, 201, "{}", r.text());

    let now = chrono::Utc::now().timestamp();
    s.issuer.set_tokens(with(json!({"exp": now + 10 * 365 * 24 * 3600})));
    let r = exchange(&s, "@acme/widgets", &s.issuer.token(AUDIENCE));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("at most 3600 s are accepted"), "{}", r.text());
    s.issuer.set_tokens(with(json!({"jti": null})));
    let r = exchange(&s, "@acme/widgets", &s.issuer.token(AUDIENCE));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("no jti claim"), "{}", r.text());
}
