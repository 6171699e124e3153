//! Property tests of every parser and validator the resolver relies on: IP lists,
//! provided-node-ip, k3s node-args, the config file and label syntax. Each must never panic
//! on arbitrary input, and must recover exactly what a well-formed input encodes.
//!
//! The number of cases per property is proptest's default (256) unless `PROPTEST_CASES` is
//! set; CI runs with `PROPTEST_CASES=10000`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use bare_ccm::config::{Config, with_implied_sources};
use bare_ccm::node_view::NodeView;
use bare_ccm::patch::{init_patch, refresh_patch, status_addresses_patch};
use bare_ccm::resolve::addresses::{AddressType, parse_ip};
use bare_ccm::resolve::labels::{check_label_key, check_label_value};
use bare_ccm::resolve::{
    AddressSource, UNINITIALIZED_TAINT, annotations, node_args, provided_node_ip, resolve,
};
use k8s_openapi::api::core::v1::{NodeAddress, Taint};
use proptest::prelude::*;
use regex::Regex;

/// Any IP, written the way Rust (and Go) print it canonically.
fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        // Dense small ranges, so that equal IPs and dual-stack pairs occur often.
        (0u8..4).prop_map(|v| IpAddr::V4(Ipv4Addr::new(10, 0, 0, v))),
        (0u16..4).prop_map(|v| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, v))),
    ]
    .prop_map(|ip| ip.to_canonical())
}

fn ip_string(ip: &IpAddr) -> String {
    ip.to_string()
}

/// A fragment that often confuses parsers: IP-ish text, separators, redaction.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F:.,/% ]{0,40}",
        Just("********".to_string()),
        Just("::".to_string()),
        Just("0.0.0.0".to_string()),
        ip().prop_map(|ip| ip_string(&ip)),
    ]
}

