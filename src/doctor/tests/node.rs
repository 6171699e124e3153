//! Per-node diagnoses: the taint and its look-alikes, kubelet mode, podCIDR, readiness,
//! unresolvable metadata and the config it is resolved with.

use super::*;

#[test]
fn taint_older_than_ten_minutes_on_k3s_warns_of_the_shutdown() {
    let mut snap = healthy(vec![stuck("old", 11 * 60), stuck("new", 30)]);
    snap.nodes[0].metadata.annotations = None; // k3s still known from the kubelet version
    let report = diagnose(&snap, now());
    let taint_on = |node: &str| {
        report
            .findings
            .iter()
            .find(|f| f.node.as_deref() == Some(node) && f.code == Code::UninitializedTaint)
            .unwrap()
    };
    let old = taint_on("old");
    assert_eq!(old.severity, Severity::Error);
    assert_has(
        &old.message,
        &["for 11m", "shuts k3s down 15 minutes after start"],
    );
    let new = taint_on("new");
    assert_eq!(new.severity, Severity::Warning);
    assert!(!new.message.contains("15 minutes"));
    assert_has(&new.fix, &["bare-ccm is running"]);
    // A leader runs, so there is no no-ccm-running finding.
    assert!(report.findings.iter().all(|f| f.code != Code::NoCcmRunning));
}

#[test]
fn non_k3s_node_gets_no_k3s_deadline_warning() {
    let mut n = stuck("kubeadm", 3600);
    n.metadata.annotations = None;
    n.status.as_mut().unwrap().node_info = None;
    let report = diagnose(&healthy(vec![n]), now());
    let f = finding_at(&report, Code::UninitializedTaint, Severity::Warning);
    assert!(!f.message.contains("k3s"));
}

#[test]
fn lookalike_taint_keys_are_named_with_the_removal_command() {
    let mut n = node("n1", 60);
    n.spec.as_mut().unwrap().taints = Some(vec![
        taint("node.cluster.x-k8s.io/uninitialized"),
        taint("node.cloudprovider.kubernetes.io/uninitialised"),
        taint("dedicated"),
    ]);
    let report = diagnose(&healthy(vec![n]), now());
    let found: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.code == Code::LookalikeTaint)
        .collect();
    assert_eq!(found.len(), 2);
    assert!(
        found[0]
            .message
            .contains("node.cluster.x-k8s.io/uninitialized:NoSchedule")
    );
    assert!(
        found[0]
            .fix
            .contains("kubectl taint nodes n1 node.cluster.x-k8s.io/uninitialized-")
    );
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.tainted_nodes, 0);
}

#[test]
fn untainted_node_without_provider_id_means_kubelet_not_external() {
    let mut n = node("n1", 60);
    n.spec.as_mut().unwrap().provider_id = None;
    let report = diagnose(&healthy(vec![n.clone()]), now());
    let f = finding(&report, Code::KubeletNotExternal);
    assert_has(&f.fix, &["--kubelet-arg=cloud-provider=external"]);
    assert_has(
        &f.fix,
        &["kubectl taint nodes n1 node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule"],
    );
    // Without bare-ccm deployed, nobody claims such a node should have a providerID.
    let report = diagnose(&Snapshot::with_nodes(vec![n]), now());
    assert!(report.healthy, "{:#?}", report.findings);
}

#[test]
fn a_node_whose_kubelet_owns_its_addresses_is_named_with_the_fix() {
    let mut snap = healthy(vec![node("n1", 600), node("n2", 600)]);
    snap.kubelet_owns_addresses = vec!["n1".into()];
    let report = diagnose(&snap, now());
    let f = finding(&report, Code::KubeletOwnsAddresses);
    assert_eq!(f.node.as_deref(), Some("n1"));
    assert_eq!(f.severity, Severity::Warning);
    assert_has(&f.fix, &["--kubelet-arg=cloud-provider=external"]);
    assert_eq!(
        codes(&report)
            .iter()
            .filter(|(c, _)| *c == Code::KubeletOwnsAddresses)
            .count(),
        1
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn missing_pod_cidr_not_ready_and_network_unavailable_are_reported() {
    let mut n = node("n1", 60);
    n.spec.as_mut().unwrap().pod_cidr = None;
    n.status.as_mut().unwrap().conditions = Some(vec![
        condition("Ready", "False"),
        condition("NetworkUnavailable", "True"),
    ]);
    let report = diagnose(&healthy(vec![n]), now());
    assert_eq!(
        codes(&report),
        [
            (Code::NoPodCidr, Severity::Warning),
            (Code::NetworkUnavailable, Severity::Warning),
            (Code::NodeNotReady, Severity::Warning),
        ]
    );
    message_has(
        &report,
        Code::NodeNotReady,
        &["Ready=False (KubeletNotReady: cni plugin not initialized)"],
    );
    fix_has(&report, Code::NoPodCidr, &["--allocate-node-cidrs"]);
}

#[test]
fn provided_node_ip_mismatch_is_reported_with_the_resolver_error() {
    let mut n = stuck("n1", 60);
    annotate(
        &mut n,
        &[
            ("k3s.io/node-args", r#"["agent","--node-ip","10.0.0.5"]"#),
            ("alpha.kubernetes.io/provided-node-ip", "10.9.9.9"),
        ],
    );
    let report = diagnose(&healthy(vec![n]), now());
    let f = finding_at(&report, Code::MetadataUnresolved, Severity::Error);
    assert_has(&f.message, &["bare-ccm keeps the taint", "10.9.9.9"]);
    assert_has(&f.fix, &["bare-ccm explain --node n1"]);
    fix_has(&report, Code::UninitializedTaint, &["metadata-unresolved"]);
}

#[test]
fn no_internal_ip_source_is_reported() {
    let mut n = stuck("n1", 60);
    n.metadata.annotations = None;
    let report = diagnose(&healthy(vec![n]), now());
    let f = finding(&report, Code::MetadataUnresolved);
    assert_has(&f.message, &["no InternalIP for node n1"]);
}

#[test]
fn config_map_is_used_by_the_resolver_and_errors_are_reported() {
    let mut n = stuck("n1", 60);
    n.metadata.annotations = None;
    let mut snap = healthy(vec![n]);
    let cm = |text: &str| {
        Fetched::Found(ConfigMap {
            data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), text.to_string())])),
            ..ConfigMap::default()
        })
    };
    // requireInternalIP false: the node without any InternalIP source resolves.
    snap.config_map = cm("requireInternalIP: false\n");
    let report = diagnose(&snap, now());
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.code != Code::MetadataUnresolved)
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.code != Code::ConfigDefaults)
    );

    snap.config_map = cm("bogusKey: 1\n");
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::ConfigInvalid, Severity::Error);
    assert_has(&f.message, &["bogusKey"]);
    assert_has(&f.fix, &["bare-ccm check-config"]);
}
