//! `bare-ccm doctor`: names the cause of stuck nodes and the fix, in one command.
//!
//! Two halves, kept apart so the diagnosis is table-tested without a cluster:
//! - [`gather`] is the only I/O: GET and LIST requests that fill a [`Snapshot`] (nodes, the
//!   bare-ccm ConfigMap, workload (its DaemonSet or Deployment), pods and Lease, and k3s's
//!   own CCM Lease). It never
//!   writes. A missing object or a missing permission is recorded in the snapshot, not
//!   raised; only "cannot list nodes at all" is an error.
//! - [`diagnose`] is pure: snapshot + current time -> [`Report`].

mod cluster;
mod context;
mod diagnose;
mod finding;
mod node;
mod render;
#[cfg(test)]
mod tests;
mod workload;

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Node, Pod, Toleration};
use kube::api::{Api, ListParams};

use crate::controller::events::REASON_KUBELET_OWNS_ADDRESSES;
use crate::output::Output;

pub use diagnose::diagnose;
pub use finding::{Code, Finding, Report, Severity};

/// Where k3s's embedded cloud controller keeps its Lease (k3s runs it with
/// `--leader-elect-resource-name=k3s-cloud-controller-manager` in `kube-system`).
pub const K3S_CCM_LEASE: &str = "k3s-cloud-controller-manager";

/// The key of the bare-ccm ConfigMap that holds the config file (manifests/bare-ccm.yaml
/// mounts it as `/etc/bare-ccm/config.yaml`).
pub const CONFIG_KEY: &str = "config.yaml";

/// How long doctor waits for the API server before reporting that it cannot connect.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Nodes per LIST page, so that thousands of nodes never arrive in one response.
const NODE_PAGE: u32 = 500;

/// The flags of `bare-ccm doctor`.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Kubeconfig of the cluster to check; default: $KUBECONFIG, then in-cluster.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Namespace of bare-ccm's DaemonSet or Deployment, ConfigMap and Lease.
    #[arg(long, default_value = "kube-system")]
    pub namespace: String,
    /// Name of bare-ccm's ConfigMap (its `config.yaml` key is the controller's config).
    #[arg(long, default_value = "bare-ccm-config")]
    pub config_map: String,
    /// Name of bare-ccm's leader-election Lease (`--leader-elect-resource-name`).
    #[arg(long, default_value = "bare-ccm")]
    pub lease: String,
    /// Name of bare-ccm's DaemonSet or Deployment (the chart's and manifests' layouts).
    #[arg(long, alias = "deployment", default_value = "bare-ccm")]
    pub workload: String,
}

/// Which objects make up "bare-ccm" in this cluster; messages and fixes name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Namespace of the objects below.
    pub namespace: String,
    /// The ConfigMap holding `config.yaml`.
    pub config_map: String,
    /// The leader-election Lease.
    pub lease: String,
    /// The DaemonSet or Deployment running the controller.
    pub workload: String,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            namespace: "kube-system".into(),
            config_map: "bare-ccm-config".into(),
            lease: "bare-ccm".into(),
            workload: "bare-ccm".into(),
        }
    }
}

impl From<&DoctorArgs> for Target {
    fn from(args: &DoctorArgs) -> Self {
        Target {
            namespace: args.namespace.clone(),
            config_map: args.config_map.clone(),
            lease: args.lease.clone(),
            workload: args.workload.clone(),
        }
    }
}

/// The outcome of reading one object (or list): absence and refusal are facts to report,
/// not failures of doctor.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched<T> {
    /// The object as read.
    Found(T),
    /// 404: the object does not exist.
    NotFound,
    /// Any other answer (403, 5xx, ...), described for the report.
    Unreadable(String),
}

impl<T> Fetched<T> {
    /// The object, when it was read.
    pub fn found(&self) -> Option<&T> {
        match self {
            Fetched::Found(t) => Some(t),
            _ => None,
        }
    }
}

/// Everything doctor reads, in one place; [`diagnose`] works on this alone.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The names the objects below were read under.
    pub target: Target,
    /// Every node of the cluster.
    pub nodes: Vec<Node>,
    /// bare-ccm's ConfigMap; its `config.yaml` feeds the resolver.
    pub config_map: Fetched<ConfigMap>,
    /// bare-ccm's leader-election Lease.
    pub lease: Fetched<Lease>,
    /// k3s's own `kube-system/k3s-cloud-controller-manager` Lease.
    pub k3s_lease: Fetched<Lease>,
    /// bare-ccm's workload: its DaemonSet, else its Deployment (the DaemonSet when both
    /// exist).
    pub workload: Fetched<Workload>,
    /// The Deployment of the same name when the DaemonSet exists too (a second install,
    /// typically the Deployment left over from before the DaemonSet).
    pub leftover_deployment: Option<Deployment>,
    /// The pods selected by the workload's `matchLabels` (NotFound without a workload).
    pub pods: Fetched<Vec<Pod>>,
    /// Nodes bare-ccm warned about with `KubeletOwnsAddresses` (empty when Events cannot
    /// be read).
    pub kubelet_owns_addresses: Vec<String>,
}

