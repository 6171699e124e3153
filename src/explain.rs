//! `bare-ccm explain`: a dry run of the resolver on one node, showing what the controller
//! would write and why. It calls exactly the functions the controller calls (`resolve`,
//! `patch`) and never writes to the cluster.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Config;
use crate::node_view::NodeView;
use crate::patch;
use crate::resolve::{Resolution, resolve};

/// One address in the report, with the source that supplied it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExplainedAddress {
    #[serde(rename = "type")]
    pub type_: String,
    pub address: String,
    pub source: String,
}

/// The machine-readable report of `explain -o json`; the field names are a stable contract.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainReport {
    pub node: String,
    pub tainted: bool,
    pub would_initialize: bool,
    pub remove_taint: bool,
    #[serde(rename = "providerID")]
    pub provider_id: String,
    #[serde(rename = "setProviderID")]
    pub set_provider_id: bool,
    pub addresses: Vec<ExplainedAddress>,
    pub labels: BTreeMap<String, String>,
    /// The exact merge patches the controller would send, in order (status first).
    pub patches: Vec<ExplainedPatch>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    /// Why each value was chosen, for the text output.
    #[serde(skip)]
    pub reasons: Vec<(String, String)>,
}

/// One write the controller would make.
#[derive(Debug, Serialize)]
pub struct ExplainedPatch {
    /// `nodes/status` or `nodes`.
    pub target: String,
    pub patch: serde_json::Value,
}

impl ExplainReport {
    /// Builds the report from the same resolution and patch builders the controller uses.
    pub fn new(view: &NodeView, config: &Config) -> ExplainReport {
        let res: Resolution = resolve(view, config);
        let mut patches = Vec::new();
        if res.would_initialize() {
            if let Some(p) = patch::status_addresses_patch(view, &res) {
                patches.push(ExplainedPatch {
                    target: "nodes/status".into(),
                    patch: p,
                });
            }
            if let Some(p) = patch::init_patch(view, &res) {
                patches.push(ExplainedPatch {
                    target: "nodes".into(),
                    patch: p,
                });
            }
        }
        let mut reasons = vec![("providerID".to_string(), res.provider_id.why.clone())];
        reasons.extend(
            res.labels
                .iter()
                .map(|(k, v)| (format!("label {k}"), v.why.clone())),
        );
        ExplainReport {
            node: res.node.clone(),
            tainted: res.tainted,
            would_initialize: res.would_initialize(),
            remove_taint: res.would_initialize(),
            provider_id: res.provider_id.value.clone(),
            set_provider_id: res.set_provider_id,
            addresses: res
                .addresses
                .iter()
                .map(|a| ExplainedAddress {
                    type_: a.type_.clone(),
                    address: a.address.clone(),
                    source: a.source.as_str().to_string(),
                })
                .collect(),
            labels: res
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
            patches,
            warnings: res.warnings.clone(),
            errors: res.errors.clone(),
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
        let verdict = match (self.tainted, self.would_initialize) {
            (true, true) => "would be initialised now",
            (true, false) => "would NOT be initialised: the taint stays (see errors)",
            (false, _) if self.errors.is_empty() => {
                "is already initialised: only its addresses are kept current"
            }
            (false, _) => "is already initialised, but its metadata does not resolve",
        };
        let _ = writeln!(out, "node {}: {verdict}", self.node);
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
            let _ = writeln!(
                out,
                "    {:<12} {:<40} from {}",
                a.type_, a.address, a.source
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
            let _ = writeln!(out, "  write {}: PATCH {} {}", i + 1, p.target, p.patch);
        }
        if self.patches.len() == 2 {
            let _ = writeln!(
                out,
                "  (write 2 carries the resourceVersion returned by write 1)"
            );
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
