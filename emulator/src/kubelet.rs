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
//! Upstream behaviour mirrored (kubernetes `pkg/kubelet/kubelet_node_status.go`,
//! `pkg/kubelet/nodestatus/setters.go`, k8s.io/component-helpers `node/util/status.go`):
//! - registration is a `create` of the whole Node, retried with backoff on failure; an
//!   `AlreadyExists` answer means the Node exists and the kubelet adopts it;
//! - the initial Node carries only the taint `node.cloudprovider.kubernetes.io/uninitialized`
//!   (`initialNode` adds it under an external cloud provider), no podCIDR, and
//!   `status.nodeInfo` with the kubelet's and the runtime's versions (`VersionInfo`; k3s's
//!   read `v1.33.4+k3s1` and `containerd://2.0.5-k3s1`). It carries no `managedFields`: the
//!   API server computes them (k8s.io/apiserver `pkg/endpoints/handlers/create.go` calls
//!   `FieldManager.UpdateNoErrors`; structured-merge-diff `merge/update.go` then moves every
//!   field of a create to the requesting manager and drops every other manager's entry);
//! - with `--node-ip`, the kubelet sets `alpha.kubernetes.io/provided-node-ip` and reports
//!   the IPs as InternalIP; without it (since 1.29, KEP-3705) it reports only a Hostname.
//!
//! Then, each its own actor, after a delay of [`Registration`] counted from the create:
//! - **the k3s agent** (specs with `node_args`): `configureNode` (k3s `pkg/agent/run.go`)
//!   takes the Node as it sees it and sends an `Update` of the whole object, with its
//!   resourceVersion, adding `k3s.io/node-args`, `k3s.io/node-env` and
//!   `k3s.io/node-config-hash` (`pkg/nodeconfig/nodeconfig.go`,
//!   `SetNodeConfigAnnotations`); a conflict is retried from a fresh read;
//! - **the k3s server** (specs with `server_labels`): `setNodeLabelsAndAnnotations` (k3s
//!   `pkg/server/server.go`) does a Get and an Update adding
//!   `node-role.kubernetes.io/control-plane=true` and `node-role.kubernetes.io/master=true`;
//! - **the node IPAM controller** (simulated, switchable off): `spec.podCIDR` and
//!   `spec.podCIDRs` by a strategic merge patch without precondition, as
//!   `PatchNodeCIDRs` sends it (k8s.io/component-helpers `node/util/cidr.go`);
//! - **the node lifecycle controller** (simulated, switchable off): the taint
//!   `node.kubernetes.io/not-ready:NoSchedule` on a node that is not Ready
//!   (`doNoScheduleTaintingPass`). The API server's TaintNodesByCondition admission already
//!   adds it to every created Node (kubernetes `plugin/pkg/admission/nodetaint`; the
//!   emulator does the same), so this step only matters for a node that lost it. It is
//!   written as `controller.AddOrUpdateTaintOnNode` does:
//!   the whole taint list with the read resourceVersion as precondition, re-read after a
//!   409 (kubernetes `pkg/controller/controller_utils.go`, `PatchNodeTaints`).
//!
//! Heartbeats:
//! - status heartbeats are strategic merge patches of `nodes/status`, as
//!   `PatchNodeStatus` sends them (`CreateTwoWayMergePatch` output: the changed
//!   `lastHeartbeatTime` of each condition plus `$setElementOrder/conditions`);
//! - a node registers NotReady ("cni plugin not initialized"): flannel only starts once the
//!   cloud-controller-manager has removed the uninitialized taint. The heartbeat answer is
//!   the stored Node, so a heartbeat that finds the taint gone (and a podCIDR assigned)
//!   immediately sends the status update with which the kubelet reports Ready
//!   (`ReadyCondition` in `nodestatus/setters.go`: reason `KubeletReady`, a new
//!   `lastTransitionTime`), at most one heartbeat period after initialisation;
//! - the simulated node lifecycle controller then removes `node.kubernetes.io/not-ready`
//!   (`doNoScheduleTaintingPass`: a Ready node carries no condition taint), conflict-safely
//!   as `controller.RemoveTaintOffNode` does, first from the Node just seen, re-read after a
//!   409. Once a node is Ready without the taint, its heartbeat answers are no longer read.
//!
//! Not simulated: the kubelet's Lease heartbeats in `kube-node-lease`, the `NodeReady`
//! Event the kubelet records, the TTL controller's annotation, and the lifecycle
//! controller's rate-limited `not-ready:NoExecute` taint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
/// Reason and message of the Ready condition of a ready kubelet (kubernetes
/// `pkg/kubelet/nodestatus/setters.go`, `ReadyCondition`).
const READY_REASON: &str = "KubeletReady";
const READY_MESSAGE: &str = "kubelet is posting ready status";
/// Condition types in the order the kubelet reports them.
const CONDITION_TYPES: [&str; 4] = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];
/// Default number of container images a simulated node reports. Fifty keep a stored Node
/// at the size of a real k3s node, whose `managedFields` (about 2 KB, computed by a real
/// server, not by the emulator) the create does not carry.
const DEFAULT_IMAGES: usize = 50;
/// Default time a request is retried through transient failures before giving up.
const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(60);
/// Heartbeat requests in flight at once, so a slow server slows heartbeats down instead
/// of piling up tasks.
const HEARTBEATS_IN_FLIGHT: u32 = 256;
/// Conflicts of a k3s write retried at once from a fresh read, before the backoff.
const K3S_CONFLICT_RETRIES: u32 = 5;
/// First and largest pause between retries.
const BACKOFF_START: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// When the writes that follow a registration happen, counted from the create's answer,
/// and which of them the fleet simulates. Each is its own actor, as on a real cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The k3s agent's `Update` with `k3s.io/node-args` (specs with `node_args`). It
    /// watches for its Node (k3s `pkg/agent/run.go`, `configureNode`), so it follows the
    /// create closely.
    pub agent_delay: Duration,
    /// The k3s server's role labels (specs with `server_labels`). It polls for its Node
    /// each second (k3s `pkg/server/server.go`, `setNodeLabelsAndAnnotations`), so it comes
    /// up to a second after the create.
    pub server_delay: Duration,
    /// The simulated node lifecycle controller: the not-ready taint this long after the
    /// create, and its removal once the node is Ready. `None` where a real
    /// kube-controller-manager runs.
    pub lifecycle: Option<Duration>,
    /// The simulated node IPAM controller: the podCIDR this long after the create. `None`
    /// where a real kube-controller-manager runs.
    pub nodeipam: Option<Duration>,
}

impl Default for Registration {
    /// A k3s cluster as the emulator stands in for it: the controllers react to the new
    /// Node through their informers within milliseconds, the agent a moment later, the
    /// server within its one-second poll.
    fn default() -> Self {
        Registration {
            agent_delay: Duration::from_millis(20),
            server_delay: Duration::from_millis(500),
            lifecycle: Some(Duration::from_millis(5)),
            nodeipam: Some(Duration::from_millis(5)),
        }
    }
}

