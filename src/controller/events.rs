//! Kubernetes Events the controller emits, with their reasons defined once here:
//! Normal `Synced` when a node is initialised (upstream's reason and text), Warnings when a
//! node cannot be initialised or refreshed, when the API server refuses a write for good
//! (403, 422), when a k3s node was initialised without k3s's description, or when a new
//! config file is rejected.
//!
//! Emission is off the workers' path: [`Events`] only queues an event on a bounded channel
//! and returns; the [`EventWriter`] task sends them to the API server. When the channel is
//! full the event is dropped and counted (`bare_ccm_events_dropped_total`): an event is
//! never worth delaying a node's initialisation.
//!
//! Events are bounded: a Warning repeated for the same object and reason is sent through
//! kube-runtime's `Recorder` (which turns repeats into one Event with a growing series
//! count) and at most once per [`REPEAT_INTERVAL`] unless its text changes. Events are
//! writes, so they are gated on leadership like every other write, when queued and again
//! when sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::leader::LeaderGate;
use crate::telemetry::Chain;

/// Reason of the Normal event after a successful initialisation (upstream's).
pub const REASON_SYNCED: &str = "Synced";
/// Warning: a tainted node's metadata cannot be resolved; the taint stays.
pub const REASON_INITIALIZATION_FAILED: &str = "InitializationFailed";
/// Warning: an initialised node's addresses cannot be resolved; they are left alone.
pub const REASON_ADDRESS_RESOLUTION_FAILED: &str = "AddressResolutionFailed";
/// Warning: a k3s node was initialised when `k3sAgentWait` ran out, without k3s's
/// description (`k3s.io/node-args`, or a server's role label).
pub const REASON_K3S_AGENT_WAIT_EXPIRED: &str = "K3sAgentWaitExpired";
/// Warning: a kubelet not in external mode keeps writing its own addresses over
/// bare-ccm's; bare-ccm stops writing that node's addresses.
pub const REASON_KUBELET_OWNS_ADDRESSES: &str = "KubeletOwnsAddresses";
/// Warning on the leader Lease: a changed config file was rejected; the old one stays.
pub const REASON_CONFIG_INVALID: &str = "ConfigInvalid";
/// Warning: the API server refused a write with 403 (RBAC); the note names the grant.
pub const REASON_WRITE_FORBIDDEN: &str = "WriteForbidden";
/// Warning: the API server refused a write with 422 (invalid); retried with long backoff.
pub const REASON_WRITE_REJECTED: &str = "WriteRejected";

/// A Warning with the same object, reason and text is not sent again sooner than this.
/// Upstream's recorder lets one source send about one event per object every 5 minutes
/// once a burst is spent (client-go `tools/record/events_cache.go`: the
/// `EventSourceObjectSpamFilter` refills at `defaultSpamQPS = 1. / 300.`); a node stuck
/// for hours keeps its Warning current at that pace without one write per node a minute.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(300);

/// Events waiting to be sent. A burst of joining nodes queues one `Synced` each, faster
/// than `SENDS_IN_FLIGHT` sends drain them: 4096 dropped 1–3% of a 5000-node burst's
/// Events (measured with Events on their own client). 8192 holds such a burst whole; a
/// slot costs ~200 bytes, and only while used.
pub const QUEUE_CAPACITY: usize = 8192;

/// Events sent at once by the writer, so that it keeps up with the workers.
const SENDS_IN_FLIGHT: usize = 8;

/// The controller name events are reported under.
const CONTROLLER: &str = "bare-ccm";
/// Node events live in `default`, as kube-runtime and upstream put cluster-scoped ones.
const EVENT_NAMESPACE: &str = "default";
/// Events API limits: 1 kB note.
const MAX_NOTE: usize = 1024;
/// The longest Event name: a name is a DNS-1123 subdomain (apimachinery
/// `IsDNS1123Subdomain`, `DNS1123SubdomainMaxLength`), or the create is refused with 422.
const MAX_EVENT_NAME: usize = 253;

