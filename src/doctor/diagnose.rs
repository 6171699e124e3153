//! Pure: a [`Snapshot`] and the current time -> a [`Report`]. Every check of
//! `bare-ccm doctor` is here; nothing here performs I/O or reads the clock.

use std::cmp::Reverse;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use serde::Serialize;

use super::{CONFIG_KEY, Fetched, K3S_CCM_LEASE, Snapshot, Workload};
use crate::config::Config;
use crate::node_view::NodeView;
use crate::resolve::k3s_agent::is_k3s_node;
use crate::resolve::{UNINITIALIZED_TAINT, node_args, resolve};

/// The stable identifiers of findings (`-o json` `code`); scripts may match on them.
pub mod code {
    /// Tainted nodes, and no node controller running to initialise them (the seed problem).
    pub const NO_CCM_RUNNING: &str = "no-ccm-running";
    /// The ConfigMap's config.yaml is not a valid bare-ccm config.
    pub const CONFIG_INVALID: &str = "config-invalid";
    /// No usable ConfigMap: nodes are checked with the default config (a note).
    pub const CONFIG_DEFAULTS: &str = "config-defaults";
    /// The bare-ccm Lease's holder and renewal age (a note).
    pub const LEASE_HELD: &str = "lease-held";
    /// bare-ccm is deployed but its Lease is absent or released.
    pub const LEASE_NOT_HELD: &str = "lease-not-held";
    /// The bare-ccm Lease's holder stopped renewing it.
    pub const LEASE_STALE: &str = "lease-stale";
    /// The bare-ccm Lease could not be read (a note).
    pub const LEASE_UNREADABLE: &str = "lease-unreadable";
    /// No bare-ccm DaemonSet or Deployment (a note while bare-ccm runs elsewhere).
    pub const WORKLOAD_MISSING: &str = "workload-missing";
    /// The bare-ccm DaemonSet and Deployment could not be read (a note).
    pub const WORKLOAD_UNREADABLE: &str = "workload-unreadable";
    /// The bare-ccm DaemonSet or Deployment has no ready pod, or the DaemonSet runs on no
    /// node.
    pub const WORKLOAD_NOT_READY: &str = "workload-not-ready";
    /// Both a bare-ccm DaemonSet and a Deployment of the same name exist (two installs).
    pub const WORKLOAD_DUPLICATE: &str = "workload-duplicate";
    /// The bare-ccm pod template does not tolerate the taints of uninitialised nodes.
    pub const MISSING_TOLERATION: &str = "missing-toleration";
    /// A bare-ccm pod is Pending, with the scheduler's or the container's reason.
    pub const POD_PENDING: &str = "pod-pending";
    /// A bare-ccm pod runs but is not Ready.
    pub const POD_NOT_READY: &str = "pod-not-ready";
    /// The bare-ccm pods could not be listed (a note).
    pub const PODS_UNREADABLE: &str = "pods-unreadable";
    /// k3s's embedded node controller runs (next to bare-ccm: two node controllers).
    pub const K3S_CCM_ACTIVE: &str = "k3s-ccm-active";
    /// k3s's cloud-controller-manager runs for ServiceLB only (a note).
    pub const K3S_CCM_SERVICELB_ONLY: &str = "k3s-ccm-servicelb-only";
    /// A node carries the uninitialized taint, with its age.
    pub const UNINITIALIZED_TAINT: &str = "uninitialized-taint";
    /// The resolver cannot compute a node's metadata (its error).
    pub const METADATA_UNRESOLVED: &str = "metadata-unresolved";
    /// A taint that looks like the uninitialized one but that no CCM removes.
    pub const LOOKALIKE_TAINT: &str = "lookalike-taint";
    /// An untainted node without providerID: its kubelet is not in external mode.
    pub const KUBELET_NOT_EXTERNAL: &str = "kubelet-not-external";
    /// An initialised node whose kubelet (not in external mode) writes its own addresses
    /// back over bare-ccm's, which has stopped writing them.
    pub const KUBELET_OWNS_ADDRESSES: &str = "kubelet-owns-addresses";
    /// A node without spec.podCIDR, which flannel waits for.
    pub const NO_POD_CIDR: &str = "no-pod-cidr";
    /// An initialised node that is NotReady.
    pub const NODE_NOT_READY: &str = "node-not-ready";
    /// A node with the NetworkUnavailable condition set.
    pub const NETWORK_UNAVAILABLE: &str = "network-unavailable";

