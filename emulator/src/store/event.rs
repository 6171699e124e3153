//! A watch event as the store keeps it: the serialized watch line (apimachinery
//! `pkg/apis/meta/v1/watch.go` `WatchEvent` framing), built once at commit and shared by
//! every watcher and by the retained window, with the small selector view of the object
//! (`filter_meta`) instead of the object tree.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;

use super::Entry;
use crate::resources::StoreKind;

/// The type of a watch event (apimachinery `pkg/watch/watch.go`, `EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted; the event carries its last state with the deletion's RV.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change, kept compact: the serialized watch line (shared by every
/// watcher and by the retained window) and the few fields selectors look at, not the
/// object tree, so that a window of 100 000 events of 15 KB nodes costs about their JSON.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// Which store changed.
    pub store: StoreKind,
    /// `{"metadata":{name, namespace, labels}}` of the object after the change (for
    /// deletes: its last state), what label and field selectors match on.
    pub meta: Arc<Value>,
    /// The same for the object before a modification.
    pub prev_meta: Option<Arc<Value>>,
    /// `{"type":..,"object":..}` + newline, serialized once at commit.
    line: Bytes,
    /// The object's JSON (a slice of `line`).
    object: Bytes,
    /// The JSON of the object before a modification (a slice of an earlier line).
    prev_object: Option<Bytes>,
    /// The line for the events.k8s.io/v1 view of an Event, built on first use.
    line_events_v1: OnceLock<Bytes>,
}

impl Event {
    pub(super) fn new(
        rv: u64,
        kind: EventType,
        store: StoreKind,
        object: &Value,
        meta: Arc<Value>,
        prev: Option<&Entry>,
    ) -> Event {
        let (line, object) = line_and_object(kind.as_str(), object);
        Event {
            rv,
            kind,
            store,
            meta,
            prev_meta: prev.map(|p| p.meta.clone()),
            line,
            object,
            prev_object: prev.map(|p| p.json.clone()),
            line_events_v1: OnceLock::new(),
        }
    }

    /// The newline-terminated watch line for this event, serialized once and shared by all
    /// watchers; `events_v1` selects the events.k8s.io/v1 view of Events.
    pub fn wire(&self, events_v1: bool) -> Bytes {
        if events_v1 {
            self.line_events_v1
                .get_or_init(|| {
                    let obj: Value = serde_json::from_slice(&self.object).unwrap_or(Value::Null);
                    watch_line(
                        self.kind.as_str(),
                        &crate::event_versions::to_events_v1(&obj),
                    )
                })
                .clone()
        } else {
            self.line.clone()
        }
    }

    /// The object after the change, as JSON.
    pub fn object_json(&self) -> &Bytes {
        &self.object
    }

    /// The object before a modification, as JSON.
    pub fn prev_object_json(&self) -> Option<&Bytes> {
        self.prev_object.as_ref()
    }
}

/// The fields outside `metadata` that field selectors read (the selectable fields of
/// Nodes, Pods, Namespaces and Events; `selector::field_value`), as `(field, child)`:
/// `child` "" keeps the whole field.
const SELECTABLE: &[(&str, &str)] = &[
    ("spec", "unschedulable"),
    ("spec", "nodeName"),
    ("spec", "restartPolicy"),
    ("spec", "schedulerName"),
    ("spec", "serviceAccountName"),
    ("spec", "hostNetwork"),
    ("status", "phase"),
    ("status", "podIP"),
    ("status", "podIPs"),
    ("status", "nominatedNodeName"),
    ("involvedObject", ""),
    ("reason", ""),
    ("reportingComponent", ""),
    ("source", ""),
    ("type", ""),
];

/// What selectors look at, as a small object: name, namespace and labels, and the fields
/// a field selector can name.
pub fn filter_meta(object: &Value) -> Value {
    let mut meta = serde_json::Map::new();
    if let Some(m) = object.get("metadata").and_then(Value::as_object) {
        for field in ["name", "namespace", "labels"] {
            if let Some(v) = m.get(field) {
                meta.insert(field.into(), v.clone());
            }
        }
    }
    let mut root = serde_json::Map::new();
    root.insert("metadata".into(), Value::Object(meta));
    for (field, child) in SELECTABLE {
        let Some(v) = object.get(*field) else {
            continue;
        };
        if child.is_empty() {
            root.insert((*field).into(), v.clone());
        } else if let Some(c) = v.get(*child) {
            let slot = root
                .entry(*field)
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if let Some(slot) = slot.as_object_mut() {
                slot.insert((*child).into(), c.clone());
            }
        }
    }
    Value::Object(root)
}

/// The prefix of a watch line before the object.
fn line_prefix(event_type: &str) -> String {
    format!("{{\"type\":\"{event_type}\",\"object\":")
}

/// Serializes `object` once into a watch line, returning the line and the object's slice
/// of it.
fn line_and_object(event_type: &str, object: &Value) -> (Bytes, Bytes) {
    let prefix = line_prefix(event_type);
    let mut buf = prefix.clone().into_bytes();
    // Serializing a Value cannot fail (its keys are strings).
    let _ = serde_json::to_writer(&mut buf, object);
    buf.extend_from_slice(b"}\n");
    let line = Bytes::from(buf);
    let object = line.slice(prefix.len()..line.len() - 2);
    (line, object)
}

/// Serializes one watch event line (`{"type":T,"object":O}` + newline), the JSON watch
/// framing of apimachinery `pkg/apis/meta/v1/watch.go` `WatchEvent`.
pub fn watch_line(event_type: &str, object: &Value) -> Bytes {
    line_and_object(event_type, object).0
}

/// A watch line of `event_type` around an already serialized object.
pub fn line_around(event_type: &str, object_json: &[u8]) -> Bytes {
    let prefix = line_prefix(event_type);
    let mut buf = Vec::with_capacity(prefix.len() + object_json.len() + 2);
    buf.extend_from_slice(prefix.as_bytes());
    buf.extend_from_slice(object_json);
    buf.extend_from_slice(b"}\n");
    Bytes::from(buf)
}
