//! The report itself: the codes and their order, the text and JSON forms, ages.

use super::*;

/// The codes' strings (`-o json`, the text report) and their report order inside one
/// severity are a stable interface: scripts match on the strings.
#[test]
fn codes_keep_their_strings_and_report_order() {
    let all = [
        Code::NoCcmRunning,
        Code::ConfigInvalid,
        Code::K3sCcmActive,
        Code::LeaseStale,
        Code::LeaseNotHeld,
        Code::WorkloadMissing,
        Code::WorkloadDuplicate,
        Code::MissingToleration,
        Code::PodPending,
        Code::PodNotReady,
        Code::WorkloadNotReady,
        Code::MetadataUnresolved,
        Code::UninitializedTaint,
        Code::LookalikeTaint,
        Code::KubeletNotExternal,
        Code::KubeletOwnsAddresses,
        Code::NoPodCidr,
        Code::NetworkUnavailable,
        Code::NodeNotReady,
        Code::LeaseHeld,
        Code::K3sCcmServicelbOnly,
        Code::ConfigDefaults,
        Code::LeaseUnreadable,
        Code::WorkloadUnreadable,
        Code::PodsUnreadable,
    ];
    let strings: Vec<&str> = all.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        strings,
        [
            "no-ccm-running",
            "config-invalid",
            "k3s-ccm-active",
            "lease-stale",
            "lease-not-held",
            "workload-missing",
            "workload-duplicate",
            "missing-toleration",
            "pod-pending",
            "pod-not-ready",
            "workload-not-ready",
            "metadata-unresolved",
            "uninitialized-taint",
            "lookalike-taint",
            "kubelet-not-external",
            "kubelet-owns-addresses",
            "no-pod-cidr",
            "network-unavailable",
            "node-not-ready",
            "lease-held",
            "k3s-ccm-servicelb-only",
            "config-defaults",
            "lease-unreadable",
            "workload-unreadable",
            "pods-unreadable",
        ]
    );
    assert!(all.is_sorted(), "report order is declaration order");
    assert_eq!(
        serde_json::to_value(Code::NoPodCidr).unwrap(),
        serde_json::json!("no-pod-cidr")
    );
    assert_eq!(Code::NoPodCidr.to_string(), "no-pod-cidr");
}

#[test]
fn many_nodes_are_grouped_in_the_text_report() {
    let nodes: Vec<Node> = (0..1000).map(|i| stuck(&format!("n{i:04}"), 30)).collect();
    let report = diagnose(&Snapshot::with_nodes(nodes), now());
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.code == Code::UninitializedTaint)
            .count(),
        1000
    );
    let text = report.to_text();
    assert!(
        text.starts_with("unhealthy (1 error(s), 1000 warning(s)): 1000 node(s) carry the taint")
    );
    assert_has(
        &text,
        &["[uninitialized-taint] 1000 nodes, e.g. n0000, n0001, n0002 and 997 more"],
    );
    assert!(text.lines().count() < 30, "{text}");
    assert!(text.contains("fix: install bare-ccm: kubectl apply -f manifests/bare-ccm.yaml"));
}

#[test]
fn few_nodes_are_listed_one_by_one() {
    let report = diagnose(
        &Snapshot::with_nodes(vec![stuck("a", 5), stuck("b", 5)]),
        now(),
    );
    let text = report.to_text();
    assert_has(&text, &["[uninitialized-taint] node a: carries the taint"]);
    assert_has(&text, &["[uninitialized-taint] node b: carries the taint"]);
}

#[test]
fn json_report_has_stable_field_names() {
    let report = diagnose(&Snapshot::with_nodes(vec![stuck("a", 5)]), now());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["taintedNodes"], 1);
    assert_eq!(json["findings"][0]["code"], "no-ccm-running");
    assert_eq!(json["findings"][0]["severity"], "error");
    assert!(json["findings"][0].get("node").is_none());
    let taint = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "uninitialized-taint")
        .unwrap();
    assert_eq!(taint["node"], "a");
}

#[test]
fn ages_read_naturally() {
    use crate::doctor::finding::human_age;
    assert_eq!(human_age(-3), "0s");
    assert_eq!(human_age(59), "59s");
    assert_eq!(human_age(61), "1m");
    assert_eq!(human_age(3 * 3600 + 5 * 60), "3h5m");
    assert_eq!(human_age(2 * 86400 + 4 * 3600), "2d4h");
}
