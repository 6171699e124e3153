//! Simulated kubelets: they register Nodes exactly as a kubelet started with
//! `--cloud-provider=external` does, followed by the writes that real k3s and the
//! kube-controller-manager make to a new Node, send status heartbeats, and perform the
//! concurrent taint, label and annotation changes that other kubelets and admins make while
//! a cloud-controller-manager works.
//!
//! Everything goes through a `kube::Client` over HTTP, like a real kubelet; this module
//! never touches the emulator's store, so every request is authenticated, authorised,
//! counted and subject to injected faults. With an admin client the fleet also works
//! against a real kube-apiserver: it sends nothing a real server refuses or rewrites, and
//! the simulated controllers can be switched off ([`Registration::real_cluster`]) where the
//! real kube-controller-manager does their work. (An admin client, because the fleet also
//! writes what k3s's server writes with its own credentials: the NodeRestriction admission
//! plugin refuses a kubelet identity the `node-role.kubernetes.io/*` labels.)
//!
//! One part of the story per file:
//! - `spec` and `node`: how a kubelet registers, and the Node it creates (and the Node once
//!   k3s and the controllers have written to it);
//! - `fleet`: registration, and the actors that follow it, each after its delay of
//!   [`Registration`];
//! - `k3s`: the k3s agent's and server's writes; `controllers`: the simulated node IPAM
//!   and node lifecycle controllers;
//! - `heartbeat`: status heartbeats, the Ready report, the not-ready taint's removal;
//! - `admin`: taint, label and annotation changes by other actors;
//! - `retry`: what is retried and how; `glance`: what the actors read of an answer.
//!
//! Not simulated: the kubelet's Lease heartbeats in `kube-node-lease`, the `NodeReady`
//! Event the kubelet records, the TTL controller's annotation, and the lifecycle
//! controller's rate-limited `not-ready:NoExecute` taint.

use std::time::Duration;

mod admin;
mod controllers;
mod fleet;
mod glance;
mod heartbeat;
mod k3s;
mod node;
mod retry;
mod spec;

pub use fleet::{Fleet, Registration};
pub use heartbeat::{HeartbeatStats, heartbeat_patch, ready_patch};
pub use node::{described_node, node_object, pod_cidr};
pub use spec::KubeletSpec;

/// Taint key a kubelet with `--cloud-provider=external` registers with
/// (k8s.io/cloud-provider `api/well_known_taints.go`).
pub const UNINITIALIZED_TAINT: &str = crate::accounting::UNINITIALIZED_TAINT;
/// Taint key a Node carries until it is Ready (k8s.io/api `core/v1/well_known_taints.go`,
/// `TaintNodeNotReady`); set by the node lifecycle controller right after registration.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// Annotation the kubelet sets from `--node-ip` under an external cloud provider.
pub const PROVIDED_NODE_IP: &str = "alpha.kubernetes.io/provided-node-ip";
/// Annotation in which the k3s agent records its command line (JSON array of strings).
pub const K3S_NODE_ARGS: &str = "k3s.io/node-args";

/// RBAC equivalent of what kube-apiserver grants kubelets (the `system:node` bootstrap
/// ClusterRole's Node rules, plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go,
/// bound to group `system:nodes`), for tests that enable RBAC: append it to the policy
/// and give the fleet a token in group `system:nodes`. The admin actions of a fleet (taints,
/// labels, annotations) are covered too, since they use the same client.
pub const NODE_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: emulator:simulated-node
rules:
  - apiGroups: [""]
    resources: ["nodes"]
    verbs: ["create", "get", "list", "watch", "patch", "update"]
  - apiGroups: [""]
    resources: ["nodes/status"]
    verbs: ["patch", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: emulator:simulated-node
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: emulator:simulated-node
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: system:nodes
"#;

/// The collection URL of Nodes.
const NODES_PATH: &str = "/api/v1/nodes";

/// Errors of the simulated kubelets and admins.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The API server refused the request with a non-retryable answer.
    #[error("{action} of node {node:?} failed: {source}")]
    Request {
        /// What was attempted (e.g. "registration").
        action: &'static str,
        /// The Node name.
        node: String,
        /// The client error, with the server's Status when there is one.
        #[source]
        source: kube::Error,
    },
    /// Transient failures (5xx, 429, conflicts, refused connections) lasted longer than
    /// the fleet's retry budget.
    #[error(
        "{action} of node {node:?} still failing after retrying for {budget:?}: {source}; \
         is the API server reachable, or is a fault injected for longer than the budget?"
    )]
    RetriesExhausted {
        /// What was attempted.
        action: &'static str,
        /// The Node name.
        node: String,
        /// The retry budget that ran out.
        budget: Duration,
        /// The last failure.
        #[source]
        source: kube::Error,
    },
    /// Heartbeats were asked for with a zero period.
    #[error("the heartbeat period must be above zero")]
    ZeroPeriod,
    /// Heartbeats were started outside a Tokio runtime.
    #[error("heartbeats need a Tokio runtime; call start_heartbeats from async code")]
    NoRuntime,
}
