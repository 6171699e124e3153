//! The table of API resources the emulator serves: one row per (group, version, resource),
//! with the facts discovery publishes and the handlers need (kind, scope, verbs, short names,
//! subresources, which store holds the objects).
//!
//! Routing, discovery and storage all read this table, so adding a resource is one row.
//! Each row also names the Go type its objects decode into ([`ResourceDef::decode`], in
//! `decode`).

mod decode;

pub use decode::{Decoded, FieldValidation, fill_go_zero_values};

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
