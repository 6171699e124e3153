//! How one simulated kubelet registers ([`KubeletSpec`]): a plain kubelet with
//! `--cloud-provider=external`, or a k3s agent or server with its node-args, versions and
//! the metadata k3s adds after the create.

use std::collections::BTreeMap;

/// Default number of container images a simulated node reports. Fifty keep a stored Node
/// at the size of a real k3s node, whose `managedFields` (about 2 KB, computed by a real
/// server, not by the emulator) the create does not carry.
pub(super) const DEFAULT_IMAGES: usize = 50;

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
