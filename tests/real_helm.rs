//! The Helm chart on the real control plane (tests/testbed: kube-apiserver, etcd,
//! kube-controller-manager with the daemonset, deployment, replicaset and garbage
//! collector controllers, kube-scheduler, and one hollow k3s server that no CCM has
//! initialised): `helm` v4, built from its Go module by `scripts/testbed.sh build`, runs
//! with the test bed's admin kubeconfig.
//!
//! For each layout (the default DaemonSet, and the Deployment through chart values):
//! - `helm install` creates every object of the chart (listed by kind and name);
//! - the real scheduler binds bare-ccm's pod to the control-plane node while that node still
//!   carries the uninitialized and not-ready taints (the bootstrap the chart must survive);
//! - bare-ccm itself (the real binary, on the host, with a token of the chart's
//!   ServiceAccount and the chart's RBAC) takes the chart's Lease;
//! - with `agent.enabled`, the agent's DaemonSet, RBAC and admission policy are installed
//!   too, and the agent's pod is bound to the tainted server beside bare-ccm's;
//! - `helm upgrade` from the DaemonSet to the Deployment layout replaces the workload and
//!   leaves the holder of the Lease alone;
//! - `helm uninstall` leaves nothing of bare-ccm behind: no object with the chart's
//!   labels, none of its names (ServiceAccount, ConfigMap, ClusterRole and bindings, Roles
//!   and bindings, workload, Lease), no pods, no ReplicaSets or ControllerRevisions, and
//!   no Helm release record. The Lease goes although bare-ccm held it and still runs:
//!   Helm deletes it last, after the ServiceAccount and RBAC, so bare-ccm cannot create it
//!   again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(dead_code)]
mod support;
use support::testbed::{Ccm, Testbed, exclusive, get_json};
use support::{TAINT, has_taint};

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/bare-ccm");
const RELEASE: &str = "bare-ccm";
const NAMESPACE: &str = "kube-system";
/// The test bed's one k3s server (`--hollow-nodes 1`).
const SERVER: &str = "tb-server-1";

/// Every object the chart installs with its default names: (kubectl resource, namespace,
/// name); the workload is added per layout.
const OBJECTS: [(&str, &str, &str); 10] = [
    ("serviceaccount", NAMESPACE, "bare-ccm"),
    ("configmap", NAMESPACE, "bare-ccm-config"),
    ("clusterrole", "", "bare-ccm"),
    ("clusterrolebinding", "", "bare-ccm"),
    ("clusterrolebinding", "", "bare-ccm-auth-delegator"),
    ("role", NAMESPACE, "bare-ccm"),
    ("rolebinding", NAMESPACE, "bare-ccm"),
    ("role", "default", "bare-ccm-events"),
    ("rolebinding", "default", "bare-ccm-events"),
    ("lease.coordination.k8s.io", NAMESPACE, "bare-ccm"),
];

/// The objects `agent.enabled` adds.
const AGENT_OBJECTS: [(&str, &str, &str); 6] = [
    ("serviceaccount", NAMESPACE, "bare-ccm-agent"),
    ("clusterrole", "", "bare-ccm-agent"),
    ("clusterrolebinding", "", "bare-ccm-agent"),
    ("validatingadmissionpolicy", "", "bare-ccm-agent"),
    ("validatingadmissionpolicybinding", "", "bare-ccm-agent"),
    ("daemonset.apps", NAMESPACE, "bare-ccm-agent"),
];

/// The kinds searched for leftovers by label, in every namespace.
const KINDS: &str = "serviceaccounts,configmaps,secrets,services,pods,daemonsets.apps,\
deployments.apps,replicasets.apps,controllerrevisions.apps,roles.rbac.authorization.k8s.io,\
rolebindings.rbac.authorization.k8s.io,leases.coordination.k8s.io";
const CLUSTER_KINDS: &str = "clusterroles.rbac.authorization.k8s.io,\
clusterrolebindings.rbac.authorization.k8s.io,\
validatingadmissionpolicies.admissionregistration.k8s.io,\
validatingadmissionpolicybindings.admissionregistration.k8s.io";

/// The helm binary `scripts/testbed.sh build` makes (Testbed::start runs that build).
fn helm_binary() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/testbed/helm"))
}

