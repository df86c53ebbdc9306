//! The registry on S3 (moto, started by each test): the npm round trip, replicas publishing
//! concurrently to one bucket, a bucket laid out by Verdaccio's S3 plugin, and an S3 outage.

mod common;

use common::moto::{Moto, S3_ENV, s3_config};
use common::round_trip::{Bucket, npm_round_trip};
use common::*;
use std::time::{Duration, Instant};

fn s3_server(moto: &Moto, bucket: &str, prefix: &str, extra: &str) -> Server {
    // `--storage` points at a folder that must stay empty: everything goes to the bucket.
    let unused = tempfile::tempdir().unwrap();
    let s = Server::start_env(
        &s3_config(moto, bucket, prefix, extra),
        &unused.path().join("unused"),
        S3_ENV,
    );
    assert!(!unused.path().join("unused").exists());
    s
}

#[test]
fn npm_round_trip_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("registry");
    let server = s3_server(&moto, "registry", "npm/", "");
    let work = tempfile::tempdir().unwrap();
    let stored = Bucket {
        moto: &moto,
        bucket: "registry",
        prefix: "npm/",
    };
    npm_round_trip(&server.url(), work.path(), &stored);
    // Verdaccio's S3 layout: pretty JSON under the prefix, tarballs beside it.
    let doc = moto.get("registry", "npm/app-main/package.json").unwrap();
    assert!(doc.starts_with(b"{\n  \""), "pretty-printed like Verdaccio");
    assert!(moto.head("registry", "npm/app-main/app-main-1.0.0.tgz").is_some());
    assert!(moto.keys("registry", "").iter().all(|k| k.starts_with("npm/")));
}

