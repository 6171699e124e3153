//! What the resolver decided about one node: the desired addresses, providerID and labels,
//! each with where it came from, and the warnings and errors met on the way.

use std::collections::BTreeMap;
use std::fmt;

use std::net::IpAddr;

use serde::{Serialize, Serializer};

use crate::config::AddressSource;
use crate::facts::address::{AddressType, ProvidedNodeIpError, UnknownAddressType};
use crate::facts::{INTERFACES, INTERNAL_IP, NODE_ARGS, NODE_ARGS_REDACTED, PROVIDED_NODE_IP};

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
    pub warnings: Vec<Warning>,
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

/// An input the resolver skipped or overrode; the node still resolves. The Display text is
/// what `explain` and the controller's log show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// A value that is not an address of its type.
    #[error(
        "ignoring invalid {type_} {value:?} from {origin}: {}",
        if type_.is_ip() { "not an IP address" } else { "empty or contains whitespace or commas" }
    )]
    InvalidAddress {
        /// The address type the source gave it.
        type_: AddressType,
        /// The value as written.
        value: String,
        /// Where it was written (annotation, flag, status).
        origin: String,
    },
    /// `status.addresses` holds a type Kubernetes does not define.
    #[error("ignoring node status address: {0}")]
    KubeletAddressType(UnknownAddressType),
    /// `k3s.io/node-args` is not a JSON array.
    #[error("ignoring annotation {NODE_ARGS}: not a JSON array ({reason})")]
    NodeArgsNotArray {
        /// The JSON parser's message.
        reason: String,
    },
    /// An element of `k3s.io/node-args` is not a string.
    #[error("ignoring element {index} ({element}) of annotation {NODE_ARGS}: not a string")]
    NodeArgsNotString {
        /// Its index in the array.
        index: usize,
        /// The element as JSON.
        element: String,
    },
    /// An address flag of `k3s.io/node-args` is the last argument.
    #[error("ignoring {flag} in annotation {NODE_ARGS}: it has no value")]
    NodeArgsNoValue {
        /// The flag.
        flag: String,
    },
    /// k3s redacted the value of an address flag.
    #[error("ignoring redacted value {NODE_ARGS_REDACTED} of {flag} in annotation {NODE_ARGS}")]
    NodeArgsRedacted {
        /// The flag.
        flag: String,
    },
    /// `bare-ccm.io/interfaces` is not what `bare-ccm agent` writes.
    #[error(
        "ignoring annotation {INTERFACES}: not a JSON list of {{\"name\", \"addresses\"}} ({reason})"
    )]
    InterfacesNotList {
        /// The JSON parser's message.
        reason: String,
    },
    /// An address of `bare-ccm.io/interfaces` is not `IP/PREFIX`.
    #[error(
        "ignoring address {written:?} of interface {interface:?} in annotation {INTERFACES}: not IP/PREFIX"
    )]
    InterfaceAddress {
        /// The address as written.
        written: String,
        /// The interface that carries it.
        interface: String,
    },
    /// A label bare-ccm would set is already on the node with another value (never changed).
    #[error("label {key}={have} already on the node is kept; {why} wants {want:?}")]
    LabelKept {
        /// The label key.
        key: String,
        /// The value on the node.
        have: String,
        /// Where the wanted value comes from.
        why: String,
        /// The wanted value.
        want: String,
    },
    /// `providedNodeIP: prefer` and the kubelet's provided-node-ip cannot be honoured.
    #[error("{0} (providedNodeIP: prefer, so the addresses are left unfiltered)")]
    ProvidedNodeIpIgnored(ProvidedNodeIpProblem),
}

impl Warning {
    /// [`Warning::InvalidAddress`].
    pub fn invalid_address(type_: AddressType, value: &str, origin: &str) -> Warning {
        Warning::InvalidAddress {
            type_,
            value: value.to_string(),
            origin: origin.to_string(),
        }
    }
}
