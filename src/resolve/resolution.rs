//! What the resolver decided about one node: the desired addresses, providerID and labels,
//! each with where it came from, and the warnings and errors met on the way.

use std::collections::BTreeMap;
use std::fmt;

use std::net::IpAddr;

use serde::{Serialize, Serializer};

use crate::config::AddressSource;
use crate::facts::address::{AddressType, ProvidedNodeIpError};
use crate::facts::{INTERNAL_IP, PROVIDED_NODE_IP};

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
    /// Reasons the node must not be initialised; each displays as an actionable sentence.
    pub errors: Vec<ResolveError>,
}

impl Resolution {
    /// Whether the controller would initialise the node now.
    pub fn would_initialize(&self) -> bool {
        self.tainted && self.errors.is_empty()
    }
}

/// Why a node must not be initialised (or its addresses refreshed). The Display text is
/// the actionable sentence that Events, logs and `explain` show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// `requireInternalIP` is set and no source gave an InternalIP.
    #[error(
        "no InternalIP for node {node}: set --node-ip on the k3s agent, or annotate {INTERNAL_IP}=<ip>{}",
        if *inventory { ", or add an inventory entry with an InternalIP" } else { "" }
    )]
    NoInternalIp {
        /// The node name.
        node: String,
        /// Whether the `inventory` source is configured (then it is named as a fix).
        inventory: bool,
    },
    /// The kubelet's provided-node-ip cannot be honoured (`providedNodeIP: require`).
    #[error("{0} (or set providedNodeIP: prefer in the config)")]
    ProvidedNodeIp(ProvidedNodeIpProblem),
}

/// `explain -o json` and the plan's JSON write an error as its sentence.
impl Serialize for ResolveError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why the kubelet's provided-node-ip cannot filter the resolved addresses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProvidedNodeIpProblem {
    /// The annotation is not one IP or a dual-stack pair.
    #[error(
        "provided-node-ip {value:?} ({PROVIDED_NODE_IP}) is invalid: {error}: fix the kubelet --node-ip"
    )]
    Invalid {
        /// The annotation value.
        value: String,
        /// What is wrong with it.
        error: ProvidedNodeIpError,
    },
    /// An IP of the annotation is none of the resolved addresses.
    #[error(
        "provided-node-ip {ip} ({PROVIDED_NODE_IP}) matches none of the resolved addresses [{}]: fix the kubelet --node-ip or add the address via --node-ip on the k3s agent, annotation {INTERNAL_IP}, or the inventory",
        resolved.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    Unmatched {
        /// The annotation IP.
        ip: IpAddr,
        /// The addresses it was looked for in.
        resolved: Vec<ResolvedAddress>,
    },
}
