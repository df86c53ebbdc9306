//! Anonymous uploads cannot block the writers (issue 22, item 3): seven anonymous sockets each
//! send `PUT /x` announcing a 10 MiB body, trickle it at 1 KB/s and reconnect after their 401,
//! while authenticated publishes and logins go on. A request is authorized before its body takes
//! any of `server.maxBodyBytesInFlight` (64 MiB by default: seven such announcements used to
//! spend it and every publish and login got 503).

mod common;

use common::*;
use reqwest::Method;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One anonymous uploader until `stop`: connect, announce 10 MiB, trickle 1 KB a second, and
/// start again once answered (or cut off). Counts the answers it got.
fn trickler(port: u16, stop: Arc<AtomicBool>, answers: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        s.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let head = "PUT /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                    Content-Length: 10485760\r\n\r\n";
        if s.write_all(head.as_bytes()).is_err() {
            continue;
        }
        let chunk = [b' '; 1024];
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::Relaxed) {
            if s.write_all(&chunk).is_err() {
                break;
            }
            // Waits a second for an answer: the trickle's pace.
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    answers.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    }
}

#[test]
fn trickling_anonymous_uploads_do_not_block_authenticated_publishes_and_logins() {
    let work = tempfile::tempdir().unwrap();
    let htpasswd = work.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("alice-password", 4).unwrap()),
    )
    .unwrap();
    let config = format!(
        "auth:\n  htpasswd:\n    file: {}\n\
         packages:\n  '**': {{ access: $all, publish: $authenticated }}\n",
        htpasswd.display()
    );
    let server = Server::start(&config, &work.path().join("storage"));
    let token = login(&server.url(), "alice", "alice-password").unwrap_or_else(|r| panic!("{}", r.text()));
    let (stop, answers) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let port = server.port;
    let tricklers: Vec<_> = (0..7)
        .map(|_| {
            let (stop, answers) = (stop.clone(), answers.clone());
            std::thread::spawn(move || trickler(port, stop, answers))
        })
        .collect();
    // Let every trickler hold its announcement.
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let (mut publishes, mut logins, mut slowest) = (Vec::new(), Vec::new(), Duration::ZERO);
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(14) {
        let t = Instant::now();
        let body = publish_body("busy-lib", &format!("1.0.{i}"), &vec![b'x'; 256 * 1024]);
        let r = http()
            .request(Method::PUT, &format!("{}busy-lib", server.url()))
            .header("authorization", &format!("Bearer {token}"))
            .json(&body)
            .send()
            .unwrap();
        publishes.push((r.status, r.text()));
        let l = login(&server.url(), "alice", "alice-password");
        logins.push(l.map(|_| 201).unwrap_or_else(|r| r.status));
        slowest = slowest.max(t.elapsed());
        i += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tricklers {
        t.join().unwrap();
    }
    let created = publishes.iter().filter(|(s, _)| *s == 201).count();
    let logged_in = logins.iter().filter(|s| **s == 201).count();
    println!(
        "7 trickling anonymous 10 MiB uploads ({} answered and reconnected): {created} of {} publishes \
         and {logged_in} of {} logins got 201; slowest publish + login {slowest:?}",
        answers.load(Ordering::Relaxed),
        publishes.len(),
        logins.len()
    );
    assert!(publishes.len() >= 10);
    assert_eq!(created, publishes.len(), "{publishes:?}");
    assert_eq!(logged_in, logins.len(), "{logins:?}");
    assert!(
        answers.load(Ordering::Relaxed) >= 7,
        "the anonymous uploads were answered (401) and came back"
    );
}
