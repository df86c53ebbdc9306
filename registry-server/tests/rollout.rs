//! Zero-loss rollouts: two servers on one storage folder behind a small TCP balancer that, like
//! kube-proxy, sends new connections round-robin to the backends whose `/-/ready` last answered
//! 2xx (polled every 150 ms). Under 40 requests/s on a fixed clock (GETs and some publishes, 3 s
//! timeout each), each backend in turn gets SIGTERM, exits, and starts again on its port:
//! no request may fail.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const RATE_PERIOD: Duration = Duration::from_millis(25);
const POLL_PERIOD: Duration = Duration::from_millis(150);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

fn start(port: u16, config: &Path, dir: &Path) -> Server {
    let listen = format!("127.0.0.1:{port}");
    let storage = dir.join("storage");
    Server::start_on(
        port,
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &listen,
            "--storage",
            storage.to_str().unwrap(),
        ],
        dir,
        &[],
    )
}

/// The balancer: returns its address; runs until the runtime stops.
async fn balancer(backends: Vec<u16>) -> SocketAddr {
    let ready: Arc<Vec<AtomicBool>> = Arc::new(backends.iter().map(|_| AtomicBool::new(false)).collect());
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    for (i, port) in backends.iter().copied().enumerate() {
        let (ready, probe) = (ready.clone(), probe.clone());
        tokio::spawn(async move {
            let url = format!("http://127.0.0.1:{port}/-/ready");
            loop {
                let ok = probe.get(&url).send().await.is_ok_and(|r| r.status().is_success());
                ready[i].store(ok, Ordering::SeqCst);
                tokio::time::sleep(POLL_PERIOD).await;
            }
        });
    }
    // Wait until both are in rotation.
    while !ready.iter().all(|r| r.load(Ordering::SeqCst)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let n = backends.len();
            let start = next.fetch_add(1, Ordering::SeqCst);
            // Round-robin over the ready backends; no retry on a refused connection (kube-proxy's
            // rules do not retry either: the client would see it).
            let Some(port) = (0..n)
                .map(|k| (start + k) % n)
                .find(|&i| ready[i].load(Ordering::SeqCst))
                .map(|i| backends[i])
            else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(mut backend) = TcpStream::connect(("127.0.0.1", port)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
            });
        }
    });
    addr
}

#[derive(Default)]
struct Tally {
    gets: AtomicUsize,
    publishes: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

/// One request every [`RATE_PERIOD`] (on a clock, not one after another), until `stop`.
async fn load(base: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let client = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();
    let mut tick = tokio::time::interval(RATE_PERIOD);
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0u32;
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        n += 1;
        let (client, base, tally) = (client.clone(), base.clone(), tally.clone());
        tasks.spawn(async move {
            let publish = n.is_multiple_of(20);
            let sent = if publish {
                let body = publish_body("rolled", &format!("1.0.{n}"), format!("tarball {n}").as_bytes());
                client.put(format!("{base}rolled")).json(&body).send().await
            } else {
                let path = ["rolled", "rolled/-/rolled-1.0.0.tgz", "-/ping"][n as usize % 3];
                client.get(format!("{base}{path}")).send().await
            };
            let outcome = match sent {
                Ok(r) if r.status().is_success() => r.bytes().await.map(|_| ()).map_err(|e| format!("body: {e}")),
                Ok(r) => Err(format!("status {}", r.status())),
                Err(e) => Err(format!("{e:?}")),
            };
            match outcome {
                Ok(()) if publish => tally.publishes.fetch_add(1, Ordering::SeqCst),
                Ok(()) => tally.gets.fetch_add(1, Ordering::SeqCst),
                Err(why) => {
                    let at = began.elapsed().as_secs_f32();
                    tally
                        .failures
                        .lock()
                        .unwrap()
                        .push(format!("request {n} at {at:.2}s: {why}"));
                    0
                }
            };
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[test]
fn restarting_each_backend_in_turn_loses_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    // A 2 s drain: ten times the balancer's poll period (in a cluster the default 5 s covers
    // kube-proxy's lag).
    std::fs::write(
        &config,
        format!("{ANYONE_PUBLISHES}\nserver:\n  shutdown: {{ drain: 2s, timeout: 5s }}\n"),
    )
    .unwrap();
    let ports = [free_port(), free_port()];
    let mut backends: Vec<Server> = ports.iter().map(|&p| start(p, &config, dir.path())).collect();
    let seeded = http()
        .request(reqwest::Method::PUT, &format!("{}rolled", backends[0].url()))
        .json(&publish_body("rolled", "1.0.0", b"tarball 0"))
        .send()
        .unwrap();
    assert!(seeded.is_success(), "{}", seeded.text());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(balancer(ports.to_vec()));
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let load = rt.spawn(load(format!("http://{addr}/"), stop.clone(), tally.clone()));

    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    for (i, &port) in ports.iter().enumerate() {
        let stopping = Instant::now();
        backends[i].terminate();
        let status = backends[i]
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("backend {i} did not exit:\n{}", backends[i].log()));
        assert!(
            status.success(),
            "backend {i} exited with {status}:\n{}",
            backends[i].log()
        );
        let drained = stopping.elapsed();
        assert!(
            drained >= Duration::from_secs(2),
            "exited after {drained:?}, before its drain"
        );
        eprintln!("backend {i}: exited {drained:?} after SIGTERM");
        backends[i] = start(port, &config, dir.path());
        // Back in rotation before the other one goes.
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    rt.block_on(load).unwrap();

    let failures = tally.failures.lock().unwrap().clone();
    let (gets, publishes) = (
        tally.gets.load(Ordering::SeqCst),
        tally.publishes.load(Ordering::SeqCst),
    );
    let secs = began.elapsed().as_secs_f64();
    eprintln!(
        "{gets} GETs and {publishes} publishes in {secs:.1} s ({:.0}/s) through two restarts: {} failed",
        (gets + publishes) as f64 / secs,
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests:\n{}", failures.join("\n"));
    assert!(
        gets > 200 && publishes > 10,
        "too little load: {gets} GETs, {publishes} publishes"
    );
    // Every acknowledged publish is there.
    let doc = http()
        .get(&format!("{}rolled", backends[1].url()))
        .send()
        .unwrap()
        .json();
    let versions = doc["versions"].as_object().unwrap().len();
    assert_eq!(versions, publishes + 1, "versions stored vs publishes acknowledged");
}
