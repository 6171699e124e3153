//! Table tests of `resolve` as a whole: sources, combining, provided-node-ip modes,
//! providerID and labels, including the upstream `syncNode` scenarios.

use k8s_openapi::api::core::v1::Taint;

use super::*;
use crate::config::Config;
use crate::facts::is_relevant_annotation;
use crate::test_support::{node_addresses, string_map, uninitialized};

fn node(name: &str) -> NodeView {
    NodeView {
        name: name.to_string(),
        resource_version: "1".to_string(),
        taints: vec![uninitialized()],
        ..NodeView::default()
    }
}

fn ann(mut n: NodeView, key: &str, value: &str) -> NodeView {
    n.annotations.insert(key.to_string(), value.to_string());
    n
}

fn label(mut n: NodeView, key: &str, value: &str) -> NodeView {
    n.labels.insert(key.to_string(), value.to_string());
    n
}

fn kubelet(mut n: NodeView, list: &[(&str, &str)]) -> NodeView {
    n.addresses = node_addresses(list);
    n
}

fn cfg(yaml: &str) -> Config {
    match Config::from_yaml(yaml) {
        Ok(c) => c,
        Err(e) => panic!("test config must be valid: {e}"),
    }
}

/// The addresses as `explain` lists them, `TYPE ADDRESS (SOURCE)` joined by `, `, so an
/// expectation is one line.
fn addrs(r: &Resolution) -> String {
    shown(&r.addresses)
}

fn shown(list: &[ResolvedAddress]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The errors as the sentences Events and `explain` show.
fn errors(r: &Resolution) -> Vec<String> {
    r.errors.iter().map(ToString::to_string).collect()
}

/// The warnings as `explain` shows them.
fn warnings(r: &Resolution) -> Vec<String> {
    r.warnings.iter().map(ToString::to_string).collect()
}

fn label_values(r: &Resolution) -> Vec<(&str, &str)> {
    r.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.value.as_str()))
        .collect()
}

const K3S_ARGS: &str = r#"["agent","--node-ip","10.0.0.5,fd00::5","--node-external-ip","203.0.113.5","--kubelet-arg","cloud-provider=external"]"#;

#[test]
fn k3s_agent_with_node_args_initialises_like_the_embedded_ccm() {
    let n = kubelet(
        ann(node("n1"), node_args::NODE_ARGS, K3S_ARGS),
        &[("Hostname", "n1")],
    );
    let r = resolve(&n, &Config::default());
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.5 (k3s-node-args), InternalIP fd00::5 (k3s-node-args), ExternalIP 203.0.113.5 (k3s-node-args), Hostname n1 (kubelet)"
    );
    assert_eq!(r.provider_id.value, "k3s://n1");
    assert!(r.set_provider_id);
    assert_eq!(
        label_values(&r),
        vec![
            ("beta.kubernetes.io/instance-type", "k3s"),
            ("node.kubernetes.io/instance-type", "k3s"),
        ]
    );
    assert!(r.errors.is_empty() && r.warnings.is_empty(), "{r:?}");
    assert!(r.tainted && r.would_initialize());
}

#[test]
fn no_internal_ip_keeps_the_node_uninitialised_with_an_actionable_error() {
    let n = kubelet(node("n1"), &[("Hostname", "n1")]);
    let r = resolve(&n, &Config::default());
    assert_eq!(
        errors(&r),
        vec![
            "no InternalIP for node n1: set --node-ip on the k3s agent, or annotate bare-ccm.io/internal-ip=<ip>, or add an inventory entry with an InternalIP"
        ]
    );
    assert!(!r.would_initialize());
    // The Hostname is still resolved, for `explain`.
    assert_eq!(addrs(&r), "Hostname n1 (kubelet)");
}

#[test]
fn without_require_internal_ip_a_node_with_no_address_initialises_and_keeps_its_list() {
    let r = resolve(&node("n1"), &cfg("requireInternalIP: false\n"));
    assert!(r.errors.is_empty());
    assert_eq!(addrs(&r), "");
    assert!(r.would_initialize());
}

