//! The bare-ccm install: its DaemonSet or Deployment, tolerations and each pod.

use super::*;

#[test]
fn out_of_cluster_run_without_workload_is_healthy() {
    let mut snap = Snapshot::with_nodes(vec![node("n1", 60)]);
    snap.lease = lease("laptop_1", 1);
    let report = diagnose(&snap, now());
    assert!(report.healthy, "{:#?}", report.findings);
    let f = finding_at(&report, Code::WorkloadMissing, Severity::Info);
    assert_has(&f.message, &["runs elsewhere"]);
}

#[test]
fn config_map_without_workload_is_an_incomplete_install() {
    let mut snap = Snapshot::with_nodes(vec![node("n1", 60)]);
    snap.config_map = Fetched::Found(ConfigMap::default());
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::WorkloadMissing, Severity::Warning);
    let expected = (
        "no DaemonSet or Deployment kube-system/bare-ccm, although its ConfigMap kube-system/bare-ccm-config exists: the install is incomplete",
        "kubectl apply -f manifests/bare-ccm.yaml, or helm install bare-ccm charts/bare-ccm --namespace kube-system (docs/helm.md)",
    );
    assert_eq!((f.message.as_str(), f.fix.as_str()), expected);
}

#[test]
fn deployed_but_not_leading_points_at_the_pods() {
    let mut snap = healthy(vec![stuck("n1", 60)]);
    snap.lease = Fetched::NotFound;
    snap.workload = deployment(&TOLERATED, 0);
    snap.pods = Fetched::Found(vec![unschedulable(
        "0/3 nodes are available: 3 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: true}.",
    )]);
    let report = diagnose(&snap, now());
    let ccm = finding(&report, Code::NoCcmRunning);
    assert_has(&ccm.fix, &["bare-ccm is deployed but no replica leads"]);
    let pending = finding(&report, Code::PodPending);
    assert_has(
        &pending.message,
        &["kube-system/bare-ccm-abc is Pending: not scheduled (Unschedulable): 0/3 nodes"],
    );
    assert_has(
        &pending.fix,
        &["add the tolerations of manifests/bare-ccm.yaml"],
    );
    message_has(&report, Code::WorkloadNotReady, &["0/2 replicas ready"]);
    assert!(finding(&report, Code::LeaseNotHeld).severity == Severity::Warning);
}

#[test]
fn pod_problems_name_their_cause() {
    let cases = [
        (
            unschedulable(
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
            ),
            Code::PodPending,
            "node-role.kubernetes.io/control-plane with operator Exists",
        ),
        (
            pod(
                "Pending",
                vec![pod_condition("PodScheduled", "True", "", "")],
                Some("ErrImageNeverPull"),
            ),
            Code::PodPending,
            "import it into containerd",
        ),
        (
            pod(
                "Running",
                vec![pod_condition("Ready", "False", "ContainersNotReady", "")],
                Some("CrashLoopBackOff"),
            ),
            Code::PodNotReady,
            "kubectl logs --previous",
        ),
    ];
    for (p, expected, fix) in cases {
        let mut snap = healthy(vec![node("n1", 60)]);
        snap.pods = Fetched::Found(vec![p]);
        let report = diagnose(&snap, now());
        let f = finding(&report, expected);
        assert!(f.fix.contains(fix), "{expected}: {}", f.fix);
        assert_eq!(report.exit_code(), 1);
    }
}

#[test]
fn standby_pending_only_on_its_host_port_is_a_note_while_another_replica_runs() {
    // Scheduler messages in kube-scheduler's FitError format (pkg/scheduler/framework/types.go).
    const PORT: &str = "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
    const PORT_AND_AGENTS: &str = "0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.";
    const PORT_NO_PREEMPTION: &str =
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.";
    const PORT_AND_TAINT: &str = "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 1 node(s) had untolerated taint {dedicated: db}. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.";
    const AFFINITY_ONLY: &str = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.";
    // (scheduler message, the other replica is Ready, the Lease is fresh, expected severity)
    let cases = [
        (PORT, true, true, Severity::Info),
        (PORT_AND_AGENTS, true, true, Severity::Info),
        (PORT_NO_PREEMPTION, true, true, Severity::Info),
        (PORT, true, false, Severity::Info),
        (PORT, false, true, Severity::Info),
        (PORT, false, false, Severity::Warning),
        (PORT_AND_TAINT, true, true, Severity::Warning),
        (AFFINITY_ONLY, true, true, Severity::Warning),
    ];
    for (message, other_ready, lease_fresh, expected) in cases {
        let mut leader = pod(
            "Running",
            vec![pod_condition(
                "Ready",
                if other_ready { "True" } else { "False" },
                "",
                "",
            )],
            None,
        );
        leader.metadata.name = Some("bare-ccm-leader".into());
        let mut standby = unschedulable(message);
        standby.metadata.name = Some("bare-ccm-standby".into());
        let mut snap = healthy(vec![node("n1", 60)]);
        snap.pods = Fetched::Found(vec![leader, standby]);
        if !lease_fresh {
            snap.lease = Fetched::NotFound;
        }
        let report = diagnose(&snap, now());
        let pending = finding(&report, Code::PodPending);
        let case = format!("{message} (other Ready: {other_ready}, lease fresh: {lease_fresh})");
        assert_eq!(pending.severity, expected, "{case}: {pending:#?}");
        assert!(
            pending
                .message
                .starts_with("bare-ccm pod kube-system/bare-ccm-standby is Pending"),
            "{case}: {}",
            pending.message
        );
        if expected == Severity::Info {
            assert!(pending.fix.is_empty(), "{case}: {}", pending.fix);
            let running = if other_ready {
                "replica kube-system/bare-ccm-leader is Ready"
            } else {
                "the Lease kube-system/bare-ccm is held by cp-1_abc"
            };
            assert!(
                pending.message.contains(running),
                "{case}: {}",
                pending.message
            );
        }
    }

    // The single-server install as it runs: one replica leads, the other waits.
    let mut snap = healthy(vec![node("n1", 60)]);
    let mut standby = unschedulable(PORT);
    standby.metadata.name = Some("bare-ccm-standby".into());
    if let Fetched::Found(pods) = &mut snap.pods {
        pods.push(standby);
    }
    snap.workload = deployment(&TOLERATED, 1);
    let report = diagnose(&snap, now());
    assert!(report.healthy, "{:#?}", report.findings);
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn host_port_taken_with_no_replica_running_names_the_port() {
    let mut snap = healthy(vec![node("n1", 60)]);
    snap.lease = Fetched::NotFound;
    snap.pods = Fetched::Found(vec![unschedulable(
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.",
    )]);
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::PodPending, Severity::Warning);
    assert_has(&f.fix, &["another pod declares the same host port"]);
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn workload_without_the_uninitialized_toleration_is_the_bootstrap_deadlock() {
    let mut snap = healthy(vec![node("n1", 60)]);
    snap.workload = deployment(&["node.kubernetes.io/not-ready"], 2);
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::MissingToleration, Severity::Error);
    assert_has(
        &f.message,
        &["does not tolerate node.cloudprovider.kubernetes.io/uninitialized:"],
    );
    // An empty key with Exists tolerates everything.
    snap.workload = deployment(&[""], 2);
    assert!(diagnose(&snap, now()).healthy);
}

