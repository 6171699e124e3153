//! End-to-end: the real `bare-ccm doctor` binary against the API emulator over HTTPS.
//! Each test sets a problem up (by running `bare-ccm sim`, or by writing objects to an
//! in-process emulator) and asserts the diagnosis and the exit code.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bare_ccm_emulator::kubelet::{KubeletSpec, node_object};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

#[allow(dead_code)]
mod support;
use support::{Cluster, eventually_async};

/// What one `bare-ccm doctor` run printed, and its exit code.
struct Diagnosis {
    code: i32,
    text: String,
    stderr: String,
}

async fn doctor(kubeconfig: &Path, extra: &[&str]) -> Diagnosis {
    let out = Command::new(env!("CARGO_BIN_EXE_bare-ccm"))
        .arg("doctor")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(extra)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    Diagnosis {
        code: out.status.code().unwrap_or(-1),
        text: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `doctor -o json`, parsed.
async fn doctor_json(kubeconfig: &Path) -> (i32, Value) {
    let d = doctor(kubeconfig, &["-o", "json"]).await;
    let report = serde_json::from_str(&d.text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", d.text, d.stderr));
    (d.code, report)
}

/// The findings of a JSON report as (code, severity, node).
fn findings(report: &Value) -> Vec<(String, String, Option<String>)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["node"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn finding<'r>(report: &'r Value, code: &str, node: Option<&str>) -> &'r Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code && f["node"].as_str() == node)
        .unwrap_or_else(|| panic!("no {code} for {node:?} in {report:#}"))
}

/// The finding `code` (for `node`), asserting its severity.
fn finding_at<'r>(report: &'r Value, code: &str, node: Option<&str>, severity: &str) -> &'r Value {
    let f = finding(report, code, node);
    assert_eq!(f["severity"], severity, "{f:#}");
    f
}

/// Asserts that the finding's `field` (message or fix) contains `part`.
fn text_has(finding: &Value, field: &str, part: &str) {
    let text = finding[field].as_str().unwrap_or_default();
    assert!(text.contains(part), "{part:?} is not in {finding:#}");
}

/// What the doctor scenarios write to a [`Cluster`] (nodes in given states, Leases, the
/// ConfigMap), as an admin.
impl Cluster {
    async fn start() -> Cluster {
        Cluster::builder().start().await
    }

    /// Registers a Node and waits until k3s and the controllers have written to it.
    async fn register(&self, spec: KubeletSpec) {
        self.fleet.register(&spec).await.unwrap();
        self.fleet.settled().await;
    }

    /// A Node as bare-ccm leaves it: untainted, with a providerID, Ready.
    async fn initialised(&self, name: &str, ip: &str) {
        self.untainted(name, ip, Some(&format!("k3s://{name}")))
            .await;
    }

    /// A k3s server Node as bare-ccm leaves it: untainted, with a providerID, Ready.
    async fn initialised_server(&self, name: &str, ip: &str) {
        self.register(KubeletSpec::k3s_server(name, ip, None)).await;
        let patch = json!({"spec": {"taints": null, "providerID": format!("k3s://{name}")}});
        self.patch_node(name, patch).await;
        set_ready(&self.client, name).await;
    }

    /// A registered Node without the uninitialized taint, Ready, with `provider_id` (the
    /// API server allows setting it once, never changing it).
    async fn untainted(&self, name: &str, ip: &str, provider_id: Option<&str>) {
        self.register(KubeletSpec::k3s_agent(name, ip, None)).await;
        self.patch_node(
            name,
            json!({"spec": {"taints": null, "providerID": provider_id}}),
        )
        .await;
        set_ready(&self.client, name).await;
    }