#[test]
fn hostname_fallback_never_turns_an_empty_list_into_a_write() {
    // Reference §2.7: an empty list leaves the kubelet's addresses alone; appending the
    // kubelet's Hostname first would replace [InternalIP, Hostname] by [Hostname].
    let n = kubelet(node("n1"), &[("InternalIP", "10.0.0.9"), ("Hostname", "h")]);
    let r = resolve(
        &n,
        &cfg("addressSources: [annotations]\nrequireInternalIP: false\n"),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(addrs(&r), "");
    assert_eq!(crate::patch::status_addresses_patch(&n, &r), None);
    // Once a source gives something, the Hostname is completed as before.
    let n = ann(n, "bare-ccm.io/external-ip", "203.0.113.9");
    let r = resolve(
        &n,
        &cfg("addressSources: [annotations]\nrequireInternalIP: false\n"),
    );
    assert_eq!(
        addrs(&r),
        "ExternalIP 203.0.113.9 (annotations), Hostname h (kubelet)"
    );
}

/// An initialised node whose `status.addresses` hold what bare-ccm wrote earlier.
fn initialised(mut n: NodeView, status: &[(&str, &str)]) -> NodeView {
    n.taints.clear();
    n.provider_id = "k3s://n1".to_string();
    kubelet(n, status)
}

#[test]
fn kubelet_source_reads_only_what_a_kubelet_reports() {
    // kubernetes `pkg/kubelet/nodestatus/setters.go` (NodeAddress): without a cloud
    // provider, or in external mode, the kubelet reports only InternalIP and Hostname.
    let written = [
        ("InternalIP", "10.0.0.5"),
        ("ExternalIP", "203.0.113.5"),
        ("InternalDNS", "n1.lan"),
        ("ExternalDNS", "n1.example.com"),
        ("Hostname", "n1"),
    ];
    let cases: Vec<(&str, NodeView, &str)> = vec![
        (
            "--node-external-ip removed from node-args: the stale ExternalIP goes",
            ann(
                initialised(node("n1"), &written),
                node_args::NODE_ARGS,
                r#"["agent","--node-ip","10.0.0.5"]"#,
            ),
            "InternalIP 10.0.0.5 (k3s-node-args), Hostname n1 (kubelet)",
        ),
        (
            "DNS annotations removed: the stale DNS names go",
            ann(
                initialised(node("n1"), &written),
                "bare-ccm.io/internal-ip",
                "10.0.0.5",
            ),
            "InternalIP 10.0.0.5 (annotations), Hostname n1 (kubelet)",
        ),
        (
            "an InternalIP only the kubelet knows is kept",
            initialised(node("n1"), &written),
            "InternalIP 10.0.0.5 (kubelet), Hostname n1 (kubelet)",
        ),
    ];
    for (name, n, expected) in cases {
        let r = resolve(&n, &Config::default());
        assert_eq!(addrs(&r), expected, "{name}");
        assert!(
            r.errors.is_empty() && r.warnings.is_empty(),
            "{name}: {r:?}"
        );
        let patch = crate::patch::refresh_patch(&n, &r);
        assert_eq!(
            patch.map(|p| p["status"]["addresses"].clone()),
            Some(serde_json::json!([
                {"type": "InternalIP", "address": "10.0.0.5"},
                {"type": "Hostname", "address": "n1"},
            ])),
            "{name}"
        );
    }
}

#[test]
fn hostname_falls_back_to_the_kubelet_even_when_kubelet_is_not_a_source() {
    let n = kubelet(
        ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.5"),
        &[("InternalIP", "10.9.9.9"), ("Hostname", "host-1")],
    );
    let r = resolve(&n, &cfg("addressSources: [annotations]\n"));
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.5 (annotations), Hostname host-1 (kubelet)"
    );
}

#[test]
fn hostname_from_a_source_wins_over_the_fallback() {
    let n = kubelet(
        ann(
            ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.5"),
            "bare-ccm.io/hostname",
            "custom",
        ),
        &[("Hostname", "host-1")],
    );
    let r = resolve(&n, &Config::default());
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.5 (annotations), Hostname custom (annotations)"
    );
}

