//! One upstream registry: HTTP requests with its timeout, headers and credentials, and its health.

use super::health::Health;
use super::packument_budget::{Budget, Room};
use super::record;
use crate::config::{Uplink, UplinkAuthKind};
use crate::metrics::{Metrics, UplinkLabels};
use bytes::Bytes;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_NONE_MATCH,
};
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("uplink {uplink} did not answer within {secs} s")]
    Timeout { uplink: String, secs: u64 },
    /// `cause` is what a client may be told (no internals beyond the uplink's URL); `reason`
    /// the whole story, for the log.
    #[error("uplink {uplink} ({url}) failed: {reason}")]
    Failed {
        uplink: String,
        url: String,
        cause: String,
        reason: String,
    },
    #[error("uplink {uplink} ({url}) is marked down after repeated failures (last: {cause})")]
    Down { uplink: String, url: String, cause: String },
    #[error("uplink {uplink} sent a {what} larger than its limit of {limit} bytes (uplinks.{uplink}.max_{what}_size)")]
    TooLarge {
        uplink: String,
        what: &'static str,
        limit: u64,
    },
    #[error("uplink {uplink}: {reason}")]
    Busy { uplink: String, reason: String },
}

/// An `npm audit` request to pass on: its path and body, and the headers that say how to read
/// the body (header values as sent).
pub struct AuditRequest<'a> {
    pub path: &'a str,
    pub content_type: Option<&'a [u8]>,
    pub content_encoding: Option<&'a [u8]>,
    pub body: Bytes,
}

/// An uplink's answer to an audit request.
pub struct AuditAnswer {
    pub status: u16,
    pub content_type: Option<Vec<u8>>,
    pub body: Bytes,
}

pub enum Packument {
    /// The header line and the body as received, in one buffer (`body_at` is where the body
    /// starts): what is stored, without a copy.
    Fresh {
        record: Bytes,
        body_at: usize,
        header: record::Header,
        room: Arc<Room>,
    },
    NotModified,
    NotFound,
}

/// An uplink's URL as clients may see it: without the user and password it may carry.
pub fn public_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// What went wrong with a request, in words a client may be shown: the kind of failure only
/// (the chain of sources is searched for the OS error), never addresses or internal paths.
pub fn cause_of(e: &reqwest::Error) -> String {
    use std::io::ErrorKind::*;
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut dns = false;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ConnectionRefused => return "connection refused".to_owned(),
                ConnectionReset => return "connection reset".to_owned(),
                ConnectionAborted => return "connection aborted".to_owned(),
                TimedOut => return "connection timed out".to_owned(),
                HostUnreachable | NetworkUnreachable => return "host unreachable".to_owned(),
                UnexpectedEof => return "connection closed early".to_owned(),
                _ => {}
            }
        }
        dns |= s.to_string().contains("dns error");
        source = s.source();
    }
    if dns {
        "host name not found".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the answer broke off".to_owned()
    } else {
        "request failed".to_owned()
    }
}

pub struct UplinkClient {
    pub name: String,
    pub config: Uplink,
    http: reqwest::Client,
    pub health: Health,
    metrics: Arc<Metrics>,
}