/// Last Warning sent per (object name, reason): its text and when.
type WarnedMap = HashMap<(String, &'static str), (String, Instant)>;

/// One event waiting for the writer.
enum Pending {
    Synced {
        node: String,
    },
    Warning {
        object: ObjectReference,
        reason: &'static str,
        note: String,
    },
}

/// Queues the controller's events (cheap, never waits); see [`EventWriter`].
pub struct Events {
    queue: mpsc::Sender<Pending>,
    gate: Arc<LeaderGate>,
    warned: Mutex<WarnedMap>,
    dropped: Counter,
}

/// Sends queued events to the API server; run it with [`EventWriter::run`].
pub struct EventWriter {
    client: kube::Client,
    recorder: Recorder,
    reporter: Reporter,
    gate: Arc<LeaderGate>,
    queue: mpsc::Receiver<Pending>,
}

/// The reference of a Node for its events. The UID is the node name, the convention
/// kubelet uses and `kubectl describe node` searches for.
pub fn node_ref(name: &str) -> ObjectReference {
    ObjectReference {
        uid: Some(name.into()),
        ..object_ref("v1", "Node", name)
    }
}

/// The reference of the leader Lease, which carries config events (a config concerns the
/// controller, not a node).
pub fn lease_ref(namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        namespace: Some(namespace.into()),
        ..object_ref("coordination.k8s.io/v1", "Lease", name)
    }
}

/// The reference of the object of `kind` named `name`, with the other fields empty.
fn object_ref(api_version: &str, kind: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: Some(name.into()),
        ..ObjectReference::default()
    }
}

/// The name of a new Event about the object named `object`: `{object}.{nanoseconds in
/// hex}`, as kube-runtime's `Recorder` and client-go name Events, with `object` cut (at an
/// alphanumeric character) so that the name is a valid DNS subdomain of at most 253
/// characters whatever the length of the node's name (itself up to 253).
pub fn event_name(object: &str, now: Timestamp) -> String {
    let suffix = format!(".{:x}", now.as_nanosecond());
    let room = MAX_EVENT_NAME.saturating_sub(suffix.len());
    let mut end = object.len().min(room);
    while !object.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = object[..end].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let prefix = if prefix.is_empty() {
        CONTROLLER
    } else {
        prefix
    };
    format!("{prefix}{suffix}")
}

fn truncate(note: &str) -> String {
    if note.len() <= MAX_NOTE {
        return note.to_string();
    }
    let mut end = MAX_NOTE - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

impl Events {
    /// The queue and its writer. `instance` names this replica (its leader identity) in
    /// `reportingInstance`; `dropped` counts events lost to a full queue.
    pub fn new(
        client: kube::Client,
        instance: String,
        gate: Arc<LeaderGate>,
        dropped: Counter,
    ) -> (Events, EventWriter) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let reporter = Reporter {
            controller: CONTROLLER.into(),
            instance: Some(instance),
        };
        let writer = EventWriter {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
            gate: gate.clone(),
            queue: rx,
        };
        let events = Events {
            queue: tx,
            gate,
            warned: Mutex::default(),
            dropped,
        };
        (events, writer)
    }

    fn enqueue(&self, event: Pending) {
        if self.queue.try_send(event).is_err() {
            self.dropped.inc();
        }
    }

    /// Normal `Synced` on a node, once per initialisation.
    pub fn synced(&self, node: &str) {
        if !self.gate.may_write() {
            return;
        }
        self.forget(node);
        self.enqueue(Pending::Synced {
            node: node.to_string(),
        });
    }

    /// A Warning on `object` (see [`node_ref`], [`lease_ref`]), rate-limited per object
    /// and reason.
    pub fn warn(&self, object: ObjectReference, reason: &'static str, note: &str) {
        if !self.gate.may_write() {
            return;
        }
        let name = object.name.clone().unwrap_or_default();
        let note = truncate(note);
        {
            let Ok(mut warned) = self.warned.lock() else {
                return;
            };
            let key = (name, reason);
            if let Some((last_note, at)) = warned.get(&key)
                && *last_note == note
                && at.elapsed() < REPEAT_INTERVAL
            {
                return;
            }
            warned.insert(key, (note.clone(), Instant::now()));
        }
        self.enqueue(Pending::Warning {
            object,
            reason,
            note,
        });
    }

    /// Drops the rate-limit memory of `object_name` (it was initialised or deleted).
    pub fn forget(&self, object_name: &str) {
        if let Ok(mut warned) = self.warned.lock() {
            warned.retain(|(name, _), _| name != object_name);
        }
    }
}