#[test]
fn each_source_alone_supplies_addresses() {
    let inv = "inventory:\n  - name: n1\n    addresses: [{type: InternalIP, address: 10.1.0.1}, {type: InternalDNS, address: n1.lan}]\n";
    let cases: Vec<(&str, String, NodeView, &str)> = vec![
        (
            "inventory",
            format!("addressSources: [inventory]\n{inv}"),
            node("n1"),
            "InternalIP 10.1.0.1 (inventory), InternalDNS n1.lan (inventory), Hostname n1 (node-name)",
        ),
        (
            "annotations",
            "addressSources: [annotations]\n".into(),
            ann(node("n1"), "bare-ccm.io/internal-ip", "10.2.0.9"),
            "InternalIP 10.2.0.9 (annotations), Hostname n1 (node-name)",
        ),
        (
            "k3s-annotations",
            "addressSources: [k3s-annotations]\n".into(),
            ann(
                ann(node("n1"), "k3s.io/internal-ip", "10.2.0.1"),
                "k3s.io/external-ip",
                "198.51.100.2",
            ),
            "InternalIP 10.2.0.1 (k3s-annotations), ExternalIP 198.51.100.2 (k3s-annotations), Hostname n1 (node-name)",
        ),
        (
            "k3s-node-args",
            "addressSources: [k3s-node-args]\n".into(),
            ann(
                node("n1"),
                node_args::NODE_ARGS,
                r#"["agent","-i","10.3.0.1"]"#,
            ),
            "InternalIP 10.3.0.1 (k3s-node-args), Hostname n1 (node-name)",
        ),
        (
            "provided-node-ip",
            "addressSources: [provided-node-ip]\n".into(),
            ann(
                node("n1"),
                provided_node_ip::PROVIDED_NODE_IP,
                "10.4.0.1,fd00::4",
            ),
            "InternalIP 10.4.0.1 (provided-node-ip), InternalIP fd00::4 (provided-node-ip), Hostname n1 (node-name)",
        ),
        (
            "kubelet",
            "addressSources: [kubelet]\n".into(),
            kubelet(
                node("n1"),
                &[("InternalIP", "10.5.0.1"), ("Hostname", "h1")],
            ),
            "InternalIP 10.5.0.1 (kubelet), Hostname h1 (kubelet)",
        ),
    ];
    for (name, yaml, n, expected) in cases {
        let r = resolve(&n, &cfg(&yaml));
        assert_eq!(addrs(&r), expected, "{name}");
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
    }
}

#[test]
fn sources_not_listed_are_not_read() {
    let n = kubelet(
        ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.5"),
        &[("InternalIP", "10.0.0.9")],
    );
    let r = resolve(&n, &cfg("addressSources: [kubelet]\n"));
    assert_eq!(shown(&r.addresses[..1]), "InternalIP 10.0.0.9 (kubelet)");
}

#[test]
fn priority_is_per_type_and_follows_the_configured_order() {
    let n = kubelet(
        ann(
            ann(node("n1"), node_args::NODE_ARGS, K3S_ARGS),
            "bare-ccm.io/external-ip",
            "198.51.100.7",
        ),
        &[("InternalIP", "10.0.0.9"), ("Hostname", "n1")],
    );
    // Default order: annotations give ExternalIP, node-args give InternalIP.
    let r = resolve(&n, &Config::default());
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.5 (k3s-node-args), InternalIP fd00::5 (k3s-node-args), ExternalIP 198.51.100.7 (annotations), Hostname n1 (kubelet)"
    );
    // Kubelet first: its InternalIP wins; ExternalIP still from the next source that has one.
    let r = resolve(
        &n,
        &cfg("addressSources: [kubelet, k3s-node-args, annotations]\nprovidedNodeIP: ignore\n"),
    );
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.9 (kubelet), ExternalIP 203.0.113.5 (k3s-node-args), Hostname n1 (kubelet)"
    );
}

#[test]
fn prefer_ipv6_puts_ipv6_first_in_every_ip_type() {
    let n = ann(
        node("n1"),
        node_args::NODE_ARGS,
        r#"["agent","--node-ip","10.0.0.5,fd00::5","--node-external-ip","203.0.113.5,2001:db8::5"]"#,
    );
    let r = resolve(&n, &cfg("preferIPv6: true\n"));
    assert_eq!(
        addrs(&r),
        "InternalIP fd00::5 (k3s-node-args), InternalIP 10.0.0.5 (k3s-node-args), ExternalIP 2001:db8::5 (k3s-node-args), ExternalIP 203.0.113.5 (k3s-node-args), Hostname n1 (node-name)"
    );
    let r = resolve(&n, &Config::default());
    assert_eq!(r.addresses[0].address, "10.0.0.5");
}

