//! Missing S3 credentials (issue 22, item 11): one clear error naming the cause, then at most a
//! reminder a minute, never the SDK's warning every two seconds (37 KB of log in 25 s before:
//! the signing keys' retry loop logged the SDK's whole error chain each time).

mod common;

use common::moto::{Moto, s3_config};
use common::*;
use std::time::Duration;

#[test]
fn missing_credentials_log_one_error_and_no_flood() {
    let moto = Moto::start();
    moto.create_bucket("no-creds");
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_str().unwrap().to_owned();
    // No credentials anywhere in the chain: no variables, no ~/.aws (HOME is empty), no instance
    // metadata service.
    let env = [("HOME", home_dir.as_str()), ("AWS_EC2_METADATA_DISABLED", "true")];
    let server = Server::start_env(&s3_config(&moto, "no-creds", "", ""), &home.path().join("unused"), &env);
    // The server idles as a pod would before its credentials are fixed (a request's own failure
    // is logged with its request id, once per request: not what this is about).
    std::thread::sleep(Duration::from_secs(12));
    let log = server.log();
    let count = |level: &str| log.lines().filter(|l| l.contains(level)).count();
    let (errors, warnings) = (count("ERROR"), count(" WARN"));
    println!(
        "12 s without S3 credentials: {} bytes, {} lines of log; {errors} ERROR, {warnings} WARN",
        log.len(),
        log.lines().count()
    );
    let cause: Vec<_> = log
        .lines()
        .filter(|l| l.contains("no usable AWS credentials"))
        .collect();
    assert_eq!(cause.len(), 1, "{log}");
    assert!(cause[0].contains("ERROR"), "{}", cause[0]);
    // The cause, then at most one line from each background task that needs storage (signing
    // keys, the user names' record, the repair pass): nothing repeated.
    assert!(errors + warnings <= 4, "{log}");
    assert!(log.len() < 8 * 1024, "{} bytes of log:\n{log}", log.len());
}
