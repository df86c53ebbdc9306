//! The web UI against the real server, through a cookie-keeping HTTP client: every page respects
//! every access rule, login and logout through the form (cookies, CSRF, the API's login limits),
//! npm's web login across two replicas, `web.enable: false`, Verdaccio's URLs. What a person sees
//! in a real browser is `browser.rs`.

mod common;

use common::web::{Browser, publish_with_readme};
use common::*;
use reqwest::Method;
use serde_json::json;
use std::path::Path;

fn write_htpasswd(path: &Path, users: &[(&str, &str)]) {
    let text: String = users
        .iter()
        .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap()))
        .collect();
    std::fs::write(path, text).unwrap();
}

/// `open-lib` for everyone; `@team/tool` for logged-in users; `@staff/secret` for staff (carol).
/// Both private packages depend on `open-lib`.
fn rules_config(htpasswd: &Path) -> String {
    format!(
        // The tests play the TLS-ending proxy from loopback (X-Forwarded-Proto: https).
        "auth:\n  htpasswd:\n    file: {}\n\
         server:\n  trustProxy: loopback\n\
         groups:\n  staff: [carol]\n\
         packages:\n\
         \x20 '@staff/*': {{ access: staff, publish: staff }}\n\
         \x20 '@team/*': {{ access: $authenticated, publish: $authenticated }}\n\
         \x20 '**': {{ access: $all, publish: $authenticated }}\n",
        htpasswd.display()
    )
}

/// A server with these htpasswd users and [`rules_config`]; its work folder.
fn start_with_users(users: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let work = tempfile::tempdir().unwrap();
    let htpasswd = work.path().join("htpasswd");
    write_htpasswd(&htpasswd, users);
    let server = Server::start(&rules_config(&htpasswd), &work.path().join("storage"));
    (work, server)
}

fn seed(url: &str, w: &Path, carol_password: &str) {
    let carol = Client::anonymous(url);
    carol.set_token(&login(url, "carol", carol_password).unwrap());
    let open = json!({"name": "open-lib", "version": "1.0.0", "description": "an open library", "license": "MIT"});
    publish_with_readme(&carol, w, &open, "# open-lib\n", "latest");
    for (name, description) in [("@team/tool", "the team's tool"), ("@staff/secret", "staff only")] {
        let m = json!({"name": name, "version": "1.0.0", "description": description,
                       "dependencies": {"open-lib": "^1.0.0"}});
        publish_with_readme(&carol, w, &m, &format!("# {name}\n"), "latest");
    }
}

const HIDDEN_FROM_ANONYMOUS: [&str; 2] = ["@team/tool", "@staff/secret"];

#[test]
fn every_page_respects_every_access_rule() {
    let (work, server) = start_with_users(&[("alice", "alice-pw-1"), ("carol", "carol-pw-2")]);
    let w = work.path();
    let url = server.url();
    seed(&url, w, "carol-pw-2");

    let anonymous = Browser::new(&url);
    let alice = Browser::new(&url);
    assert_eq!(alice.login("alice", "alice-pw-1").status, 303);
    let carol = Browser::new(&url);
    assert_eq!(carol.login("carol", "carol-pw-2").status, 303);

    // (viewer, packages it may read, packages it may not)
    let views: [(&str, &Browser, &[&str], &[&str]); 3] = [
        ("anonymous", &anonymous, &["open-lib"], &HIDDEN_FROM_ANONYMOUS),
        ("alice", &alice, &["open-lib", "@team/tool"], &["@staff/secret"]),
        ("carol", &carol, &["open-lib", "@team/tool", "@staff/secret"], &[]),
    ];
    for (who, b, visible, hidden) in views {
        // Every list: home, search results, suggestions, and open-lib's dependents.
        let lists = [
            b.get(""),
            b.get("-/ui/search?q=o"),
            b.get("-/ui/search?q=keywords:"),
            b.get("-/ui/search?q=secret"),
            b.get("-/ui/search?q=tool"),
            b.get("-/ui/suggest?q=o"),
            b.get("-/ui/suggest?q=secret"),
            b.get("-/ui/package/open-lib"),
        ];
        for page in &lists {
            assert_eq!(page.status, 200, "{who}: {}", page.body);
            for h in hidden {
                assert!(!page.body.contains(h), "{who} sees {h}:\n{}", page.body);
            }
        }
        let home = &lists[0].body;
        for v in visible {
            assert!(
                home.contains(&format!("-/ui/package/{v}\"")),
                "{who} misses {v} on the home page:\n{home}"
            );
            let page = b.get(&format!("-/ui/package/{v}"));
            assert_eq!(page.status, 200, "{who} on {v}: {}", page.body);
            assert!(
                page.body.contains(&format!("<h1 id=\"package-h\">{v}</h1>")),
                "{who} on {v}: {}",
                page.body
            );
        }
        assert!(
            home.contains(&format!("Packages <span class=\"count\">{}</span>", visible.len())),
            "{home}"
        );
        let dependents = lists[7].body.split("id=\"dependents\"").nth(1).unwrap().to_owned();
        for d in visible.iter().filter(|v| v.starts_with('@')) {
            assert!(
                dependents.contains(d),
                "{who}: {d} is a dependent of open-lib:\n{dependents}"
            );
        }
        for h in hidden {
            let page = b.get(&format!("-/ui/package/{h}"));
            let expected = if who == "anonymous" { 401 } else { 404 };
            assert_eq!(page.status, expected, "{who} on {h}: {}", page.body);
            assert!(!page.body.contains("1.0.0"), "{who} learns about {h}:\n{}", page.body);
            let tarball = b.get(&format!("{h}/-/{}-1.0.0.tgz", h.rsplit('/').next().unwrap()));
            assert!(
                tarball.status == 401 || tarball.status == 404,
                "a session cookie is no API credential"
            );
        }
    }
    // A browser opening a package's API URL lands on its page; npm still gets JSON.
    let r = anonymous.request(
        Method::GET,
        "open-lib",
        &[("accept", "text/html,application/xhtml+xml")],
        None,
    );
    assert_eq!((r.status, r.location()), (303, "/-/ui/package/open-lib"));
    let r = anonymous.request(Method::GET, "open-lib", &[("accept", "application/json")], None);
    assert!(r.status == 200 && r.body.starts_with('{'), "{}", r.body);
}