#[test]
fn dual_stack_annotation_written_as_one_value_keeps_both_families() {
    let n = ann(node("n1"), "k3s.io/internal-ip", "fd00::5,10.0.0.5");
    let r = resolve(&n, &Config::default());
    assert_eq!(
        shown(&r.addresses[..2]),
        "InternalIP 10.0.0.5 (k3s-annotations), InternalIP fd00::5 (k3s-annotations)"
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

/// Issue 11 item 2: an older k3s leaves its `k3s.io/*-ip` annotations on the node once the
/// embedded CCM is disabled; after a re-IP they name the old address. node-args (rewritten
/// at every agent start) must win, or strict mode refuses the node for good.
#[test]
fn stale_k3s_address_annotations_lose_to_node_args_and_to_our_annotations() {
    let mut reip = node("n1");
    reip.annotations = string_map(&[
        ("k3s.io/internal-ip", "10.0.0.5"),
        ("k3s.io/external-ip", "203.0.113.5"),
        (node_args::NODE_ARGS, r#"["agent","--node-ip","10.0.1.5"]"#),
        (provided_node_ip::PROVIDED_NODE_IP, "10.0.1.5"),
    ]);
    let cases: Vec<(&str, NodeView, &str, &str)> = vec![
        (
            "node-args outranks the stale k3s.io/internal-ip",
            reip.clone(),
            "",
            // No other source has an ExternalIP: the k3s.io key still fills the gap.
            "InternalIP 10.0.1.5 (k3s-node-args), ExternalIP 203.0.113.5 (k3s-annotations), Hostname n1 (node-name)",
        ),
        (
            "a config written before k3s-annotations existed ranks them the same way",
            reip.clone(),
            "addressSources: [inventory, annotations, k3s-node-args, provided-node-ip, kubelet]\n",
            "InternalIP 10.0.1.5 (k3s-node-args), ExternalIP 203.0.113.5 (k3s-annotations), Hostname n1 (node-name)",
        ),
        (
            "our own annotation stays first",
            ann(reip.clone(), "bare-ccm.io/external-ip", "198.51.100.5"),
            "",
            "InternalIP 10.0.1.5 (k3s-node-args), ExternalIP 198.51.100.5 (annotations), Hostname n1 (node-name)",
        ),
        (
            "listing k3s-annotations first restores the old rank",
            ann(reip.clone(), provided_node_ip::PROVIDED_NODE_IP, "10.0.0.5"),
            "addressSources: [annotations, k3s-annotations, k3s-node-args]\n",
            "InternalIP 10.0.0.5 (k3s-annotations), ExternalIP 203.0.113.5 (k3s-annotations), Hostname n1 (node-name)",
        ),
    ];
    for (name, n, yaml, expected) in cases {
        let r = resolve(&n, &cfg(yaml));
        assert_eq!(addrs(&r), expected, "{name}");
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
        assert!(r.would_initialize(), "{name}");
    }
}

#[test]
fn provided_node_ip_filters_the_combined_list_in_strict_mode() {
    let n = ann(
        ann(
            node("n1"),
            node_args::NODE_ARGS,
            r#"["agent","--node-ip","10.0.0.5","--node-ip","10.0.0.6"]"#,
        ),
        provided_node_ip::PROVIDED_NODE_IP,
        "10.0.0.6",
    );
    let r = resolve(&n, &Config::default());
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.6 (k3s-node-args), Hostname n1 (node-name)"
    );
    assert!(r.errors.is_empty());
}

fn mismatching_node() -> NodeView {
    ann(
        ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.5"),
        provided_node_ip::PROVIDED_NODE_IP,
        "10.0.0.9",
    )
}

#[test]
fn provided_node_ip_mismatch_keeps_taint_in_strict_mode() {
    let r = resolve(&mismatching_node(), &Config::default());
    assert_eq!(
        errors(&r),
        vec![
            "provided-node-ip 10.0.0.9 (alpha.kubernetes.io/provided-node-ip) matches none of the resolved addresses [InternalIP 10.0.0.5 (annotations)]: fix the kubelet --node-ip or add the address via --node-ip on the k3s agent, annotation bare-ccm.io/internal-ip, or the inventory (or set providedNodeIP: prefer in the config)"
        ]
    );
    assert!(!r.would_initialize());
}

#[test]
fn provided_node_ip_mismatch_is_a_warning_in_prefer_mode() {
    let r = resolve(&mismatching_node(), &cfg("providedNodeIP: prefer\n"));
    assert!(r.errors.is_empty());
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0].to_string().contains("left unfiltered"),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        shown(&r.addresses[..1]),
        "InternalIP 10.0.0.5 (annotations)"
    );
    assert!(r.would_initialize());
}

#[test]
fn provided_node_ip_is_not_consulted_in_ignore_mode() {
    let r = resolve(&mismatching_node(), &cfg("providedNodeIP: ignore\n"));
    assert!(r.errors.is_empty() && r.warnings.is_empty());
    assert_eq!(
        shown(&r.addresses[..1]),
        "InternalIP 10.0.0.5 (annotations)"
    );
}

#[test]
fn malformed_provided_node_ip_is_an_error_in_strict_mode() {
    for (value, reason) in [
        (
            "10.0.0.5,10.0.0.6",
            "must contain either a single IP or a dual-stack pair of IPs",
        ),
        (
            "10.0.0.5,fd00::5,10.0.0.7",
            "must contain either a single IP or a dual-stack pair of IPs",
        ),
        (
            "::,10.0.0.5",
            "dual-stack node IP cannot include '0.0.0.0' or '::'",
        ),
        (
            "10.0.0.5;fd00::5",
            "could not parse \"10.0.0.5;fd00::5\" as an IP address",
        ),
    ] {
        let n = ann(
            ann(
                node("n1"),
                "bare-ccm.io/internal-ip",
                "10.0.0.5,10.0.0.6,fd00::5",
            ),
            provided_node_ip::PROVIDED_NODE_IP,
            value,
        );
        let r = resolve(&n, &cfg("addressSources: [annotations]\n"));
        assert_eq!(r.errors.len(), 1, "{value}: {r:?}");
        assert!(
            r.errors[0].to_string().starts_with(&format!("provided-node-ip {value:?} (alpha.kubernetes.io/provided-node-ip) is invalid: {reason}")),
            "{value}: {}",
            r.errors[0]
        );
    }
}

