//! Pure: `NodeView` + `Config` -> the metadata bare-ccm would write, with the source of each
//! value and every warning/error. `run`, `explain` and `doctor` all call `resolve`.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::node_view::NodeView;

/// Where an address came from; also the names used in `addressSources`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressSource {
    Inventory,
    Annotations,
    K3sNodeArgs,
    ProvidedNodeIp,
    Kubelet,
    /// Rule 5 fallback: the node's name used as its Hostname.
    NodeName,
}

/// One address of the desired `status.addresses`, with its provenance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedAddress {
    /// InternalIP | ExternalIP | InternalDNS | ExternalDNS | Hostname
    pub type_: String,
    pub address: String,
    pub source: AddressSource,
}

/// A value with a human-readable reason, for `explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced {
    pub value: String,
    pub why: String,
}

/// Everything bare-ccm decided about one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    pub node: String,
    /// The node carries a taint with the uninitialized key.
    pub tainted: bool,
    /// The full desired `status.addresses`, in order.
    pub addresses: Vec<ResolvedAddress>,
    /// The providerID that would be written, or the node's existing one.
    pub provider_id: Sourced,
    /// True when `provider_id` must be written (the node has none).
    pub set_provider_id: bool,
    /// Only the labels that would be added.
    pub labels: BTreeMap<String, Sourced>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl Resolution {
    /// Whether the controller would initialise the node now.
    pub fn would_initialize(&self) -> bool {
        self.tainted && self.errors.is_empty()
    }
}

/// Computes the desired metadata of `node` under `config`.
pub fn resolve(_node: &NodeView, _config: &Config) -> Resolution {
    todo!()
}