    /// Registers a Node, untainted, that the node IPAM controller has not given a podCIDR
    /// (yet): the kubelet's create alone.
    async fn register_without_pod_cidr(&self, spec: KubeletSpec) {
        let mut object = node_object(&spec);
        let spec_json = object["spec"].as_object_mut().unwrap();
        spec_json.remove("taints");
        let node: Node = serde_json::from_value(object).unwrap();
        Api::<Node>::all(self.client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
    }

    async fn patch_node(&self, name: &str, patch: Value) {
        Api::<Node>::all(self.client.clone())
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    async fn patch_node_status(&self, name: &str, patch: Value) {
        Api::<Node>::all(self.client.clone())
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap();
    }

    /// Writes Lease `ns/name` held by `holder`, last renewed `renewed_ago` ago.
    async fn lease(&self, ns: &str, name: &str, holder: &str, renewed_ago: Duration) {
        let renewed = jiff::Timestamp::now() - jiff::SignedDuration::try_from(renewed_ago).unwrap();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                acquire_time: Some(MicroTime(renewed)),
                renew_time: Some(MicroTime(renewed)),
                ..LeaseSpec::default()
            }),
        };
        Api::<Lease>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &lease)
            .await
            .unwrap();
    }

    /// A fresh bare-ccm Lease: bare-ccm counts as running.
    async fn bare_ccm_leading(&self) {
        self.lease("kube-system", "bare-ccm", "cp-1_e2e", Duration::ZERO)
            .await;
    }

    async fn config_map(&self, config_yaml: &str) {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("bare-ccm-config".into()),
                namespace: Some("kube-system".into()),
                ..ObjectMeta::default()
            },
            data: Some([("config.yaml".to_string(), config_yaml.to_string())].into()),
            ..ConfigMap::default()
        };
        Api::<ConfigMap>::namespaced(self.client.clone(), "kube-system")
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
}

