//! Tests of explain: the report's fields, patches, notes and text for each kind of node.

use k8s_openapi::api::core::v1::Taint;
use serde_json::json;

use super::*;
use crate::resolve::UNINITIALIZED_TAINT;
use crate::test_support::node_addresses;

fn node(tainted: bool, provider_id: &str, addresses: &[(&str, &str)]) -> NodeView {
    NodeView {
        name: "n1".into(),
        resource_version: "9".into(),
        provider_id: provider_id.into(),
        taints: if tainted {
            vec![Taint {
                key: UNINITIALIZED_TAINT.into(),
                effect: "NoSchedule".into(),
                ..Taint::default()
            }]
        } else {
            vec![]
        },
        addresses: node_addresses(addresses),
        ..NodeView::default()
    }
}

fn cfg(yaml: &str) -> Config {
    match Config::from_yaml(yaml) {
        Ok(c) => c,
        Err(e) => panic!("test config must be valid: {e}"),
    }
}

#[test]
fn nothing_resolved_means_no_status_write_and_says_why() {
    let view = node(true, "", &[("InternalIP", "10.0.0.9"), ("Hostname", "h")]);
    let report = ExplainReport::new(
        &view,
        &cfg("addressSources: [annotations]\nrequireInternalIP: false\n"),
    );
    assert!(report.would_initialize);
    assert!(report.addresses.is_empty());
    let targets: Vec<&str> = report.patches.iter().map(|p| p.target.as_str()).collect();
    assert_eq!(targets, ["nodes"]);
    assert_eq!(
        report.notes,
        [
            "no status write: no address source gave an address, so the kubelet's status.addresses are left alone"
        ]
    );
    let text = report.to_text();
    assert!(
        text.contains("write 1: PATCH nodes (json patch) ["),
        "{text}"
    );
    assert!(!text.contains("PATCH nodes/status"), "{text}");
    assert!(text.contains("note: no status write"), "{text}");
}

#[test]
fn initialised_node_shows_only_the_refresh_it_would_get() {
    let mut view = node(
        false,
        "k3s://n1",
        &[
            ("InternalIP", "10.0.0.5"),
            ("ExternalIP", "203.0.113.5"),
            ("Hostname", "n1"),
        ],
    );
    view.annotations.insert(
        "k3s.io/node-args".into(),
        r#"["agent","--node-ip","10.0.0.5"]"#.into(),
    );
    let report = ExplainReport::new(&view, &cfg("zone: z1\ninstanceType: \"\"\n"));
    assert_eq!(report.provider_id, "k3s://n1");
    assert!(!report.set_provider_id);
    // A zone configured after initialisation is added: the labels the node lacks.
    assert_eq!(
        report.labels,
        BTreeMap::from([
            (
                "failure-domain.beta.kubernetes.io/zone".to_string(),
                "z1".to_string()
            ),
            ("topology.kubernetes.io/zone".to_string(), "z1".to_string()),
        ])
    );
    assert_eq!(report.patches.len(), 2);
    assert_eq!(report.patches[1].target, "nodes");
    assert_eq!(
        report.patches[1].patch,
        json!([
            {"op": "test", "path": "/metadata/labels", "value": null},
            {"op": "add", "path": "/metadata/labels", "value": {
                "failure-domain.beta.kubernetes.io/zone": "z1",
                "topology.kubernetes.io/zone": "z1",
            }},
        ])
    );
    assert_eq!(report.patches[0].target, "nodes/status");
    assert_eq!(
        report.patches[0].patch,
        json!({
            "status": {"addresses": [
                {"type": "InternalIP", "address": "10.0.0.5"},
                {"type": "Hostname", "address": "n1"},
            ]}
        })
    );
    assert!(report.notes.is_empty());
    let text = report.to_text();
    assert!(
        text.contains("only its addresses and missing labels are kept current"),
        "{text}"
    );
    assert!(
        text.contains(
            "labels to add:\n    failure-domain.beta.kubernetes.io/zone=z1 (config zone)"
        ),
        "{text}"
    );
}

#[test]
fn untainted_node_without_provider_id_is_left_to_its_kubelet() {
    let mut view = node(false, "", &[("InternalIP", "10.0.0.5"), ("Hostname", "n1")]);
    view.annotations
        .insert("bare-ccm.io/external-ip".into(), "203.0.113.5".into());
    let report = ExplainReport::new(&view, &Config::default());
    assert_eq!(report.provider_id, "");
    assert!(!report.set_provider_id);
    assert!(report.labels.is_empty());
    assert!(report.patches.is_empty());
    assert_eq!(report.notes.len(), 1);
    assert!(
        report.notes[0].contains("no providerID"),
        "{:?}",
        report.notes
    );
    let text = report.to_text();
    assert!(text.contains("leaves it to its kubelet"), "{text}");
    assert!(text.contains("providerID: <none> (kept;"), "{text}");
}

/// A k3s kubelet's fresh registration: tainted, InternalIP and provided-node-ip from
/// the kubelet, no node-args yet; registered at second 0.
fn fresh_k3s_node() -> NodeView {
    let mut view = node(true, "", &[("InternalIP", "10.0.0.5"), ("Hostname", "n1")]);
    view.k3s = true;
    view.created = Timestamp::from_second(0).ok();
    view.annotations.insert(
        "alpha.kubernetes.io/provided-node-ip".into(),
        "10.0.0.5".into(),
    );
    view
}

