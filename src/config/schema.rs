//! The validated configuration: `Config` and its parts (inventory entries, selectors,
//! the provided-node-ip mode), with the defaults that reproduce k3s's embedded CCM.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::interfaces::InterfacesConfig;
use super::sources::AddressSource;
use crate::facts::address::AddressType;

/// The default providerID template, k3s's own scheme.
pub const DEFAULT_PROVIDER_ID: &str = "k3s://{node}";
/// The default instance type, as k3s's embedded CCM reports it.
pub const DEFAULT_INSTANCE_TYPE: &str = "k3s";
/// The default of `k3sAgentWait`. The k3s agent describes its node within a second of the
/// kubelet's registration (it watches for the Node, k3s `pkg/agent/run.go` `configureNode`),
/// and the server adds its role labels within a second more (`pkg/server/server.go`
/// `setNodeLabelsAndAnnotations` polls each second); 30 s covers an agent slowed by a busy
/// host without keeping a node without k3s's description tainted for long.
pub const DEFAULT_K3S_AGENT_WAIT: Duration = Duration::from_secs(30);
/// The largest `k3sAgentWait`: k3s >= 1.28.10 shuts itself down when its node is still
/// tainted 15 minutes after start, so a wait must end well before that.
pub const MAX_K3S_AGENT_WAIT: Duration = Duration::from_secs(600);

/// The parsed, validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Template of `spec.providerID`; `{node}` is the node name; "" never sets one.
    pub provider_id: String,
    /// Instance type when neither the node label nor the inventory gives one; "" for none.
    pub instance_type: String,
    /// Default zone; "" for none.
    pub zone: String,
    /// Default region; "" for none.
    pub region: String,
    /// Address sources in priority order.
    pub address_sources: Vec<AddressSource>,
    /// How the kubelet's provided-node-ip annotation constrains the addresses.
    pub provided_node_ip: ProvidedNodeIpMode,
    /// Refuse to initialise a node without an InternalIP.
    pub require_internal_ip: bool,
    /// Order IPv6 before IPv4 inside each address type.
    pub prefer_ipv6: bool,
    /// Labels added to every node that lacks them.
    pub extra_labels: BTreeMap<String, String>,
    /// Per-node data; the first matching entry applies.
    pub inventory: Vec<InventoryEntry>,
    /// How long a tainted k3s node may wait, after its registration, for the k3s agent's
    /// description before it is initialised anyway; zero never waits.
    pub k3s_agent_wait: Duration,
    /// How the `interfaces` source reads `bare-ccm agent`'s annotation.
    pub interfaces: InterfacesConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            provider_id: DEFAULT_PROVIDER_ID.to_string(),
            instance_type: DEFAULT_INSTANCE_TYPE.to_string(),
            zone: String::new(),
            region: String::new(),
            address_sources: AddressSource::CONFIGURABLE.to_vec(),
            provided_node_ip: ProvidedNodeIpMode::Strict,
            require_internal_ip: true,
            prefer_ipv6: false,
            extra_labels: BTreeMap::new(),
            inventory: Vec::new(),
            k3s_agent_wait: DEFAULT_K3S_AGENT_WAIT,
            interfaces: InterfacesConfig::default(),
        }
    }
}

/// `providedNodeIP`: what to do when the kubelet's `--node-ip` disagrees with the addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvidedNodeIpMode {
    /// Apply the upstream rule; a mismatch keeps the node uninitialised.
    #[default]
    Strict,
    /// Apply the rule when it matches; a mismatch is a warning and the list stays unfiltered.
    Prefer,
    /// Do not look at the annotation for filtering.
    Ignore,
}

impl ProvidedNodeIpMode {
    /// The config spelling, for messages and `explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvidedNodeIpMode::Strict => "strict",
            ProvidedNodeIpMode::Prefer => "prefer",
            ProvidedNodeIpMode::Ignore => "ignore",
        }
    }
}

/// One `inventory` entry: which nodes it matches and what it sets for them.
#[derive(Clone, Debug, PartialEq)]
pub struct InventoryEntry {
    /// Which nodes the entry applies to.
    pub matcher: NodeMatcher,
    /// Ordered, typed addresses (IPs canonical).
    pub addresses: Vec<InventoryAddress>,
    /// providerID template override; "" for none.
    pub provider_id: String,
    /// Instance type override; "" for none.
    pub instance_type: String,
    /// Zone override; "" for none.
    pub zone: String,
    /// Region override; "" for none.
    pub region: String,
    /// Labels added to matching nodes that lack them.
    pub labels: BTreeMap<String, String>,
}

/// How an inventory entry selects nodes.
#[derive(Clone, Debug)]
pub enum NodeMatcher {
    /// Exact node name.
    Name(String),
    /// Regex matched against the whole node name (compiled anchored).
    NameRegex(Regex),
    /// Every listed label must be present with the given value.
    Selector(BTreeMap<String, String>),
}

impl PartialEq for NodeMatcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (NodeMatcher::Name(a), NodeMatcher::Name(b)) => a == b,
            (NodeMatcher::NameRegex(a), NodeMatcher::NameRegex(b)) => a.as_str() == b.as_str(),
            (NodeMatcher::Selector(a), NodeMatcher::Selector(b)) => a == b,
            _ => false,
        }
    }
}

impl NodeMatcher {
    /// Whether a node with this name and these labels is selected.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            NodeMatcher::Name(n) => n == name,
            NodeMatcher::NameRegex(re) => re.is_match(name),
            NodeMatcher::Selector(sel) => sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
        }
    }
}

impl fmt::Display for NodeMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeMatcher::Name(n) => write!(f, "name {n}"),
            // The stored regex is anchored as `^(?:...)$`; show what the user wrote.
            NodeMatcher::NameRegex(re) => {
                let s = re.as_str();
                let inner = s
                    .strip_prefix("^(?:")
                    .and_then(|s| s.strip_suffix(")$"))
                    .unwrap_or(s);
                write!(f, "nameRegex {inner}")
            }
            NodeMatcher::Selector(sel) => {
                let parts: Vec<String> = sel.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "selector {{{}}}", parts.join(","))
            }
        }
    }
}

/// One typed inventory address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryAddress {
    /// The NodeAddress type.
    pub type_: AddressType,
    /// The address, canonical when an IP.
    pub address: String,
}

impl Config {
    /// What `check-config` prints about a valid file beyond "OK": the settings whose
    /// effective value is not written out in it (the implied `k3s-annotations` rank).
    pub fn effective_summary(&self) -> String {
        let order: Vec<&str> = self.address_sources.iter().map(|s| s.as_str()).collect();
        format!(
            "address sources, highest priority first: {}\nk3sAgentWait: {}s",
            order.join(", "),
            self.k3s_agent_wait.as_secs_f64()
        )
    }
}