/// Runs helm against the test bed as its admin, with Helm's own files in `home`.
fn helm(bed: &Testbed, home: &Path, args: &[&str]) -> Output {
    let out = Command::new(helm_binary())
        .args(args)
        .arg("--kubeconfig")
        .arg(bed.kubeconfig())
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", helm_binary().display()));
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `check` every 200 ms until it returns Some, or panics after `limit` with the last
/// reason it gave.
async fn poll<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(why) => assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}: {why}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// [`poll`]s the object at `path` (read as `null` while it cannot be read) until `check`
/// accepts it.
async fn poll_json<T>(
    client: &kube::Client,
    path: &str,
    limit: Duration,
    what: &str,
    check: impl Fn(Value) -> Result<T, String>,
) -> T {
    poll(limit, what, async || {
        check(get_json(client, path).await.unwrap_or_default())
    })
    .await
}

/// Waits until the server is registered, a control-plane node, and carries both the
/// uninitialized and the not-ready taint.
async fn tainted_not_ready_server(bed: &Testbed, client: &kube::Client) {
    poll_json(
        client,
        &format!("/api/v1/nodes/{SERVER}"),
        Duration::from_secs(90),
        "a tainted, NotReady control-plane node",
        |node| {
            let control_plane = node
                .pointer("/metadata/labels/node-role.kubernetes.io~1control-plane")
                .is_some();
            if has_taint(&node, TAINT) && has_taint(&node, NOT_READY) && control_plane {
                Ok(())
            } else {
                Err(format!("{node}\n{}", bed.up_log()))
            }
        },
    )
    .await;
}