    /// Report order inside one severity: causes before symptoms, cluster before nodes.
    pub(super) const ORDER: [&str; 25] = [
        NO_CCM_RUNNING,
        CONFIG_INVALID,
        K3S_CCM_ACTIVE,
        LEASE_STALE,
        LEASE_NOT_HELD,
        WORKLOAD_MISSING,
        WORKLOAD_DUPLICATE,
        MISSING_TOLERATION,
        POD_PENDING,
        POD_NOT_READY,
        WORKLOAD_NOT_READY,
        METADATA_UNRESOLVED,
        UNINITIALIZED_TAINT,
        LOOKALIKE_TAINT,
        KUBELET_NOT_EXTERNAL,
        KUBELET_OWNS_ADDRESSES,
        NO_POD_CIDR,
        NETWORK_UNAVAILABLE,
        NODE_NOT_READY,
        LEASE_HELD,
        K3S_CCM_SERVICELB_ONLY,
        CONFIG_DEFAULTS,
        LEASE_UNREADABLE,
        WORKLOAD_UNREADABLE,
        PODS_UNREADABLE,
    ];
}

/// How much a finding matters. `Info` is a note and leaves the cluster healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A fact worth knowing; the cluster can still be healthy.
    Info,
    /// A problem that degrades or will block node initialisation.
    Warning,
    /// A problem that blocks node initialisation now.
    Error,
}

impl Severity {
    /// The label in the text report.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One problem (or note), with the fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Errors and warnings make the cluster unhealthy; notes do not.
    pub severity: Severity,
    /// A stable kebab-case id from [`code`].
    pub code: &'static str,
    /// The node concerned; None for cluster-wide findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What is wrong, with the facts that show it.
    pub message: String,
    /// What to do about it ("" for notes that need nothing).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

/// The whole diagnosis; `-o json` prints it as is.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// No warnings and no errors (notes allowed).
    pub healthy: bool,
    /// One line: healthy, or the most important problem.
    pub verdict: String,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Nodes carrying the uninitialized taint.
    pub tainted_nodes: usize,
    /// Most severe first; notes last.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The process exit code: 0 healthy, 1 findings.
    pub fn exit_code(&self) -> u8 {
        if self.healthy { 0 } else { 1 }
    }
}

/// On k3s, after this long with the taint doctor warns of the 15-minute shutdown.
const K3S_TAINT_WARN_SECS: i64 = 10 * 60;
/// Lease duration assumed when a Lease does not state one (upstream default 15 s).
const DEFAULT_LEASE_SECS: i64 = 15;
/// Tolerated difference between the cluster's clocks and this machine's clock before a
/// renewal counts as stale.
const CLOCK_SKEW_SECS: i64 = 5;
/// The not-ready taint the node lifecycle controller sets; the CCM pod must tolerate it.
const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// k3s's flag that turns its embedded node controller off (`k3s.io/node-args`).
const DISABLE_CLOUD_CONTROLLER: &str = "--disable-cloud-controller";

/// What a Lease says about the controller holding it.
#[derive(Clone, Debug, PartialEq)]
enum LeaseState {
    Fresh {
        holder: String,
        age: i64,
    },
    Stale {
        holder: String,
        age: i64,
        duration: i64,
    },
    Released,
    Absent,
    Unreadable(String),
}