#[test]
fn login_and_logout_through_the_form() {
    let (_work, server) = start_with_users(&[("alice", "alice-pw-1"), ("dave", "dave-pw-3")]);
    let url = server.url();
    // A user who registered with `npm adduser` (kept in storage) logs in too.
    login(&url, "reggie", "reggie-pw-4").unwrap();

    let b = Browser::new(&url);
    let form = b.get("-/ui/login?next=-/ui/package/open-lib");
    assert_eq!(form.status, 200);
    let nonce_cookie = b.set_cookies.borrow().last().cloned().unwrap();
    assert!(
        nonce_cookie.starts_with("npmreg_csrf=")
            && nonce_cookie.contains("HttpOnly")
            && nonce_cookie.contains("SameSite=Lax"),
        "{nonce_cookie}"
    );
    let csrf = form.field("csrf");
    assert_eq!(form.field("next"), "-/ui/package/open-lib");

    // Wrong password: the form again, 401, nothing set.
    let r = b.post(
        "-/ui/login",
        &[("username", "alice"), ("password", "nope"), ("csrf", &csrf)],
    );
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Incorrect user name or password"), "{}", r.body);
    assert!(!b.cookies.borrow().contains_key("npmreg_session"));
    // No token, a token for another browser, or another origin: refused.
    let r = b.post(
        "-/ui/login",
        &[("username", "alice"), ("password", "alice-pw-1"), ("csrf", "")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let other = Browser::new(&url);
    other.get("-/ui/login");
    let r = other.post(
        "-/ui/login",
        &[("username", "alice"), ("password", "alice-pw-1"), ("csrf", &csrf)],
    );
    assert_eq!(r.status, 403, "a token bound to another browser's nonce");
    let r = b.request(
        Method::POST,
        "-/ui/login",
        &[("origin", "http://evil.example")],
        Some(&[("username", "alice"), ("password", "alice-pw-1"), ("csrf", &csrf)]),
    );
    assert_eq!(r.status, 403, "cross-site post");
    assert!(!b.cookies.borrow().contains_key("npmreg_session"));

    // The right password: a session cookie, back to the page asked for.
    let r = b.post(
        "-/ui/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw-1"),
            ("csrf", &csrf),
            ("next", "-/ui/package/open-lib"),
        ],
    );
    assert_eq!((r.status, r.location()), (303, "/-/ui/package/open-lib"), "{}", r.body);
    let session = b.set_cookies.borrow().last().cloned().unwrap();
    assert!(
        session.starts_with("npmreg_session=") && session.contains("HttpOnly"),
        "{session}"
    );
    assert!(
        session.contains("SameSite=Lax") && session.contains("Max-Age=") && !session.contains("Secure"),
        "{session}"
    );
    let home = b.get("");
    assert!(
        home.body
            .contains("<span class=\"user\" title=\"Logged in\">alice</span>"),
        "{}",
        home.body
    );
    // An open redirect is not offered.
    let r = b.get("-/ui/login?next=//evil.example/");
    assert_eq!((r.status, r.location()), (303, "/"));

    // Logout ends the session in storage: the old cookie is worth nothing afterwards.
    let stolen = b.cookies.borrow()["npmreg_session"].clone();
    let r = b.post("-/ui/logout", &[("csrf", "forged")]);
    assert_eq!(r.status, 403, "logout needs the token too");
    let r = b.logout();
    assert_eq!((r.status, r.location()), (303, "/"));
    assert!(!b.cookies.borrow().contains_key("npmreg_session"));
    let replay = Browser::new(&url);
    replay.cookies.borrow_mut().insert("npmreg_session".into(), stolen);
    assert!(replay.get("").body.contains(">Log in</a>"));

    // A registered (not htpasswd) user; behind a TLS proxy the cookie is Secure.
    let tls = Browser::new(&url);
    let form = tls.request(Method::GET, "-/ui/login", &[("x-forwarded-proto", "https")], None);
    let csrf = form.field("csrf");
    let r = tls.request(
        Method::POST,
        "-/ui/login",
        &[
            ("x-forwarded-proto", "https"),
            ("origin", url.replace("http:", "https:").trim_end_matches('/')),
        ],
        Some(&[("username", "reggie"), ("password", "reggie-pw-4"), ("csrf", &csrf)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(tls.set_cookies.borrow().last().unwrap().contains("; Secure"));

    // The API's failed-login limit applies to the form: nine bad API logins lock dave out here.
    for _ in 0..9 {
        assert!(login(&url, "dave", "wrong-password").is_err());
    }
    let b = Browser::new(&url);
    let r = b.login("dave", "dave-pw-3");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("too many failed logins"), "{}", r.body);
}

/// npm's side (`POST /-/v1/login`, polling the done URL) on one replica, the browser's approval
/// on another, both on one storage folder.
#[test]
fn web_login_across_two_replicas() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let htpasswd = w.join("htpasswd");
    write_htpasswd(&htpasswd, &[("alice", "alice-pw-1")]);
    let storage = w.join("storage");
    let a = Server::start(&rules_config(&htpasswd), &storage);
    let b = Server::start(&rules_config(&htpasswd), &storage);
    let api = http();
    let started = api
        .request(Method::POST, &format!("{}-/v1/login", a.url()))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(started.status, 200, "{}", started.text());
    let login_url = started.json()["loginUrl"].as_str().unwrap().to_owned();
    let done_url = started.json()["doneUrl"].as_str().unwrap().to_owned();
    assert!(
        login_url.starts_with(&format!("{}-/ui/login?cli=", a.url())),
        "{login_url}"
    );
    let pending = api.get(&done_url).send().unwrap();
    assert_eq!(pending.status, 202);
    assert_eq!(pending.headers["retry-after"], "1");

    // The browser reaches replica b: logs in there, which approves.
    let on_b = login_url.replace(&a.url(), "");
    let browser = Browser::new(&b.url());
    let form = browser.get(&on_b);
    assert!(form.body.contains("Log in to npm on the command line"), "{}", form.body);
    let r = browser.post(
        "-/ui/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw-1"),
            ("csrf", &form.field("csrf")),
            ("cli", &form.field("cli")),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("now logged in as alice"), "{}", r.body);

    // npm's next poll on a gets the token, once.
    let done = api.get(&done_url).send().unwrap();
    assert_eq!(done.status, 200, "{}", done.text());
    let token = done.json()["token"].as_str().unwrap().to_owned();
    let whoami = api
        .get(&format!("{}-/whoami", a.url()))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .unwrap();
    assert_eq!(whoami.json()["username"], "alice");
    assert_eq!(api.get(&done_url).send().unwrap().status, 404, "single use");
    assert_eq!(browser.get(&on_b).status, 410, "the link is used up");

    // The session made on b is known on a, and a form rendered by a is accepted by b (one
    // signing key in storage).
    let on_a = Browser::new(&a.url());
    *on_a.cookies.borrow_mut() = browser.cookies.borrow().clone();
    let home = on_a.get("");
    assert!(home.body.contains("title=\"Logged in\">alice</span>"), "{}", home.body);
    let from_a = home.field("csrf");
    let elsewhere = Browser::new(&b.url());
    *elsewhere.cookies.borrow_mut() = on_a.cookies.borrow().clone();
    let origin = a.url().trim_end_matches('/').to_owned();
    let r = elsewhere.request(
        Method::POST,
        "-/ui/logout",
        &[("origin", &origin)],
        Some(&[("csrf", &from_a)]),
    );
    assert_eq!(r.status, 403, "b's origin is another port: a cross-site post to b");
    assert_eq!(elsewhere.post("-/ui/logout", &[("csrf", &from_a)]).status, 303);
    // (a trusts the session it read for up to 10 s more, as for tokens; b, which ended it, at once.)
    let replay = Browser::new(&b.url());
    *replay.cookies.borrow_mut() = on_a.cookies.borrow().clone();
    assert!(replay.get("").body.contains(">Log in</a>"), "the session is over");
    assert_eq!(browser.login("alice", "alice-pw-1").status, 303);

    // Already logged in: the login URL asks to approve; refusing tells npm.
    let again = api
        .request(Method::POST, &format!("{}-/v1/login", b.url()))
        .send()
        .unwrap();
    let (login_url, done_url) = (
        again.json()["loginUrl"].as_str().unwrap().to_owned(),
        again.json()["doneUrl"].as_str().unwrap().to_owned(),
    );
    let page = browser.get(&login_url.replace(&b.url(), ""));
    assert!(page.body.contains("Log in npm on the command line?"), "{}", page.body);
    let r = browser.post(
        "-/ui/approve",
        &[
            ("csrf", &page.field("csrf")),
            ("cli", &page.field("cli")),
            ("decision", "refuse"),
        ],
    );
    assert!(r.body.contains("was not logged in"), "{}", r.body);
    let refused = api.get(&done_url).send().unwrap();
    assert_eq!(refused.status, 403, "{}", refused.text());
    for junk in ["x", "1.abc", ""] {
        let r = api.get(&format!("{}-/v1/done?ticket={junk}", a.url())).send().unwrap();
        assert_eq!(r.status, 404, "{junk}");
    }
    // No ticket reaches the request log.
    let ticket = done_url.split("ticket=").nth(1).unwrap();
    assert!(!a.log().contains(ticket) && !b.log().contains(ticket));
}

