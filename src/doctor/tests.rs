//! Table tests of `diagnose` on constructed snapshots: every finding, its fix and the
//! verdict, without a cluster.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetStatus, Deployment, DeploymentSpec, DeploymentStatus,
};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ContainerState, ContainerStateWaiting, ContainerStatus, Node, NodeCondition,
    NodeSpec, NodeStatus, NodeSystemInfo, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
    Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, MicroTime, ObjectMeta, Time};

use super::*;
use crate::resolve::UNINITIALIZED_TAINT;

fn now() -> Timestamp {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

fn ago(secs: i64) -> Timestamp {
    Timestamp::from_second(now().as_second() - secs).unwrap()
}

/// A k3s agent node registered `age` seconds ago, Ready, with a podCIDR and `--node-ip`.
fn node(name: &str, age: i64) -> Node {
    let args = format!(r#"["agent","--node-ip","10.0.0.{}"]"#, name.len());
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(Time(ago(age))),
            annotations: Some(BTreeMap::from([("k3s.io/node-args".to_string(), args)])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some("10.42.0.0/24".into()),
            provider_id: Some(format!("k3s://{name}")),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            conditions: Some(vec![condition("Ready", "True")]),
            node_info: Some(NodeSystemInfo {
                kubelet_version: "v1.33.4+k3s1".into(),
                ..NodeSystemInfo::default()
            }),
            ..NodeStatus::default()
        }),
    }
}

fn condition(type_: &str, status: &str) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some("KubeletNotReady".into()),
        message: Some("cni plugin not initialized".into()),
        ..NodeCondition::default()
    }
}

fn taint(key: &str) -> Taint {
    Taint {
        key: key.into(),
        value: Some("true".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    }
}

/// A node just registered by a kubelet in external mode: tainted, no providerID, NotReady.
fn stuck(name: &str, age: i64) -> Node {
    let mut n = node(name, age);
    let spec = n.spec.as_mut().unwrap();
    spec.taints = Some(vec![taint(UNINITIALIZED_TAINT)]);
    spec.provider_id = None;
    n.status.as_mut().unwrap().conditions = Some(vec![condition("Ready", "False")]);
    n
}

fn lease(holder: &str, renewed_ago: i64) -> Fetched<Lease> {
    Fetched::Found(Lease {
        metadata: ObjectMeta::default(),
        spec: Some(LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(ago(renewed_ago))),
            ..LeaseSpec::default()
        }),
    })
}

fn template(tolerations: &[&str]) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: None,
        spec: Some(PodSpec {
            tolerations: Some(
                tolerations
                    .iter()
                    .map(|k| Toleration {
                        key: Some(k.to_string()),
                        operator: Some("Exists".into()),
                        ..Toleration::default()
                    })
                    .collect(),
            ),
            ..PodSpec::default()
        }),
    }
}

fn deployment_object(tolerations: &[&str], ready: i32) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("bare-ccm".into()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector::default(),
            template: template(tolerations),
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            ready_replicas: Some(ready),
            ..DeploymentStatus::default()
        }),
    }
}

/// The Deployment layout: 2 replicas, `ready` of them Ready.
fn deployment(tolerations: &[&str], ready: i32) -> Fetched<Workload> {
    Fetched::Found(Workload::Deployment(deployment_object(tolerations, ready)))
}

/// The DaemonSet layout (the default): `desired` control-plane nodes, `ready` pods Ready.
fn daemon_set(tolerations: &[&str], desired: i32, ready: i32) -> Fetched<Workload> {
    Fetched::Found(Workload::DaemonSet(DaemonSet {
        metadata: ObjectMeta {
            name: Some("bare-ccm".into()),
            ..ObjectMeta::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector::default(),
            template: template(tolerations),
            ..DaemonSetSpec::default()
        }),
        status: Some(DaemonSetStatus {
            desired_number_scheduled: desired,
            current_number_scheduled: desired,
            number_ready: ready,
            number_misscheduled: 0,
            ..DaemonSetStatus::default()
        }),
    }))
}

const TOLERATED: [&str; 2] = [UNINITIALIZED_TAINT, "node.kubernetes.io/not-ready"];

fn pod(phase: &str, conditions: Vec<PodCondition>, waiting: Option<&str>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("bare-ccm-abc".into()),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(conditions),
            container_statuses: waiting.map(|reason| {
                vec![ContainerStatus {
                    name: "bare-ccm".into(),
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: None,
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]
            }),
            ..PodStatus::default()
        }),
    }
}

fn pod_condition(type_: &str, status: &str, reason: &str, message: &str) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..PodCondition::default()
    }
}

/// A healthy cluster: every node initialised and Ready, bare-ccm deployed (the DaemonSet
/// on one control-plane node) and leading.
fn healthy(nodes: Vec<Node>) -> Snapshot {
    let mut s = Snapshot::with_nodes(nodes);
    s.lease = lease("cp-1_abc", 2);
    s.workload = daemon_set(&TOLERATED, 1, 1);
    s.pods = Fetched::Found(vec![pod(
        "Running",
        vec![pod_condition("Ready", "True", "", "")],
        None,
    )]);
    s
}

fn codes(report: &Report) -> Vec<(Code, Severity)> {
    report
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| (f.code, f.severity))
        .collect()
}

fn finding(report: &Report, code: Code) -> &Finding {
    report
        .findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", report.findings))
}

/// A bare-ccm pod the scheduler could not place, with its `message`.
fn unschedulable(message: &str) -> Pod {
    let scheduled = pod_condition("PodScheduled", "False", "Unschedulable", message);
    pod("Pending", vec![scheduled], None)
}

/// Replaces the node's annotations with `pairs`.
fn annotate(node: &mut Node, pairs: &[(&str, &str)]) {
    node.metadata.annotations = Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
}

/// The `code` finding, asserting its severity.
fn finding_at(report: &Report, code: Code, severity: Severity) -> &Finding {
    let f = finding(report, code);
    assert_eq!(f.severity, severity, "{code}");
    f
}

/// Asserts that `text` starts with `start`, and shows `text` when not.
fn assert_starts(text: &str, start: &str) {
    assert!(text.starts_with(start), "{start:?} does not start {text:?}");
}

/// Asserts that the `code` finding's fix contains every one of `parts`.
fn fix_has(report: &Report, code: Code, parts: &[&str]) {
    assert_has(&finding(report, code).fix, parts);
}

/// Asserts that the `code` finding's message contains every one of `parts`.
fn message_has(report: &Report, code: Code, parts: &[&str]) {
    assert_has(&finding(report, code).message, parts);
}

/// Asserts that `text` contains every one of `parts`, and shows `text` when not.
fn assert_has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} is not in {text:?}");
    }
}

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
    use super::finding::human_age;
    assert_eq!(human_age(-3), "0s");
    assert_eq!(human_age(59), "59s");
    assert_eq!(human_age(61), "1m");
    assert_eq!(human_age(3 * 3600 + 5 * 60), "3h5m");
    assert_eq!(human_age(2 * 86400 + 4 * 3600), "2d4h");
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
