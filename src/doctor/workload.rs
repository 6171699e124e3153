//! Checks of the bare-ccm install: its DaemonSet or Deployment, the pod template's
//! tolerations, and each bare-ccm pod (Pending with the scheduler's reason, not Ready).

use k8s_openapi::api::core::v1::{Pod, Toleration};

use super::context::Context;
use super::finding::{Code, Finding, Severity};
use super::{Fetched, Workload};
use crate::resolve::UNINITIALIZED_TAINT;

/// The not-ready taint the node lifecycle controller sets; the CCM pod must tolerate it.
const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

pub(super) fn workload_findings(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
    let name = ctx.workload_ref();
    let cluster = |severity, code, message: String, fix: String| Finding {
        severity,
        code,
        node: None,
        message,
        fix,
    };
    let workload = match &ctx.snap.workload {
        Fetched::Found(w) => w,
        Fetched::Unreadable(why) => {
            findings.push(cluster(
                Severity::Info,
                Code::WorkloadUnreadable,
                format!("cannot read {name} ({why}): its pods were not checked"),
                "grant get on daemonsets and deployments and list on pods in that namespace, or run doctor with an admin kubeconfig".into(),
            ));
            return;
        }
        Fetched::NotFound => {
            // Out-of-cluster runs (and other installs) hold the Lease without the
            // workload: a fresh Lease means bare-ccm runs, which is all that matters.
            let (severity, message) = if ctx.bare_ccm.is_fresh() {
                (
                    Severity::Info,
                    format!(
                        "no {name}, but bare-ccm runs elsewhere (out of cluster or another install): its Lease is {}",
                        ctx.bare_ccm.describe()
                    ),
                )
            } else if ctx.snap.config_map.found().is_some() {
                (
                    Severity::Warning,
                    format!(
                        "no {name}, although its ConfigMap {}/{} exists: the install is incomplete",
                        ctx.snap.target.namespace, ctx.snap.target.config_map
                    ),
                )
            } else {
                (
                    Severity::Info,
                    format!("no {name}: bare-ccm is not installed in this cluster"),
                )
            };
            let fix = if severity == Severity::Info {
                String::new()
            } else {
                INSTALL.into()
            };
            findings.push(cluster(severity, Code::WorkloadMissing, message, fix));
            return;
        }
    };

    if let Some(deployment) = &ctx.snap.leftover_deployment {
        let ns = &ctx.snap.target.namespace;
        let deployment_name = deployment.metadata.name.clone().unwrap_or_default();
        findings.push(cluster(
            Severity::Warning,
            Code::WorkloadDuplicate,
            format!(
                "both {name} and Deployment {ns}/{deployment_name} exist: two installs of bare-ccm, whose pods compete for the same Lease and host port, so some of them never start"
            ),
            format!(
                "keep one layout: after moving to the DaemonSet, delete the old Deployment (kubectl -n {ns} delete deployment {deployment_name}); kubectl apply does not delete objects a new manifest no longer has"
            ),
        ));
    }

    let tolerations = workload.tolerations();
    let missing: Vec<&str> = [UNINITIALIZED_TAINT, NOT_READY_TAINT]
        .into_iter()
        .filter(|key| !tolerates(&tolerations, key))
        .collect();
    if !missing.is_empty() {
        findings.push(cluster(
            Severity::Error,
            Code::MissingToleration,
            format!(
                "{name} does not tolerate {}: on a cluster whose nodes are all uninitialised its pods cannot schedule, and nothing ever initialises the nodes (the bootstrap deadlock)",
                missing.join(" and ")
            ),
            "add the tolerations of manifests/bare-ccm.yaml to the pod template (key node.cloudprovider.kubernetes.io/uninitialized operator Exists; key node.kubernetes.io/not-ready operator Exists)".into(),
        ));
    }

    match &ctx.snap.pods {
        Fetched::Found(pods) => {
            for pod in pods {
                if let Some(f) = pod_finding(ctx, pod) {
                    findings.push(f);
                }
            }
        }
        Fetched::NotFound => {}
        Fetched::Unreadable(why) => findings.push(cluster(
            Severity::Info,
            Code::PodsUnreadable,
            format!("cannot list the pods of {name} ({why})"),
            "grant list on pods in that namespace, or run doctor with an admin kubeconfig".into(),
        )),
    }

    if let Some(f) = workload_readiness(ctx, workload) {
        findings.push(f);
    }
}

/// The fix for a missing install.
const INSTALL: &str = "kubectl apply -f manifests/bare-ccm.yaml, or helm install bare-ccm charts/bare-ccm --namespace kube-system (docs/helm.md)";