impl Registration {
    /// Against a real kube-apiserver with a kube-controller-manager: only the kubelet and
    /// k3s writes are simulated.
    pub fn real_cluster() -> Self {
        Registration {
            lifecycle: None,
            nodeipam: None,
            ..Registration::default()
        }
    }
}

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

/// How one simulated kubelet registers its Node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletSpec {
    /// The Node name (also its hostname).
    pub name: String,
    /// The kubelet's `--node-ip` values (one, or a dual-stack pair). When non-empty they
    /// are reported as InternalIP addresses (if `report_internal_ip`) and written to the
    /// provided-node-ip annotation.
    pub node_ip: Vec<String>,
    /// Whether the `node_ip` values appear as InternalIP addresses; `false` leaves only
    /// the Hostname address, as a kubelet without `--node-ip` reports since 1.29.
    pub report_internal_ip: bool,
    /// Overrides the provided-node-ip annotation value (e.g. a malformed one); when None
    /// it is `node_ip` joined with `,`, or absent when `node_ip` is empty.
    pub provided_node_ip: Option<String>,
    /// The `k3s.io/node-args` annotation as a list of arguments, when running under k3s.
    /// Written by the k3s agent after the create, not in it.
    pub node_args: Option<Vec<String>>,
    /// The other annotations the k3s agent writes with node-args (`k3s.io/node-env`,
    /// `k3s.io/node-config-hash`).
    pub agent_annotations: BTreeMap<String, String>,
    /// The labels a k3s server adds to its own node after the create (the role labels).
    pub server_labels: BTreeMap<String, String>,
    /// Labels added to the kubelet's own (`kubernetes.io/hostname`, `kubernetes.io/os`...),
    /// in the create (k3s passes `--node-label` to the kubelet's `--node-labels`).
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the kubelet's own, in the create.
    pub annotations: BTreeMap<String, String>,
    /// How many container images `status.images` lists (realistic nodes have 30–50).
    pub images: usize,
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
    /// `status.nodeInfo.containerRuntimeVersion`.
    pub container_runtime_version: String,
}

/// The versions a k3s node reports: k3s's kubelet and its bundled containerd.
const K3S_KUBELET_VERSION: &str = "v1.33.4+k3s1";
const K3S_RUNTIME_VERSION: &str = "containerd://2.0.5-k3s1";
/// The versions of a kubeadm-style node: an upstream kubelet and containerd.
const KUBELET_VERSION: &str = "v1.33.4";
const RUNTIME_VERSION: &str = "containerd://2.0.5";

impl KubeletSpec {
    /// A plain kubelet with `--cloud-provider=external` and no `--node-ip`: it reports only
    /// a Hostname address.
    pub fn new(name: &str) -> Self {
        KubeletSpec {
            name: name.to_owned(),
            node_ip: Vec::new(),
            report_internal_ip: true,
            provided_node_ip: None,
            node_args: None,
            agent_annotations: BTreeMap::new(),
            server_labels: BTreeMap::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            images: DEFAULT_IMAGES,
            kubelet_version: KUBELET_VERSION.to_owned(),
            container_runtime_version: RUNTIME_VERSION.to_owned(),
        }
    }

    /// A k3s agent started with `--node-ip v4[,v6]` and
    /// `--kubelet-arg cloud-provider=external`, its node-args annotation shaped as k3s
    /// writes it (`--flag value` split, secrets replaced by `********`).
    pub fn k3s_agent(name: &str, ipv4: &str, ipv6: Option<&str>) -> Self {
        Self::k3s(
            name,
            ipv4,
            ipv6,
            "agent",
            &["--server", "https://10.0.0.1:6443"],
        )
    }

    /// A k3s server with the embedded cloud controller disabled, to which the server adds
    /// the k3s control-plane labels (value "true") after registration.
    pub fn k3s_server(name: &str, ipv4: &str, ipv6: Option<&str>) -> Self {
        let mut spec = Self::k3s(name, ipv4, ipv6, "server", &["--disable-cloud-controller"]);
        for role in ["control-plane", "master"] {
            spec.server_labels
                .insert(format!("node-role.kubernetes.io/{role}"), "true".to_owned());
        }
        spec
    }

    fn k3s(name: &str, ipv4: &str, ipv6: Option<&str>, command: &str, extra: &[&str]) -> Self {
        let mut node_ip = vec![ipv4.to_owned()];
        node_ip.extend(ipv6.map(str::to_owned));
        let mut args = vec![command.to_owned()];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args.extend(
            [
                "--token",
                "********",
                "--node-ip",
                &node_ip.join(","),
                "--kubelet-arg",
                "cloud-provider=external",
            ]
            .map(str::to_owned),
        );
        let mut spec = KubeletSpec::new(name);
        spec.node_ip = node_ip;
        spec.node_args = Some(args);
        spec.kubelet_version = K3S_KUBELET_VERSION.to_owned();
        spec.container_runtime_version = K3S_RUNTIME_VERSION.to_owned();
        spec.agent_annotations.insert(
            "k3s.io/node-config-hash".to_owned(),
            "JTQY2VMCS3XSRGPS3YQ2WCAKRQ4QPHFXZ3EFAQ3NRLQJSTCNGHXQ====".to_owned(),
        );
        spec.agent_annotations.insert(
            "k3s.io/node-env".to_owned(),
            r#"{"K3S_DATA_DIR":"/var/lib/rancher/k3s/data/1c1d2a6f","K3S_TOKEN":"********"}"#
                .to_owned(),
        );
        spec
    }
}