#[test]
fn three_processes_sixty_concurrent_publishes() {
    let moto = Moto::start();
    moto.create_bucket("shared");
    let servers: Vec<Server> = (0..3).map(|_| s3_server(&moto, "shared", "", "")).collect();
    let urls: Vec<String> = servers.iter().map(Server::url).collect();

    let started = Instant::now();
    let threads: Vec<_> = (0..60)
        .map(|i| {
            let url = format!("{}shared-pkg", urls[i % 3]);
            std::thread::spawn(move || {
                let version = format!("1.0.{i}");
                let body = publish_body("shared-pkg", &version, format!("tarball {i}").as_bytes());
                let r = http().request(reqwest::Method::PUT, &url).json(&body).send().unwrap();
                assert_eq!(r.status, 201, "publish of {version}: {}", r.text());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    println!("60 publishes over 3 processes took {:?}", started.elapsed());

    // The object in the bucket is valid JSON with all 60 versions, and every process agrees.
    let stored: serde_json::Value =
        serde_json::from_slice(&moto.get("shared", "shared-pkg/package.json").unwrap()).unwrap();
    let mut versions: Vec<String> = stored["versions"].as_object().unwrap().keys().cloned().collect();
    versions.sort();
    let mut expected: Vec<String> = (0..60).map(|i| format!("1.0.{i}")).collect();
    expected.sort();
    assert_eq!(versions, expected);
    assert_eq!(
        stored["time"].as_object().unwrap().len(),
        62,
        "created, modified, 60 versions"
    );
    assert!(stored["dist-tags"]["latest"].as_str().is_some());
    let http = http();
    for url in &urls {
        let doc = http.get(&format!("{url}shared-pkg")).send().unwrap().json();
        assert_eq!(doc["versions"].as_object().unwrap().len(), 60);
        for i in [0, 31, 59] {
            let r = http
                .get(&format!("{url}shared-pkg/-/shared-pkg-1.0.{i}.tgz"))
                .send()
                .unwrap();
            assert_eq!(r.body, format!("tarball {i}").as_bytes());
        }
    }
    let list = String::from_utf8(moto.get("shared", "verdaccio-s3-db.json").unwrap()).unwrap();
    assert_eq!(list.matches("shared-pkg").count(), 1, "{list}");
}

fn publish(registry: &str, name: &str, version: &str) -> Res {
    http()
        .request(reqwest::Method::PUT, &format!("{registry}{name}"))
        .json(&publish_body(name, version, format!("{name}@{version}").as_bytes()))
        .send()
        .unwrap()
}

#[test]
fn s3_outage_fails_fast_with_503_and_recovers_without_restart() {
    let mut moto = Moto::start();
    moto.create_bucket("outage");
    // Check storage on every request: within `revalidate_after` a cached packument would still be
    // answered from memory while S3 is down.
    let mut server = s3_server(&moto, "outage", "", "packument_cache:\n  revalidate_after: 0s\n");
    let url = server.url();
    assert_eq!(publish(&url, "steady", "1.0.0").status, 201);
    let http = http();
    assert_eq!(http.get(&format!("{url}steady")).send().unwrap().status, 200);

    moto.stop();
    let requests = [
        ("GET", format!("{url}steady")),
        ("GET", format!("{url}steady/-/steady-1.0.0.tgz")),
        ("GET", format!("{url}-/v1/search?text=steady")),
        ("GET", format!("{url}-/ready")),
        ("PUT", format!("{url}newcomer")),
    ];
    for (method, target) in &requests {
        let started = Instant::now();
        let r = if *method == "PUT" {
            publish(&url, "newcomer", "1.0.0")
        } else {
            http.get(target).send().unwrap()
        };
        let took = started.elapsed();
        println!("{method} {target} with S3 down: {} in {took:?}", r.status);
        assert_eq!(r.status, 503, "{method} {target}: {}", r.text());
        assert_eq!(r.headers["retry-after"], "1");
        let message = r.json()["error"].as_str().unwrap().to_owned();
        assert!(
            message.contains("storage is unavailable") && message.contains("S3"),
            "{message}"
        );
        // Fail fast: connection refused is retried briefly, never waited on for long.
        assert!(took < Duration::from_secs(10), "{method} {target} took {took:?}");
    }

    // S3 comes back (moto restarts empty, so the bucket is made again): the same process serves.
    moto.restart();
    moto.create_bucket("outage");
    assert!(server.is_running(), "the server must survive the outage");
    assert_eq!(publish(&url, "after-outage", "1.0.0").status, 201);
    let doc = http.get(&format!("{url}after-outage")).send().unwrap();
    assert_eq!(doc.status, 200, "{}", doc.text());
    assert_eq!(doc.json()["dist-tags"]["latest"], "1.0.0");
    assert_eq!(http.get(&format!("{url}-/ready")).send().unwrap().status, 200);
    let r = http
        .get(&format!("{url}after-outage/-/after-outage-1.0.0.tgz"))
        .send()
        .unwrap();
    assert_eq!(r.body, b"after-outage@1.0.0");
}

#[test]
fn s3_that_never_answers_times_out_with_503() {
    // Accepts connections (the kernel's backlog does) and never answers a byte.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let config = format!(
        "{OPEN_CONFIG}store:\n  aws-s3-storage:\n    bucket: silent\n    region: us-east-1\n    \
         endpoint: http://127.0.0.1:{port}\n    s3ForcePathStyle: true\n    requestTimeout: 1s\n    \
         maxAttempts: 2\n"
    );
    let unused = tempfile::tempdir().unwrap();
    let server = Server::start_env(&config, unused.path(), S3_ENV);
    let started = Instant::now();
    let r = http().get(&format!("{}some-pkg", server.url())).send().unwrap();
    let took = started.elapsed();
    println!("GET with a silent S3: {} in {took:?}", r.status);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("S3"), "{}", r.text());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    drop(silent);
}

/// `npm pack`s a package and returns the tarball bytes with Verdaccio's `versions` entry for it.
fn packed(
    npm: &Client,
    w: &std::path::Path,
    name: &str,
    version: &str,
    deps: &[(&str, &str)],
    code: &str,
) -> (Vec<u8>, serde_json::Value) {
    use base64::Engine;
    use sha1::Sha1;
    use sha2::{Digest, Sha512};
    let src = write_package(w, name, version, deps, code);
    let out = tempfile::tempdir().unwrap();
    npm.npm_ok(&src, &["pack", "--pack-destination", out.path().to_str().unwrap()]);
    let file = format!("{}-{version}.tgz", name.trim_start_matches('@').replace('/', "-"));
    let bytes = std::fs::read(out.path().join(file)).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("package.json")).unwrap()).unwrap();
    let short = name.rsplit('/').next().unwrap();
    manifest["_id"] = format!("{name}@{version}").into();
    manifest["_nodeVersion"] = "20.11.0".into();
    manifest["_npmVersion"] = "10.2.4".into();
    manifest["contributors"] = serde_json::json!([]);
    manifest["dist"] = serde_json::json!({
        "integrity": format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&bytes))),
        "shasum": hex::encode(Sha1::digest(&bytes)),
        // Verdaccio's own URL: the server must rewrite it to its own.
        "tarball": format!("http://verdaccio.example.com:4873/{name}/-/{short}-{version}.tgz"),
    });
    (bytes, manifest)
}