#[test]
fn invalid_inputs_are_skipped_with_warnings_never_accepted() {
    let n = kubelet(
        ann(
            ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.x"),
            node_args::NODE_ARGS,
            "[\"agent\", \"--node-ip\"",
        ),
        &[
            ("InternalIP", "not-an-ip"),
            ("InternalIP", "10.0.0.7"),
            ("Bogus", "x"),
        ],
    );
    let r = resolve(&n, &Config::default());
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.7 (kubelet), Hostname n1 (node-name)"
    );
    assert_eq!(r.warnings.len(), 4, "{:#?}", r.warnings);
    assert!(
        r.warnings[0].to_string().contains("\"10.0.0.x\"")
            && r.warnings[0]
                .to_string()
                .contains("bare-ccm.io/internal-ip")
    );
    assert!(
        r.warnings[1].to_string().contains(node_args::NODE_ARGS)
            && r.warnings[1].to_string().contains("JSON")
    );
    assert!(r.warnings[2].to_string().contains("\"not-an-ip\""));
    assert!(r.warnings[3].to_string().contains("\"Bogus\""));
}

#[test]
fn inventory_first_match_supplies_addresses_and_overrides() {
    let c = cfg(r#"
zone: default-zone
extraLabels: {example.com/cluster: c1}
inventory:
  - nameRegex: "db-[0-9]+"
    addresses: [{type: InternalIP, address: 10.7.0.1}, {type: ExternalIP, address: 203.0.113.7}]
    providerID: "metal://{node}"
    instanceType: big
    zone: z1
    region: r1
    labels: {example.com/role: db, example.com/cluster: override}
  - nameRegex: ".*"
    instanceType: never-used
"#);
    let r = resolve(&kubelet(node("db-1"), &[("Hostname", "db-1")]), &c);
    assert_eq!(
        addrs(&r),
        "InternalIP 10.7.0.1 (inventory), ExternalIP 203.0.113.7 (inventory), Hostname db-1 (kubelet)"
    );
    assert_eq!(r.provider_id.value, "metal://db-1");
    assert!(
        r.provider_id
            .why
            .starts_with("inventory[0] (nameRegex db-[0-9]+)"),
        "{}",
        r.provider_id.why
    );
    assert_eq!(
        label_values(&r),
        vec![
            ("beta.kubernetes.io/instance-type", "big"),
            ("example.com/cluster", "override"),
            ("example.com/role", "db"),
            ("failure-domain.beta.kubernetes.io/region", "r1"),
            ("failure-domain.beta.kubernetes.io/zone", "z1"),
            ("node.kubernetes.io/instance-type", "big"),
            ("topology.kubernetes.io/region", "r1"),
            ("topology.kubernetes.io/zone", "z1"),
        ]
    );
    assert_eq!(
        r.labels["example.com/cluster"].why,
        "inventory[0] (nameRegex db-[0-9]+) labels"
    );

    // A node matching only the catch-all entry gets its instance type and the defaults.
    let r = resolve(
        &ann(node("web-1"), "bare-ccm.io/internal-ip", "10.0.0.1"),
        &c,
    );
    assert_eq!(
        r.labels["node.kubernetes.io/instance-type"].value,
        "never-used"
    );
    assert_eq!(
        r.labels["topology.kubernetes.io/zone"].value,
        "default-zone"
    );
    assert_eq!(r.labels["topology.kubernetes.io/zone"].why, "config zone");
    assert_eq!(r.labels["example.com/cluster"].value, "c1");
    assert_eq!(r.provider_id.value, "k3s://web-1");
}

#[test]
fn inventory_selector_matches_on_node_labels() {
    let c =
        cfg("inventory:\n  - selector: {matchLabels: {example.com/rack: r7}}\n    zone: rack7\n");
    let n = label(
        ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.1"),
        "example.com/rack",
        "r7",
    );
    assert_eq!(
        resolve(&n, &c).labels["topology.kubernetes.io/zone"].value,
        "rack7"
    );
    let other = ann(node("n2"), "bare-ccm.io/internal-ip", "10.0.0.2");
    assert!(
        !resolve(&other, &c)
            .labels
            .contains_key("topology.kubernetes.io/zone")
    );
}

// --- upstream syncNode scenarios: kubernetes/cloud-provider
// `controllers/node/node_controller_test.go` (`Test_syncNode`), with the cloud's answer
// played by an inventory entry ---

const UPSTREAM_INVENTORY: &str = "inventory:\n  - name: node0\n    addresses: [{type: InternalIP, address: 10.0.0.1}, {type: ExternalIP, address: 132.143.154.163}]\n";

fn upstream_node0(provided_ip: &str) -> NodeView {
    let mut n = kubelet(
        ann(
            node("node0"),
            provided_node_ip::PROVIDED_NODE_IP,
            provided_ip,
        ),
        &[("Hostname", "node0.cloud.internal")],
    );
    n.provider_id = "node0.aws.12345".to_string();
    n
}

#[test]
fn upstream_provided_node_ip_address_scenario() {
    let r = resolve(&upstream_node0("10.0.0.1"), &cfg(UPSTREAM_INVENTORY));
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.1 (inventory), ExternalIP 132.143.154.163 (inventory), Hostname node0.cloud.internal (kubelet)"
    );
    assert_eq!(r.provider_id.value, "node0.aws.12345");
    assert!(!r.set_provider_id);
    assert!(r.would_initialize(), "{:?}", r.errors);
}