impl EventWriter {
    /// Sends queued events, a few at a time, until `shutdown` or until every [`Events`]
    /// handle is gone.
    pub async fn run(self, shutdown: CancellationToken) {
        let EventWriter {
            client,
            recorder,
            reporter,
            gate,
            queue,
        } = self;
        let events = futures::stream::unfold(queue, |mut queue| async move {
            queue.recv().await.map(|event| (event, queue))
        });
        let send_all = events.for_each_concurrent(SENDS_IN_FLIGHT, |event| {
            let (client, recorder, reporter, gate) = (&client, &recorder, &reporter, &gate);
            async move {
                // Leadership may have been lost while the event waited.
                if !gate.may_write() {
                    return;
                }
                match event {
                    Pending::Synced { node } => send_synced(client, reporter, &node).await,
                    Pending::Warning {
                        object,
                        reason,
                        note,
                    } => send_warning(client, recorder, reporter, object, reason, note).await,
                }
            }
        });
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = send_all => {}
        }
    }
}

/// Creates a `Synced` Event directly rather than through the `Recorder`, whose cache would
/// keep one Event per node for minutes.
async fn send_synced(client: &kube::Client, reporter: &Reporter, node: &str) {
    let event = new_event(
        reporter,
        node_ref(node),
        "Normal",
        REASON_SYNCED,
        "Initialize",
        "Node synced successfully".into(),
    );
    if let Err(e) = create(client, &event).await {
        tracing::warn!(node, error = %Chain(&e), "cannot record the Synced event");
    }
}

