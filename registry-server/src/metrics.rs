//! The Prometheus metric families: requests by route and status, latency histograms, packument
//! and tarball cache hits and misses, storage operation latency, uplink requests. Served, and
//! counted per request, by `http::metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

impl ResultLabel {
    fn hit(hit: bool) -> Self {
        ResultLabel {
            result: if hit { "hit" } else { "miss" },
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeldLabel {
    pub held: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UplinkLabels {
    pub uplink: String,
    pub outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: HistogramFamily<RouteLabel>,
    pub packument_cache: Family<ResultLabel, Counter>,
    pub tarball_cache: Family<ResultLabel, Counter>,
    pub storage_duration: HistogramFamily<OpLabel>,
    pub storage_errors: Family<OpLabel, Counter>,
    pub uplink_requests: Family<UplinkLabels, Counter>,
    pub memory: Family<HeldLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("npm_registry");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            HistogramFamily::<RouteLabel>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let packument_cache = Family::<ResultLabel, Counter>::default();
        let tarball_cache = Family::<ResultLabel, Counter>::default();
        let storage_duration = HistogramFamily::<OpLabel>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let storage_errors = Family::<OpLabel, Counter>::default();
        let uplink_requests = Family::<UplinkLabels, Counter>::default();
        let memory = Family::<HeldLabel, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            request_duration.clone(),
        );
        registry.register(
            "packument_cache",
            "Packument cache lookups by result (hit, miss)",
            packument_cache.clone(),
        );
        registry.register(
            "tarball_cache",
            "In-memory tarball cache lookups by result (hit, miss)",
            tarball_cache.clone(),
        );
        registry.register(
            "storage_operation_duration_seconds",
            "Storage operation latency",
            storage_duration.clone(),
        );
        registry.register(
            "storage_errors",
            "Storage operations that failed",
            storage_errors.clone(),
        );
        registry.register(
            "uplink_requests",
            "Requests to uplinks by outcome",
            uplink_requests.clone(),
        );
        registry.register(
            "memory_bytes",
            "Bytes held in memory, by what holds them (packument_cache, tarball_cache, upstream_in_flight)",
            memory.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            packument_cache,
            tarball_cache,
            storage_duration,
            storage_errors,
            uplink_requests,
            memory,
        }
    }
}

impl Metrics {
    pub fn cache(&self, hit: bool) {
        self.packument_cache.get_or_create(&ResultLabel::hit(hit)).inc();
    }

    pub fn tarball_cache(&self, hit: bool) {
        self.tarball_cache.get_or_create(&ResultLabel::hit(hit)).inc();
    }

    /// What `held` holds in memory now.
    pub fn held(&self, held: &'static str, bytes: u64) {
        self.memory
            .get_or_create(&HeldLabel { held })
            .set(bytes.try_into().unwrap_or(i64::MAX));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lookups_are_counted() {
        let m = Metrics::default();
        m.cache(true);
        assert!(
            m.render()
                .contains("npm_registry_packument_cache_total{result=\"hit\"} 1")
        );
    }
}
