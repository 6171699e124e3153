//! `bare-ccm explain`: a dry run of the resolver on one node, showing what the controller
//! would write and why. It calls exactly the functions the controller calls (`resolve`,
//! `patch`) and never writes to the cluster.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::config::Config;
use crate::node_view::NodeView;
use crate::patch;
use crate::plan::{Plan, plan};
use crate::resolve::interfaces::{INTERFACES, Placement, classify};
use crate::resolve::k3s_agent::{AgentWait, agent_wait};
use crate::resolve::{AddressSource, Resolution, Sourced, resolve};

/// One address in the report, with the source that supplied it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExplainedAddress {
    /// The NodeAddress type.
    #[serde(rename = "type")]
    pub type_: String,
    /// The address as it would be written.
    pub address: String,
    /// The source that supplied it (an `addressSources` name, or `node-name`).
    pub source: String,
    /// For the `interfaces` source: the interface that carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// For the `interfaces` source: the rule that placed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// One address of the `bare-ccm.io/interfaces` annotation and what became of it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExplainedInterfaceAddress {
    /// The interface.
    pub interface: String,
    /// The address as the agent wrote it (`IP/PREFIX`).
    pub address: String,
    /// The type it was given; absent when it is not used.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The rule that placed it, or why it is not used.
    pub why: String,
}

/// Which config a report was computed with.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigUsed {
    /// `file`, `configMap` or `defaults`.
    pub source: &'static str,
    /// The file path, or `NAMESPACE/NAME` of the ConfigMap; empty for the defaults.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The ConfigMap's resourceVersion, to tell which edit was read.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Why the built-in defaults were used.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl ConfigUsed {
    /// A config file given with `--config`.
    pub fn file(path: &std::path::Path) -> Self {
        ConfigUsed {
            source: "file",
            name: path.display().to_string(),
            ..ConfigUsed::default()
        }
    }

    /// The `config.yaml` of ConfigMap `namespace/name` at `resource_version`.
    pub fn config_map(namespace: &str, name: &str, resource_version: &str) -> Self {
        ConfigUsed {
            source: "configMap",
            name: format!("{namespace}/{name}"),
            resource_version: resource_version.to_string(),
            ..ConfigUsed::default()
        }
    }

    /// The built-in defaults, and why.
    pub fn defaults(note: impl Into<String>) -> Self {
        ConfigUsed {
            source: "defaults",
            note: note.into(),
            ..ConfigUsed::default()
        }
    }

    fn describe(&self) -> String {
        match self.source {
            "file" => format!("file {}", self.name),
            "configMap" => format!(
                "ConfigMap {} (resourceVersion {}), key config.yaml",
                self.name, self.resource_version
            ),
            _ if self.note.is_empty() => "built-in defaults".to_string(),
            _ => format!("built-in defaults ({})", self.note),
        }
    }
}

/// The machine-readable report of `explain -o json`; the field names are a stable contract.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainReport {
    /// The node name.
    pub node: String,
    /// The config the answer was computed with (the caller sets it; defaults otherwise).
    pub config: ConfigUsed,
    /// The node carries the uninitialized taint.
    pub tainted: bool,
    /// The controller would initialise the node now.
    pub would_initialize: bool,
    /// The uninitialized taint would be removed (same as `would_initialize`).
    pub remove_taint: bool,
    /// The providerID that would be written, or the node's existing one ("" for none).
    #[serde(rename = "providerID")]
    pub provider_id: String,
    /// Whether `provider_id` would be written.
    #[serde(rename = "setProviderID")]
    pub set_provider_id: bool,
    /// The desired `status.addresses`, in order, with their sources.
    pub addresses: Vec<ExplainedAddress>,
    /// Every address of the agent's `bare-ccm.io/interfaces` annotation and what became of
    /// it (when the `interfaces` source is configured and the node has the annotation).
    #[serde(rename = "interfaceAddresses", skip_serializing_if = "Vec::is_empty")]
    pub interface_addresses: Vec<ExplainedInterfaceAddress>,
    /// Only the labels that would be added (none for a node no cloud controller initialised).
    pub labels: BTreeMap<String, String>,
    /// The exact patches the controller would send, in order (status first).
    pub patches: Vec<ExplainedPatch>,
    /// Why `status.addresses` would not be written, when it would not and the node resolves.
    pub notes: Vec<String>,
    /// Inputs skipped or overridden; the node still resolves.
    pub warnings: Vec<String>,
    /// Why the node does not resolve; empty when it does.
    pub errors: Vec<String>,
    /// For a tainted k3s node: whether k3s has described it (`k3sAgentWait`).
    #[serde(rename = "k3sAgentWait", skip_serializing_if = "Option::is_none")]
    pub k3s_agent_wait: Option<ExplainedWait>,
    /// Why each value was chosen, for the text output.
    #[serde(skip)]
    pub reasons: Vec<(String, String)>,
}

/// The k3s agent wait of a tainted k3s node.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExplainedWait {
    /// `waiting` (not initialised before `until` unless the description arrives),
    /// `expired` (initialised with what is there, with a Warning), or `described`.
    pub state: &'static str,
    /// When the wait ends or ended (registration plus `k3sAgentWait`), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// What k3s has not written yet, when waiting or expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