/// `workload-not-ready` when no pod is ready, or when a DaemonSet wants a pod on no node.
fn workload_readiness(ctx: &Context<'_>, workload: &Workload) -> Option<Finding> {
    let readiness = workload.readiness()?;
    let ns = &ctx.snap.target.namespace;
    if let Workload::DaemonSet(_) = workload
        && readiness.wanted == 0
    {
        return Some(Finding {
            severity: Severity::Warning,
            code: Code::WorkloadNotReady,
            node: None,
            message: format!(
                "{} runs on no node: no node matches its node affinity and tolerations (a control-plane node, label node-role.kubernetes.io/control-plane with any value, of an architecture the image is built for)",
                ctx.workload_ref()
            ),
            fix: format!(
                "compare the nodes (kubectl get nodes -L node-role.kubernetes.io/control-plane,kubernetes.io/arch) with the pod template (kubectl -n {ns} get {} -o yaml); the image is built for amd64 only unless you built another (chart value architectures)",
                ctx.workload_arg()
            ),
        });
    }
    if readiness.wanted == 0 || readiness.ready > 0 {
        return None;
    }
    let unit = match workload {
        Workload::DaemonSet(_) => "pods",
        Workload::Deployment(_) => "replicas",
    };
    Some(Finding {
        severity: Severity::Warning,
        code: Code::WorkloadNotReady,
        node: None,
        message: format!(
            "{} has 0/{} {unit} ready",
            ctx.workload_ref(),
            readiness.wanted
        ),
        fix: format!(
            "see the pod findings, or {} and kubectl -n {ns} describe {}",
            ctx.pods_command(),
            ctx.workload_arg()
        ),
    })
}

/// Whether `tolerations` tolerate a taint with `key` (any value, any effect).
fn tolerates(tolerations: &[Toleration], key: &str) -> bool {
    tolerations.iter().any(|t| {
        let exists = t.operator.as_deref() == Some("Exists");
        match t.key.as_deref() {
            None | Some("") => exists,
            Some(k) => k == key,
        }
    })
}

/// `pod-pending` / `pod-not-ready` for one bare-ccm pod, with the reason.
fn pod_finding(ctx: &Context<'_>, pod: &Pod) -> Option<Finding> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = &ctx.snap.target.namespace;
    let status = pod.status.clone().unwrap_or_default();
    let conditions = status.conditions.clone().unwrap_or_default();
    let condition = |t: &str| conditions.iter().find(|c| c.type_ == t);
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref().and_then(|s| s.waiting.clone()));
    let describe_cmd = format!("kubectl -n {ns} describe pod {name}");
    let phase = status.phase.clone().unwrap_or_default();

    if phase == "Pending" {
        let unscheduled = condition("PodScheduled").filter(|c| c.status == "False");
        let (why, fix) = if let Some(c) = unscheduled {
            let message = c.message.clone().unwrap_or_default();
            let why = format!(
                "not scheduled ({}): {message}",
                c.reason.as_deref().unwrap_or("Unschedulable")
            );
            if only_host_port_clash(&message)
                && let Some(running) = other_replica_running(ctx, &name)
            {
                // The manifest's hostPort keeps two replicas off one node, so on a cluster
                // with a single control-plane node the second replica waits as a standby
                // by design: worth a note, not a warning.
                return Some(Finding {
                    severity: Severity::Info,
                    code: Code::PodPending,
                    node: None,
                    message: format!(
                        "bare-ccm pod {ns}/{name} is Pending as a standby: every node it may run on already has a bare-ccm replica on the same host port, as expected with one control-plane node; {running}"
                    ),
                    fix: String::new(),
                });
            }
            let fix = if only_host_port_clash(&message) {
                "another pod declares the same host port on every node this pod may run on, and no bare-ccm replica runs: find that pod (kubectl get pods -A -o wide on those nodes); if it is not bare-ccm, give bare-ccm another port (--port with the same containerPort and hostPort in the manifest)".to_string()
            } else if message.contains("untolerated taint") {
                "the pod does not tolerate a taint its nodes carry: add the tolerations of manifests/bare-ccm.yaml (the uninitialized, not-ready, control-plane and CriticalAddonsOnly taints)".to_string()
            } else if message.contains("affinity") || message.contains("selector") {
                "no node matches the pod's node affinity: bare-ccm's manifest requires the label key node-role.kubernetes.io/control-plane with operator Exists (k3s sets the value \"true\", kubeadm \"\"; do not require a value) and kubernetes.io/arch amd64 (the image is built for amd64 only)".to_string()
            } else {
                format!("see the scheduler's events: {describe_cmd}")
            };
            (why, fix)
        } else if let Some(w) = &waiting {
            waiting_reason(w, &describe_cmd)
        } else {
            ("Pending".to_string(), format!("see {describe_cmd}"))
        };
        return Some(Finding {
            severity: Severity::Warning,
            code: Code::PodPending,
            node: None,
            message: format!("bare-ccm pod {ns}/{name} is Pending: {why}"),
            fix,
        });
    }

    if pod_is_ready(pod) || phase == "Succeeded" {
        return None;
    }
    let (why, fix) = match &waiting {
        Some(w) => waiting_reason(w, &describe_cmd),
        None => (
            format!("phase {phase}, not Ready"),
            format!("kubectl -n {ns} logs {name}"),
        ),
    };
    Some(Finding {
        severity: Severity::Warning,
        code: Code::PodNotReady,
        node: None,
        message: format!("bare-ccm pod {ns}/{name} is not Ready: {why}"),
        fix,
    })
}

