//! Tests of the config: parsing, validation problems, defaults and templates.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::facts::address::AddressType;

fn problems(yaml: &str) -> Vec<String> {
    match Config::from_yaml(yaml) {
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected validation problems, got {other:?}"),
    }
}

/// Asserts that `text` starts with `prefix`, showing the text when it does not.
#[track_caller]
fn assert_starts_with(text: &str, prefix: &str) {
    assert!(text.starts_with(prefix), "{text}");
}

#[test]
fn empty_file_gives_k3s_compatible_defaults() {
    for text in ["", "\n# only a comment\n", "---\n"] {
        let c = Config::from_yaml(text).unwrap();
        assert_eq!(c, Config::default());
    }
    let c = Config::default();
    assert_eq!(c.provider_id, "k3s://{node}");
    assert_eq!(c.instance_type, "k3s");
    assert_eq!(c.zone, "");
    let names: Vec<&str> = c.address_sources.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names.join(", "),
        "inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet"
    );
    assert_eq!(c.interfaces, InterfacesConfig::default());
    assert_eq!(c.provided_node_ip, ProvidedNodeIpMode::Strict);
    assert!(c.require_internal_ip);
    assert!(!c.prefer_ipv6);
    assert_eq!(c.k3s_agent_wait, Duration::from_secs(30));
}

/// Issue 11 item 2: stale `k3s.io/*` keys must rank below node-args, and a list written
/// before `k3s-annotations` existed keeps reading them. Issue 14: a list written before
/// `interfaces` existed reads it where it reads the node's own account of its
/// addresses, and a list without one (only what operators wrote) does not.
#[test]
fn sources_added_later_take_their_default_rank_unless_listed() {
    // `listed -> effective`
    for row in [
        "[inventory, annotations, k3s-node-args, provided-node-ip, kubelet] -> inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet",
        "[inventory, annotations, k3s-node-args, k3s-annotations, provided-node-ip, kubelet] -> inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet",
        "[annotations, kubelet] -> annotations, k3s-annotations, kubelet",
        "[inventory] -> inventory",
        "[k3s-node-args, annotations] -> k3s-node-args, interfaces, annotations, k3s-annotations",
        "[annotations, k3s-annotations, k3s-node-args] -> annotations, k3s-annotations, k3s-node-args, interfaces",
        "[k3s-annotations, annotations] -> k3s-annotations, annotations",
        "[k3s-node-args, kubelet] -> k3s-node-args, interfaces, kubelet",
        "[annotations, provided-node-ip] -> annotations, interfaces, k3s-annotations, provided-node-ip",
        "[interfaces, k3s-node-args, annotations] -> interfaces, k3s-node-args, annotations, k3s-annotations",
        "[provided-node-ip, interfaces] -> provided-node-ip, interfaces",
    ] {
        let (listed, effective) = row.split_once(" -> ").unwrap_or_default();
        let c = Config::from_yaml(&format!("addressSources: {listed}\n")).unwrap();
        let names: Vec<&str> = c.address_sources.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.join(", "), effective, "{listed}");
    }
}

