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
/// `uplinks.*.max_packument_size`: above the largest public packuments (about 45 MB).
pub const UPLINK_MAX_PACKUMENT_SIZE: u64 = 64 * MIB;
/// `uplinks.*.max_tarball_size`.
pub const UPLINK_MAX_TARBALL_SIZE: u64 = 1024 * MIB;
/// `web.title`.
pub const WEB_TITLE: &str = "npm registry";
/// The server's resident memory beyond its caches (`packument_cache.max_size` +
/// `tarball_cache.max_size` + `web.cache_size` while the web UI is on): the runtime, buffers of requests in flight, the htpasswd and token
/// state. A pod's memory is sized as caches + this. Measured RSS, to be re-measured whenever the
/// server's memory profile changes (the memory work owns the figure).
pub const MEMORY_OVERHEAD: u64 = 160 * MIB;
/// `repair.interval`: how often one replica looks for leftovers (orphan tarballs, missing package
/// list entries, temp files, stale deletions, the search index).
pub const REPAIR_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// `repair.grace`: how old a leftover must be before it is repaired, longer than any write in
/// flight can take (a tarball stored by a publish that has not written its packument yet).
pub const REPAIR_GRACE: Duration = Duration::from_secs(10 * 60);
/// `server.keepAliveTimeout`: longer than a load balancer's idle timeout (an AWS ALB's is 60 s),
/// so the balancer, not we, closes idle connections (else it may send on one we are closing).
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// `server.headersTimeout`.
pub const HEADERS_TIMEOUT: Duration = Duration::from_secs(20);
/// `server.bodyTimeout`.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// `server.maxConnections`.
pub const MAX_CONNECTIONS: u64 = 2048;
/// `server.maxBodyBytesInFlight` (raised to `max_body_size` when that is larger).
pub const MAX_BODY_BYTES_IN_FLIGHT: u64 = 64 * MIB;
/// `web.cache_size`: package pages and rendered READMEs kept in memory.
pub const WEB_CACHE_SIZE: u64 = 32 * MIB;
