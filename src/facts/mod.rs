//! Facts of Kubernetes, k3s and bare-ccm's own wire format that every layer reads: taint
//! and annotation keys, how to tell a k3s node, and (in the submodules) address types and IP
//! syntax, label syntax and interface-name patterns. A leaf: it imports nothing of ours, so
//! `config`, `node_view` and `resolve` can all depend on it without a circle.

pub mod address;
pub mod interfaces;
pub mod labels;

use k8s_openapi::api::core::v1::Taint;

use address::AddressType;

/// The taint every kubelet with `--cloud-provider=external` registers with; only a CCM
/// removes it. Matched by key only (value and effect are ignored, as upstream).
pub const UNINITIALIZED_TAINT: &str = "node.cloudprovider.kubernetes.io/uninitialized";

/// Whether `taints` hold the uninitialized taint, i.e. the node still waits for a cloud
/// controller (matched by key only, as upstream).
pub fn is_uninitialized(taints: &[Taint]) -> bool {
    taints.iter().any(|t| t.key == UNINITIALIZED_TAINT)
}

/// The annotation k3s writes with its command-line and config-file arguments.
pub const NODE_ARGS: &str = "k3s.io/node-args";

/// What k3s writes in `k3s.io/node-args` in place of a secret value.
pub const NODE_ARGS_REDACTED: &str = "********";

/// The annotation the kubelet sets from `--node-ip` when run with an external cloud provider.
pub const PROVIDED_NODE_IP: &str = "alpha.kubernetes.io/provided-node-ip";

/// The annotation `bare-ccm agent` writes on its own Node.
pub const INTERFACES: &str = "bare-ccm.io/interfaces";

/// The annotation pairs `(bare-ccm.io key, k3s.io key)` for each address type.
pub const ADDRESS_ANNOTATIONS: [(AddressType, &str, &str); 5] = [
    (
        AddressType::InternalIP,
        "bare-ccm.io/internal-ip",
        "k3s.io/internal-ip",
    ),
    (
        AddressType::ExternalIP,
        "bare-ccm.io/external-ip",
        "k3s.io/external-ip",
    ),
    (
        AddressType::InternalDNS,
        "bare-ccm.io/internal-dns",
        "k3s.io/internal-dns",
    ),
    (
        AddressType::ExternalDNS,
        "bare-ccm.io/external-dns",
        "k3s.io/external-dns",
    ),
    (
        AddressType::Hostname,
        "bare-ccm.io/hostname",
        "k3s.io/hostname",
    ),
];

/// The annotation operators set to give a node its InternalIP (named in error messages).
pub const INTERNAL_IP: &str = ADDRESS_ANNOTATIONS[0].1;

/// Whether `key` is one of the address annotations.
pub fn is_address_annotation(key: &str) -> bool {
    ADDRESS_ANNOTATIONS
        .iter()
        .any(|(_, ours, k3s)| key == *ours || key == *k3s)
}

/// Whether the resolver reads annotation `key`; `NodeView` keeps only these.
pub fn is_relevant_annotation(key: &str) -> bool {
    key == NODE_ARGS || key == PROVIDED_NODE_IP || is_address_annotation(key) || key == INTERFACES
}

/// What k3s appends to the kubelet version it embeds (`v1.33.4+k3s1`).
const K3S_KUBELET_MARKER: &str = "+k3s";
/// What k3s appends to the containerd version it bundles (`containerd://2.0.5-k3s1`).
const K3S_RUNTIME_MARKER: &str = "-k3s";

/// Whether a node runs k3s, from `status.nodeInfo` as the kubelet reports it at
/// registration (kubernetes `pkg/kubelet/nodestatus/setters.go`, `VersionInfo`): either
/// k3s's kubelet version or its bundled containerd suffices (a k3s agent may use another
/// container runtime, and a distribution may rebuild the kubelet).
pub fn is_k3s_node(kubelet_version: &str, container_runtime_version: &str) -> bool {
    kubelet_version.contains(K3S_KUBELET_MARKER)
        || container_runtime_version.contains(K3S_RUNTIME_MARKER)
}
