//! Table tests of `diagnose` on constructed snapshots: every finding, its fix and the
//! verdict, without a cluster.

mod cluster;
mod node;
mod report;
mod workload;

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
