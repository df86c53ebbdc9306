//! Tests of the whole parse, one or more per key, in the file's terms (long because the keys are
//! many; each test is short and stands alone).

use super::*;

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    Config::parse(text, Path::new("/etc/reg"))
}

#[test]
fn embedded_default_is_valid_and_loopback() {
    let loaded = Config::load(None).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.listen.to_string(), "127.0.0.1:4873");
    assert_eq!(loaded.config.storage, Path::new("./storage"));
    assert_eq!(loaded.config.packages.len(), 2);
    assert_eq!(
        loaded.config.max_body_size,
        defaults::MAX_BODY_SIZE,
        "one home for the default"
    );
}

#[test]
fn reads_a_verdaccio_config() {
    let text = r#"
storage: ./storage
plugins: ./plugins
web:
  title: Verdaccio
  logo: x.png
auth:
  htpasswd:
    file: ./htpasswd
    max_users: -1
uplinks:
  npmjs:
    url: https://upstream.example.com
    maxage: 10m
    timeout: 60
packages:
  '@internal/*':
    access: staff
    publish: alice bob
  '@*/*':
    access: $all
    publish: $authenticated
    proxy: npmjs
  '**':
    access: [$all]
    publish: [$authenticated]
    unpublish: []
    proxy: npmjs
server:
  keepAliveTimeout: 60
middlewares:
  audit:
    enabled: true
logs: { type: stdout, format: pretty, level: http }
max_body_size: 100mb
listen: 0.0.0.0:4873
"#;
    let loaded = parse(text).unwrap();
    let c = &loaded.config;
    assert_eq!(c.storage, Path::new("/etc/reg/storage"), "no `.` left in paths");
    assert_eq!(c.max_body_size, 100 * 1024 * 1024);
    assert_eq!(c.max_users, Some(0));
    assert_eq!(c.htpasswd.as_ref().unwrap().file, Path::new("/etc/reg/htpasswd"));
    let up = &c.uplinks["npmjs"];
    assert_eq!(up.url, "https://upstream.example.com/");
    assert_eq!(up.maxage, Duration::from_secs(600));
    assert_eq!(up.timeout, Duration::from_secs(60));
    let patterns: Vec<_> = c.packages.iter().map(|r| r.pattern.as_str()).collect();
    assert_eq!(patterns, ["@internal/*", "@*/*", "**"]);
    assert_eq!(c.packages[0].publish, ["alice", "bob"]);
    assert_eq!(
        c.packages[0].unpublish,
        ["alice", "bob"],
        "unpublish falls back to publish"
    );
    assert!(c.packages[2].unpublish.is_empty());
    assert_eq!(c.packages[1].proxy, ["npmjs"]);
    let w = loaded.warnings.join("\n");
    assert!(w.contains("`plugins`"), "{w}");
    assert!(!w.contains("`server`"), "server.keepAliveTimeout is used: {w}");
    assert_eq!(c.connections.keep_alive_timeout, Duration::from_secs(60));
    assert!(w.contains("`middlewares`"), "{w}");
    assert_eq!(c.web.title, "Verdaccio");
    assert_eq!(c.web.logo, Some(Logo::File("/etc/reg/x.png".into())));
    assert!(c.web.enable);
}

#[test]
fn web_settings() {
    let c = parse("web:\n  enable: false\n  logo: https://cdn.example.com/logo.svg\n  cache_size: 1mb\n  primary_color: '#4b5e40'\n")
        .unwrap();
    assert!(
        c.warnings.is_empty(),
        "Verdaccio's other UI keys are accepted: {:?}",
        c.warnings
    );
    let w = &c.config.web;
    assert!(!w.enable);
    assert_eq!(w.title, "npm registry");
    assert_eq!(w.logo, Some(Logo::Url("https://cdn.example.com/logo.svg".into())));
    assert_eq!(w.cache_size, 1024 * 1024);
    let w = parse("storage: x\n").unwrap().config.web;
    assert!(w.enable && w.logo.is_none());
    assert_eq!(w.cache_size, registry_config::defaults::WEB_CACHE_SIZE);
    for bad in ["web: {cache_size: lots}", "web: {logo: 'https://'}"] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains("web."), "{bad}: {e}");
    }
}