fn second(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[test]
fn a_k3s_node_without_node_args_waits_and_says_until_when() {
    let report = ExplainReport::at(&fresh_k3s_node(), &Config::default(), second(5));
    assert!(!report.would_initialize);
    assert!(!report.remove_taint);
    assert!(report.patches.is_empty(), "{:?}", report.patches);
    assert!(report.resolves());
    let value = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(
        value["k3sAgentWait"],
        json!({
            "state": "waiting",
            "until": "1970-01-01T00:00:30Z",
            "missing": "annotation k3s.io/node-args (written by the k3s agent)",
        })
    );
    let text = report.to_text();
    assert!(
        text.contains("node n1: would NOT be initialised yet: k3s has not described it"),
        "{text}"
    );
    assert!(
        text.contains("note: waiting for k3s to describe the node")
            && text.contains("at 1970-01-01T00:00:30Z (25s from now"),
        "{text}"
    );
    assert!(text.contains("present, kept"), "{text}");
}

#[test]
fn when_the_wait_ran_out_it_initialises_with_what_is_there_and_warns() {
    let report = ExplainReport::at(&fresh_k3s_node(), &Config::default(), second(31));
    assert!(report.would_initialize);
    assert_eq!(report.patches.len(), 1, "{:?}", report.patches);
    assert_eq!(report.patches[0].target, "nodes");
    let value = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(value["k3sAgentWait"]["state"], "expired");
    assert_eq!(value["k3sAgentWait"]["until"], "1970-01-01T00:00:30Z");
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].starts_with("k3s did not describe node n1 within k3sAgentWait (30s)"),
        "{:?}",
        report.warnings
    );
    assert!(
        report
            .to_text()
            .contains("warning: k3s did not describe node n1")
    );
}

#[test]
fn nodes_not_from_k3s_and_described_k3s_nodes_do_not_wait() {
    let mut plain = fresh_k3s_node();
    plain.k3s = false;
    let report = ExplainReport::at(&plain, &Config::default(), second(1));
    assert!(report.would_initialize);
    let value = serde_json::to_value(&report).unwrap_or_default();
    assert!(value.get("k3sAgentWait").is_none(), "{value}");

    let mut described = fresh_k3s_node();
    described.annotations.insert(
        "k3s.io/node-args".into(),
        r#"["agent","--node-ip","10.0.0.5","--node-external-ip","203.0.113.5"]"#.into(),
    );
    let report = ExplainReport::at(&described, &Config::default(), second(1));
    assert!(report.would_initialize);
    assert_eq!(report.addresses[1].address, "203.0.113.5");
    let value = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(value["k3sAgentWait"], json!({"state": "described"}));

    let off = Config::from_yaml("k3sAgentWait: 0s\n").unwrap_or_default();
    assert!(ExplainReport::at(&fresh_k3s_node(), &off, second(1)).would_initialize);
}

/// Issue 14: explain shows, for each address, the interface and the rule that placed
/// it, and what became of every other address of the agent's annotation.
#[test]
fn interface_addresses_show_their_interface_and_rule() {
    let mut view = node(true, "", &[("InternalIP", "10.0.0.5"), ("Hostname", "n1")]);
    view.annotations.insert(
        "k3s.io/node-args".into(),
        r#"["agent","--node-ip","10.0.0.5"]"#.into(),
    );
    view.annotations.insert(
            INTERFACES.into(),
            r#"[{"name":"eth0","addresses":["10.0.0.5/24","fe80::1/64"]},{"name":"eth1","addresses":["198.18.0.5/15"]},{"name":"veth-eth1","addresses":["10.99.0.1/32"]}]"#.into(),
        );
    let report = ExplainReport::new(&view, &Config::default());
    let value = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(
        value["addresses"],
        json!([
            {"type": "InternalIP", "address": "10.0.0.5", "source": "k3s-node-args"},
            {"type": "ExternalIP", "address": "198.18.0.5", "source": "interfaces",
             "interface": "eth1", "rule": "default rule 0.0.0.0/0 -> ExternalIP"},
            {"type": "Hostname", "address": "n1", "source": "kubelet"},
        ])
    );
    assert_eq!(
        value["interfaceAddresses"],
        json!([
            {"interface": "eth0", "address": "10.0.0.5/24", "type": "InternalIP",
             "why": "default rule 10.0.0.0/8 -> InternalIP"},
            {"interface": "eth0", "address": "fe80::1/64",
             "why": "link-local address, never used"},
            {"interface": "eth1", "address": "198.18.0.5/15", "type": "ExternalIP",
             "why": "default rule 0.0.0.0/0 -> ExternalIP"},
            {"interface": "veth-eth1", "address": "10.99.0.1/32",
             "why": "interface matches interfaces.ignore pattern \"veth*\""},
        ])
    );
    let text = report.to_text();
    assert!(
        text.contains("from interfaces (eth1, default rule 0.0.0.0/0 -> ExternalIP)"),
        "{text}"
    );
    assert!(
        text.contains("interface addresses (bare-ccm.io/interfaces, from bare-ccm agent):"),
        "{text}"
    );
    assert!(text.contains("link-local address, never used"), "{text}");
    // Without the source, nothing of the annotation is shown.
    let off = cfg("addressSources: [annotations, kubelet]\n");
    let value = serde_json::to_value(ExplainReport::new(&view, &off)).unwrap_or_default();
    assert!(value.get("interfaceAddresses").is_none(), "{value}");
}

#[test]
fn json_report_carries_notes() {
    let mut view = node(
        false,
        "k3s://n1",
        &[("InternalIP", "10.0.0.5"), ("Hostname", "n1")],
    );
    for key in [
        "node.kubernetes.io/instance-type",
        "beta.kubernetes.io/instance-type",
    ] {
        view.labels.insert(key.into(), "k3s".into());
    }
    let report = ExplainReport::new(&view, &Config::default());
    let value = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(
        value["notes"],
        json!(["no status write: status.addresses are already up to date"])
    );
    assert_eq!(value["patches"], json!([]));
    assert_eq!(value["labels"], json!({}));
}