impl LeaseState {
    fn of(lease: &Fetched<Lease>, now: Timestamp) -> LeaseState {
        let lease = match lease {
            Fetched::Found(l) => l,
            Fetched::NotFound => return LeaseState::Absent,
            Fetched::Unreadable(why) => return LeaseState::Unreadable(why.clone()),
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        if holder.is_empty() {
            return LeaseState::Released;
        }
        let duration = spec
            .lease_duration_seconds
            .map(i64::from)
            .unwrap_or(DEFAULT_LEASE_SECS);
        let renewed = spec.renew_time.or(spec.acquire_time).map(|t| t.0);
        let age = renewed.map(|t| seconds_between(t, now));
        match age {
            Some(age) if age <= duration + CLOCK_SKEW_SECS => LeaseState::Fresh { holder, age },
            Some(age) => LeaseState::Stale {
                holder,
                age,
                duration,
            },
            None => LeaseState::Stale {
                holder,
                age: i64::MAX,
                duration,
            },
        }
    }

    fn is_fresh(&self) -> bool {
        matches!(self, LeaseState::Fresh { .. })
    }

    /// "held by X, renewed 2s ago" and the like, for messages.
    fn describe(&self) -> String {
        match self {
            LeaseState::Fresh { holder, age } => {
                format!("held by {holder}, renewed {} ago", human_age(*age))
            }
            LeaseState::Stale { holder, age, .. } if *age == i64::MAX => {
                format!("held by {holder}, never renewed")
            }
            LeaseState::Stale {
                holder,
                age,
                duration,
            } => format!(
                "held by {holder}, last renewed {} ago (lease duration {duration}s)",
                human_age(*age)
            ),
            LeaseState::Released => "released (no holder)".into(),
            LeaseState::Absent => "absent".into(),
            LeaseState::Unreadable(why) => format!("unreadable ({why})"),
        }
    }
}

/// The cluster-wide facts the per-node checks depend on.
struct Context<'a> {
    snap: &'a Snapshot,
    now: Timestamp,
    config: Config,
    bare_ccm: LeaseState,
    k3s_ccm: LeaseState,
    /// Evidence that k3s's embedded node controller is enabled.
    k3s_node_controller: bool,
    /// A bare-ccm DaemonSet or Deployment exists or a bare-ccm Lease has a holder.
    deployed: bool,
}

impl Context<'_> {
    fn lease_ref(&self) -> String {
        format!(
            "Lease {}/{}",
            self.snap.target.namespace, self.snap.target.lease
        )
    }

    /// "DaemonSet kube-system/bare-ccm" (or Deployment, or "DaemonSet or Deployment" when
    /// there is none).
    fn workload_ref(&self) -> String {
        let kind = self
            .snap
            .workload
            .found()
            .map_or("DaemonSet or Deployment", Workload::kind);
        format!(
            "{kind} {}/{}",
            self.snap.target.namespace, self.snap.target.workload
        )
    }

    /// `daemonset/bare-ccm` (or deployment/...), for kubectl commands.
    fn workload_arg(&self) -> String {
        let resource = self
            .snap
            .workload
            .found()
            .map_or("daemonset", Workload::resource);
        format!("{resource}/{}", self.snap.target.workload)
    }

    fn pods_command(&self) -> String {
        format!(
            "kubectl -n {} get pods -l app.kubernetes.io/name=bare-ccm",
            self.snap.target.namespace
        )
    }

    /// Some node controller (bare-ccm or k3s's) is running and will remove the taint.
    fn some_ccm_running(&self) -> bool {
        self.bare_ccm.is_fresh() || (self.k3s_ccm.is_fresh() && self.k3s_node_controller)
    }
}

