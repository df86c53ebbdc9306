//! The real npm clients (npm, pnpm, yarn 1, yarn 4, bun), installed in `e2e/peers` by
//! `e2e/test.sh`, each run as an isolated user with its own home, config and caches.

use super::raw_http::{Res, http};
use super::workspace_root;
use reqwest::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// An isolated npm/pnpm/yarn user: own home, `.npmrc`, caches; nothing from the machine's config.
pub struct Client {
    pub home: tempfile::TempDir,
    pub registry: String,
    pub token: std::cell::RefCell<String>,
}

/// Logs in (registering if needed) with the CouchDB request `npm login` sends; returns the token.
pub fn login(registry: &str, user: &str, password: &str) -> Result<String, Box<Res>> {
    let r = http()
        .request(Method::PUT, &format!("{registry}-/user/org.couchdb.user:{user}"))
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

    /// `npm audit signatures`; offline, npm's first step (asking Sigstore's public TUF repository
    /// whether it lists this registry) is answered as for an unlisted registry by
    /// `tuf_offline.js`, so that npm goes on to this registry's `/-/npm/v1/keys` as it would online.
    pub fn npm_audit_signatures(&self, cwd: &Path) -> Output {
        let shim = workspace_root().join("registry-server/tests/common/tuf_offline.js");
        self.command("npm", cwd)
            .args(["audit", "signatures"])
            .env("NODE_OPTIONS", format!("--require {}", shim.display()))
            .env("npm_config_fetch_retries", "0")
            .output()
            .unwrap()
    }

    /// `npm login` with the real CLI, answering its prompts through a pseudo-terminal.
    pub fn npm_login(&self, user: &str, password: &str) -> Output {
        self.tty_auth(user, password, "login")
    }

    /// `npm adduser` (which also asks for an email: `test@example.com`), in a pseudo-terminal.
    pub fn npm_adduser(&self, user: &str, password: &str) -> Output {
        self.tty_auth(user, password, "adduser")
    }

    /// The username-and-password flow: npm 11 defaults to the web flow, which this registry
    /// offers too (`tests/browser.rs` drives that one through a browser).
    fn tty_auth(&self, user: &str, password: &str, command: &str) -> Output {
        let out = self.in_tty(user, password, &["npm", command, "--auth-type=legacy"]);
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