#[test]
fn interfaces_rules_and_ignore_are_checked_with_their_paths_and_lines() {
    let yaml = "interfaces:\n  ignore: [eth0, \"a b\", 7]\n  rules:\n    - {cidr: 10.0.0.0/8, type: InternalIP}\n    - {cidr: 10.1.0.0/8, type: ExternalIP}\n    - {cidr: 300.0.0.0/8, type: Internal}\n    - {cidr: \"fc00::/7\"}\n    - {type: ignore, via: eth1}\n    - [10.0.0.0/8]\n  colour: blue\n";
    assert_eq!(
        problems(yaml),
        [
            // Problems of one line: the schema walk's first, then the values'.
            r#"interfaces.ignore[2]: 7 is not a string: quote it ("7") (line 2)"#,
            r#"interfaces.ignore[1]: "a b" is not an interface name pattern (a name, where * matches any characters, e.g. veth*) (line 2)"#,
            r#"interfaces.rules[1].cidr: "10.1.0.0/8" has host bits set: the network is 10.0.0.0/8 (line 5)"#,
            r#"interfaces.rules[2].cidr: "300.0.0.0/8" is not a CIDR (an address and a prefix length, e.g. 10.0.0.0/8 or fc00::/7) (line 6)"#,
            r#"interfaces.rules[2].type: unknown type "Internal" (expected InternalIP, ExternalIP or ignore) (line 6)"#,
            "interfaces.rules[3].type: missing: a rule needs a cidr and a type (line 7)",
            "interfaces.rules[4].via: unknown key (expected one of cidr, type) (line 8)",
            "interfaces.rules[4].cidr: missing: a rule needs a cidr and a type (line 8)",
            "interfaces.rules[5]: expected a map, found a list (line 9)",
            "interfaces.colour: unknown key (expected one of ignore, rules) (line 10)",
        ]
    );
    assert_eq!(
        problems("interfaces:\n  rules: []\n"),
        [
            "interfaces.rules: an empty list places no address: delete rules for the built-in ones, or leave interfaces out of addressSources (line 2)"
        ]
    );
    assert_eq!(
        problems("interfaces: [eth0]\n"),
        ["interfaces: expected a map, found a list (line 1)"]
    );
    // Null sections are the defaults; an empty ignore list skips no interface.
    let c = Config::from_yaml("interfaces:\n  rules:\n  ignore:\n").unwrap();
    assert_eq!(c.interfaces, InterfacesConfig::default());
    let c = Config::from_yaml("interfaces:\n  ignore: []\n").unwrap();
    assert!(c.interfaces.ignore.is_empty());
    assert_eq!(c.interfaces.rules, None);
}

/// Issue 14 item 4: node-role labels may be set; the rest of kubernetes.io stays refused.
#[test]
fn node_role_labels_are_allowed_in_extra_labels_and_inventory_labels() {
    let c = Config::from_yaml(
            "extraLabels:\n  node-role.kubernetes.io/worker: \"true\"\ninventory:\n  - nameRegex: \"gpu-.*\"\n    labels:\n      node-role.kubernetes.io/gpu: \"\"\n",
        )
        .unwrap();
    assert_eq!(c.extra_labels["node-role.kubernetes.io/worker"], "true");
    assert_eq!(c.inventory[0].labels["node-role.kubernetes.io/gpu"], "");
    let got = problems(
        "extraLabels:\n  node-role.kubernetes.io/worker: \"true\"\n  node.kubernetes.io/role: x\n  sub.node-role.kubernetes.io/y: x\n",
    );
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with(r#"extraLabels."node.kubernetes.io/role": label key"#),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with(r#"extraLabels."sub.node-role.kubernetes.io/y": label key"#),
        "{got:#?}"
    );
}

#[test]
fn k3s_agent_wait_takes_a_duration_with_its_unit() {
    for (yaml, wait) in [
        ("k3sAgentWait: 45s\n", 45),
        ("k3sAgentWait: 2m\n", 120),
        ("k3sAgentWait: 1m30s\n", 90),
        ("k3sAgentWait: 0s\n", 0),
        ("k3sAgentWait: 0\n", 0),
    ] {
        let c = Config::from_yaml(yaml).unwrap();
        assert_eq!(c.k3s_agent_wait, Duration::from_secs(wait), "{yaml}");
    }
    assert_eq!(
        problems("k3sAgentWait: 30\n"),
        [
            "k3sAgentWait: 30 is not a duration: give its unit, e.g. 30s or 1m (0 never waits) (line 1)"
        ]
    );
    assert_eq!(
        problems("k3sAgentWait: soon\n"),
        [
            "k3sAgentWait: \"soon\" is not a duration: use e.g. 30s, 1m or 1m30s (0s never waits) (line 1)"
        ]
    );
    assert!(problems("k3sAgentWait: 11m\n")[0].contains("longer than 600s"));
    assert!(problems("k3sAgentWait: -5s\n")[0].contains("is not a duration"));
}

