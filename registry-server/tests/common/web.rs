//! The web UI as its users reach it: a cookie-keeping HTTP client that fills in forms as a
//! browser would (for checks of every page and rule without a browser), headless Chromium driven
//! by playwright-core (installed in `e2e/peers` by `e2e/test.sh`, Chromium from Debian's
//! `chromium`), and packages with READMEs published by the real npm.

use super::clients::{Client, peer};
use reqwest::Method;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A page fetched by [`Browser`].
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The `value` of the form field `name` (hidden inputs included).
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

/// An HTTP client that keeps cookies and does not follow redirects, like a browser whose every
/// step a test looks at.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    pub base: String,
    pub cookies: RefCell<BTreeMap<String, String>>,
    /// Every `Set-Cookie` the server sent, as sent.
    pub set_cookies: RefCell<Vec<String>>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: RefCell::new(BTreeMap::new()),
            set_cookies: RefCell::new(Vec::new()),
        }
    }

    /// `path` relative to the base URL; extra request headers.
    pub fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], form: Option<&[(&str, &str)]>) -> Page {
        let url = format!("{}{}", self.base, path.trim_start_matches('/'));
        let mut req = self.client.request(method, &url);
        let cookie: Vec<String> = self.cookies.borrow().iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !cookie.is_empty() {
            req = req.header("cookie", cookie.join("; "));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(fields) = form {
            req = req.form(fields);
        }
        let (status, headers, body) = self.rt.block_on(async {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.headers().clone(), r.text().await.unwrap())
        });
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap().to_owned();
            let (pair, attrs) = v.split_once(';').unwrap_or((&v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.borrow_mut().remove(k);
            } else {
                self.cookies.borrow_mut().insert(k.to_owned(), val.to_owned());
            }
            self.set_cookies.borrow_mut().push(v);
        }
        Page { status, headers, body }
    }

    pub fn get(&self, path: &str) -> Page {
        self.request(Method::GET, path, &[], None)
    }

    /// A form post from one of the registry's own pages (its `Origin`).
    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.trim_end_matches('/').to_owned();
        self.request(Method::POST, path, &[("origin", &origin)], Some(form))
    }

    /// Logs in through the login form; the response to the form post.
    pub fn login(&self, user: &str, password: &str) -> Page {
        let form = self.get("-/ui/login");
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.field("csrf");
        self.post(
            "-/ui/login",
            &[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("next", ""),
            ],
        )
    }

    /// Logs out with the form every page's header carries.
    pub fn logout(&self) -> Page {
        let home = self.get("");
        let csrf = home.field("csrf");
        self.post("-/ui/logout", &[("csrf", &csrf)])
    }
}

/// Debian's Chromium, or `None` (with the reason printed) where it is missing outside CI; in CI
/// (`CI` set) a missing Chromium fails the test: `e2e/test.sh` installs it.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    let reason = format!(
        "no Chromium at {} (`apt-get install chromium`, which e2e/test.sh does as root)",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    eprintln!("skipping the browser test: {reason}");
    None
}

/// Where screenshots of the pages are kept: `target/tmp/web-screenshots/<test>`.
pub fn artifacts(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("web-screenshots")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a playwright-core script of `tests/browser/` with a JSON argument; its output.
pub fn playwright(script: &str, chromium: &Path, args: &serde_json::Value) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser").join(script);
    Command::new("node")
        .arg(&script)
        .arg(args.to_string())
        .env("PLAYWRIGHT_CORE", peer("playwright-core"))
        .env("CHROMIUM", chromium)
        .output()
        .unwrap()
}

/// Publishes `manifest` (package.json) with `readme` as its README.md under dist-tag `tag`,
/// with the real npm.
pub fn publish_with_readme(client: &Client, dir: &Path, manifest: &serde_json::Value, readme: &str, tag: &str) {
    let name = manifest["name"].as_str().unwrap();
    let version = manifest["version"].as_str().unwrap();
    let folder = dir.join(format!("pkg-{}-{version}", name.replace(['/', '@'], "_")));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("package.json"),
        serde_json::to_string_pretty(manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(folder.join("README.md"), readme).unwrap();
    std::fs::write(folder.join("index.js"), "module.exports = 1;\n").unwrap();
    client.npm_ok(&folder, &["publish", "--tag", tag]);
}
