//! Test harness: the real `npm-registry-server` binary on a loopback port, and real npm clients
//! (npm, pnpm, yarn 1, yarn 4, bun, Verdaccio) and moto (S3) installed in `e2e/peers` by `e2e/test.sh`.
#![allow(dead_code, unused_imports)]

pub mod moto;
pub mod round_trip;
pub mod upstream;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha512};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn peers_dir() -> PathBuf {
    std::env::var_os("NPM_REGISTRY_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("e2e/peers/node_modules"))
}

/// A JS peer's entry point; a missing peer fails the test with the command that installs it.
pub fn peer(rel: &str) -> PathBuf {
    let p = peers_dir().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `e2e/test.sh` (or `npm ci --prefix e2e/peers`) to install the test peers",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for(url: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let client = reqwest::blocking_client();
    loop {
        if client.get(url).send().is_ok_and(|r| r.is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not come up within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Tiny blocking HTTP helpers over reqwest's async client, for tests.
pub mod reqwest {
    pub use ::reqwest::*;

    pub struct Blocking {
        rt: tokio::runtime::Runtime,
        client: ::reqwest::Client,
    }

    pub struct Req<'a> {
        b: &'a Blocking,
        req: ::reqwest::RequestBuilder,
    }

    #[derive(Debug)]
    pub struct Res {
        pub status: u16,
        pub headers: ::reqwest::header::HeaderMap,
        pub body: Vec<u8>,
    }

    impl Res {
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
        }
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
        pub fn is_success(&self) -> bool {
            (200..300).contains(&self.status)
        }
    }

    pub fn blocking_client() -> Blocking {
        Blocking {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: ::reqwest::Client::new(),
        }
    }

    impl Blocking {
        pub fn get(&self, url: &str) -> Req<'_> {
            self.request(Method::GET, url)
        }
        pub fn request(&self, m: Method, url: &str) -> Req<'_> {
            Req {
                b: self,
                req: self.client.request(m, url),
            }
        }
    }

    impl Req<'_> {
        pub fn header(self, k: &str, v: &str) -> Self {
            Req {
                b: self.b,
                req: self.req.header(k, v),
            }
        }
        pub fn body(self, body: impl Into<Body>) -> Self {
            Req {
                b: self.b,
                req: self.req.body(body),
            }
        }
        pub fn json(self, v: &serde_json::Value) -> Self {
            self.header("content-type", "application/json")
                .body(serde_json::to_vec(v).unwrap())
        }
        pub fn send(self) -> Result<Res> {
            self.b.rt.block_on(async {
                let r = self.req.send().await?;
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let body = r.bytes().await?.to_vec();
                Ok(Res { status, headers, body })
            })
        }
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

/// An isolated npm/pnpm/yarn user: own home, `.npmrc`, caches; nothing from the machine's config.
pub struct Client {
    pub home: tempfile::TempDir,
    pub registry: String,
    pub token: std::cell::RefCell<String>,
}

/// Logs in (registering if needed) with the CouchDB request `npm login` sends; returns the token.
pub fn login(registry: &str, user: &str, password: &str) -> Result<String, Box<reqwest::Res>> {
    let r = http()
        .request(reqwest::Method::PUT, &format!("{registry}-/user/org.couchdb.user:{user}"))
        .json(&json!({"_id": format!("org.couchdb.user:{user}"), "name": user, "password": password, "type": "user", "roles": []}))
        .send()
        .unwrap();
    if r.is_success() {
        Ok(r.json()["token"].as_str().expect("a token").to_owned())
    } else {
        Err(Box::new(r))
    }
}

impl Client {
    /// A client logged in as a newly registered user.
    pub fn new(registry: &str) -> Client {
        let user = format!("tester{:x}", rand::random::<u32>());
        let token = login(registry, &user, "test-password").unwrap_or_else(|r| panic!("login: {}", r.text()));
        Self::with_token(registry, &token)
    }

    pub fn with_token(registry: &str, token: &str) -> Client {
        let c = Client {
            home: tempfile::tempdir().unwrap(),
            registry: registry.to_owned(),
            token: std::cell::RefCell::new(String::new()),
        };
        c.set_token(token);
        c
    }

    /// A client with no credentials at all.
    pub fn anonymous(registry: &str) -> Client {
        let c = Self::with_token(registry, "");
        std::fs::write(c.npmrc(), format!("registry={registry}\n")).unwrap();
        c
    }

    pub fn set_token(&self, token: &str) {
        let host = self.registry.trim_start_matches("http:").trim_end_matches('/');
        std::fs::write(
            self.npmrc(),
            format!("registry={}\n{host}/:_authToken={token}\n", self.registry),
        )
        .unwrap();
        *self.token.borrow_mut() = token.to_owned();
    }