#[test]
fn the_documented_example_parses() {
    let yaml = r#"
providerID: "k3s://{node}"
instanceType: "k3s"
zone: ""
region: ""
addressSources: [inventory, annotations, k3s-node-args, provided-node-ip, kubelet]
providedNodeIP: strict
requireInternalIP: true
preferIPv6: false
extraLabels: {}
inventory:
  - name: node-a
    addresses:
      - {type: InternalIP, address: 10.0.0.5}
      - {type: ExternalIP, address: 203.0.113.5}
    providerID: ""
    instanceType: ""
    zone: ""
    region: ""
    labels: {}
"#;
    let c = Config::from_yaml(yaml).unwrap();
    assert_eq!(c.inventory.len(), 1);
    let e = &c.inventory[0];
    assert_eq!(e.matcher, NodeMatcher::Name("node-a".into()));
    assert_eq!(
        e.addresses,
        vec![
            InventoryAddress {
                type_: AddressType::InternalIP,
                address: "10.0.0.5".into()
            },
            InventoryAddress {
                type_: AddressType::ExternalIP,
                address: "203.0.113.5".into()
            },
        ]
    );
    assert_eq!(
        Config {
            inventory: vec![],
            ..c
        },
        Config::default()
    );
}

#[test]
fn all_keys_are_read() {
    let yaml = r#"
providerID: "metal://dc1/{node}"
instanceType: m1
zone: z1
region: r1
addressSources: [k3s-node-args, kubelet, interfaces]
providedNodeIP: prefer
requireInternalIP: false
preferIPv6: true
extraLabels: {example.com/managed: "yes"}
inventory:
  - nameRegex: "gpu-[0-9]+"
    instanceType: gpu
    labels: {example.com/gpu: "true"}
  - selector: {matchLabels: {example.com/rack: r7}}
    zone: z7
k3sAgentWait: 10s
interfaces:
  ignore: [eth9, "wg*"]
  rules:
    - {cidr: 192.168.0.0/16, type: InternalIP}
    - {cidr: 10.0.0.0/8,     type: ignore}
    - {cidr: 0.0.0.0/0,      type: ExternalIP}
"#;
    let c = Config::from_yaml(yaml).unwrap();
    assert_eq!(c.provider_id, "metal://dc1/{node}");
    assert_eq!(c.k3s_agent_wait, Duration::from_secs(10));
    assert_eq!(
        (c.instance_type.as_str(), c.zone.as_str(), c.region.as_str()),
        ("m1", "z1", "r1")
    );
    assert_eq!(
        c.address_sources,
        vec![
            AddressSource::K3sNodeArgs,
            AddressSource::Kubelet,
            AddressSource::Interfaces
        ]
    );
    assert_eq!(c.interfaces.ignore, ["eth9", "wg*"]);
    assert_eq!(
        c.interfaces
            .rules
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "192.168.0.0/16 -> InternalIP",
            "10.0.0.0/8 -> ignore",
            "0.0.0.0/0 -> ExternalIP"
        ]
    );
    assert_eq!(c.provided_node_ip, ProvidedNodeIpMode::Prefer);
    assert!(!c.require_internal_ip);
    assert!(c.prefer_ipv6);
    assert_eq!(
        c.extra_labels
            .get("example.com/managed")
            .map(String::as_str),
        Some("yes")
    );
    assert_eq!(c.inventory[0].instance_type, "gpu");
    assert_eq!(c.inventory[1].zone, "z7");
    assert_eq!(c.inventory[0].matcher.to_string(), "nameRegex gpu-[0-9]+");
    assert_eq!(
        c.inventory[1].matcher.to_string(),
        "selector {example.com/rack=r7}"
    );
}

#[test]
fn name_regex_matches_the_whole_name_only() {
    let c = Config::from_yaml("inventory:\n  - nameRegex: 'web-[0-9]'\n").unwrap();
    let m = &c.inventory[0].matcher;
    let none = BTreeMap::new();
    assert!(m.matches("web-1", &none));
    assert!(!m.matches("web-12", &none));
    assert!(!m.matches("xweb-1", &none));
}