/// The kubelet reports Ready once its CNI is up; the nodes of these tests get no heartbeats,
/// so the test reports it for them.
async fn set_ready(client: &kube::Client, node: &str) {
    let patch = json!({"status": {"conditions": [{
        "type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
    }]}});
    Api::<Node>::all(client.clone())
        .patch_status(node, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
}

/// A background process killed (SIGTERM, then SIGKILL) when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
        let _ = self.0.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_scenario_then_bare_ccm_makes_the_cluster_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("sim.kubeconfig");
    let sim_log = dir.path().join("sim.log");
    let _sim = Background(
        Command::new(env!("CARGO_BIN_EXE_bare-ccm"))
            .args(["sim", "--nodes", "3", "--no-controller", "--keep-running"])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&sim_log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap(),
    );
    eventually_async(
        Duration::from_secs(30),
        "the sim to keep running",
        String::new,
        || async { std::fs::read_to_string(&sim_log).is_ok_and(|l| l.contains("keeps running")) },
    )
    .await;

    // 1. Nodes stuck, nothing to initialise them: doctor names the missing CCM and the fix.
    let d = doctor(&kubeconfig, &[]).await;
    assert_eq!(d.code, 1, "{}{}", d.text, d.stderr);
    let verdict = d.text.lines().next().unwrap();
    assert!(
        verdict.starts_with("unhealthy (1 error(s), 3 warning(s)): 3 node(s) carry the taint node.cloudprovider.kubernetes.io/uninitialized and no cloud-controller-manager is running to remove it"),
        "{verdict}"
    );
    assert!(d.text.contains("error   [no-ccm-running]"), "{}", d.text);
    assert!(
        d.text
            .contains("fix: install bare-ccm: kubectl apply -f manifests/bare-ccm.yaml"),
        "{}",
        d.text
    );
    let (code, report) = doctor_json(&kubeconfig).await;
    assert_eq!(code, 1);
    assert_eq!(report["taintedNodes"], 3);
    assert_eq!(findings(&report)[0].0, "no-ccm-running");

    // 2. Start bare-ccm (out of cluster, with the sim's admin kubeconfig).
    let _ccm = Background(
        support::run_command(&kubeconfig, 0)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually_async(
        Duration::from_secs(30),
        "bare-ccm to initialise the nodes",
        String::new,
        || async { doctor_json(&kubeconfig).await.1["taintedNodes"] == 0 },
    )
    .await;
    // Flannel starts once the taint is gone, and each simulated kubelet reports Ready at
    // its next heartbeat (every 10 s in the sim).
    eventually_async(
        Duration::from_secs(30),
        "the kubelets to report Ready",
        String::new,
        || async { doctor_json(&kubeconfig).await.0 == 0 },
    )
    .await;

    let d = doctor(&kubeconfig, &[]).await;
    assert_eq!(d.code, 0, "{}{}", d.text, d.stderr);
    assert!(
        d.text
            .starts_with("healthy: 3 node(s), none waiting for initialisation; bare-ccm is leading (Lease held by "),
        "{}",
        d.text
    );
    // Running outside a DaemonSet or Deployment is fine while the Lease is fresh: a note.
    assert!(
        d.text
            .contains("note    [workload-missing]: no DaemonSet or Deployment kube-system/bare-ccm, but bare-ccm runs\n        elsewhere"),
        "{}",
        d.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_node_problems_are_each_diagnosed_with_their_fix() {
    let c = Cluster::start().await;
    c.bare_ccm_leading().await;
    c.initialised("ok", "10.0.0.1").await;

    // A look-alike taint no CCM removes.
    c.initialised("lookalike", "10.0.0.2").await;
    c.patch_node(
        "lookalike",
        json!({"spec": {"taints": [{"key": "node.cluster.x-k8s.io/uninitialized", "value": "true", "effect": "NoSchedule"}]}}),
    )
    .await;
    // A kubelet not in external mode: registered, never tainted, no providerID.
    c.untainted("internal", "10.0.0.3", None).await;
    // No podCIDR, NetworkUnavailable, NotReady.
    c.register_without_pod_cidr(KubeletSpec::k3s_agent("nocidr", "10.0.0.4", None))
        .await;
    c.patch_node("nocidr", json!({"spec": {"providerID": "k3s://nocidr"}}))
        .await;
    set_ready(&c.client, "nocidr").await;
    c.initialised("netdown", "10.0.0.5").await;
    c.patch_node_status(
        "netdown",
        json!({"status": {"conditions": [
            {"type": "NetworkUnavailable", "status": "True", "reason": "NoRouteCreated", "message": "no route"},
            {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "cni plugin not initialized"},
        ]}}),
    )
    .await;
    // A tainted node whose metadata does not resolve: provided-node-ip matches nothing.
    let mut mismatch = KubeletSpec::k3s_agent("mismatch", "10.0.0.6", None);
    mismatch.provided_node_ip = Some("10.9.9.9".into());
    c.register(mismatch).await;

    let (code, report) = doctor_json(&c.admin_kubeconfig()).await;
    assert_eq!(code, 1, "{report:#}");
    let got = findings(&report);
    let expected = [
        ("metadata-unresolved", "error", "mismatch"),
        ("uninitialized-taint", "warning", "mismatch"),
        ("lookalike-taint", "warning", "lookalike"),
        ("kubelet-not-external", "warning", "internal"),
        ("no-pod-cidr", "warning", "nocidr"),
        ("network-unavailable", "warning", "netdown"),
        ("node-not-ready", "warning", "netdown"),
    ];
    let problems: Vec<(&str, &str, &str)> = got
        .iter()
        .filter(|(_, sev, _)| sev != "info")
        .map(|(c, s, n)| (c.as_str(), s.as_str(), n.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(problems, expected, "{report:#}");
    text_has(
        finding(&report, "metadata-unresolved", Some("mismatch")),
        "message",
        "10.9.9.9",
    );
    text_has(
        finding(&report, "kubelet-not-external", Some("internal")),
        "fix",
        "--kubelet-arg=cloud-provider=external",
    );
    text_has(
        finding(&report, "lookalike-taint", Some("lookalike")),
        "fix",
        "kubectl taint nodes lookalike node.cluster.x-k8s.io/uninitialized-",
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["node"] != "ok")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_lease_and_k3s_node_controller_are_diagnosed() {
    let c = Cluster::start().await;
    c.lease(
        "kube-system",
        "bare-ccm",
        "cp-1_gone",
        Duration::from_secs(600),
    )
    .await;
    // A k3s server started without --disable-cloud-controller, its CCM leading.
    let mut server = KubeletSpec::k3s_server("server-1", "10.0.0.1", None);
    if let Some(args) = server.node_args.as_mut() {
        args.retain(|a| a != "--disable-cloud-controller");
    }
    c.register(server).await;
    c.lease(
        "kube-system",
        "k3s-cloud-controller-manager",
        "server-1",
        Duration::ZERO,
    )
    .await;

    let (code, report) = doctor_json(&c.admin_kubeconfig()).await;
    assert_eq!(code, 1);
    let stale = finding_at(&report, "lease-stale", None, "warning");
    text_has(
        stale,
        "message",
        "held by cp-1_gone, last renewed 10m ago (lease duration 15s)",
    );
    let k3s = finding_at(&report, "k3s-ccm-active", None, "warning");
    text_has(k3s, "fix", "--disable-cloud-controller");
    // k3s's node controller is on, so the tainted server is not "nothing running".
    assert!(findings(&report).iter().all(|f| f.0 != "no-ccm-running"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_map_and_incomplete_install_are_diagnosed() {
    let c = Cluster::start().await;
    c.config_map("providedNodeIP: sometimes\n").await;
    c.register(KubeletSpec::k3s_agent("n1", "10.0.0.1", None))
        .await;

    let (code, report) = doctor_json(&c.admin_kubeconfig()).await;
    assert_eq!(code, 1);
    let invalid = finding_at(&report, "config-invalid", None, "error");
    text_has(invalid, "message", "providedNodeIP");
    let missing = finding_at(&report, "workload-missing", None, "warning");
    assert_eq!(
        missing["fix"],
        "kubectl apply -f manifests/bare-ccm.yaml, or helm install bare-ccm charts/bare-ccm --namespace kube-system (docs/helm.md)"
    );
    assert_eq!(findings(&report)[0].0, "no-ccm-running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_exits_2_with_a_clear_message() {
    let c = Cluster::start().await;
    let kubeconfig = c.admin_kubeconfig();
    let dir = c.dir;
    c.emu.shutdown().await;
    let d = doctor(&kubeconfig, &[]).await;
    assert_eq!(d.code, 2, "{}{}", d.text, d.stderr);
    assert!(d.text.is_empty());
    assert!(
        d.stderr
            .starts_with("bare-ccm doctor: cannot connect to the API server at https://127.0.0.1:"),
        "{}",
        d.stderr
    );
    drop(dir);

    let d = doctor(Path::new("/nonexistent/kubeconfig"), &[]).await;
    assert_eq!(d.code, 2);
    assert!(d.stderr.contains("/nonexistent/kubeconfig"), "{}", d.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_only_reads() {
    let c = Cluster::start().await;
    c.bare_ccm_leading().await;
    c.register(KubeletSpec::k3s_agent("n1", "10.0.0.1", None))
        .await;
    let version = c.emu.current_resource_version();
    let before = c.emu.accounting().requests();
    let (code, _) = doctor_json(&c.admin_kubeconfig()).await;
    assert_eq!(code, 1);
    assert_eq!(c.emu.current_resource_version(), version);
    let verbs: Vec<String> = c
        .emu
        .accounting()
        .requests()
        .into_iter()
        .filter(|(key, n)| before.get(key) != Some(n))
        .map(|((verb, _), _)| verb)
        .collect();
    assert!(!verbs.is_empty());
    assert!(verbs.iter().all(|v| v == "get" || v == "list"), "{verbs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permissions_are_notes_and_no_node_access_exits_2() {
    use bare_ccm_emulator::rbac::RbacPolicy;
    let policy = RbacPolicy::from_yaml(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: node-reader}
rules:
  - apiGroups: [""]
    resources: [nodes]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: node-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-reader}
subjects:
  - {kind: ServiceAccount, name: reader, namespace: kube-system}
"#,
    )
    .unwrap();
    let c = Cluster::start().await;
    c.initialised("n1", "10.0.0.1").await;
    c.emu.set_rbac(Some(policy));
    let kubeconfig = |sa: &str| c.kubeconfig(sa);

    // Nodes readable, nothing else: the diagnosis goes on, the gaps are notes.
    let (code, report) = doctor_json(&kubeconfig("reader")).await;
    assert_eq!(code, 0, "{report:#}");
    for code in ["lease-unreadable", "workload-unreadable", "config-defaults"] {
        let f = finding(&report, code, None);
        assert_eq!(f["severity"], "info");
        assert!(
            f["message"].as_str().unwrap().contains("403"),
            "{code}: {f:#}"
        );
    }

    // Not even nodes: doctor cannot check and says which permission is missing.
    let d = doctor(&kubeconfig("nobody"), &[]).await;
    assert_eq!(d.code, 2, "{}{}", d.text, d.stderr);
    assert!(d.stderr.contains("did not list nodes: 403"), "{}", d.stderr);
    assert!(
        d.stderr.contains("doctor needs get/list on nodes"),
        "{}",
        d.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_that_cannot_schedule_is_diagnosed_with_the_reason() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    let c = Cluster::start().await;
    c.register(KubeletSpec::k3s_server("server-1", "10.0.0.1", None))
        .await;
    // The Deployment of a manifest that forgot the uninitialized toleration, and its pod,
    // which the scheduler cannot place.
    let labels = json!({"app.kubernetes.io/name": "bare-ccm"});
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "bare-ccm", "namespace": "kube-system", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "bare-ccm", "image": "ghcr.io/bare-ccm/bare-ccm:0.1.0"}],
                    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}],
                },
            },
        },
        "status": {"replicas": 1, "unavailableReplicas": 1},
    }))
    .unwrap();
    Api::<Deployment>::namespaced(c.client.clone(), "kube-system")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bare-ccm-7d9f-abcde", "namespace": "kube-system", "labels": labels},
        "spec": {"containers": [{"name": "bare-ccm", "image": "ghcr.io/bare-ccm/bare-ccm:0.1.0"}]},
    }))
    .unwrap();
    let pods = Api::<Pod>::namespaced(c.client.clone(), "kube-system");
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 node(s) had untolerated taint {node.cloudprovider.kubernetes.io/uninitialized: true}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    }]}});
    pods.patch_status(
        "bare-ccm-7d9f-abcde",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .unwrap();

    let (code, report) = doctor_json(&c.admin_kubeconfig()).await;
    assert_eq!(code, 1, "{report:#}");
    let problems: Vec<(String, String)> = findings(&report)
        .into_iter()
        .filter(|f| f.1 != "info" && f.2.is_none())
        .map(|f| (f.0, f.1))
        .collect();
    let expected = [
        ("no-ccm-running", "error"),
        ("missing-toleration", "error"),
        ("lease-not-held", "warning"),
        ("pod-pending", "warning"),
        ("workload-not-ready", "warning"),
    ]
    .map(|(c, s)| (c.to_string(), s.to_string()));
    assert_eq!(problems, expected, "{report:#}");
    let pending = finding(&report, "pod-pending", None);
    text_has(
        pending,
        "message",
        "bare-ccm pod kube-system/bare-ccm-7d9f-abcde is Pending: not scheduled (Unschedulable): 0/1 nodes are available: 1 node(s) had untolerated taint {node.cloudprovider.kubernetes.io/uninitialized: true}",
    );
    text_has(
        pending,
        "fix",
        "add the tolerations of manifests/bare-ccm.yaml",
    );
    assert!(
        finding(&report, "no-ccm-running", None)["fix"]
            .as_str()
            .unwrap()
            .starts_with("bare-ccm is deployed but no replica leads")
    );
}