impl UplinkClient {
    pub fn new(name: &str, config: Uplink, metrics: Arc<Metrics>) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("uplinks.{name}.headers: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("uplinks.{name}.headers: {e}"))?;
            headers.insert(name, value);
        }
        if let Some(auth) = &config.auth {
            // The token lives in the environment (a Kubernetes Secret), never in the config file.
            let token = std::env::var(&auth.token_env).map_err(|_| {
                format!(
                    "uplinks.{name}.auth: environment variable {} is not set",
                    auth.token_env
                )
            })?;
            let scheme = match auth.kind {
                UplinkAuthKind::Bearer => "Bearer",
                UplinkAuthKind::Basic => "Basic",
            };
            let mut value =
                HeaderValue::from_str(&format!("{scheme} {token}")).map_err(|e| format!("uplinks.{name}.auth: {e}"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        // No overall timeout on the client: a large tarball may take long to arrive; packument and
        // audit requests set one of their own, and every read waits at most `timeout`.
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("npm-registry-server/", env!("CARGO_PKG_VERSION")))
            .read_timeout(config.timeout)
            .connect_timeout(config.timeout.min(std::time::Duration::from_secs(10)))
            .danger_accept_invalid_certs(!config.strict_ssl)
            .build()
            .map_err(|e| format!("uplinks.{name}: {e}"))?;
        Ok(UplinkClient {
            name: name.to_owned(),
            health: Health::new(config.max_fails, config.fail_timeout),
            config,
            http,
            metrics,
        })
    }

    fn count(&self, outcome: &'static str) {
        self.metrics
            .uplink_requests
            .get_or_create(&UplinkLabels {
                uplink: self.name.clone(),
                outcome,
            })
            .inc();
    }

    /// A failure a client may be told about as `cause`.
    pub fn failed(&self, cause: String, reason: String) -> FetchError {
        FetchError::Failed {
            uplink: self.name.clone(),
            url: public_url(&self.config.url),
            cause,
            reason,
        }
    }

    fn down(&self) -> FetchError {
        FetchError::Down {
            uplink: self.name.clone(),
            url: public_url(&self.config.url),
            cause: self.health.last_cause(),
        }
    }

    fn failure(&self, e: reqwest::Error) -> FetchError {
        let cause = cause_of(&e);
        self.health.failed(&cause);
        if e.is_timeout() {
            self.count("timeout");
            FetchError::Timeout {
                uplink: self.name.clone(),
                secs: self.config.timeout.as_secs(),
            }
        } else {
            self.count("error");
            self.failed(cause, e.to_string())
        }
    }

    fn bad_status(&self, status: reqwest::StatusCode) -> FetchError {
        let cause = format!("answered {status}");
        self.health.failed(&cause);
        self.count("error");
        self.failed(cause.clone(), cause)
    }

    fn too_large(&self, what: &'static str, limit: u64) -> FetchError {
        self.health.failed(&format!("sent a {what} larger than {limit} bytes"));
        self.count("too_large");
        FetchError::TooLarge {
            uplink: self.name.clone(),
            what,
            limit,
        }
    }

    fn busy(&self, e: impl std::fmt::Display) -> FetchError {
        self.count("busy");
        FetchError::Busy {
            uplink: self.name.clone(),
            reason: e.to_string(),
        }
    }

    /// The full packument (the abbreviated form lacks `time`, which quarantine and pnpm's
    /// `minimumReleaseAge` need), at most `max_packument_size` bytes of it, within one `timeout`
    /// for the whole answer, its bytes held under `budget`.
    pub async fn packument(
        &self,
        escaped_name: &str,
        etag: Option<&str>,
        budget: &Budget,
    ) -> Result<Packument, FetchError> {
        if self.health.is_down() {
            return Err(self.down());
        }
        let limit = self.config.max_packument_size;
        let mut req = self
            .http
            .get(format!("{}{escaped_name}", self.config.url))
            .timeout(self.config.timeout)
            .header(ACCEPT, "application/json");
        if let Some(e) = etag {
            req = req.header(IF_NONE_MATCH, e);
        }
        let mut res = req.send().await.map_err(|e| self.failure(e))?;
        match res.status() {
            reqwest::StatusCode::NOT_MODIFIED => {
                self.health.succeeded();
                self.count("not_modified");
                Ok(Packument::NotModified)
            }
            reqwest::StatusCode::NOT_FOUND => {
                self.health.succeeded();
                self.count("not_found");
                Ok(Packument::NotFound)
            }
            s if s.is_success() => {
                let etag = res.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let declared = res.content_length();
                if declared.is_some_and(|n| n > limit) {
                    return Err(self.too_large("packument", limit));
                }
                let header = super::packument::header(&self.name, etag);
                let line = record::header_line(&header);
                let expected = line.len() as u64 + declared.unwrap_or(0);
                let mut buf = budget
                    .buffer(expected, self.config.timeout)
                    .await
                    .map_err(|e| self.busy(e))?;
                buf.extend(&line).await.map_err(|e| self.busy(e))?;
                // Checked as it arrives: an endless answer stops at the limit.
                while let Some(chunk) = res.chunk().await.map_err(|e| self.failure(e))? {
                    if (buf.len() - line.len() + chunk.len()) as u64 > limit {
                        return Err(self.too_large("packument", limit));
                    }
                    buf.extend(&chunk).await.map_err(|e| self.busy(e))?;
                }
                self.health.succeeded();
                self.count("ok");
                let (record, room) = buf.freeze();
                Ok(Packument::Fresh {
                    record,
                    body_at: line.len(),
                    header,
                    room,
                })
            }
            s => Err(self.bad_status(s)),
        }
    }

    /// Starts a tarball download: the response, once its status says the file follows. The body
    /// is read by the caller (each read waits at most `timeout`; the whole may take longer),
    /// which reports the end with [`body_done`](Self::body_done) or
    /// [`body_failed`](Self::body_failed).
    pub async fn tarball(&self, url: &str) -> Result<Option<reqwest::Response>, FetchError> {
        if self.health.is_down() {
            return Err(self.down());
        }
        let limit = self.config.max_tarball_size;
        let res = tokio::time::timeout(self.config.timeout, self.http.get(url).send())
            .await
            .map_err(|_| {
                self.health.failed("timed out");
                self.count("timeout");
                FetchError::Timeout {
                    uplink: self.name.clone(),
                    secs: self.config.timeout.as_secs(),
                }
            })?
            .map_err(|e| self.failure(e))?;
        if res.content_length().is_some_and(|n| n > limit) {
            return Err(self.too_large("tarball", limit));
        }
        match res.status() {
            reqwest::StatusCode::NOT_FOUND => {
                self.count("not_found");
                Ok(None)
            }
            s if s.is_success() => Ok(Some(res)),
            s => Err(self.bad_status(s)),
        }
    }

    /// A download's body arrived whole.
    pub fn body_done(&self) {
        self.health.succeeded();
        self.count("ok");
    }

    /// A download broke off (timeout, reset, short body).
    pub fn body_failed(&self, e: reqwest::Error) -> FetchError {
        self.failure(e)
    }

    /// A download went past `max_tarball_size` without saying so up front.
    pub fn tarball_too_large(&self) -> FetchError {
        self.too_large("tarball", self.config.max_tarball_size)
    }

    /// Passes an audit request on as it is (its body may be gzip-encoded).
    pub async fn audit(&self, request: &AuditRequest<'_>) -> Result<AuditAnswer, FetchError> {
        let mut req = self
            .http
            .post(format!("{}{}", self.config.url, request.path.trim_start_matches('/')));
        for (name, value) in [
            (CONTENT_TYPE, request.content_type),
            (CONTENT_ENCODING, request.content_encoding),
        ] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
                req = req.header(name, v);
            }
        }
        let res = req
            .timeout(self.config.timeout)
            .body(request.body.clone())
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        let status = res.status().as_u16();
        let content_type = res.headers().get(CONTENT_TYPE).map(|v| v.as_bytes().to_vec());
        let body = res.bytes().await.map_err(|e| self.failure(e))?;
        self.count("audit");
        Ok(AuditAnswer {
            status,
            content_type,
            body,
        })
    }

    /// A small document at `path` under the uplink's URL (its signing keys, a version's
    /// attestations), at most `limit` bytes; `None` when the uplink answers 404 or 400 (it has
    /// none: what npm concludes from those answers too). Health is left alone: these are side
    /// documents, not the packuments the uplink is judged by.
    pub async fn get_small(&self, path: &str, limit: usize) -> Result<Option<Bytes>, FetchError> {
        let failed = |reason: String| self.failed(reason.clone(), reason);
        let mut res = self
            .http
            .get(format!("{}{}", self.config.url, path.trim_start_matches('/')))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.failed(cause_of(&e), e.to_string()))?;
        match res.status() {
            reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::BAD_REQUEST => return Ok(None),
            s if !s.is_success() => return Err(failed(format!("answered {s}"))),
            _ => {}
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| self.failed(cause_of(&e), e.to_string()))?
        {
            if body.len() + chunk.len() > limit {
                return Err(failed(format!("sent more than {limit} bytes for {path}")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Bytes::from(body)))
    }
}
