//! Pure: `NodeView` + `Config` -> the metadata bare-ccm would write, with the source of each
//! value and every warning/error. `run`, `explain` and `doctor` all call `resolve`.
//! Nothing here performs I/O or looks at the clock.

pub mod addresses;
pub mod annotations;
pub mod interfaces;
pub mod k3s_agent;
pub mod labels;
pub mod node_args;
pub mod provided_node_ip;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::config::{Config, InventoryEntry, ProvidedNodeIpMode, expand_provider_id};
use crate::node_view::NodeView;

use addresses::{AddressType, Candidate, combine};

/// The taint every kubelet with `--cloud-provider=external` registers with; only a CCM
/// removes it. Matched by key only (value and effect are ignored, as upstream).
pub const UNINITIALIZED_TAINT: &str = "node.cloudprovider.kubernetes.io/uninitialized";

/// Where an address came from; also the names used in `addressSources`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressSource {
    /// The matching `inventory` entry of the config.
    Inventory,
    /// The `bare-ccm.io/*` address annotations operators set.
    Annotations,
    /// The `k3s.io/node-args` annotation.
    K3sNodeArgs,
    /// The `k3s.io/*` address annotations of k3s's embedded CCM, which go stale once it is
    /// disabled, hence their rank below `k3s-node-args`.
    K3sAnnotations,
    /// The `bare-ccm.io/interfaces` annotation of `bare-ccm agent`, placed by the config's
    /// CIDR rules.
    Interfaces,
    /// The kubelet's `alpha.kubernetes.io/provided-node-ip` annotation.
    ProvidedNodeIp,
    /// The node's current `status.addresses`.
    Kubelet,
    /// Rule 5 fallback: the node's name used as its Hostname.
    NodeName,
}

impl AddressSource {
    /// The sources a config may list, in the default priority order.
    pub const CONFIGURABLE: [AddressSource; 7] = [
        AddressSource::Inventory,
        AddressSource::Annotations,
        AddressSource::K3sNodeArgs,
        AddressSource::Interfaces,
        AddressSource::K3sAnnotations,
        AddressSource::ProvidedNodeIp,
        AddressSource::Kubelet,
    ];

    /// The config spelling (`addressSources` entries, `explain` output).
    pub fn as_str(self) -> &'static str {
        match self {
            AddressSource::Inventory => "inventory",
            AddressSource::Annotations => "annotations",
            AddressSource::K3sNodeArgs => "k3s-node-args",
            AddressSource::K3sAnnotations => "k3s-annotations",
            AddressSource::Interfaces => "interfaces",
            AddressSource::ProvidedNodeIp => "provided-node-ip",
            AddressSource::Kubelet => "kubelet",
            AddressSource::NodeName => "node-name",
        }
    }

    /// The configurable names joined for messages.
    pub fn configurable_names() -> String {
        AddressSource::CONFIGURABLE
            .map(AddressSource::as_str)
            .join(", ")
    }
}

impl fmt::Display for AddressSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`AddressSource::from_str`]: names the accepted spellings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown source {name:?} (expected one of {})",
    AddressSource::configurable_names()
)]
pub struct UnknownAddressSource {
    /// The name given.
    pub name: String,
}

impl FromStr for AddressSource {
    type Err = UnknownAddressSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AddressSource::CONFIGURABLE
            .into_iter()
            .chain([AddressSource::NodeName])
            .find(|src| src.as_str() == s)
            .ok_or_else(|| UnknownAddressSource {
                name: s.to_string(),
            })
    }
}

/// One address of the desired `status.addresses`, with its provenance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedAddress {
    /// InternalIP | ExternalIP | InternalDNS | ExternalDNS | Hostname
    pub type_: String,
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

/// Whether the resolver reads annotation `key`; `NodeView` keeps only these.
pub fn is_relevant_annotation(key: &str) -> bool {
    key == node_args::NODE_ARGS
        || key == provided_node_ip::PROVIDED_NODE_IP
        || annotations::is_address_annotation(key)
        || key == interfaces::INTERFACES
}