#[test]
fn the_ui_turned_off_leaves_the_api() {
    let work = tempfile::tempdir().unwrap();
    let config = format!("{OPEN_CONFIG}web:\n  enable: false\n");
    let server = Server::start(&config, &work.path().join("storage"));
    let url = server.url();
    let client = Client::new(&url);
    let m = json!({"name": "still-here", "version": "1.0.0"});
    publish_with_readme(&client, work.path(), &m, "# x\n", "latest");
    let b = Browser::new(&url);
    for path in [
        "",
        "-/ui/package/still-here",
        "-/ui/login",
        "-/ui/assets/app.css",
        "-/web/detail/still-here",
    ] {
        assert_eq!(b.get(path).status, 404, "{path}");
    }
    let r = b.request(Method::GET, "still-here", &[("accept", "text/html")], None);
    assert_eq!(r.status, 200, "no redirect to a page that is not there");
    let r = http()
        .request(Method::POST, &format!("{url}-/v1/login"))
        .send()
        .unwrap();
    assert_eq!(r.status, 404, "npm falls back to the CouchDB login");
    assert_eq!(http().get(&format!("{url}still-here")).send().unwrap().status, 200);
}

#[test]
fn verdaccio_addresses_and_assets() {
    let work = tempfile::tempdir().unwrap();
    let logo = work.path().join("logo.svg");
    std::fs::write(&logo, "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'/>").unwrap();
    let config = format!(
        "{OPEN_CONFIG}web:\n  title: Acme packages\n  logo: {}\n",
        logo.display()
    );
    let server = Server::start(&config, &work.path().join("storage"));
    let b = Browser::new(&server.url());
    for (from, to) in [
        ("-/web/detail/left-pad", "/-/ui/package/left-pad"),
        ("-/web/detail/@acme/widget", "/-/ui/package/@acme/widget"),
        ("-/web/detail/@acme/widget/v/1.2.3", "/-/ui/package/@acme/widget"),
        ("-/web/", "/"),
        ("-/web/settings", "/"),
    ] {
        let r = b.get(from);
        assert_eq!((r.status, r.location()), (301, to), "{from}");
    }
    let home = b.get("");
    assert!(
        home.body.contains("<title>Packages · Acme packages</title>"),
        "{}",
        home.body
    );
    let logo_url = home
        .body
        .split("<img src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        logo_url.starts_with("/-/ui/assets/logo.") && logo_url.ends_with(".svg"),
        "{logo_url}"
    );
    assert_eq!(b.get("-/static/logo.svg").location(), logo_url, "Verdaccio's logo path");
    assert!(
        b.get("-/static/favicon.ico")
            .location()
            .starts_with("/-/ui/assets/favicon.")
    );
    assert_eq!(b.get("-/static/main.js").status, 404);
    let css = home
        .body
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    for asset in [&logo_url, &css] {
        let r = b.get(asset);
        assert_eq!(r.status, 200, "{asset}");
        assert_eq!(r.headers["cache-control"], "public, max-age=31536000, immutable");
    }
    assert_eq!(b.get("-/ui/assets/app.000000000000.css").status, 404);
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
}
