//! Every sample's server pod, as the operator renders it, in a real container: the image built
//! from the release binary (`NPM_REGISTRY_SERVER_BIN`, which `e2e/test.sh` builds), the rendered
//! ConfigMap and the Secrets mounted where the pod mounts them, the pod's user, read-only root and
//! volumes, its probes answered, then `npm publish` and `npm install` through it. S3 samples run
//! against moto.
//!
//! What stands in for the cluster is only what a user changes the same way: the samples' S3
//! endpoint points at moto (`storage.s3.endpoint`, `forcePathStyle`), their uplinks at a local
//! upstream that has no package (`uplinks[].url`), the AWS credentials come as the environment variables IRSA's webhook
//! would inject, and npm reaches the pod directly instead of through the Ingress host
//! (`--replace-registry-host=always`). Needs podman, buildah and runc: `e2e/test.sh` installs
//! them on Debian as root; without them the test says why and is skipped, except in CI.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::container::{self, PodRun, Secrets, Tools};
use e2e::{repo_root, samples};
use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use operator::crd::NpmRegistry;
use serde_json::{Value, json};

const IMAGE: &str = "localhost/npm-registry-server:e2e";
const USER: &str = "alice";
const PASSWORD: &str = "correct-horse-battery";

#[tokio::test]
async fn every_sample_pod_runs_in_a_container_and_serves_npm_publish_and_install() {
    let Some(tools) = container::tools() else { return };
    let Some(moto) = Moto::start().await else { return };
    let upstream = empty_upstream();
    let started = Instant::now();
    tools.build_server_image(IMAGE);
    println!(
        "image {IMAGE} built from {} in {:?}",
        tools.server_binary.display(),
        started.elapsed()
    );
    let samples = samples();
    assert!(samples.len() >= 4, "the volume, S3, EKS S3 and EKS EFS samples");
    for (file, manifest) in samples {
        let started = Instant::now();
        run_sample(&tools, &moto, upstream, &file, manifest).await;
        println!(
            "{file}: pod ran, probes answered, npm published and installed ({:?})",
            started.elapsed()
        );
    }
}

