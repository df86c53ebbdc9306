//! The verifier against an issuer served from this process (discovery and JWKS over HTTP), with
//! ES256 keys made here. The npm CLI's exchange, with RS256 as GitHub signs, is tested in
//! `tests/trusted_publishing.rs`.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

fn jwk(key: &SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    })
}

async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let keys = Arc::new(Mutex::new(Vec::new()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f, u) = (keys.clone(), fetches.clone(), url.clone());
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (k, f, u) = (k.clone(), f.clone(), u.clone());
        async move {
            match uri.path() {
                "/.well-known/openid-configuration" => {
                    axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks")}))
                }
                _ => {
                    f.fetch_add(1, Ordering::SeqCst);
                    let keys = k.lock().unwrap().clone();
                    axum::Json(json!({"keys": keys}))
                }
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer { url, keys, fetches }
}

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32].into()).unwrap()
}

fn token(key: &SigningKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let der = key.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(der.as_bytes())).unwrap()
}

const AUDIENCE: &str = "npm:registry.test";

fn claims(issuer: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "repo:acme/widgets:ref:refs/heads/main",
        "iat": now, "nbf": now, "exp": now + 300,
        "repository": "acme/widgets",
        "workflow_ref": "acme/widgets/.github/workflows/release.yml@refs/heads/main",
    })
}

fn publishers(issuer: &str) -> Vec<TrustedPublisher> {
    vec![TrustedPublisher {
        issuer: issuer.to_owned(),
        claims: BTreeMap::from([
            ("repository".into(), "acme/widgets".into()),
            (
                "workflow_ref".into(),
                "acme/widgets/.github/workflows/release.yml@*".into(),
            ),
        ]),
    }]
}

#[tokio::test]
async fn verifies_a_token_of_a_trusted_publisher() {
    let iss = issuer().await;
    let key = signing_key(1);
    iss.keys.lock().unwrap().push(jwk(&key, "k1"));
    let oidc = Oidc::default();
    let v = oidc
        .verify(
            &token(&key, "k1", claims(&iss.url)),
            "@acme/widgets",
            &publishers(&iss.url),
            AUDIENCE,
        )
        .await
        .unwrap();
    assert_eq!(v.claims["repository"], "acme/widgets");
    assert_eq!(v.publisher.issuer, iss.url);
    // The keys are cached: a second token costs no fetch.
    oidc.verify(
        &token(&key, "k1", claims(&iss.url)),
        "@acme/widgets",
        &publishers(&iss.url),
        AUDIENCE,
    )
    .await
    .unwrap();
    assert_eq!(iss.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refusals_say_why() {
    let iss = issuer().await;
    let key = signing_key(1);
    iss.keys.lock().unwrap().push(jwk(&key, "k1"));
    let oidc = Oidc::default();
    let ps = publishers(&iss.url);
    let check = |claims: Value, signer: SigningKey| {
        let t = token(&signer, "k1", claims);
        let (oidc, ps) = (&oidc, &ps);
        async move { oidc.verify(&t, "@acme/widgets", ps, AUDIENCE).await.unwrap_err() }
    };
    let now = chrono::Utc::now().timestamp();

    let mut c = claims(&iss.url);
    c["exp"] = json!(now + 10 * 365 * 24 * 3600);
    let e = check(c, signing_key(1)).await;
    assert!(e.to_string().contains("at most 3600 s"), "a 10-year token: {e}");

    let mut c = claims(&iss.url);
    c["repository"] = json!("evil/widgets");
    let e = check(c, signing_key(1)).await;
    assert!(matches!(e, OidcError::Claims { .. }), "{e}");
    assert!(e.to_string().contains("repository is \"evil/widgets\""), "{e}");

    let mut c = claims(&iss.url);
    c["aud"] = json!("npm:elsewhere.test");
    let e = check(c, signing_key(1)).await;
    assert!(e.to_string().contains("audience is \"npm:elsewhere.test\""), "{e}");

    let mut c = claims(&iss.url);
    c["exp"] = json!(now - 2 * LEEWAY as i64);
    let e = check(c, signing_key(1)).await;
    assert!(e.to_string().contains("expired"), "{e}");

    let mut c = claims(&iss.url);
    c["exp"] = json!(now - 10);
    assert!(
        oidc.verify(&token(&key, "k1", c), "@acme/widgets", &ps, AUDIENCE)
            .await
            .is_ok(),
        "within the leeway"
    );

    let mut c = claims(&iss.url);
    c["nbf"] = json!(now + 2 * LEEWAY as i64);
    let e = check(c, signing_key(1)).await;
    assert!(e.to_string().contains("not valid yet"), "{e}");

    let mut c = claims(&iss.url);
    c["iat"] = json!(now + 2 * LEEWAY as i64);
    let e = check(c, signing_key(1)).await;
    assert!(e.to_string().contains("issued in the future"), "{e}");

    let mut c = claims(&iss.url);
    c.as_object_mut().unwrap().remove("iat");
    let e = check(c, signing_key(1)).await;
    assert!(e.to_string().contains("no iat"), "{e}");

    let mut c = claims(&iss.url);
    c["iss"] = json!("https://other-issuer.test");
    let e = check(c, signing_key(1)).await;
    assert!(matches!(e, OidcError::UnknownIssuer { .. }), "{e}");

    let e = check(claims(&iss.url), signing_key(2)).await;
    assert!(e.to_string().contains("signature does not verify"), "{e}");

    let e = oidc
        .verify("not-a-jwt", "@acme/widgets", &ps, AUDIENCE)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::Malformed(_)), "{e}");
    let e = oidc
        .verify(&token(&key, "k1", claims(&iss.url)), "@acme/widgets", &[], AUDIENCE)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::NoTrustedPublisher(_)), "{e}");

    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&iss.url),
        &EncodingKey::from_secret(b"s"),
    )
    .unwrap();
    let e = oidc.verify(&hs, "@acme/widgets", &ps, AUDIENCE).await.unwrap_err();
    assert!(e.to_string().contains("not accepted"), "{e}");
}

#[tokio::test]
async fn a_new_key_id_is_fetched_again_within_a_bounded_rate() {
    let iss = issuer().await;
    let old = signing_key(1);
    iss.keys.lock().unwrap().push(jwk(&old, "k1"));
    let oidc = Oidc::default();
    let ps = publishers(&iss.url);
    oidc.verify(&token(&old, "k1", claims(&iss.url)), "p", &ps, AUDIENCE)
        .await
        .unwrap();
    // The issuer rotates: tokens name a kid we have not seen. Within MIN_REFETCH of the first
    // fetch, it is not asked again; a made-up kid can never make us ask more often than that.
    let new = signing_key(3);
    iss.keys.lock().unwrap().push(jwk(&new, "k2"));
    let e = oidc
        .verify(&token(&new, "k2", claims(&iss.url)), "p", &ps, AUDIENCE)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::UnknownKey { .. }), "{e}");
    assert_eq!(iss.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_issuer_fails_closed() {
    let oidc = Oidc::default();
    let issuer = format!("http://127.0.0.1:{}", crate::auth::oidc::tests::free_port());
    let e = oidc
        .verify(
            &token(&signing_key(1), "k1", claims(&issuer)),
            "p",
            &publishers(&issuer),
            AUDIENCE,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::Issuer { .. }), "{e}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
