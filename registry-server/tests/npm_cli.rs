//! The npm CLI against the real server on a storage folder: the shared round trip in
//! `common/round_trip.rs` (publish, install, dist-tags, deprecate, search, unpublish).

mod common;

use common::round_trip::{Folder, npm_round_trip};
use common::*;

#[test]
fn npm_round_trip_on_a_folder() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let server = Server::start_default(&storage);
    npm_round_trip(&server.url(), work.path(), &Folder(&storage));
}
