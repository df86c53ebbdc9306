//! Users, tokens and per-package access, with the real npm CLI against the real server.

mod common;

use common::*;
use reqwest::Method;
use std::path::Path;

/// An htpasswd file as Apache's `htpasswd -B` (bcrypt, `$2y$`) and `-s` (`{SHA}`) write it.
fn write_htpasswd(path: &Path, users: &[(&str, &str)]) {
    let mut text = String::new();
    for (i, (user, pw)) in users.iter().enumerate() {
        let hash = if i % 2 == 0 {
            bcrypt::hash(pw, 5).unwrap().replacen("$2b$", "$2y$", 1)
        } else {
            use base64::Engine;
            use sha1::Digest;
            format!(
                "{{SHA}}{}",
                base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(pw.as_bytes()))
            )
        };
        text.push_str(&format!("{user}:{hash}:autocreated 2024-01-01T00:00:00.000Z\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn config(htpasswd: &Path, max_users: i64) -> String {
    format!(
        "auth:\n  htpasswd:\n    file: {}\n    max_users: {max_users}\n\
         groups:\n  staff: [alice, carol]\n\
         packages:\n  '@internal/*':\n    access: staff\n    publish: alice\n  '**':\n    access: $all\n    publish: $authenticated\n",
        htpasswd.display()
    )
}

fn failed_with(out: &std::process::Output, code: &str) -> bool {
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains(code)
}

#[test]
fn package_rules_for_users_groups_and_anonymous() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let htpasswd = w.join("htpasswd");
    let passwords = [
        ("alice", "alice-secret-1"),
        ("bob", "bob-secret-2"),
        ("carol", "carol-secret-3"),
    ];
    write_htpasswd(&htpasswd, &passwords);
    let server = Server::start_env(&config(&htpasswd, 100), &w.join("storage"), &[("RUST_LOG", "debug")]);
    let url = server.url();

    // alice logs in with npm and publishes the internal package.
    let alice = Client::anonymous(&url);
    ok(alice.npm_login("alice", "alice-secret-1"), "npm login alice");
    assert_eq!(alice.npm_ok(w, &["whoami"]).trim(), "alice");
    let lib = write_package(w, "@internal/lib", "1.0.0", &[], "module.exports = 'internal';\n");
    alice.npm_ok(&lib, &["publish"]);
    let profile = alice.npm_ok(w, &["profile", "get", "--json"]);
    assert!(profile.contains("\"name\": \"alice\""), "{profile}");
    let view: serde_json::Value = serde_json::from_str(&alice.npm_ok(w, &["view", "@internal/lib", "--json"])).unwrap();
    assert_eq!(view["_npmUser"], "alice", "npm view prints people as strings: {view}");
    assert_eq!(view["maintainers"][0], "alice", "{view}");

    // bob (not staff): it does not exist for him, and he cannot publish it.
    let bob = Client::anonymous(&url);
    ok(bob.npm_login("bob", "bob-secret-2"), "npm login bob");
    assert!(failed_with(&bob.npm(w, &["view", "@internal/lib"]), "E404"));
    let bob_project = project(w, "bob-project");
    assert!(failed_with(
        &bob.npm(&bob_project, &["install", "@internal/lib"]),
        "E404"
    ));
    let bob_lib = write_package(w, "@internal/lib", "1.0.1", &[], "module.exports = 'bob';\n");
    assert!(failed_with(&bob.npm(&bob_lib, &["publish"]), "E403"));
    let tarball = http()
        .get(&format!("{url}@internal/lib/-/lib-1.0.0.tgz"))
        .header("authorization", &format!("Bearer {}", bob.token.borrow()))
        .send()
        .unwrap();
    assert_eq!(tarball.status, 404, "tarballs hide the package too");
    assert!(!bob.npm_ok(w, &["search", "internal"]).contains("@internal/lib"));

    // carol (staff): installs, cannot publish.
    let carol = Client::anonymous(&url);
    ok(carol.npm_login("carol", "carol-secret-3"), "npm login carol");
    let carol_project = project(w, "carol-project");
    carol.npm_ok(&carol_project, &["install", "@internal/lib"]);
    assert!(carol_project.join("node_modules/@internal/lib/index.js").exists());
    let carol_lib = write_package(w, "@internal/lib", "1.0.2", &[], "module.exports = 'carol';\n");
    assert!(failed_with(&carol.npm(&carol_lib, &["publish"]), "E403"));
    assert!(carol.npm_ok(w, &["search", "internal"]).contains("@internal/lib"));

    // Anonymous: told to log in.
    let anon = Client::anonymous(&url);
    assert!(failed_with(&anon.npm(w, &["view", "@internal/lib"]), "E401"));
    let r = http().get(&format!("{url}@internal%2flib")).send().unwrap();
    assert_eq!(r.status, 401);
    assert!(
        r.json()["error"].as_str().unwrap().contains("npm login"),
        "{}",
        r.text()
    );
    assert!(!anon.npm_ok(w, &["search", "internal"]).contains("@internal/lib"));

    // npm logout revokes the token it used, at once.
    let token = alice.token.borrow().clone();
    alice.npm_ok(w, &["logout"]);
    let r = http()
        .get(&format!("{url}-/whoami"))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());

    // No password or token ever reaches the log, even at debug level.
    let log = server.log();
    assert!(
        log.contains("/-/user/token/[redacted]"),
        "the logout was logged, redacted"
    );
    for (_, pw) in passwords {
        assert!(!log.contains(pw), "a password is in the log");
    }
    for t in [token, bob.token.borrow().clone(), carol.token.borrow().clone()] {
        assert!(!log.contains(&t), "a token is in the log");
    }
}

