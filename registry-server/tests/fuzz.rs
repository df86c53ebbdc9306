//! Property tests (fuzzing on stable Rust, part of `cargo test`) over what clients and operators
//! send: package names, publish bodies and whole-document updates, and the config file. None may
//! panic; what is accepted must be safe (names make storage keys that stay in their folder) and
//! round-trip. `PROPTEST_CASES=20000 cargo test -p registry-server --test fuzz` runs longer.

use proptest::prelude::*;
use registry_server::config::Config;
use registry_server::package::{PackageName, deletion, publish, raw_manifests, search, update};
use registry_server::storage::StorageKey;
use serde_json::{Map, Value, json};

/// Object keys the parsers look at, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "name",
            "_id",
            "versions",
            "_attachments",
            "dist-tags",
            "dist",
            "data",
            "length",
            "integrity",
            "shasum",
            "version",
            "1.0.0",
            "p-1.0.0.tgz",
            "time",
            "_rev",
            "readme",
            "deprecated",
            "maintainers",
            "users",
            "latest",
            "tarball",
            "_deleting",
            "created",
            "modified",
            "keywords",
            "description",
            "license",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9._@/-]{0,8}",
    ]
}

/// Any JSON, with the strings the parsers care about more likely than chance would make them.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "1.0.0",
            "1.0.0+build.1",
            "2.0.0-rc.1",
            "latest",
            "p",
            "p-1.0.0.tgz",
            "../x.tgz",
            "aGVsbG8=",
            "sha512-AAAA",
            "sha1-AA",
            "1-abc",
            "2000-01-01T00:00:00.000Z",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[@a-zA-Z0-9._~!*'()/%\\\\-]{0,230}",
        "(@[a-z0-9-]{1,20}/)?[a-z0-9][a-z0-9._-]{0,60}",
    ]
}

fn valid_name() -> impl Strategy<Value = String> {
    "(@[a-z0-9][a-z0-9-]{0,15}/)?[a-z0-9][a-z0-9-]{0,30}"
}

fn version() -> impl Strategy<Value = String> {
    (
        0u32..50,
        0u32..50,
        0u32..50,
        prop::option::of("[a-z]{1,5}\\.[1-9][0-9]?"),
    )
        .prop_map(|(a, b, c, pre)| match pre {
            Some(p) => format!("{a}.{b}.{c}-{p}"),
            None => format!("{a}.{b}.{c}"),
        })
}

