//! Pure: a [`Snapshot`] and the current time -> a [`Report`]. Owns the config doctor checks
//! nodes with, the order of findings and the verdict; the context is in `context`, the
//! checks in `cluster`, `workload` and `node`. Nothing here performs I/O or reads the
//! clock.

use std::cmp::Reverse;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;

use super::context::{Context, LeaseState};
use super::finding::{Code, Finding, Report, Severity};
use super::node::{enables_k3s_node_controller, is_tainted, node_findings};
use super::{CONFIG_KEY, Fetched, Snapshot, cluster, workload};
use crate::config::Config;

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