/// Diagnoses the cluster in `snap` as of `now`.
pub fn diagnose(snap: &Snapshot, now: Timestamp) -> Report {
    let mut findings = Vec::new();
    let config = read_config(snap, &mut findings);
    let bare_ccm = LeaseState::of(&snap.lease, now);
    let ctx = Context {
        snap,
        now,
        config,
        deployed: snap.workload.found().is_some()
            || matches!(
                bare_ccm,
                LeaseState::Fresh { .. } | LeaseState::Stale { .. }
            ),
        bare_ccm,
        k3s_ccm: LeaseState::of(&snap.k3s_lease, now),
        k3s_node_controller: snap.nodes.iter().any(enables_k3s_node_controller),
    };
    let tainted: Vec<&Node> = snap.nodes.iter().filter(|n| is_tainted(n)).collect();

    lease_findings(&ctx, !tainted.is_empty(), &mut findings);
    workload_findings(&ctx, &mut findings);
    k3s_findings(&ctx, &mut findings);
    if !tainted.is_empty() && !ctx.some_ccm_running() {
        findings.push(no_ccm_running(&ctx, tainted.len()));
    }
    for node in &snap.nodes {
        node_findings(&ctx, node, &mut findings);
    }

    findings.sort_by_key(|f| {
        (
            Reverse(f.severity),
            code::ORDER
                .iter()
                .position(|c| *c == f.code)
                .unwrap_or(code::ORDER.len()),
        )
    });
    let healthy = findings.iter().all(|f| f.severity == Severity::Info);
    let verdict = verdict(&ctx, &findings, healthy);
    Report {
        healthy,
        verdict,
        nodes: snap.nodes.len(),
        tainted_nodes: tainted.len(),
        findings,
    }
}

fn verdict(ctx: &Context<'_>, findings: &[Finding], healthy: bool) -> String {
    if healthy {
        let controller = if ctx.bare_ccm.is_fresh() {
            format!("bare-ccm is leading (Lease {})", ctx.bare_ccm.describe())
        } else if ctx.k3s_ccm.is_fresh() && ctx.k3s_node_controller {
            "k3s's embedded cloud controller initialises nodes".into()
        } else {
            "no cloud-controller-manager is running, and no node waits for one".into()
        };
        return format!(
            "healthy: {} node(s), none waiting for initialisation; {controller}",
            ctx.snap.nodes.len()
        );
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let headline = match findings.first() {
        Some(f) => match &f.node {
            // The first sentence; the report below has the rest.
            None => f.message.split(". ").next().unwrap_or_default().to_string(),
            Some(node) => {
                let same = findings.iter().filter(|g| g.code == f.code).count();
                format!("{} on {same} node(s), e.g. {node}: {}", f.code, f.message)
            }
        },
        None => String::new(),
    };
    format!("unhealthy ({errors} error(s), {warnings} warning(s)): {headline}")
}

/// The config the controller runs with, from the ConfigMap; defaults when absent.
fn read_config(snap: &Snapshot, findings: &mut Vec<Finding>) -> Config {
    let t = &snap.target;
    let name = format!("ConfigMap {}/{}", t.namespace, t.config_map);
    let note = |message: String| Finding {
        severity: Severity::Info,
        code: code::CONFIG_DEFAULTS,
        node: None,
        message,
        fix: String::new(),
    };
    let text = match &snap.config_map {
        Fetched::Found(cm) => cm.data.as_ref().and_then(|d| d.get(CONFIG_KEY)).cloned(),
        Fetched::NotFound => {
            findings.push(note(format!(
                "{name} not found: metadata is checked with the default config"
            )));
            return Config::default();
        }
        Fetched::Unreadable(why) => {
            findings.push(note(format!(
                "{name} unreadable ({why}): metadata is checked with the default config"
            )));
            return Config::default();
        }
    };
    let Some(text) = text else {
        findings.push(note(format!(
            "{name} has no {CONFIG_KEY} key: metadata is checked with the default config"
        )));
        return Config::default();
    };
    match Config::from_yaml(&text) {
        Ok(config) => config,
        Err(e) => {
            findings.push(Finding {
                severity: Severity::Error,
                code: code::CONFIG_INVALID,
                node: None,
                message: format!(
                    "{name} key {CONFIG_KEY} is not a valid bare-ccm config: {e}; metadata is checked with the default config"
                ),
                fix: format!(
                    "fix the ConfigMap (kubectl -n {} edit configmap {}) and validate the file with `bare-ccm check-config FILE`; a running bare-ccm keeps its previous config until then",
                    t.namespace, t.config_map
                ),
            });
            Config::default()
        }
    }
}

fn lease_findings(ctx: &Context<'_>, any_tainted: bool, findings: &mut Vec<Finding>) {
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
            code::LEASE_HELD,
            format!("bare-ccm {lease} {}", ctx.bare_ccm.describe()),
            String::new(),
        )),
        LeaseState::Stale { .. } => findings.push(finding(
            matters,
            code::LEASE_STALE,
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
            code::LEASE_NOT_HELD,
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
            code::LEASE_UNREADABLE,
            format!("cannot read bare-ccm {lease} ({why}): whether bare-ccm leads is unknown"),
            "grant get on leases in that namespace, or run doctor with an admin kubeconfig"
                .into(),
        )),
    }
}