/// The scheduler's reason for a node where a host port the pod asks for is taken
/// (kubernetes `pkg/scheduler/framework/plugins/nodeports/node_ports.go`, `ErrReason`).
const HOST_PORT_TAKEN: &str = "node(s) didn't have free ports for the requested pod ports";
/// The scheduler's reason for a node outside the pod's required node affinity
/// (`pkg/scheduler/framework/plugins/nodeaffinity/node_affinity.go`, `ErrReasonPod`): for
/// bare-ccm, a node that is not a control-plane node (or not amd64), never a candidate.
const OUTSIDE_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";

/// Whether a scheduler message says the pod failed only because its host port is taken on
/// every node it may run on. kube-scheduler writes `FitError` messages
/// (`pkg/scheduler/framework/types.go`, `FitError.Error`) as "0/N nodes are available: "
/// then one "COUNT REASON" per reason, sorted and joined by ", ", then "." and, when
/// preemption ran, " preemption: ...". Any reason other than the taken host port and the
/// node affinity (a node that is not a control-plane node) is a real problem.
fn only_host_port_clash(message: &str) -> bool {
    let Some((_, reasons)) = message.split_once("nodes are available: ") else {
        return false;
    };
    let reasons = reasons
        .split_once(". ")
        .map_or(reasons, |(filter, _)| filter)
        .trim_end_matches('.');
    let mut taken = false;
    for item in reasons.split(", ") {
        let Some((count, reason)) = item.split_once(' ') else {
            return false;
        };
        if count.parse::<u32>().is_err() {
            return false;
        }
        match reason {
            HOST_PORT_TAKEN => taken = true,
            OUTSIDE_NODE_AFFINITY => {}
            _ => return false,
        }
    }
    taken
}

/// Another bare-ccm replica that does the work while the pod `pending` waits: a Ready pod
/// of the workload, else a fresh Lease. Described for the note; None when neither.
fn other_replica_running(ctx: &Context<'_>, pending: &str) -> Option<String> {
    let ns = &ctx.snap.target.namespace;
    let ready = ctx.snap.pods.found().and_then(|pods| {
        pods.iter()
            .filter(|p| p.metadata.name.as_deref() != Some(pending) && pod_is_ready(p))
            .find_map(|p| p.metadata.name.as_deref())
    });
    match ready {
        Some(other) => Some(format!("replica {ns}/{other} is Ready")),
        None => ctx
            .bare_ccm
            .is_fresh()
            .then(|| format!("the {} is {}", ctx.lease_ref(), ctx.bare_ccm.describe())),
    }
}

/// Whether the pod's Ready condition is True.
fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The reason and fix of a waiting container.
fn waiting_reason(
    w: &k8s_openapi::api::core::v1::ContainerStateWaiting,
    describe_cmd: &str,
) -> (String, String) {
    let reason = w.reason.clone().unwrap_or_default();
    let why = match &w.message {
        Some(m) if !m.is_empty() => format!("container waiting: {reason}: {m}"),
        _ => format!("container waiting: {reason}"),
    };
    let fix = match reason.as_str() {
        "ErrImageNeverPull" | "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" => {
            "the image is not available on the node: build the archive with scripts/build-image.sh and import it into containerd on every server (on k3s: copy it to /var/lib/rancher/k3s/agent/images/; docs/install-k3s.md), or push it to a registry the nodes reach without cluster DNS and set imagePullPolicy: IfNotPresent".to_string()
        }
        "CrashLoopBackOff" => {
            "the controller exits at start: read its log (kubectl logs --previous) for the reason".to_string()
        }
        _ => format!("see {describe_cmd}"),
    };
    (why, fix)
}
