//! moto's S3 server (installed by `e2e/test.sh` into `e2e/peers/venv`, started through
//! `e2e/peers/moto_s3.py`) on a free loopback port: started per test, killed on drop. Its S3 API takes unsigned path-style requests, which the
//! helpers here use to lay out and inspect buckets.

use super::raw_http::{Res, blocking_client};
use super::{free_port, workspace_root};
use reqwest::Method;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL: &str = "python3 -m venv e2e/peers/venv && e2e/peers/venv/bin/pip install 'moto[s3]==5.2.5' flask flask-cors (or run `bash e2e/test.sh`, which does it)";

pub struct Moto {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// The venv's Python, after checking that moto is installed in it.
fn python() -> PathBuf {
    let venv = workspace_root().join("e2e/peers/venv/bin");
    assert!(
        venv.join("moto_server").exists(),
        "moto (the S3 test peer) is missing from {}: install it with\n  {INSTALL}",
        venv.display()
    );
    venv.join("python")
}

impl Moto {
    pub fn start() -> Moto {
        let mut m = Moto {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("moto.log"))
            .unwrap();
        // moto's server behind a wrapper that makes its conditional writes atomic (see the script).
        let child = Command::new(python())
            .arg(workspace_root().join("e2e/peers/moto_s3.py"))
            .args(["127.0.0.1", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = blocking_client();
        while !http
            .get(&format!("{}/moto-api/", self.endpoint()))
            .send()
            .is_ok_and(|r| r.is_success())
        {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "moto did not start on port {} ({exited:?}):\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its in-memory buckets are lost).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn request(&self, method: Method, path: &str, body: Vec<u8>) -> Res {
        blocking_client()
            .request(method, &format!("{}/{path}", self.endpoint()))
            // Not a form type: moto drops form-encoded bodies.
            .header("content-type", "application/octet-stream")
            // moto checks no signature, but refuses private objects to anonymous requests.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body)
            .send()
            .unwrap()
    }

    pub fn create_bucket(&self, bucket: &str) {
        let r = self.request(Method::PUT, bucket, Vec::new());
        assert!(r.is_success(), "create bucket {bucket}: {}", r.text());
    }

    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        let r = self.request(Method::PUT, &format!("{bucket}/{key}"), body.into());
        assert!(r.is_success(), "PUT {bucket}/{key}: {}", r.text());
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let r = self.request(Method::GET, &format!("{bucket}/{key}"), Vec::new());
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("GET {bucket}/{key}: {s} {}", r.text()),
        }
    }

    /// The response headers of a HEAD, `None` when the object is absent.
    pub fn head(&self, bucket: &str, key: &str) -> Option<reqwest::header::HeaderMap> {
        let r = self.request(Method::HEAD, &format!("{bucket}/{key}"), Vec::new());
        match r.status {
            200 => Some(r.headers),
            404 => None,
            s => panic!("HEAD {bucket}/{key}: {s}"),
        }
    }

    /// Every key in `bucket` under `prefix` (first page of 1000 is plenty for tests).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let r = self.request(
            Method::GET,
            &format!("{bucket}?list-type=2&prefix={prefix}"),
            Vec::new(),
        );
        assert!(r.is_success(), "list {bucket}: {}", r.text());
        let xml = r.text();
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server config with open access rules on `bucket` of `moto`, plus `extra` plugin keys.
pub fn s3_config(moto: &Moto, bucket: &str, key_prefix: &str, extra: &str) -> String {
    format!(
        "{open}store:\n  aws-s3-storage:\n    bucket: {bucket}\n    keyPrefix: '{key_prefix}'\n    \
         region: us-east-1\n    endpoint: {endpoint}\n    s3ForcePathStyle: true\n{extra}",
        open = super::ANYONE_PUBLISHES,
        endpoint = moto.endpoint()
    )
}

/// Environment for a server talking to moto: static test credentials, nothing from the machine.
pub const S3_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials"),
];