proptest! {
    // ---- IP lists (address annotations) ----

    #[test]
    fn annotation_ip_lists_round_trip(ips in prop::collection::vec(ip(), 1..6), spaced in any::<bool>()) {
        let sep = if spaced { ", " } else { "," };
        let value = ips.iter().map(ip_string).collect::<Vec<_>>().join(sep);
        let map = BTreeMap::from([("bare-ccm.io/internal-ip".to_string(), value)]);
        let mut warnings = Vec::new();
        let got: Vec<String> = annotations::candidates(&map, annotations::Owner::BareCcm, &mut warnings)
            .into_iter()
            .map(|c| c.address)
            .collect();
        prop_assert_eq!(got, ips.iter().map(ip_string).collect::<Vec<_>>());
        prop_assert!(warnings.is_empty());
    }

    #[test]
    fn annotation_values_never_panic_and_yield_only_valid_ips(value in junk(), key in 0usize..5) {
        let (type_, ours, _) = annotations::ADDRESS_ANNOTATIONS[key];
        let map = BTreeMap::from([(ours.to_string(), value)]);
        let mut warnings = Vec::new();
        for c in annotations::candidates(&map, annotations::Owner::BareCcm, &mut warnings) {
            prop_assert_eq!(c.type_, type_);
            if type_.is_ip() {
                prop_assert!(parse_ip(&c.address).is_some());
            }
        }
    }

    #[test]
    fn parse_ip_agrees_with_std_and_is_canonical(s in junk()) {
        match parse_ip(&s) {
            Some(ip) => {
                prop_assert!(s.parse::<IpAddr>().is_ok());
                prop_assert_eq!(parse_ip(&ip.to_string()), Some(ip));
            }
            None => prop_assert!(s.parse::<IpAddr>().is_err()),
        }
    }

    // ---- provided-node-ip ----

    #[test]
    fn provided_node_ip_parse_never_panics(s in junk()) {
        if let Ok(ips) = provided_node_ip::parse(&s) {
            prop_assert!(ips.len() == 1 || ips.len() == 2);
            if ips.len() == 2 {
                prop_assert_ne!(ips[0].is_ipv6(), ips[1].is_ipv6());
                prop_assert!(!ips[0].is_unspecified() && !ips[1].is_unspecified());
            }
        }
    }

    #[test]
    fn provided_node_ip_single_and_pair_round_trip(a in ip(), b in ip()) {
        prop_assert_eq!(provided_node_ip::parse(&ip_string(&a)), Ok(vec![a]));
        let pair = format!("{},{}", ip_string(&a), ip_string(&b));
        let valid_pair = a.is_ipv6() != b.is_ipv6() && !a.is_unspecified() && !b.is_unspecified();
        match provided_node_ip::parse(&pair) {
            Ok(ips) => {
                prop_assert!(valid_pair);
                prop_assert_eq!(ips, vec![a, b]);
            }
            Err(_) => prop_assert!(!valid_pair),
        }
    }

    #[test]
    fn provided_node_ip_filter_keeps_matches_first_and_drops_only_enforced_types(
        list in prop::collection::vec((0usize..5, ip()), 0..8),
        pick in prop::collection::vec(any::<prop::sample::Index>(), 1..3),
    ) {
        let addresses: Vec<_> = list
            .iter()
            .map(|(t, ip)| bare_ccm::resolve::ResolvedAddress {
                type_: AddressType::ALL[*t],
                address: ip_string(ip),
                source: AddressSource::Kubelet,
            })
            .collect();
        let annotation: Vec<IpAddr> = if addresses.is_empty() {
            vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]
        } else {
            pick.iter().map(|i| list[i.index(list.len())].1).collect()
        };
        let value = annotation.iter().map(ip_string).collect::<Vec<_>>().join(",");
        match provided_node_ip::filter(&value, &addresses) {
            Ok(out) => {
                // Every annotation IP leads, in annotation order.
                let leading: Vec<IpAddr> = out.iter().filter_map(|a| parse_ip(&a.address)).collect();
                prop_assert_eq!(leading.first().copied(), annotation.first().copied());
                // Output is drawn from the input, and never longer.
                prop_assert!(out.len() <= addresses.len());
                for a in &out {
                    prop_assert!(addresses.contains(a));
                }
                // Types not matched by the annotation pass through completely.
                let enforced: Vec<&str> = addresses
                    .iter()
                    .filter(|a| parse_ip(&a.address).is_some_and(|ip| annotation.contains(&ip)))
                    .map(|a| a.type_.as_str())
                    .collect();
                for a in addresses.iter().filter(|a| !enforced.contains(&a.type_.as_str())) {
                    prop_assert!(out.contains(a));
                }
            }
            Err(_) => {
                // Only a malformed pair or an unmatched IP may fail.
                let matched_all = annotation
                    .iter()
                    .all(|ip| addresses.iter().any(|a| parse_ip(&a.address) == Some(*ip)));
                prop_assert!(provided_node_ip::parse(&value).is_err() || !matched_all);
            }
        }
    }

    // ---- k3s node-args ----

    #[test]
    fn node_args_round_trip_every_form(
        entries in prop::collection::vec((any::<bool>(), prop::collection::vec(ip(), 1..3), 0u8..3), 0..5),
        noise in prop::collection::vec(("--[a-z]{1,8}(-[a-z]{1,6})?", "[a-z0-9=,.]{0,12}"), 0..4),
    ) {
        let mut args = vec!["agent".to_string()];
        for (flag, value) in &noise {
            if flag != "--node-ip" && flag != "--node-external-ip" && !flag.starts_with("--node-internal") && !flag.starts_with("--node-external") {
                args.push(flag.clone());
                args.push(value.clone());
            }
        }
        let mut internal = Vec::new();
        let mut external = Vec::new();
        for (is_internal, ips, form) in &entries {
            let list = ips.iter().map(ip_string).collect::<Vec<_>>().join(",");
            let flag = match (is_internal, form) {
                (true, 0) => "-i",
                (true, _) => "--node-ip",
                (false, _) => "--node-external-ip",
            };
            if *form == 2 {
                args.push(format!("{flag}={list}"));
            } else {
                args.push(flag.to_string());
                args.push(list);
            }
            if *is_internal { internal.extend(ips.iter().map(ip_string)) } else { external.extend(ips.iter().map(ip_string)) }
        }
        let json = serde_json::to_string(&args).unwrap();
        let mut warnings = Vec::new();
        let got = node_args::candidates(&json, &mut warnings);
        let got_internal: Vec<String> = got.iter().filter(|c| c.type_ == AddressType::InternalIP).map(|c| c.address.clone()).collect();
        let got_external: Vec<String> = got.iter().filter(|c| c.type_ == AddressType::ExternalIP).map(|c| c.address.clone()).collect();
        prop_assert_eq!(got_internal, internal);
        prop_assert_eq!(got_external, external);
        prop_assert!(warnings.is_empty(), "{:?}", warnings);
    }

    #[test]
    fn node_args_never_panic_on_arbitrary_json_or_text(
        text in any::<String>(),
        args in prop::collection::vec(prop_oneof![
            Just("--node-ip".to_string()), Just("-i".to_string()), Just("--node-external-ip".to_string()),
            Just("--node-internal-dns".to_string()), junk(),
        ], 0..8),
    ) {
        let mut warnings = Vec::new();
        node_args::candidates(&text, &mut warnings);
        let json = serde_json::to_string(&args).unwrap();
        for c in node_args::candidates(&json, &mut warnings) {
            if c.type_.is_ip() {
                prop_assert!(parse_ip(&c.address).is_some());
            } else {
                prop_assert!(!c.address.is_empty() && !c.address.contains(','));
            }
        }
    }

    // ---- config ----

    #[test]
    fn config_from_arbitrary_text_never_panics(text in any::<String>()) {
        let _ = Config::from_yaml(&text);
    }

    #[test]
    fn config_from_yaml_shaped_text_never_panics(
        lines in prop::collection::vec(
            (prop_oneof![
                Just("providerID"), Just("instanceType"), Just("zone"), Just("addressSources"),
                Just("providedNodeIP"), Just("requireInternalIP"), Just("preferIPv6"),
                Just("extraLabels"), Just("inventory"), Just("  - name"), Just("    nameRegex"),
                Just("    addresses"), Just("bogus"), Just("interfaces"), Just("  rules"),
                Just("  ignore"), Just("    - cidr"), Just("      type"),
            ], "[ -~]{0,20}"),
            0..8,
        ),
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        let _ = Config::from_yaml(&text);
    }

    #[test]
    fn generated_configs_round_trip(
        zone in "[a-z][a-z0-9-]{0,10}[a-z0-9]",
        prefer_ipv6 in any::<bool>(),
        sources in prop::sample::subsequence(AddressSource::CONFIGURABLE.to_vec(), 1..=7),
        labels in prop::collection::btree_map("example\\.com/[a-z]([a-z0-9._-]{0,20}[a-z0-9])?", "([A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?)?", 0..4),
        entries in prop::collection::vec(("[a-z][a-z0-9-]{0,10}", prop::collection::vec((0usize..5, ip()), 0..4)), 0..4),
    ) {
        let mut yaml = format!(
            "zone: \"{zone}\"\npreferIPv6: {prefer_ipv6}\naddressSources: [{}]\nextraLabels:\n",
            sources.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
        for (k, v) in &labels {
            yaml.push_str(&format!("  {k}: \"{v}\"\n"));
        }
        yaml.push_str("inventory:\n");
        // Entry names are made unique: a repeated name is a config error of its own.
        for (i, (name, addrs)) in entries.iter().enumerate() {
            yaml.push_str(&format!("  - name: \"{name}-{i}\"\n    addresses:\n"));
            for (t, ip) in addrs {
                let t = AddressType::ALL[*t % 2];
                yaml.push_str(&format!("      - {{type: {t}, address: \"{}\"}}\n", ip_string(ip)));
            }
        }
        let c = match Config::from_yaml(&yaml) {
            Ok(c) => c,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{yaml}"))),
        };
        prop_assert_eq!(&c.zone, &zone);
        prop_assert_eq!(c.prefer_ipv6, prefer_ipv6);
        // Sources added since such a list was written take their implied rank.
        prop_assert_eq!(&c.address_sources, &with_implied_sources(sources.clone()));
        prop_assert_eq!(&c.extra_labels, &labels);
        prop_assert_eq!(c.inventory.len(), entries.len());
        for (entry, (_, addrs)) in c.inventory.iter().zip(&entries) {
            let got: Vec<String> = entry.addresses.iter().map(|a| a.address.clone()).collect();
            prop_assert_eq!(got, addrs.iter().map(|(_, ip)| ip_string(ip)).collect::<Vec<_>>());
        }
    }

    // ---- label syntax ----

    #[test]
    fn label_key_check_agrees_with_the_kubernetes_grammar(key in prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._/-]{0,70}",
        "([a-z0-9-]{1,8}\\.){0,3}[a-z0-9-]{1,8}/[A-Za-z0-9._-]{1,66}",
    ]) {
        prop_assert_eq!(check_label_key(&key).is_ok(), is_qualified_name(&key), "{:?}", key);
    }

    #[test]
    fn label_value_check_agrees_with_the_kubernetes_grammar(value in prop_oneof![any::<String>(), "[A-Za-z0-9._ -]{0,70}"]) {
        let expected = value.is_empty() || (value.len() <= 63 && NAME.is_match(&value));
        prop_assert_eq!(check_label_value(&value).is_ok(), expected, "{:?}", value);
    }

    // ---- the resolver and patch builders as a whole ----

    #[test]
    fn resolve_never_panics_and_keeps_its_invariants(
        annotations in prop::collection::btree_map(
            prop_oneof![
                Just("k3s.io/node-args".to_string()),
                Just("alpha.kubernetes.io/provided-node-ip".to_string()),
                Just("bare-ccm.io/internal-ip".to_string()),
                Just("k3s.io/internal-ip".to_string()),
                Just("bare-ccm.io/external-ip".to_string()),
                Just("bare-ccm.io/hostname".to_string()),
            ],
            junk(),
            0..5,
        ),
        kubelet in prop::collection::vec((0usize..6, junk()), 0..5),
        tainted in any::<bool>(),
        mode in prop_oneof![Just("strict"), Just("prefer"), Just("ignore")],
        prefer_ipv6 in any::<bool>(),
        require in any::<bool>(),
        has_provider_id in any::<bool>(),
    ) {
        let config = Config::from_yaml(&format!(
            "providedNodeIP: {mode}\npreferIPv6: {prefer_ipv6}\nrequireInternalIP: {require}\n"
        )).unwrap();
        let types = ["InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS", "Hostname", "Weird"];
        let node = NodeView {
            name: "n1".into(),
            resource_version: "5".into(),
            annotations,
            addresses: kubelet
                .iter()
                .map(|(t, a)| NodeAddress { type_: types[*t].into(), address: a.clone() })
                .collect(),
            taints: if tainted {
                vec![Taint { key: UNINITIALIZED_TAINT.into(), effect: "NoSchedule".into(), ..Taint::default() }]
            } else {
                vec![]
            },
            provider_id: if has_provider_id { "k3s://n1".into() } else { String::new() },
            ..NodeView::default()
        };
        let r = resolve(&node, &config);
        // Either nothing (the kubelet's list is left alone) or a list with a Hostname.
        prop_assert!(r.addresses.is_empty() || r.addresses.iter().any(|a| a.type_ == AddressType::Hostname));
        for a in &r.addresses {
            let t: AddressType = a.type_;
            if t.is_ip() {
                prop_assert!(parse_ip(&a.address).is_some(), "{:?}", a);
            }
            // The kubelet source never echoes back what a cloud controller wrote.
            if a.source == AddressSource::Kubelet {
                prop_assert!(t == AddressType::InternalIP || t == AddressType::Hostname, "{:?}", a);
            }
        }
        if r.errors.is_empty() && require {
            prop_assert!(r.addresses.iter().any(|a| a.type_ == AddressType::InternalIP));
        }
        let mut seen = std::collections::HashSet::new();
        for a in &r.addresses {
            prop_assert!(seen.insert((a.type_, a.address.clone())), "duplicate {:?}", a);
        }
        if mode == "ignore" {
            let order: Vec<AddressType> = r.addresses.iter().map(|a| a.type_).collect();
            prop_assert!(order.windows(2).all(|w| w[0] <= w[1]), "{:?}", order);
        }
        prop_assert_eq!(init_patch(&node, &r).is_some(), r.would_initialize());
        if let Some(p) = status_addresses_patch(&node, &r) {
            prop_assert!(!r.addresses.is_empty());
            prop_assert_eq!(p["status"]["addresses"].as_array().map(Vec::len), Some(r.addresses.len()));
            // No precondition: upstream's PatchNodeStatus sends none either.
            prop_assert!(p.get("metadata").is_none(), "{}", p);
        }
        // A refresh is only ever the status write of an initialised (untainted, providerID) node.
        match refresh_patch(&node, &r) {
            Some(p) => {
                prop_assert!(!tainted && has_provider_id);
                prop_assert_eq!(Some(p), status_addresses_patch(&node, &r));
            }
            None => prop_assert!(tainted || !has_provider_id || status_addresses_patch(&node, &r).is_none()),
        }
    }
}

/// The label-name grammar (`IsQualifiedName`'s name part and label values).
static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").unwrap());

/// The DNS-1123 subdomain grammar of label-key prefixes.
static SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").unwrap()
});

/// Kubernetes `IsQualifiedName`, written from its published grammar as an oracle.
fn is_qualified_name(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    let (prefix, name) = match parts.as_slice() {
        [name] => (None, *name),
        [prefix, name] => (Some(*prefix), *name),
        _ => return false,
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !SUBDOMAIN.is_match(p))
    {
        return false;
    }
    !name.is_empty() && name.len() <= 63 && NAME.is_match(name)
}
