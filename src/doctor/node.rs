//! Per-node checks: the uninitialized taint and its look-alikes, unresolvable metadata,
//! kubelets not in external mode, podCIDR, network and readiness; and the node facts
//! (k3s, its embedded node controller) the cluster checks use.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;

use super::context::{Context, seconds_between};
use super::finding::{Code, Finding, Severity, human_age};
use crate::node_view::NodeView;
use crate::resolve::k3s_agent::is_k3s_node;
use crate::resolve::{UNINITIALIZED_TAINT, node_args, resolve};

/// On k3s, after this long with the taint doctor warns of the 15-minute shutdown.
const K3S_TAINT_WARN_SECS: i64 = 10 * 60;
/// k3s's flag that turns its embedded node controller off (`k3s.io/node-args`).
const DISABLE_CLOUD_CONTROLLER: &str = "--disable-cloud-controller";

pub(super) fn node_findings(ctx: &Context<'_>, node: &Node, findings: &mut Vec<Finding>) {
    let name = node.metadata.name.clone().unwrap_or_default();
    let spec = node.spec.clone().unwrap_or_default();
    let taints = spec.taints.clone().unwrap_or_default();
    let tainted = is_tainted(node);
    let mut push = |severity, code, message: String, fix: String| {
        findings.push(Finding {
            severity,
            code,
            node: Some(name.clone()),
            message,
            fix,
        })
    };

    if ctx.snap.kubelet_owns_addresses.contains(&name) {
        push(
            Severity::Warning,
            Code::KubeletOwnsAddresses,
            "its kubelet writes its own addresses back over bare-ccm's (Event KubeletOwnsAddresses): it does not run with --cloud-provider=external, so bare-ccm has stopped writing this node's addresses".into(),
            "on k3s start the node with --kubelet-arg=cloud-provider=external (kubeadm: KUBELET_EXTRA_ARGS=--cloud-provider=external) and restart k3s or the kubelet; bare-ccm writes the addresses again once the kubelet leaves them alone".into(),
        );
    }

    let resolution = resolve(&NodeView::from_node(node), &ctx.config);
    let unresolved = !resolution.errors.is_empty();
    if unresolved && (tainted || ctx.deployed) {
        let (severity, effect) = if tainted {
            (Severity::Error, "bare-ccm keeps the taint")
        } else {
            (
                Severity::Warning,
                "bare-ccm cannot keep its addresses current",
            )
        };
        push(
            severity,
            Code::MetadataUnresolved,
            format!(
                "metadata does not resolve ({effect}): {}",
                resolution
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            format!(
                "do what the error says; check the result with `bare-ccm explain --node {name} --config config.yaml` (config.yaml from ConfigMap {}/{})",
                ctx.snap.target.namespace, ctx.snap.target.config_map
            ),
        );
    }

    if tainted {
        let since = taint_since(node).map(|t| seconds_between(t, ctx.now));
        let k3s_deadline = is_k3s(node) && since.is_some_and(|s| s > K3S_TAINT_WARN_SECS);
        let mut message = format!("carries the taint {UNINITIALIZED_TAINT}");
        if let Some(age) = since {
            message.push_str(&format!(" for {}", human_age(age)));
        }
        message.push_str(": nothing schedules on it and its CNI waits");
        if k3s_deadline {
            message.push_str(
                "; on k3s >= 1.28.10 the network-policy controller shuts k3s down 15 minutes after start while the taint stays, so k3s will restart in a loop",
            );
        }
        let fix = if unresolved {
            "bare-ccm keeps the taint until the node's metadata resolves: fix its metadata-unresolved finding".to_string()
        } else if ctx.bare_ccm.is_fresh() {
            format!(
                "bare-ccm is running and initialises tainted nodes within seconds; if this one stays tainted, read its Events (kubectl describe node {name}) and the bare-ccm log"
            )
        } else if ctx.some_ccm_running() {
            "k3s's embedded cloud controller should initialise it: read the k3s server log (journalctl -u k3s)".to_string()
        } else {
            "nothing runs to remove it: see the no-ccm-running finding".to_string()
        };
        push(
            if k3s_deadline {
                Severity::Error
            } else {
                Severity::Warning
            },
            Code::UninitializedTaint,
            message,
            fix,
        );
    }

    for taint in taints.iter().filter(|t| is_lookalike(&t.key)) {
        push(
            Severity::Warning,
            Code::LookalikeTaint,
            format!(
                "carries the taint {}:{}, which looks like {UNINITIALIZED_TAINT} but is not it: no cloud-controller-manager removes it",
                taint.key, taint.effect
            ),
            format!(
                "remove it (kubectl taint nodes {name} {}-) and fix what adds it (kubelet --register-with-taints, k3s --node-taint, or the provisioning tool); the key bare-ccm removes is {UNINITIALIZED_TAINT}",
                taint.key
            ),
        );
    }

    let provider_id = spec.provider_id.clone().unwrap_or_default();
    if !tainted && provider_id.is_empty() && ctx.deployed {
        push(
            Severity::Warning,
            Code::KubeletNotExternal,
            "is not tainted and has no providerID: its kubelet is not in external cloud-provider mode, so bare-ccm never initialises it (no addresses, providerID or labels)".into(),
            format!(
                "on k3s add --kubelet-arg=cloud-provider=external (kubeadm: KUBELET_EXTRA_ARGS=--cloud-provider=external) and restart the node's k3s/kubelet; the kubelet adds the taint only when it creates the Node, so then run kubectl taint nodes {name} {UNINITIALIZED_TAINT}=true:NoSchedule"
            ),
        );
    }

    if spec.pod_cidr.as_deref().unwrap_or_default().is_empty() {
        push(
            Severity::Warning,
            Code::NoPodCidr,
            "has no spec.podCIDR: flannel waits for it".into(),
            "the kube-controller-manager assigns it (--allocate-node-cidrs=true with --cluster-cidr; k3s sets both): check that the cluster CIDR is not exhausted (a CIDRNotAvailable Event on the node) and the controller-manager log".into(),
        );
    }

    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
    {
        push(
            Severity::Warning,
            Code::NetworkUnavailable,
            "has the condition NetworkUnavailable=True: its pod network is not set up".into(),
            "the CNI (or a route controller) clears this condition once the node's network works: check the CNI pods on this node".into(),
        );
    }
    // A tainted node is NotReady because its CNI waits for the taint: the taint finding
    // covers it.
    if !tainted {
        let ready = conditions.iter().find(|c| c.type_ == "Ready");
        if ready.is_none_or(|c| c.status != "True") {
            let why = ready
                .map(|c| {
                    format!(
                        "Ready={} ({}: {})",
                        c.status,
                        c.reason.as_deref().unwrap_or(""),
                        c.message.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "no Ready condition".into());
            push(
                Severity::Warning,
                Code::NodeNotReady,
                format!("is NotReady: {why}"),
                format!(
                    "read the kubelet's reason above and its log on the node; kubectl describe node {name}"
                ),
            );
        }
    }
}

/// Whether the node carries a taint with the uninitialized key (any value or effect).
pub(super) fn is_tainted(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| crate::facts::is_uninitialized(ts))
}

/// A key that looks like the uninitialized taint but is not it, e.g.
/// `node.cluster.x-k8s.io/uninitialized` or a British spelling.
fn is_lookalike(key: &str) -> bool {
    key != UNINITIALIZED_TAINT && key.to_ascii_lowercase().contains("uninitiali")
}

/// When the taint appeared: its `timeAdded` (set only for NoExecute taints), else the
/// Node's creation, since the kubelet registers the Node with the taint.
fn taint_since(node: &Node) -> Option<Timestamp> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .and_then(|ts| ts.iter().find(|t| t.key == UNINITIALIZED_TAINT))
        .and_then(|t| t.time_added.as_ref())
        .or(node.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
}

/// A node run by k3s: k3s writes `k3s.io/node-args`, and its kubelet (`+k3s`) or bundled
/// containerd (`-k3s`) version says so.
fn is_k3s(node: &Node) -> bool {
    node.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(node_args::NODE_ARGS))
        || node
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .is_some_and(|i| is_k3s_node(&i.kubelet_version, &i.container_runtime_version))
}

/// Evidence that k3s's embedded node controller is on: a k3s server started without
/// `--disable-cloud-controller`. Its `k3s.io/*-ip` address annotations are no evidence:
/// k3s releases before the removal (`removeAddressAnnotations`) leave them on the Node
/// once the embedded controller is disabled, so they outlive it.
pub(super) fn enables_k3s_node_controller(node: &Node) -> bool {
    let Some(annotations) = node.metadata.annotations.as_ref() else {
        return false;
    };
    let Some(args) = annotations
        .get(node_args::NODE_ARGS)
        .and_then(|a| serde_json::from_str::<Vec<String>>(a).ok())
    else {
        return false;
    };
    if args.first().map(String::as_str) != Some("server") {
        return false;
    }
    let disabled = args
        .iter()
        .position(|a| a == DISABLE_CLOUD_CONTROLLER)
        .is_some_and(|i| args.get(i + 1).map(String::as_str) != Some("false"));
    !disabled
}
