//! One address cannot starve the others (issue 22, item 2): 2,100 idle keep-alive sockets, or
//! 2,100 sockets trickling their headers, from one loopback address (127.0.0.2 and the like are
//! all loopback) while a second address keeps GETting a package with p99 under 200 ms; and when
//! the server is full, idle keep-alive connections give way to new clients. Before: one global
//! cap (2,048), and every normal GET timed out while the sockets were open.

mod common;

use common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The test holds thousands of sockets: its own open-file limit goes up to the hard limit.
fn raise_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= 4096,
        "the test needs 4,096 open files, the hard limit is {}",
        lim.rlim_cur
    );
}

/// A refused hog tries again after 1 to 3 s (spread, as independent clients would be: all of
/// them at once would be a SYN flood, which no accept loop can sort out).
fn retry_after() -> Duration {
    Duration::from_millis(1000 + rand::random::<u64>() % 2000)
}

async fn connect_from(from: &str, port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse::<SocketAddr>().unwrap())?;
    socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// Reads one response (head and `Content-Length` body) off `s`; its status.
async fn response(s: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text.get(9..12)?.parse().ok();
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Hog {
    /// One request, then the connection kept open doing nothing.
    IdleKeepAlive,
    /// Request headers, one byte a second.
    SlowHeaders,
}

/// Keeps up to `count` connections of this kind open from `from` until `stop`, opening new ones
/// as the server closes them; counts how many it holds.
async fn hog(from: &'static str, port: u16, count: usize, kind: Hog, stop: Arc<AtomicBool>, held: Arc<AtomicUsize>) {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (stop, held) = (stop.clone(), held.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = connect_from(from, port).await else {
                        tokio::time::sleep(retry_after()).await;
                        continue;
                    };
                    match kind {
                        Hog::IdleKeepAlive => {
                            if s.write_all(b"GET /-/ping HTTP/1.1\r\nHost: x\r\n\r\n").await.is_err()
                                || response(&mut s).await != Some(200)
                            {
                                // Refused (over the per-address cap): try again later.
                                tokio::time::sleep(retry_after()).await;
                                continue;
                            }
                            held.fetch_add(1, Ordering::Relaxed);
                            let mut b = [0u8; 64];
                            tokio::select! {
                                _ = s.read(&mut b) => {}
                                _ = async { while !stop.load(Ordering::Relaxed) { tokio::time::sleep(Duration::from_millis(100)).await } } => {}
                            }
                            held.fetch_sub(1, Ordering::Relaxed);
                        }
                        Hog::SlowHeaders => {
                            let head = b"GET /-/ping HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
                            // Counted as held once the server kept it open for a second.
                            let mut counted = false;
                            for b in head {
                                if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).await.is_err() {
                                    break;
                                }
                                let mut x = [0u8; 64];
                                match tokio::time::timeout(Duration::from_secs(1), s.read(&mut x)).await {
                                    Ok(Ok(0) | Err(_)) => break,
                                    Err(_) if !counted => {
                                        counted = true;
                                        held.fetch_add(1, Ordering::Relaxed);
                                    }
                                    _ => {}
                                }
                            }
                            if counted {
                                held.fetch_sub(1, Ordering::Relaxed);
                            }
                            tokio::time::sleep(retry_after()).await;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// GETs `path` from `from` on a new connection each time for `during`; each one's time.
async fn latencies(from: &'static str, port: u16, path: &str, during: Duration) -> Vec<Duration> {
    let mut out = Vec::new();
    let started = Instant::now();
    while started.elapsed() < during {
        let t = Instant::now();
        let ok = tokio::time::timeout(Duration::from_secs(10), async {
            let mut s = connect_from(from, port).await.ok()?;
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .ok()?;
            response(&mut s).await
        })
        .await;
        assert_eq!(ok, Ok(Some(200)), "a GET from {from} failed after {:?}", t.elapsed());
        out.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn published_server(config: &str) -> (tempfile::TempDir, Server) {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        &format!("{config}packages:\n  '**': {{ access: $all, publish: $all }}\n"),
        &work.path().join("storage"),
    );
    let r = http()
        .request(reqwest::Method::PUT, &format!("{}fair-lib", server.url()))
        .json(&publish_body("fair-lib", "1.0.0", b"tarball bytes"))
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    (work, server)
}

fn one_address_hogs(kind: Hog, label: &str) {
    raise_file_limit();
    let (_work, server) = published_server("");
    let port = server.port;
    let rt = runtime();
    let (stop, held) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let hogs = rt.spawn(hog("127.0.0.2", port, 2100, kind, stop.clone(), held.clone()));
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(3)).await });
    let times = rt.block_on(latencies("127.0.0.3", port, "/fair-lib", Duration::from_secs(6)));
    let holding = held.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), hogs).await });
    let (p50, p99, n) = (
        percentile(times.clone(), 0.5),
        percentile(times.clone(), 0.99),
        times.len(),
    );
    println!("{label}: 2,100 tried from 127.0.0.2, {holding} held; {n} GETs from 127.0.0.3: p50 {p50:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(200), "p99 {p99:?}");
    assert!(holding <= 256, "one address held {holding} connections");
}

#[test]
fn idle_keep_alive_sockets_from_one_address_do_not_starve_another() {
    one_address_hogs(Hog::IdleKeepAlive, "idle keep-alive");
}

#[test]
fn slow_header_sockets_from_one_address_do_not_starve_another() {
    one_address_hogs(Hog::SlowHeaders, "slow headers");
}

#[test]
fn a_full_server_reclaims_idle_keep_alive_connections_for_new_clients() {
    let (_work, server) = published_server("server:\n  maxConnections: 40\n  maxConnectionsPerAddress: 16\n");
    let port = server.port;
    let rt = runtime();
    let (stop, held) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let hogs: Vec<_> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .into_iter()
        .map(|from| rt.spawn(hog(from, port, 16, Hog::IdleKeepAlive, stop.clone(), held.clone())))
        .collect();
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
    let holding = held.load(Ordering::Relaxed);
    let times = rt.block_on(latencies("127.0.0.5", port, "/fair-lib", Duration::from_secs(3)));
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), h).await });
    }
    let (p99, worst) = (percentile(times.clone(), 0.99), percentile(times.clone(), 1.0));
    println!(
        "48 idle keep-alive connections tried from 3 addresses against maxConnections 40 ({holding} held): \
         {} GETs from a 4th address, p99 {p99:?}, slowest {worst:?}",
        times.len()
    );
    assert!(holding >= 38, "the idle connections filled the server: {holding}");
    assert!(
        worst < Duration::from_secs(2),
        "a new client waited {worst:?} (keepAliveTimeout is 75 s)"
    );
}
