//! Validated address candidates, and the rule that combines the addresses offered by every
//! source into one `status.addresses` list (issue 3 §1 "Combining sources"). Address types
//! and IP syntax are Kubernetes facts (`facts::address`), re-exported here.
//! It knows nothing about where candidates come from: the source modules produce them.

use std::net::IpAddr;

pub use crate::facts::address::{AddressType, is_plausible_name, parse_ip};

use super::resolution::{ResolvedAddress, Warning};
use crate::config::AddressSource;

/// One address offered by a source, already validated (IPs canonical).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The NodeAddress type.
    pub type_: AddressType,
    /// The validated address.
    pub address: String,
}

impl Candidate {
    /// Validates `value` for `type_`; the error is the warning naming `origin`.
    pub fn parse(type_: AddressType, value: &str, origin: &str) -> Result<Candidate, Warning> {
        if type_.is_ip() {
            match parse_ip(value) {
                Some(ip) => Ok(Candidate {
                    type_,
                    address: ip.to_string(),
                }),
                None => Err(Warning::invalid_address(type_, value, origin)),
            }
        } else if is_plausible_name(value) {
            Ok(Candidate {
                type_,
                address: value.to_string(),
            })
        } else {
            Err(Warning::invalid_address(type_, value, origin))
        }
    }

    /// [`Candidate::parse`] into `out`, or its warning into `warnings`: how every source
    /// reads a list of values.
    pub fn parse_into(
        type_: AddressType,
        value: &str,
        origin: &str,
        out: &mut Vec<Candidate>,
        warnings: &mut Vec<Warning>,
    ) {
        match Candidate::parse(type_, value, origin) {
            Ok(c) => out.push(c),
            Err(w) => warnings.push(w),
        }
    }
}

/// Combines the candidates of each source (given in priority order) into the desired list:
/// per type the first source with at least one address of that type supplies all of them;
/// types in [`AddressType::ALL`] order; inside a type, source order with the preferred
/// family first; duplicates removed. Hostname is left to the caller's fallback when no
/// source offers one.
pub fn combine(
    sources: &[(AddressSource, Vec<Candidate>)],
    prefer_ipv6: bool,
) -> Vec<ResolvedAddress> {
    let mut out = Vec::new();
    for type_ in AddressType::ALL {
        let Some((source, candidates)) = sources
            .iter()
            .find(|(_, cands)| cands.iter().any(|c| c.type_ == type_))
        else {
            continue;
        };
        let mut of_type: Vec<&Candidate> = candidates.iter().filter(|c| c.type_ == type_).collect();
        if type_.is_ip() {
            // A stable sort keeps source order inside each family.
            of_type.sort_by_key(|c| is_ipv6(&c.address) != prefer_ipv6);
        }
        let mut seen: Vec<&str> = Vec::new();
        for c in of_type {
            if seen.contains(&c.address.as_str()) {
                continue;
            }
            seen.push(&c.address);
            out.push(ResolvedAddress {
                type_,
                address: c.address.clone(),
                source: *source,
            });
        }
    }
    out
}

