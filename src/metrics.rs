//! The controller's Prometheus metrics: one `Registry` owned here, updated by the
//! controller, the work queue, the API client layer and the leader election, rendered by
//! `/metrics`. Besides bare-ccm's own metrics it exports the upstream names existing CCM
//! dashboards read (client-go's workqueue, REST client and leader-election metrics, as
//! k8s.io/component-base registers them), with upstream's labels and buckets. Nothing here
//! talks to the cluster.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
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

/// The `name` label of the controller's work queue metrics.
pub const WORKQUEUE_NAME: &str = "cloud-node";

/// Upstream's workqueue histogram buckets, `ExponentialBuckets(10e-9, 10, 10)`: 10 ns to
/// 10 s (k8s.io/component-base `metrics/prometheus/workqueue/metrics.go`).
pub const WORKQUEUE_BUCKETS: [f64; 10] =
    [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0];

/// Upstream's `rest_client_request_duration_seconds` buckets (k8s.io/component-base
/// `metrics/prometheus/restclient/metrics.go`).
pub const REST_CLIENT_BUCKETS: [f64; 12] = [
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0,
];

/// The `code` of `rest_client_requests_total` when no response arrived (client-go
/// `rest/request.go`, `sanitize`).
pub const REST_CLIENT_ERROR_CODE: &str = "<error>";

/// The work queue's metrics, shared with `controller::queue` (handles to the registered
/// series: updating one updates what `/metrics` shows).
#[derive(Clone, Debug)]
pub struct QueueMetrics {
    /// `workqueue_depth`: names queued, or added again while being processed.
    pub depth: Gauge,
    /// `workqueue_adds_total`: adds that queued a name not already waiting.
    pub adds: Counter,
    /// `workqueue_queue_duration_seconds`: first add to a worker taking the name.
    pub queue_duration: Histogram,
    /// `workqueue_work_duration_seconds`: a worker taking the name to it being done.
    pub work_duration: Histogram,
    /// `workqueue_retries_total`: delayed adds (upstream counts every `AddAfter`).
    pub retries: Counter,
    /// `workqueue_unfinished_work_seconds`: summed age of the syncs in progress.
    pub unfinished_work: Gauge<f64, AtomicU64>,
    /// `workqueue_longest_running_processor_seconds`: age of the oldest sync in progress.
    pub longest_running_processor: Gauge<f64, AtomicU64>,
}

impl Default for QueueMetrics {
    fn default() -> Self {
        QueueMetrics {
            depth: Gauge::default(),
            adds: Counter::default(),
            queue_duration: Histogram::new(WORKQUEUE_BUCKETS),
            work_duration: Histogram::new(WORKQUEUE_BUCKETS),
            retries: Counter::default(),
            unfinished_work: Gauge::default(),
            longest_running_processor: Gauge::default(),
        }
    }
}

/// Labels of `rest_client_requests_total` (upstream's set: code, host, method).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestResultLabels {
    /// HTTP status code, or `<error>` when no response arrived.
    pub code: String,
    /// The API server's `host:port`.
    pub host: String,
    /// The HTTP method (`GET`, `PATCH`, ...).
    pub method: String,
}

/// Labels of `rest_client_request_duration_seconds` (upstream's set: host, verb).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestLatencyLabels {
    /// The API server's `host:port`.
    pub host: String,
    /// The HTTP method, which client-go calls the verb.
    pub verb: String,
}