#[test]
fn tokens_read_only_revocation_and_restart() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let storage = w.join("storage");
    let mut server = Server::start_default(&storage);
    let tina = Client::anonymous(&server.url());
    ok(tina.npm_login("tina", "tina-password"), "npm login tina");
    let pkg = write_package(w, "tina-lib", "1.0.0", &[], "module.exports = 1;\n");
    tina.npm_ok(&pkg, &["publish"]);

    // npm 11 asks for a read-only token with its granular flag, npm 10 with --read-only. (A machine
    // whose npm is still 10 creates both through npm 10.)
    let npm_version = ok(
        tina.command("npm", w).arg("--version").output().unwrap(),
        "npm --version",
    );
    let ro11 = if npm_version
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0)
        >= 11
    {
        let created = tina.npm_ok(
            w,
            &[
                "token",
                "create",
                "--packages-and-scopes-permission=read-only",
                "--password=tina-password",
                "--json",
            ],
        );
        serde_json::from_str::<serde_json::Value>(&created).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    } else {
        println!(
            "npm {} has no granular token flags: both read-only tokens come from npm 10",
            npm_version.trim()
        );
        let created = ok(
            tina.npm10_tty("tina-password", &["token", "create", "--read-only", "--json"]),
            "npm10 token",
        );
        let json = &created[created.find('{').unwrap()..=created.rfind('}').unwrap()];
        serde_json::from_str::<serde_json::Value>(json).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // npm 10 only reads the password from a terminal.
    let out = tina.npm10_tty("tina-password", &["token", "create", "--read-only", "--json"]);
    let created = ok(out, "npm10 token create --read-only");
    let json = &created[created.find('{').unwrap()..=created.rfind('}').unwrap()];
    let ro10 = serde_json::from_str::<serde_json::Value>(json).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = http()
        .request(Method::POST, &format!("{}-/npm/v1/tokens", server.url()))
        .header("authorization", &format!("Bearer {}", tina.token.borrow()))
        .json(&serde_json::json!({"password": "not-it", "readonly": true}))
        .send()
        .unwrap();
    assert_eq!(wrong.status, 401, "a wrong password creates no token: {}", wrong.text());

    for ro in [&ro11, &ro10] {
        let reader = Client::with_token(&server.url(), ro);
        let p = project(w, &format!("ro-{}", &ro[..12]));
        reader.npm_ok(&p, &["install", "tina-lib"]);
        let next = write_package(w, "tina-lib", "1.0.1", &[], "module.exports = 2;\n");
        assert!(
            failed_with(&reader.npm(&next, &["publish"]), "E403"),
            "a read-only token cannot publish"
        );
    }

    let list = tina.npm_ok(w, &["token", "list", "--json"]);
    let tokens: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    assert_eq!(tokens.len(), 3, "login + two created: {list}");
    assert_eq!(tokens.iter().filter(|t| t["readonly"] == true).count(), 2);
    assert!(
        !list.contains(&ro11) && !list.contains(&ro10),
        "listed tokens are redacted"
    );

    // Revoke the npm 11 read-only token by the id npm shows: it stops working at once.
    let key = tokens
        .iter()
        .find(|t| t["readonly"] == true && ro11.starts_with(t["token"].as_str().unwrap()))
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    tina.npm_ok(w, &["token", "revoke", &key[..8]]);
    // A revoked token counts as anonymous (as in Verdaccio): it reads only what anyone may read,
    // and wherever a user is needed it is refused, with the reason npm prints.
    let revoked = Client::with_token(&server.url(), &ro11);
    revoked.npm_ok(&project(w, "after-revoke"), &["install", "tina-lib"]);
    let whoami = revoked.npm(w, &["whoami"]);
    assert!(
        failed_with(&whoami, "E401"),
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );
    assert!(
        String::from_utf8_lossy(&whoami.stderr).contains("invalid, expired or revoked"),
        "npm prints the reason: {}",
        String::from_utf8_lossy(&whoami.stderr)
    );
    let next = write_package(w, "tina-lib", "1.0.2", &[], "module.exports = 3;\n");
    let publish = revoked.npm(&next, &["publish"]);
    let printed = String::from_utf8_lossy(&publish.stderr);
    assert!(failed_with(&publish, "E401"), "{printed}");
    assert!(
        printed.contains("invalid, expired or revoked") && printed.contains("npm login"),
        "{printed}"
    );
    let view = tina.npm_ok(w, &["view", "tina-lib", "versions", "--json"]);
    assert!(!view.contains("1.0.2"), "nothing was published: {view}");

    // Tokens survive a restart (they live in storage, as hashes only).
    drop(std::mem::replace(&mut server, Server::start_default(&storage)));
    let tina = Client::with_token(&server.url(), &tina.token.borrow());
    assert_eq!(tina.npm_ok(w, &["whoami"]).trim(), "tina");
    let reader = Client::with_token(&server.url(), &ro10);
    reader.npm_ok(&project(w, "after-restart"), &["install", "tina-lib"]);
    let stored = snapshot(&storage).join("\n");
    for t in [&ro10, &ro11] {
        assert!(!stored.contains(t.as_str()), "tokens are stored only as hashes");
        for file in walk_text(&storage) {
            assert!(!file.contains(t.as_str()), "a token is stored in clear");
        }
    }
}

