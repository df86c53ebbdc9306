//! What every reconcile shares: the client, the event recorder, metrics, the watch caches and the
//! per-object backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

use crate::apply::FIELD_MANAGER;
use crate::cache::Caches;
use crate::telemetry::Metrics;

const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub caches: Caches,
    /// Consecutive failures per object, for exponential backoff (kube has none per key).
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context that reads live objects from the API server (no watch caches).
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            caches: Caches::default(),
            failures: Mutex::default(),
        }
    }

    /// Reads live objects from these caches first.
    pub fn with_caches(mut self, caches: Caches) -> Self {
        self.caches = caches;
        self
    }

    /// Publishes an event about `regarding`, `related` naming the child it concerns. The
    /// recorder folds events with the same reason, action, regarding and related object into one
    /// series, so each child gets its own.
    pub async fn event(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        type_: EventType,
        reason: &str,
        action: String,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action,
            secondary: related,
        };
        // An event that cannot be written must not fail the reconcile.
        if let Err(e) = self.recorder.publish(&event, regarding).await {
            warn!(error = %e, reason, "cannot publish event");
        }
    }

    pub fn reset_backoff(&self, key: &str) {
        self.failures.lock().expect("lock").remove(key);
    }

    /// 5s, 10s, 20s, … capped at 5 minutes.
    pub fn next_backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("lock");
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(*n - 1))
            .min(BACKOFF_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backoff_doubles_per_failure_up_to_five_minutes_and_resets() {
        let client = kube_fake_client::ClientBuilder::new().build().await.unwrap();
        let ctx = Context::new(client, Arc::default());
        let delays: Vec<u64> = (0..8).map(|_| ctx.next_backoff("ns/a").as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(ctx.next_backoff("ns/b").as_secs(), 5, "per object");
        ctx.reset_backoff("ns/a");
        assert_eq!(ctx.next_backoff("ns/a").as_secs(), 5);
    }
}