    pub fn npmrc(&self) -> PathBuf {
        self.home.path().join(".npmrc")
    }

    fn env(&self, cmd: &mut Command) {
        let h = self.home.path();
        cmd.env("HOME", h)
            .env("NPM_CONFIG_USERCONFIG", h.join(".npmrc"))
            .env("NPM_CONFIG_GLOBALCONFIG", h.join("global-npmrc"))
            .env("npm_config_cache", h.join("npm-cache"))
            .env("npm_config_registry", &self.registry)
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_update_notifier", "false")
            .env("XDG_CACHE_HOME", h.join("xdg-cache"))
            .env("XDG_DATA_HOME", h.join("xdg-data"))
            .env("XDG_CONFIG_HOME", h.join("xdg-config"))
            .env("YARN_CACHE_FOLDER", h.join("yarn1-cache"))
            .env("COREPACK_ENABLE_STRICT", "0")
            .env_remove("npm_config_prefix");
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, cwd: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd).stdin(Stdio::null());
        self.env(&mut cmd);
        cmd
    }

    pub fn npm(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command("npm", cwd).args(args).output().unwrap()
    }

    /// `npm login` with the real CLI, answering its prompts through a pseudo-terminal.
    pub fn npm_login(&self, user: &str, password: &str) -> Output {
        let out = self.in_tty(user, password, &["npm", "login"]);
        if out.status.success() {
            let rc = std::fs::read_to_string(self.npmrc()).unwrap();
            let token = rc
                .lines()
                .find_map(|l| l.split_once(":_authToken="))
                .map(|(_, t)| t.to_owned());
            *self.token.borrow_mut() = token.unwrap_or_default();
        }
        out
    }

    /// npm 10 (which still sends `readonly` for `npm token create --read-only`) in a pseudo-terminal
    /// that answers its password prompt.
    pub fn npm10_tty(&self, password: &str, args: &[&str]) -> Output {
        let npm10 = peer("npm10/bin/npm-cli.js");
        let mut cmd = vec!["node", npm10.to_str().unwrap()];
        cmd.extend_from_slice(args);
        self.in_tty("unused", password, &cmd)
    }

    /// Runs `cmd` in a pseudo-terminal that answers username and password prompts.
    fn in_tty(&self, user: &str, password: &str, cmd: &[&str]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/pty_login.py");
        self.command("python3", self.home.path())
            .arg(script)
            .args([user, password, "--"])
            .args(cmd)
            .output()
            .unwrap()
    }

    /// What `console.log(require(module))` prints in `dir`, trimmed: proof that an installed
    /// package really loads.
    pub fn require(&self, dir: &Path, module: &str) -> String {
        let script = format!("console.log(require('{module}'))");
        let out = self.command("node", dir).args(["-e", &script]).output().unwrap();
        ok(out, &format!("node -e {script}")).trim().to_owned()
    }

    pub fn npm_ok(&self, cwd: &Path, args: &[&str]) -> String {
        ok(self.npm(cwd, args), &format!("npm {}", args.join(" ")))
    }

    pub fn pnpm_ok(&self, cwd: &Path, args: &[&str]) -> String {
        let mut cmd = self.command(peer(".bin/pnpm"), cwd);
        cmd.args(args)
            .arg("--store-dir")
            .arg(self.home.path().join("pnpm-store"));
        ok(cmd.output().unwrap(), &format!("pnpm {}", args.join(" ")))
    }

    pub fn yarn1_ok(&self, cwd: &Path, args: &[&str]) -> String {
        std::fs::write(cwd.join(".yarnrc"), format!("registry \"{}\"\n", self.registry)).unwrap();
        // Not `.bin/yarn`: yarn 4's package claims that name too.
        let mut cmd = self.command("node", cwd);
        cmd.arg(peer("yarn/bin/yarn.js"))
            .args(args)
            .args(["--non-interactive", "--no-progress"]);
        ok(cmd.output().unwrap(), &format!("yarn1 {}", args.join(" ")))
    }

    /// bun, with its registry and token in the project's `bunfig.toml`.
    pub fn bun_ok(&self, cwd: &Path, args: &[&str]) -> String {
        let rc = format!(
            "[install]\nregistry = {{ url = \"{}\", token = \"{}\" }}\n",
            self.registry,
            self.token.borrow()
        );
        std::fs::write(cwd.join("bunfig.toml"), rc).unwrap();
        let mut cmd = self.command(peer(".bin/bun"), cwd);
        cmd.args(args)
            .env("BUN_INSTALL_CACHE_DIR", self.home.path().join("bun-cache"))
            .env("DO_NOT_TRACK", "1");
        ok(cmd.output().unwrap(), &format!("bun {}", args.join(" ")))
    }

