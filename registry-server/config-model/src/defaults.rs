//! The server's defaults for keys the file leaves out: one home, read by the server when it
//! resolves a config and by the operator when it sizes a pod.

use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// `listen` when not set: loopback only, as in Verdaccio.
pub const LISTEN: &str = "localhost:4873";
/// `storage` when not set, relative to the config file's folder.
pub const STORAGE: &str = "./storage";
/// `max_body_size`: the largest publish body.
pub const MAX_BODY_SIZE: u64 = 10 * MIB;
/// `packument_cache.max_size`.
pub const PACKUMENT_CACHE_SIZE: u64 = 128 * MIB;
/// `tarball_cache.max_size`.
pub const TARBALL_CACHE_SIZE: u64 = 64 * MIB;
/// `packument_cache.revalidate_after` and `tarball_cache.revalidate_after`.
pub const CACHE_REVALIDATE_AFTER: Duration = Duration::from_secs(1);
/// `uplinks.*.timeout`.
pub const UPLINK_TIMEOUT: Duration = Duration::from_secs(30);
/// `uplinks.*.maxage`.
pub const UPLINK_MAXAGE: Duration = Duration::from_secs(120);
/// `uplinks.*.fail_timeout`.
pub const UPLINK_FAIL_TIMEOUT: Duration = Duration::from_secs(300);
/// `uplinks.*.max_fails`.
pub const UPLINK_MAX_FAILS: u32 = 2;
/// `web.title`.
pub const WEB_TITLE: &str = "npm registry";
/// `web.cache_size`: package pages and rendered READMEs kept in memory.
pub const WEB_CACHE_SIZE: u64 = 32 * MIB;
