//! The table of API resources the emulator serves: one row per (group, version, resource),
//! with the facts discovery publishes and the handlers need (kind, scope, verbs, short names,
//! subresources, which store holds the objects).
//!
//! Routing, discovery and storage all read this table, so adding a resource is one row.
//! Each row also names the Go type its objects decode into ([`ResourceDef::decode`]).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Where the objects of a resource live. Two API resources may share one store, as core/v1
/// `events` and `events.k8s.io/v1` `events` do in kube-apiserver (both are served from the
/// one `events` etcd prefix; kubernetes `pkg/registry/events/rest/storage_events.go` reuses
/// the core event storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreKind {
    /// core/v1 Node (cluster-scoped).
    Nodes,
    /// core/v1 Namespace (cluster-scoped).
    Namespaces,
    /// core/v1 ConfigMap.
    ConfigMaps,
    /// core/v1 Event, also served as events.k8s.io/v1 Event.
    Events,
    /// coordination.k8s.io/v1 Lease.
    Leases,
    /// core/v1 Pod (read by `bare-ccm doctor`; no scheduler or kubelet acts on them).
    Pods,
    /// apps/v1 Deployment (read by `bare-ccm doctor`; no controller acts on them).
    Deployments,
    /// apps/v1 DaemonSet (read by `bare-ccm doctor`; no controller acts on them).
    DaemonSets,
}

/// One served API resource.
#[derive(Debug)]
pub struct ResourceDef {
    /// API group, "" for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name as in URLs and RBAC.
    pub resource: &'static str,
    /// Singular name (discovery `singularName`).
    pub singular: &'static str,
    /// Kind of the objects.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Discovery short names (`kubectl get no`).
    pub short_names: &'static [&'static str],
    /// Subresources served (only `status` here).
    pub subresources: &'static [&'static str],
    /// Where the objects are kept.
    pub store: StoreKind,
}

impl ResourceDef {
    /// `apiVersion` of the objects: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether this is the events.k8s.io view of the shared Event store, whose objects are
    /// converted on the way in and out.
    pub fn is_events_v1(&self) -> bool {
        self.store == StoreKind::Events && !self.group.is_empty()
    }

    /// The `kind` of a list of these objects.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The verbs the resource serves, in discovery order.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.store == StoreKind::Namespaces {
            NAMESPACE_VERBS
        } else {
            VERBS
        }
    }
}

/// The verbs every served resource supports, in discovery order.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of Namespaces: no `deletecollection` (kubernetes
/// `pkg/registry/core/namespace/storage/storage.go`: the namespace `REST` does not
/// implement `rest.CollectionDeleter`).
pub const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The verbs of a `status` subresource in discovery.
pub const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// Every resource the emulator serves (kube-apiserver v1.33 discovery for these resources:
/// `kubectl api-resources`).
pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        group: "",
        version: "v1",
        resource: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        subresources: &["status"],
        store: StoreKind::Nodes,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        subresources: &[],
        store: StoreKind::Namespaces,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        subresources: &[],
        store: StoreKind::ConfigMaps,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        subresources: &[],
        store: StoreKind::Events,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        subresources: &["status"],
        store: StoreKind::Pods,
    },
    // apps/v1 before events.k8s.io: discovery lists groups by priority (kubernetes
    // `pkg/controlplane/apiserver/aggregator.go` `apiVersionPriorities`: apps 17800,
    // events.k8s.io 17750, coordination.k8s.io 16500).
    ResourceDef {
        group: "apps",
        version: "v1",
        resource: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        subresources: &["status"],
        store: StoreKind::Deployments,
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        resource: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        subresources: &["status"],
        store: StoreKind::DaemonSets,
    },
    ResourceDef {
        group: "events.k8s.io",
        version: "v1",
        resource: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        subresources: &[],
        store: StoreKind::Events,
    },
    ResourceDef {
        group: "coordination.k8s.io",
        version: "v1",
        resource: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        store: StoreKind::Leases,
    },
];

/// The resource served at (group, version, plural), if any.
pub fn find(group: &str, version: &str, resource: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// The resource a test names by plural (`"nodes"`, `"events"`): the core/v1 row first.
pub fn find_by_plural(resource: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.resource == resource)
}

/// The API groups other than core, in discovery order, each with its versions.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.iter().any(|(g, v)| *g == r.group && *v == r.version) {
            out.push((r.group, r.version));
        }
    }
    out
}

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
