//! The compact projection of a Node that the resolver reads and the controller caches.
//! It holds only what initialisation needs (no images, no managedFields, no conditions),
//! so a cache of thousands of nodes stays small and heartbeats compare cheaply.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeAddress, Taint};

/// What bare-ccm knows about one Node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeView {
    pub name: String,
    pub resource_version: String,
    pub labels: BTreeMap<String, String>,
    /// Only the annotations the resolver reads (see `resolve::is_relevant_annotation`).
    pub annotations: BTreeMap<String, String>,
    /// `spec.providerID`, "" when unset.
    pub provider_id: String,
    pub taints: Vec<Taint>,
    /// `status.addresses` as the node reports them now.
    pub addresses: Vec<NodeAddress>,
}

impl NodeView {
    /// Projects a full Node into the fields bare-ccm uses.
    pub fn from_node(_node: &Node) -> Self {
        todo!("filled in with the resolver")
    }
}
