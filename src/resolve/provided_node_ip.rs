//! The kubelet's `alpha.kubernetes.io/provided-node-ip` annotation: strict parsing and the
//! upstream filtering rule (`GetNodeAddressesFromNodeIP`, reference §3), so that the
//! addresses bare-ccm writes agree with the kubelet's `--node-ip`.
//!
//! Upstream sources mirrored here: kubernetes/cloud-provider `node/helpers/address.go`
//! (`GetNodeAddressesFromNodeIP`) and kubernetes/component-helpers `node/util/ips.go`
//! (`parseNodeIP` with `sloppy=false`). One deliberate difference: IPs are parsed with
//! [`parse_ip`](super::addresses::parse_ip), which refuses IPv4 octets with leading zeros
//! that Go's `ParseIPSloppy` would accept.

use std::net::IpAddr;

pub use crate::facts::PROVIDED_NODE_IP;
pub use crate::facts::address::{ProvidedNodeIpError, parse_node_ips as parse};

use super::addresses::{AddressType, Candidate, parse_ip};
use super::resolution::{ResolvedAddress, Warning};

/// The outcome of applying the rule when it cannot be satisfied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterError {
    /// The annotation itself is malformed.
    Invalid(ProvidedNodeIpError),
    /// This annotation IP equals none of the computed addresses.
    Unmatched(IpAddr),
}

/// Applies the upstream rule to `addresses` (in order): for each annotation IP, every
/// address equal to it comes first and its type becomes "enforced"; then every address of
/// a non-enforced type follows in its original order. Address strings are kept verbatim.
pub fn filter(
    value: &str,
    addresses: &[ResolvedAddress],
) -> Result<Vec<ResolvedAddress>, FilterError> {
    let ips = parse(value).map_err(FilterError::Invalid)?;
    let mut out = Vec::with_capacity(addresses.len());
    let mut enforced: Vec<AddressType> = Vec::new();
    for ip in ips {
        let matching: Vec<&ResolvedAddress> = addresses
            .iter()
            .filter(|a| parse_ip(&a.address) == Some(ip))
            .collect();
        if matching.is_empty() {
            return Err(FilterError::Unmatched(ip));
        }
        for a in matching {
            enforced.push(a.type_);
            out.push(a.clone());
        }
    }
    out.extend(
        addresses
            .iter()
            .filter(|a| !enforced.contains(&a.type_))
            .cloned(),
    );
    Ok(out)
}