impl Snapshot {
    /// A snapshot of a cluster with these nodes and nothing else, the starting point of
    /// tests and of what-if checks.
    pub fn with_nodes(nodes: Vec<Node>) -> Snapshot {
        Snapshot {
            target: Target::default(),
            nodes,
            config_map: Fetched::NotFound,
            lease: Fetched::NotFound,
            k3s_lease: Fetched::NotFound,
            workload: Fetched::NotFound,
            leftover_deployment: None,
            pods: Fetched::NotFound,
            kubelet_owns_addresses: Vec::new(),
        }
    }
}

/// Why doctor could not check the cluster at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("{0:#}")]
    Kubeconfig(anyhow::Error),
    /// The API server did not answer.
    #[error(
        "cannot connect to the API server at {server}: {source}; check that the cluster is up and that --kubeconfig (or KUBECONFIG) points at it"
    )]
    Connect {
        /// The API server URL from the kubeconfig.
        server: String,
        #[source]
        source: kube::Error,
    },
    /// The API server answered, but not with the node list doctor needs.
    #[error(
        "the API server at {server} did not list nodes: {detail}; doctor needs get/list on nodes (use an admin kubeconfig, e.g. /etc/rancher/k3s/k3s.yaml)"
    )]
    Nodes {
        /// The API server URL from the kubeconfig.
        server: String,
        /// The status the server answered with.
        detail: String,
    },
}

/// Connects with the user's kubeconfig, reads the cluster and diagnoses it.
pub async fn doctor(args: &DoctorArgs) -> Result<Report, DoctorError> {
    let mut config = crate::kubeclient::client_config(args.kubeconfig.as_deref())
        .await
        .map_err(DoctorError::Kubeconfig)?;
    // A diagnosis tool must not hang on an unreachable or stuck API server.
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .map_err(|e| DoctorError::Kubeconfig(anyhow::Error::new(e)))?;
    let snapshot = gather(&client, &Target::from(args), &server).await?;
    Ok(diagnose(&snapshot, jiff::Timestamp::now()))
}

/// Reads everything [`diagnose`] needs, with GET and LIST only.
pub async fn gather(
    client: &kube::Client,
    target: &Target,
    server: &str,
) -> Result<Snapshot, DoctorError> {
    let nodes = list_nodes(client, server).await?;
    let ns = target.namespace.as_str();
    let config_map = fetched(
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get_opt(&target.config_map)
            .await,
    );
    let leases = Api::<Lease>::namespaced(client.clone(), ns);
    let lease = fetched(leases.get_opt(&target.lease).await);
    let k3s_lease = fetched(
        Api::<Lease>::namespaced(client.clone(), "kube-system")
            .get_opt(K3S_CCM_LEASE)
            .await,
    );
    let daemon_set = fetched(
        Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get_opt(&target.workload)
            .await,
    );
    let deployment = fetched(
        Api::<Deployment>::namespaced(client.clone(), ns)
            .get_opt(&target.workload)
            .await,
    );
    let (workload, leftover_deployment) = Workload::choose(daemon_set, deployment);
    let pods = match workload.found().map(Workload::selector) {
        None => Fetched::NotFound,
        Some(None) => Fetched::Unreadable(format!(
            "the {}'s selector has no matchLabels, so its pods were not looked up",
            workload.found().map_or("workload", Workload::kind)
        )),
        Some(Some(selector)) => {
            let params = ListParams::default().labels(&selector);
            match Api::<Pod>::namespaced(client.clone(), ns)
                .list(&params)
                .await
            {
                Ok(list) => Fetched::Found(list.items),
                Err(e) => Fetched::Unreadable(describe(&e)),
            }
        }
    };
    // Events about Nodes live in `default` (see controller/events.rs).
    let kubelet_owns_addresses = Api::<CoreEvent>::namespaced(client.clone(), "default")
        .list(&ListParams::default().fields(&format!("reason={REASON_KUBELET_OWNS_ADDRESSES}")))
        .await
        .map(|list| {
            list.items
                .into_iter()
                .filter_map(|e| e.involved_object.name)
                .collect()
        })
        .unwrap_or_default();
    Ok(Snapshot {
        target: target.clone(),
        nodes,
        config_map,
        lease,
        k3s_lease,
        workload,
        leftover_deployment,
        pods,
        kubelet_owns_addresses,
    })
}

