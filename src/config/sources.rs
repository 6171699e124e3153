//! The address sources a config lists (`addressSources`): their names, their default
//! order, and how a name is parsed.

use std::fmt;
use std::str::FromStr;

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

/// A listed `addressSources` with the sources added since such lists were written:
/// [`with_implied_interfaces`], then [`with_implied_k3s_annotations`].
pub fn with_implied_sources(sources: Vec<AddressSource>) -> Vec<AddressSource> {
    with_implied_k3s_annotations(with_implied_interfaces(sources))
}

/// Configs written before `interfaces` existed. A list that reads a node's own account of
/// its addresses (`k3s-node-args` or `provided-node-ip`) reads the agent's too, which the
/// same node states: right after `k3s-node-args`, else right before `provided-node-ip`,
/// as the default ranks it. The agent is opt-in, so without it this adds nothing. A list
/// naming neither (`[inventory]`: only what the operator wrote) is taken as written, and
/// so is one naming `interfaces`.
pub fn with_implied_interfaces(mut sources: Vec<AddressSource>) -> Vec<AddressSource> {
    let position = |src| sources.iter().position(|s| *s == src);
    if position(AddressSource::Interfaces).is_some() {
        return sources;
    }
    let at = match (
        position(AddressSource::K3sNodeArgs),
        position(AddressSource::ProvidedNodeIp),
    ) {
        (Some(node_args), _) => node_args + 1,
        (None, Some(provided)) => provided,
        (None, None) => return sources,
    };
    sources.insert(at, AddressSource::Interfaces);
    sources
}

/// Configs written before `k3s-annotations` existed list `annotations` for both key sets.
/// Such a list keeps reading the `k3s.io/*` keys, ranked as the default ranks them: right
/// after `annotations`, `k3s-node-args` or `interfaces`, whichever comes last. A list
/// naming `k3s-annotations` itself, or not naming `annotations`, is taken as written.
pub fn with_implied_k3s_annotations(mut sources: Vec<AddressSource>) -> Vec<AddressSource> {
    let position = |src| sources.iter().position(|s| *s == src);
    if position(AddressSource::K3sAnnotations).is_some() {
        return sources;
    }
    let Some(annotations) = position(AddressSource::Annotations) else {
        return sources;
    };
    let after = [AddressSource::K3sNodeArgs, AddressSource::Interfaces]
        .into_iter()
        .filter_map(position)
        .fold(annotations, usize::max);
    sources.insert(after + 1, AddressSource::K3sAnnotations);
    sources
}
