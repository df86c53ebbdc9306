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
        Self::start_on_port(|_| config.to_owned(), storage, env)
    }

    /// Like [`Server::start`], with `public_url` the address it listens on (what trusted
    /// publishing requires).
    pub fn start_public(config: &str, storage: &Path) -> Server {
        Self::start_on_port(
            |port| format!("public_url: http://127.0.0.1:{port}/\n{config}"),
            storage,
            &[],
        )
    }

    /// Starts on a free port with the config `config(port)` gives.
    fn start_on_port(config: impl FnOnce(u16) -> String, storage: &Path, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yaml");
        let port = free_port();
        std::fs::write(&config_path, config(port)).unwrap();
        let args = [
            "--config".into(),
            config_path.into_os_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}").into(),
            "--storage".into(),
            storage.as_os_str().to_owned(),
        ];
        Self::spawn(dir, port, &args, None, storage, env)
    }

    /// The binary with `args` as they are (no config unless they give one) plus `--listen` on a
    /// free port, run in `cwd`; the machine's AWS settings are never passed on.
    pub fn start_args(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec!["--listen", listen.as_str()];
        all.extend_from_slice(args);
        Self::start_on(port, &all, cwd, env)
    }

    /// The binary with `args` as they are, which must make it listen on 127.0.0.1:`port`.
    pub fn start_on(port: u16, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Server {
        let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        Self::spawn(
            tempfile::tempdir().unwrap(),
            port,
            &args,
            Some(cwd),
            &cwd.join("storage"),
            env,
        )
    }

    fn command(env: &[(&str, &str)]) -> Command {
        // `SERVER_BIN` runs the tests against another build (e.g. the release binary, to measure it).
        let bin = std::env::var_os("SERVER_BIN").unwrap_or(env!("CARGO_BIN_EXE_npm-registry-server").into());
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "info").envs(env.iter().copied());
        cmd
    }

    fn spawn(
        dir: tempfile::TempDir,
        port: u16,
        args: &[std::ffi::OsString],
        cwd: Option<&Path>,
        storage: &Path,
        env: &[(&str, &str)],
    ) -> Server {
        let log = dir.path().join("server.log");
        let mut cmd = Self::command(env);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let child = cmd
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server {
            port,
            storage: storage.to_owned(),
            child,
            log,
            _dir: dir,
        };
        let url = format!("{}-/ping", s.url());
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = blocking_client();
        while !client.get(&url).send().is_ok_and(|r| r.is_success()) {
            assert!(s.is_running(), "the server exited at start:\n{}", s.log());
            assert!(Instant::now() < deadline, "{url} did not come up:\n{}", s.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// Runs the server with `config`, which it must refuse: returns what it printed (its exit
    /// status must be a failure, within 20 s).
    pub fn refused(config: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).unwrap();
        let listen = format!("127.0.0.1:{}", free_port());
        Self::refused_args(&["--config", config_path.to_str().unwrap(), "--listen", &listen], &[])
    }

    /// Runs the server with `args`, which it must refuse: returns what it printed.
    pub fn refused_args(args: &[&str], env: &[(&str, &str)]) -> String {
        let mut child = Self::command(env)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the server started with what it should refuse: {args:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!status.success(), "exited successfully with {args:?}:\n{printed}");
        printed
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