/// The names of the objects `kubectl get` finds for `args` (`kind/name` per line).
fn names(bed: &Testbed, args: &[&str]) -> Vec<String> {
    let mut all = vec!["get", "-o", "name"];
    all.extend_from_slice(args);
    bed.kubectl(&all)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Whether one object exists (`kubectl get` of kind, namespace, name).
fn exists(bed: &Testbed, (kind, namespace, name): (&str, &str, &str)) -> bool {
    let mut args = vec!["get", kind, name, "-o", "name", "--ignore-not-found"];
    if !namespace.is_empty() {
        args.extend(["-n", namespace]);
    }
    !bed.kubectl(&args).trim().is_empty()
}

/// Everything of the release still in the cluster, described.
fn leftovers(bed: &Testbed, workload: (&str, &str, &str)) -> Vec<String> {
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    let mut found = names(bed, &[KINDS, "-A", "-l", &selector]);
    found.extend(names(bed, &[CLUSTER_KINDS, "-l", &selector]));
    // Helm's release records (Secrets labelled owner=helm, name=<release>).
    found.extend(names(
        bed,
        &["secrets", "-A", "-l", &format!("owner=helm,name={RELEASE}")],
    ));
    // By name too: an object that lost its labels is still bare-ccm's.
    for object in OBJECTS.into_iter().chain(AGENT_OBJECTS).chain([workload]) {
        if exists(bed, object) {
            found.push(format!("{}/{} in {:?}", object.0, object.2, object.1));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The kubectl resource of a layout's workload, and the kind that owns its pods.
fn layout_objects(layout: &str) -> ((&'static str, &'static str, &'static str), &'static str) {
    if layout == "DaemonSet" {
        (("daemonset.apps", NAMESPACE, "bare-ccm"), "DaemonSet")
    } else {
        (("deployment.apps", NAMESPACE, "bare-ccm"), "ReplicaSet")
    }
}

/// A cluster of its own with its server tainted and NotReady, and a Helm home.
async fn fresh_cluster() -> (Testbed, kube::Client, tempfile::TempDir) {
    // Its own cluster: bare-ccm initialises the server in each test, and every test needs
    // it tainted.
    let bed = Testbed::start(&["--hollow-nodes", "1"]);
    let client = bed.client().await;
    tainted_not_ready_server(&bed, &client).await;
    (bed, client, tempfile::tempdir().unwrap())
}

/// `helm install` with `values`; checks that every object of the chart exists under its
/// name and that Helm calls the release deployed.
fn install(bed: &Testbed, home: &Path, layout: &str, values: &[&str]) {
    let (workload, _) = layout_objects(layout);
    assert_eq!(
        leftovers(bed, workload),
        Vec::<String>::new(),
        "a previous install remains"
    );
    let mut args = vec!["install", RELEASE, CHART, "--namespace", NAMESPACE];
    args.extend_from_slice(values);
    helm(bed, home, &args);
    let missing: Vec<_> = OBJECTS
        .into_iter()
        .chain([workload])
        .filter(|o| !exists(bed, *o))
        .collect();
    assert!(
        missing.is_empty(),
        "helm install did not create {missing:?}"
    );
    let status: Value = serde_json::from_slice(
        &helm(
            bed,
            home,
            &["status", RELEASE, "-n", NAMESPACE, "-o", "json"],
        )
        .stdout,
    )
    .expect("helm status JSON");
    assert_eq!(status["info"]["status"], "deployed", "{status:#}");
}

/// Waits until a pod of the layout's workload is bound, and checks that the real scheduler
/// bound it to the server; with `tainted`, while the server still carried both taints.
async fn bound_to_the_server(client: &kube::Client, layout: &str, tainted: bool) {
    pod_bound_to_the_server(client, "bare-ccm", layout, tainted).await;
}

/// Waits until a pod labelled app.kubernetes.io/name=`app` and owned by the layout's kind
/// is bound, and checks that the real scheduler bound it to the server; with `tainted`,
/// while the server still carried both taints.
async fn pod_bound_to_the_server(client: &kube::Client, app: &str, layout: &str, tainted: bool) {
    let (_, owner) = layout_objects(layout);
    let pods_path = format!(
        "/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app.kubernetes.io%2Finstance%3D{RELEASE}\
         %2Capp.kubernetes.io%2Fname%3D{app}"
    );
    let bound = poll_json(
        client,
        &pods_path,
        Duration::from_secs(90),
        &format!("a {app} pod bound to a node"),
        |pods| {
            pods["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| {
                    p.pointer("/metadata/ownerReferences/0/kind")
                        .and_then(Value::as_str)
                        == Some(owner)
                })
                .find_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str))
                .map(str::to_string)
                .ok_or_else(|| format!("no pod owned by a {owner} is bound; pods: {pods}"))
        },
    )
    .await;
    assert_eq!(bound, SERVER, "the {app} pod of the {layout} layout");
    if !tainted {
        return;
    }
    let node = get_json(client, &format!("/api/v1/nodes/{SERVER}"))
        .await
        .unwrap();
    assert!(
        has_taint(&node, TAINT) && has_taint(&node, NOT_READY),
        "the node lost a taint before the check, so the binding proves nothing: {node}"
    );
}

/// The holder of the chart's Lease, once it has one.
async fn lease_holder(client: &kube::Client, ccm: &Ccm) -> String {
    let lease_path = format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/bare-ccm");
    poll_json(
        client,
        &lease_path,
        Duration::from_secs(30),
        "bare-ccm to hold the chart's Lease",
        |lease| match lease
            .pointer("/spec/holderIdentity")
            .and_then(Value::as_str)
        {
            Some(holder) if !holder.is_empty() => Ok(holder.to_string()),
            _ => Err(format!("{lease}\n{}", ccm.log_text())),
        },
    )
    .await
}

/// bare-ccm as the chart runs it (its ServiceAccount, RBAC, config and flags), on the host.
async fn start_ccm(bed: &Testbed, dir: &Path) -> Ccm {
    let ccm = Ccm::start(bed, dir, &support::manifest_config(), &[]);
    ccm.wait_ready().await;
    ccm
}

/// `helm uninstall`, then: nothing of bare-ccm remains, although `ccm` still runs and
/// retries every second (it cannot bring the Lease back), and Helm lists no release.
async fn uninstall_without_a_trace(bed: &Testbed, home: &Path, layout: &str, ccm: Ccm) {
    let (workload, _) = layout_objects(layout);
    helm(
        bed,
        home,
        &["uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"],
    );
    // The garbage collector removes the pods, ReplicaSets and ControllerRevisions after
    // their owner; the hollow kubelet confirms each pod's termination.
    poll(
        Duration::from_secs(120),
        "nothing of bare-ccm to remain",
        async || {
            let left = leftovers(bed, workload);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        leftovers(bed, workload),
        Vec::<String>::new(),
        "bare-ccm's log:\n{}",
        ccm.log_text()
    );
    ccm.stop().await;
    let releases = helm(
        bed,
        home,
        &[
            "list",
            "--all-namespaces",
            "--deployed",
            "--failed",
            "--pending",
            "--superseded",
            "--uninstalled",
            "--uninstalling",
            "-q",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&releases.stdout).trim(), "");
}

/// Installs the chart with `values`, checks the objects and the binding of the workload's
/// pod, lets bare-ccm take the chart's Lease, uninstalls and checks that nothing remains.
async fn install_schedule_uninstall(layout: &str, values: &[&str]) {
    let (bed, client, home) = fresh_cluster().await;
    install(&bed, home.path(), layout, values);
    bound_to_the_server(&client, layout, true).await;
    let dir = tempfile::tempdir().unwrap();
    let ccm = start_ccm(&bed, dir.path()).await;
    lease_holder(&client, &ccm).await;
    uninstall_without_a_trace(&bed, home.path(), layout, ccm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_the_daemon_set_on_the_tainted_server_and_uninstalls_without_a_trace() {
    let _serial = exclusive().await;
    install_schedule_uninstall("DaemonSet", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_the_deployment_on_the_tainted_server_and_uninstalls_without_a_trace() {
    let _serial = exclusive().await;
    install_schedule_uninstall("Deployment", &["--set", "layout=Deployment"]).await;
}

/// `agent.enabled`: the agent's objects besides the chart's, both pods bound to the tainted
/// server (the agent tolerates every taint), and an uninstall that removes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_the_agent_when_enabled_and_uninstalls_without_a_trace() {
    let _serial = exclusive().await;
    let (bed, client, home) = fresh_cluster().await;
    install(
        &bed,
        home.path(),
        "DaemonSet",
        &["--set", "agent.enabled=true"],
    );
    let missing: Vec<_> = AGENT_OBJECTS
        .into_iter()
        .filter(|o| !exists(&bed, *o))
        .collect();
    assert!(
        missing.is_empty(),
        "agent.enabled did not create {missing:?}"
    );
    pod_bound_to_the_server(&client, "bare-ccm-agent", "DaemonSet", true).await;
    bound_to_the_server(&client, "DaemonSet", true).await;
    let dir = tempfile::tempdir().unwrap();
    let ccm = start_ccm(&bed, dir.path()).await;
    lease_holder(&client, &ccm).await;
    uninstall_without_a_trace(&bed, home.path(), "DaemonSet", ccm).await;
}

/// `helm upgrade --reuse-values --set layout=Deployment` on a DaemonSet install: the
/// DaemonSet goes, the Deployment's pod gets the server's host port, and the Lease that
/// bare-ccm holds keeps its holder (the chart sets no field of the Lease's spec).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_upgrade_switches_the_layout_and_leaves_the_lease_holder_alone() {
    let _serial = exclusive().await;
    let (bed, client, home) = fresh_cluster().await;
    install(&bed, home.path(), "DaemonSet", &[]);
    bound_to_the_server(&client, "DaemonSet", true).await;
    let dir = tempfile::tempdir().unwrap();
    let ccm = start_ccm(&bed, dir.path()).await;
    let holder = lease_holder(&client, &ccm).await;

    helm(
        &bed,
        home.path(),
        &[
            "upgrade",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--reuse-values",
            "--set",
            "layout=Deployment",
        ],
    );
    let (daemon_set, _) = layout_objects("DaemonSet");
    let (deployment, _) = layout_objects("Deployment");
    assert!(
        exists(&bed, deployment),
        "helm upgrade created no Deployment"
    );
    poll(Duration::from_secs(60), "the DaemonSet to go", async || {
        if exists(&bed, daemon_set) {
            Err("still there".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    // The DaemonSet's pod leaves the host port to the Deployment's (bare-ccm has
    // initialised the server by now).
    bound_to_the_server(&client, "Deployment", false).await;
    assert_eq!(
        lease_holder(&client, &ccm).await,
        holder,
        "the upgrade changed the holder"
    );
    let missing: Vec<_> = OBJECTS.into_iter().filter(|o| !exists(&bed, *o)).collect();
    assert!(missing.is_empty(), "helm upgrade lost {missing:?}");

    uninstall_without_a_trace(&bed, home.path(), "Deployment", ccm).await;
}
