//! What the resolver decided about one node: the desired addresses, providerID and labels,
//! each with where it came from, and the warnings and errors met on the way.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::AddressSource;
use crate::facts::address::AddressType;

/// One address of the desired `status.addresses`, with its provenance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedAddress {
    /// InternalIP | ExternalIP | InternalDNS | ExternalDNS | Hostname
    pub type_: AddressType,
    /// The address as written to the node (IPs canonical).
    pub address: String,
    /// Where it came from, for `explain`.
    pub source: AddressSource,
}

impl fmt::Display for ResolvedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.type_, self.address, self.source)
    }
}

/// A value with a human-readable reason, for `explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced {
    /// The value.
    pub value: String,
    /// Where it came from, e.g. `config instanceType` or `inventory[0] (name n1) zone`.
    pub why: String,
}

/// Everything bare-ccm decided about one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    /// The node name.
    pub node: String,
    /// The node carries a taint with the uninitialized key.
    pub tainted: bool,
    /// The full desired `status.addresses`, in order. Empty when no source gave an address:
    /// the kubelet's addresses are then left alone (no status write).
    pub addresses: Vec<ResolvedAddress>,
    /// The providerID that would be written, or the node's existing one.
    pub provider_id: Sourced,
    /// True when `provider_id` must be written (the node has none).
    pub set_provider_id: bool,
    /// Only the labels that would be added.
    pub labels: BTreeMap<String, Sourced>,
    /// Inputs skipped or overridden; the node still initialises.
    pub warnings: Vec<String>,
    /// Reasons the node must not be initialised; each is an actionable sentence.
    pub errors: Vec<String>,
}

impl Resolution {
    /// Whether the controller would initialise the node now.
    pub fn would_initialize(&self) -> bool {
        self.tainted && self.errors.is_empty()
    }
}
