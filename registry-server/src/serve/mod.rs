//! Serving connections: our own accept loop over hyper's HTTP/1 connections, so that no client
//! can hold more than the config allows. At most `server.maxConnections` are open (more wait in
//! the listen backlog until one closes); a connection is closed when its request headers take
//! longer than `server.headersTimeout`, when it waits longer than `server.keepAliveTimeout` for
//! its next request, or when a response body moves slower than 1 KiB/s for `server.bodyTimeout`;
//! a request body that slow fails with 408 (`body::Progress`); request bodies together hold at
//! most `server.maxBodyBytesInFlight` (`budget`). A handler's own time is not limited here.
//! Each open connection holds at most [`MAX_BUF`] of read buffer, plus its response in flight.
//!
//! On shutdown the listener closes at once, idle connections close, and requests in flight are
//! finished (their responses sent in full) before [`run`] returns.

mod activity;
mod body;
mod body_budget;

pub use body::BodyTimeout;

use crate::config::Connections;
use crate::http::error::ApiError;
use activity::{Activity, Timeouts, Verdict, Watched, judge};
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use body_budget::Budget;
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

/// What the connections of one server share.
struct Shared {
    app: Router,
    timeouts: Timeouts,
    budget: Budget,
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: &Connections,
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
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let (stop, stopped) = watch::channel(());
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
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
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(stream, peer, shared.clone(), stopped.clone(), slot));
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
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
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
    let res = match shared.budget.reserve(req.headers()) {
        Err(body_budget::Spent) => {
            tracing::warn!(%peer, "request refused: request bodies in flight are at server.maxBodyBytesInFlight");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry is receiving too many uploads right now; retry in a moment",
            )
            .into_response()
        }
        Ok(reserved) => {
            let timeout = shared.timeouts.body;
            let mut req = req.map(|b| axum::body::Body::new(body::Progress::new(b, timeout)));
            req.extensions_mut().insert(ConnectInfo(peer));
            let res = shared.app.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
            drop(reserved);
            res
        }
    };
    activity.sending();
    Ok(res.map(|b| body::Sent::new(b, activity)))
}