proptest! {
    // 2,000 cases each by default (a few seconds); failures print their minimal input and
    // nothing is written next to the sources.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn names_never_panic_and_accepted_names_stay_in_their_folder(name in names(), v in version()) {
        if let Ok(n) = PackageName::parse(&name) {
            prop_assert_eq!(n.as_str(), name.as_str());
            let _ = n.validate_new();
            let key = StorageKey::Packument { package: n.as_str() }.key().expect("a parsed name is a valid key");
            prop_assert!(key.as_str().split('/').all(|s| s != ".." && s != "." && !s.is_empty()));
            prop_assert!(key.as_str().starts_with(n.as_str()));
            match n.scope() {
                Some(scope) => prop_assert_eq!(format!("@{scope}/{}", n.unscoped()), name.clone()),
                None => prop_assert_eq!(n.unscoped(), name.as_str()),
            }
            let file = n.tarball_filename(&v);
            if PackageName::check_filename(&file).is_ok() {
                let tarball = StorageKey::Tarball { package: n.as_str(), file: &file }.key();
                prop_assert!(tarball.is_ok(), "{:?}", tarball);
            }
        }
    }

    #[test]
    fn publish_bodies_never_panic(name in valid_name(), body in json_value(), existing in prop::option::of(json_value())) {
        let n = PackageName::parse(&name).unwrap();
        let _ = publish::is_publish(&body);
        if let Ok(p) = publish::parse(&n, &body) {
            let _ = publish::merge(&n, existing.clone(), &p, "http://h/", chrono::Utc::now(), Some(publish::Publisher { name: "u", email: None, trusted: None }));
        }
        if let Some(stored) = &existing {
            let _ = update::apply(stored, &body, chrono::Utc::now());
            let _ = update::check_revision(stored, body.get("_rev").and_then(Value::as_str));
            let _ = deletion::tombstone(&n, stored, chrono::Utc::now());
            let _ = deletion::blocked(&n, stored);
            let mut d = stored.clone();
            let _ = deletion::mark(&n, &mut d, &["p-1.0.0.tgz".to_owned()], chrono::Utc::now());
            deletion::unmark(&mut d, &["p-1.0.0.tgz".to_owned()]);
            let _ = search::Entry::from_doc(&name, stored, search::latest_manifest(stored));
        }
    }

    #[test]
    fn damaged_publish_bodies_are_refused_not_panicked_on(
        name in valid_name(), v in version(), tarball in prop::collection::vec(any::<u8>(), 0..64),
        path in prop::sample::select(vec!["/versions", "/_attachments", "/dist-tags", "/name"]), junk in json_value(),
    ) {
        let n = PackageName::parse(&name).unwrap();
        let mut body = publish::request_body(&name, &v, &tarball);
        let file = format!("{}-{v}.tgz", n.unscoped());
        // The attachment's key as npm writes it for a scoped package is its full name.
        if let Some(att) = body["_attachments"].as_object_mut() {
            let entry = att.remove(&format!("{name}-{v}.tgz")).unwrap();
            att.insert(file.clone(), entry);
        }
        let parsed = publish::parse(&n, &body).expect("a body npm would send");
        prop_assert_eq!(&parsed.versions[0].tarball, &tarball);
        prop_assert_eq!(&parsed.versions[0].filename, &file);
        *body.pointer_mut(path).unwrap() = junk;
        let _ = publish::parse(&n, &body);
    }

    #[test]
    fn accepted_publishes_write_what_a_shallow_read_writes_back(name in valid_name(), versions in prop::collection::btree_set(version(), 1..4)) {
        let n = PackageName::parse(&name).unwrap();
        let mut doc: Option<Value> = None;
        for v in &versions {
            let p = publish::parse(&n, &publish::request_body(&name, v, v.as_bytes())).unwrap();
            doc = Some(publish::merge(&n, doc, &p, "http://h/", chrono::Utc::now(), None).unwrap());
        }
        let doc = doc.unwrap();
        prop_assert_eq!(doc["versions"].as_object().unwrap().len(), versions.len());
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        let (shallow_doc, stored) = raw_manifests::parse(&bytes).unwrap();
        prop_assert_eq!(stored.to_vec_pretty(&shallow_doc), bytes);
    }

    #[test]
    fn the_config_parser_never_panics(
        entries in prop::collection::vec((config_key(), yaml_value()), 0..6),
        text in any::<String>(),
    ) {
        let _ = Config::parse(&text, std::path::Path::new("/etc/reg"));
        let map: serde_yaml::Mapping = entries.into_iter().map(|(k, v)| (serde_yaml::Value::String(k), v)).collect();
        let yaml = serde_yaml::to_string(&serde_yaml::Value::Mapping(map)).unwrap();
        let _ = Config::parse(&yaml, std::path::Path::new("/etc/reg"));
    }
}

fn config_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "storage",
        "listen",
        "public_url",
        "url_prefix",
        "max_body_size",
        "packages",
        "uplinks",
        "auth",
        "groups",
        "web",
        "log",
        "logs",
        "store",
        "packument_cache",
        "tarball_cache",
        "server",
        "repair",
        "plugins",
        "middlewares",
    ])
    .prop_map(str::to_owned)
}

/// YAML values shaped like config sections: maps of the keys sections use, lists, scalars.
fn yaml_value() -> impl Strategy<Value = serde_yaml::Value> {
    use serde_yaml::Value as Y;
    let leaf = prop_oneof![
        Just(Y::Null),
        any::<bool>().prop_map(Y::Bool),
        any::<i64>().prop_map(|n| Y::Number(n.into())),
        prop::sample::select(vec![
            "10mb",
            "-1",
            "0",
            "30s",
            "2m",
            "forever",
            "http://x",
            "ftp://x",
            "unix:/tmp/s",
            "4873",
            "[::1]:4873",
            "$all",
            "$authenticated",
            "loopback",
            "10.0.0.0/8",
            "true",
            "bearer",
            "NPM_TOKEN",
            "aws-s3-storage",
        ])
        .prop_map(|s| Y::String(s.to_owned())),
        any::<String>().prop_map(Y::String),
    ];
    let section_key = prop::sample::select(vec![
        "url",
        "timeout",
        "maxage",
        "max_fails",
        "auth",
        "type",
        "token",
        "token_env",
        "access",
        "publish",
        "proxy",
        "quarantine",
        "block",
        "htpasswd",
        "file",
        "max_users",
        "max_size",
        "revalidate_after",
        "trustProxy",
        "keepAliveTimeout",
        "headersTimeout",
        "bodyTimeout",
        "maxConnections",
        "maxBodyBytesInFlight",
        "interval",
        "grace",
        "aws-s3-storage",
        "bucket",
        "keyPrefix",
        "endpoint",
        "format",
        "level",
        "**",
        "@*/*",
    ]);
    leaf.prop_recursive(3, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Y::Sequence),
            prop::collection::vec((section_key.clone(), inner), 0..5)
                .prop_map(|kv| Y::Mapping(kv.into_iter().map(|(k, v)| (Y::String(k.to_owned()), v)).collect())),
        ]
    })
}
