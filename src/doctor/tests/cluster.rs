//! Cluster-wide diagnoses: healthy clusters, the seed problem, the Leases, k3s's
//! embedded controller, unreadable objects.

use super::*;

#[test]
fn initialised_ready_nodes_with_a_fresh_leader_are_healthy() {
    let report = diagnose(&healthy(vec![node("n1", 3600), node("n2", 60)]), now());
    assert!(report.healthy, "{:#?}", report.findings);
    assert_eq!(report.exit_code(), 0);
    assert!(
        report
            .verdict
            .starts_with("healthy: 2 node(s), none waiting for initialisation; bare-ccm is leading (Lease held by cp-1_abc, renewed 2s ago)"),
        "{}",
        report.verdict
    );
    assert_eq!(finding(&report, Code::LeaseHeld).severity, Severity::Info);
}

#[test]
fn seed_scenario_names_the_missing_ccm_and_the_fix() {
    let snap = Snapshot::with_nodes(vec![stuck("n1", 120), stuck("n2", 120)]);
    let report = diagnose(&snap, now());
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.tainted_nodes, 2);
    let f = &report.findings[0];
    assert_eq!((f.code, f.severity), (Code::NoCcmRunning, Severity::Error));
    assert!(f.message.starts_with("2 node(s) carry the taint node.cloudprovider.kubernetes.io/uninitialized and no cloud-controller-manager is running"));
    assert_has(&f.fix, &["kubectl apply -f manifests/bare-ccm.yaml"]);
    assert_has(
        &f.fix,
        &["kubectl taint nodes --all node.cloudprovider.kubernetes.io/uninitialized-"],
    );
    assert!(
        report
            .verdict
            .starts_with("unhealthy (1 error(s), 2 warning(s)): 2 node(s) carry the taint")
    );
    let taint = finding(&report, Code::UninitializedTaint);
    assert_eq!(taint.node.as_deref(), Some("n1"));
    assert_has(&taint.message, &["for 2m"]);
    assert_has(&taint.fix, &["no-ccm-running"]);
    // NotReady follows from the taint and is not reported twice.
    assert!(report.findings.iter().all(|f| f.code != Code::NodeNotReady));
    // No Deployment, no ConfigMap: notes only.
    assert_eq!(
        finding(&report, Code::WorkloadMissing).severity,
        Severity::Info
    );
}

#[test]
fn stale_and_released_leases_are_findings() {
    let mut snap = healthy(vec![node("n1", 60)]);
    snap.lease = lease("cp-1_abc", 600);
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::LeaseStale, Severity::Warning);
    assert_has(
        &f.message,
        &["held by cp-1_abc, last renewed 10m ago (lease duration 15s)"],
    );
    assert_has(&f.fix, &["kubectl -n kube-system logs daemonset/bare-ccm"]);

    snap.lease = lease("", 1);
    let report = diagnose(&snap, now());
    message_has(&report, Code::LeaseNotHeld, &["released"]);

    snap.lease = Fetched::NotFound;
    let report = diagnose(&snap, now());
    message_has(&report, Code::LeaseNotHeld, &["absent"]);
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn renewal_within_the_clock_skew_allowance_is_fresh() {
    let mut snap = healthy(vec![node("n1", 60)]);
    snap.lease = lease("a", 19);
    assert!(diagnose(&snap, now()).healthy);
    snap.lease = lease("a", 21);
    assert!(!diagnose(&snap, now()).healthy);
}

#[test]
fn k3s_ccm_lease_counts_only_when_its_node_controller_is_on() {
    let mut server = node("server-1", 60);
    annotate(
        &mut server,
        &[("k3s.io/node-args", r#"["server","--node-ip","10.0.0.1"]"#)],
    );
    let mut snap = healthy(vec![server.clone()]);
    snap.k3s_lease = lease("server-1_xyz", 1);
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::K3sCcmActive, Severity::Warning);
    assert_has(&f.fix, &["--disable-cloud-controller"]);

    // --disable-cloud-controller: the k3s CCM only runs ServiceLB.
    annotate(
        &mut server,
        &[(
            "k3s.io/node-args",
            r#"["server","--disable-cloud-controller","--node-ip","10.0.0.1"]"#,
        )],
    );
    snap.nodes = vec![server.clone()];
    let report = diagnose(&snap, now());
    assert!(report.healthy, "{:#?}", report.findings);
    finding(&report, Code::K3sCcmServicelbOnly);

    // k3s's own CCM initialising tainted nodes, without bare-ccm: not "no CCM running".
    let mut server = node("server-1", 60);
    annotate(
        &mut server,
        &[("k3s.io/node-args", r#"["server","--node-ip","10.0.0.1"]"#)],
    );
    let mut snap = Snapshot::with_nodes(vec![server, stuck("agent-1", 60)]);
    snap.k3s_lease = lease("server-1_xyz", 1);
    let report = diagnose(&snap, now());
    assert!(report.findings.iter().all(|f| f.code != Code::NoCcmRunning));
    assert_eq!(
        finding(&report, Code::K3sCcmActive).severity,
        Severity::Info
    );
    fix_has(
        &report,
        Code::UninitializedTaint,
        &["k3s's embedded cloud controller"],
    );
}

/// Issue 11 item 2: older k3s releases leave `k3s.io/*-ip` annotations behind when the
/// embedded CCM is disabled, so they prove nothing about it running.
#[test]
fn stale_k3s_address_annotations_are_no_proof_of_k3s_node_controller() {
    let mut server = node("server-1", 60);
    annotate(
        &mut server,
        &[
            (
                "k3s.io/node-args",
                r#"["server","--disable-cloud-controller"]"#,
            ),
            ("k3s.io/internal-ip", "10.0.0.1"),
        ],
    );
    let mut agent = stuck("agent-1", 60);
    annotate(&mut agent, &[("k3s.io/internal-ip", "10.0.0.2")]);
    let mut snap = Snapshot::with_nodes(vec![server, agent]);
    snap.k3s_lease = lease("server-1_xyz", 1);
    let report = diagnose(&snap, now());
    assert!(
        report.findings.iter().all(|f| f.code != Code::K3sCcmActive),
        "{:#?}",
        report.findings
    );
    finding(&report, Code::K3sCcmServicelbOnly);
    // Nothing removes the taint: the stuck node is reported as such.
    assert_eq!(
        finding(&report, Code::NoCcmRunning).severity,
        Severity::Error
    );
}

#[test]
fn unreadable_objects_are_notes_not_failures() {
    let mut snap = Snapshot::with_nodes(vec![node("n1", 60)]);
    let forbidden = || "403 Forbidden: nope".to_string();
    snap.lease = Fetched::Unreadable(forbidden());
    snap.workload = Fetched::Unreadable(forbidden());
    snap.config_map = Fetched::Unreadable(forbidden());
    let report = diagnose(&snap, now());
    assert!(report.healthy);
    for c in [
        Code::LeaseUnreadable,
        Code::WorkloadUnreadable,
        Code::ConfigDefaults,
    ] {
        assert!(finding(&report, c).message.contains("403 Forbidden"), "{c}");
    }
}
