//! The registry on S3 (moto, started by each test): the npm round trip, replicas publishing
//! concurrently to one bucket, a bucket laid out by Verdaccio's S3 plugin, and an S3 outage.

mod common;

use common::moto::{Moto, S3_ENV, s3_config};
use common::round_trip::{Bucket, npm_round_trip};
use common::*;

fn s3_server(moto: &Moto, bucket: &str, prefix: &str, extra: &str) -> Server {
    // `--storage` points at a folder that must stay empty: everything goes to the bucket.
    let unused = tempfile::tempdir().unwrap();
    let s = Server::start_env(
        &s3_config(moto, bucket, prefix, extra),
        &unused.path().join("unused"),
        S3_ENV,
    );
    assert!(!unused.path().join("unused").exists());
    s
}

#[test]
fn npm_round_trip_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("registry");
    let server = s3_server(&moto, "registry", "npm/", "");
    let work = tempfile::tempdir().unwrap();
    let stored = Bucket {
        moto: &moto,
        bucket: "registry",
        prefix: "npm/",
    };
    npm_round_trip(&server.url(), work.path(), &stored);
    // Verdaccio's S3 layout: pretty JSON under the prefix, tarballs beside it.
    let doc = moto.get("registry", "npm/app-main/package.json").unwrap();
    assert!(doc.starts_with(b"{\n  \""), "pretty-printed like Verdaccio");
    assert!(
        moto.head("registry", "npm/app-main/app-main-1.0.0.tgz")
            .is_some()
    );
    assert!(
        moto.keys("registry", "")
            .iter()
            .all(|k| k.starts_with("npm/"))
    );
}
