//! A scripted upstream registry for uplink tests: serves given packuments and tarballs, honours
//! `If-None-Match`, counts every request, and can answer slowly, lie about a tarball, or fail in
//! the ways real upstreams do ([`Fault`]).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a packument or tarball request fails.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The request is accepted and never answered.
    Hang,
    /// This status, with a JSON error body.
    Status(u16),
    /// 200 with these bytes as the body.
    Body(Vec<u8>),
    /// The first `n` bytes of the real answer (with its full length declared), then the
    /// connection breaks.
    Reset(usize),
    /// A 200 that never ends (chunked, no length declared).
    Endless,
}

#[derive(Default)]
struct State {
    packuments: HashMap<String, Value>,
    /// Packuments served as these bytes.
    raw: HashMap<String, Bytes>,
    faults: HashMap<String, Fault>,
    tarballs: HashMap<String, Vec<u8>>,
    hits: HashMap<String, usize>,
    delay: Duration,
    /// Send only this many bytes of a tarball until the gate opens.
    pause_after: Option<usize>,
}

pub struct FakeUpstream {
    pub port: u16,
    state: Arc<Mutex<State>>,
    gate: Arc<tokio::sync::Semaphore>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    pub fn start() -> FakeUpstream {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let g = gate.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = Router::new()
                    .fallback(move |uri: Uri, headers: HeaderMap| handle(s.clone(), g.clone(), uri, headers));
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        FakeUpstream {
            port,
            state,
            gate,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Serves `doc` for its name; tarball URLs in it should point at [`tarball_url`](Self::tarball_url).
    pub fn add_packument(&self, doc: Value) {
        let name = doc["name"].as_str().unwrap().to_owned();
        self.state.lock().unwrap().packuments.insert(name, doc);
    }

    /// Serves `bytes` (a packument as upstream spells it) for `name`.
    pub fn add_raw_packument(&self, name: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .raw
            .insert(name.to_owned(), Bytes::from(bytes));
    }

    /// From now on, requests for `what` (a packument name or a tarball path) fail this way;
    /// `None` ends it.
    pub fn set_fault(&self, what: &str, fault: Option<Fault>) {
        let mut s = self.state.lock().unwrap();
        match fault {
            Some(f) => s.faults.insert(what.trim_start_matches('/').to_owned(), f),
            None => s.faults.remove(what.trim_start_matches('/')),
        };
    }

    pub fn add_tarball(&self, path: &str, bytes: Vec<u8>) {
        self.state.lock().unwrap().tarballs.insert(path.to_owned(), bytes);
    }

    pub fn tarball_url(&self, path: &str) -> String {
        format!("{}{}", self.url(), path.trim_start_matches('/'))
    }

    pub fn set_delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    /// From now on, tarballs longer than `bytes` stop after their first `bytes` until
    /// [`release`](Self::release).
    pub fn pause_tarballs_after(&self, bytes: usize) {
        self.state.lock().unwrap().pause_after = Some(bytes);
    }

    /// Lets paused tarballs finish.
    pub fn release(&self) {
        self.gate.add_permits(1);
    }

    /// Requests received for a packument name or a tarball path.
    pub fn hits(&self, what: &str) -> usize {
        self.state.lock().unwrap().hits.get(what).copied().unwrap_or(0)
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn handle(state: Arc<Mutex<State>>, gate: Arc<tokio::sync::Semaphore>, uri: Uri, headers: HeaderMap) -> Response {
    let path = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let (delay, fault) = {
        let mut s = state.lock().unwrap();
        let key = if path.ends_with(".tgz") {
            path.clone()
        } else {
            path.trim_start_matches('/').to_owned()
        };
        *s.hits.entry(key).or_default() += 1;
        (s.delay, s.faults.get(path.trim_start_matches('/')).cloned())
    };
    tokio::time::sleep(delay).await;
    match fault {
        None | Some(Fault::Reset(_)) => {}
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Some(Fault::Status(code)) => {
            return (StatusCode::from_u16(code).unwrap(), "{\"error\":\"scripted\"}").into_response();
        }
        Some(Fault::Body(b)) => return ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Some(Fault::Endless) => {
            let prefix = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"{\"name\":\"x\",\"readme\":\""))
            });
            let endless = futures_util::stream::repeat_with(|| Ok(Bytes::from(vec![b'a'; 64 * 1024])));
            return Response::new(Body::from_stream(prefix.chain(endless)));
        }
    }
    let response = answer(&state, &gate, &path, &headers);
    match fault {
        Some(Fault::Reset(n)) => reset_after(response, n).await,
        _ => response,
    }
}

/// `response` with only its first `n` body bytes, then a broken connection.
async fn reset_after(response: Response, n: usize) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let head = bytes.slice(..n.min(bytes.len()));
    let broken = futures_util::stream::iter([
        Ok(head),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "scripted reset",
        )),
    ]);
    let mut r = Response::from_parts(parts, Body::from_stream(broken));
    r.headers_mut().insert(header::CONTENT_LENGTH, bytes.len().into());
    r
}

fn answer(state: &Mutex<State>, gate: &Arc<tokio::sync::Semaphore>, path: &str, headers: &HeaderMap) -> Response {
    let gate = gate.clone();
    let s = state.lock().unwrap();
    if path.ends_with(".tgz") {
        return match (s.tarballs.get(path), s.pause_after) {
            (Some(b), Some(n)) if b.len() > n => {
                let (head, tail) = (Bytes::from(b[..n].to_vec()), Bytes::from(b[n..].to_vec()));
                let tail = async move {
                    // Dropping the permit hands it to the next paused download.
                    let _open = gate.acquire().await.unwrap();
                    Ok::<_, std::io::Error>(tail)
                };
                let body = futures_util::stream::once(async { Ok(head) }).chain(futures_util::stream::once(tail));
                ([(header::CONTENT_LENGTH, b.len().to_string())], Body::from_stream(body)).into_response()
            }
            (Some(b), _) => Response::new(Body::from(Bytes::from(b.clone()))),
            (None, _) => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let name = path.trim_start_matches('/');
    let body = match (s.raw.get(name), s.packuments.get(name)) {
        (Some(raw), _) => raw.clone(),
        (None, Some(doc)) => Bytes::from(serde_json::to_vec(doc).unwrap()),
        (None, None) => return (StatusCode::NOT_FOUND, "{\"error\":\"not found\"}").into_response(),
    };
    let etag = format!("\"{}\"", body.len());
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ETAG, etag.as_str()),
        ],
        body,
    )
        .into_response()
}