/// A packument as Verdaccio's S3 plugin writes it: its internal fields, pretty-printed.
fn verdaccio_packument(name: &str, versions: &[&serde_json::Value]) -> Vec<u8> {
    let short = name.rsplit('/').next().unwrap();
    let mut vs = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    let mut attachments = serde_json::Map::new();
    time.insert("created".into(), "2024-03-01T10:00:00.000Z".into());
    time.insert("modified".into(), "2024-03-02T10:00:00.000Z".into());
    let mut latest = String::new();
    for (i, m) in versions.iter().enumerate() {
        let v = m["version"].as_str().unwrap().to_owned();
        vs.insert(v.clone(), (*m).clone());
        time.insert(v.clone(), format!("2024-03-0{}T10:00:00.000Z", i + 1).into());
        attachments.insert(
            format!("{short}-{v}.tgz"),
            serde_json::json!({"shasum": m["dist"]["shasum"], "version": v}),
        );
        latest = v;
    }
    let doc = serde_json::json!({
        "name": name,
        "versions": vs,
        "time": time,
        "users": {},
        "dist-tags": {"latest": latest},
        "_uplinks": {},
        "_distfiles": {},
        "_attachments": attachments,
        "_rev": format!("{}-8d3f0a7c1b2e4f60", versions.len()),
        "_id": name,
        "readme": "ERROR: No README data found!",
    });
    serde_json::to_string_pretty(&doc).unwrap().into_bytes()
}

