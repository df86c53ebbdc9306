//! pnpm, yarn 1, yarn 4 and bun install from the real server what npm published there, and bun
//! publishes too.

mod common;

use common::*;
use std::path::Path;

/// Publishes a scoped and an unscoped library and an app depending on both.
fn seed(npm: &Client, w: &Path) {
    let lib = write_package(w, "left-lib", "1.2.0", &[], "module.exports = 'left';\n");
    npm.npm_ok(&lib, &["publish"]);
    let scoped = write_package(w, "@team/right", "2.0.0", &[], "module.exports = 'right';\n");
    npm.npm_ok(&scoped, &["publish"]);
    let app = write_package(
        w,
        "both-app",
        "0.1.0",
        &[("left-lib", "^1.0.0"), ("@team/right", "^2.0.0")],
        "module.exports = require('left-lib') + '+' + require('@team/right');\n",
    );
    npm.npm_ok(&app, &["publish"]);
}

fn check_runs(client: &Client, dir: &Path) {
    assert_eq!(client.require(dir, "both-app"), "left+right");
}

#[test]
fn pnpm_yarn1_yarn4_bun_install() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start_default(&work.path().join("storage"));
    let client = Client::new(&server.url());
    let w = work.path();
    seed(&client, w);

    let p = project(w, "with-pnpm");
    client.pnpm_ok(&p, &["add", "both-app"]);
    assert!(p.join("pnpm-lock.yaml").exists());
    check_runs(&client, &p);

    let y1 = project(w, "with-yarn1");
    client.yarn1_ok(&y1, &["add", "both-app"]);
    let lock = std::fs::read_to_string(y1.join("yarn.lock")).unwrap();
    assert!(
        lock.contains(&format!("{}left-lib/-/left-lib-1.2.0.tgz", server.url())),
        "{lock}"
    );
    check_runs(&client, &y1);

    let y4 = project(w, "with-yarn4");
    client.yarn4_ok(&y4, &["add", "both-app"]);
    assert!(y4.join("yarn.lock").exists());
    check_runs(&client, &y4);

    // yarn 4 asks for full documents with conditional headers; a second install revalidates.
    client.yarn4_ok(&y4, &["install"]);
    check_runs(&client, &y4);

    // bun publishes with its own client, then installs that and npm's packages.
    let made = write_package(w, "bun-made", "1.0.0", &[], "module.exports = 'by bun';\n");
    client.bun_ok(&made, &["publish"]);
    let b = project(w, "with-bun");
    client.bun_ok(&b, &["add", "both-app", "bun-made"]);
    assert!(b.join("bun.lock").exists());
    check_runs(&client, &b);
    assert_eq!(client.require(&b, "bun-made"), "by bun");
}