/// The first inventory entry matching the node, with its index.
pub fn inventory_entry<'c>(
    node: &NodeView,
    config: &'c Config,
) -> Option<(usize, &'c InventoryEntry)> {
    config
        .inventory
        .iter()
        .enumerate()
        .find(|(_, e)| e.matcher.matches(&node.name, &node.labels))
}

/// Computes the desired metadata of `node` under `config`.
pub fn resolve(node: &NodeView, config: &Config) -> Resolution {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let entry = inventory_entry(node, config);

    let mut addresses = resolve_addresses(node, config, entry, &mut warnings, &mut errors);
    if config.require_internal_ip
        && !addresses
            .iter()
            .any(|a| a.type_ == AddressType::InternalIP.as_str())
    {
        errors.push(format!(
            "no InternalIP for node {}: set --node-ip on the k3s agent, or annotate {}=<ip>{}",
            node.name,
            annotations::INTERNAL_IP,
            if config.address_sources.contains(&AddressSource::Inventory) {
                ", or add an inventory entry with an InternalIP"
            } else {
                ""
            }
        ));
    }
    // Upstream leaves the kubelet's addresses alone when the cloud gives none (reference
    // §2.7), so the Hostname fallback only completes a list that has something in it.
    if !addresses.is_empty() {
        add_hostname_fallback(node, &mut addresses);
    }

    let (provider_id, set_provider_id) = resolve_provider_id(node, config, entry);
    let labels = labels::desired(&node.labels, config, entry, &mut warnings);

    Resolution {
        node: node.name.clone(),
        tainted: node.taints.iter().any(|t| t.key == UNINITIALIZED_TAINT),
        addresses,
        provider_id,
        set_provider_id,
        labels,
        warnings,
        errors,
    }
}