/// Every file's text under `dir`.
fn walk_text(dir: &Path) -> Vec<String> {
    snapshot(dir)
        .iter()
        .filter_map(|l| l.rsplit_once(' ').map(|(p, _)| p.to_owned()))
        .filter_map(|p| std::fs::read(dir.join(p)).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

#[test]
fn registration_is_shared_limited_and_rate_limited() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let htpasswd = w.join("htpasswd");
    write_htpasswd(&htpasswd, &[("seed", "seed-password")]);
    let mut perms = std::fs::metadata(&htpasswd).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&htpasswd, perms).unwrap();
    let before = std::fs::read(&htpasswd).unwrap();
    let storage = w.join("storage");
    let cfg = config(&htpasswd, 3);
    let a = Server::start(&cfg, &storage);
    let b = Server::start(&cfg, &storage);

    // Registered through one process, logs in through the other; the htpasswd file is untouched.
    login(&a.url(), "dave", "dave-password").unwrap();
    let token = login(&b.url(), "dave", "dave-password").unwrap();
    let r = http()
        .get(&format!("{}-/whoami", b.url()))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .unwrap();
    assert_eq!(r.json()["username"], "dave");
    assert_eq!(std::fs::read(&htpasswd).unwrap(), before);
    // The htpasswd user logs in too, with Basic credentials as `_auth` sends them.
    let basic = format!("Basic {}", base64_of("seed:seed-password"));
    let r = http()
        .get(&format!("{}-/whoami", b.url()))
        .header("authorization", &basic)
        .send()
        .unwrap();
    assert_eq!(r.json()["username"], "seed");

    // npm's CouchDB retry: GET ?write=true, then PUT /-rev/ with the password.
    let doc = http()
        .get(&format!("{}-/user/org.couchdb.user:dave?write=true", a.url()))
        .send()
        .unwrap()
        .json();
    let rev = doc["_rev"].as_str().unwrap();
    let r = http()
        .request(Method::PUT, &format!("{}-/user/org.couchdb.user:dave/-rev/{rev}", a.url()))
        .json(&serde_json::json!({"_id": "org.couchdb.user:dave", "name": "dave", "password": "dave-password", "_rev": rev}))
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());

    // max_users: 3 = seed + dave + erin.
    login(&b.url(), "erin", "erin-password").unwrap();
    let full = login(&a.url(), "frank", "frank-password").unwrap_err();
    assert_eq!(full.status, 403, "{}", full.text());
    assert!(full.json()["error"].as_str().unwrap().contains("limit of 3"));

    // Wrong passwords: 401 nine times, then 429 with Retry-After, even with the right one.
    for i in 1..=9 {
        let r = login(&a.url(), "dave", "wrong-password").unwrap_err();
        assert_eq!(r.status, 401, "attempt {i}: {}", r.text());
    }
    let r = login(&a.url(), "dave", "wrong-password").unwrap_err();
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(login(&a.url(), "dave", "dave-password").unwrap_err().status, 429);
    // Other users and the other process are unaffected by dave's lockout on this address? The
    // address is shared here (loopback), so only the other process still lets dave in.
    assert!(login(&b.url(), "dave", "dave-password").is_ok());
}