fn is_ipv6(address: &str) -> bool {
    matches!(parse_ip(address), Some(IpAddr::V6(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(t: AddressType, a: &str) -> Candidate {
        Candidate {
            type_: t,
            address: a.to_string(),
        }
    }

    fn pairs(list: &[ResolvedAddress]) -> Vec<(String, String, &'static str)> {
        list.iter()
            .map(|a| (a.type_.to_string(), a.address.clone(), a.source.as_str()))
            .collect()
    }

    fn p(t: &str, a: &str, s: &'static str) -> (String, String, &'static str) {
        (t.to_string(), a.to_string(), s)
    }

    use AddressType::*;

    #[test]
    fn parse_ip_is_strict_and_canonical() {
        assert_eq!(parse_ip("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            parse_ip("2600:1f14:1d4:d101:0:0:0:ba3d").map(|i| i.to_string()),
            Some("2600:1f14:1d4:d101::ba3d".to_string())
        );
        assert_eq!(
            parse_ip("::ffff:10.0.0.1").map(|i| i.to_string()),
            Some("10.0.0.1".to_string())
        );
        for bad in [
            "",
            " 10.0.0.1",
            "10.0.0.1 ",
            "10.0.0.1/24",
            "010.0.0.1",
            "10.0.0",
            "10.0.0.256",
            "fe80::1%eth0",
            "10.0.0.1,fd00::1",
            "host",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad:?} must be rejected");
        }
    }

    #[test]
    fn candidate_parse_warns_naming_origin_and_value() {
        let err = Candidate::parse(InternalIP, "10.0.0.x", "annotation bare-ccm.io/internal-ip")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ignoring invalid InternalIP \"10.0.0.x\" from annotation bare-ccm.io/internal-ip: not an IP address"
        );
        assert!(Candidate::parse(Hostname, "has space", "x").is_err());
        assert_eq!(
            Candidate::parse(InternalDNS, "n1.lan", "x").unwrap(),
            cand(InternalDNS, "n1.lan")
        );
    }

    #[test]
    fn highest_priority_source_with_a_type_supplies_all_of_that_type() {
        let sources = vec![
            (
                AddressSource::Annotations,
                vec![cand(ExternalIP, "203.0.113.5")],
            ),
            (
                AddressSource::K3sNodeArgs,
                vec![
                    cand(InternalIP, "10.0.0.5"),
                    cand(ExternalIP, "198.51.100.1"),
                ],
            ),
            (
                AddressSource::Kubelet,
                vec![cand(InternalIP, "10.0.0.99"), cand(Hostname, "n1")],
            ),
        ];
        assert_eq!(
            pairs(&combine(&sources, false)),
            vec![
                p("InternalIP", "10.0.0.5", "k3s-node-args"),
                p("ExternalIP", "203.0.113.5", "annotations"),
                p("Hostname", "n1", "kubelet"),
            ]
        );
    }

    #[test]
    fn types_are_ordered_and_duplicates_removed() {
        let sources = vec![(
            AddressSource::Inventory,
            vec![
                cand(Hostname, "h"),
                cand(ExternalDNS, "e.example"),
                cand(InternalDNS, "i.lan"),
                cand(ExternalIP, "203.0.113.5"),
                cand(InternalIP, "10.0.0.5"),
                cand(InternalIP, "10.0.0.5"),
            ],
        )];
        let types: Vec<String> = combine(&sources, false)
            .into_iter()
            .map(|a| a.type_.to_string())
            .collect();
        assert_eq!(
            types,
            [
                "InternalIP",
                "ExternalIP",
                "InternalDNS",
                "ExternalDNS",
                "Hostname"
            ]
        );
    }

    #[test]
    fn families_follow_prefer_ipv6_and_keep_source_order_within_a_family() {
        let sources = vec![(
            AddressSource::Annotations,
            vec![
                cand(InternalIP, "fd00::2"),
                cand(InternalIP, "10.0.0.2"),
                cand(InternalIP, "fd00::1"),
                cand(InternalIP, "10.0.0.1"),
            ],
        )];
        let v4_first: Vec<String> = combine(&sources, false)
            .into_iter()
            .map(|a| a.address)
            .collect();
        assert_eq!(v4_first, ["10.0.0.2", "10.0.0.1", "fd00::2", "fd00::1"]);
        let v6_first: Vec<String> = combine(&sources, true)
            .into_iter()
            .map(|a| a.address)
            .collect();
        assert_eq!(v6_first, ["fd00::2", "fd00::1", "10.0.0.2", "10.0.0.1"]);
    }

    #[test]
    fn no_source_gives_an_empty_list() {
        assert!(combine(&[(AddressSource::Kubelet, vec![])], false).is_empty());
    }

    #[test]
    fn address_type_round_trips_through_its_name() {
        for t in AddressType::ALL {
            assert_eq!(t.as_str().parse::<AddressType>(), Ok(t));
        }
        assert!("internalip".parse::<AddressType>().is_err());
    }
}