#[test]
fn daemon_set_with_no_ready_pod_points_at_its_pods() {
    let mut snap = healthy(vec![stuck("n1", 60)]);
    snap.lease = Fetched::NotFound;
    snap.workload = daemon_set(&TOLERATED, 1, 0);
    snap.pods = Fetched::Found(vec![pod(
        "Pending",
        vec![pod_condition("PodScheduled", "True", "", "")],
        Some("ErrImageNeverPull"),
    )]);
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::WorkloadNotReady, Severity::Warning);
    assert_eq!(
        f.message,
        "DaemonSet kube-system/bare-ccm has 0/1 pods ready"
    );
    assert!(
        f.fix
            .ends_with("kubectl -n kube-system describe daemonset/bare-ccm"),
        "{}",
        f.fix
    );
    fix_has(&report, Code::PodPending, &["scripts/build-image.sh"]);
    assert!(
        finding(&report, Code::NoCcmRunning)
            .fix
            .starts_with("bare-ccm is deployed but no replica leads")
    );
}

#[test]
fn daemon_set_that_matches_no_node_is_named() {
    // The DaemonSet controller creates no pod at all: nothing is Pending to explain why.
    let mut snap = healthy(vec![stuck("n1", 60)]);
    snap.lease = Fetched::NotFound;
    snap.workload = daemon_set(&TOLERATED, 0, 0);
    snap.pods = Fetched::Found(vec![]);
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::WorkloadNotReady, Severity::Warning);
    assert_starts(
        &f.message,
        "DaemonSet kube-system/bare-ccm runs on no node: no node matches",
    );
    assert_has(&f.fix, &["kubernetes.io/arch"]);
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn daemon_set_without_a_status_yet_is_not_judged() {
    let mut snap = healthy(vec![node("n1", 60)]);
    if let Fetched::Found(Workload::DaemonSet(ds)) = &mut snap.workload {
        ds.status = None;
    }
    let report = diagnose(&snap, now());
    assert!(report.healthy, "{:#?}", report.findings);
}

#[test]
fn daemon_set_and_a_leftover_deployment_are_two_installs() {
    let mut snap = healthy(vec![node("n1", 60)]);
    snap.leftover_deployment = Some(deployment_object(&TOLERATED, 0));
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::WorkloadDuplicate, Severity::Warning);
    assert_starts(
        &f.message,
        "both DaemonSet kube-system/bare-ccm and Deployment kube-system/bare-ccm exist",
    );
    assert_has(
        &f.fix,
        &["kubectl -n kube-system delete deployment bare-ccm"],
    );
    assert!(!report.healthy);
}

#[test]
fn daemon_set_without_the_not_ready_toleration_is_the_bootstrap_deadlock() {
    let mut snap = healthy(vec![node("n1", 60)]);
    snap.workload = daemon_set(&[UNINITIALIZED_TAINT], 1, 1);
    let report = diagnose(&snap, now());
    let f = finding_at(&report, Code::MissingToleration, Severity::Error);
    assert_starts(
        &f.message,
        "DaemonSet kube-system/bare-ccm does not tolerate node.kubernetes.io/not-ready:",
    );
}

#[test]
fn workload_kinds_choose_the_daemon_set_and_keep_a_deployment_as_leftover() {
    let ds = || match daemon_set(&TOLERATED, 1, 1) {
        Fetched::Found(Workload::DaemonSet(ds)) => ds,
        _ => unreachable!(),
    };
    let d = || deployment_object(&TOLERATED, 1);
    let (w, left) = Workload::choose(Fetched::Found(ds()), Fetched::Found(d()));
    assert_eq!(w.found().map(Workload::kind), Some("DaemonSet"));
    assert!(left.is_some());
    let (w, left) = Workload::choose(Fetched::NotFound, Fetched::Found(d()));
    assert_eq!(w.found().map(Workload::kind), Some("Deployment"));
    assert!(left.is_none());
    let (w, _) = Workload::choose(Fetched::Unreadable("403".into()), Fetched::NotFound);
    assert_eq!(w, Fetched::Unreadable("403".into()));
    let (w, _) = Workload::choose(Fetched::NotFound, Fetched::NotFound);
    assert_eq!(w, Fetched::NotFound);
}
