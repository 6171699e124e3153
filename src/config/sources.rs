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
