//! Objects decoded into their Go types, as the real server decodes every body and patch
//! result before storing it: k8s-openapi's type stands in for the Go struct, and the
//! differences between the two are made up here (unknown fields named and dropped,
//! `omitempty` applied, the zero values Go writes and k8s-openapi leaves out), with the
//! `fieldValidation` directive that says what unknown fields cost.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ResourceDef, StoreKind};

/// How a write treats fields its type does not have: the `fieldValidation` query parameter
/// (apimachinery `pkg/apis/meta/v1/types.go`, `FieldValidationIgnore|Warn|Strict`; the
/// apiserver default is `Warn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop unknown fields and say so in a `Warning` header (the default).
    Warn,
    /// Refuse a body with unknown fields.
    Strict,
}

impl FieldValidation {
    /// The directive of a `fieldValidation` value; empty or absent is `Warn`; None for a
    /// value the server does not support.
    pub fn parse(value: Option<&str>) -> Option<FieldValidation> {
        match value.unwrap_or("") {
            "" | "Warn" => Some(FieldValidation::Warn),
            "Ignore" => Some(FieldValidation::Ignore),
            "Strict" => Some(FieldValidation::Strict),
            _ => None,
        }
    }
}

/// An object as its Go type holds it: fields the type lacks are gone, empty values of
/// `omitempty` fields are gone; plus the paths of the unknown fields that were dropped.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The object after the round trip through the type.
    pub object: Value,
    /// `spec.bogusField`-style paths of the fields the type does not have.
    pub unknown_fields: Vec<String>,
}

impl ResourceDef {
    /// Decodes `obj` (in this resource's API version, with kind and apiVersion set) into
    /// the resource's k8s-openapi type and serializes it back, as the real server decodes
    /// every body and patch result into its Go type before storing it (apimachinery
    /// `pkg/runtime/serializer/json`, which drops unknown fields, and the omitempty rules of
    /// `encoding/json` on the way out). The error is the decoder's message.
    pub fn decode(&self, obj: &Value) -> Result<Decoded, String> {
        use k8s_openapi::api::{apps, coordination, core, events};
        let object = match (self.store, self.is_events_v1()) {
            (StoreKind::Nodes, _) => round_trip::<core::v1::Node>(obj)?,
            (StoreKind::Namespaces, _) => round_trip::<core::v1::Namespace>(obj)?,
            (StoreKind::ConfigMaps, _) => round_trip::<core::v1::ConfigMap>(obj)?,
            (StoreKind::Events, false) => round_trip::<core::v1::Event>(obj)?,
            (StoreKind::Events, true) => round_trip::<events::v1::Event>(obj)?,
            (StoreKind::Leases, _) => round_trip::<coordination::v1::Lease>(obj)?,
            (StoreKind::Pods, _) => round_trip::<core::v1::Pod>(obj)?,
            (StoreKind::Deployments, _) => round_trip::<apps::v1::Deployment>(obj)?,
            (StoreKind::DaemonSets, _) => round_trip::<apps::v1::DaemonSet>(obj)?,
        };
        let mut unknown_fields = Vec::new();
        unknown_paths(obj, &object, "", &mut unknown_fields);
        let mut object = object;
        fill_go_zero_values(&mut object, &self.go_zero_values());
        Ok(Decoded {
            object,
            unknown_fields,
        })
    }