fn workload_findings(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
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
                code::WORKLOAD_UNREADABLE,
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
            findings.push(cluster(severity, code::WORKLOAD_MISSING, message, fix));
            return;
        }
    };

    if let Some(deployment) = &ctx.snap.leftover_deployment {
        let ns = &ctx.snap.target.namespace;
        let deployment_name = deployment.metadata.name.clone().unwrap_or_default();
        findings.push(cluster(
            Severity::Warning,
            code::WORKLOAD_DUPLICATE,
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
            code::MISSING_TOLERATION,
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
            code::PODS_UNREADABLE,
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
            code: code::WORKLOAD_NOT_READY,
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
        code: code::WORKLOAD_NOT_READY,
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
                    code: code::POD_PENDING,
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
            code: code::POD_PENDING,
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
        code: code::POD_NOT_READY,
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

fn k3s_findings(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
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
            code: code::K3S_CCM_ACTIVE,
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
            code: code::K3S_CCM_SERVICELB_ONLY,
            node: None,
            message: format!(
                "k3s's cloud-controller-manager is running (Lease {lease} {}) with its node controller disabled (--disable-cloud-controller): it only runs ServiceLB, which is fine",
                ctx.k3s_ccm.describe()
            ),
            fix: String::new(),
        });
    }
}

fn no_ccm_running(ctx: &Context<'_>, tainted: usize) -> Finding {
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
        code: code::NO_CCM_RUNNING,
        node: None,
        message,
        fix,
    }
}

fn node_findings(ctx: &Context<'_>, node: &Node, findings: &mut Vec<Finding>) {
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
            code::KUBELET_OWNS_ADDRESSES,
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
            code::METADATA_UNRESOLVED,
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
            code::UNINITIALIZED_TAINT,
            message,
            fix,
        );
    }

    for taint in taints.iter().filter(|t| is_lookalike(&t.key)) {
        push(
            Severity::Warning,
            code::LOOKALIKE_TAINT,
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
            code::KUBELET_NOT_EXTERNAL,
            "is not tainted and has no providerID: its kubelet is not in external cloud-provider mode, so bare-ccm never initialises it (no addresses, providerID or labels)".into(),
            format!(
                "on k3s add --kubelet-arg=cloud-provider=external (kubeadm: KUBELET_EXTRA_ARGS=--cloud-provider=external) and restart the node's k3s/kubelet; the kubelet adds the taint only when it creates the Node, so then run kubectl taint nodes {name} {UNINITIALIZED_TAINT}=true:NoSchedule"
            ),
        );
    }

    if spec.pod_cidr.as_deref().unwrap_or_default().is_empty() {
        push(
            Severity::Warning,
            code::NO_POD_CIDR,
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
            code::NETWORK_UNAVAILABLE,
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
                code::NODE_NOT_READY,
                format!("is NotReady: {why}"),
                format!(
                    "read the kubelet's reason above and its log on the node; kubectl describe node {name}"
                ),
            );
        }
    }
}

/// Whether the node carries a taint with the uninitialized key (any value or effect).
fn is_tainted(node: &Node) -> bool {
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
fn enables_k3s_node_controller(node: &Node) -> bool {
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

/// Whole seconds from `then` to `now` (negative when `then` is in the future).
fn seconds_between(then: Timestamp, now: Timestamp) -> i64 {
    now.as_second() - then.as_second()
}

/// "45s", "12m", "3h5m", "2d4h".
pub(super) fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}