/// Gathers each configured source's candidates, combines them, and applies the
/// provided-node-ip rule.
fn resolve_addresses(
    node: &NodeView,
    config: &Config,
    entry: Option<(usize, &InventoryEntry)>,
    warnings: &mut Vec<String>,
    errors: &mut Vec<String>,
) -> Vec<ResolvedAddress> {
    let provided = node
        .annotations
        .get(provided_node_ip::PROVIDED_NODE_IP)
        .filter(|v| !v.is_empty());
    let sources: Vec<(AddressSource, Vec<Candidate>)> = config
        .address_sources
        .iter()
        .map(|&src| {
            let cands = match src {
                AddressSource::Inventory => entry
                    .map(|(_, e)| {
                        e.addresses
                            .iter()
                            .map(|a| Candidate {
                                type_: a.type_,
                                address: a.address.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                AddressSource::Annotations => annotations::candidates(
                    &node.annotations,
                    annotations::Owner::BareCcm,
                    warnings,
                ),
                AddressSource::K3sAnnotations => {
                    annotations::candidates(&node.annotations, annotations::Owner::K3s, warnings)
                }
                AddressSource::K3sNodeArgs => node
                    .annotations
                    .get(node_args::NODE_ARGS)
                    .map(|v| node_args::candidates(v, warnings))
                    .unwrap_or_default(),
                AddressSource::Interfaces => node
                    .annotations
                    .get(interfaces::INTERFACES)
                    .map(|v| interfaces::candidates(v, &config.interfaces, warnings))
                    .unwrap_or_default(),
                AddressSource::ProvidedNodeIp => provided
                    .map(|v| provided_node_ip::candidates(v, warnings))
                    .unwrap_or_default(),
                AddressSource::Kubelet => kubelet_candidates(node, warnings),
                AddressSource::NodeName => Vec::new(),
            };
            (src, cands)
        })
        .collect();
    let combined = combine(&sources, config.prefer_ipv6);

    let Some(value) = provided.filter(|_| config.provided_node_ip != ProvidedNodeIpMode::Ignore)
    else {
        return combined;
    };
    let problem = match provided_node_ip::filter(value, &combined) {
        Ok(filtered) => return filtered,
        Err(provided_node_ip::FilterError::Invalid(e)) => format!(
            "provided-node-ip {value:?} ({}) is invalid: {e}: fix the kubelet --node-ip",
            provided_node_ip::PROVIDED_NODE_IP
        ),
        Err(provided_node_ip::FilterError::Unmatched(ip)) => format!(
            "provided-node-ip {ip} ({}) matches none of the resolved addresses [{}]: fix the kubelet --node-ip or add the address via --node-ip on the k3s agent, annotation {}, or the inventory",
            provided_node_ip::PROVIDED_NODE_IP,
            combined
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            annotations::INTERNAL_IP
        ),
    };
    match config.provided_node_ip {
        ProvidedNodeIpMode::Prefer => warnings.push(format!(
            "{problem} (providedNodeIP: prefer, so the addresses are left unfiltered)"
        )),
        _ => errors.push(format!(
            "{problem} (or set providedNodeIP: prefer in the config)"
        )),
    }
    combined
}

/// The address types a kubelet reports itself. With no cloud provider, or with
/// `--cloud-provider=external`, the kubelet's `NodeAddress` setter writes only InternalIP
/// (its `--node-ip` or the detected IP) and Hostname; ExternalIP and the DNS types only ever
/// come from a cloud provider (kubernetes/kubernetes `pkg/kubelet/nodestatus/setters.go`,
/// `NodeAddress`). Any other entry in `status.addresses` was written by a cloud controller,
/// after initialisation by bare-ccm itself, so reading it back would keep an address alive
/// after its real source dropped it.
const KUBELET_REPORTED: [AddressType; 2] = [AddressType::InternalIP, AddressType::Hostname];

/// The node's current `status.addresses` as candidates, limited to the types a kubelet
/// reports ([`KUBELET_REPORTED`]); malformed entries are warnings.
fn kubelet_candidates(node: &NodeView, warnings: &mut Vec<String>) -> Vec<Candidate> {
    node.addresses
        .iter()
        .filter_map(|a| {
            let type_ = match a.type_.parse::<AddressType>() {
                Ok(t) if KUBELET_REPORTED.contains(&t) => t,
                Ok(_) => return None,
                Err(e) => {
                    warnings.push(format!("ignoring node status address: {e}"));
                    return None;
                }
            };
            Candidate::parse(type_, &a.address, "the node's status.addresses")
                .map_err(|w| warnings.push(w))
                .ok()
        })
        .collect()
}

/// Rule 5: when no source gave a Hostname, use the kubelet's, else the node name. Called
/// only for a non-empty list.
fn add_hostname_fallback(node: &NodeView, addresses: &mut Vec<ResolvedAddress>) {
    if addresses
        .iter()
        .any(|a| a.type_ == AddressType::Hostname.as_str())
    {
        return;
    }
    let kubelet: Vec<ResolvedAddress> = node
        .addresses
        .iter()
        .filter(|a| a.type_ == AddressType::Hostname.as_str() && !a.address.is_empty())
        .map(|a| ResolvedAddress {
            type_: a.type_.clone(),
            address: a.address.clone(),
            source: AddressSource::Kubelet,
        })
        .collect();
    if kubelet.is_empty() {
        addresses.push(ResolvedAddress {
            type_: AddressType::Hostname.as_str().to_string(),
            address: node.name.clone(),
            source: AddressSource::NodeName,
        });
    } else {
        addresses.extend(kubelet);
    }
}

/// The providerID: the node's own when set (never changed), else the inventory override or
/// the config template. An empty template sets none.
fn resolve_provider_id(
    node: &NodeView,
    config: &Config,
    entry: Option<(usize, &InventoryEntry)>,
) -> (Sourced, bool) {
    if !node.provider_id.is_empty() {
        return (
            Sourced {
                value: node.provider_id.clone(),
                why: "already set on the node (a providerID is never changed)".to_string(),
            },
            false,
        );
    }
    let (template, why) = match entry.filter(|(_, e)| !e.provider_id.is_empty()) {
        Some((i, e)) => (
            e.provider_id.as_str(),
            format!(
                "inventory[{i}] ({}) providerID {:?}",
                e.matcher, e.provider_id
            ),
        ),
        None => (
            config.provider_id.as_str(),
            format!("config providerID {:?}", config.provider_id),
        ),
    };
    let value = expand_provider_id(template, &node.name);
    let set = !value.is_empty();
    (Sourced { value, why }, set)
}

#[cfg(test)]
mod tests;
