//! Serving connections: our own accept loop over hyper's HTTP/1 connections, so that no client
//! can hold more than the config allows. At most `server.maxConnections` are open; when all are
//! in use, the keep-alive connection idle the longest is closed to make room, and new ones wait
//! in the listen backlog meanwhile. One address holds at most `server.maxConnectionsPerAddress`
//! of them (more are closed as soon as accepted), except a proxy in `server.trustProxy`: the
//! proxy's connections carry many clients, so there each forwarded client address may have that
//! many requests in progress at once instead (more get 503; `clients`). A connection is closed
//! when its request headers take longer than `server.headersTimeout`, when it waits longer than `server.keepAliveTimeout` for
//! its next request, or when a response body moves slower than 1 KiB/s for `server.bodyTimeout`;
//! a request body that slow fails with 408 (`body::Progress`); request bodies together hold at
//! most `server.maxBodyBytesInFlight` (`budget`). A handler's own time is not limited here.
//! Each open connection holds at most [`MAX_BUF`] of read buffer, plus its response in flight.
//!
//! On shutdown the listener closes at once, idle connections close, and requests in flight are
//! finished (their responses sent in full) before [`run`] returns.

mod activity;
mod body;
mod clients;
pub mod drain;

pub use body::BodyTimeout;

use crate::config::{Connections, TrustedProxies};
use crate::http::body_budget::{self, Budget};
use crate::http::error::ApiError;
use activity::{Activity, Timeouts, Verdict, Watched, judge};
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use clients::{Held, Open, PerAddress};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Largest read buffer of one connection, and so the largest request head.
pub const MAX_BUF: usize = 64 * 1024;

/// How often an idle connection is looked for again while all are in use.
const RECLAIM_AGAIN: std::time::Duration = std::time::Duration::from_millis(100);

/// What the connections of one server share.
struct Shared {
    app: Router,
    timeouts: Timeouts,
    budget: Budget,
    trusted: TrustedProxies,
    /// Requests in progress per client address, for clients behind a trusted proxy.
    forwarded: Arc<PerAddress>,
    open: Open,
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: &Connections,
    trusted: &TrustedProxies,
    max_body_size: u64,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        app,
        timeouts: Timeouts {
            headers: limits.headers_timeout,
            keep_alive: limits.keep_alive_timeout,
            body: limits.body_timeout,
        },
        budget: Budget::new(limits.max_body_bytes_in_flight, max_body_size),
        trusted: trusted.clone(),
        forwarded: PerAddress::new(limits.max_connections_per_address),
        open: Open::default(),
    });
    let per_peer = PerAddress::new(limits.max_connections_per_address);
    let slots = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let (stop, stopped) = watch::channel(());
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let slot = loop {
            match slots.clone().try_acquire_owned() {
                Ok(slot) => break Some(slot),
                Err(_) => {
                    // Full: the connection idle the longest gives its place up (looked for again
                    // while waiting, as busy ones become idle).
                    shared.open.reclaim();
                    tokio::select! {
                        _ = &mut shutdown => break None,
                        slot = slots.clone().acquire_owned() => break Some(slot.expect("the semaphore is never closed")),
                        _ = tokio::time::sleep(RECLAIM_AGAIN) => {}
                    }
                }
            }
        };
        let Some(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let ip = peer.ip().to_canonical();
        let held = if shared.trusted.contains(ip) {
            None
        } else {
            match per_peer.take(ip) {
                Some(held) => Some(held),
                None => {
                    tracing::debug!(%peer, "connection refused: server.maxConnectionsPerAddress reached");
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(stream, peer, shared.clone(), stopped.clone(), (held, slot)));
    }
    drop(listener);
    let _ = stop.send(());
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// A failed accept: a connection that went away is nothing; anything else (out of file
/// descriptors) is logged and waited out, as the next accept would fail alike.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
    // The address's place is given back before the connection slot (a tuple drops in order):
    // the accept loop, woken by the slot, must not find the address still at its cap.
    _held: (Option<Held>, OwnedSemaphorePermit),
) {
    let activity = Arc::new(Activity::new());
    let _registered = shared.open.register(activity.clone());
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let service = {
        let (shared, activity) = (shared.clone(), activity.clone());
        hyper::service::service_fn(move |req| handle(shared.clone(), activity.clone(), peer, req))
    };
    let mut builder = http1::Builder::new();
    // The watchdog below applies the header timeout (hyper's would also close idle keep-alive
    // connections at the same, shorter, bound).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_BUF)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        if activity.gives_way() {
            tracing::debug!(%peer, "connection closed to make room (server.maxConnections)");
            return;
        }
        let deadline = match judge(activity.phase(), &shared.timeouts, Instant::now()) {
            Verdict::Close(why) => {
                tracing::debug!(%peer, why, "connection closed");
                return;
            }
            Verdict::NewWindow => {
                activity.new_window();
                continue;
            }
            Verdict::Until(deadline) => deadline,
        };
        let wake = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = activity.changed.notified() => {}
            _ = wake => {}
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

type Served = Response<body::Sent<axum::body::Body>>;

async fn handle(
    shared: Arc<Shared>,
    activity: Arc<Activity>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Served, Infallible> {
    activity.handling();
    let _request = match forwarded_client(&shared, peer, &req) {
        Some(client) => match shared.forwarded.take(client) {
            Some(held) => Some(held),
            None => {
                tracing::warn!(%peer, %client, "request refused: server.maxConnectionsPerAddress requests in progress");
                let mut res = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many requests in progress from this address; retry in a moment",
                )
                .into_response();
                res.headers_mut()
                    .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
                activity.sending();
                return Ok(res.map(|b| body::Sent::new(b, activity)));
            }
        },
        None => None,
    };
    let timeout = shared.timeouts.body;
    let mut req = req.map(|b| axum::body::Body::new(body::Progress::new(b, timeout)));
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = body_budget::scope(&shared.budget, shared.app.clone().oneshot(req))
        .await
        .unwrap_or_else(|e| match e {});
    activity.sending();
    Ok(res.map(|b| body::Sent::new(b, activity)))
}

/// The client a trusted proxy forwards a request for; `None` for a request from anyone else
/// (counted by its connection).
fn forwarded_client(shared: &Shared, peer: SocketAddr, req: &Request<Incoming>) -> Option<std::net::IpAddr> {
    let ip = peer.ip().to_canonical();
    if !shared.trusted.contains(ip) {
        return None;
    }
    let client = crate::http::forwarded::client_ip(ip, req.headers(), &shared.trusted);
    (!shared.trusted.contains(client)).then_some(client)
}