/// Label of `leader_election_master_status`: the Lease name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    pub name: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn rest_client_histogram() -> Histogram {
    Histogram::new(REST_CLIENT_BUCKETS)
}

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
    /// The work queue's upstream metrics, `name="cloud-node"`.
    pub queue: QueueMetrics,
    rest_requests: Family<RestResultLabels, Counter>,
    rest_latency: HistogramFamily<RestLatencyLabels>,
    leader_status: Family<LeaseLabels, Gauge>,
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
        let queue = QueueMetrics::default();
        let rest_requests = Family::<RestResultLabels, Counter>::default();
        let rest_latency: HistogramFamily<RestLatencyLabels> =
            Family::new_with_constructor(rest_client_histogram);
        let leader_status = Family::<LeaseLabels, Gauge>::default();
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
        // Upstream's names and help texts: client-go's REST client metrics as
        // component-base `metrics/prometheus/restclient/metrics.go` registers them, and
        // the leader-election gauge of `metrics/prometheus/clientgo/leaderelection`.
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            rest_requests.clone(),
        );
        registry.register(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb, and host",
            rest_latency.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name",
            leader_status.clone(),
        );
        Self::register_queue(
            registry
                .sub_registry_with_label((Cow::Borrowed("name"), Cow::Borrowed(WORKQUEUE_NAME))),
            &queue,
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
            queue,
            rest_requests,
            rest_latency,
            leader_status,
        }
    }

    /// The workqueue metrics under component-base's names and help texts
    /// (`metrics/prometheus/workqueue/metrics.go`), in a registry that adds the queue's
    /// `name` label.
    fn register_queue(registry: &mut Registry, queue: &QueueMetrics) {
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            queue.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            queue.adds.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            queue.queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            queue.work_duration.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            queue.retries.clone(),
        );
        registry.register(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases",
            queue.unfinished_work.clone(),
        );
        registry.register(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            queue.longest_running_processor.clone(),
        );
    }

    /// Counts one request that got an answer (its status `code`) or none
    /// ([`REST_CLIENT_ERROR_CODE`]), as client-go counts every attempt.
    pub fn rest_request(&self, code: &str, host: &str, method: &str) {
        self.rest_requests
            .get_or_create(&RestResultLabels {
                code: code.to_string(),
                host: host.to_string(),
                method: method.to_string(),
            })
            .inc();
    }

    /// Records one request's latency, from its wait for the client-side rate limiter to
    /// its response headers (client-go starts the clock before throttling too).
    pub fn rest_latency(&self, host: &str, verb: &str, latency: Duration) {
        self.rest_latency
            .get_or_create(&RestLatencyLabels {
                host: host.to_string(),
                verb: verb.to_string(),
            })
            .observe(latency.as_secs_f64());
    }

    /// The `leader_election_master_status` series of `lease`, exported as 0 from now on
    /// (client-go sets it to 0 when the elector is created).
    pub fn leader_election_status(&self, lease: &str) -> Gauge {
        let gauge = self
            .leader_status
            .get_or_create(&LeaseLabels {
                name: lease.to_string(),
            })
            .clone();
        gauge.set(0);
        gauge
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
    fn upstream_names_labels_and_buckets_are_exported() {
        let m = Metrics::new();
        m.queue.depth.set(2);
        m.queue.adds.inc();
        m.queue.retries.inc();
        m.queue.queue_duration.observe(0.002);
        m.queue.work_duration.observe(0.03);
        m.rest_request("200", "127.0.0.1:6443", "PATCH");
        m.rest_request(REST_CLIENT_ERROR_CODE, "127.0.0.1:6443", "GET");
        m.rest_latency("127.0.0.1:6443", "PATCH", Duration::from_millis(20));
        m.leader_election_status("bare-ccm").set(1);
        let text = m.render();
        for line in [
            "workqueue_depth{name=\"cloud-node\"} 2",
            "workqueue_adds_total{name=\"cloud-node\"} 1",
            "workqueue_retries_total{name=\"cloud-node\"} 1",
            "workqueue_queue_duration_seconds_count{name=\"cloud-node\"} 1",
            "workqueue_work_duration_seconds_count{name=\"cloud-node\"} 1",
            "workqueue_unfinished_work_seconds{name=\"cloud-node\"} 0.0",
            "workqueue_longest_running_processor_seconds{name=\"cloud-node\"} 0.0",
            "rest_client_requests_total{code=\"200\",host=\"127.0.0.1:6443\",method=\"PATCH\"} 1",
            "rest_client_requests_total{code=\"<error>\",host=\"127.0.0.1:6443\",method=\"GET\"} 1",
            "rest_client_request_duration_seconds_count{host=\"127.0.0.1:6443\",verb=\"PATCH\"} 1",
            "leader_election_master_status{name=\"bare-ccm\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        // The `le` bounds as numbers (their spelling, 1e-8 or 1e-08, is the encoder's).
        let buckets = |metric: &str| -> Vec<f64> {
            text.lines()
                .filter(|l| l.starts_with(&format!("{metric}_bucket{{")))
                .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
                .map(|le| match le {
                    "+Inf" => f64::INFINITY,
                    le => le.parse().unwrap_or(f64::NAN),
                })
                .collect()
        };
        let expected =
            |b: &[f64]| -> Vec<f64> { b.iter().copied().chain([f64::INFINITY]).collect() };
        assert_eq!(
            buckets("workqueue_queue_duration_seconds"),
            expected(&WORKQUEUE_BUCKETS)
        );
        assert_eq!(
            buckets("workqueue_work_duration_seconds"),
            expected(&WORKQUEUE_BUCKETS)
        );
        assert_eq!(
            buckets("rest_client_request_duration_seconds"),
            expected(&REST_CLIENT_BUCKETS)
        );
        assert_eq!(
            WORKQUEUE_BUCKETS[0], 10e-9,
            "ExponentialBuckets(10e-9, 10, 10)"
        );
        for pair in WORKQUEUE_BUCKETS.windows(2) {
            assert!((pair[1] / pair[0] - 10.0).abs() < 1e-9);
        }
    }

    #[test]
    fn the_leader_election_series_starts_at_zero_as_client_go_creates_it() {
        let m = Metrics::new();
        assert!(!m.render().contains("leader_election_master_status{"));
        let status = m.leader_election_status("bare-ccm");
        assert!(
            m.render()
                .contains("leader_election_master_status{name=\"bare-ccm\"} 0")
        );
        status.set(1);
        assert!(
            m.render()
                .contains("leader_election_master_status{name=\"bare-ccm\"} 1")
        );
    }

    #[test]
    fn help_lines_end_in_exactly_one_period() {
        let m = Metrics::new();
        m.sync_failed("conflict");
        m.api_request("get", "200");
        m.rest_request("200", "h", "GET");
        m.rest_latency("h", "GET", Duration::from_millis(1));
        drop(m.leader_election_status("bare-ccm"));
        let text = m.render();
        let help: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP")).collect();
        assert_eq!(help.len(), 18);
        for line in help {
            assert!(line.ends_with('.') && !line.ends_with(".."), "{line}");
        }
    }
}
