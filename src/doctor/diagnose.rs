//! Pure: a [`Snapshot`] and the current time -> a [`Report`]. Owns the cluster-wide
//! context ([`Context`], the Lease states), the config doctor checks nodes with, the order
//! of findings and the verdict; the checks themselves are in `cluster`, `workload` and
//! `node`. Nothing here performs I/O or reads the clock.

use std::cmp::Reverse;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;

use super::finding::{Code, Finding, Report, Severity, human_age};
use super::node::{enables_k3s_node_controller, is_tainted, node_findings};
use super::{CONFIG_KEY, Fetched, Snapshot, Workload, cluster, workload};
use crate::config::Config;

/// Lease duration assumed when a Lease does not state one (upstream default 15 s).
const DEFAULT_LEASE_SECS: i64 = 15;
/// Tolerated difference between the cluster's clocks and this machine's clock before a
/// renewal counts as stale.
const CLOCK_SKEW_SECS: i64 = 5;

/// What a Lease says about the controller holding it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum LeaseState {
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

    pub(super) fn is_fresh(&self) -> bool {
        matches!(self, LeaseState::Fresh { .. })
    }

    /// "held by X, renewed 2s ago" and the like, for messages.
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Context<'a> {
    pub(super) snap: &'a Snapshot,
    pub(super) now: Timestamp,
    pub(super) config: Config,
    pub(super) bare_ccm: LeaseState,
    pub(super) k3s_ccm: LeaseState,
    /// Evidence that k3s's embedded node controller is enabled.
    pub(super) k3s_node_controller: bool,
    /// A bare-ccm DaemonSet or Deployment exists or a bare-ccm Lease has a holder.
    pub(super) deployed: bool,
}

impl Context<'_> {
    pub(super) fn lease_ref(&self) -> String {
        format!(
            "Lease {}/{}",
            self.snap.target.namespace, self.snap.target.lease
        )
    }

    /// "DaemonSet kube-system/bare-ccm" (or Deployment, or "DaemonSet or Deployment" when
    /// there is none).
    pub(super) fn workload_ref(&self) -> String {
        let kind = self.workload_word(Workload::kind, "DaemonSet or Deployment");
        let t = &self.snap.target;
        format!("{kind} {}/{}", t.namespace, t.workload)
    }

    /// `daemonset/bare-ccm` (or deployment/...), for kubectl commands.
    pub(super) fn workload_arg(&self) -> String {
        let resource = self.workload_word(Workload::resource, "daemonset");
        format!("{resource}/{}", self.snap.target.workload)
    }

    /// `word` of the workload found, or `missing` when there is none.
    fn workload_word(
        &self,
        word: fn(&Workload) -> &'static str,
        missing: &'static str,
    ) -> &'static str {
        self.snap.workload.found().map_or(missing, word)
    }

    pub(super) fn pods_command(&self) -> String {
        format!(
            "kubectl -n {} get pods -l app.kubernetes.io/name=bare-ccm",
            self.snap.target.namespace
        )
    }

    /// Some node controller (bare-ccm or k3s's) is running and will remove the taint.
    pub(super) fn some_ccm_running(&self) -> bool {
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

    cluster::lease_findings(&ctx, !tainted.is_empty(), &mut findings);
    workload::workload_findings(&ctx, &mut findings);
    cluster::k3s_findings(&ctx, &mut findings);
    if !tainted.is_empty() && !ctx.some_ccm_running() {
        findings.push(cluster::no_ccm_running(&ctx, tainted.len()));
    }
    for node in &snap.nodes {
        node_findings(&ctx, node, &mut findings);
    }

    findings.sort_by_key(|f| (Reverse(f.severity), f.code));
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
        code: Code::ConfigDefaults,
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
                code: Code::ConfigInvalid,
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
/// Whole seconds from `then` to `now` (negative when `then` is in the future).
pub(super) fn seconds_between(then: Timestamp, now: Timestamp) -> i64 {
    now.as_second() - then.as_second()
}