    /// What Go's `encoding/json` writes for a zero object of this resource's type, besides
    /// kind/apiVersion/metadata: struct fields without `omitempty` (or whose struct type
    /// `omitempty` cannot drop) and zero `metav1.Time`s (`null`), which k8s-openapi's
    /// `Option`s leave out (kubernetes `staging/src/k8s.io/api`: `NodeStatus.DaemonEndpoints`,
    /// `NodeStatus.NodeInfo` and its ten strings, `Event.Source`,
    /// `Event.ReportingController` written as `reportingComponent`, ...). A watch BOOKMARK
    /// carries this object with only a resourceVersion (apiserver cacher `newFunc`).
    pub fn go_zero_values(&self) -> Value {
        match (self.store, self.is_events_v1()) {
            (StoreKind::Nodes, _) => json!({
                "spec": {},
                "status": {
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                    "nodeInfo": {
                        "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                        "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
                        "kubeProxyVersion": "", "operatingSystem": "", "architecture": "",
                    },
                },
            }),
            (StoreKind::Namespaces, _) => json!({"spec": {}, "status": {}}),
            (StoreKind::ConfigMaps, _) => json!({}),
            (StoreKind::Events, false) => json!({
                "involvedObject": {},
                "source": {},
                "firstTimestamp": null,
                "lastTimestamp": null,
                "eventTime": null,
                "reportingComponent": "",
                "reportingInstance": "",
            }),
            (StoreKind::Events, true) => json!({
                "eventTime": null,
                "regarding": {},
                "deprecatedSource": {},
                "deprecatedFirstTimestamp": null,
                "deprecatedLastTimestamp": null,
            }),
            (StoreKind::Leases, _) => json!({"spec": {}}),
            (StoreKind::Pods, _) => json!({"spec": {}, "status": {}}),
            (StoreKind::Deployments, _) => json!({"spec": {}, "status": {}}),
            // apps/v1 DaemonSetStatus: its four counts have no omitempty.
            (StoreKind::DaemonSets, _) => json!({
                "spec": {},
                "status": {
                    "currentNumberScheduled": 0, "numberMisscheduled": 0,
                    "desiredNumberScheduled": 0, "numberReady": 0,
                },
            }),
        }
    }
}

/// Adds the fields of `zero` that `obj` lacks, recursively into objects both have.
pub fn fill_go_zero_values(obj: &mut Value, zero: &Value) {
    let (Some(obj), Some(zero)) = (obj.as_object_mut(), zero.as_object()) else {
        return;
    };
    for (key, z) in zero {
        match obj.get_mut(key) {
            Some(existing) => fill_go_zero_values(existing, z),
            None => {
                obj.insert(key.clone(), z.clone());
            }
        }
    }
}

/// `obj` through `T` and back, without unknown fields and with `omitempty` applied. On
/// failure the message names the field path, in the spirit of Go's `json: cannot
/// unmarshal ... into Go struct field <path>` (the detail after the path is serde's).
fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, String> {
    let typed = match T::deserialize(obj) {
        Ok(t) => t,
        // The path costs a second pass, paid only for bodies that fail.
        Err(plain) => {
            return Err(match serde_path_to_error::deserialize::<_, T>(obj) {
                Err(e) if !e.path().to_string().is_empty() && e.path().to_string() != "." => {
                    format!(
                        "json: cannot unmarshal into Go struct field {}: {}",
                        e.path(),
                        e.inner()
                    )
                }
                _ => format!("json: {plain}"),
            });
        }
    };
    let mut out = serde_json::to_value(&typed).map_err(|e| format!("json: {e}"))?;
    omit_empty(&mut out);
    Ok(out)
}

/// Fields whose values are string-keyed maps (`map[string]string`, `ResourceList`): their
/// keys are data, not field names, so they are neither pruned inside nor reported as
/// unknown; when empty they go (every one is `omitempty`).
const MAP_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "binaryData",
    "capacity",
    "allocatable",
    "nodeSelector",
    "matchLabels",
    "limits",
    "requests",
];

/// List fields without `omitempty`, which Go writes even when empty (kubernetes
/// `staging/src/k8s.io/api/core/v1/types.go`: `PodSpec.Containers`,
/// `NodeSelector.NodeSelectorTerms`).
const LISTS_WITHOUT_OMITEMPTY: &[&str] = &["containers", "nodeSelectorTerms"];

/// String fields of the served types declared `omitempty` in kubernetes
/// `staging/src/k8s.io/api/core/v1/types.go` and apimachinery `meta/v1/types.go`
/// (ObjectMeta, NodeSpec, Taint, conditions, Event); an empty one is not written. String
/// fields without `omitempty` (a Taint's `key`, a condition's `type`, core Event
/// `reportingComponent`) and `*string` fields (Lease `holderIdentity`) stay when empty.
/// Names that are required somewhere in the served types are left out, since dropping
/// them would make the stored object undecodable (`uid` is required in an
/// `OwnerReference`; the server sets `metadata.uid` itself).
const OMITEMPTY_STRINGS: &[&str] = &[
    "generateName",
    "namespace",
    "resourceVersion",
    "selfLink",
    "providerID",
    "podCIDR",
    "externalID",
    "value",
    "reason",
    "message",
    "action",
    "note",
];

