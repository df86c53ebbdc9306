//! Shutting down without losing a request. Kubernetes takes a terminating pod out of its
//! Service when it sends SIGTERM, but every node's kube-proxy (and a cloud balancer) needs a few
//! seconds to follow; a server that closed its port at once would refuse the connections sent in
//! that window. So on SIGTERM the server reports not-ready (`/-/ready` answers 503, for balancers
//! that probe it), answers every response with `Connection: close` (clients move off their
//! keep-alive connections to the other replicas) and keeps serving for `server.shutdown.drain`.
//! Then [`super::run`] stops accepting, closes idle connections and finishes the requests in
//! flight, for at most `server.shutdown.timeout`. Ctrl-C (SIGINT) skips the drain: it is a person
//! at a terminal, not an orchestrator; a second signal cuts a drain short.

use crate::config::Shutdown;
use crate::http::ShuttingDown;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Serving,
    /// SIGTERM came: serving on, not ready.
    Draining,
    /// The listener closes; requests in flight finish.
    Stopping,
}

/// The server's shutdown, from the first signal to the bound on requests in flight.
pub struct Drain {
    settings: Shutdown,
    stage: watch::Sender<Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Terminate,
    Interrupt,
}

impl Drain {
    pub fn new(settings: Shutdown) -> Arc<Drain> {
        Arc::new(Drain {
            settings,
            stage: watch::Sender::new(Stage::Serving),
        })
    }

    fn stopping(&self) -> bool {
        *self.stage.borrow() != Stage::Serving
    }

    /// `app`, answering as a server on its way out once the drain began.
    pub fn layer(self: &Arc<Self>, app: Router) -> Router {
        app.layer(from_fn_with_state(self.clone(), mark))
    }

    /// Resolves when the listener should close: after SIGTERM and the drain, or at once after
    /// Ctrl-C. Signals are listened for from the first poll.
    pub async fn until_stopped(self: Arc<Self>) {
        let mut signals = Signals::new();
        let first = signals.next().await;
        self.stage.send_replace(Stage::Draining);
        let drain = self.settings.drain;
        if first == Signal::Terminate && !drain.is_zero() {
            tracing::info!(
                ?drain,
                "SIGTERM: reporting not-ready and serving on while load balancers take this server out"
            );
            tokio::select! {
                _ = tokio::time::sleep(drain) => {}
                _ = signals.next() => tracing::info!("a second signal: the drain is cut short"),
            }
        }
        tracing::info!(
            timeout = ?self.settings.timeout,
            "shutting down: closing idle connections, finishing in-flight requests"
        );
        self.stage.send_replace(Stage::Stopping);
    }

    /// Runs `served` (the server, which returns once its requests are finished), giving up
    /// `server.shutdown.timeout` after the listener closed: `None` then.
    pub async fn bounded<T>(&self, served: impl Future<Output = T>) -> Option<T> {
        let mut stage = self.stage.subscribe();
        let timeout = self.settings.timeout;
        let limit = async move {
            let _ = stage.wait_for(|s| *s == Stage::Stopping).await;
            tokio::time::sleep(timeout).await;
        };
        tokio::select! {
            done = served => Some(done),
            _ = limit => {
                tracing::warn!(?timeout, "requests still in flight at server.shutdown.timeout; exiting anyway");
                None
            }
        }
    }
}

async fn mark(State(drain): State<Arc<Drain>>, mut req: Request, next: Next) -> Response {
    if !drain.stopping() {
        return next.run(req).await;
    }
    req.extensions_mut().insert(ShuttingDown);
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// SIGTERM and SIGINT, registered once so that none is missed between two waits.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        let term = async {
            match &mut self.term {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = term => Signal::Terminate,
            _ = tokio::signal::ctrl_c() => Signal::Interrupt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use std::time::Duration;
    use tower::ServiceExt;

    #[tokio::test]
    #[allow(clippy::disallowed_methods)] // a one-route app to put behind the drain layer
    async fn a_draining_server_marks_requests_and_closes_connections() {
        let drain = Drain::new(Shutdown {
            drain: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        });
        let app = drain.layer(Router::new().route(
            "/",
            get(|stopping: Option<axum::Extension<ShuttingDown>>| async move { format!("{}", stopping.is_some()) }),
        ));
        let call = || async {
            let res = app
                .clone()
                .oneshot(axum::http::Request::get("/").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let close = res.headers().get(header::CONNECTION).cloned();
            let body = axum::body::to_bytes(res.into_body(), 100).await.unwrap();
            (String::from_utf8(body.to_vec()).unwrap(), close)
        };
        assert_eq!(call().await, ("false".into(), None));
        drain.stage.send_replace(Stage::Draining);
        assert_eq!(call().await, ("true".into(), Some(HeaderValue::from_static("close"))));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_are_bounded_after_the_stop() {
        let drain = Drain::new(Shutdown {
            drain: Duration::ZERO,
            timeout: Duration::from_secs(3),
        });
        // Before the stop, no bound applies.
        let quick = drain.bounded(tokio::time::sleep(Duration::from_secs(60))).await;
        assert_eq!(quick, Some(()));
        drain.stage.send_replace(Stage::Stopping);
        let start = tokio::time::Instant::now();
        assert_eq!(drain.bounded(std::future::pending::<()>()).await, None);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
