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
mod resolution;

pub use crate::config::AddressSource;
pub use crate::facts::UNINITIALIZED_TAINT;
pub use resolution::{
    ProvidedNodeIpProblem, Resolution, ResolveError, ResolvedAddress, Sourced, Warning,
};

use crate::config::{Config, InventoryEntry, ProvidedNodeIpMode, expand_provider_id};
use crate::node_view::NodeView;

use addresses::{AddressType, Candidate, combine};

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
    if config.require_internal_ip && !addresses.iter().any(|a| a.type_ == AddressType::InternalIP) {
        errors.push(ResolveError::NoInternalIp {
            node: node.name.clone(),
            inventory: config.address_sources.contains(&AddressSource::Inventory),
        });
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
        tainted: node.is_uninitialized(),
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
    warnings: &mut Vec<Warning>,
    errors: &mut Vec<ResolveError>,
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
        Err(provided_node_ip::FilterError::Invalid(error)) => ProvidedNodeIpProblem::Invalid {
            value: value.clone(),
            error,
        },
        Err(provided_node_ip::FilterError::Unmatched(ip)) => ProvidedNodeIpProblem::Unmatched {
            ip,
            resolved: combined.clone(),
        },
    };
    match config.provided_node_ip {
        ProvidedNodeIpMode::Prefer => warnings.push(Warning::ProvidedNodeIpIgnored(problem)),
        _ => errors.push(ResolveError::ProvidedNodeIp(problem)),
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
fn kubelet_candidates(node: &NodeView, warnings: &mut Vec<Warning>) -> Vec<Candidate> {
    node.addresses
        .iter()
        .filter_map(|a| {
            let type_ = match a.type_.parse::<AddressType>() {
                Ok(t) if KUBELET_REPORTED.contains(&t) => t,
                Ok(_) => return None,
                Err(e) => {
                    warnings.push(Warning::KubeletAddressType(e));
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
    if addresses.iter().any(|a| a.type_ == AddressType::Hostname) {
        return;
    }
    let kubelet: Vec<ResolvedAddress> = node
        .addresses
        .iter()
        .filter(|a| a.type_ == AddressType::Hostname.as_str() && !a.address.is_empty())
        .map(|a| ResolvedAddress {
            type_: AddressType::Hostname,
            address: a.address.clone(),
            source: AddressSource::Kubelet,
        })
        .collect();
    if kubelet.is_empty() {
        addresses.push(ResolvedAddress {
            type_: AddressType::Hostname,
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