#[test]
fn upstream_provided_node_ip_address_is_not_valid_scenario() {
    let r = resolve(&upstream_node0("invalid-ip"), &cfg(UPSTREAM_INVENTORY));
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(
        r.errors[0].to_string().contains("\"invalid-ip\""),
        "{}",
        r.errors[0]
    );
    assert!(!r.would_initialize());
}

#[test]
fn existing_provider_id_is_kept() {
    let mut n = ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.1");
    n.provider_id = "k3s://n1-original".to_string();
    let r = resolve(&n, &cfg("providerID: \"metal://{node}\"\n"));
    assert_eq!(r.provider_id.value, "k3s://n1-original");
    assert!(!r.set_provider_id);
    assert!(r.provider_id.why.contains("never changed"));
}

#[test]
fn empty_provider_id_template_sets_none() {
    let r = resolve(
        &ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.1"),
        &cfg("providerID: \"\"\n"),
    );
    assert!(!r.set_provider_id);
    assert_eq!(r.provider_id.value, "");
}

#[test]
fn untainted_node_is_not_initialised() {
    let mut n = ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.1");
    n.taints.clear();
    let r = resolve(&n, &Config::default());
    assert!(!r.tainted);
    assert!(!r.would_initialize());
}

#[test]
fn taint_is_matched_by_key_whatever_its_value_and_effect() {
    let mut n = ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.1");
    n.taints = vec![Taint {
        key: UNINITIALIZED_TAINT.to_string(),
        value: None,
        effect: "NoExecute".to_string(),
        time_added: None,
    }];
    assert!(resolve(&n, &Config::default()).tainted);
}

#[test]
fn existing_labels_are_never_overwritten_and_pairs_are_mirrored() {
    let mut n = ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.1");
    n.labels = string_map(&[
        ("node.kubernetes.io/instance-type", "metal-xl"),
        ("failure-domain.beta.kubernetes.io/zone", "old-zone"),
        ("example.com/team", "blue"),
    ]);
    let c = cfg("zone: z1\nregion: r1\nextraLabels: {example.com/team: red, example.com/new: x}\n");
    let r = resolve(&n, &c);
    assert_eq!(
        label_values(&r),
        vec![
            ("beta.kubernetes.io/instance-type", "metal-xl"),
            ("example.com/new", "x"),
            ("failure-domain.beta.kubernetes.io/region", "r1"),
            ("topology.kubernetes.io/region", "r1"),
            ("topology.kubernetes.io/zone", "old-zone"),
        ]
    );
    assert_eq!(
        r.labels["beta.kubernetes.io/instance-type"].why,
        "mirrored from existing label node.kubernetes.io/instance-type"
    );
    assert_eq!(
        r.labels["topology.kubernetes.io/zone"].why,
        "mirrored from existing label failure-domain.beta.kubernetes.io/zone"
    );
    assert_eq!(
        warnings(&r),
        vec![
            "label node.kubernetes.io/instance-type=metal-xl already on the node is kept; config instanceType wants \"k3s\"",
            "label example.com/team=blue already on the node is kept; config extraLabels wants \"red\"",
        ]
    );
}

#[test]
fn kubernetes_io_extra_labels_are_refused_at_load() {
    let err =
        Config::from_yaml("extraLabels: {node.kubernetes.io/worker: \"true\"}\n").unwrap_err();
    assert!(
        err.to_string().contains("extraLabels.\"node.kubernetes.io/worker\": label key \"node.kubernetes.io/worker\": keys under kubernetes.io/ or k8s.io/"),
        "{err}"
    );
}