/// The annotation read as an address *source*: every valid part is an InternalIP; invalid
/// parts become warnings. (Whether it is a valid pair matters only for [`filter`].)
pub fn candidates(value: &str, warnings: &mut Vec<Warning>) -> Vec<Candidate> {
    let origin = format!("annotation {PROVIDED_NODE_IP}");
    value
        .split(',')
        .filter_map(
            |part| match Candidate::parse(AddressType::InternalIP, part, &origin) {
                Ok(c) => Some(c),
                Err(w) => {
                    warnings.push(w);
                    None
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::AddressSource;
    use crate::test_support::resolved;

    fn addrs(list: &[(&str, &str)]) -> Vec<ResolvedAddress> {
        resolved(list, AddressSource::Kubelet)
    }

    /// `TYPE ADDRESS, …` as kubelet addresses.
    fn listed(list: &str) -> Vec<ResolvedAddress> {
        let pairs: Vec<(&str, &str)> = list
            .split(", ")
            .filter_map(|item| item.split_once(' '))
            .collect();
        addrs(&pairs)
    }

    /// The 14 cases of `TestGetNodeAddressesFromNodeIP` in kubernetes/cloud-provider
    /// `node/helpers/address_test.go`, with the same names, inputs and expectations.
    #[test]
    fn upstream_get_node_addresses_from_node_ip_cases() {
        // (name, provided-node-ip, addresses, filtered addresses or None for an error)
        let cases: Vec<(&str, &str, &str, Option<&str>)> = vec![
            (
                "A single InternalIP",
                "10.1.1.1",
                "InternalIP 10.1.1.1, Hostname hostname",
                Some("InternalIP 10.1.1.1, Hostname hostname"),
            ),
            (
                "NodeIP is external",
                "55.55.55.55",
                "InternalIP 10.1.1.1, ExternalIP 55.55.55.55, Hostname hostname",
                Some("ExternalIP 55.55.55.55, InternalIP 10.1.1.1, Hostname hostname"),
            ),
            (
                "InternalIP and ExternalIP are the same",
                "55.55.55.55",
                "InternalIP 44.44.44.44, ExternalIP 44.44.44.44, InternalIP 55.55.55.55, ExternalIP 55.55.55.55, Hostname hostname",
                Some("InternalIP 55.55.55.55, ExternalIP 55.55.55.55, Hostname hostname"),
            ),
            (
                "An Internal/ExternalIP, an Internal/ExternalDNS",
                "10.1.1.1",
                "InternalIP 10.1.1.1, ExternalIP 55.55.55.55, InternalDNS ip-10-1-1-1.us-west-2.compute.internal, ExternalDNS ec2-55-55-55-55.us-west-2.compute.amazonaws.com, Hostname hostname",
                Some(
                    "InternalIP 10.1.1.1, ExternalIP 55.55.55.55, InternalDNS ip-10-1-1-1.us-west-2.compute.internal, ExternalDNS ec2-55-55-55-55.us-west-2.compute.amazonaws.com, Hostname hostname",
                ),
            ),
            (
                "An Internal with multiple internal IPs",
                "10.1.1.1",
                "InternalIP 10.1.1.1, InternalIP 10.2.2.2, InternalIP 10.3.3.3, ExternalIP 55.55.55.55, Hostname hostname",
                Some("InternalIP 10.1.1.1, ExternalIP 55.55.55.55, Hostname hostname"),
            ),
            (
                "An InternalIP that isn't valid: should error",
                "10.2.2.2",
                "InternalIP 10.1.1.1, ExternalIP 55.55.55.55, Hostname hostname",
                None,
            ),
            (
                "Dual-stack cloud, with nodeIP, different IPv6 formats",
                "2600:1f14:1d4:d101::ba3d",
                "InternalIP 10.1.1.1, InternalIP 2600:1f14:1d4:d101:0:0:0:ba3d, Hostname hostname",
                Some("InternalIP 2600:1f14:1d4:d101:0:0:0:ba3d, Hostname hostname"),
            ),
            (
                "Single-stack cloud, dual-stack request",
                "10.1.1.1,fc01:1234::5678",
                "InternalIP 10.1.1.1, Hostname hostname",
                None,
            ),
            (
                "Dual-stack cloud, IPv4 first, IPv4-primary request",
                "10.1.1.1,fc01:1234::5678",
                "InternalIP 10.1.1.1, InternalIP fc01:1234::5678, Hostname hostname",
                Some("InternalIP 10.1.1.1, InternalIP fc01:1234::5678, Hostname hostname"),
            ),
            (
                "Dual-stack cloud, IPv6 first, IPv4-primary request",
                "10.1.1.1,fc01:1234::5678",
                "InternalIP fc01:1234::5678, InternalIP 10.1.1.1, Hostname hostname",
                Some("InternalIP 10.1.1.1, InternalIP fc01:1234::5678, Hostname hostname"),
            ),
            (
                "Dual-stack cloud, dual-stack request, multiple IPs",
                "10.1.1.1,fc01:1234::5678",
                "InternalIP 10.1.1.1, InternalIP 10.1.1.2, InternalIP fc01:1234::1234, InternalIP fc01:1234::5678, Hostname hostname",
                Some("InternalIP 10.1.1.1, InternalIP fc01:1234::5678, Hostname hostname"),
            ),
            (
                "Dual-stack cloud, dual-stack request, extra ExternalIP",
                "10.1.1.1,fc01:1234::5678",
                "InternalIP 10.1.1.1, ExternalIP 55.55.55.55, InternalIP fc01:1234::1234, InternalIP fc01:1234::5678, Hostname hostname",
                Some(
                    "InternalIP 10.1.1.1, InternalIP fc01:1234::5678, ExternalIP 55.55.55.55, Hostname hostname",
                ),
            ),
            (
                "Dual-stack cloud, dual-stack request, multiple ExternalIPs",
                "fc01:1234::5678,10.1.1.1",
                "InternalIP 10.1.1.1, ExternalIP 55.55.55.55, InternalIP fc01:1234::5678, ExternalIP 2001:db1::1, Hostname hostname",
                Some(
                    "InternalIP fc01:1234::5678, InternalIP 10.1.1.1, ExternalIP 55.55.55.55, ExternalIP 2001:db1::1, Hostname hostname",
                ),
            ),
            (
                "Dual-stack cloud, dual-stack request, mixed InternalIP/ExternalIP match",
                "55.55.55.55,fc01:1234::5678",
                "InternalIP 10.1.1.1, ExternalIP 55.55.55.55, InternalIP fc01:1234::5678, ExternalIP 2001:db1::1, Hostname hostname",
                Some("ExternalIP 55.55.55.55, InternalIP fc01:1234::5678, Hostname hostname"),
            ),
        ];
        assert_eq!(cases.len(), 14);
        for (name, node_ip, input, expected) in cases {
            let got = filter(node_ip, &listed(input));
            match expected {
                Some(exp) => {
                    assert_eq!(got.as_deref().ok(), Some(listed(exp).as_slice()), "{name}")
                }
                None => assert!(got.is_err(), "{name}: expected an error, got {got:?}"),
            }
        }
    }

    #[test]
    fn unmatched_ip_is_named_in_the_error() {
        let got = filter("10.2.2.2", &addrs(&[("InternalIP", "10.1.1.1")]));
        assert_eq!(
            got,
            Err(FilterError::Unmatched("10.2.2.2".parse().unwrap()))
        );
    }

    #[test]
    fn parse_accepts_one_ip_or_a_dual_stack_pair() {
        assert_eq!(parse("10.0.0.1").unwrap().len(), 1);
        assert_eq!(parse("fd00::1").unwrap().len(), 1);
        assert_eq!(parse("10.0.0.1,fd00::1").unwrap().len(), 2);
        assert_eq!(parse("fd00::1,10.0.0.1").unwrap().len(), 2);
        // A single unspecified address is allowed, only a pair refuses it (upstream).
        assert_eq!(parse("0.0.0.0").unwrap().len(), 1);
    }

    #[test]
    fn parse_rejects_malformed_values() {
        use ProvidedNodeIpError::*;
        assert_eq!(parse(""), Err(NotAnIp(String::new())));
        assert_eq!(parse("10.0.0.1, fd00::1"), Err(NotAnIp(" fd00::1".into())));
        assert_eq!(parse("10.0.0.1,10.0.0.2"), Err(NotSingleOrPair));
        assert_eq!(parse("fd00::1,fd00::2"), Err(NotSingleOrPair));
        assert_eq!(parse("10.0.0.1,fd00::1,10.0.0.2"), Err(NotSingleOrPair));
        assert_eq!(parse("::,10.0.0.1"), Err(UnspecifiedInPair));
        assert_eq!(parse("10.0.0.1,::"), Err(UnspecifiedInPair));
        assert_eq!(parse("10.0.0.1,"), Err(NotAnIp(String::new())));
        // IPv4-mapped IPv6 is IPv4, so this is not a dual-stack pair.
        assert_eq!(parse("10.0.0.1,::ffff:10.0.0.2"), Err(NotSingleOrPair));
    }

    #[test]
    fn candidates_keep_valid_parts_and_warn_on_the_rest() {
        let mut warnings = Vec::new();
        let got = candidates("10.0.0.1,bogus,fd00::1", &mut warnings);
        assert_eq!(
            got.iter().map(|c| c.address.as_str()).collect::<Vec<_>>(),
            ["10.0.0.1", "fd00::1"]
        );
        assert_eq!(warnings.len(), 1);
        let warning = warnings[0].to_string();
        assert!(warning.contains("\"bogus\"") && warning.contains(PROVIDED_NODE_IP));
    }
}
