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

/// String fields of events.k8s.io/v1 `Event` declared `omitempty` whose core/v1
/// counterparts are written even when empty (core `reportingComponent` and
/// `reportingInstance` have no `omitempty`; k8s.io/api `events/v1/types.go`).
const V1_OMITEMPTY_STRINGS: &[&str] = &["reportingController", "reportingInstance"];

/// The events.k8s.io/v1 view of a stored core/v1 Event, as Go writes it: the zero values
/// of the v1 type present, its empty `omitempty` strings absent.
pub fn to_events_v1(core: &Value) -> Value {
    let mut out = rename(core, true);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("apiVersion".into(), Value::from("events.k8s.io/v1"));
        obj.insert("kind".into(), Value::from("Event"));
        obj.retain(|k, v| !(V1_OMITEMPTY_STRINGS.contains(&k.as_str()) && v.as_str() == Some("")));
    }
    if let Some(def) = crate::resources::find("events.k8s.io", "v1", "events") {
        crate::resources::fill_go_zero_values(&mut out, &def.go_zero_values());
    }
    out
}

/// The core/v1 form of an Event written through events.k8s.io/v1, with the zero values
/// of the core type.
pub fn from_events_v1(v1: &Value) -> Value {
    let mut out = rename(v1, false);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("apiVersion".into(), Value::from("v1"));
        obj.insert("kind".into(), Value::from("Event"));
    }
    if let Some(def) = crate::resources::find("", "v1", "events") {
        crate::resources::fill_go_zero_values(&mut out, &def.go_zero_values());
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
        assert_eq!(v1["deprecatedSource"], json!({}));
        assert_eq!(v1["eventTime"], Value::Null);
        let back = from_events_v1(&v1);
        assert_eq!(back["involvedObject"], core["involvedObject"]);
        assert_eq!(back["reportingComponent"], "bare-ccm");
        assert_eq!(back["source"], json!({}));
        assert_eq!(back["firstTimestamp"], Value::Null);
    }

    #[test]
    fn empty_reporting_fields_are_written_by_core_and_omitted_by_events_v1() {
        let core = json!({"metadata":{"name":"e"},"reportingComponent":"","reportingInstance":""});
        let v1 = to_events_v1(&core);
        assert!(v1.get("reportingController").is_none(), "{v1}");
        assert!(v1.get("reportingInstance").is_none(), "{v1}");
    }
}
