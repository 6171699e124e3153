//! The vocabulary of a diagnosis: [`Code`], [`Severity`], [`Finding`] and [`Report`].
//! Owns the stable codes, their report order and the JSON shape; no checks live here.

use std::fmt;

use serde::{Serialize, Serializer};

/// The stable identifiers of findings (`-o json` `code`); scripts may match on them.
///
/// Declared in report order inside one severity, causes before symptoms and cluster
/// before nodes: the derived `Ord` is that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// Tainted nodes, and no node controller running to initialise them (the seed problem).
    NoCcmRunning,
    /// The ConfigMap's config.yaml is not a valid bare-ccm config.
    ConfigInvalid,
    /// k3s's embedded node controller runs (next to bare-ccm: two node controllers).
    K3sCcmActive,
    /// The bare-ccm Lease's holder stopped renewing it.
    LeaseStale,
    /// bare-ccm is deployed but its Lease is absent or released.
    LeaseNotHeld,
    /// No bare-ccm DaemonSet or Deployment (a note while bare-ccm runs elsewhere).
    WorkloadMissing,
    /// Both a bare-ccm DaemonSet and a Deployment of the same name exist (two installs).
    WorkloadDuplicate,
    /// The bare-ccm pod template does not tolerate the taints of uninitialised nodes.
    MissingToleration,
    /// A bare-ccm pod is Pending, with the scheduler's or the container's reason.
    PodPending,
    /// A bare-ccm pod runs but is not Ready.
    PodNotReady,
    /// The bare-ccm DaemonSet or Deployment has no ready pod, or the DaemonSet runs on no
    /// node.
    WorkloadNotReady,
    /// The resolver cannot compute a node's metadata (its error).
    MetadataUnresolved,
    /// A node carries the uninitialized taint, with its age.
    UninitializedTaint,
    /// A taint that looks like the uninitialized one but that no CCM removes.
    LookalikeTaint,
    /// An untainted node without providerID: its kubelet is not in external mode.
    KubeletNotExternal,
    /// An initialised node whose kubelet (not in external mode) writes its own addresses
    /// back over bare-ccm's, which has stopped writing them.
    KubeletOwnsAddresses,
    /// A node without spec.podCIDR, which flannel waits for.
    NoPodCidr,
    /// A node with the NetworkUnavailable condition set.
    NetworkUnavailable,
    /// An initialised node that is NotReady.
    NodeNotReady,
    /// The bare-ccm Lease's holder and renewal age (a note).
    LeaseHeld,
    /// k3s's cloud-controller-manager runs for ServiceLB only (a note).
    K3sCcmServicelbOnly,
    /// No usable ConfigMap: nodes are checked with the default config (a note).
    ConfigDefaults,
    /// The bare-ccm Lease could not be read (a note).
    LeaseUnreadable,
    /// The bare-ccm DaemonSet and Deployment could not be read (a note).
    WorkloadUnreadable,
    /// The bare-ccm pods could not be listed (a note).
    PodsUnreadable,
}

impl Code {
    /// The kebab-case id printed in the text report and in `-o json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NoCcmRunning => "no-ccm-running",
            Code::ConfigInvalid => "config-invalid",
            Code::K3sCcmActive => "k3s-ccm-active",
            Code::LeaseStale => "lease-stale",
            Code::LeaseNotHeld => "lease-not-held",
            Code::WorkloadMissing => "workload-missing",
            Code::WorkloadDuplicate => "workload-duplicate",
            Code::MissingToleration => "missing-toleration",
            Code::PodPending => "pod-pending",
            Code::PodNotReady => "pod-not-ready",
            Code::WorkloadNotReady => "workload-not-ready",
            Code::MetadataUnresolved => "metadata-unresolved",
            Code::UninitializedTaint => "uninitialized-taint",
            Code::LookalikeTaint => "lookalike-taint",
            Code::KubeletNotExternal => "kubelet-not-external",
            Code::KubeletOwnsAddresses => "kubelet-owns-addresses",
            Code::NoPodCidr => "no-pod-cidr",
            Code::NetworkUnavailable => "network-unavailable",
            Code::NodeNotReady => "node-not-ready",
            Code::LeaseHeld => "lease-held",
            Code::K3sCcmServicelbOnly => "k3s-ccm-servicelb-only",
            Code::ConfigDefaults => "config-defaults",
            Code::LeaseUnreadable => "lease-unreadable",
            Code::WorkloadUnreadable => "workload-unreadable",
            Code::PodsUnreadable => "pods-unreadable",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
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
    /// A stable kebab-case id.
    pub code: Code,
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