#[test]
fn bucket_laid_out_by_verdaccio_s3_plugin_is_served() {
    let moto = Moto::start();
    moto.create_bucket("verdaccio-bucket");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let packer = Client::anonymous("http://127.0.0.1:9/");
    let (t1, m1) = packed(&packer, w, "from-verdaccio", "1.0.0", &[], "module.exports = 'v';\n");
    let (t2, m2) = packed(&packer, w, "from-verdaccio", "1.1.0", &[], "module.exports = 'v2';\n");
    let (t3, m3) = packed(
        &packer,
        w,
        "@old/thing",
        "3.0.0",
        &[("from-verdaccio", "^1.0.0")],
        "module.exports = require('from-verdaccio') + '!';\n",
    );
    // The plugin's keys: `<keyPrefix>/` + Verdaccio's folder layout, and its package list.
    let b = "verdaccio-bucket";
    moto.put(
        b,
        "verdaccio/from-verdaccio/package.json",
        verdaccio_packument("from-verdaccio", &[&m1, &m2]),
    );
    moto.put(b, "verdaccio/from-verdaccio/from-verdaccio-1.0.0.tgz", t1);
    moto.put(b, "verdaccio/from-verdaccio/from-verdaccio-1.1.0.tgz", t2);
    moto.put(
        b,
        "verdaccio/@old/thing/package.json",
        verdaccio_packument("@old/thing", &[&m3]),
    );
    moto.put(b, "verdaccio/@old/thing/thing-3.0.0.tgz", t3.clone());
    moto.put(
        b,
        "verdaccio/verdaccio-s3-db.json",
        r#"{"list":["from-verdaccio","@old/thing"],"secret":"0123456789abcdef0123456789abcdef"}"#,
    );

    // keyPrefix without its slash, as Verdaccio configs usually write it.
    let server = s3_server(&moto, b, "verdaccio", "");
    let npm = Client::new(&server.url());
    let p = project(w, "consumer");
    npm.npm_ok(&p, &["install", "@old/thing", "from-verdaccio@1.0.0"]);
    assert_eq!(npm.require(&p, "@old/thing"), "v!");
    let lock = std::fs::read_to_string(p.join("package-lock.json")).unwrap();
    assert!(
        lock.contains(&format!("{}@old/thing/-/thing-3.0.0.tgz", server.url())),
        "tarball URLs point at us: {lock}"
    );
    let view = npm.npm_ok(w, &["view", "from-verdaccio", "versions", "--json"]);
    assert!(view.contains("1.0.0") && view.contains("1.1.0"), "{view}");
    let found = npm.npm_ok(w, &["search", "from-verdaccio"]);
    assert!(
        found.contains("from-verdaccio"),
        "the plugin's package list is read: {found}"
    );

    // A publish through us keeps the plugin's files as the plugin expects them.
    let next = write_package(w, "from-verdaccio", "1.2.0", &[], "module.exports = 'v3';\n");
    npm.npm_ok(&next, &["publish"]);
    let doc = moto.get(b, "verdaccio/from-verdaccio/package.json").unwrap();
    assert!(doc.starts_with(b"{\n  \""), "pretty JSON");
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    assert_eq!(doc["versions"].as_object().unwrap().len(), 3);
    assert!(doc["_uplinks"].is_object() && doc["readme"].is_string(), "{doc}");
    assert!(
        moto.head(b, "verdaccio/from-verdaccio/from-verdaccio-1.2.0.tgz")
            .is_some()
    );
    let db: serde_json::Value =
        serde_json::from_slice(&moto.get(b, "verdaccio/verdaccio-s3-db.json").unwrap()).unwrap();
    assert_eq!(db["secret"], "0123456789abcdef0123456789abcdef", "{db}");
    assert_eq!(db["list"].as_array().unwrap().len(), 2, "{db}");
    assert!(moto.head(b, "verdaccio/.verdaccio-db.json").is_none());

    // The redirect option: tarballs answered with a presigned URL, which npm follows.
    let redirecting = s3_server(&moto, b, "verdaccio", "    tarballRedirect: 60s\n");
    let tarball = format!("{}@old/thing/-/thing-3.0.0.tgz", redirecting.url());
    let r = raw_request(redirecting.port, "GET", "/@old/thing/-/thing-3.0.0.tgz", b"");
    assert_eq!(r.status, 302, "{tarball}: {}", r.text());
    let location = r.headers["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!(
            "{}/verdaccio-bucket/verdaccio/%40old/thing/thing-3.0.0.tgz?",
            moto.endpoint()
        )) && location.contains("X-Amz-Signature=")
            && location.contains("X-Amz-Expires=60"),
        "{location}"
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(http().get(&location).send().unwrap().body, t3);
    let missing = raw_request(redirecting.port, "GET", "/@old/thing/-/thing-9.9.9.tgz", b"");
    assert_eq!(missing.status, 404, "a missing tarball is not redirected");
    let npm2 = Client::new(&redirecting.url());
    let p2 = project(w, "via-redirect");
    npm2.npm_ok(&p2, &["install", "@old/thing"]);
    assert!(p2.join("node_modules/@old/thing/index.js").exists());
    assert!(p2.join("node_modules/from-verdaccio/index.js").exists());
}

/// Reads a GET response to the end without keeping it: `(status, body bytes)`.
fn download(port: u16, path: &str) -> (u16, u64) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return (status, total);
        }
        total += n as u64;
    }
}

#[test]
fn memory_stays_flat_while_a_200_mb_tarball_is_downloaded() {
    const SIZE: usize = 200 * 1024 * 1024;
    let moto = Moto::start();
    moto.create_bucket("large");
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 253) as u8).collect();
    moto.put("large", "big-pkg/big-pkg-1.0.0.tgz", data);
    let server = s3_server(&moto, "large", "", "");
    // Warm up the client, then take the peak so far as the baseline.
    assert_eq!(
        http().get(&format!("{}-/ready", server.url())).send().unwrap().status,
        200
    );
    let before = server.memory_kib("VmHWM");
    let started = Instant::now();
    let (status, len) = download(server.port, "/big-pkg/-/big-pkg-1.0.0.tgz");
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(len, SIZE as u64);
    let after = server.memory_kib("VmHWM");
    println!(
        "200 MB tarball from S3 through the server in {took:?}: server peak RSS {} MiB before, \
         {} MiB after (+{} MiB)",
        before / 1024,
        after / 1024,
        (after - before) / 1024
    );
    assert!(
        after - before < 64 * 1024,
        "the download must stream: peak RSS grew from {before} KiB to {after} KiB"
    );
}

