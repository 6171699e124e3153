//! Kubernetes Events the controller emits, with their reasons defined once here:
//! Normal `Synced` when a node is initialised (upstream's reason and text), Warnings when a
//! node cannot be initialised or refreshed, or a new config file is rejected.
//!
//! Events are bounded: a Warning repeated for the same object and reason is sent through
//! kube-runtime's `Recorder` (which turns repeats into one Event with a growing series
//! count) and at most once per [`REPEAT_INTERVAL`] unless its text changes. Events are
//! writes, so they are gated on leadership like every other write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::time::Instant;

use crate::leader::LeaderGate;

/// Reason of the Normal event after a successful initialisation (upstream's).
pub const REASON_SYNCED: &str = "Synced";
/// Warning: a tainted node's metadata cannot be resolved; the taint stays.
pub const REASON_INITIALIZATION_FAILED: &str = "InitializationFailed";
/// Warning: an initialised node's addresses cannot be resolved; they are left alone.
pub const REASON_ADDRESS_RESOLUTION_FAILED: &str = "AddressResolutionFailed";
/// Warning on the leader Lease: a changed config file was rejected; the old one stays.
pub const REASON_CONFIG_INVALID: &str = "ConfigInvalid";

/// A Warning with the same object, reason and text is not sent again sooner than this.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(60);

/// The controller name events are reported under.
const CONTROLLER: &str = "bare-ccm";
/// Node events live in `default`, as kube-runtime and upstream put cluster-scoped ones.
const EVENT_NAMESPACE: &str = "default";
/// Events API limits: 1 kB note.
const MAX_NOTE: usize = 1024;

/// Last Warning sent per (object name, reason): its text and when.
type WarnedMap = HashMap<(String, &'static str), (String, Instant)>;

/// Emits the controller's events.
pub struct Events {
    client: kube::Client,
    recorder: Recorder,
    reporter: Reporter,
    gate: Arc<LeaderGate>,
    warned: Mutex<WarnedMap>,
}

/// The reference of a Node for its events. The UID is the node name, the convention
/// kubelet uses and `kubectl describe node` searches for.
pub fn node_ref(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(name.into()),
        uid: Some(name.into()),
        ..ObjectReference::default()
    }
}

/// The reference of the leader Lease, which carries config events (a config concerns the
/// controller, not a node).
pub fn lease_ref(namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("coordination.k8s.io/v1".into()),
        kind: Some("Lease".into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        ..ObjectReference::default()
    }
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
    /// `instance` names this replica (its leader identity) in `reportingInstance`.
    pub fn new(client: kube::Client, instance: String, gate: Arc<LeaderGate>) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER.into(),
            instance: Some(instance),
        };
        Events {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
            gate,
            warned: Mutex::default(),
        }
    }

    /// Normal `Synced` on a node, once per initialisation. Created directly rather than
    /// through the `Recorder`, whose cache would keep one Event per node for minutes.
    pub async fn synced(&self, node: &str) {
        if !self.gate.may_write() {
            return;
        }
        self.forget(node);
        let now = Timestamp::now();
        let event = K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{node}.{:x}", now.as_nanosecond())),
                namespace: Some(EVENT_NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some("Initialize".into()),
            reason: Some(REASON_SYNCED.into()),
            note: Some("Node synced successfully".into()),
            regarding: Some(node_ref(node)),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: self.reporter.instance.clone(),
            type_: Some("Normal".into()),
            ..K8sEvent::default()
        };
        let api: kube::Api<K8sEvent> = kube::Api::namespaced(self.client.clone(), EVENT_NAMESPACE);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(node, error = %e, "cannot record the Synced event");
        }
    }

    /// A Warning on `object` (see [`node_ref`], [`lease_ref`]), rate-limited per object
    /// and reason.
    pub async fn warn(&self, object: ObjectReference, reason: &'static str, note: &str) {
        if !self.gate.may_write() {
            return;
        }
        let name = object.name.clone().unwrap_or_default();
        let note = truncate(note);
        {
            let Ok(mut warned) = self.warned.lock() else {
                return;
            };
            let key = (name.clone(), reason);
            if let Some((last_note, at)) = warned.get(&key)
                && *last_note == note
                && at.elapsed() < REPEAT_INTERVAL
            {
                return;
            }
            warned.insert(key, (note.clone(), Instant::now()));
        }
        let action = if reason == REASON_CONFIG_INVALID {
            "ReloadConfig"
        } else {
            "Initialize"
        };
        let event = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &object).await {
            tracing::warn!(object = %name, reason, error = %e, "cannot record a Warning event");
        }
    }

    /// Drops the rate-limit memory of `object_name` (it was initialised or deleted).
    pub fn forget(&self, object_name: &str) {
        if let Ok(mut warned) = self.warned.lock() {
            warned.retain(|(name, _), _| name != object_name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_to_the_events_api_limit_on_a_char_boundary() {
        let note = "é".repeat(800);
        let cut = truncate(&note);
        assert!(cut.len() <= MAX_NOTE);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("short"), "short");
    }
}
