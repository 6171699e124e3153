//! The controller's Prometheus metrics: one `Registry` owned here, updated by the
//! controller and the API client layer, rendered by `/metrics`. Nothing here talks to the
//! cluster.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s output (OpenMetrics text, which Prometheus
/// scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upstream's buckets (`ExponentialBuckets(1, 4, 6)`, 1 s to ~17 min) preceded by
/// sub-second ones, because bare-ccm initialises nodes in milliseconds and upstream's
/// first bucket would hide every difference.
const DELAY_BUCKETS: [f64; 11] = [
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0,
];

/// Labels of one API request outcome, counted in the client layer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Kubernetes verb (get, list, watch, create, patch, update, delete).
    pub verb: String,
    /// HTTP status code, or `error` when no response arrived.
    pub code: String,
}

/// Label of a failed node sync.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `controller::Error::metric_label()` of the failure.
    pub reason: String,
}

/// Every metric bare-ccm exports, registered once.
pub struct Metrics {
    registry: Registry,
    /// Upstream `node_controller_cloud_provider_taint_removal_delay_seconds`: node creation
    /// to the write that removed the uninitialized taint.
    pub taint_removal_delay: Histogram,
    /// Upstream `node_controller_initial_node_sync_delay_seconds`: node creation to the end
    /// of its initial synchronisation.
    pub initial_sync_delay: Histogram,
    /// Nodes initialised by this process.
    pub initializations: Counter,
    /// Failed node syncs by reason.
    pub sync_failures: Family<FailureLabels, Counter>,
    /// API requests by verb and status code (errors are the non-2xx codes).
    pub api_requests: Family<RequestLabels, Counter>,
    /// Nodes carrying the uninitialized taint in the cache right now.
    pub nodes_awaiting_initialization: Gauge,
    /// 1 while this replica holds the lease (or leader election is off), else 0.
    pub leader: Gauge,
    /// Events dropped because the event queue was full (see `controller::events`).
    pub events_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let taint_removal_delay = Histogram::new(DELAY_BUCKETS);
        let initial_sync_delay = Histogram::new(DELAY_BUCKETS);
        let initializations = Counter::default();
        let sync_failures = Family::<FailureLabels, Counter>::default();
        let api_requests = Family::<RequestLabels, Counter>::default();
        let nodes_awaiting_initialization = Gauge::default();
        let leader = Gauge::default();
        let events_dropped = Counter::default();
        // Names and help texts of the two histograms follow kubernetes/cloud-provider
        // `controllers/node/metrics.go` (subsystem `node_controller`). Help texts carry no
        // final period: prometheus-client adds one (`Registry::register`, 0.26).
        registry.register(
            "node_controller_cloud_provider_taint_removal_delay_seconds",
            "Number of seconds after node creation when NodeController removed the cloud-provider taint of a single node",
            taint_removal_delay.clone(),
        );
        registry.register(
            "node_controller_initial_node_sync_delay_seconds",
            "Number of seconds after node creation when NodeController finished the initial synchronization of a single node",
            initial_sync_delay.clone(),
        );
        registry.register(
            "bare_ccm_node_initializations",
            "Nodes initialised (uninitialized taint removed) by this process",
            initializations.clone(),
        );
        registry.register(
            "bare_ccm_node_sync_failures",
            "Failed node syncs, by reason",
            sync_failures.clone(),
        );
        registry.register(
            "bare_ccm_api_requests",
            "Kubernetes API requests, by verb and HTTP status code (code=\"error\": no response)",
            api_requests.clone(),
        );
        registry.register(
            "bare_ccm_nodes_awaiting_initialization",
            "Nodes that carry the uninitialized taint",
            nodes_awaiting_initialization.clone(),
        );
        registry.register(
            "bare_ccm_leader",
            "1 while this replica holds the leader lease (or leader election is disabled)",
            leader.clone(),
        );
        registry.register(
            "bare_ccm_events_dropped",
            "Kubernetes Events not sent because the event queue was full (node initialisation never waits for events)",
            events_dropped.clone(),
        );
        Metrics {
            registry,
            taint_removal_delay,
            initial_sync_delay,
            initializations,
            sync_failures,
            api_requests,
            nodes_awaiting_initialization,
            leader,
            events_dropped,
        }
    }

    /// Exports `reasons` of failed node syncs with a count of 0 before any failure, so
    /// that rate() and alerts see the series from the first scrape.
    pub fn expect_sync_failure_reasons(&self, reasons: &[&str]) {
        for reason in reasons {
            drop(self.sync_failures.get_or_create(&FailureLabels {
                reason: (*reason).to_string(),
            }));
        }
    }

    /// Counts one failed node sync under `reason`.
    pub fn sync_failed(&self, reason: &str) {
        self.sync_failures
            .get_or_create(&FailureLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one API request outcome.
    pub fn api_request(&self, verb: &str, code: &str) {
        self.api_requests
            .get_or_create(&RequestLabels {
                verb: verb.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Records a node's initialisation; `since_creation` is now minus its creationTimestamp.
    pub fn node_initialized(&self, since_creation: Duration) {
        self.initializations.inc();
        self.taint_removal_delay
            .observe(since_creation.as_secs_f64());
    }

    /// Renders every metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error here would be a bug in the encoder,
        // and an empty scrape is the honest answer to it.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_exposes_upstream_histograms_and_counters_with_labels() {
        let m = Metrics::new();
        m.node_initialized(Duration::from_millis(20));
        m.initial_sync_delay.observe(0.03);
        m.sync_failed("conflict");
        m.api_request("patch", "409");
        m.nodes_awaiting_initialization.set(3);
        m.leader.set(1);
        m.events_dropped.inc();
        let text = m.render();
        assert!(
            text.contains("node_controller_cloud_provider_taint_removal_delay_seconds_count 1")
        );
        assert!(text.contains(
            "node_controller_cloud_provider_taint_removal_delay_seconds_bucket{le=\"0.025\"} 1"
        ));
        assert!(text.contains("node_controller_initial_node_sync_delay_seconds_count 1"));
        assert!(text.contains("bare_ccm_node_initializations_total 1"));
        assert!(text.contains("bare_ccm_node_sync_failures_total{reason=\"conflict\"} 1"));
        assert!(text.contains("bare_ccm_api_requests_total{verb=\"patch\",code=\"409\"} 1"));
        assert!(text.contains("bare_ccm_nodes_awaiting_initialization 3"));
        assert!(text.contains("bare_ccm_leader 1"));
        assert!(text.contains("bare_ccm_events_dropped_total 1"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn expected_failure_reasons_are_exported_as_zero_before_any_failure() {
        let m = Metrics::new();
        m.expect_sync_failure_reasons(&["conflict", "unresolved"]);
        let text = m.render();
        assert!(text.contains("bare_ccm_node_sync_failures_total{reason=\"conflict\"} 0"));
        assert!(text.contains("bare_ccm_node_sync_failures_total{reason=\"unresolved\"} 0"));
    }

    #[test]
    fn help_lines_end_in_exactly_one_period() {
        let m = Metrics::new();
        m.sync_failed("conflict");
        m.api_request("get", "200");
        let text = m.render();
        let help: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP")).collect();
        assert_eq!(help.len(), 8);
        for line in help {
            assert!(line.ends_with('.') && !line.ends_with(".."), "{line}");
        }
    }
}
