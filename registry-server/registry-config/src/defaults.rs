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
/// `store.aws-s3-storage.connectTimeout`.
pub const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// `store.aws-s3-storage.requestTimeout`: one attempt of one S3 call.
pub const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `store.aws-s3-storage.maxAttempts`.
pub const S3_MAX_ATTEMPTS: u32 = 3;
/// `store.aws-s3-storage.tarballRedirect: true`: how long a presigned tarball URL is valid.
pub const S3_TARBALL_REDIRECT: Duration = Duration::from_secs(300);
/// `web.title`.
pub const WEB_TITLE: &str = "npm registry";
/// The server's resident memory beyond its caches (`packument_cache.max_size` +
/// `tarball_cache.max_size`, + `web.cache_size` while the web UI is on): the runtime, upstream packuments in flight (at most 1.5 times the
/// largest `uplinks.*.max_packument_size`, 96 MiB by default), documents being indexed and cut
/// (one per core at a time), buffers of requests in flight, the htpasswd and token state. A pod's
/// memory is sized as caches + this.
///
/// Measured 2026-12-02 on 2 cores (AMD EPYC), with the default `max_packument_size`:
/// `registry-server/tests/memory_bound.rs` (four 30 MB packuments fetched at once in every
/// variant, cold and again from storage, then tarballs past their cache, with caches of 24 + 16
/// MiB) peaked at 208-215 MiB RSS in the release build, 212-241 MiB in the debug build: 168-201
/// MiB beyond the caches; `e2e/bench/upstream.py` (a real app's `npm install` through the default
/// caches) peaked at 215-228 MiB. 240 MiB leaves about 40 MiB over the highest. Re-measure
/// whenever the server's memory profile changes (the memory test fails when it is exceeded).
pub const MEMORY_OVERHEAD: u64 = 240 * MIB;
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
/// `server.shutdown.drain`: how long the server keeps serving after SIGTERM while it reports
/// not-ready. Kubernetes removes a terminating pod from its Service at the same time as it sends
/// SIGTERM, but kube-proxy on every node (and a cloud balancer) takes a few seconds to follow:
/// connections arriving in that window must still be answered.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);
/// `server.shutdown.timeout`: how long requests in flight may take to finish after the drain.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// `server.maxConnections`.
pub const MAX_CONNECTIONS: u64 = 2048;
/// `server.maxConnectionsPerAddress` (at most `server.maxConnections`).
pub const MAX_CONNECTIONS_PER_ADDRESS: u64 = 256;
/// `server.maxBodyBytesInFlight` (raised to `max_body_size` when that is larger).
pub const MAX_BODY_BYTES_IN_FLIGHT: u64 = 64 * MIB;
/// `web.cache_size`: package pages and rendered READMEs kept in memory.
pub const WEB_CACHE_SIZE: u64 = 32 * MIB;