/// An Event about `object`, named by [`event_name`], in the object's namespace (`default`
/// for a Node).
fn new_event(
    reporter: &Reporter,
    object: ObjectReference,
    type_: &str,
    reason: &str,
    action: &str,
    note: String,
) -> K8sEvent {
    let now = Timestamp::now();
    let name = object.name.as_deref().unwrap_or_default();
    K8sEvent {
        metadata: ObjectMeta {
            name: Some(event_name(name, now)),
            namespace: Some(
                object
                    .namespace
                    .clone()
                    .unwrap_or_else(|| EVENT_NAMESPACE.into()),
            ),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some(action.into()),
        reason: Some(reason.into()),
        note: Some(note),
        regarding: Some(object),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: reporter.instance.clone(),
        type_: Some(type_.into()),
        ..K8sEvent::default()
    }
}

async fn create(client: &kube::Client, event: &K8sEvent) -> Result<K8sEvent, kube::Error> {
    let namespace = event
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(EVENT_NAMESPACE);
    let api: kube::Api<K8sEvent> = kube::Api::namespaced(client.clone(), namespace);
    api.create(&PostParams::default(), event).await
}

/// Sends a Warning through the `Recorder` (repeats become one Event with a growing
/// series count), unless the Recorder's name for it (`{object}.{nanos}`, uncut) would
/// exceed 253 characters: then it is created directly under an [`event_name`].
async fn send_warning(
    client: &kube::Client,
    recorder: &Recorder,
    reporter: &Reporter,
    object: ObjectReference,
    reason: &'static str,
    note: String,
) {
    let action = if reason == REASON_CONFIG_INVALID {
        "ReloadConfig"
    } else {
        "Initialize"
    };
    let name = object.name.clone().unwrap_or_default();
    let now = Timestamp::now();
    let result = if event_name(&name, now) == format!("{name}.{:x}", now.as_nanosecond()) {
        let event = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        recorder.publish(&event, &object).await
    } else {
        let event = new_event(reporter, object, "Warning", reason, action, note);
        create(client, &event).await.map(drop)
    };
    if let Err(e) = result {
        tracing::warn!(object = %name, reason, error = %Chain(&e), "cannot record a Warning event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events whose writer is not running, with a client that reaches nothing.
    fn events(gate: LeaderGate) -> (Events, EventWriter, Counter) {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let dropped = Counter::default();
        let (events, writer) = Events::new(client, "test".into(), Arc::new(gate), dropped.clone());
        (events, writer, dropped)
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_events_instead_of_waiting() {
        let (events, mut writer, dropped) = events(LeaderGate::always());
        for i in 0..QUEUE_CAPACITY + 3 {
            events.synced(&format!("n{i}"));
        }
        assert_eq!(dropped.get(), 3);
        let Ok(Pending::Synced { node }) = writer.queue.try_recv() else {
            panic!("the first Synced event is queued");
        };
        assert_eq!(node, "n0");
    }

    #[tokio::test]
    async fn repeated_warnings_are_queued_once_per_interval_unless_the_text_changes() {
        let (events, mut writer, _) = events(LeaderGate::always());
        events.warn(node_ref("n1"), REASON_INITIALIZATION_FAILED, "no IP");
        events.warn(node_ref("n1"), REASON_INITIALIZATION_FAILED, "no IP");
        events.warn(node_ref("n1"), REASON_INITIALIZATION_FAILED, "other IP");
        let mut notes = Vec::new();
        while let Ok(Pending::Warning { note, .. }) = writer.queue.try_recv() {
            notes.push(note);
        }
        assert_eq!(notes, ["no IP", "other IP"]);
    }

    #[tokio::test]
    async fn a_replica_that_may_not_write_queues_no_event() {
        let clock = Arc::new(crate::leader::RenewClock::default());
        let (events, mut writer, dropped) =
            events(LeaderGate::elected(clock, Duration::from_secs(10)));
        events.synced("n1");
        events.warn(node_ref("n1"), REASON_INITIALIZATION_FAILED, "no IP");
        assert!(writer.queue.try_recv().is_err());
        assert_eq!(dropped.get(), 0);
    }

    /// apimachinery `IsDNS1123Subdomain`.
    fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= 253
            && name.split('.').all(|part| {
                let b = part.as_bytes();
                !b.is_empty()
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            })
    }

    #[test]
    fn event_names_are_valid_for_every_node_name_up_to_253_characters() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(event_name("n1", now), "n1.18fae27693b40000");
        // 253-character node names, including cuts that would end on '-' or '.'.
        for node in [
            "z".repeat(253),
            format!("{}-{}", "x".repeat(235), "y".repeat(17)),
            format!("{}.{}", "x".repeat(235), "y".repeat(17)),
            format!("{}.-{}", "x".repeat(233), "y".repeat(18)).replace(".-", ".a-"),
        ] {
            assert!(
                node.len() >= 253 && is_dns_subdomain(&node[..253]),
                "{node}"
            );
            let name = event_name(&node[..253], now);
            assert!(is_dns_subdomain(&name), "{node} -> {name}");
            assert!(name.ends_with(".18fae27693b40000"), "{name}");
        }
        assert_eq!(
            event_name(&"z".repeat(253), now),
            format!("{}.18fae27693b40000", "z".repeat(236))
        );
    }

    #[test]
    fn long_notes_are_cut_to_the_events_api_limit_on_a_char_boundary() {
        let note = "é".repeat(800);
        let cut = truncate(&note);
        assert!(cut.len() <= MAX_NOTE);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("short"), "short");
    }
}
