//! Slow and idle clients cannot hold the server: connections that trickle their headers, wait
//! for nothing, trickle a body or stop reading a response are closed after the configured
//! timeouts while real `npm install`s succeed; connections over `server.maxConnections` wait
//! for a free slot; 200 uploads of 10 MB that hold back their last byte keep memory within
//! `server.maxBodyBytesInFlight` and are all refused.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How a slow client behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Connects and sends nothing.
    Silent,
    /// Sends one request, reads the answer, then keeps the connection open doing nothing.
    IdleAfterRequest,
    /// Sends its headers one byte every 300 ms.
    TrickledHeaders,
    /// Sends a publish's headers, then its body one byte every 200 ms.
    TrickledBody,
    /// Asks for a large tarball and never reads it.
    NotReading,
}

/// Runs one slow client until the server ends the connection; how long that took, and the
/// status of a response it got (if any).
fn slow_client(port: u16, kind: Kind, give_up: Duration) -> (Duration, Option<u16>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let start = Instant::now();
    let head = |path: &str, extra: &str| format!("{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
    let mut pending: Vec<u8> = Vec::new();
    let (mut drip, mut response) = (Duration::MAX, Vec::new());
    match kind {
        Kind::Silent => {}
        Kind::IdleAfterRequest => s.write_all(head("GET /-/ping", "").as_bytes()).unwrap(),
        Kind::TrickledHeaders => {
            pending = head("GET /-/ping", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n").into_bytes();
            drip = Duration::from_millis(300);
        }
        Kind::TrickledBody => {
            let h = head(
                // A package anonymous may publish: the body is read (elsewhere it is refused from
                // the headers alone, with 401).
                "PUT /big",
                "Content-Type: application/json\r\nContent-Length: 100000\r\n",
            );
            s.write_all(h.as_bytes()).unwrap();
            pending = vec![b' '; 100_000];
            drip = Duration::from_millis(200);
        }
        Kind::NotReading => {
            s.set_read_timeout(None).unwrap();
            s.write_all(head("GET /big/-/big-1.0.0.tgz", "").as_bytes()).unwrap();
            // Never read: wait until the server gives up on us, seen by a write failing.
            loop {
                std::thread::sleep(Duration::from_millis(200));
                if start.elapsed() > give_up {
                    return (start.elapsed(), None);
                }
                if let Err(e) = s.write_all(b"x") {
                    assert!(
                        matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
                        "{e}"
                    );
                    return (start.elapsed(), None);
                }
            }
        }
    }
    let mut next_drip = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        if start.elapsed() > give_up {
            return (start.elapsed(), None);
        }
        if !pending.is_empty() && Instant::now() >= next_drip {
            let b = pending.remove(0);
            if s.write_all(&[b]).is_err() {
                return (start.elapsed(), status(&response));
            }
            next_drip = Instant::now() + drip;
        }
        match s.read(&mut buf) {
            Ok(0) => return (start.elapsed(), status(&response)),
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (start.elapsed(), status(&response)),
        }
    }
}

fn status(response: &[u8]) -> Option<u16> {
    std::str::from_utf8(response.get(..12)?)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

const SLOW_CONFIG: &str = "
max_body_size: 64mb
server:
  headersTimeout: 3s
  keepAliveTimeout: 4s
  bodyTimeout: 3s
packages:
  'big': { access: $all, publish: $all }
  '**': { access: $all, publish: $authenticated }
";

#[test]
fn slow_and_idle_clients_are_closed_after_the_timeouts_while_npm_installs() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let server = Server::start(SLOW_CONFIG, &w.join("storage"));
    // A tarball larger than the loopback socket buffers, for the client that does not read it.
    let big = noise(24 << 20);
    let r = http()
        .request(reqwest::Method::PUT, &format!("{}big", server.url()))
        .json(&publish_body("big", "1.0.0", &big))
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let client = Client::new(&server.url());
    let src = write_package(w, "dep-under-load", "1.0.0", &[], "module.exports = 'fine';");
    client.npm_ok(&src, &["publish"]);

    let kinds = [
        (Kind::Silent, 60),
        (Kind::IdleAfterRequest, 60),
        (Kind::TrickledHeaders, 60),
        (Kind::TrickledBody, 60),
        (Kind::NotReading, 4),
    ];
    let port = server.port;
    let clients: Vec<_> = kinds
        .iter()
        .flat_map(|&(kind, n)| (0..n).map(move |_| kind))
        .map(|kind| {
            (
                kind,
                std::thread::spawn(move || slow_client(port, kind, Duration::from_secs(40))),
            )
        })
        .collect();

    // Real installs while all of them hold their connections.
    for i in 0..3 {
        let app = project(w, &format!("app{i}"));
        let started = Instant::now();
        client.npm_ok(&app, &["install", "dep-under-load", "--prefer-online"]);
        assert_eq!(client.require(&app, "dep-under-load"), "fine");
        println!("npm install {i} during the slow clients: {:?}", started.elapsed());
    }

    let mut by_kind: Vec<(Kind, Vec<Duration>, Vec<Option<u16>>)> = Vec::new();
    for (kind, t) in clients {
        let (took, status) = t.join().unwrap();
        match by_kind.iter_mut().find(|(k, ..)| *k == kind) {
            Some((_, times, statuses)) => {
                times.push(took);
                statuses.push(status);
            }
            None => by_kind.push((kind, vec![took], vec![status])),
        }
    }
    for (kind, times, statuses) in &by_kind {
        let min = times.iter().min().unwrap();
        let max = times.iter().max().unwrap();
        println!(
            "{kind:?}: {} connections closed by the server after {min:?} .. {max:?}",
            times.len()
        );
        let (low, high) = match kind {
            Kind::Silent | Kind::TrickledHeaders => (2.5, 8.0), // headersTimeout 3s
            Kind::IdleAfterRequest => (3.5, 9.0),               // keepAliveTimeout 4s
            Kind::TrickledBody => (2.5, 8.0),                   // bodyTimeout 3s
            Kind::NotReading => (2.5, 30.0),                    // bodyTimeout, after the socket buffers fill
        };
        assert!(
            min.as_secs_f64() >= low && max.as_secs_f64() <= high,
            "{kind:?}: closed after {min:?} .. {max:?}, expected {low}s .. {high}s"
        );
        if *kind == Kind::TrickledBody {
            // The reason reaches the client: 408 with npm's error body.
            assert!(statuses.iter().all(|s| *s == Some(408)), "{statuses:?}");
        }
    }
    let r = http().get(&format!("{}-/ping", server.url())).send().unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn connections_over_the_cap_wait_for_a_slot() {
    let work = tempfile::tempdir().unwrap();
    let config = format!("server:\n  maxConnections: 20\n  headersTimeout: 2s\n{ANYONE_PUBLISHES}");
    let server = Server::start(&config, &work.path().join("storage"));
    let hogs: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let r = raw_request(server.port, "GET", "/-/ping", b"");
    let waited = started.elapsed();
    println!("a request behind 20 silent connections (the cap) was answered after {waited:?}");
    assert_eq!(r.status, 200);
    assert!(
        waited >= Duration::from_millis(1500),
        "served before a slot was free: {waited:?}"
    );
    drop(hogs);
}

#[test]
fn withheld_uploads_are_refused_and_memory_stays_within_the_body_budget() {
    const UPLOADS: usize = 200;
    const SIZE: usize = 10 << 20;
    let work = tempfile::tempdir().unwrap();
    // Anyone may publish: the bodies are authorized, so they take the body budget (a refused
    // one, 401, takes none: tests/anonymous_uploads.rs).
    let config = format!("server:\n  maxBodyBytesInFlight: 32mb\n  bodyTimeout: 3s\n{ANYONE_PUBLISHES}");
    let server = Server::start(&config, &work.path().join("storage"));
    let before = server.memory_kib("VmHWM");
    let port = server.port;
    let started = Instant::now();
    let uploads: Vec<_> = (0..UPLOADS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let head = format!(
                    "PUT /withheld-{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {SIZE}\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes());
                // Everything but the last byte, unless the server answers first.
                let chunk = vec![b' '; 64 << 10];
                let mut sent = 0;
                while sent < SIZE - 1 {
                    let n = chunk.len().min(SIZE - 1 - sent);
                    if s.write_all(&chunk[..n]).is_err() {
                        break;
                    }
                    sent += n;
                }
                let mut response = Vec::new();
                let _ = s.read_to_end(&mut response);
                status(&response)
            })
        })
        .collect();
    let statuses: Vec<Option<u16>> = uploads.into_iter().map(|t| t.join().unwrap()).collect();
    let took = started.elapsed();
    let after = server.memory_kib("VmHWM");
    let count = |s: Option<u16>| statuses.iter().filter(|x| **x == s).count();
    println!(
        "{UPLOADS} withheld 10 MB uploads in {took:?}: {} refused with 503, {} cut off with 408, {} reset \
         without an answer; VmHWM {before} KiB -> {after} KiB (+{} MiB)",
        count(Some(503)),
        count(Some(408)),
        count(None),
        (after - before) / 1024
    );
    assert!(
        statuses.iter().all(|s| matches!(s, Some(503 | 408 | 401) | None)),
        "{statuses:?}"
    );
    assert!(count(Some(503)) > UPLOADS / 2, "{statuses:?}");
    // The budget (32 MiB of bodies) plus the parse of what was read; not 200 x 10 MB.
    assert!(after - before < 120 * 1024, "VmHWM grew by {} KiB", after - before);
    let r = http().get(&format!("{}-/ping", server.url())).send().unwrap();
    assert_eq!(r.status, 200);
}
