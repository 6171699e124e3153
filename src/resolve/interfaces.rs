//! The `interfaces` address source: the annotation `bare-ccm.io/interfaces` that
//! `bare-ccm agent` writes on its own Node (each interface's addresses, as the kernel lists
//! them), and the CIDR rules that place those addresses as InternalIP or ExternalIP.
//!
//! Both sides of the annotation live here, so they cannot drift apart: the agent encodes
//! what it read with [`encode`] and skips what [`skip_reason`] names; the resolver decodes
//! with [`classify`]. Pure: no I/O.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use crate::facts::INTERFACES;
pub use crate::facts::interfaces::{DEFAULT_IGNORE, check_pattern, ignored_by};

use crate::config::{InterfacesConfig, default_rules};

use super::addresses::{AddressType, Candidate, parse_ip};
use super::resolution::Warning;

/// One interface of the annotation: its name and its addresses as `IP/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The interface name (`eth0`).
    pub name: String,
    /// `IP/PREFIX` strings, in the kernel's order.
    pub addresses: Vec<String>,
}

/// The annotation value for `interfaces`: compact JSON, in the order given (the agent sorts
/// by name before).
pub fn encode(interfaces: &[Interface]) -> String {
    // Serialising strings and vectors cannot fail.
    serde_json::to_string(interfaces).unwrap_or_else(|_| "[]".to_string())
}

/// Why an address is never used, whatever the rules say: it does not reach the node from
/// elsewhere (Go's `net.IP.IsGlobalUnicast` is false for exactly these).
pub fn skip_reason(ip: IpAddr) -> Option<&'static str> {
    let ip = ip.to_canonical();
    if ip.is_unspecified() {
        Some("unspecified address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    } {
        Some("link-local address")
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        Some("broadcast address")
    } else {
        None
    }
}

/// What became of one address of the annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The interface that carries it.
    pub interface: String,
    /// The address as the annotation writes it (`IP/PREFIX`).
    pub written: String,
    /// The IP (canonical), when it parsed.
    pub ip: IpAddr,
    /// The type it was given, or `None` when it is not used.
    pub type_: Option<AddressType>,
    /// The rule that placed it, or why it is not used.
    pub why: String,
}

/// Reads the annotation `value` and places each address: interfaces matching
/// `config.ignore` and addresses that [`skip_reason`] names are not used; every other
/// address takes the type of the first rule containing it, and one matching no rule is not
/// used. An unreadable value is one warning and no placement; an unreadable address is a
/// warning and is skipped.
pub fn classify(
    value: &str,
    config: &InterfacesConfig,
    warnings: &mut Vec<Warning>,
) -> Vec<Placement> {
    let interfaces: Vec<Interface> = match serde_json::from_str(value) {
        Ok(list) => list,
        Err(e) => {
            warnings.push(Warning::InterfacesNotList {
                reason: e.to_string(),
            });
            return Vec::new();
        }
    };
    let defaults;
    let (rules, configured) = match &config.rules {
        Some(rules) => (rules.as_slice(), true),
        None => {
            defaults = default_rules();
            (defaults.as_slice(), false)
        }
    };
    let mut out = Vec::new();
    for iface in &interfaces {
        let skipped_iface = ignored_by(&iface.name, &config.ignore);
        for written in &iface.addresses {
            let Some(ip) = parse_with_prefix(written) else {
                warnings.push(Warning::InterfaceAddress {
                    written: written.clone(),
                    interface: iface.name.clone(),
                });
                continue;
            };
            let (type_, why) = if let Some(pattern) = skipped_iface {
                (
                    None,
                    format!("interface matches interfaces.ignore pattern {pattern:?}"),
                )
            } else if let Some(reason) = skip_reason(ip) {
                (None, format!("{reason}, never used"))
            } else {
                match rules.iter().enumerate().find(|(_, r)| r.cidr.contains(ip)) {
                    Some((i, r)) if configured => (r.type_, format!("interfaces.rules[{i}] {r}")),
                    Some((_, r)) => (r.type_, format!("default rule {r}")),
                    None => (None, "matches no rule of interfaces.rules".to_string()),
                }
            };
            out.push(Placement {
                interface: iface.name.clone(),
                written: written.clone(),
                ip,
                type_,
                why,
            });
        }
    }
    out
}