/// The shape of the S3 config in the deployment guides written for Verdaccio: empty credential
/// keys (`accessKeyId: # your key`), and `server:`, `web:`, `logs:` and `middlewares:` sections.
#[test]
fn the_deployment_guides_s3_config_starts_against_moto() {
    let moto = Moto::start();
    moto.create_bucket("guide-bucket");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let htpasswd = w.join("htpasswd");
    std::fs::write(&htpasswd, "").unwrap();
    let config = format!(
        "storage: /verdaccio/storage/data\n\
         plugins: /verdaccio/plugins\n\
         web:\n  enable: true\n  title: Verdaccio\n\
         auth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 1000\n\
         store:\n  aws-s3-storage:\n    bucket: guide-bucket\n    keyPrefix: verdaccio\n    region: us-east-1\n    \
         endpoint: {endpoint}\n    s3ForcePathStyle: true\n    accessKeyId: # your key\n    secretAccessKey: # your secret\n\
         packages:\n  '@*/*':\n    access: $all\n    publish: $authenticated\n  '**':\n    access: $all\n    publish: $authenticated\n\
         server:\n  keepAliveTimeout: 60\n\
         middlewares:\n  audit:\n    enabled: true\n\
         logs: {{ type: stdout, format: pretty, level: http }}\n",
        htpasswd = htpasswd.display(),
        endpoint = moto.endpoint()
    );
    let unused = tempfile::tempdir().unwrap();
    let server = Server::start_env(&config, &unused.path().join("unused"), S3_ENV);
    let log = server.log();
    assert!(
        log.contains("store.aws-s3-storage.accessKeyId") && log.contains("treated as absent"),
        "{log}"
    );
    assert_eq!(
        http().get(&format!("{}-/ready", server.url())).send().unwrap().status,
        200
    );
    let npm = Client::new(&server.url());
    let lib = write_package(w, "guide-lib", "1.0.0", &[], "module.exports = 'guide';\n");
    npm.npm_ok(&lib, &["publish"]);
    let p = project(w, "guide-consumer");
    npm.npm_ok(&p, &["install", "guide-lib"]);
    assert_eq!(npm.require(&p, "guide-lib"), "guide");
    assert!(moto.get("guide-bucket", "verdaccio/guide-lib/package.json").is_some());
}

#[test]
fn missing_s3_credentials_are_logged_at_start_and_nothing_internal_reaches_clients() {
    let moto = Moto::start();
    moto.create_bucket("no-creds");
    let unused = tempfile::tempdir().unwrap();
    // No credentials anywhere in the chain (and no instance metadata service to ask).
    let env = [
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials"),
    ];
    let server = Server::start_env(
        &s3_config(&moto, "no-creds", "", ""),
        &unused.path().join("unused"),
        &env,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("no usable AWS credentials") {
        assert!(
            Instant::now() < deadline,
            "no log line about credentials:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = server.log();
    for chain in ["AWS_ACCESS_KEY_ID", "IRSA", "EKS Pod Identity", "instance profile"] {
        assert!(log.contains(chain), "the log line names {chain}: {log}");
    }
    for path in ["-/ready", "some-package", "some-package/-/some-package-1.0.0.tgz"] {
        let r = http().get(&format!("{}{path}", server.url())).send().unwrap();
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        let message = r.json()["error"].as_str().unwrap().to_owned();
        let id = r.headers["x-request-id"].to_str().unwrap().to_owned();
        assert!(message.contains(&format!("request id {id}")), "{message}");
        assert!(message.len() < 160, "a short message: {message}");
        for internal in [
            "s3://",
            "no-creds",
            &moto.port.to_string(),
            "dispatch",
            "Error {",
            "source:",
        ] {
            assert!(!message.contains(internal), "{path}: {message:?} shows {internal:?}");
        }
        // The detail went to the log, with the same request id.
        assert!(server.log().contains(&id), "request {id} is not in the log");
    }
}