/// A deterministic 64-bit mix of a string and a salt, to derive stable fake digests,
/// machine IDs and pod CIDRs from a node name.
fn mix(text: &str, salt: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ salt;
    for byte in text.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

fn hex(text: &str, salt: u64, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut round = 0;
    while out.len() < len {
        out.push_str(&format!("{:016x}", mix(text, salt.wrapping_add(round))));
        round += 1;
    }
    out.truncate(len);
    out
}

/// Repositories of the images a k3s node typically pulls.
const IMAGE_REPOSITORIES: [&str; 12] = [
    "docker.io/rancher/mirrored-pause",
    "docker.io/rancher/mirrored-coredns-coredns",
    "docker.io/rancher/local-path-provisioner",
    "docker.io/rancher/mirrored-metrics-server",
    "docker.io/rancher/klipper-helm",
    "docker.io/rancher/mirrored-library-traefik",
    "docker.io/rancher/klipper-lb",
    "registry.k8s.io/ingress-nginx/controller",
    "quay.io/prometheus/node-exporter",
    "docker.io/grafana/promtail",
    "quay.io/jetstack/cert-manager-controller",
    "ghcr.io/example/application",
];

fn images(spec: &KubeletSpec) -> Vec<Value> {
    (0..spec.images)
        .map(|i| {
            let repository = IMAGE_REPOSITORIES[i % IMAGE_REPOSITORIES.len()];
            let tag = format!("v1.{}.{}", i / IMAGE_REPOSITORIES.len(), i % 7);
            let digest = hex(repository, i as u64, 64);
            json!({
                "names": [format!("{repository}@sha256:{digest}"), format!("{repository}:{tag}")],
                "sizeBytes": 300_000 + (mix(repository, i as u64) % 150_000_000),
            })
        })
        .collect()
}

fn condition(kind: &str, now: &str) -> Value {
    let (status, reason, message) = match kind {
        "MemoryPressure" => (
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        "DiskPressure" => (
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        "PIDPressure" => (
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        _ => (
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false \
             reason:NetworkPluginNotReady message:Network plugin returns error: \
             cni plugin not initialized",
        ),
    };
    json!({
        "type": kind,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

fn timestamp_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The Node JSON a kubelet sends when it registers (10–20 KB with the default 40
/// images), before the server adds uid, resourceVersion, creationTimestamp and
/// managedFields. What k3s and the controllers add later is not in it (see
/// [`described_node`]).
pub fn node_object(spec: &KubeletSpec) -> Value {
    let now = timestamp_now();
    let name = spec.name.as_str();

    let mut labels = Map::new();
    for (key, value) in [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
    ] {
        labels.insert(key.to_owned(), json!(value));
    }
    for (key, value) in &spec.labels {
        labels.insert(key.clone(), json!(value));
    }

    let mut annotations = Map::new();
    annotations.insert(
        "volumes.kubernetes.io/controller-managed-attach-detach".to_owned(),
        json!("true"),
    );
    let provided = spec
        .provided_node_ip
        .clone()
        .or_else(|| (!spec.node_ip.is_empty()).then(|| spec.node_ip.join(",")));
    if let Some(provided) = provided {
        annotations.insert(PROVIDED_NODE_IP.to_owned(), json!(provided));
    }
    for (key, value) in &spec.annotations {
        annotations.insert(key.clone(), json!(value));
    }

    let mut addresses: Vec<Value> = Vec::new();
    if spec.report_internal_ip {
        addresses.extend(
            spec.node_ip
                .iter()
                .map(|ip| json!({"type": "InternalIP", "address": ip})),
        );
    }
    addresses.push(json!({"type": "Hostname", "address": name}));

    let conditions: Vec<Value> = CONDITION_TYPES
        .iter()
        .map(|kind| condition(kind, &now))
        .collect();

    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "taints": [
                {"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"},
            ],
        },
        "status": {
            "capacity": {
                "cpu": "8", "ephemeral-storage": "102626232Ki", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "32823552Ki", "pods": "110",
            },
            "allocatable": {
                "cpu": "8", "ephemeral-storage": "99833802265", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "32823552Ki", "pods": "110",
            },
            "conditions": conditions,
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hex(name, 1, 32),
                "systemUUID": hex(name, 2, 32),
                "bootID": hex(name, 3, 32),
                "kernelVersion": "6.8.0-45-generic",
                "osImage": "Ubuntu 24.04.1 LTS",
                "containerRuntimeVersion": spec.container_runtime_version,
                "kubeletVersion": spec.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": images(spec),
            "runtimeHandlers": [
                {"name": "runc", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
                {"name": "", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
            ],
        },
    })
}

/// The pod CIDR the simulated node IPAM controller gives a node (derived from its name;
/// the emulator does not check that CIDRs are unique).
pub fn pod_cidr(name: &str) -> String {
    format!("10.42.{}.0/24", mix(name, 7) % 250)
}

/// The Node once its registration is complete, as a client would read it: the create of
/// [`node_object`], then the k3s agent's annotations, the k3s server's labels, the podCIDR
/// and the not-ready taint (all four regardless of the fleet's [`Registration`]). For
/// tests and fixtures that need a node "as k3s leaves it".
pub fn described_node(spec: &KubeletSpec) -> Value {
    let mut node = node_object(spec);
    let mut annotations = spec.agent_annotations.clone();
    if let Some(args) = &spec.node_args {
        annotations.insert(K3S_NODE_ARGS.to_owned(), node_args_value(args));
    }
    for (key, value) in annotations {
        node["metadata"]["annotations"][key] = json!(value);
    }
    for (key, value) in &spec.server_labels {
        node["metadata"]["labels"][key] = json!(value);
    }
    let cidr = pod_cidr(&spec.name);
    node["spec"]["podCIDR"] = json!(cidr);
    node["spec"]["podCIDRs"] = json!([cidr]);
    if let Some(taints) = node["spec"]["taints"].as_array_mut() {
        taints.push(not_ready_taint());
    }
    node
}

/// k3s stores the arguments as a JSON array serialised into the annotation string.
fn node_args_value(args: &[String]) -> String {
    json!(args).to_string()
}

fn not_ready_taint() -> Value {
    json!({"key": NOT_READY_TAINT, "effect": "NoSchedule"})
}

/// The strategic merge patch of `nodes/status` a kubelet sends when only the heartbeat
/// times changed (the output of `CreateTwoWayMergePatch` in `PatchNodeStatus`).
pub fn heartbeat_patch(now: &str) -> Value {
    let order: Vec<Value> = CONDITION_TYPES.iter().map(|t| json!({"type": t})).collect();
    let conditions: Vec<Value> = CONDITION_TYPES
        .iter()
        .map(|t| json!({"type": t, "lastHeartbeatTime": now}))
        .collect();
    json!({"status": {"$setElementOrder/conditions": order, "conditions": conditions}})
}

/// The strategic merge patch of `nodes/status` with which a kubelet reports that it became
/// Ready: the Ready condition turns True with a new transition time, the other conditions
/// only get their heartbeat.
pub fn ready_patch(now: &str) -> Value {
    let mut patch = heartbeat_patch(now);
    let ready = patch["status"]["conditions"]
        .as_array_mut()
        .and_then(|conditions| conditions.iter_mut().find(|c| c["type"] == "Ready"));
    if let Some(ready) = ready {
        ready["status"] = json!("True");
        ready["reason"] = json!(READY_REASON);
        ready["message"] = json!(READY_MESSAGE);
        ready["lastTransitionTime"] = json!(now);
    }
    patch
}

/// The few fields of a Node answer the simulated kubelet and node lifecycle controller
/// look at; everything else in the answer is skipped without being built into values.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NodeGlance {
    metadata: GlanceMetadata,
    spec: GlanceSpec,
    status: GlanceStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GlanceMetadata {
    resource_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceSpec {
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<String>,
    taints: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceStatus {
    conditions: Vec<GlanceCondition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

impl NodeGlance {
    fn has_taint(&self, key: &str) -> bool {
        self.spec.taints.iter().any(|t| t["key"] == key)
    }

    fn is_ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status == "True")
    }

    /// Whether flannel would be up: the CCM removed the uninitialized taint (flannel's
    /// pods do not tolerate it) and the node has a pod CIDR to configure.
    fn network_ready(&self) -> bool {
        !self.has_taint(UNINITIALIZED_TAINT)
            && self.spec.pod_cidr.as_deref().is_some_and(|c| !c.is_empty())
    }

    fn into_taints(self) -> TaintSnapshot {
        TaintSnapshot {
            resource_version: self.metadata.resource_version,
            taints: self.spec.taints,
        }
    }
}

/// A Node's taints with the resourceVersion they were read at.
struct TaintSnapshot {
    resource_version: Option<String>,
    taints: Vec<Value>,
}

impl TaintSnapshot {
    fn of(node: Node) -> TaintSnapshot {
        TaintSnapshot {
            resource_version: node.metadata.resource_version,
            taints: node
                .spec
                .and_then(|spec| spec.taints)
                .unwrap_or_default()
                .iter()
                .map(|taint| json!(taint))
                .collect(),
        }
    }
}

/// A registered node in the heartbeat rotation.
struct SimulatedNode {
    name: String,
    /// Set once the node is Ready without the not-ready taint; from then on its heartbeat
    /// answers are not parsed.
    settled: AtomicBool,
}

/// Counts of heartbeats sent by a fleet, to show that heartbeat traffic existed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatStats {
    /// Heartbeat patches the server accepted.
    pub sent: u64,
    /// Heartbeat patches that failed (they are not retried: the next period covers them).
    pub failed: u64,
}

struct Heartbeats {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

struct Inner {
    client: Client,
    nodes: Api<Node>,
    retry_budget: Duration,
    registration: Registration,
    /// The writes that follow registrations, still to come or under way.
    followups: Followups,
    registered: Mutex<Vec<Arc<SimulatedNode>>>,
    heartbeats: Mutex<Option<Heartbeats>>,
    /// Bounds the heartbeat requests in flight; a permit is held until the answer.
    heartbeats_in_flight: Arc<Semaphore>,
    sent: AtomicU64,
    failed: AtomicU64,
}

/// Counts the follow-up writes of registrations, so that they can be awaited and stopped.
#[derive(Default)]
struct Followups {
    pending: AtomicU64,
    failed: AtomicU64,
    done: tokio::sync::Notify,
    cancel: Mutex<CancellationToken>,
}

impl Followups {
    fn token(&self) -> CancellationToken {
        lock(&self.cancel).clone()
    }
}

/// A set of simulated kubelets (and admins) sharing one client. Dropping it stops the
/// heartbeats and the registrations' follow-up writes.
pub struct Fleet {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a failure is worth retrying: the ones a real client retries (server errors,
/// throttling, conflicts) and transport failures such as refused connections.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => match status.code {
            409 => status.reason != "AlreadyExists",
            429 | 500 | 502 | 503 | 504 => true,
            _ => false,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

impl Inner {
    /// Runs `attempt` until it succeeds, fails for good, or transient failures outlast the
    /// retry budget. Backoff doubles from 20 ms to 1 s, with jitter so that thousands of
    /// kubelets do not retry in lockstep; a server-requested Retry-After wins.
    async fn retry<T, F, Fut>(
        &self,
        action: &'static str,
        node: &str,
        mut attempt: F,
    ) -> Result<T, KubeletError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let start = Instant::now();
        let mut pause = BACKOFF_START;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(source) if !is_transient(&source) => {
                    return Err(KubeletError::Request {
                        action,
                        node: node.to_owned(),
                        source,
                    });
                }
                Err(source) if start.elapsed() >= self.retry_budget => {
                    return Err(KubeletError::RetriesExhausted {
                        action,
                        node: node.to_owned(),
                        budget: self.retry_budget,
                        source,
                    });
                }
                // A 429's `Retry-After` header is honoured by the kube-rs client's own retry
                // policy before the error reaches here (kube-client `client/retry.rs`); what
                // gets here backs off with jitter.
                Err(_) => {
                    let jitter = rand::random_range(0..=pause.as_millis() as u64 / 2);
                    tokio::time::sleep(pause + Duration::from_millis(jitter)).await;
                    pause = (pause * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Changes `spec.taints` conflict-safely: read the Node (or start from `known`, taints
    /// just seen), edit its taints, write them back with the read resourceVersion as a
    /// precondition, and start again from a fresh read on 409.
    async fn edit_taints(
        &self,
        action: &'static str,
        node: &str,
        known: Option<TaintSnapshot>,
        edit: impl Fn(&mut Vec<Value>) -> bool,
    ) -> Result<(), KubeletError> {
        let known = Mutex::new(known);
        self.retry(action, node, || async {
            let seen = lock(&known).take();
            let TaintSnapshot {
                resource_version,
                mut taints,
            } = match seen {
                Some(seen) => seen,
                None => TaintSnapshot::of(self.nodes.get(node).await?),
            };
            if !edit(&mut taints) {
                return Ok(());
            }
            let taints = if taints.is_empty() {
                Value::Null
            } else {
                json!(taints)
            };
            let patch = json!({
                "metadata": {"resourceVersion": resource_version},
                "spec": {"taints": taints},
            });
            self.nodes
                .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(drop)
        })
        .await
    }
}

/// The strategic merge patch of the node IPAM controller (k8s.io/component-helpers
/// `node/util/cidr.go`, `PatchNodeCIDRs`: `podCIDR` and `podCIDRs`, no precondition).
fn nodeipam_patch(name: &str) -> Value {
    let cidr = pod_cidr(name);
    json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
}

impl Inner {
    /// The node IPAM controller's write.
    async fn assign_pod_cidr(&self, node: &str, patch: &Value) -> Result<(), KubeletError> {
        self.retry("podCIDR assignment", node, || async {
            let request = kube::core::Request::new(NODES_PATH)
                .patch(node, &PatchParams::default(), &Patch::Strategic(patch))
                .map_err(kube::Error::BuildRequest)?;
            self.client.request_text(request).await.map(drop)
        })
        .await
    }

    /// The node lifecycle controller's `not-ready:NoSchedule` taint on a node that is not
    /// Ready, from a fresh read (`AddOrUpdateTaintOnNode`).
    async fn taint_not_ready(&self, node: &str) -> Result<(), KubeletError> {
        let seen = self
            .retry("not-ready taint addition", node, || async {
                let request = kube::core::Request::new(NODES_PATH)
                    .get(node, &kube::api::GetParams::default())
                    .map_err(kube::Error::BuildRequest)?;
                let text = self.client.request_text(request).await?;
                serde_json::from_str::<NodeGlance>(&text).map_err(kube::Error::SerdeError)
            })
            .await?;
        if seen.is_ready() {
            return Ok(());
        }
        self.edit_taints(
            "not-ready taint addition",
            node,
            Some(seen.into_taints()),
            |taints| {
                if taints.iter().any(|t| t["key"] == NOT_READY_TAINT) {
                    return false;
                }
                taints.push(not_ready_taint());
                true
            },
        )
        .await
    }

    /// What k3s does to add metadata: read the whole Node, set the entries of `field`
    /// (`labels` or `annotations`), and `Update` it with the read resourceVersion,
    /// starting again from a fresh read after a 409. k3s `configureNode` retries on the
    /// watch event of the write it lost to, that is at once; so are the first
    /// [`K3S_CONFLICT_RETRIES`] here, then with the fleet's backoff.
    async fn update_metadata(
        &self,
        action: &'static str,
        node: &str,
        field: &str,
        entries: &BTreeMap<String, String>,
    ) -> Result<(), KubeletError> {
        self.retry(action, node, || async {
            let mut conflicts = 0;
            loop {
                match self.update_metadata_once(node, field, entries).await {
                    Err(kube::Error::Api(s))
                        if s.code == 409 && conflicts < K3S_CONFLICT_RETRIES =>
                    {
                        conflicts += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    /// One read and `Update` of [`Inner::update_metadata`].
    async fn update_metadata_once(
        &self,
        node: &str,
        field: &str,
        entries: &BTreeMap<String, String>,
    ) -> Result<(), kube::Error> {
        let request = kube::core::Request::new(NODES_PATH)
            .get(node, &kube::api::GetParams::default())
            .map_err(kube::Error::BuildRequest)?;
        let mut object: Value = serde_json::from_str(&self.client.request_text(request).await?)
            .map_err(kube::Error::SerdeError)?;
        let metadata = &mut object["metadata"];
        if !metadata[field].is_object() {
            metadata[field] = json!({});
        }
        let mut changed = false;
        for (key, value) in entries {
            if metadata[field][key] != json!(value) {
                metadata[field][key] = json!(value);
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        let body = serde_json::to_vec(&object).map_err(kube::Error::SerdeError)?;
        let request = kube::core::Request::new(NODES_PATH)
            .replace(node, &PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        self.client.request_text(request).await.map(drop)
    }
}

impl Fleet {
    /// A fleet sending its requests through `client`, retrying transient failures for up to
    /// 60 s per action.
    pub fn new(client: Client) -> Fleet {
        Fleet::with_retry_budget(client, DEFAULT_RETRY_BUDGET)
    }

    /// A fleet retrying transient failures for up to `budget` per action (a reliability
    /// test with a 15 s outage needs more than 15 s).
    pub fn with_retry_budget(client: Client, budget: Duration) -> Fleet {
        Fleet::with_registration(client, budget, Registration::default())
    }

    /// A fleet whose registrations are followed as `registration` says (see
    /// [`Registration::real_cluster`] for a real kube-apiserver, with an admin client).
    pub fn with_registration(
        client: Client,
        budget: Duration,
        registration: Registration,
    ) -> Fleet {
        Fleet {
            inner: Arc::new(Inner {
                nodes: Api::all(client.clone()),
                client,
                retry_budget: budget,
                registration,
                followups: Followups::default(),
                registered: Mutex::new(Vec::new()),
                heartbeats: Mutex::new(None),
                heartbeats_in_flight: Arc::new(Semaphore::new(HEARTBEATS_IN_FLIGHT as usize)),
                sent: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        }
    }

    /// Registers one Node as its kubelet would, adds it to the heartbeat rotation, and
    /// starts the writes that follow a registration ([`Registration`]); returns once the
    /// create is answered ([`Fleet::settled`] waits for the rest). The JSON is posted as is
    /// and the answer is not parsed, to keep the simulated kubelets' own CPU use small
    /// next to the system under test.
    pub async fn register(&self, spec: &KubeletSpec) -> Result<(), KubeletError> {
        let body = serde_json::to_vec(&node_object(spec)).map_err(|e| KubeletError::Request {
            action: "registration",
            node: spec.name.clone(),
            source: kube::Error::SerdeError(e),
        })?;
        self.inner
            .retry("registration", &spec.name, || async {
                let request = kube::core::Request::new(NODES_PATH)
                    .create(&PostParams::default(), body.clone())
                    .map_err(kube::Error::BuildRequest)?;
                match self.inner.client.request_text(request).await {
                    // The Node exists already (an earlier attempt got through although its answer
                    // was lost, or the kubelet restarted): the kubelet adopts it
                    // (`tryRegisterWithAPIServer` in kubelet_node_status.go).
                    Err(e) if is_already_exists(&e) => Ok(()),
                    other => other.map(drop),
                }
            })
            .await?;
        lock(&self.inner.registered).push(Arc::new(SimulatedNode {
            name: spec.name.clone(),
            settled: AtomicBool::new(false),
        }));
        self.follow_up(spec);
        Ok(())
    }

    /// Starts the actors that write to a Node after its registration, each after its delay.
    fn follow_up(&self, spec: &KubeletSpec) {
        let r = &self.inner.registration;
        let name = spec.name.as_str();
        if let Some(delay) = r.nodeipam {
            let patch = nodeipam_patch(name);
            self.spawn_followup(delay, name, move |inner, node| async move {
                inner.assign_pod_cidr(&node, &patch).await
            });
        }
        if let Some(delay) = r.lifecycle {
            self.spawn_followup(delay, name, |inner, node| async move {
                inner.taint_not_ready(&node).await
            });
        }
        if let Some(args) = &spec.node_args {
            let mut annotations = spec.agent_annotations.clone();
            annotations.insert(K3S_NODE_ARGS.to_owned(), node_args_value(args));
            self.spawn_followup(r.agent_delay, name, move |inner, node| async move {
                inner
                    .update_metadata(
                        "k3s agent node-args update",
                        &node,
                        "annotations",
                        &annotations,
                    )
                    .await
            });
        }
        if !spec.server_labels.is_empty() {
            let labels = spec.server_labels.clone();
            self.spawn_followup(r.server_delay, name, move |inner, node| async move {
                inner
                    .update_metadata("k3s server role labels", &node, "labels", &labels)
                    .await
            });
        }
    }

    /// Runs `write` for `node` after `delay`, counted in [`Fleet::settled`] and cancelled
    /// by [`Fleet::stop`] and by dropping the fleet.
    fn spawn_followup<F, Fut>(&self, delay: Duration, node: &str, write: F)
    where
        F: FnOnce(Arc<Inner>, String) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), KubeletError>> + Send,
    {
        let inner = self.inner.clone();
        let cancel = inner.followups.token();
        let node = node.to_owned();
        inner.followups.pending.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let result = tokio::select! {
                _ = cancel.cancelled() => Ok(()),
                result = async {
                    tokio::time::sleep(delay).await;
                    write(inner.clone(), node).await
                } => result,
            };
            if let Err(e) = result {
                inner.followups.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "a simulated write after registration failed");
            }
            if inner.followups.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                inner.followups.done.notify_waiters();
            }
        });
    }

    /// Waits until every write that follows the registrations so far has been made (or
    /// has failed for good: see [`Fleet::followup_failures`]).
    pub async fn settled(&self) {
        let followups = &self.inner.followups;
        loop {
            let done = followups.done.notified();
            if followups.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }

    /// Follow-up writes that failed for good (retry budget exhausted, or refused).
    pub fn followup_failures(&self) -> u64 {
        self.inner.followups.failed.load(Ordering::Relaxed)
    }

    /// Registers many Nodes with at most `concurrency` registrations in flight, either all
    /// at once (`rate_per_sec` None) or started at a steady rate. Stops at the first
    /// registration that fails for good.
    pub async fn register_all(
        &self,
        specs: Vec<KubeletSpec>,
        rate_per_sec: Option<f64>,
        concurrency: usize,
    ) -> Result<(), KubeletError> {
        let start = tokio::time::Instant::now();
        let interval = rate_per_sec
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .map(|rate| Duration::from_secs_f64(1.0 / rate));
        futures::stream::iter(specs.into_iter().enumerate().map(Ok))
            .try_for_each_concurrent(concurrency.max(1), |(index, spec)| async move {
                if let Some(interval) = interval {
                    let offset = interval.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX));
                    tokio::time::sleep_until(start + offset).await;
                }
                self.register(&spec).await
            })
            .await
    }

    /// Starts (or restarts with a new period) the status heartbeats of every registered
    /// node, including nodes registered later. Each node heartbeats once per `period`, the
    /// nodes spread evenly over the period. Must be called inside a Tokio runtime.
    pub fn start_heartbeats(&self, period: Duration) -> Result<(), KubeletError> {
        if period.is_zero() {
            return Err(KubeletError::ZeroPeriod);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| KubeletError::NoRuntime)?;
        let cancel = CancellationToken::new();
        let task = runtime.spawn(heartbeat_loop(self.inner.clone(), period, cancel.clone()));
        if let Some(old) = lock(&self.inner.heartbeats).replace(Heartbeats { cancel, task }) {
            old.cancel.cancel();
        }
        Ok(())
    }

    /// Heartbeats sent and failed so far.
    pub fn heartbeat_stats(&self) -> HeartbeatStats {
        HeartbeatStats {
            sent: self.inner.sent.load(Ordering::Relaxed),
            failed: self.inner.failed.load(Ordering::Relaxed),
        }
    }

    /// Names of the nodes this fleet registered, in registration order.
    pub fn registered(&self) -> Vec<String> {
        lock(&self.inner.registered)
            .iter()
            .map(|node| node.name.clone())
            .collect()
    }

    /// Adds a taint (or overwrites the value of the taint with the same key and effect),
    /// keeping every other taint, like `kubectl taint nodes N key=value:effect --overwrite`.
    pub async fn add_taint(
        &self,
        node: &str,
        key: &str,
        value: &str,
        effect: &str,
    ) -> Result<(), KubeletError> {
        let wanted = if value.is_empty() {
            json!({"key": key, "effect": effect})
        } else {
            json!({"key": key, "value": value, "effect": effect})
        };
        self.inner
            .edit_taints("taint addition", node, None, |taints| {
                let same = |t: &Value| t["key"] == key && t["effect"] == effect;
                match taints.iter_mut().find(|t| same(t)) {
                    Some(existing) if *existing == wanted => false,
                    Some(existing) => {
                        *existing = wanted.clone();
                        true
                    }
                    None => {
                        taints.push(wanted.clone());
                        true
                    }
                }
            })
            .await
    }

    /// Removes every taint with `key` (any effect), keeping the others, like
    /// `kubectl taint nodes N key-`. Removing an absent taint changes nothing.
    pub async fn remove_taint(&self, node: &str, key: &str) -> Result<(), KubeletError> {
        self.inner
            .edit_taints("taint removal", node, None, |taints| {
                remove_taint_key(taints, key)
            })
            .await
    }

    /// Sets (Some) or removes (None) one metadata map entry with a JSON merge patch that
    /// names only that key, so concurrent changes to other keys are kept.
    async fn set_metadata_entry(
        &self,
        action: &'static str,
        field: &str,
        node: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), KubeletError> {
        let patch = json!({"metadata": {field: {key: value}}});
        self.inner
            .retry(action, node, || async {
                self.inner
                    .nodes
                    .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(drop)
            })
            .await
    }

    /// Sets or (with None) removes a label, like `kubectl label nodes N key=value` / `key-`.
    pub async fn set_label(
        &self,
        node: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), KubeletError> {
        self.set_metadata_entry("label change", "labels", node, key, value)
            .await
    }

    /// Sets or (with None) removes an annotation, like `kubectl annotate nodes N key=value`.
    pub async fn set_annotation(
        &self,
        node: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), KubeletError> {
        self.set_metadata_entry("annotation change", "annotations", node, key, value)
            .await
    }

    /// Stops the heartbeats and the registrations' follow-up writes, and waits until the
    /// last request in flight has been answered, so none reaches the server after this
    /// returns. The fleet may register again afterwards.
    pub async fn stop(&self) {
        let followups = &self.inner.followups;
        std::mem::replace(&mut *lock(&followups.cancel), CancellationToken::new()).cancel();
        self.settled().await;
        let heartbeats = lock(&self.inner.heartbeats).take();
        if let Some(heartbeats) = heartbeats {
            heartbeats.cancel.cancel();
            // The task only ends by cancellation; a join error means it panicked, which
            // the heartbeat counters already reflect.
            let _ = heartbeats.task.await;
        }
        // Every heartbeat request holds a permit until it is answered. The semaphore is
        // never closed, so acquiring cannot fail.
        let _ = self
            .inner
            .heartbeats_in_flight
            .acquire_many(HEARTBEATS_IN_FLIGHT)
            .await;
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(heartbeats) = lock(&self.inner.heartbeats).take() {
            heartbeats.cancel.cancel();
        }
        lock(&self.inner.followups.cancel).cancel();
    }
}

/// Sends one heartbeat per registered node per period, each node at its own offset in the
/// period, with a bounded number of requests in flight.
/// Slots per heartbeat period: a node waits at most `period / HEARTBEAT_SLOTS` after
/// registering for its first heartbeat.
const HEARTBEAT_SLOTS: u32 = 50;

async fn heartbeat_loop(inner: Arc<Inner>, period: Duration, cancel: CancellationToken) {
    let in_flight = inner.heartbeats_in_flight.clone();
    // The period is cut into slots and each node beats in the slot of its registration
    // index, once per period. A node registered a moment ago beats within one slot rather
    // than after a whole round, so even a sub-second burst of joining nodes meets
    // heartbeat traffic, as it does in a real cluster.
    let slot_len = period / HEARTBEAT_SLOTS;
    for tick in 0u64.. {
        let start = tokio::time::Instant::now();
        let slot = usize::try_from(tick % u64::from(HEARTBEAT_SLOTS)).unwrap_or(0);
        let due_nodes: Vec<Arc<SimulatedNode>> = lock(&inner.registered)
            .iter()
            .skip(slot)
            .step_by(HEARTBEAT_SLOTS as usize)
            .cloned()
            .collect();
        let count = due_nodes.len().max(1) as f64;
        for (index, node) in due_nodes.into_iter().enumerate() {
            let due = start + slot_len.mul_f64(index as f64 / count);
            let permit = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(due) => {
                    match in_flight.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    }
                }
            };
            let inner = inner.clone();
            tokio::spawn(async move {
                let ok = send_heartbeat(&inner, &node).await;
                let counter = if ok { &inner.sent } else { &inner.failed };
                counter.fetch_add(1, Ordering::Relaxed);
                drop(permit);
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(start + slot_len) => {}
        }
    }
}

/// One status heartbeat. The answer is read only until the node is Ready without the
/// not-ready taint, to keep the simulated kubelets' own CPU use small next to the system
/// under test.
async fn send_heartbeat(inner: &Inner, node: &SimulatedNode) -> bool {
    let Ok(answer) = patch_status(inner, &node.name, &heartbeat_patch(&timestamp_now())).await
    else {
        return false;
    };
    if !node.settled.load(Ordering::Relaxed) {
        let settled = become_ready(inner, &node.name, &answer).await;
        node.settled.store(settled, Ordering::Relaxed);
    }
    true
}

/// Sends a strategic merge patch of `nodes/status` as the kubelet's `PatchNodeStatus` does,
/// and returns the stored Node as text.
async fn patch_status(inner: &Inner, name: &str, patch: &Value) -> Result<String, kube::Error> {
    let request = kube::core::Request::new(NODES_PATH)
        .patch_subresource(
            "status",
            name,
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .map_err(kube::Error::BuildRequest)?;
    inner.client.request_text(request).await
}

/// Moves a node towards Ready from the Node a heartbeat just returned: the kubelet
/// reports Ready once its network is up, then the (simulated) node lifecycle controller
/// removes the not-ready taint. Returns whether the node is Ready without that taint. A failed step is
/// left to the next heartbeat, as the real components retry on their next sync.
async fn become_ready(inner: &Inner, name: &str, answer: &str) -> bool {
    let Ok(mut seen) = serde_json::from_str::<NodeGlance>(answer) else {
        return false;
    };
    if !seen.is_ready() {
        if !seen.network_ready() {
            return false;
        }
        let reported = patch_status(inner, name, &ready_patch(&timestamp_now())).await;
        match reported.map(|text| serde_json::from_str::<NodeGlance>(&text)) {
            Ok(Ok(after)) => seen = after,
            _ => return false,
        }
    }
    if !seen.has_taint(NOT_READY_TAINT) {
        return true;
    }
    if inner.registration.lifecycle.is_none() {
        // A real node lifecycle controller removes it; later heartbeats look again.
        return false;
    }
    inner
        .edit_taints(
            "not-ready taint removal",
            name,
            Some(seen.into_taints()),
            |taints| remove_taint_key(taints, NOT_READY_TAINT),
        )
        .await
        .is_ok()
}

/// Removes every taint with `key` (any effect); returns whether one was there.
fn remove_taint_key(taints: &mut Vec<Value>, key: &str) -> bool {
    let before = taints.len();
    taints.retain(|t| t["key"] != key);
    taints.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(spec: &KubeletSpec) -> usize {
        serde_json::to_vec(&node_object(spec)).map_or(0, |bytes| bytes.len())
    }

    fn addresses(node: &Value) -> Vec<(String, String)> {
        node["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["type"].as_str().unwrap_or("").to_owned(),
                    a["address"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn nodes_are_between_10_and_20_kilobytes() {
        for spec in [
            KubeletSpec::new("worker-1"),
            KubeletSpec::k3s_agent("agent-1", "10.0.0.5", Some("fd00::5")),
            KubeletSpec::k3s_server("server-1", "10.0.0.2", None),
        ] {
            let bytes = size(&spec);
            assert!(
                (10_000..=20_000).contains(&bytes),
                "{}: {bytes} bytes",
                spec.name
            );
        }
        let mut big = KubeletSpec::new("big");
        big.images = 60;
        assert!(size(&big) <= 20_000, "{} bytes", size(&big));
    }

    #[test]
    fn the_create_carries_only_what_the_kubelet_sends() {
        for spec in [
            KubeletSpec::new("worker-1"),
            KubeletSpec::k3s_server("server-1", "10.0.0.2", None),
        ] {
            let node = node_object(&spec);
            assert_eq!(
                node["spec"],
                json!({"taints": [
                    {"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"},
                ]}),
                "no not-ready taint and no podCIDR: the controllers add them later"
            );
            assert_eq!(
                node["metadata"]["labels"]["kubernetes.io/hostname"],
                spec.name.as_str()
            );
            let meta = node["metadata"].as_object().cloned().unwrap_or_default();
            for server_set in [
                "resourceVersion",
                "managedFields",
                "creationTimestamp",
                "uid",
            ] {
                assert!(!meta.contains_key(server_set), "{server_set}");
            }
            let annotations = &node["metadata"]["annotations"];
            for k3s_writes in [K3S_NODE_ARGS, "k3s.io/node-env", "k3s.io/node-config-hash"] {
                assert!(annotations.get(k3s_writes).is_none(), "{k3s_writes}");
            }
            assert!(
                node["metadata"]["labels"]
                    .get("node-role.kubernetes.io/control-plane")
                    .is_none()
            );
        }
    }

    #[test]
    fn described_node_adds_what_k3s_and_the_controllers_write() {
        let spec = KubeletSpec::k3s_server("server-1", "10.0.0.2", None);
        let node = described_node(&spec);
        let cidr = pod_cidr("server-1");
        assert_eq!(node["spec"]["podCIDR"], cidr.as_str());
        assert_eq!(node["spec"]["podCIDRs"], json!([cidr]));
        assert_eq!(
            node["spec"]["taints"],
            json!([
                {"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"},
                {"key": NOT_READY_TAINT, "effect": "NoSchedule"},
            ])
        );
        let annotations = &node["metadata"]["annotations"];
        assert!(
            annotations[K3S_NODE_ARGS]
                .as_str()
                .is_some_and(|a| a.starts_with(r#"["server""#))
        );
        assert!(annotations["k3s.io/node-config-hash"].is_string());
        assert_eq!(
            node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
            "true"
        );
    }

    #[test]
    fn kubelet_without_node_ip_reports_only_its_hostname() {
        let node = node_object(&KubeletSpec::new("worker-1"));
        assert_eq!(
            addresses(&node),
            [("Hostname".to_owned(), "worker-1".to_owned())]
        );
        assert!(
            node["metadata"]["annotations"]
                .get(PROVIDED_NODE_IP)
                .is_none()
        );
        assert!(node["metadata"]["annotations"].get(K3S_NODE_ARGS).is_none());
    }

    #[test]
    fn dual_stack_k3s_agent_reports_both_ips_and_annotations() {
        let spec = KubeletSpec::k3s_agent("agent-1", "10.0.0.5", Some("fd00::5"));
        let node = node_object(&spec);
        assert_eq!(
            addresses(&node),
            [
                ("InternalIP".to_owned(), "10.0.0.5".to_owned()),
                ("InternalIP".to_owned(), "fd00::5".to_owned()),
                ("Hostname".to_owned(), "agent-1".to_owned()),
            ]
        );
        assert_eq!(
            node["metadata"]["annotations"][PROVIDED_NODE_IP],
            "10.0.0.5,fd00::5"
        );
        let described = described_node(&spec);
        let args: Vec<String> = described["metadata"]["annotations"][K3S_NODE_ARGS]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        assert_eq!(args.first().map(String::as_str), Some("agent"));
        let node_ip = args.iter().position(|a| a == "--node-ip");
        assert_eq!(
            node_ip.and_then(|i| args.get(i + 1)).map(String::as_str),
            Some("10.0.0.5,fd00::5")
        );
        let token = args.iter().position(|a| a == "--token");
        assert_eq!(
            token.and_then(|i| args.get(i + 1)).map(String::as_str),
            Some("********")
        );
        assert!(!args.iter().any(|a| a.starts_with("--") && a.contains('=')));
    }

    #[test]
    fn k3s_nodes_report_k3s_versions_and_others_do_not() {
        let info = |spec: &KubeletSpec| {
            let node = node_object(spec);
            (
                node["status"]["nodeInfo"]["kubeletVersion"].clone(),
                node["status"]["nodeInfo"]["containerRuntimeVersion"].clone(),
            )
        };
        assert_eq!(
            info(&KubeletSpec::k3s_agent("a", "10.0.0.1", None)),
            (json!("v1.33.4+k3s1"), json!("containerd://2.0.5-k3s1"))
        );
        assert_eq!(
            info(&KubeletSpec::new("w")),
            (json!("v1.33.4"), json!("containerd://2.0.5"))
        );
    }

    #[test]
    fn k3s_server_gets_control_plane_labels_with_value_true_later() {
        let spec = KubeletSpec::k3s_server("server-1", "10.0.0.2", None);
        assert_eq!(
            spec.server_labels,
            BTreeMap::from([
                (
                    "node-role.kubernetes.io/control-plane".to_owned(),
                    "true".to_owned()
                ),
                (
                    "node-role.kubernetes.io/master".to_owned(),
                    "true".to_owned()
                ),
            ])
        );
        assert!(
            KubeletSpec::k3s_agent("a", "10.0.0.1", None)
                .server_labels
                .is_empty()
        );
    }

    #[test]
    fn provided_node_ip_can_be_set_without_reported_addresses() {
        let mut spec = KubeletSpec::k3s_agent("agent-2", "10.0.0.6", None);
        spec.report_internal_ip = false;
        spec.provided_node_ip = Some("10.0.0.6,10.0.0.7".to_owned());
        let node = node_object(&spec);
        assert_eq!(
            addresses(&node),
            [("Hostname".to_owned(), "agent-2".to_owned())]
        );
        assert_eq!(
            node["metadata"]["annotations"][PROVIDED_NODE_IP],
            "10.0.0.6,10.0.0.7"
        );
    }

    #[test]
    fn status_has_conditions_images_and_node_info() {
        let node = node_object(&KubeletSpec::new("worker-1"));
        let types: Vec<&str> = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["type"].as_str())
            .collect();
        assert_eq!(types, CONDITION_TYPES);
        assert_eq!(
            node["status"]["images"].as_array().map(Vec::len),
            Some(DEFAULT_IMAGES)
        );
        assert_eq!(
            node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
            10250
        );
        // The typed client used for registration must accept the object unchanged.
        let typed: Result<Node, _> = serde_json::from_value(node.clone());
        let round_trip = typed.map(|n| json!(n)).unwrap_or_default();
        assert_eq!(round_trip["status"], node["status"]);
        assert_eq!(round_trip["metadata"], node["metadata"]);
    }

    #[test]
    fn heartbeat_patch_only_bumps_heartbeat_times_in_kubelet_order() {
        let patch = heartbeat_patch("2026-01-01T00:00:00Z");
        assert_eq!(
            patch,
            json!({"status": {
                "$setElementOrder/conditions": [
                    {"type": "MemoryPressure"}, {"type": "DiskPressure"},
                    {"type": "PIDPressure"}, {"type": "Ready"},
                ],
                "conditions": [
                    {"type": "MemoryPressure", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                    {"type": "DiskPressure", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                    {"type": "PIDPressure", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                    {"type": "Ready", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                ],
            }})
        );
    }

    #[test]
    fn ready_patch_turns_only_the_ready_condition_true_with_a_new_transition_time() {
        let now = "2026-01-01T00:00:00Z";
        let patch = ready_patch(now);
        let conditions = patch["status"]["conditions"].as_array().cloned();
        let conditions = conditions.unwrap_or_default();
        assert_eq!(conditions.len(), 4);
        assert_eq!(
            conditions[3],
            json!({
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            })
        );
        let beats = heartbeat_patch(now)["status"]["conditions"]
            .as_array()
            .cloned();
        assert_eq!(conditions[..3], beats.unwrap_or_default()[..3]);
        assert_eq!(
            patch["status"]["$setElementOrder/conditions"],
            heartbeat_patch(now)["status"]["$setElementOrder/conditions"]
        );
    }

    #[test]
    fn network_is_ready_only_without_the_uninitialized_taint_and_with_a_pod_cidr() {
        let glance =
            |node: &Value| serde_json::from_value::<NodeGlance>(node.clone()).unwrap_or_default();
        let spec = KubeletSpec::new("worker-1");
        let registered = glance(&node_object(&spec));
        assert!(!registered.network_ready());
        assert!(!registered.is_ready());
        assert!(!registered.has_taint(NOT_READY_TAINT));

        let mut node = described_node(&spec);
        assert!(!glance(&node).network_ready(), "still tainted");
        node["spec"]["taints"] = json!([not_ready_taint()]);
        assert!(glance(&node).network_ready());

        node["spec"]["podCIDR"] = Value::Null;
        assert!(!glance(&node).network_ready());
    }

    /// A fleet whose server refuses every connection (a port nothing listens on).
    fn unreachable_fleet(budget: Duration) -> Fleet {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .unwrap_or(9);
        let url = format!("http://127.0.0.1:{port}");
        let config = kube::Config::new(url.parse().unwrap_or_default());
        match Client::try_from(config) {
            Ok(client) => Fleet::with_retry_budget(client, budget),
            Err(e) => panic!("client for {url}: {e}"),
        }
    }

    #[tokio::test]
    async fn unreachable_server_exhausts_the_retry_budget() {
        let fleet = unreachable_fleet(Duration::from_millis(300));
        let started = Instant::now();
        let result = fleet.register(&KubeletSpec::new("n")).await;
        assert!(
            matches!(
                result,
                Err(KubeletError::RetriesExhausted {
                    action: "registration",
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(fleet.registered().is_empty());
    }

    #[tokio::test]
    async fn heartbeats_need_a_positive_period() {
        let fleet = unreachable_fleet(Duration::ZERO);
        assert!(matches!(
            fleet.start_heartbeats(Duration::ZERO),
            Err(KubeletError::ZeroPeriod)
        ));
    }

    #[test]
    fn heartbeats_outside_a_runtime_are_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let fleet = match runtime {
            Ok(runtime) => runtime.block_on(async { unreachable_fleet(Duration::ZERO) }),
            Err(e) => panic!("runtime: {e}"),
        };
        assert!(matches!(
            fleet.start_heartbeats(Duration::from_secs(1)),
            Err(KubeletError::NoRuntime)
        ));
    }
}