#[test]
fn unknown_keys_warn_with_their_path() {
    let loaded =
        parse("listen: 4873\nfrobnicate: 1\nuplinks:\n  a:\n    url: http://x.example\n    colour: red\n").unwrap();
    let w = loaded.warnings.join("\n");
    assert!(w.contains("`frobnicate`"), "{w}");
    assert!(w.contains("`uplinks.a.colour`"), "{w}");
}

#[test]
fn invalid_values_name_the_key() {
    let cases = [
        ("max_body_size: lots", "max_body_size"),
        ("listen: unix:/tmp/x", "listen"),
        ("uplinks:\n  a:\n    timeout: 3s\n", "uplinks.a.url"),
        ("uplinks:\n  a:\n    url: ftp://x\n", "uplinks.a.url"),
        (
            "uplinks:\n  a:\n    url: http://x\n    maxage: forever\n",
            "uplinks.a.maxage",
        ),
        ("packages:\n  '**':\n    proxy: nowhere\n", "packages.'**'.proxy"),
        ("packages:\n  'a[':\n    access: $all\n", "packages.'a['"),
        ("log: {format: xml}", "log.format"),
        ("public_url: not a url", "public_url"),
        (
            "uplinks:\n  a:\n    url: http://x\n    auth: {type: bearer, token: secret}\n",
            "uplinks.a.auth.token",
        ),
        ("auth:\n  htpasswd:\n    max_users: 3\n", "auth.htpasswd.file"),
        ("packument_cache: {max_size: [1]}", "packument_cache.max_size"),
        ("tarball_cache: {max_size: huge}", "tarball_cache.max_size"),
        (
            "tarball_cache: {revalidate_after: soon}",
            "tarball_cache.revalidate_after",
        ),
        (
            "packages:\n  '**':\n    block: ['lib@not a range']\n",
            "packages.'**'.block",
        ),
        ("packages:\n  '**':\n    block: ['']\n", "packages.'**'.block"),
    ];
    for (text, key) in cases {
        match parse(text) {
            Err(ConfigError::Invalid { key: k, reason }) => {
                assert_eq!(k, key, "for {text:?}: {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    assert!(matches!(parse("listen: [unclosed"), Err(ConfigError::Yaml(_))));
}

#[test]
fn caches_have_defaults_and_can_be_sized_or_switched_off() {
    let c = parse("").unwrap().config;
    assert_eq!(c.packument_cache.max_size, 128 * 1024 * 1024);
    assert_eq!(c.tarball_cache.max_size, 64 * 1024 * 1024);
    assert_eq!(c.tarball_cache.revalidate_after, Duration::from_secs(1));
    let c = parse("tarball_cache: {max_size: 0, revalidate_after: 5s}\npackument_cache: {max_size: 1gb}")
        .unwrap()
        .config;
    assert_eq!(c.tarball_cache.max_size, 0);
    assert_eq!(c.tarball_cache.revalidate_after, Duration::from_secs(5));
    assert_eq!(c.packument_cache.max_size, 1024 * 1024 * 1024);
}

#[test]
fn url_prefix_and_public_url() {
    let c = parse("url_prefix: /npm").unwrap().config;
    assert_eq!(c.url_prefix, "/npm/");
    assert_eq!(c.public_url, None);
    let c = parse("public_url: https://npm.example.com/base").unwrap().config;
    assert_eq!(c.public_url.as_deref(), Some("https://npm.example.com/base/"));
    let c = parse("url_prefix: https://old.example.com/").unwrap().config;
    assert_eq!(c.public_url.as_deref(), Some("https://old.example.com/"));
}

#[test]
fn globs_follow_verdaccio_semantics() {
    let c = parse("packages:\n  '@*/*': {access: $all}\n  'private-*': {access: $all}\n  '**': {access: $all}\n")
        .unwrap()
        .config;
    let m = |i: usize, n: &str| c.packages[i].matcher.is_match(n);
    assert!(m(0, "@scope/pkg"));
    assert!(!m(0, "pkg"));
    assert!(m(1, "private-thing"));
    assert!(!m(1, "@a/private-thing"));
    assert!(m(2, "@a/b"));
    assert!(m(2, "lodash"));
}

#[test]
fn filesystem_is_the_default_store() {
    assert_eq!(parse("listen: 4873").unwrap().config.store, Store::Filesystem);
}

#[test]
fn reads_verdaccio_s3_plugin_keys() {
    let text = r#"
storage: ./storage
store:
  aws-s3-storage:
    bucket: npm-bucket
    keyPrefix: registry
    region: eu-west-1
    endpoint: http://127.0.0.1:9000
    s3ForcePathStyle: true
    tarballACL: private
    sseKmsKeyId: arn:aws:kms:eu-west-1:111122223333:key/abc
    tarballRedirect: 2m
    requestTimeout: 5s
    maxAttempts: 2
    colour: red
"#;
    let loaded = parse(text).unwrap();
    let Store::S3(s3) = &loaded.config.store else {
        panic!("{:?}", loaded.config.store)
    };
    assert_eq!(s3.bucket, "npm-bucket");
    assert_eq!(s3.key_prefix, "registry/", "Verdaccio adds the slash");
    assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(s3.force_path_style);
    assert_eq!(
        s3.sse_kms_key_id.as_deref(),
        Some("arn:aws:kms:eu-west-1:111122223333:key/abc")
    );
    assert_eq!(s3.tarball_redirect, Some(Duration::from_secs(120)));
    assert_eq!(s3.request_timeout, Duration::from_secs(5));
    assert_eq!(s3.connect_timeout, Duration::from_secs(3));
    assert_eq!(s3.max_attempts, 2);
    let w = loaded.warnings.join("\n");
    assert!(w.contains("`store.aws-s3-storage.tarballACL`"), "{w}");
    assert!(w.contains("`store.aws-s3-storage.colour`"), "{w}");

    let minimal = parse("store:\n  aws-s3-storage:\n    bucket: b\n    tarballRedirect: true\n")
        .unwrap()
        .config
        .store;
    let Store::S3(s3) = minimal else { panic!() };
    assert_eq!(s3.key_prefix, "");
    assert_eq!((s3.region, s3.endpoint), (None, None));
    assert!(!s3.force_path_style);
    assert_eq!(s3.tarball_redirect, Some(Duration::from_secs(300)));
    assert_eq!(s3.max_attempts, 3);
}

#[test]
fn s3_values_may_name_environment_variables() {
    // Verdaccio's plugin reads `bucket: SOME_VAR` from the environment when the variable is set;
    // PATH is set in every test environment (and setting a variable here would race other tests).
    let path = std::env::var("PATH").unwrap();
    let c = parse("store:\n  aws-s3-storage:\n    bucket: PATH\n    keyPrefix: UNSET_VARIABLE_7F3A\n")
        .unwrap()
        .config;
    let Store::S3(s3) = c.store else { panic!() };
    assert_eq!(s3.bucket, path);
    assert_eq!(s3.key_prefix, "UNSET_VARIABLE_7F3A/");
}

#[test]
fn s3_credentials_in_the_file_are_refused() {
    for k in ["accessKeyId", "secretAccessKey", "sessionToken"] {
        let text = format!("store:\n  aws-s3-storage:\n    bucket: b\n    {k}: AKIAEXAMPLE\n");
        match parse(&text) {
            Err(ConfigError::Invalid { key, reason }) => {
                assert_eq!(key, format!("store.aws-s3-storage.{k}"));
                assert!(reason.contains("AWS default chain"), "{reason}");
                assert!(reason.contains("AWS_ACCESS_KEY_ID"), "{reason}");
            }
            other => panic!("{k}: {other:?}"),
        }
    }
}

#[test]
fn invalid_s3_values_name_the_key() {
    let cases = [
        (
            "store:\n  aws-s3-storage:\n    region: x\n",
            "store.aws-s3-storage.bucket",
        ),
        (
            "store:\n  aws-s3-storage:\n    bucket: ''\n",
            "store.aws-s3-storage.bucket",
        ),
        ("store:\n  google-cloud:\n    bucket: b\n", "store.google-cloud"),
        (
            "store:\n  aws-s3-storage:\n    bucket: b\n    endpoint: ftp://x\n",
            "store.aws-s3-storage.endpoint",
        ),
        (
            "store:\n  aws-s3-storage:\n    bucket: b\n    s3ForcePathStyle: maybe\n",
            "store.aws-s3-storage.s3ForcePathStyle",
        ),
        (
            "store:\n  aws-s3-storage:\n    bucket: b\n    tarballRedirect: 30d\n",
            "store.aws-s3-storage.tarballRedirect",
        ),
        (
            "store:\n  aws-s3-storage:\n    bucket: b\n    maxAttempts: 0\n",
            "store.aws-s3-storage.maxAttempts",
        ),
        (
            "store:\n  aws-s3-storage:\n    bucket: b\n    connectTimeout: 0\n",
            "store.aws-s3-storage.connectTimeout",
        ),
    ];
    for (text, key) in cases {
        match parse(text) {
            Err(ConfigError::Invalid { key: k, reason }) => {
                assert_eq!(k, key, "for {text:?}: {reason}");
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
}

#[test]
fn block_entries_are_read_by_the_parser_that_applies_them() {
    let c = parse(
        "packages:\n  '**':\n    block: ['lib@>=1 <2', '@s/x', '@s/y@1.0.0 || >=3', 'left-pad@1.x || 2.x', 'q@1 - 2', 'r@~1.2', 's@^1']\n",
    )
        .unwrap()
        .config;
    let block = &c.packages[0].filter.block;
    let names: Vec<&str> = block.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["lib", "@s/x", "@s/y", "left-pad", "q", "r", "s"]);
    assert!(block[0].covers("lib", "1.5.0") && !block[0].covers("lib", "2.0.0"));
    assert!(block[1].covers("@s/x", "9.0.0"));
    assert!(block[3].covers("left-pad", "2.0.1") && !block[3].covers("left-pad", "3.0.0"));
    assert!(block[4].covers("q", "2.5.0") && !block[4].covers("q", "3.0.0"));
    assert!(block[5].covers("r", "1.2.9") && !block[5].covers("r", "1.3.0"));
    assert!(block[6].covers("s", "1.9.0") && !block[6].covers("s", "2.0.0"));
}

#[test]
fn near_misses_of_known_keys_are_errors_naming_the_key() {
    let cases = [
        ("packges:\n  '**': {access: $all}\n", "packges", "packages"),
        (
            "packages:\n  '**': {acess: $all}\n",
            "packages.'**'.acess",
            "packages.'**'.access",
        ),
        (
            "uplinks:\n  up: {url: 'http://x.example', timout: 5s}\n",
            "uplinks.up.timout",
            "uplinks.up.timeout",
        ),
        (
            "auth:\n  htpasswd: {file: ./h, max_user: 3}\n",
            "auth.htpasswd.max_user",
            "auth.htpasswd.max_users",
        ),
        ("lisen: 4873\n", "lisen", "listen"),
        ("Storage: ./s\n", "Storage", "storage"),
        ("log: {levl: warn}\n", "log.levl", "log.level"),
        (
            "security:\n  api: {legacyy: true}\n",
            "security.api.legacyy",
            "security.api.legacy",
        ),
    ];
    for (text, key, expected) in cases {
        match parse(text) {
            Err(e @ ConfigError::NearMiss { .. }) => {
                let ConfigError::NearMiss { key: k, expected: x } = &e else {
                    unreachable!()
                };
                assert_eq!((k.as_str(), x.as_str()), (key, expected), "{text:?}");
                assert!(e.to_string().contains(&format!("did you mean `{expected}`?")), "{e}");
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    // A rule's key at the top level would silently not apply.
    assert!(matches!(parse("proxy: npmjs\n"), Err(ConfigError::Misplaced { key, .. }) if key == "proxy"));
    // Unrelated keys and Verdaccio's own keys stay warnings.
    let w = parse("frobnicate: 1\n_debug: true\nconfig_path: /x\n")
        .unwrap()
        .warnings
        .join("\n");
    assert!(w.contains("`frobnicate`") && w.contains("`_debug`"), "{w}");
}

#[test]
fn type_errors_name_the_key_and_no_rust_type() {
    let cases = [
        (
            "packages:\n  '**':\n    access: $all\n  proxy: npmjs\n",
            "packages.proxy",
            "a package rule",
        ),
        ("uplinks:\n  up: http://x.example\n", "uplinks.up", "an uplink"),
        (
            "uplinks:\n  up: {url: 'http://x', max_fails: lots}\n",
            "uplinks.up.max_fails",
            "a whole number",
        ),
        (
            "uplinks:\n  up: {url: 'http://x', max_fails: -1}\n",
            "uplinks.up.max_fails",
            "a whole number",
        ),
        (
            "packages:\n  '**': {access: {a: 1}}\n",
            "packages.'**'.access",
            "names, as a list",
        ),
        (
            "packages:\n  '**': {block: left-pad}\n",
            "packages.'**'.block",
            "sequence",
        ),
        (
            "auth:\n  htpasswd: {file: ./h, max_users: many}\n",
            "auth.htpasswd.max_users",
            "a whole number",
        ),
        ("auth: [htpasswd]\n", "auth", "auth plugins"),
        ("log: stdout\n", "log", "type, format and level"),
        (
            "security: {api: {legacy: yes please}}\n",
            "security.api.legacy",
            "a boolean",
        ),
        ("web: {enable: maybe}\n", "web.enable", "a boolean"),
        ("groups: {staff: {a: 1}}\n", "groups.staff", "names"),
    ];
    for (text, key, words) in cases {
        match parse(text) {
            Err(ConfigError::Invalid { key: k, reason }) => {
                assert_eq!(k, key, "{text:?}: {reason}");
                assert!(reason.contains(words), "{text:?}: {reason:?} lacks {words:?}");
                for rust in ["struct", "enum", "File", "u32", "i64", "Option", "Vec<", "StringList"] {
                    assert!(!reason.contains(rust), "{text:?}: {reason:?} shows {rust:?}");
                }
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    match parse("- just\n- a list\n") {
        Err(ConfigError::Yaml(reason)) => assert!(reason.contains("a mapping of settings"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn listen_is_checked_for_range_and_form() {
    for (text, words) in [
        ("listen: 99999", "port 99999 is out of range"),
        ("listen: '0.0.0.0:123456'", "out of range"),
        ("listen: 'localhost:http'", "not a port number"),
        ("listen: {host: x}", "expected an address"),
    ] {
        match parse(text) {
            Err(ConfigError::Invalid { key, reason }) => {
                assert_eq!(key, "listen");
                assert!(reason.contains(words), "{text}: {reason}");
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
}

#[test]
fn unimplemented_auth_plugins_refuse_to_start_unless_ignored() {
    for text in [
        "auth:\n  ldap:\n    type: ldap\n    client_options: {url: 'ldap://ldap.example'}\n",
        "auth:\n  htpasswd: {file: ./h}\n  gitlab: {url: 'https://gitlab.example'}\n",
    ] {
        match parse(text) {
            Err(e @ ConfigError::UnsupportedAuthPlugin { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("ignore_auth_plugins") && msg.contains("htpasswd"), "{msg}");
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    let typo = parse("auth:\n  htpassword: {file: ./h}\n").unwrap_err().to_string();
    assert!(typo.contains("did you mean `auth.htpasswd`?"), "{typo}");

    // Ignored on request; registration then stays closed, since the users were meant to come
    // from the plugin.
    let loaded = parse("ignore_auth_plugins: [ldap]\nauth:\n  ldap: {type: ldap}\n").unwrap();
    assert_eq!(
        loaded.config.max_users,
        Some(0),
        "no registration opened by leaving ldap out"
    );
    assert!(
        loaded.warnings.join("\n").contains("auth.ldap"),
        "{:?}",
        loaded.warnings
    );
    let with_htpasswd =
        parse("ignore_auth_plugins: ldap\nauth:\n  ldap: {}\n  htpasswd: {file: ./h, max_users: 5}\n").unwrap();
    assert_eq!(with_htpasswd.config.max_users, Some(5));
    assert_eq!(
        parse("listen: 4873").unwrap().config.max_users,
        None,
        "Verdaccio's default: open"
    );
}

#[test]
fn a_missing_htpasswd_file_is_an_error_only_when_nobody_could_register() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "auth:\n  htpasswd:\n    file: ./missing\n    max_users: -1\n").unwrap();
    match Config::load(Some(&config)) {
        Err(ConfigError::Invalid { key, reason }) => {
            assert_eq!(key, "auth.htpasswd.file");
            assert!(reason.contains("does not exist"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(&config, "auth:\n  htpasswd:\n    file: ./missing\n").unwrap();
    let loaded = Config::load(Some(&config)).unwrap();
    assert!(
        loaded.warnings.join("\n").contains("does not exist"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn the_default_uplink_proxies_rules_that_proxy_nothing() {
    let c = Config::load(None)
        .unwrap()
        .config
        .with_default_uplink("http://127.0.0.1:9/")
        .unwrap();
    assert_eq!(c.uplinks[DEFAULT_UPLINK].url, "http://127.0.0.1:9/");
    assert!(c.packages.iter().all(|r| r.proxy == [DEFAULT_UPLINK]));
    assert!(
        Config::load(None)
            .unwrap()
            .config
            .with_default_uplink("ftp://x")
            .is_err()
    );
}

#[test]
fn empty_s3_credential_keys_are_absent_with_a_warning() {
    let text = "store:\n  aws-s3-storage:\n    bucket: b\n    accessKeyId: # your key\n    secretAccessKey: ''\n    sessionToken: AWS_SESSION_TOKEN\n";
    let loaded = parse(text).unwrap();
    assert!(matches!(loaded.config.store, Store::S3(_)));
    let w = loaded.warnings.join("\n");
    assert!(w.contains("`store.aws-s3-storage.accessKeyId` is empty"), "{w}");
    assert!(w.contains("`store.aws-s3-storage.secretAccessKey` is empty"), "{w}");
    assert!(w.contains("reads AWS_SESSION_TOKEN itself"), "{w}");
    match parse("store:\n  aws-s3-storage:\n    bucket: b\n    keyprefix: npm\n") {
        Err(ConfigError::NearMiss { expected, .. }) => assert_eq!(expected, "store.aws-s3-storage.keyPrefix"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn signing_defaults_to_a_stored_key_and_reads_files_relative_to_the_config() {
    let c = parse("").unwrap().config;
    assert_eq!(c.signing, Signing::default());
    assert!(c.signing.enabled);
    let c = parse(
        "signing:\n  key_file: keys/current.pem\n  retired_keys:\n    - {key_file: keys/old.pem, expires: '2026-01-02T03:04:05Z'}\n",
    )
    .unwrap()
    .config;
    assert_eq!(c.signing.key, KeySource::File("/etc/reg/keys/current.pem".into()));
    assert_eq!(c.signing.retired[0].file, Path::new("/etc/reg/keys/old.pem"));
    assert_eq!(c.signing.retired[0].expires.to_rfc3339(), "2026-01-02T03:04:05+00:00");
    let c = parse("signing: {rotate_before: '2026-06-01T00:00:00Z'}\n")
        .unwrap()
        .config;
    assert!(matches!(c.signing.key, KeySource::Stored { rotate_before: Some(_) }));
    assert!(!parse("signing: {enabled: false}\n").unwrap().config.signing.enabled);
    for (yaml, key) in [
        ("signing: {rotate_before: soon}\n", "signing.rotate_before"),
        (
            "signing: {key_file: k.pem, rotate_before: '2026-06-01T00:00:00Z'}\n",
            "signing.rotate_before",
        ),
        (
            "signing: {retired_keys: [{key_file: k.pem}]}\n",
            "signing.retired_keys[0].expires",
        ),
        (
            "signing: {retired_keys: [{expires: '2026-06-01T00:00:00Z'}]}\n",
            "signing.retired_keys[0].key_file",
        ),
    ] {
        match parse(yaml) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{yaml}"),
            other => panic!("{yaml}: {other:?}"),
        }
    }
    assert!(matches!(
        parse("signing: {key_fle: k.pem}\n"),
        Err(ConfigError::NearMiss { expected, .. }) if expected == "signing.key_file"
    ));
}

#[test]
fn trusted_publishers_are_checked_at_start() {
    let yaml = "public_url: https://npm.example.com/\npackages:\n  '@acme/*':\n    access: $all\n    trusted_publishers:\n      - issuer: https://token.actions.githubusercontent.com\n        claims: {repository: acme/widgets, workflow_ref: 'acme/widgets/.github/workflows/release.yml@*'}\n";
    let loaded = parse(yaml).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let p = &loaded.config.packages[0].trusted_publishers[0];
    assert_eq!(p.issuer, "https://token.actions.githubusercontent.com");
    assert_eq!(p.claims["repository"], "acme/widgets");
    let local = "packages:\n  p: {trusted_publishers: [{issuer: 'http://127.0.0.1:9/', claims: {sub: x}}]}\n";
    // The audience would otherwise follow each request's Host: refused at start.
    match parse(local) {
        Err(ConfigError::Invalid { key, reason }) => {
            assert_eq!(key, "packages.'p'.trusted_publishers");
            assert!(reason.contains("needs public_url"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    for (rule, key) in [
        ("{issuer: 'http://issuer.example', claims: {sub: x}}", "issuer"),
        ("{issuer: 'not a url', claims: {sub: x}}", "issuer"),
        ("{claims: {sub: x}}", "issuer"),
        ("{issuer: 'https://issuer.example'}", "claims"),
        ("{issuer: 'https://issuer.example', claims: {}}", "claims"),
        ("{issuer: 'https://issuer.example', claims: {sub: [x]}}", "claims.sub"),
    ] {
        let yaml = format!("packages:\n  p: {{trusted_publishers: [{rule}]}}\n");
        match parse(&yaml) {
            Err(ConfigError::Invalid { key: k, .. }) => {
                assert_eq!(k, format!("packages.'p'.trusted_publishers[0].{key}"), "{rule}")
            }
            other => panic!("{rule}: {other:?}"),
        }
    }
    assert!(matches!(
        parse("packages:\n  p: {trusted_publishers: [{isuer: 'https://i.example', claims: {sub: x}}]}\n"),
        Err(ConfigError::NearMiss { expected, .. }) if expected.ends_with("trusted_publishers.issuer")
    ));
    assert!(matches!(
        parse("trusted_publishers: []\n"),
        Err(ConfigError::Misplaced { .. })
    ));
}
