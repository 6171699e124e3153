//! The `interfaces` section of the config: the interface names to skip and the CIDR rules
//! that place the agent's addresses as InternalIP or ExternalIP.

use std::fmt;
use std::net::IpAddr;

use crate::facts::address::{AddressType, Cidr};
use crate::facts::interfaces::DEFAULT_IGNORE;

/// One `interfaces.rules` entry: addresses in `cidr` become `type_`, or are not used when
/// `type_` is `None` (`type: ignore`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceRule {
    /// The network the rule applies to.
    pub cidr: Cidr,
    /// InternalIP or ExternalIP; `None` for `ignore`.
    pub type_: Option<AddressType>,
}

impl fmt::Display for InterfaceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.type_ {
            Some(t) => write!(f, "{} -> {t}", self.cidr),
            None => write!(f, "{} -> ignore", self.cidr),
        }
    }
}

/// The `interfaces` section of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfacesConfig {
    /// Interface name patterns whose addresses are not used.
    pub ignore: Vec<String>,
    /// The rules, in order; `None` for the built-in [`default_rules`].
    pub rules: Option<Vec<InterfaceRule>>,
}

impl Default for InterfacesConfig {
    fn default() -> Self {
        InterfacesConfig {
            ignore: DEFAULT_IGNORE.iter().map(ToString::to_string).collect(),
            rules: None,
        }
    }
}

/// The rules without `interfaces.rules`: the private ranges (RFC 1918), shared address
/// space (RFC 6598, carrier-grade NAT and Tailscale) and unique local IPv6 (RFC 4193) are
/// InternalIP; every other usable address is ExternalIP.
pub fn default_rules() -> Vec<InterfaceRule> {
    let rule = |cidr: &str, t| InterfaceRule {
        cidr: cidr.parse().unwrap_or(Cidr {
            network: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            prefix: 0,
        }),
        type_: Some(t),
    };
    vec![
        rule("10.0.0.0/8", AddressType::InternalIP),
        rule("172.16.0.0/12", AddressType::InternalIP),
        rule("192.168.0.0/16", AddressType::InternalIP),
        rule("100.64.0.0/10", AddressType::InternalIP),
        rule("fc00::/7", AddressType::InternalIP),
        rule("0.0.0.0/0", AddressType::ExternalIP),
        rule("::/0", AddressType::ExternalIP),
    ]
}