/// Creates the workload of kind `kind` in the shipped manifest `file` (under manifests/)
/// as `kubectl apply` would; returns the API of that kind in kube-system.
async fn create_shipped<K>(c: &Cluster, file: &str, kind: &str) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let path = format!("{}/manifests/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let workload = docs
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {path}"));
    let api = Api::<K>::namespaced(c.client.clone(), "kube-system");
    let object: K = serde_json::from_value(workload).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    api
}

/// A bare-ccm pod of the shipped workloads that runs and is Ready.
async fn ready_bare_ccm_pod(c: &Cluster, name: &str) {
    let status = json!({"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True"},
    ]});
    bare_ccm_pod(c, name, status).await;
}

/// Creates a bare-ccm pod of the shipped workloads (their selector's labels) and sets its
/// status.
async fn bare_ccm_pod(c: &Cluster, name: &str, status: Value) {
    use k8s_openapi::api::core::v1::Pod;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "kube-system",
                     "labels": {"app.kubernetes.io/name": "bare-ccm",
                                "app.kubernetes.io/instance": "bare-ccm"}},
        "spec": {"containers": [{"name": "bare-ccm", "image": "ghcr.io/bare-ccm/bare-ccm:0.1.0"}]},
    }))
    .unwrap();
    let pods = Api::<Pod>::namespaced(c.client.clone(), "kube-system");
    pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_install_with_its_standby_pending_on_the_host_port_is_healthy() {
    use k8s_openapi::api::apps::v1::Deployment;
    let c = Cluster::start().await;
    // One k3s server (the only control-plane node) and one agent, both initialised.
    c.initialised_server("server-1", "10.0.0.1").await;
    c.initialised("agent-1", "10.0.0.2").await;
    c.bare_ccm_leading().await;

    // manifests/bare-ccm-deployment.yaml as applied: 2 replicas, one Running on the
    // server, the other Pending because the server's host port is taken and the agent is
    // not a control-plane node.
    let deployments: Api<Deployment> =
        create_shipped(&c, "bare-ccm-deployment.yaml", "Deployment").await;
    deployments
        .patch_status(
            "bare-ccm",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "unavailableReplicas": 1}})),
        )
        .await
        .unwrap();
    ready_bare_ccm_pod(&c, "bare-ccm-5c8d-leader").await;
    bare_ccm_pod(
        &c,
        "bare-ccm-5c8d-standby",
        json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.",
        }]}),
    )
    .await;

    let d = doctor(&c.admin_kubeconfig(), &[]).await;
    assert_eq!(d.code, 0, "{}{}", d.text, d.stderr);
    assert!(
        d.text.starts_with(
            "healthy: 2 node(s), none waiting for initialisation; bare-ccm is leading"
        ),
        "{}",
        d.text
    );
    let (code, report) = doctor_json(&c.admin_kubeconfig()).await;
    assert_eq!(code, 0, "{report:#}");
    let standby = finding(&report, "pod-pending", None);
    assert_eq!(standby["severity"], "info", "{standby:#}");
    text_has(
        standby,
        "message",
        "bare-ccm pod kube-system/bare-ccm-5c8d-standby is Pending as a standby: every node it may run on already has a bare-ccm replica on the same host port",
    );
    assert!(
        standby["message"]
            .as_str()
            .unwrap()
            .ends_with("replica kube-system/bare-ccm-5c8d-leader is Ready"),
        "{standby:#}"
    );
}

