//! Kubernetes facts about node addresses: the five `NodeAddress` types, strict IP parsing,
//! the shape of a DNS/hostname value, CIDR networks and the syntax of the kubelet's
//! provided-node-ip annotation. Imports nothing of ours.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The five `NodeAddress` types, in the order bare-ccm writes them (k3s's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddressType {
    /// An IP reachable inside the cluster; kubelet and CNI use it.
    InternalIP,
    /// An IP reachable from outside the cluster.
    ExternalIP,
    /// A DNS name resolving inside the cluster.
    InternalDNS,
    /// A DNS name resolving from outside.
    ExternalDNS,
    /// The node's hostname.
    Hostname,
}

impl AddressType {
    /// Every type in write order, so callers iterate types without repeating the list.
    pub const ALL: [AddressType; 5] = [
        AddressType::InternalIP,
        AddressType::ExternalIP,
        AddressType::InternalDNS,
        AddressType::ExternalDNS,
        AddressType::Hostname,
    ];

    /// The Kubernetes spelling (`NodeAddress.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::InternalIP => "InternalIP",
            AddressType::ExternalIP => "ExternalIP",
            AddressType::InternalDNS => "InternalDNS",
            AddressType::ExternalDNS => "ExternalDNS",
            AddressType::Hostname => "Hostname",
        }
    }

    /// Whether values of this type must be IP addresses (and are parsed strictly).
    pub fn is_ip(self) -> bool {
        matches!(self, AddressType::InternalIP | AddressType::ExternalIP)
    }
}

impl fmt::Display for AddressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`AddressType::from_str`]: names the accepted spellings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown address type {0:?} (expected one of InternalIP, ExternalIP, InternalDNS, ExternalDNS, Hostname)"
)]
pub struct UnknownAddressType(pub String);

impl FromStr for AddressType {
    type Err = UnknownAddressType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AddressType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownAddressType(s.to_string()))
    }
}

/// Parses one IP strictly (no surrounding spaces, no zone, no prefix length, no leading
/// zeros in IPv4 octets) and returns it canonical: an IPv4-mapped IPv6 address becomes its
/// IPv4 address, as Go's `net.IP` treats it (so families compare the way upstream does).
pub fn parse_ip(value: &str) -> Option<IpAddr> {
    value.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// Checks a DNS name or hostname value: non-empty, no whitespace, no comma.
pub fn is_plausible_name(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c == ',')
}

/// An IP network, `ADDRESS/PREFIX` with the host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub network: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the network (same family, same leading `prefix` bits).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(u32::from(net)), 32, self.prefix)
                    == mask(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(net), 128, self.prefix) == mask(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The leading `prefix` bits of a `bits`-wide address.
fn mask(value: u128, bits: u8, prefix: u8) -> u128 {
    let host = u32::from(bits.saturating_sub(prefix));
    value.checked_shr(host).unwrap_or(0)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Strict: the prefix length is required, and host bits must be zero (a typo such as
    /// `10.1.0.0/8` is refused with the network it would mean).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || {
            format!(
                "{s:?} is not a CIDR (an address and a prefix length, e.g. 10.0.0.0/8 or fc00::/7)"
            )
        };
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let network: IpAddr = ip.parse().map_err(|_| bad())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| {
                *p <= bits
                    && !prefix.starts_with('+')
                    && !(prefix.len() > 1 && prefix.starts_with('0'))
            })
            .ok_or_else(bad)?;
        let cidr = Cidr { network, prefix };
        let base = network_of(network, prefix);
        if base != network {
            return Err(format!(
                "{s:?} has host bits set: the network is {base}/{prefix}"
            ));
        }
        Ok(cidr)
    }
}

/// `ip` with every bit after `prefix` cleared.
fn network_of(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let v = u32::from(v4);
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((v & keep).into())
        }
        IpAddr::V6(v6) => {
            let v = u128::from(v6);
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((v & keep).into())
        }
    }
}

/// Why an annotation value is not a valid node IP (one IP, or a dual-stack pair).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProvidedNodeIpError {
    /// A comma-separated part is not an IP.
    #[error("could not parse {0:?} as an IP address")]
    NotAnIp(String),
    /// More than two IPs, or two of the same family.
    #[error("must contain either a single IP or a dual-stack pair of IPs")]
    NotSingleOrPair,
    /// A dual-stack pair containing 0.0.0.0 or ::.
    #[error("dual-stack node IP cannot include '0.0.0.0' or '::'")]
    UnspecifiedInPair,
}

/// Parses the kubelet's provided-node-ip annotation as upstream's `ParseNodeIPAnnotation`: split on `,` without
/// trimming, every part an IP, at most two of different families, no unspecified address
/// in a pair.
pub fn parse_node_ips(value: &str) -> Result<Vec<IpAddr>, ProvidedNodeIpError> {
    let ips = value
        .split(',')
        .map(|part| parse_ip(part).ok_or_else(|| ProvidedNodeIpError::NotAnIp(part.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    match ips.as_slice() {
        [_] => Ok(ips),
        [a, b] if a.is_ipv6() == b.is_ipv6() => Err(ProvidedNodeIpError::NotSingleOrPair),
        [a, b] if a.is_unspecified() || b.is_unspecified() => {
            Err(ProvidedNodeIpError::UnspecifiedInPair)
        }
        [_, _] => Ok(ips),
        _ => Err(ProvidedNodeIpError::NotSingleOrPair),
    }
}
