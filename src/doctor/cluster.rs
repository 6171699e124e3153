//! Cluster-wide checks: the bare-ccm and k3s Leases, k3s's embedded node controller, and
//! the seed problem (tainted nodes with no node controller running).

use super::K3S_CCM_LEASE;
use super::context::{Context, LeaseState};
use super::finding::{Code, Finding, Severity};
use crate::resolve::UNINITIALIZED_TAINT;

pub(super) fn lease_findings(ctx: &Context<'_>, any_tainted: bool, findings: &mut Vec<Finding>) {
    let lease = ctx.lease_ref();
    let has_workload = ctx.snap.workload.found().is_some();
    let matters = if has_workload || any_tainted {
        Severity::Warning
    } else {
        Severity::Info
    };
    let finding = |severity, code, message: String, fix: String| Finding {
        severity,
        code,
        node: None,
        message,
        fix,
    };
    match &ctx.bare_ccm {
        LeaseState::Fresh { .. } => findings.push(finding(
            Severity::Info,
            Code::LeaseHeld,
            format!("bare-ccm {lease} {}", ctx.bare_ccm.describe()),
            String::new(),
        )),
        LeaseState::Stale { .. } => findings.push(finding(
            matters,
            Code::LeaseStale,
            format!(
                "bare-ccm {lease} is {}: that replica stopped or cannot reach the API server, so no replica is initialising nodes",
                ctx.bare_ccm.describe()
            ),
            format!(
                "check the bare-ccm pods and their logs ({}; kubectl -n {} logs {}); a standby replica takes over once the lease expires",
                ctx.pods_command(),
                ctx.snap.target.namespace,
                ctx.workload_arg()
            ),
        )),
        LeaseState::Released | LeaseState::Absent if has_workload => findings.push(finding(
            matters,
            Code::LeaseNotHeld,
            format!(
                "bare-ccm {lease} is {}: no bare-ccm replica is leading, so none initialises nodes",
                ctx.bare_ccm.describe()
            ),
            format!(
                "see why the replicas do not run or cannot take the lease: {} and their logs",
                ctx.pods_command()
            ),
        )),
        LeaseState::Released | LeaseState::Absent => {}
        LeaseState::Unreadable(why) => findings.push(finding(
            Severity::Info,
            Code::LeaseUnreadable,
            format!("cannot read bare-ccm {lease} ({why}): whether bare-ccm leads is unknown"),
            "grant get on leases in that namespace, or run doctor with an admin kubeconfig"
                .into(),
        )),
    }
}
pub(super) fn k3s_findings(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
    if !ctx.k3s_ccm.is_fresh() {
        return;
    }
    let lease = format!("kube-system/{K3S_CCM_LEASE}");
    if ctx.k3s_node_controller {
        let (severity, message) = if ctx.deployed {
            (
                Severity::Warning,
                format!(
                    "k3s's embedded cloud controller runs its node controller (Lease {lease} {}) as well as bare-ccm: two node controllers write the same nodes",
                    ctx.k3s_ccm.describe()
                ),
            )
        } else {
            (
                Severity::Info,
                format!(
                    "k3s's embedded cloud controller initialises nodes (Lease {lease} {})",
                    ctx.k3s_ccm.describe()
                ),
            )
        };
        let fix = if severity == Severity::Info {
            String::new()
        } else {
            "start every k3s server with --disable-cloud-controller (in /etc/rancher/k3s/config.yaml: disable-cloud-controller: true) and restart k3s".into()
        };
        findings.push(Finding {
            severity,
            code: Code::K3sCcmActive,
            node: None,
            message,
            fix,
        });
    } else {
        // k3s runs its cloud-controller-manager for ServiceLB even with
        // --disable-cloud-controller, minus the node controllers (k3s-io/k3s
        // pkg/daemons/control/server.go, cloudControllerManager: DisableCCM appends
        // "-cloud-node,-cloud-node-lifecycle" to --controllers).
        findings.push(Finding {
            severity: Severity::Info,
            code: Code::K3sCcmServicelbOnly,
            node: None,
            message: format!(
                "k3s's cloud-controller-manager is running (Lease {lease} {}) with its node controller disabled (--disable-cloud-controller): it only runs ServiceLB, which is fine",
                ctx.k3s_ccm.describe()
            ),
            fix: String::new(),
        });
    }
}

pub(super) fn no_ccm_running(ctx: &Context<'_>, tainted: usize) -> Finding {
    let k3s = if ctx.k3s_ccm.is_fresh() {
        "runs with its node controller disabled"
    } else {
        "is not running"
    };
    let message = format!(
        "{tainted} node(s) carry the taint {UNINITIALIZED_TAINT} and no cloud-controller-manager is running to remove it. No bare-ccm replica leads ({}: {}), and k3s's embedded cloud controller {k3s}. Pods on these nodes stay Pending or ContainerCreating (flannel: \"open /run/flannel/subnet.env: no such file or directory\"), and k3s >= 1.28.10 shuts itself down 15 minutes after start while the taint stays",
        ctx.lease_ref(),
        ctx.bare_ccm.describe()
    );
    let fix = if ctx.snap.workload.found().is_some() {
        format!(
            "bare-ccm is deployed but no replica leads: fix the pod and lease findings ({})",
            ctx.pods_command()
        )
    } else {
        format!(
            "install bare-ccm: kubectl apply -f manifests/bare-ccm.yaml (on k3s you may instead copy it to /var/lib/rancher/k3s/server/manifests/ on a server), or helm install bare-ccm charts/bare-ccm --namespace kube-system (docs/helm.md). Stopgap only: kubectl taint nodes --all {UNINITIALIZED_TAINT}- (sets no addresses, providerID or labels, and must be repeated for every new node)"
        )
    };
    Finding {
        severity: Severity::Error,
        code: Code::NoCcmRunning,
        node: None,
        message,
        fix,
    }
}