/// manifests/bare-ccm.yaml as applied on a single-server k3s: the DaemonSet's one pod runs
/// on the server and leads. Healthy, with no standby to explain. Then the DaemonSet's
/// controller finds no node for it (an arm64 server, say): doctor names that, although
/// no pod exists to be Pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_daemon_set_on_a_single_server_is_healthy_and_one_on_no_node_is_named() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    let c = Cluster::start().await;
    c.initialised_server("server-1", "10.0.0.1").await;
    c.bare_ccm_leading().await;
    let daemon_sets: Api<DaemonSet> = create_shipped(&c, "bare-ccm.yaml", "DaemonSet").await;
    let set_status = async |desired: i32, ready: i32| {
        let status = json!({"status": {"desiredNumberScheduled": desired, "currentNumberScheduled": desired,
                          "numberMisscheduled": 0, "numberReady": ready}});
        let patch = Patch::Merge(&status);
        daemon_sets
            .patch_status("bare-ccm", &PatchParams::default(), &patch)
            .await
            .unwrap();
    };
    set_status(1, 1).await;
    ready_bare_ccm_pod(&c, "bare-ccm-x7k2p").await;

    let (code, report) = doctor_json(&c.admin_kubeconfig()).await;
    assert_eq!(code, 0, "{report:#}");
    assert!(
        report["verdict"].as_str().unwrap().starts_with(
            "healthy: 1 node(s), none waiting for initialisation; bare-ccm is leading"
        ),
        "{report:#}"
    );
    assert!(
        findings(&report)
            .iter()
            .all(|f| !f.0.starts_with("workload-") && f.0 != "pod-pending"),
        "{report:#}"
    );

    // No node for the DaemonSet: it has no pod, and its Lease has expired.
    set_status(0, 0).await;
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(c.client.clone(), "kube-system")
        .delete("bare-ccm-x7k2p", &Default::default())
        .await
        .unwrap();
    Api::<Lease>::namespaced(c.client.clone(), "kube-system")
        .delete("bare-ccm", &Default::default())
        .await
        .unwrap();
    c.lease(
        "kube-system",
        "bare-ccm",
        "cp-1_e2e",
        Duration::from_secs(600),
    )
    .await;
    let (code, report) = doctor_json(&c.admin_kubeconfig()).await;
    assert_eq!(code, 1, "{report:#}");
    let none = finding_at(&report, "workload-not-ready", None, "warning");
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .starts_with("DaemonSet kube-system/bare-ccm runs on no node"),
        "{none:#}"
    );
    let stale = finding(&report, "lease-stale", None);
    text_has(
        stale,
        "fix",
        "kubectl -n kube-system logs daemonset/bare-ccm",
    );
}
