//! The SDK client: credentials from the AWS default chain, rustls (ring) for TLS, timeouts and a
//! short retry budget so an unreachable S3 fails a request in seconds instead of hanging it.

use crate::config::S3Store;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, ProvideCredentials, Region};
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
    let default_chain = credentials.is_none();
    if let Some(c) = credentials {
        loader = loader.credentials_provider(c);
    }
    if let Some(region) = &cfg.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    if default_chain && let Some(provider) = shared.credentials_provider() {
        tokio::spawn(report_credentials(provider));
    }
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

/// The AWS default credential chain, in the order the SDK tries it: what a log line names when
/// it finds nothing.
const CHAIN: &str = "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), profile files \
(AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, ~/.aws), web identity (AWS_WEB_IDENTITY_TOKEN_FILE and \
AWS_ROLE_ARN: IRSA), container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI: EKS Pod \
Identity, ECS), EC2 instance metadata (the instance profile)";

/// Variables of the chain that are set (names only: values may be secrets).
fn chain_variables_set() -> Vec<&'static str> {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_EC2_METADATA_DISABLED",
    ]
    .into_iter()
    .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
    .collect()
}

/// Asks the credential chain once, at start, so that missing or unusable credentials are a clear
/// log line instead of every request failing later (`/-/ready` answers 503 until S3 works).
async fn report_credentials(provider: aws_sdk_s3::config::SharedCredentialsProvider) {
    match provider.provide_credentials().await {
        Ok(c) => tracing::info!(
            access_key_prefix = %c.access_key_id().chars().take(4).collect::<String>(),
            "AWS credentials found"
        ),
        Err(e) => {
            let set = chain_variables_set();
            let set = if set.is_empty() {
                "none of its variables are set".to_owned()
            } else {
                format!("set: {}", set.join(", "))
            };
            tracing::error!(
                error = %aws_sdk_s3::error::DisplayErrorContext(&e),
                "no usable AWS credentials: the default chain was tried in this order: {CHAIN} ({set}); \
                 S3 requests fail and /-/ready answers 503 until credentials are available"
            );
        }
    }
}
