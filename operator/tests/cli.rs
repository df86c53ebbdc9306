//! The binary as a process: a taken metrics port stops it at once, non-zero, naming the address
//! (before it even looks for a cluster).

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_taken_metrics_port_exits_non_zero_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_npm-registry-operator"))
        .args(["run", "--no-leader-election", "--metrics-addr", &addr.to_string()])
        // No cluster is needed to see it: the bind comes first.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!output.status.success(), "exit status {}", output.status);
    let logs = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains(&format!("cannot listen on {addr}")),
        "the error names the address: {logs}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "at once");
    drop(taken);
}
