//! Test harness, by job: `server` (the real `npm-registry-server` binary on a loopback port),
//! `clients` (real npm, pnpm, yarn 1, yarn 4, bun, installed in `e2e/peers` by `e2e/test.sh`),
//! `raw_http` (a blocking client and raw sockets), `fixtures` (test data), `moto` (S3),
//! `upstream` (a fake uplink), `round_trip` (the npm round trip every backend must pass), `web`
//! (the web UI through a cookie-keeping client and through headless Chromium).
#![allow(dead_code, unused_imports)]

mod clients;
mod fixtures;
pub mod moto;
pub mod oidc_issuer;
pub mod raw_http;
pub mod round_trip;
mod server;
pub mod sigstore;
pub mod upstream;
pub mod verdaccio;
pub mod web;

pub use clients::*;
pub use fixtures::*;
pub use raw_http::*;
pub use server::*;

use std::path::{Path, PathBuf};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}