impl ExplainedWait {
    fn of(wait: &AgentWait) -> Option<ExplainedWait> {
        let (state, until, missing) = match wait {
            AgentWait::NotApplicable => return None,
            AgentWait::Described => ("described", None, None),
            AgentWait::Waiting { until, missing } => ("waiting", Some(*until), Some(missing)),
            AgentWait::Expired { until, missing } => ("expired", *until, Some(missing)),
        };
        Some(ExplainedWait {
            state,
            until: until.map(|u| u.to_string()),
            missing: missing.map(ToString::to_string),
        })
    }
}

/// One write the controller would make.
#[derive(Debug, Serialize)]
pub struct ExplainedPatch {
    /// `nodes/status` or `nodes`.
    pub target: String,
    /// kubectl's `--type` of the patch: `merge` (JSON merge patch) for `nodes/status`,
    /// `json` (RFC 6902 JSON patch, whose `test` operations guard the write) for `nodes`.
    #[serde(rename = "patchType")]
    pub patch_type: &'static str,
    /// The patch body.
    pub patch: serde_json::Value,
}

impl ExplainReport {
    /// [`ExplainReport::at`] now.
    pub fn new(view: &NodeView, config: &Config) -> ExplainReport {
        ExplainReport::at(view, config, Timestamp::now())
    }

    /// Builds the report from the same resolution, k3s agent wait and patch builders the
    /// controller uses, as of `now`. An untainted node only ever gets a refresh (its
    /// addresses and missing labels, when a cloud controller initialised it), so its
    /// providerID is its existing one. A node waiting for k3s gets no write yet: its
    /// patches are empty.
    pub fn at(view: &NodeView, config: &Config, now: Timestamp) -> ExplainReport {
        let res: Resolution = resolve(view, config);
        let wait = agent_wait(view, config.k3s_agent_wait, now);
        let waiting = wait.waiting_reason(now);
        let planned = plan(view, &res);
        let mut patches = Vec::new();
        if waiting.is_none() {
            if let Some(p) = planned.status() {
                patches.push(ExplainedPatch {
                    target: "nodes/status".into(),
                    patch_type: "merge",
                    patch: p.clone(),
                });
            }
            if let Some(p) = planned.node() {
                patches.push(ExplainedPatch {
                    target: "nodes".into(),
                    patch_type: "json",
                    patch: p.clone(),
                });
            }
        }
        let notes = match &waiting {
            Some(reason) => vec![reason.clone()],
            None => status_notes(&planned, &res, &patches),
        };
        let mut warnings: Vec<String> = res.warnings.iter().map(ToString::to_string).collect();
        warnings.extend(wait.expired_warning(&res.node, config.k3s_agent_wait));
        let would_initialize = res.would_initialize() && waiting.is_none();
        let (provider_id, set_provider_id, labels) = if res.tainted {
            (
                res.provider_id.clone(),
                res.set_provider_id,
                res.labels.clone(),
            )
        } else {
            let why = if view.provider_id.is_empty() {
                "none on the node; an initialised node is never given one"
            } else {
                "already set on the node (a providerID is never changed)"
            };
            let existing = Sourced {
                value: view.provider_id.clone(),
                why: why.to_string(),
            };
            let labels = if patch::is_refreshable(view) {
                res.labels.clone()
            } else {
                BTreeMap::new()
            };
            (existing, false, labels)
        };
        let placements = interface_placements(view, config);
        let mut reasons = vec![("providerID".to_string(), provider_id.why.clone())];
        reasons.extend(
            labels
                .iter()
                .map(|(k, v)| (format!("label {k}"), v.why.clone())),
        );
        ExplainReport {
            node: res.node.clone(),
            config: ConfigUsed::defaults(""),
            tainted: res.tainted,
            would_initialize,
            remove_taint: would_initialize,
            provider_id: provider_id.value,
            set_provider_id,
            addresses: res
                .addresses
                .iter()
                .map(|a| {
                    let placed = (a.source == AddressSource::Interfaces)
                        .then(|| {
                            placements
                                .iter()
                                .find(|p| p.type_ == Some(a.type_) && p.ip.to_string() == a.address)
                        })
                        .flatten();
                    ExplainedAddress {
                        type_: a.type_.as_str().to_string(),
                        address: a.address.clone(),
                        source: a.source.as_str().to_string(),
                        interface: placed.map(|p| p.interface.clone()),
                        rule: placed.map(|p| p.why.clone()),
                    }
                })
                .collect(),
            interface_addresses: placements
                .iter()
                .map(|p| ExplainedInterfaceAddress {
                    interface: p.interface.clone(),
                    address: p.written.clone(),
                    type_: p.type_.map(|t| t.as_str().to_string()),
                    why: p.why.clone(),
                })
                .collect(),
            labels: labels.into_iter().map(|(k, v)| (k, v.value)).collect(),
            patches,
            notes,
            warnings,
            errors: res.errors.iter().map(ToString::to_string).collect(),
            k3s_agent_wait: ExplainedWait::of(&wait),
            reasons,
        }
    }