async fn run_sample(tools: &Tools, moto: &Moto, upstream: u16, file: &str, mut manifest: Value) {
    manifest["metadata"]["namespace"] = json!("e2e");
    manifest["metadata"]["uid"] = json!("5a3c1d8e-0000-4000-8000-000000000001");
    let spec = &mut manifest["spec"];
    for uplink in spec["uplinks"].as_array_mut().into_iter().flatten() {
        uplink["url"] = json!(format!("http://10.0.2.2:{upstream}/"));
    }
    let s3 = spec["storage"].get("s3").is_some();
    if s3 {
        let s3 = &mut spec["storage"]["s3"];
        // The host's loopback, as slirp4netns shows it to the container.
        s3["endpoint"] = json!(format!("http://10.0.2.2:{}", moto.port));
        s3["forcePathStyle"] = json!(true);
        moto.create_bucket(s3["bucket"].as_str().unwrap(), s3["region"].as_str())
            .await;
    }
    let registry: NpmRegistry = serde_json::from_value(manifest).unwrap_or_else(|e| panic!("{file}: {e}"));
    let desired = operator::resources::build(&registry).unwrap_or_else(|e| panic!("{file}: {e}"));

    let mut secrets = Secrets::new();
    if let Some(auth) = &registry.spec.auth {
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        secrets
            .entry(auth.secret_name.clone())
            .or_default()
            .insert(auth.key.clone(), format!("{USER}:{hash}\n"));
    }
    for uplink in &registry.spec.uplinks {
        if let Some(auth) = &uplink.auth {
            let secret = secrets.entry(auth.secret_ref.name.clone()).or_default();
            secret.insert(auth.secret_ref.key.clone(), "e2e-uplink-token".into());
        }
    }
    // The signing key Secret: a fresh P-256 key, as the sample's comment tells a user to make one.
    let mut signing_public = None;
    if let Some(secret) = registry.spec.signing.as_ref().and_then(|s| s.key_secret.as_ref()) {
        let (private, public) = p256_key_pair();
        secrets
            .entry(secret.name.clone())
            .or_default()
            .insert(secret.key.clone(), private);
        signing_public = Some(public);
    }
    let credentials = if s3 {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ]
    } else {
        Vec::new()
    };
    let pod = PodRun::new(&desired.deployment, &desired.config_map, &secrets, &credentials);
    assert!(
        pod.args.iter().any(|a| a == "--memory"),
        "{file}: every pod has a memory limit (the spec's, or the caches plus the overhead)"
    );

    let name = format!("npmreg-e2e-{}-{}", file.trim_end_matches(".yaml"), std::process::id());
    let running = Running::start(tools, &name, &pod);
    let http = pod.ports["http"];
    let port = running.host_port(http);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let probe_path = |probe: &Option<Probe>| {
        let get = probe.as_ref().and_then(|p| p.http_get.clone()).expect("an HTTP probe");
        assert_eq!(get.port, IntOrString::String("http".into()), "probes use the http port");
        get.path.unwrap()
    };
    let startup = probe_path(&pod.container.startup_probe);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answered = client.get(format!("{base}{startup}")).send().await;
        if answered.as_ref().is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{file}: startup probe {startup} never answered ({answered:?})\n{}",
            running.logs()
        );
        assert!(running.is_running(), "{file}: the container exited\n{}", running.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (what, probe) in [
        ("liveness", &pod.container.liveness_probe),
        ("readiness", &pod.container.readiness_probe),
    ] {
        let path = probe_path(probe);
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{file}: {what} probe {path} answered {}\n{}",
            response.status(),
            running.logs()
        );
    }

    // Log in (the htpasswd user, or a new user where registration is open), publish, install.
    let login = client
        .put(format!("{base}/-/user/org.couchdb.user:{USER}"))
        .json(&json!({"name": USER, "password": PASSWORD, "type": "user", "roles": []}))
        .send()
        .await
        .unwrap();
    let status = login.status();
    let body: Value = login.json().await.unwrap_or_default();
    let token = body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{file}: login answered {status} {body}\n{}", running.logs()))
        .to_string();
    let internal = registry.spec.packages.iter().any(|p| p.pattern == "@internal/*");
    let package = if internal {
        "@internal/e2e-pod".to_string()
    } else {
        "e2e-pod".to_string()
    };
    let work = tempfile::tempdir().unwrap();
    let npmrc = work.path().join("npmrc");
    std::fs::write(
        &npmrc,
        format!("registry={base}/\n//127.0.0.1:{port}/:_authToken={token}\nreplace-registry-host=always\n"),
    )
    .unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(
        source.join("package.json"),
        json!({"name": package, "version": "1.0.0", "main": "index.js"}).to_string(),
    )
    .unwrap();
    std::fs::write(source.join("index.js"), "module.exports = 'served by the pod';\n").unwrap();
    npm(&source, &npmrc, work.path(), &["publish"], file, &running);
    let consumer = work.path().join("consumer");
    std::fs::create_dir(&consumer).unwrap();
    std::fs::write(
        consumer.join("package.json"),
        json!({"name": "consumer", "private": true}).to_string(),
    )
    .unwrap();
    npm(&consumer, &npmrc, work.path(), &["install", &package], file, &running);
    let installed: Value = serde_json::from_str(
        &std::fs::read_to_string(consumer.join("node_modules").join(&package).join("package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(installed["version"], "1.0.0", "{file}");
    // The key the server serves is the Secret's: the mount and `signing.key_file` meet.
    if let Some(public) = &signing_public {
        let keys: Value = client
            .get(format!("{base}/-/npm/v1/keys"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let served = keys["keys"]
            .as_array()
            .and_then(|k| k.iter().find(|k| k["key"] == json!(public)))
            .unwrap_or_else(|| panic!("{file}: the Secret's key is not served: {keys}"));
        assert_eq!(served["keytype"], "ecdsa-sha2-nistp256", "{file}: {served}");
        assert_eq!(
            keys["keys"].as_array().unwrap().len(),
            1,
            "{file}: only the Secret's key: {keys}"
        );
    }
    let logs = running.logs();
    if std::env::var_os("E2E_SHOW_LOGS").is_some() {
        println!("{logs}");
    }
    assert!(
        logs.contains("e2e-pod-1.0.0.tgz\""),
        "{file}: the tarball was downloaded from the pod (not from the Ingress host):\n{logs}"
    );
    // Stored where the sample says: the bucket, or the claim's folder.
    let stored = if s3 {
        let bucket = registry.spec.storage.s3.as_ref().unwrap().bucket.clone();
        moto.list(&bucket).await
    } else {
        walk(&pod.volume("storage"))
    };
    assert!(
        stored.contains("e2e-pod-1.0.0.tgz"),
        "{file}: the tarball is not in its storage: {stored}"
    );
}

/// A new ECDSA P-256 key: its PKCS#8 PEM, and its public key as `/-/npm/v1/keys` lists it (the
/// base64 of the SubjectPublicKeyInfo DER, which is the body of the public PEM).
fn p256_key_pair() -> (String, String) {
    let openssl = |args: &[&str], input: &[u8]| -> String {
        use std::io::Write;
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let ec = openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout"], b"");
    let private = openssl(&["pkcs8", "-topk8", "-nocrypt"], ec.as_bytes());
    let public_pem = openssl(&["pkey", "-pubout"], private.as_bytes());
    let public = public_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    (private, public)
}

/// Every path under `dir`, one a line.
fn walk(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        out.push_str(&format!("{}\n", path.display()));
        if path.is_dir() {
            out.push_str(&walk(&path));
        }
    }
    out
}

fn npm(dir: &Path, npmrc: &Path, work: &Path, args: &[&str], file: &str, running: &Running) {
    let out = Command::new("npm")
        .args(args)
        .arg("--userconfig")
        .arg(npmrc)
        // A cache per command: publish leaves the tarball in its cache, where install would find it.
        .arg("--cache")
        .arg(work.join(format!("npm-cache-{}", args[0])))
        .args(["--no-audit", "--no-fund", "--no-update-notifier"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("npm runs");
    assert!(
        out.status.success(),
        "{file}: npm {} failed:\n{}{}\n--- server\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        running.logs()
    );
}

/// A started container, removed on drop.
struct Running<'a> {
    tools: &'a Tools,
    name: String,
}

impl<'a> Running<'a> {
    fn start(tools: &'a Tools, name: &str, pod: &PodRun) -> Self {
        let mut cmd = tools.podman();
        cmd.args(["run", "--detach", "--name", name])
            // Its own network namespace that can reach the host's loopback (moto) as 10.0.2.2.
            .args(["--network", "slirp4netns:allow_host_loopback=true"]);
        for port in pod.ports.values() {
            cmd.args(["--publish", &format!("127.0.0.1::{port}")]);
        }
        cmd.args(&pod.args).arg(IMAGE);
        cmd.args(pod.container.args.iter().flatten());
        let _ = tools.podman().args(["rm", "--force", name]).output();
        container::run(&mut cmd, &format!("podman run {name}"));
        Running {
            tools,
            name: name.to_string(),
        }
    }

    fn host_port(&self, container_port: i32) -> u16 {
        let out = container::run(
            self.tools
                .podman()
                .args(["port", &self.name, &format!("{container_port}/tcp")]),
            "podman port",
        );
        out.trim().rsplit(':').next().unwrap().parse().expect("a host port")
    }

    fn is_running(&self) -> bool {
        let out = container::run(
            self.tools
                .podman()
                .args(["inspect", "--format", "{{.State.Running}}", &self.name]),
            "podman inspect",
        );
        out.trim() == "true"
    }

    fn logs(&self) -> String {
        let out = self.tools.podman().args(["logs", &self.name]).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- container {} logs\n{}", self.name, self.logs());
        }
        let _ = self
            .tools
            .podman()
            .args(["rm", "--force", "--time", "2", &self.name])
            .output();
    }
}

/// An upstream registry on the host's loopback that has no package (404 for everything), so that
/// proxied rules work as with a real upstream that lacks our private packages. A thread of its
/// own: the test blocks its runtime while npm runs.
fn empty_upstream() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"error":"not found"}"#;
                let response = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    port
}

/// moto's S3 server on a free loopback port (from the peers venv `e2e/test.sh` installs), killed on drop.
struct Moto {
    port: u16,
    child: Child,
}

impl Moto {
    async fn start() -> Option<Moto> {
        let python = repo_root().join("e2e/peers/venv/bin/python");
        if !repo_root().join("e2e/peers/venv/bin/moto_server").exists() {
            let what = "moto is not installed in e2e/peers/venv (`bash e2e/test.sh` installs it)";
            assert!(std::env::var_os("CI").is_none(), "{what}");
            println!("skipped: {what}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .arg(repo_root().join("e2e/peers/moto_s3.py"))
            .args(["127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Moto { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/moto-api/", moto.endpoint())).await.is_err() {
            assert!(Instant::now() < deadline, "moto did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The keys in `bucket` (ListObjectsV2's XML).
    async fn list(&self, bucket: &str) -> String {
        let response = reqwest::Client::new()
            .get(format!("{}/{bucket}?list-type=2", self.endpoint()))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
            )
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// Creates `bucket` in an emptied moto (each sample starts from nothing).
    async fn create_bucket(&self, bucket: &str, region: Option<&str>) {
        let reset = reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.endpoint()))
            .send()
            .await
            .unwrap();
        assert!(reset.status().is_success(), "moto reset: {}", reset.status());
        let body = match region.filter(|r| *r != "us-east-1") {
            Some(region) => format!(
                "<CreateBucketConfiguration><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ),
            None => String::new(),
        };
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint()))
            .header("content-type", "application/octet-stream")
            // moto checks no signature, but wants one to say which region and account.
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=testing/20250101/{}/s3/aws4_request, SignedHeaders=host, Signature=0",
                    region.unwrap_or("us-east-1")
                ),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "create bucket {bucket}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