#[test]
fn selector_needs_every_label() {
    let c =
        Config::from_yaml("inventory:\n  - selector: {matchLabels: {a: '1', b: '2'}}\n").unwrap();
    let m = &c.inventory[0].matcher;
    let labels = |l: &[(&str, &str)]| {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(m.matches("n", &labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
    assert!(!m.matches("n", &labels(&[("a", "1")])));
    assert!(!m.matches("n", &labels(&[("a", "1"), ("b", "3")])));
}

#[test]
fn unknown_keys_are_problems_with_their_path_and_line() {
    for (yaml, line, path) in [
        ("zone: a\nbogus: 1\n", 2, "bogus"),
        (
            "inventory:\n  - name: a\n    adresses: []\n",
            3,
            "inventory[0].adresses",
        ),
        (
            "inventory:\n  - selector: {matchExpressions: []}\n",
            2,
            "inventory[0].selector.matchExpressions",
        ),
        (
            "inventory:\n  - name: a\n    addresses: [{type: InternalIP, address: 10.0.0.1, extra: 1}]\n",
            3,
            "inventory[0].addresses[0].extra",
        ),
    ] {
        let got = problems(yaml);
        assert_eq!(got.len(), 1, "{yaml:?}: {got:?}");
        assert!(
            got[0].starts_with(&format!("{path}: unknown key (expected one of "))
                && got[0].ends_with(&format!("(line {line})")),
            "{yaml:?}: {got:?}"
        );
    }
    assert_eq!(
        problems("providerId: x\n"),
        [
            "providerId: unknown key (expected one of providerID, instanceType, zone, region, addressSources, providedNodeIP, requireInternalIP, preferIPv6, extraLabels, inventory, k3sAgentWait, interfaces); did you mean providerID? (line 1)"
        ]
    );
}

#[test]
fn wrong_types_and_bad_modes_are_problems_with_their_line() {
    for (yaml, expected) in [
        (
            "providedNodeIP: sometimes\n",
            r#"providedNodeIP: unknown mode "sometimes" (expected strict, prefer or ignore) (line 1)"#,
        ),
        (
            "requireInternalIP: maybe\n",
            r#"requireInternalIP: must be true or false, unquoted (found "maybe") (line 1)"#,
        ),
        (
            "inventory: {}\n",
            "inventory: expected a list, found a map (line 1)",
        ),
        (
            "zone: [a]\n",
            "zone: expected a string, found a list (line 1)",
        ),
        (
            "inventory:\n  - name: a\n    addresses: [{type: InternalIP}]\n",
            "inventory[0].addresses[0].address: missing: an address needs a type and an address (line 3)",
        ),
    ] {
        assert_eq!(problems(yaml), [expected], "{yaml:?}");
    }
}

#[test]
fn numbers_and_booleans_where_a_string_is_required_are_refused() {
    let yaml = "zone: 7\nregion: true\ninstanceType: 1.5\nproviderID: 12\naddressSources: [kubelet, 3]\ninventory:\n  - name: 42\n    addresses: [{type: Hostname, address: 7}]\n";
    assert_eq!(
        problems(yaml),
        [
            r#"zone: 7 is not a string: quote it ("7") (line 1)"#,
            r#"region: true is not a string: quote it ("true") (line 2)"#,
            r#"instanceType: 1.5 is not a string: quote it ("1.5") (line 3)"#,
            r#"providerID: 12 is not a string: quote it ("12") (line 4)"#,
            r#"addressSources[1]: 3 is not a string: quote it ("3") (line 5)"#,
            r#"inventory[0].name: 42 is not a string: quote it ("42") (line 7)"#,
            r#"inventory[0].addresses[0].address: 7 is not a string: quote it ("7") (line 8)"#,
        ]
    );
    let c = Config::from_yaml("zone: \"7\"\ninventory:\n  - name: \"42\"\n").unwrap();
    assert_eq!(c.zone, "7");
    assert_eq!(c.inventory[0].matcher, NodeMatcher::Name("42".into()));
}

#[test]
fn one_run_reports_unknown_keys_wrong_types_duplicates_and_bad_values_together() {
    let yaml = "zone: 7\nbogus: 1\nregion: r\nregion: s\naddressSources: [dns]\ninventory:\n  - name: a\n    labels: {example.com/x: \"-\"}\n    colour: blue\n";
    let got = problems(yaml);
    let paths: Vec<&str> = got
        .iter()
        .map(|p| p.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        paths,
        [
            "zone",
            "bogus",
            "region",
            "addressSources[0]",
            "inventory[0].labels.\"example.com/x\"",
            "inventory[0].colour",
        ],
        "{got:#?}"
    );
}

#[test]
fn a_provider_id_template_must_tell_nodes_apart() {
    assert_eq!(
        problems("providerID: \"metal://rack1\"\n"),
        [
            r#"providerID: "metal://rack1" has no {node}: every node would get this same providerID, which can never be changed afterwards; add {node} (e.g. "metal://rack1{node}") (line 1)"#
        ]
    );
    let yaml = "inventory:\n  - nameRegex: \"gpu-.*\"\n    providerID: \"metal://gpu\"\n  - name: n1\n    providerID: \"metal://n1\"\n";
    let got = problems(yaml);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(r#"inventory[0].providerID: "metal://gpu" has no {node}"#),
        "{got:?}"
    );
    // One node by name may get a fixed providerID; "" writes none.
    Config::from_yaml(
        "providerID: \"\"\ninventory:\n  - name: n1\n    providerID: \"metal://n1\"\n",
    )
    .unwrap();
}

#[test]
fn every_problem_is_reported_with_its_key_path_and_line() {
    let yaml = r#"providerID: "k3s://{name}"
addressSources: [inventory, foo, kubelet, kubelet, node-name]
extraLabels:
  kubernetes.io/foo: x
  example.com/ok: "-bad-"
  "bad key!": v
inventory:
  - name: a
    nameRegex: b
  - nameRegex: "("
  - name: c
    addresses:
      - {type: InternalIP, address: 10.0.0.300}
      - {type: ExternalIP, address: "203.0.113.5/32"}
      - {type: PublicIP, address: 1.2.3.4}
      - {type: Hostname, address: "a b"}
    providerID: "x {node}"
    labels: {k8s.io/x: y}
  - {}
  - selector: {matchLabels: {"-x": y}}
"#;
    let got = problems(yaml);
    let expected = [
        r#"providerID: "k3s://{name}" has an unknown placeholder (only {node} is supported) (line 1)"#,
        r#"addressSources[1]: unknown source "foo" (expected one of inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet) (line 2)"#,
        r#"addressSources[3]: source "kubelet" is listed twice (line 2)"#,
        r#"addressSources[4]: "node-name" is the built-in Hostname fallback, not a configurable source (expected one of inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet) (line 2)"#,
        r#"extraLabels."kubernetes.io/foo": label key "kubernetes.io/foo": keys under kubernetes.io/ or k8s.io/ (and subdomains) are refused, except node-role.kubernetes.io/; use your own prefix, or the instanceType/zone/region settings (line 4)"#,
        r#"extraLabels."example.com/ok": label value "-bad-" must be empty or 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric (line 5)"#,
        r#"extraLabels."bad key!": label key "bad key!": name part must be 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric (line 6)"#,
        r#"inventory[0]: exactly one of name, nameRegex, selector must be set (line 8)"#,
        r#"inventory[2].addresses[0].address: "10.0.0.300" is not a valid InternalIP (one IP address, no prefix length) (line 13)"#,
        r#"inventory[2].addresses[1].address: "203.0.113.5/32" is not a valid ExternalIP (one IP address, no prefix length) (line 14)"#,
        r#"inventory[2].addresses[2].type: unknown address type "PublicIP" (expected one of InternalIP, ExternalIP, InternalDNS, ExternalDNS, Hostname) (line 15)"#,
        r#"inventory[2].addresses[3].address: "a b" is not a valid Hostname (empty, or contains whitespace or commas) (line 16)"#,
        r#"inventory[2].providerID: "x {node}" must not contain whitespace (line 17)"#,
        r#"inventory[2].labels."k8s.io/x": label key "k8s.io/x": keys under kubernetes.io/ or k8s.io/ (and subdomains) are refused, except node-role.kubernetes.io/; use your own prefix, or the instanceType/zone/region settings (line 18)"#,
        r#"inventory[3]: exactly one of name, nameRegex, selector must be set (line 19)"#,
        r#"inventory[4].selector.matchLabels."-x": label key "-x": name part must be 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric (line 20)"#,
    ];
    let regex_problem = got
        .iter()
        .find(|p| p.starts_with("inventory[1].nameRegex: invalid regex \"(\": "));
    assert!(
        regex_problem.is_some_and(|p| p.contains("unclosed group")
            && !p.contains("^(?:")
            && p.ends_with("(line 10)")),
        "{got:#?}"
    );
    let rest: Vec<&String> = got
        .iter()
        .filter(|p| !p.starts_with("inventory[1]"))
        .collect();
    assert_eq!(rest, expected.iter().collect::<Vec<_>>(), "{got:#?}");
}

#[test]
fn empty_sections_read_as_empty() {
    let c = Config::from_yaml(
        "zone:\nextraLabels:\ninventory:\n  - name: a\n    addresses:\n    labels:\n    zone:\n",
    )
    .unwrap();
    assert!(c.extra_labels.is_empty());
    assert_eq!(c.zone, "");
    assert!(c.inventory[0].addresses.is_empty() && c.inventory[0].labels.is_empty());
    assert_eq!(
        Config::from_yaml("inventory:\n").unwrap(),
        Config::default()
    );
}

#[test]
fn instance_type_zone_and_region_must_be_label_values() {
    let yaml = "instanceType: \"bare metal\"\nzone: z1\nregion: \"-r\"\ninventory:\n  - name: a\n    zone: \"rack/7\"\n";
    let got = problems(yaml);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_starts_with(
        &got[0],
        "instanceType: label value \"bare metal\" must be empty or",
    );
    assert!(
        got[0].ends_with("(it becomes a label value) (line 1)"),
        "{}",
        got[0]
    );
    assert_starts_with(&got[1], "region: label value \"-r\"");
    assert_starts_with(&got[2], "inventory[0].zone: label value \"rack/7\"");
}

#[test]
fn booleans_must_be_unquoted_true_or_false() {
    for (yaml, key, found) in [
        (
            "requireInternalIP: \"yes\"\n",
            "requireInternalIP",
            "\"yes\"",
        ),
        (
            "requireInternalIP: 'false'\n",
            "requireInternalIP",
            "\"false\"",
        ),
        ("preferIPv6: \"true\"\n", "preferIPv6", "\"true\""),
        ("preferIPv6: yes\n", "preferIPv6", "\"yes\""),
        ("preferIPv6: on\n", "preferIPv6", "\"on\""),
        ("zone: z\npreferIPv6: 1\n", "preferIPv6", "1"),
    ] {
        let line = yaml.lines().count();
        assert_eq!(
            problems(yaml),
            [format!(
                "{key}: must be true or false, unquoted (found {found}) (line {line})"
            )],
            "{yaml:?}"
        );
    }
    let c = Config::from_yaml("requireInternalIP: false\npreferIPv6: True\n").unwrap();
    assert!(!c.require_internal_ip && c.prefer_ipv6);
    let c = Config::from_yaml("requireInternalIP:\npreferIPv6: ~\n").unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn label_values_must_be_strings() {
    let yaml = "extraLabels:\n  example.com/a: true\n  example.com/b: 7\n  example.com/ok: \"true\"\ninventory:\n  - selector: {matchLabels: {example.com/rack: 7}}\n    labels:\n      example.com/c: null\n";
    assert_eq!(
        problems(yaml),
        vec![
            r#"extraLabels."example.com/a": label value true is not a string: quote it ("true") (line 2)"#,
            r#"extraLabels."example.com/b": label value 7 is not a string: quote it ("7") (line 3)"#,
            r#"inventory[0].selector.matchLabels."example.com/rack": label value 7 is not a string: quote it ("7") (line 6)"#,
            r#"inventory[0].labels."example.com/c": label value null is not a string: quote it ("null") (line 8)"#,
        ]
    );
    let c = Config::from_yaml("extraLabels: {example.com/ok: \"true\", example.com/yes: yes}\n")
        .unwrap();
    assert_eq!(c.extra_labels["example.com/ok"], "true");
    // YAML 1.2: a plain `yes` is text, not a boolean.
    assert_eq!(c.extra_labels["example.com/yes"], "yes");
}

#[test]
fn inventory_problems_point_at_the_key_line() {
    let yaml = "inventory:\n  - name: a\n    providerID: \"a b\"\n    instanceType: \"x y\"\n    zone: \"-z\"\n    region: \"r/1\"\n  - nameRegex: \"(\"\n  - name: \"\"\n";
    let got = problems(yaml);
    let lines: Vec<(&str, &str)> = got
        .iter()
        .map(|p| {
            let path = p.split(':').next().unwrap_or_default();
            let line = p.rsplit("(line ").next().unwrap_or_default();
            (path, line)
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("inventory[0].providerID", "3)"),
            ("inventory[0].instanceType", "4)"),
            ("inventory[0].zone", "5)"),
            ("inventory[0].region", "6)"),
            ("inventory[1].nameRegex", "7)"),
            ("inventory[2].name", "8)"),
        ],
        "{got:#?}"
    );
}

#[test]
fn two_entries_with_the_same_name_are_refused() {
    let yaml = "inventory:\n  - name: a\n    zone: z1\n  - name: b\n  - zone: z2\n    name: a\n";
    assert_eq!(
        problems(yaml),
        vec![
            r#"inventory[2].name: "a" is already the name of inventory[0]; this entry can never match (the first matching entry wins): merge the two (line 6)"#
        ]
    );
}

#[test]
fn duplicate_keys_are_refused_in_plain_words() {
    assert_eq!(
        problems("zone: a\nzone: b\n"),
        [
            "zone: is set twice (first on line 1); a key may appear only once: delete one of them (line 2)"
        ]
    );
    assert_eq!(
        problems("extraLabels:\n  example.com/a: x\n  example.com/a: y\n"),
        [
            r#"extraLabels."example.com/a": is set twice (first on line 2); a key may appear only once: delete one of them (line 3)"#
        ]
    );
}

#[test]
fn empty_address_sources_need_require_internal_ip_off() {
    assert_eq!(
        problems("addressSources: []\n"),
        vec![
            "addressSources: an empty list can give no node an InternalIP while requireInternalIP is true; list at least one source (line 1)"
        ]
    );
    let c = Config::from_yaml("addressSources: []\nrequireInternalIP: false\n").unwrap();
    assert!(c.address_sources.is_empty());
}

#[test]
fn empty_name_is_refused() {
    assert_eq!(
        problems("inventory:\n  - name: ''\n"),
        vec!["inventory[0].name: must not be empty (line 2)"]
    );
}

#[test]
fn invalid_config_error_lists_every_problem() {
    let err = Config::from_yaml("addressSources: [a, b]\n").unwrap_err();
    let text = err.to_string();
    assert_starts_with(
        &text,
        "invalid config:\n  addressSources[0]: unknown source \"a\"",
    );
    assert!(
        text.contains("\n  addressSources[1]: unknown source \"b\""),
        "{text}"
    );
}

#[test]
fn load_reads_a_file_and_names_it_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "zone: z\n").unwrap();
    assert_eq!(Config::load(&path).unwrap().zone, "z");
    let shown = path.display().to_string();
    std::fs::write(&path, "zone: z\nbogus: 1\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("invalid config in {shown}:\n  bogus: unknown key")),
        "{err}"
    );
    // YAML that does not parse: the snippet names the file, never "<input>".
    std::fs::write(&path, "zone: z\nregion: [a\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("invalid config in {shown}: ")),
        "{err}"
    );
    assert!(err.contains(&format!("--> {shown}:")), "{err}");
    assert!(!err.contains("<input>"), "{err}");
    let err = Config::from_yaml("region: [a\n").unwrap_err().to_string();
    assert!(err.contains("--> config.yaml:"), "{err}");
    let missing = dir.path().join("missing.yaml");
    let err = Config::load(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot read config file ") && err.contains("missing.yaml"),
        "{err}"
    );
}

#[test]
fn an_embedded_config_reports_lines_of_the_file_it_is_in() {
    let err = Config::parse("zone: z\nbogus: 1\n", Some(Path::new("m.yaml")), 40)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid config in m.yaml:\n  bogus: unknown key"),
        "{err}"
    );
    assert!(err.ends_with("(line 42)"), "{err}");
    match Config::parse("zone: [a\n", Some(Path::new("m.yaml")), 40) {
        Err(ConfigError::Parse { line, message, .. }) => {
            assert!(line.is_some_and(|l| l > 40), "{line:?}");
            assert!(message.contains("m.yaml:4"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn provider_id_templates() {
    assert_eq!(check_provider_id_template("k3s://{node}"), Ok(()));
    assert_eq!(
        check_provider_id_template("metal://dc/{node}/{node}"),
        Ok(())
    );
    assert_eq!(check_provider_id_template(""), Ok(()));
    assert!(check_provider_id_template("a{b}").is_err());
    assert!(check_provider_id_template("a{node").is_err());
    assert!(check_has_node("k3s://n1").is_err());
    assert_eq!(check_has_node("k3s://{node}"), Ok(()));
    assert_eq!(expand_provider_id("k3s://{node}", "n1"), "k3s://n1");
}
