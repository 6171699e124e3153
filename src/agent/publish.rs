//! Pure: from the addresses the kernel lists to the annotation value, and from the value
//! the node holds to the one patch that changes it. Table-tested on their output.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};

use crate::patch::pointer_token;
use crate::resolve::interfaces::{INTERFACES, Interface, encode, ignored_by, skip_reason};

/// One address of one interface, as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkAddress {
    /// The interface name.
    pub interface: String,
    /// The local address.
    pub ip: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// False while IPv6 duplicate address detection runs (tentative) or after it failed:
    /// nothing can reach the node there yet.
    pub usable: bool,
}

/// The annotation's interfaces: sorted by name, each address in the kernel's order as
/// `IP/PREFIX`; without the interfaces `ignore` matches, the addresses that are never used
/// ([`skip_reason`]: loopback, link-local, multicast) and unusable ones; an interface left
/// with no address is left out.
pub fn interfaces_of(addresses: &[LinkAddress], ignore: &[String]) -> Vec<Interface> {
    let mut out: Vec<Interface> = Vec::new();
    for a in addresses {
        if !a.usable || skip_reason(a.ip).is_some() || ignored_by(&a.interface, ignore).is_some() {
            continue;
        }
        let written = format!("{}/{}", a.ip, a.prefix);
        match out.iter_mut().find(|i| i.name == a.interface) {
            Some(iface) => iface.addresses.push(written),
            None => out.push(Interface {
                name: a.interface.clone(),
                addresses: vec![written],
            }),
        }
    }
    // Stable: each interface keeps the kernel's order of its addresses.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The annotation value for `addresses`.
pub fn annotation_value(addresses: &[LinkAddress], ignore: &[String]) -> String {
    encode(&interfaces_of(addresses, ignore))
}

/// What the node's annotation is, as last read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The node has no annotations at all (no `metadata.annotations`).
    NoAnnotations,
    /// The node has annotations, but not this one.
    Absent,
    /// The annotation's value.
    Value(String),
}

impl Seen {
    /// What `node` holds.
    pub fn on(node: &Node) -> Seen {
        match &node.metadata.annotations {
            None => Seen::NoAnnotations,
            Some(map) if map.is_empty() => Seen::NoAnnotations,
            Some(map) => map
                .get(INTERFACES)
                .map_or(Seen::Absent, |v| Seen::Value(v.clone())),
        }
    }

    /// Whether the node already holds `value`.
    pub fn holds(&self, value: &str) -> bool {
        matches!(self, Seen::Value(v) if v == value)
    }
}