    /// Whether metadata resolves (exit code 0) or not (exit code 1).
    pub fn resolves(&self) -> bool {
        self.errors.is_empty()
    }

    /// The human-readable form: every value with its source.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let waiting = self
            .k3s_agent_wait
            .as_ref()
            .is_some_and(|w| w.state == "waiting");
        let verdict = match (self.tainted, self.would_initialize) {
            (true, false) if waiting => {
                "would NOT be initialised yet: k3s has not described it (see note)"
            }
            (true, true) => "would be initialised now",
            (true, false) => "would NOT be initialised: the taint stays (see errors)",
            (false, _) if self.provider_id.is_empty() => {
                "is not tainted and has no providerID: bare-ccm leaves it to its kubelet"
            }
            (false, _) if self.errors.is_empty() => {
                "is already initialised: only its addresses and missing labels are kept current"
            }
            (false, _) => "is already initialised, but its metadata does not resolve",
        };
        let _ = writeln!(out, "node {}: {verdict}", self.node);
        let _ = writeln!(out, "  config: {}", self.config.describe());
        let _ = writeln!(
            out,
            "  taint node.cloudprovider.kubernetes.io/uninitialized: {}",
            match (self.tainted, self.remove_taint) {
                (false, _) => "absent",
                (true, true) => "present, would be removed",
                (true, false) => "present, kept",
            }
        );
        let pid_reason = self
            .reasons
            .iter()
            .find(|(k, _)| k == "providerID")
            .map(|(_, why)| why.as_str())
            .unwrap_or("");
        let _ = writeln!(
            out,
            "  providerID: {} ({}; {pid_reason})",
            if self.provider_id.is_empty() {
                "<none>"
            } else {
                &self.provider_id
            },
            if self.set_provider_id {
                "would be set"
            } else {
                "kept"
            }
        );
        let _ = writeln!(out, "  addresses (status.addresses, in order):");
        if self.addresses.is_empty() {
            let _ = writeln!(
                out,
                "    <none resolved: the kubelet's addresses are left alone>"
            );
        }
        for a in &self.addresses {
            let detail = match (&a.interface, &a.rule) {
                (Some(i), Some(r)) => format!(" ({i}, {r})"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    {:<12} {:<40} from {}{detail}",
                a.type_, a.address, a.source
            );
        }
        if !self.interface_addresses.is_empty() {
            let _ = writeln!(
                out,
                "  interface addresses ({INTERFACES}, from bare-ccm agent):"
            );
        }
        for p in &self.interface_addresses {
            let _ = writeln!(
                out,
                "    {:<12} {:<40} {} ({})",
                p.interface,
                p.address,
                p.type_.as_deref().unwrap_or("not used"),
                p.why
            );
        }
        let _ = writeln!(out, "  labels to add:");
        if self.labels.is_empty() {
            let _ = writeln!(out, "    <none>");
        }
        for (k, v) in &self.labels {
            let why = self
                .reasons
                .iter()
                .find(|(rk, _)| rk == &format!("label {k}"))
                .map(|(_, w)| w.as_str())
                .unwrap_or("");
            let _ = writeln!(out, "    {k}={v} ({why})");
        }
        for (i, p) in self.patches.iter().enumerate() {
            let _ = writeln!(
                out,
                "  write {}: PATCH {} ({} patch) {}",
                i + 1,
                p.target,
                p.patch_type,
                p.patch
            );
        }
        if self.patches.iter().any(|p| p.patch_type == "json") {
            let _ = writeln!(
                out,
                "  (the nodes patch is refused, and re-read and retried, when its tests no longer hold: the taints or labels changed meanwhile)"
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        for e in &self.errors {
            let _ = writeln!(out, "  error: {e}");
        }
        out
    }
}

/// What the `interfaces` source made of each address of the agent's annotation, the
/// resolver's own classification (its warnings are already among the resolution's).
fn interface_placements(view: &NodeView, config: &Config) -> Vec<Placement> {
    if !config.address_sources.contains(&AddressSource::Interfaces) {
        return Vec::new();
    }
    view.annotations
        .get(INTERFACES)
        .map(|value| classify(value, &config.interfaces, &mut Vec::new()))
        .unwrap_or_default()
}

/// Why no `nodes/status` write appears among `patches`, for a node that resolves.
fn status_notes(planned: &Plan, res: &Resolution, patches: &[ExplainedPatch]) -> Vec<String> {
    let writes_status = patches.iter().any(|p| p.target == "nodes/status");
    if writes_status || !res.errors.is_empty() {
        return Vec::new();
    }
    let why = if res.addresses.is_empty() {
        "no address source gave an address, so the kubelet's status.addresses are left alone"
    } else if *planned == Plan::Untouched {
        "the node has no providerID, so no cloud controller initialised it: its kubelet owns status.addresses and bare-ccm does not refresh them"
    } else {
        "status.addresses are already up to date"
    };
    vec![format!("no status write: {why}")]
}

#[cfg(test)]
mod tests;
