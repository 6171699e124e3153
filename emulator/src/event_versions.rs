//! Conversion between the two API versions of Event, which share one store.
//!
//! kube-apiserver keeps one Event object and serves it as core/v1 `Event` and as
//! `events.k8s.io/v1` `Event`, renaming fields between them (kubernetes
//! `pkg/apis/events/v1/conversion.go`: `Convert_v1_Event_To_core_Event` /
//! `Convert_core_Event_To_v1_Event`). The emulator stores the core/v1 form and converts at
//! the edge; fields with the same name in both versions pass through untouched.

use serde_json::{Map, Value};

/// (core/v1 field, events.k8s.io/v1 field) pairs that differ only by name.
const RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// The events.k8s.io/v1 view of a stored core/v1 Event.
pub fn to_events_v1(core: &Value) -> Value {
    let mut out = rename(core, true);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("apiVersion".into(), Value::from("events.k8s.io/v1"));
        obj.insert("kind".into(), Value::from("Event"));
    }
    out
}

/// The core/v1 form of an Event written through events.k8s.io/v1.
pub fn from_events_v1(v1: &Value) -> Value {
    let mut out = rename(v1, false);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("apiVersion".into(), Value::from("v1"));
        obj.insert("kind".into(), Value::from("Event"));
    }
    out
}

/// Renames the top-level fields of `input`: core → v1 when `to_v1`, else v1 → core.
fn rename(input: &Value, to_v1: bool) -> Value {
    let Some(map) = input.as_object() else {
        return input.clone();
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        let target = RENAMES
            .iter()
            .map(|&(core, v1)| if to_v1 { (core, v1) } else { (v1, core) })
            .find(|(from, _)| *from == k)
            .map_or(k.as_str(), |(_, to)| to);
        out.insert(target.to_string(), v.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn core_event_fields_get_their_events_v1_names_and_back() {
        let core = json!({"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},
            "involvedObject":{"kind":"Node","name":"n1"},"message":"hello","reason":"R",
            "count":2,"reportingComponent":"bare-ccm","type":"Normal"});
        let v1 = to_events_v1(&core);
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["regarding"]["name"], "n1");
        assert_eq!(v1["note"], "hello");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["reportingController"], "bare-ccm");
        assert_eq!(v1["reason"], "R");
        assert!(v1.get("message").is_none());
        assert_eq!(from_events_v1(&v1), core);
    }
}
