//! The Node a simulated kubelet registers, as kubernetes `pkg/kubelet/kubelet_node_status.go`
//! and `pkg/kubelet/nodestatus/setters.go` build it:
//! - the initial Node carries only the taint `node.cloudprovider.kubernetes.io/uninitialized`
//!   (`initialNode` adds it under an external cloud provider), no podCIDR, and
//!   `status.nodeInfo` with the kubelet's and the runtime's versions (`VersionInfo`; k3s's
//!   read `v1.33.4+k3s1` and `containerd://2.0.5-k3s1`). It carries no `managedFields`: the
//!   API server computes them (k8s.io/apiserver `pkg/endpoints/handlers/create.go` calls
//!   `FieldManager.UpdateNoErrors`; structured-merge-diff `merge/update.go` then moves every
//!   field of a create to the requesting manager and drops every other manager's entry);
//! - with `--node-ip`, the kubelet sets `alpha.kubernetes.io/provided-node-ip` and reports
//!   the IPs as InternalIP; without it (since 1.29, KEP-3705) it reports only a Hostname;
//! - a node registers NotReady ("cni plugin not initialized"): flannel only starts once the
//!   cloud-controller-manager has removed the uninitialized taint.
//!
//! Also the Node as it looks once k3s and the controllers have written to it
//! ([`described_node`]), and the values those writes carry. Pure: no I/O.

use serde_json::{Map, Value, json};

use super::spec::KubeletSpec;
use super::{K3S_NODE_ARGS, NOT_READY_TAINT, PROVIDED_NODE_IP, UNINITIALIZED_TAINT};

/// Condition types in the order the kubelet reports them.
pub(super) const CONDITION_TYPES: [&str; 4] =
    ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];

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

pub(super) fn timestamp_now() -> String {
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
/// and the not-ready taint (all four regardless of the fleet's
/// [`Registration`](super::Registration)). For tests and fixtures that need a node "as k3s
/// leaves it".
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
pub(super) fn node_args_value(args: &[String]) -> String {
    json!(args).to_string()
}

pub(super) fn not_ready_taint() -> Value {
    json!({"key": NOT_READY_TAINT, "effect": "NoSchedule"})
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::Node;

    use super::*;
    use crate::kubelet::spec::DEFAULT_IMAGES;

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
}