/// The candidates of the `interfaces` source: the placed addresses, in annotation order.
pub fn candidates(
    value: &str,
    config: &InterfacesConfig,
    warnings: &mut Vec<Warning>,
) -> Vec<Candidate> {
    classify(value, config, warnings)
        .into_iter()
        .filter_map(|p| {
            p.type_.map(|type_| Candidate {
                type_,
                address: p.ip.to_string(),
            })
        })
        .collect()
}

/// The IP of `IP/PREFIX` (strictly parsed, canonical), when the prefix fits its family.
fn parse_with_prefix(written: &str) -> Option<IpAddr> {
    let (ip, prefix) = written.split_once('/')?;
    let ip = parse_ip(ip)?;
    let prefix: u8 = prefix.parse().ok()?;
    let bits = if ip.is_ipv4() && !written.contains(':') {
        32
    } else {
        128
    };
    (prefix <= bits).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InterfaceRule;
    use crate::facts::address::Cidr;
    use AddressType::*;

    fn iface(name: &str, addresses: &[&str]) -> Interface {
        Interface {
            name: name.to_string(),
            addresses: addresses.iter().map(ToString::to_string).collect(),
        }
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn rules(list: &[(&str, Option<AddressType>)]) -> InterfacesConfig {
        InterfacesConfig {
            rules: Some(
                list.iter()
                    .map(|(c, t)| InterfaceRule {
                        cidr: cidr(c),
                        type_: *t,
                    })
                    .collect(),
            ),
            ..InterfacesConfig::default()
        }
    }

    /// `(interface, written, type or "-", why)` of every placement, for compact tables.
    fn placed(
        value: &str,
        config: &InterfacesConfig,
    ) -> (Vec<(String, String, String)>, Vec<String>) {
        let mut warnings = Vec::new();
        let got = classify(value, config, &mut warnings)
            .into_iter()
            .map(|p| {
                (
                    p.interface,
                    p.written,
                    p.type_.map_or("-".to_string(), |t| t.to_string()),
                )
            })
            .collect();
        (got, warnings.iter().map(ToString::to_string).collect())
    }

    fn row(i: &str, a: &str, t: &str) -> (String, String, String) {
        (i.to_string(), a.to_string(), t.to_string())
    }

    #[test]
    fn encode_is_compact_json_in_the_given_order() {
        let value = encode(&[
            iface("eth0", &["10.0.0.5/24", "fd00::5/64"]),
            iface("eth1", &["203.0.113.5/32"]),
        ]);
        assert_eq!(
            value,
            r#"[{"name":"eth0","addresses":["10.0.0.5/24","fd00::5/64"]},{"name":"eth1","addresses":["203.0.113.5/32"]}]"#
        );
        assert_eq!(encode(&[]), "[]");
    }

    #[test]
    fn default_rules_place_private_ranges_internal_and_the_rest_external() {
        let value = encode(&[
            iface(
                "eth0",
                &[
                    "10.44.0.7/16",
                    "172.20.1.1/16",
                    "192.168.1.9/24",
                    "100.100.3.4/10",
                    "fd44::7/64",
                ],
            ),
            iface(
                "eth1",
                &[
                    "198.18.0.7/15",
                    "203.0.113.9/24",
                    "172.32.0.1/16",
                    "2001:db8::7/64",
                ],
            ),
        ]);
        let (got, warnings) = placed(&value, &InterfacesConfig::default());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            got,
            vec![
                row("eth0", "10.44.0.7/16", "InternalIP"),
                row("eth0", "172.20.1.1/16", "InternalIP"),
                row("eth0", "192.168.1.9/24", "InternalIP"),
                row("eth0", "100.100.3.4/10", "InternalIP"),
                row("eth0", "fd44::7/64", "InternalIP"),
                row("eth1", "198.18.0.7/15", "ExternalIP"),
                row("eth1", "203.0.113.9/24", "ExternalIP"),
                // Just outside 172.16.0.0/12.
                row("eth1", "172.32.0.1/16", "ExternalIP"),
                row("eth1", "2001:db8::7/64", "ExternalIP"),
            ]
        );
    }

    #[test]
    fn custom_rules_first_match_wins_and_unmatched_addresses_are_unused() {
        let config = rules(&[
            ("192.168.0.0/16", Some(InternalIP)),
            ("10.0.0.0/8", None),
            ("198.18.0.0/15", Some(ExternalIP)),
            ("192.168.7.0/24", Some(ExternalIP)),
        ]);
        let value = encode(&[iface(
            "bond0",
            &[
                "192.168.7.3/24",
                "10.1.2.3/8",
                "198.19.0.1/15",
                "203.0.113.1/24",
                "fd00::1/64",
            ],
        )]);
        let mut warnings = Vec::new();
        let got = classify(&value, &config, &mut warnings);
        let summary: Vec<(Option<AddressType>, &str)> =
            got.iter().map(|p| (p.type_, p.why.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (
                    Some(InternalIP),
                    "interfaces.rules[0] 192.168.0.0/16 -> InternalIP"
                ),
                (None, "interfaces.rules[1] 10.0.0.0/8 -> ignore"),
                (
                    Some(ExternalIP),
                    "interfaces.rules[2] 198.18.0.0/15 -> ExternalIP"
                ),
                (None, "matches no rule of interfaces.rules"),
                (None, "matches no rule of interfaces.rules"),
            ]
        );
        assert_eq!(
            candidates(&value, &config, &mut warnings),
            vec![
                Candidate {
                    type_: InternalIP,
                    address: "192.168.7.3".into()
                },
                Candidate {
                    type_: ExternalIP,
                    address: "198.19.0.1".into()
                },
            ]
        );
    }

    #[test]
    fn loopback_link_local_and_multicast_are_never_used_whatever_the_rules() {
        let everything = rules(&[("0.0.0.0/0", Some(ExternalIP)), ("::/0", Some(ExternalIP))]);
        let value = encode(&[iface(
            "eth0",
            &[
                "127.0.0.2/8",
                "169.254.3.3/16",
                "224.0.0.9/4",
                "::1/128",
                "fe80::1/64",
                "ff02::1/16",
                "0.0.0.0/0",
                "203.0.113.1/24",
            ],
        )]);
        let mut warnings = Vec::new();
        let got = classify(&value, &everything, &mut warnings);
        let why: Vec<&str> = got.iter().map(|p| p.why.as_str()).collect();
        assert_eq!(
            why,
            [
                "loopback address, never used",
                "link-local address, never used",
                "multicast address, never used",
                "loopback address, never used",
                "link-local address, never used",
                "multicast address, never used",
                "unspecified address, never used",
                "interfaces.rules[0] 0.0.0.0/0 -> ExternalIP",
            ]
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn the_ignore_list_skips_interfaces_by_name_pattern() {
        let value = encode(&[
            iface("cni0", &["10.42.0.1/24"]),
            iface("eth0", &["10.0.0.5/24"]),
            iface("flannel.1", &["10.42.0.0/32"]),
            iface("veth-eth1", &["198.18.0.9/32"]),
            iface("br-3f2a", &["172.18.0.1/16"]),
            iface("kube-ipvs0", &["10.43.0.1/32"]),
            iface("lo", &["10.99.0.1/32"]),
            iface("tunl0", &["10.42.1.0/32"]),
            iface("vethless", &["203.0.113.5/24"]),
        ]);
        let (got, _) = placed(&value, &InterfacesConfig::default());
        let used: Vec<&str> = got
            .iter()
            .filter(|(_, _, t)| t != "-")
            .map(|(i, _, _)| i.as_str())
            .collect();
        // "vethless" matches veth* too: patterns are globs, not prefixes of words.
        assert_eq!(used, ["eth0"]);
        // A configured list replaces the default one.
        let config = InterfacesConfig {
            ignore: vec!["eth*".to_string()],
            rules: None,
        };
        let (got, _) = placed(&value, &config);
        let used: Vec<&str> = got
            .iter()
            .filter(|(_, _, t)| t != "-")
            .map(|(i, _, _)| i.as_str())
            .collect();
        assert_eq!(
            used,
            [
                "cni0",
                "flannel.1",
                "veth-eth1",
                "br-3f2a",
                "kube-ipvs0",
                "lo",
                "tunl0",
                "vethless"
            ]
        );
    }

    #[test]
    fn glob_patterns() {
        let p = |s: &str| vec![s.to_string()];
        assert_eq!(ignored_by("veth12ab", &p("veth*")), Some("veth*"));
        assert_eq!(ignored_by("veth", &p("veth*")), Some("veth*"));
        assert_eq!(ignored_by("xveth", &p("veth*")), None);
        assert_eq!(ignored_by("lo", &p("lo")), Some("lo"));
        assert_eq!(ignored_by("lo0", &p("lo")), None);
        assert_eq!(ignored_by("eth0.100", &p("*.100")), Some("*.100"));
        assert_eq!(ignored_by("enp3s0", &p("en*s*")), Some("en*s*"));
        assert!(check_pattern("veth*").is_ok());
        for bad in ["", "a b", "a/b"] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dual_stack_interfaces_keep_both_families_in_kernel_order() {
        let value = encode(&[iface(
            "eth0",
            &[
                "10.0.0.5/24",
                "fd00::5/64",
                "2001:db8::5/64",
                "203.0.113.5/24",
            ],
        )]);
        let mut warnings = Vec::new();
        let got = candidates(&value, &InterfacesConfig::default(), &mut warnings);
        let got: Vec<(AddressType, &str)> =
            got.iter().map(|c| (c.type_, c.address.as_str())).collect();
        assert_eq!(
            got,
            [
                (InternalIP, "10.0.0.5"),
                (InternalIP, "fd00::5"),
                (ExternalIP, "2001:db8::5"),
                (ExternalIP, "203.0.113.5"),
            ]
        );
    }

    #[test]
    fn unreadable_values_warn_and_give_nothing() {
        for bad in [
            "",
            "eth0=10.0.0.5",
            "{}",
            r#"[{"name":"eth0"}]"#,
            r#"[{"name":1,"addresses":[]}]"#,
        ] {
            let (got, warnings) = placed(bad, &InterfacesConfig::default());
            assert!(got.is_empty(), "{bad:?}");
            assert_eq!(warnings.len(), 1, "{bad:?}: {warnings:?}");
            assert!(
                warnings[0]
                    .starts_with("ignoring annotation bare-ccm.io/interfaces: not a JSON list"),
                "{warnings:?}"
            );
        }
        // One bad address is skipped; the others are used.
        let (got, warnings) = placed(
            r#"[{"name":"eth0","addresses":["10.0.0.5","10.0.0.6/33","10.0.0.7/24","fd00::1/129"]}]"#,
            &InterfacesConfig::default(),
        );
        assert_eq!(got, vec![row("eth0", "10.0.0.7/24", "InternalIP")]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert_eq!(
            warnings[0],
            r#"ignoring address "10.0.0.5" of interface "eth0" in annotation bare-ccm.io/interfaces: not IP/PREFIX"#
        );
    }

    #[test]
    fn cidrs_are_strict_and_contain_their_family_only() {
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert!(cidr("10.0.0.0/8").contains("10.255.1.2".parse().unwrap()));
        assert!(!cidr("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("203.0.113.1".parse().unwrap()));
        assert!(!cidr("0.0.0.0/0").contains("2001:db8::1".parse().unwrap()));
        assert!(cidr("fc00::/7").contains("fd44::1".parse().unwrap()));
        assert!(!cidr("fc00::/7").contains("fe80::1".parse().unwrap()));
        assert!(cidr("::/0").contains("2001:db8::1".parse().unwrap()));
        assert!(cidr("10.1.2.3/32").contains("10.1.2.3".parse().unwrap()));
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert!(cidr("10.0.0.0/8").contains("::ffff:10.0.0.1".parse().unwrap()));
        assert_eq!(
            "10.1.0.0/8".parse::<Cidr>(),
            Err(r#""10.1.0.0/8" has host bits set: the network is 10.0.0.0/8"#.to_string())
        );
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/",
            "/8",
            "10.0.0/8",
            "fc00::/129",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "x/8",
            " 10.0.0.0/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} must be refused");
        }
    }
}
