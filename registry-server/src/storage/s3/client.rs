//! The SDK client: credentials from the AWS default chain, rustls (ring) for TLS, timeouts and a
//! short retry budget so an unreachable S3 fails a request in seconds instead of hanging it.

use crate::config::S3Store;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_smithy_http_client::tls;
use std::time::Duration;

/// Used when neither the config nor the AWS chain names a region (S3-compatible servers
/// usually do not care; AWS redirects clients that guess wrong).
const FALLBACK_REGION: &str = "us-east-1";

/// `credentials`: `None` for the AWS default chain.
pub async fn build(cfg: &S3Store, credentials: Option<Credentials>) -> aws_sdk_s3::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(cfg.connect_timeout)
        .operation_attempt_timeout(cfg.request_timeout)
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(cfg.max_attempts)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(2));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .retry_config(retries);
    if let Some(c) = credentials {
        loader = loader.credentials_provider(c);
    }
    if let Some(region) = &cfg.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut s3 = aws_sdk_s3::config::Builder::from(&shared).force_path_style(cfg.force_path_style);
    if shared.region().is_none() {
        tracing::info!("no AWS region configured; using {FALLBACK_REGION}");
        s3 = s3.region(Region::from_static(FALLBACK_REGION));
    }
    if let Some(endpoint) = &cfg.endpoint {
        s3 = s3.endpoint_url(endpoint);
    }
    aws_sdk_s3::Client::from_conf(s3.build())
}