#[test]
fn empty_instance_type_writes_no_instance_type_labels() {
    let r = resolve(
        &ann(node("n1"), "bare-ccm.io/internal-ip", "10.0.0.1"),
        &cfg("instanceType: \"\"\n"),
    );
    assert!(r.labels.is_empty(), "{:?}", r.labels);
}

#[test]
fn only_resolver_inputs_are_relevant_annotations() {
    for key in [
        "k3s.io/node-args",
        "alpha.kubernetes.io/provided-node-ip",
        "k3s.io/internal-ip",
        "bare-ccm.io/hostname",
    ] {
        assert!(is_relevant_annotation(key), "{key}");
    }
    for key in [
        "k3s.io/node-config-hash",
        "node.alpha.kubernetes.io/ttl",
        "bare-ccm.io/other",
    ] {
        assert!(!is_relevant_annotation(key), "{key}");
    }
}

#[test]
fn address_source_names_round_trip() {
    for src in AddressSource::CONFIGURABLE
        .into_iter()
        .chain([AddressSource::NodeName])
    {
        assert_eq!(src.as_str().parse::<AddressSource>(), Ok(src));
    }
    assert_eq!(
        "foo".parse::<AddressSource>().unwrap_err().to_string(),
        "unknown source \"foo\" (expected one of inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet)"
    );
}

/// Issue 14 item 4: a node-role label from the config is added like any extra label, and
/// never overwrites the one k3s gives its servers.
#[test]
fn node_role_labels_are_added_and_never_overwritten() {
    let config = cfg(
        "extraLabels:\n  node-role.kubernetes.io/worker: \"true\"\n  node-role.kubernetes.io/control-plane: \"\"\ninstanceType: \"\"\n",
    );
    let r = resolve(&node("n1"), &config);
    assert_eq!(
        label_values(&r),
        vec![
            ("node-role.kubernetes.io/control-plane", ""),
            ("node-role.kubernetes.io/worker", "true"),
        ]
    );
    let server = label(node("s1"), "node-role.kubernetes.io/control-plane", "true");
    let r = resolve(&server, &config);
    assert_eq!(
        label_values(&r),
        vec![("node-role.kubernetes.io/worker", "true")]
    );
    assert_eq!(
        warnings(&r),
        [
            "label node-role.kubernetes.io/control-plane=true already on the node is kept; config extraLabels wants \"\""
        ]
    );
}

/// `bare-ccm.io/interfaces` of a two-NIC node: eth0 private (dual-stack), eth1 public,
/// plus what the default ignore list and the never-used classes drop.
const TWO_NICS: &str = r#"[{"name":"cni0","addresses":["10.42.0.1/24"]},{"name":"eth0","addresses":["10.0.0.5/24","fd00::5/64","fe80::5/64"]},{"name":"eth1","addresses":["203.0.113.5/24","2001:db8::5/64"]},{"name":"lo","addresses":["127.0.0.1/8","::1/128"]}]"#;