/// The JSON patch that sets the annotation to `value` if the node still holds `seen`: a
/// `test` of what was seen (absence tested as `null`, which the API server's json-patch,
/// gopkg.in/evanphx/json-patch.v4 `Patch.test`, takes as "absent"), then one `add`. It
/// touches no other field, and a value changed meanwhile fails the test (422) instead of
/// being overwritten blindly.
pub fn annotation_patch(seen: &Seen, value: &str) -> Value {
    let key = format!("/metadata/annotations/{}", pointer_token(INTERFACES));
    match seen {
        Seen::NoAnnotations => json!([
            {"op": "test", "path": "/metadata/annotations", "value": null},
            {"op": "add", "path": "/metadata/annotations", "value": {INTERFACES: value}},
        ]),
        Seen::Absent => json!([
            {"op": "test", "path": key, "value": null},
            {"op": "add", "path": key, "value": value},
        ]),
        Seen::Value(old) => json!([
            {"op": "test", "path": key, "value": old},
            {"op": "add", "path": key, "value": value},
        ]),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::resolve::interfaces::DEFAULT_IGNORE;

    fn addr(interface: &str, ip: &str, prefix: u8) -> LinkAddress {
        LinkAddress {
            interface: interface.to_string(),
            ip: ip.parse().unwrap(),
            prefix,
            usable: true,
        }
    }

    fn defaults() -> Vec<String> {
        DEFAULT_IGNORE.iter().map(ToString::to_string).collect()
    }

    /// What a k3s node with flannel and two NICs lists (interfaces in index order, IPv4
    /// before IPv6, as an AF_UNSPEC dump returns them).
    fn k3s_node() -> Vec<LinkAddress> {
        vec![
            addr("lo", "127.0.0.1", 8),
            addr("eth1", "198.18.0.7", 24),
            addr("eth0", "10.44.0.7", 16),
            addr("eth0", "10.44.9.9", 16),
            addr("flannel.1", "10.42.1.0", 32),
            addr("cni0", "10.42.1.1", 24),
            addr("kube-ipvs0", "10.43.0.1", 32),
            addr("lo", "::1", 128),
            addr("eth1", "2001:db8::7", 64),
            addr("eth1", "fe80::7", 64),
            addr("eth0", "fd44::7", 64),
            addr("vethab12", "fe80::1", 64),
        ]
    }

    #[test]
    fn interfaces_are_sorted_by_name_and_keep_the_kernel_order_of_their_addresses() {
        assert_eq!(
            annotation_value(&k3s_node(), &defaults()),
            r#"[{"name":"eth0","addresses":["10.44.0.7/16","10.44.9.9/16","fd44::7/64"]},{"name":"eth1","addresses":["198.18.0.7/24","2001:db8::7/64"]}]"#
        );
    }

    #[test]
    fn the_ignore_list_is_replaceable_and_loopback_link_local_stay_skipped() {
        let value = annotation_value(&k3s_node(), &["eth1".to_string()]);
        assert_eq!(
            value,
            r#"[{"name":"cni0","addresses":["10.42.1.1/24"]},{"name":"eth0","addresses":["10.44.0.7/16","10.44.9.9/16","fd44::7/64"]},{"name":"flannel.1","addresses":["10.42.1.0/32"]},{"name":"kube-ipvs0","addresses":["10.43.0.1/32"]}]"#
        );
    }

    #[test]
    fn tentative_addresses_wait_and_nothing_gives_an_empty_list() {
        let mut tentative = addr("eth0", "fd44::8", 64);
        tentative.usable = false;
        let value = annotation_value(&[addr("eth0", "10.44.0.8", 16), tentative], &defaults());
        assert_eq!(value, r#"[{"name":"eth0","addresses":["10.44.0.8/16"]}]"#);
        assert_eq!(
            annotation_value(&[addr("lo", "127.0.0.1", 8)], &defaults()),
            "[]"
        );
    }

    fn node(annotations: Option<&[(&str, &str)]>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                annotations: annotations.map(|list| {
                    list.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>()
                }),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    #[test]
    fn seen_distinguishes_no_map_absent_and_a_value() {
        assert_eq!(Seen::on(&node(None)), Seen::NoAnnotations);
        assert_eq!(Seen::on(&node(Some(&[]))), Seen::NoAnnotations);
        assert_eq!(Seen::on(&node(Some(&[("a", "b")]))), Seen::Absent);
        let seen = Seen::on(&node(Some(&[("a", "b"), (INTERFACES, "[]")])));
        assert_eq!(seen, Seen::Value("[]".into()));
        assert!(seen.holds("[]"));
        assert!(!Seen::Absent.holds("[]"));
    }

    #[test]
    fn the_patch_tests_what_was_seen_and_adds_only_the_annotation() {
        let key = "/metadata/annotations/bare-ccm.io~1interfaces";
        assert_eq!(
            annotation_patch(&Seen::NoAnnotations, "[]"),
            json!([
                {"op": "test", "path": "/metadata/annotations", "value": null},
                {"op": "add", "path": "/metadata/annotations", "value": {"bare-ccm.io/interfaces": "[]"}},
            ])
        );
        assert_eq!(
            annotation_patch(&Seen::Absent, "[]"),
            json!([
                {"op": "test", "path": key, "value": null},
                {"op": "add", "path": key, "value": "[]"},
            ])
        );
        assert_eq!(
            annotation_patch(&Seen::Value("old".into()), "new"),
            json!([
                {"op": "test", "path": key, "value": "old"},
                {"op": "add", "path": key, "value": "new"},
            ])
        );
    }
}