/// Go `encoding/json` `omitempty` on a re-serialized object: k8s-openapi keeps
/// `Some(vec![])`, `Some(map)` and `Some("")`, Go drops empty slices, maps and strings of
/// `omitempty` fields (kubernetes `staging/src/k8s.io/api/core/v1/types.go`: e.g.
/// `NodeSpec.Taints []Taint json:"taints,omitempty"`). Non-pointer struct fields stay even
/// when empty (`"spec":{}`), as Go writes them.
fn omit_empty(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|name, v| match v {
                Value::Array(items) => {
                    !items.is_empty() || LISTS_WITHOUT_OMITEMPTY.contains(&name.as_str())
                }
                Value::Object(m) if MAP_FIELDS.contains(&name.as_str()) => !m.is_empty(),
                Value::String(s) => !s.is_empty() || !OMITEMPTY_STRINGS.contains(&name.as_str()),
                _ => true,
            });
            for (name, v) in fields.iter_mut() {
                if !MAP_FIELDS.contains(&name.as_str()) {
                    omit_empty(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(omit_empty),
        _ => {}
    }
}

/// The paths of fields present (and non-empty) in `given` that the decoded object lacks,
/// as apimachinery's strict decoder names them (`unknown field "spec.bogusField"`).
fn unknown_paths(given: &Value, decoded: &Value, prefix: &str, out: &mut Vec<String>) {
    match (given, decoded) {
        (Value::Object(g), Value::Object(d)) => {
            for (name, gv) in g {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                match d.get(name) {
                    Some(dv) if !MAP_FIELDS.contains(&name.as_str()) => {
                        unknown_paths(gv, dv, &path, out)
                    }
                    Some(_) => {}
                    None if is_empty(gv) => {}
                    None => out.push(path),
                }
            }
        }
        (Value::Array(g), Value::Array(d)) if g.len() == d.len() => {
            for (i, (gv, dv)) in g.iter().zip(d).enumerate() {
                unknown_paths(gv, dv, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Values a decoded object may lack because they were empty, not unknown.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    fn nodes() -> &'static ResourceDef {
        find("", "v1", "nodes").expect("nodes are served")
    }

    #[test]
    fn decode_keeps_empty_structs_and_required_strings_and_drops_empty_omitempty_fields() {
        let node = json!({"apiVersion":"v1","kind":"Node",
            "metadata":{"name":"n","labels":{},"annotations":{"a":""}},
            "spec":{"taints":[{"key":"k","value":"","effect":"NoSchedule"}],"podCIDRs":[]},
            "status":{"addresses":[{"type":"Hostname","address":""}]}});
        let decoded = nodes().decode(&node).expect("decodes");
        let mut status = nodes().go_zero_values()["status"].clone();
        status["addresses"] = json!([{"type":"Hostname","address":""}]);
        assert_eq!(
            decoded.object,
            json!({"apiVersion":"v1","kind":"Node",
                "metadata":{"name":"n","annotations":{"a":""}},
                "spec":{"taints":[{"key":"k","effect":"NoSchedule"}]},
                "status": status})
        );
        assert!(decoded.unknown_fields.is_empty());
        let empty = nodes()
            .decode(&json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{}}))
            .expect("decodes");
        assert_eq!(empty.object["spec"], json!({}));
    }

    #[test]
    fn decode_names_unknown_fields_by_path_including_list_items() {
        let node = json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"n","labels":{"x":"y"}},
            "spec":{"bogus":1,"taints":[{"key":"k","effect":"NoSchedule","extra":true}]},
            "top":null});
        let decoded = nodes().decode(&node).expect("decodes");
        assert_eq!(
            decoded.unknown_fields,
            vec!["spec.bogus".to_string(), "spec.taints[0].extra".to_string()]
        );
    }

    #[test]
    fn a_wrong_type_is_an_error_naming_the_field() {
        let err = nodes()
            .decode(&json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"unschedulable":"yes"}}))
            .expect_err("a string is not a bool");
        assert!(err.contains("spec.unschedulable"), "{err}");
    }

    #[test]
    fn field_validation_defaults_to_warn_and_refuses_unknown_values() {
        assert_eq!(FieldValidation::parse(None), Some(FieldValidation::Warn));
        assert_eq!(
            FieldValidation::parse(Some("Strict")),
            Some(FieldValidation::Strict)
        );
        assert_eq!(FieldValidation::parse(Some("strict")), None);
    }
}
