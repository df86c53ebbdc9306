//! The real Verdaccio 6 (installed in `e2e/peers` by `e2e/test.sh`) on a free loopback port, killed
//! on drop: the peer whose storage, htpasswd files and tokens this server takes over.

use super::raw_http::http;
use super::{free_port, peer, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Verdaccio {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl Verdaccio {
    /// Starts Verdaccio with `config` (its `config.yaml` without `listen`, which is added), written
    /// into `dir`.
    pub fn start(dir: &Path, config: &str) -> Verdaccio {
        let port = free_port();
        let file = dir.join("verdaccio.yaml");
        std::fs::write(&file, format!("{config}\nlisten: 127.0.0.1:{port}\n")).unwrap();
        let log = dir.join("verdaccio.log");
        let child = Command::new("node")
            .arg(peer("verdaccio/bin/verdaccio"))
            .arg("--config")
            .arg(&file)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/");
        wait_for(&format!("{url}-/ping"), Duration::from_secs(60));
        Verdaccio { child, url, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Registers `user` (or logs in) the way `npm adduser` does; the token Verdaccio issued.
    pub fn login(&self, user: &str, password: &str) -> String {
        let r = http()
            .request(
                reqwest::Method::PUT,
                &format!("{}-/user/org.couchdb.user:{user}", self.url),
            )
            .json(&serde_json::json!({"name": user, "password": password, "type": "user", "roles": []}))
            .send()
            .unwrap();
        assert!(
            r.is_success(),
            "Verdaccio login of {user}: {}\n{}",
            r.text(),
            self.log()
        );
        r.json()["token"].as_str().expect("a token").to_owned()
    }
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