    pub fn yarn4_ok(&self, cwd: &Path, args: &[&str]) -> String {
        let rc = format!(
            "npmRegistryServer: \"{}\"\nnpmAuthToken: \"{}\"\nunsafeHttpWhitelist:\n  - \"127.0.0.1\"\n\
             npmMinimalAgeGate: 0\nnodeLinker: node-modules\nenableGlobalCache: false\n\
             enableTelemetry: false\nenableImmutableInstalls: false\n",
            self.registry.trim_end_matches('/'),
            self.token.borrow()
        );
        std::fs::write(cwd.join(".yarnrc.yml"), rc).unwrap();
        let mut cmd = self.command("node", cwd);
        cmd.arg(peer("@yarnpkg/cli-dist/bin/yarn.js")).args(args);
        ok(cmd.output().unwrap(), &format!("yarn4 {}", args.join(" ")))
    }
}

/// Asserts a command succeeded and returns its stdout; prints everything when it did not.
pub fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`{what}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// Writes a package folder with `package.json` and an `index.js`.
pub fn write_package(dir: &Path, name: &str, version: &str, deps: &[(&str, &str)], code: &str) -> PathBuf {
    let folder = dir.join(format!("src-{}-{version}", name.replace('/', "-").replace('@', "")));
    std::fs::create_dir_all(&folder).unwrap();
    let deps: serde_json::Map<String, Value> = deps.iter().map(|(n, v)| ((*n).to_owned(), json!(v))).collect();
    let manifest = json!({
        "name": name, "version": version, "main": "index.js", "license": "MIT",
        "description": format!("{name} test package"), "dependencies": deps,
    });
    std::fs::write(
        folder.join("package.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(folder.join("index.js"), code).unwrap();
    folder
}

/// A fresh consumer project folder.
pub fn project(dir: &Path, label: &str) -> PathBuf {
    let p = dir.join(label);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("package.json"),
        format!("{{\"name\":\"{label}\",\"version\":\"1.0.0\",\"private\":true}}"),
    )
    .unwrap();
    p
}

/// An npm-shaped publish body for `name@version` with `tarball` as its (opaque) tarball bytes.
pub fn publish_body(name: &str, version: &str, tarball: &[u8]) -> Value {
    let sha1 = hex::encode(Sha1::digest(tarball));
    let sri = format!("sha512-{}", STANDARD.encode(Sha512::digest(tarball)));
    let file = format!("{name}-{version}.tgz");
    json!({
        "_id": name, "name": name, "description": "test",
        "dist-tags": {"latest": version},
        "versions": {version: {
            "name": name, "version": version, "description": "test",
            "dist": {"integrity": sri, "shasum": sha1, "tarball": format!("http://ignored.example/{name}/-/{file}")}
        }},
        "_attachments": {file: {"content_type": "application/octet-stream", "data": STANDARD.encode(tarball), "length": tarball.len()}}
    })
}

/// Every file under `dir` (relative paths, sorted), to prove a request wrote nothing.
pub fn snapshot(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let meta = std::fs::metadata(&p).unwrap();
                out.push(format!("{} {}", p.strip_prefix(root).unwrap().display(), meta.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub use reqwest::blocking_client as http;

/// `len` bytes that do not compress: a stand-in for a large tarball.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A GET over a raw socket, returned as soon as the response head and the first body bytes have
/// arrived, so that a test can act while the rest is still in flight.
pub struct Download {
    socket: std::net::TcpStream,
    pub status: u16,
    pub content_length: usize,
    /// The body bytes read so far.
    pub body: Vec<u8>,
}

impl Download {
    pub fn start(port: u16, path: &str) -> Download {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A bound, not a timing assertion: a server that never sends fails instead of hanging.
        socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = socket.read(&mut chunk).expect("the response starts");
            assert!(
                n > 0,
                "connection closed before the body: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                && buf.len() > end + 4
            {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                let content_length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .expect("a content-length");
                return Download {
                    socket,
                    status,
                    content_length,
                    body: buf[end + 4..].to_vec(),
                };
            }
        }
    }

    /// Reads until the server closes the connection or breaks it off; the body received.
    pub fn finish(mut self) -> Vec<u8> {
        use std::io::Read;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.socket.read(&mut chunk) {
                Ok(0) | Err(_) => return self.body,
                Ok(n) => self.body.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// One HTTP/1.1 request over a raw socket, with the path sent exactly as given (HTTP clients
/// normalize `..` and `%2e%2e` away, attackers do not).
pub fn raw_request(port: u16, method: &str, path: &str, body: &[u8]) -> reqwest::Res {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading everything; a reset then is fine.
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = ::reqwest::header::HeaderMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.append(
                ::reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
    }
    let mut body = buf[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|v| v == "chunked") {
        body = dechunk(&body);
    }
    reqwest::Res { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
}
