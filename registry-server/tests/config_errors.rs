//! Configs that would fail open or fail silently stop the real binary at start, saying what is
//! wrong in the file's terms; what may start with a warning does, and says so where it matters.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn configs_that_would_fail_open_or_silently_refuse_to_start() {
    let cases: &[(&str, &[&str])] = &[
        (
            // An LDAP installation: its users could not log in, and registration must not open.
            "auth:\n  ldap:\n    type: ldap\n    client_options:\n      url: 'ldap://ldap.example'\n\
             packages:\n  '@corp/*': {access: $authenticated, publish: $authenticated}\n",
            &["auth.ldap", "does not implement", "ignore_auth_plugins: [ldap]"],
        ),
        // A plugin and no htpasswd at all.
        (
            "auth:\n  gitlab:\n    url: 'https://gitlab.example'\npackages:\n  '**': {access: $authenticated}\n",
            &["auth.gitlab", "htpasswd"],
        ),
        (
            "packges:\n  '**': {access: $all, publish: $all}\n",
            &["packges", "did you mean `packages`?"],
        ),
        ("listen: 99999\n", &["listen", "port 99999 is out of range"]),
        (
            "packages:\n  '**':\n    access: $all\n  proxy: npmjs\n",
            &["packages.proxy", "a package rule"],
        ),
        (
            "proxy: npmjs\npackages:\n  '**': {access: $all}\n",
            &["proxy", "under a pattern in `packages`"],
        ),
        (
            "auth:\n  htpasswd:\n    file: ./no-such-file\n    max_users: -1\n",
            &["auth.htpasswd.file", "does not exist"],
        ),
        (
            "packages:\n  '**':\n    access: $all\n    proxy: up\nuplinks:\n  up: {url: 'http://127.0.0.1:9', timout: 5s}\n",
            &["did you mean `uplinks.up.timeout`?"],
        ),
    ];
    for (config, words) in cases {
        let printed = Server::refused(config);
        for w in *words {
            assert!(
                printed.contains(w),
                "for\n{config}\nit printed {printed:?}, lacking {w:?}"
            );
        }
        for rust in ["struct ", "enum ", "RuleFile", "ConfigFile", "panicked"] {
            assert!(!printed.contains(rust), "{printed}");
        }
    }
    let printed = Server::refused_args(&["--listen", "99999"], &[]);
    assert!(printed.contains("port 99999 is out of range"), "{printed}");
    let printed = Server::refused_args(&[], &[("NPM_REGISTRY_LISTEN", "localhost:http")]);
    assert!(printed.contains("not a port number"), "{printed}");
}

#[test]
fn an_ignored_auth_plugin_opens_no_registration() {
    let work = tempfile::tempdir().unwrap();
    let config = "ignore_auth_plugins: [ldap]\nauth:\n  ldap:\n    type: ldap\n\
                  packages:\n  '@corp/*': {access: $authenticated, publish: $authenticated}\n";
    let server = Server::start(config, &work.path().join("storage"));
    let r = login(&server.url(), "intruder", "intruder-password").unwrap_err();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("disabled"), "{}", r.text());
    assert_eq!(
        http()
            .get(&format!("{}@corp%2flib", server.url()))
            .send()
            .unwrap()
            .status,
        401
    );
    assert!(server.log().contains("auth.ldap"), "the warning names the plugin");
}

#[test]
fn a_missing_htpasswd_file_is_a_warning_and_ready_stays_false_until_it_appears() {
    let work = tempfile::tempdir().unwrap();
    let htpasswd = work.path().join("htpasswd");
    let config = format!(
        "auth:\n  htpasswd:\n    file: {}\npackages:\n  '**': {{access: $all, publish: $authenticated}}\n",
        htpasswd.display()
    );
    let server = Server::start(&config, &work.path().join("storage"));
    assert!(server.log().contains("does not exist"), "{}", server.log());
    let ready = http().get(&format!("{}-/ready", server.url())).send().unwrap();
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(
        ready.json()["error"].as_str().unwrap().contains("htpasswd"),
        "{}",
        ready.text()
    );
    // The Secret is mounted late: ready once the file is there.
    std::fs::write(
        &htpasswd,
        format!("seed:{}\n", bcrypt::hash("seed-password", 5).unwrap()),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http().get(&format!("{}-/ready", server.url())).send().unwrap().status != 200 {
        assert!(Instant::now() < deadline, "not ready after the file appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(login(&server.url(), "seed", "seed-password").is_ok());
}

#[test]
fn listen_from_the_environment_takes_the_forms_of_the_key() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.yaml");
    std::fs::write(&config, "packages:\n  '**': {access: $all}\n").unwrap();
    let port = free_port();
    let listen = format!("localhost:{port}");
    let server = Server::start_on(
        port,
        &["--config", config.to_str().unwrap()],
        work.path(),
        &[("NPM_REGISTRY_LISTEN", &listen)],
    );
    assert!(server.log().contains(&format!("127.0.0.1:{port}")), "{}", server.log());
    // Log lines are plain text in a file: no colour codes, no `././`, rounded latencies.
    http().get(&format!("{}-/ping", server.url())).send().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    assert!(!log.contains('\u{1b}'), "ANSI codes in a log file: {log:?}");
    assert!(!log.contains("/./"), "{log}");
    for ms in log.split("latency_ms=").skip(1) {
        let value = ms.split_whitespace().next().unwrap();
        let decimals = value.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 2, "latency {value} in {log}");
    }
}
