//! The real `npm-registry-server` binary on a free loopback port, killed on drop, and the configs
//! the tests start it with.

use super::raw_http::blocking_client;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for(url: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let client = blocking_client();
    loop {
        if client.get(url).send().is_ok_and(|r| r.is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not come up within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `npm-registry-server`, killed on drop.
pub struct Server {
    pub port: u16,
    pub storage: PathBuf,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server with `config` (YAML) on `storage`.
    pub fn start(config: &str, storage: &Path) -> Server {
        Self::start_env(config, storage, &[])
    }

    /// Like [`Server::start`], with extra environment variables; the machine's AWS settings are
    /// never passed on.
    pub fn start_env(config: &str, storage: &Path, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let log = dir.path().join("server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_npm-registry-server"));
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--storage")
            .arg(storage)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let s = Server {
            port,
            storage: storage.to_owned(),
            child,
            log,
            _dir: dir,
        };
        wait_for(&format!("{}-/ping", s.url()), Duration::from_secs(20));
        s
    }

    /// Verdaccio's default rules (anyone reads and registers, users publish) on `storage`.
    pub fn start_default(storage: &Path) -> Server {
        Self::start(OPEN_CONFIG, storage)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `VmRSS`/`VmHWM`-style line of `/proc/<pid>/status`, in KiB.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM, as Kubernetes does when it stops a pod.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// The exit status, once the process has ended within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rules for storage-level tests that publish over plain HTTP without logging in.
pub const ANYONE_PUBLISHES: &str = "
packages:
  '**': { access: $all, publish: $all, unpublish: $all }
";

pub const OPEN_CONFIG: &str = "
packages:
  '@*/*': { access: $all, publish: $authenticated, unpublish: $authenticated }
  '**': { access: $all, publish: $authenticated, unpublish: $authenticated }
log: { type: stdout, format: pretty, level: info }
";