/// Issue 14 acceptance: the `interfaces` source with the combining rule and the
/// provided-node-ip rule after it.
#[test]
fn interfaces_source_table() {
    let args_v4 = r#"["agent","--node-ip","10.0.0.5"]"#;
    let with = |n: NodeView| ann(n, interfaces::INTERFACES, TWO_NICS);
    let cases: Vec<(&str, &str, NodeView, &str)> = vec![
        (
            "defaults: private InternalIP, public ExternalIP, both families; cni0, lo, link-local skipped",
            "",
            with(node("n1")),
            "InternalIP 10.0.0.5 (interfaces), InternalIP fd00::5 (interfaces), ExternalIP 203.0.113.5 (interfaces), ExternalIP 2001:db8::5 (interfaces), Hostname n1 (node-name)",
        ),
        (
            "k3s --node-ip only: node-args keeps InternalIP, the agent adds the ExternalIPs no flag gave",
            "",
            with(ann(node("n1"), node_args::NODE_ARGS, args_v4)),
            "InternalIP 10.0.0.5 (k3s-node-args), ExternalIP 203.0.113.5 (interfaces), ExternalIP 2001:db8::5 (interfaces), Hostname n1 (node-name)",
        ),
        (
            "k3s --node-external-ip wins over the agent for ExternalIP",
            "",
            with(ann(
                node("n1"),
                node_args::NODE_ARGS,
                r#"["agent","--node-ip","10.0.0.5","--node-external-ip","198.51.100.9"]"#,
            )),
            "InternalIP 10.0.0.5 (k3s-node-args), ExternalIP 198.51.100.9 (k3s-node-args), Hostname n1 (node-name)",
        ),
        (
            "provided-node-ip keeps the kubelet's InternalIP of the agent's two",
            "",
            with(ann(
                node("n1"),
                provided_node_ip::PROVIDED_NODE_IP,
                "10.0.0.5",
            )),
            "InternalIP 10.0.0.5 (interfaces), ExternalIP 203.0.113.5 (interfaces), ExternalIP 2001:db8::5 (interfaces), Hostname n1 (node-name)",
        ),
        (
            "a dual-stack provided-node-ip keeps both families",
            "",
            with(ann(
                node("n1"),
                provided_node_ip::PROVIDED_NODE_IP,
                "fd00::5,10.0.0.5",
            )),
            "InternalIP fd00::5 (interfaces), InternalIP 10.0.0.5 (interfaces), ExternalIP 203.0.113.5 (interfaces), ExternalIP 2001:db8::5 (interfaces), Hostname n1 (node-name)",
        ),
        (
            "custom rules: first match wins, unmatched addresses unused",
            "interfaces:\n  rules:\n    - {cidr: 10.0.0.0/8, type: InternalIP}\n    - {cidr: 203.0.113.0/24, type: ignore}\n    - {cidr: 0.0.0.0/0, type: ExternalIP}\n",
            with(node("n1")),
            "InternalIP 10.0.0.5 (interfaces), Hostname n1 (node-name)",
        ),
        (
            "a custom ignore list replaces the default one",
            "interfaces:\n  ignore: [eth1, lo]\n",
            with(node("n1")),
            // Annotation order: interfaces by name, so cni0's address comes first.
            "InternalIP 10.42.0.1 (interfaces), InternalIP 10.0.0.5 (interfaces), InternalIP fd00::5 (interfaces), Hostname n1 (node-name)",
        ),
        (
            "preferIPv6 orders the agent's addresses IPv6 first",
            "preferIPv6: true\n",
            with(node("n1")),
            "InternalIP fd00::5 (interfaces), InternalIP 10.0.0.5 (interfaces), ExternalIP 2001:db8::5 (interfaces), ExternalIP 203.0.113.5 (interfaces), Hostname n1 (node-name)",
        ),
        (
            "a list of only what operators wrote reads no interfaces",
            "addressSources: [inventory, annotations]\nrequireInternalIP: false\n",
            with(ann(node("n1"), "bare-ccm.io/external-ip", "198.51.100.1")),
            "ExternalIP 198.51.100.1 (annotations), Hostname n1 (node-name)",
        ),
        (
            "an annotation outranks the agent",
            "",
            with(ann(node("n1"), "bare-ccm.io/external-ip", "198.51.100.1")),
            "InternalIP 10.0.0.5 (interfaces), InternalIP fd00::5 (interfaces), ExternalIP 198.51.100.1 (annotations), Hostname n1 (node-name)",
        ),
    ];
    for (name, yaml, n, expected) in cases {
        let r = resolve(&n, &cfg(yaml));
        assert_eq!(addrs(&r), expected, "{name}");
        assert!(
            r.errors.is_empty() && r.warnings.is_empty(),
            "{name}: {r:?}"
        );
    }
}

#[test]
fn provided_node_ip_missing_from_the_interfaces_keeps_the_node_tainted_in_strict_mode() {
    // The kubelet's --node-ip sits on an interface the config ignores.
    let n = ann(
        ann(node("n1"), interfaces::INTERFACES, TWO_NICS),
        provided_node_ip::PROVIDED_NODE_IP,
        "10.42.0.1",
    );
    let r = resolve(&n, &Config::default());
    assert!(!r.would_initialize());
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(
        r.errors[0].to_string().starts_with("provided-node-ip 10.42.0.1 (alpha.kubernetes.io/provided-node-ip) matches none of the resolved addresses [InternalIP 10.0.0.5 (interfaces), InternalIP fd00::5 (interfaces)"),
        "{:?}",
        r.errors
    );
}

#[test]
fn an_unreadable_interfaces_annotation_warns_and_other_sources_still_serve() {
    let n = ann(
        ann(node("n1"), interfaces::INTERFACES, "eth0=10.0.0.5"),
        node_args::NODE_ARGS,
        r#"["agent","--node-ip","10.0.0.7"]"#,
    );
    let r = resolve(&n, &Config::default());
    assert_eq!(
        addrs(&r),
        "InternalIP 10.0.0.7 (k3s-node-args), Hostname n1 (node-name)"
    );
    assert!(r.would_initialize());
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0]
            .to_string()
            .starts_with("ignoring annotation bare-ccm.io/interfaces: not a JSON list"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn the_interfaces_annotation_is_an_input_of_the_node_view() {
    assert!(is_relevant_annotation(interfaces::INTERFACES));
}