#[test]
fn npm_view_shows_the_email_given_at_adduser() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let server = Server::start_default(&w.join("storage"));
    let ada = Client::anonymous(&server.url());
    ok(ada.npm_adduser("ada", "ada-password"), "npm adduser ada");
    let lib = write_package(w, "ada-lib", "1.0.0", &[], "module.exports = 'ada';\n");
    ada.npm_ok(&lib, &["publish"]);
    let view: serde_json::Value = serde_json::from_str(&ada.npm_ok(w, &["view", "ada-lib", "--json"])).unwrap();
    assert_eq!(view["_npmUser"], "ada <test@example.com>", "{view}");
    assert_eq!(view["maintainers"][0], "ada <test@example.com>", "{view}");
    let text = ada.npm_ok(w, &["view", "ada-lib"]);
    assert!(!text.contains("<undefined>"), "{text}");
}

#[test]
fn registration_can_be_disabled() {
    let work = tempfile::tempdir().unwrap();
    let htpasswd = work.path().join("htpasswd");
    write_htpasswd(&htpasswd, &[("only", "only-password")]);
    let server = Server::start(&config(&htpasswd, -1), &work.path().join("storage"));
    let r = login(&server.url(), "newcomer", "newcomer-password").unwrap_err();
    assert_eq!(r.status, 403);
    assert!(r.json()["error"].as_str().unwrap().contains("disabled"));
    assert!(login(&server.url(), "only", "only-password").is_ok());
    assert_eq!(login(&server.url(), "only", "nope-nope").unwrap_err().status, 401);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// bob is removed from htpasswd: within the trust window his token, his Basic credentials and his
/// browser session stop working, and his name cannot be registered again, from anywhere.
#[test]
fn a_user_removed_from_htpasswd_loses_tokens_sessions_and_the_name() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let htpasswd = w.join("htpasswd");
    write_htpasswd(&htpasswd, &[("alice", "alice-secret-1"), ("bob", "bob-secret-2")]);
    let config = format!(
        "server:\n  trustProxy: loopback\nauth:\n  htpasswd:\n    file: {}\n\
         packages:\n  '@team/*':\n    access: $authenticated\n    publish: $authenticated\n  '**':\n    access: $all\n    publish: $authenticated\n",
        htpasswd.display()
    );
    let storage = w.join("storage");
    let server = Server::start(&config, &storage);
    let url = server.url();
    let bob = Client::anonymous(&url);
    ok(bob.npm_login("bob", "bob-secret-2"), "npm login bob");
    let lib = write_package(w, "@team/lib", "1.0.0", &[], "module.exports = 'team';\n");
    bob.npm_ok(&lib, &["publish"]);
    let token = login(&url, "bob", "bob-secret-2").unwrap();
    let browser = web::Browser::new(&url);
    let r = browser.login("bob", "bob-secret-2");
    assert_eq!(r.status, 303, "{}", r.body);
    let page = "-/ui/package/@team/lib";
    assert_eq!(browser.get(page).status, 200, "bob's session shows the team's package");
    let anonymous_page = web::Browser::new(&url).get(page).status;
    assert_ne!(anonymous_page, 200);
    let basic = format!("Basic {}", base64_of("bob:bob-secret-2"));
    let get = |auth: &str| {
        http()
            .get(&format!("{url}@team%2flib"))
            .header("authorization", auth)
            .send()
            .unwrap()
            .status
    };
    assert_eq!(get(&format!("Bearer {token}")), 200);
    assert_eq!(get(&basic), 200);

    write_htpasswd(&htpasswd, &[("alice", "alice-secret-1")]);
    let removed = std::time::Instant::now();
    let window = std::time::Duration::from_secs(12); // htpasswd re-read (2 s) + trust (10 s)
    loop {
        let refused =
            get(&format!("Bearer {token}")) == 401 && get(&basic) == 401 && browser.get(page).status == anonymous_page;
        if refused {
            break;
        }
        assert!(
            removed.elapsed() < window,
            "bob still gets in {:?} after removal",
            removed.elapsed()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    println!(
        "bob's token, Basic credentials and session refused {:?} after his line was removed",
        removed.elapsed()
    );
    let whoami = bob.npm(w, &["whoami"]);
    assert!(!whoami.status.success(), "{}", String::from_utf8_lossy(&whoami.stdout));

    // Nobody takes the name: not from another address, not with npm, not through a replica
    // that started after the removal.
    let r = http()
        .request(Method::PUT, &format!("{url}-/user/org.couchdb.user:bob"))
        .header("x-forwarded-for", "198.51.100.77")
        .json(&serde_json::json!({"_id": "org.couchdb.user:bob", "name": "bob", "password": "stranger-pass"}))
        .send()
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    let out = Client::anonymous(&url).npm_adduser("bob", "stranger-pass");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{printed}");
    assert!(
        printed.contains("cannot be registered again"),
        "npm prints why: {printed}"
    );
    let other = Server::start(&config, &storage);
    let r = login(&other.url(), "bob", "stranger-pass").unwrap_err();
    assert_eq!(r.status, 403, "{}", r.text());
    // Everyone else is unaffected, and new names still register.
    assert!(login(&url, "alice", "alice-secret-1").is_ok());
    assert!(login(&other.url(), "newcomer", "newcomer-pass").is_ok());
}