/// Lists every node, page by page.
async fn list_nodes(client: &kube::Client, server: &str) -> Result<Vec<Node>, DoctorError> {
    let api = Api::<Node>::all(client.clone());
    let mut nodes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(NODE_PAGE);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = api.list(&params).await.map_err(|e| match e {
            kube::Error::Api(_) => DoctorError::Nodes {
                server: server.to_string(),
                detail: describe(&e),
            },
            source => DoctorError::Connect {
                server: server.to_string(),
                source,
            },
        })?;
        nodes.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => token = Some(next),
            None => return Ok(nodes),
        }
    }
}

fn fetched<T>(result: Result<Option<T>, kube::Error>) -> Fetched<T> {
    match result {
        Ok(Some(t)) => Fetched::Found(t),
        Ok(None) => Fetched::NotFound,
        Err(kube::Error::Api(status)) if status.code == 404 => Fetched::NotFound,
        Err(e) => Fetched::Unreadable(describe(&e)),
    }
}

/// A short description of a failed request: the API status when there is one.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

/// bare-ccm's controller as it is deployed: the chart and the manifests run it as a
/// DaemonSet (the default) or as a Deployment.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// One pod on every control-plane node.
    DaemonSet(DaemonSet),
    /// A number of replicas.
    Deployment(Deployment),
}

/// How many pods a workload wants and how many are ready, from its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// DaemonSet: nodes that should run a pod; Deployment: replicas.
    pub wanted: i32,
    /// Pods that are Ready.
    pub ready: i32,
}

impl Workload {
    /// The DaemonSet when it was read or could not be, else the Deployment; and the
    /// Deployment as a leftover when both exist.
    fn choose(
        daemon_set: Fetched<DaemonSet>,
        deployment: Fetched<Deployment>,
    ) -> (Fetched<Workload>, Option<Deployment>) {
        match (daemon_set, deployment) {
            (Fetched::Found(ds), Fetched::Found(d)) => {
                (Fetched::Found(Workload::DaemonSet(ds)), Some(d))
            }
            (Fetched::Found(ds), _) => (Fetched::Found(Workload::DaemonSet(ds)), None),
            (_, Fetched::Found(d)) => (Fetched::Found(Workload::Deployment(d)), None),
            (Fetched::Unreadable(why), _) | (_, Fetched::Unreadable(why)) => {
                (Fetched::Unreadable(why), None)
            }
            (Fetched::NotFound, Fetched::NotFound) => (Fetched::NotFound, None),
        }
    }

    /// "DaemonSet" or "Deployment".
    pub fn kind(&self) -> &'static str {
        match self {
            Workload::DaemonSet(_) => "DaemonSet",
            Workload::Deployment(_) => "Deployment",
        }
    }

    /// The resource as kubectl names it (`kubectl logs daemonset/NAME`).
    pub fn resource(&self) -> &'static str {
        match self {
            Workload::DaemonSet(_) => "daemonset",
            Workload::Deployment(_) => "deployment",
        }
    }

    /// The pod template's tolerations.
    pub fn tolerations(&self) -> Vec<Toleration> {
        let template = match self {
            Workload::DaemonSet(ds) => ds.spec.as_ref().map(|s| &s.template),
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
        };
        template
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default()
    }

    /// Wanted and ready pods; None while the workload has no status yet.
    pub fn readiness(&self) -> Option<Readiness> {
        match self {
            Workload::DaemonSet(ds) => ds.status.as_ref().map(|s| Readiness {
                wanted: s.desired_number_scheduled,
                ready: s.number_ready,
            }),
            Workload::Deployment(d) => Some(Readiness {
                wanted: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ready: d
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0),
            }),
        }
    }

    /// The `matchLabels` as a label selector string; None when there are none (an empty
    /// selector would list every pod of the namespace).
    fn selector(&self) -> Option<String> {
        let selector = match self {
            Workload::DaemonSet(ds) => &ds.spec.as_ref()?.selector,
            Workload::Deployment(d) => &d.spec.as_ref()?.selector,
        };
        let labels = selector.match_labels.as_ref()?;
        let selector = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        (!selector.is_empty()).then_some(selector)
    }
}
