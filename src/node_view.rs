//! The compact projection of a Node that the resolver reads and the controller caches.
//! It holds only what initialisation needs (no images, no managedFields, no conditions),
//! so a cache of thousands of nodes stays small and heartbeats compare cheaply.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeAddress, Taint};
use k8s_openapi::jiff::Timestamp;

use crate::facts::{is_k3s_node, is_relevant_annotation, is_uninitialized};

/// What bare-ccm knows about one Node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeView {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion`, to order observations (no patch carries it).
    pub resource_version: String,
    /// All labels (inventory selectors and the never-overwrite rule read them).
    pub labels: BTreeMap<String, String>,
    /// Only the annotations the resolver reads (see `facts::is_relevant_annotation`).
    pub annotations: BTreeMap<String, String>,
    /// `spec.providerID`, "" when unset.
    pub provider_id: String,
    /// `spec.taints`, kept whole so that a patch can write the others back unchanged.
    pub taints: Vec<Taint>,
    /// `status.addresses` as the node reports them now.
    pub addresses: Vec<NodeAddress>,
    /// `metadata.creationTimestamp`: when the kubelet registered the node; the k3s agent
    /// wait counts from it.
    pub created: Option<Timestamp>,
    /// The node runs k3s (`status.nodeInfo`), so k3s will describe it after registration.
    /// One bool rather than the two version strings: the cache is memory-budgeted.
    pub k3s: bool,
}

impl NodeView {
    /// Projects a full Node into the fields bare-ccm uses (copying them; see
    /// [`NodeView::from_owned`]).
    pub fn from_node(node: &Node) -> Self {
        Self::from_owned(node.clone())
    }

    /// Projects a Node by moving its fields: the controller's path, taken for every watch
    /// event (heartbeats included), so nothing is copied there.
    pub fn from_owned(node: Node) -> Self {
        let meta = node.metadata;
        let spec = node.spec.unwrap_or_default();
        let status = node.status.unwrap_or_default();
        let k3s = status
            .node_info
            .as_ref()
            .is_some_and(|i| is_k3s_node(&i.kubelet_version, &i.container_runtime_version));
        NodeView {
            name: meta.name.unwrap_or_default(),
            resource_version: meta.resource_version.unwrap_or_default(),
            labels: meta.labels.unwrap_or_default(),
            annotations: meta
                .annotations
                .into_iter()
                .flatten()
                .filter(|(k, _)| is_relevant_annotation(k))
                .collect(),
            provider_id: spec.provider_id.unwrap_or_default(),
            taints: spec.taints.unwrap_or_default(),
            addresses: status.addresses.unwrap_or_default(),
            created: meta.creation_timestamp.map(|t| t.0),
            k3s,
        }
    }

    /// Whether the node still carries the uninitialized taint (the one test every layer uses).
    pub fn is_uninitialized(&self) -> bool {
        is_uninitialized(&self.taints)
    }

    /// Whether `other` differs from `self` in anything the resolver or the patch builders
    /// read, ignoring `resource_version`: a kubelet heartbeat yields `true` here, so the
    /// controller can skip it without resolving.
    pub fn same_inputs(&self, other: &NodeView) -> bool {
        self.name == other.name
            && self.labels == other.labels
            && self.annotations == other.annotations
            && self.provider_id == other.provider_id
            && self.taints == other.taints
            && self.addresses == other.addresses
            && self.created == other.created
            && self.k3s == other.k3s
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, NodeSystemInfo};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn full_node() -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                resource_version: Some("7".into()),
                creation_timestamp: Some(Time(Timestamp::UNIX_EPOCH)),
                labels: Some([("kubernetes.io/hostname".to_string(), "n1".to_string())].into()),
                annotations: Some(
                    [
                        ("k3s.io/node-args", "[\"agent\"]"),
                        ("alpha.kubernetes.io/provided-node-ip", "10.0.0.5"),
                        ("bare-ccm.io/internal-ip", "10.0.0.5"),
                        ("node.alpha.kubernetes.io/ttl", "0"),
                        ("k3s.io/node-config-hash", "ABC"),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                provider_id: Some("k3s://n1".into()),
                taints: Some(vec![Taint {
                    key: "k".into(),
                    effect: "NoSchedule".into(),
                    ..Taint::default()
                }]),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress {
                    type_: "Hostname".into(),
                    address: "n1".into(),
                }]),
                node_info: Some(NodeSystemInfo {
                    kubelet_version: "v1.33.4".into(),
                    container_runtime_version: "containerd://2.0.5-k3s1".into(),
                    ..NodeSystemInfo::default()
                }),
                ..NodeStatus::default()
            }),
        }
    }

    #[test]
    fn projection_keeps_only_what_the_resolver_reads() {
        let v = NodeView::from_node(&full_node());
        assert_eq!(v.name, "n1");
        assert_eq!(v.resource_version, "7");
        assert_eq!(v.provider_id, "k3s://n1");
        assert_eq!(v.taints.len(), 1);
        assert_eq!(v.addresses.len(), 1);
        assert_eq!(v.labels.len(), 1);
        assert_eq!(v.created, Some(Timestamp::UNIX_EPOCH));
        assert!(v.k3s, "k3s's bundled containerd marks a k3s node");
        assert_eq!(
            v.annotations.keys().collect::<Vec<_>>(),
            [
                "alpha.kubernetes.io/provided-node-ip",
                "bare-ccm.io/internal-ip",
                "k3s.io/node-args"
            ]
        );
    }

    #[test]
    fn empty_node_projects_to_defaults() {
        assert_eq!(NodeView::from_node(&Node::default()), NodeView::default());
    }

    #[test]
    fn heartbeat_changes_only_the_resource_version() {
        let a = NodeView::from_node(&full_node());
        let mut heartbeat = full_node();
        heartbeat.metadata.resource_version = Some("8".into());
        if let Some(annotations) = heartbeat.metadata.annotations.as_mut() {
            annotations.insert("node.alpha.kubernetes.io/ttl".into(), "5".into());
        }
        let b = NodeView::from_node(&heartbeat);
        assert!(a.same_inputs(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn relevant_changes_are_detected() {
        let a = NodeView::from_node(&full_node());
        let mut b = a.clone();
        b.annotations
            .insert("bare-ccm.io/internal-ip".into(), "10.0.0.6".into());
        assert!(!a.same_inputs(&b));
        let mut c = a.clone();
        c.taints.clear();
        assert!(!a.same_inputs(&c));
        let mut d = a.clone();
        d.labels.insert("example.com/x".into(), "y".into());
        assert!(!a.same_inputs(&d));
    }
}
