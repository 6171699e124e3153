//! bare-ccm on the real control plane (tests/testbed): kube-apiserver with the Node and
//! RBAC authorizers and NodeRestriction, etcd, kube-controller-manager (nodeipam,
//! nodelifecycle), kube-scheduler, and kubemark hollow kubelets that register with
//! `--cloud-provider=external` followed by the k3s agent's and server's writes.
//!
//! - the seed scenario: hollow kubelets register tainted; bare-ccm, authenticated with a
//!   TokenRequest token of the manifest's ServiceAccount and authorised by the manifest's
//!   RBAC, initialises every node (taint gone, providerID, InternalIP = --node-ip), nodeipam
//!   gives it a podCIDR and it turns Ready; the audit log shows no 403 for bare-ccm;
//!   taints, labels and annotations added during the burst survive;
//! - the bootstrap schedule: the pod of each shipped layout (manifests/bare-ccm.yaml's
//!   DaemonSet, manifests/bare-ccm-deployment.yaml's Deployment) is bound by the real
//!   scheduler to a control-plane node that still carries the uninitialized and not-ready
//!   taints;
//! - `doctor` names the stuck-node cause with no CCM, and is satisfied once bare-ccm runs.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(dead_code)]
mod support;
use support::testbed::{
    AuditEvent, Ccm, Joined, Testbed, exclusive, get_json, shared_scenario, tainted_nodes,
};
use support::{TAINT, addresses, has_taint, manifest_documents, sa_user};

const SA: &str = "bare-ccm";

const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Applies the shipped manifest's documents for which `keep` holds.
fn apply_manifest(bed: &Testbed, keep: impl Fn(&Value) -> bool) {
    apply_documents(bed, manifest_documents().into_iter().filter(|d| keep(d)));
}

/// Applies `docs` as one List.
fn apply_documents(bed: &Testbed, docs: impl Iterator<Item = Value>) {
    let items: Vec<Value> = docs.collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    bed.kubectl_with_input(&["apply", "-f", "-"], Some(&list.to_string()));
}

/// The documents of a shipped manifest, `file` under manifests/.
fn shipped(file: &str) -> Vec<Value> {
    let path = format!("{}/manifests/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn is_workload(doc: &Value) -> bool {
    doc["kind"] == "Deployment" || doc["kind"] == "DaemonSet"
}

/// bare-ccm as the manifest runs it (its ServiceAccount, RBAC, config and flags), ready.
async fn start_ccm(bed: &Testbed, dir: &Path) -> Ccm {
    let ccm = Ccm::start(bed, dir, &support::manifest_config(), &[]);
    ccm.wait_ready().await;
    ccm
}

/// A time limit for polling: [`Deadline::tick`] waits 200 ms, or panics with `why` once
/// the limit has passed.
struct Deadline {
    start: Instant,
    limit: Duration,
    what: &'static str,
}

impl Deadline {
    fn new(limit: Duration, what: &'static str) -> Deadline {
        Deadline {
            start: Instant::now(),
            limit,
            what,
        }
    }

    async fn tick(&self, why: impl std::fmt::Display) {
        assert!(
            self.start.elapsed() < self.limit,
            "timed out after {:?} waiting for {}: {why}",
            self.limit,
            self.what
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Every condition the seed scenario asks of an initialised node, or what is missing.
fn seed_check(node: &Value, joined: &Joined) -> Result<(), String> {
    let name = &joined.name;
    if has_taint(node, TAINT) {
        return Err(format!("{name}: still tainted"));
    }
    let provider_id = node.pointer("/spec/providerID").and_then(Value::as_str);
    if provider_id != Some(&format!("k3s://{name}")) {
        return Err(format!("{name}: providerID {provider_id:?}"));
    }
    let internal: Vec<String> = addresses(node)
        .into_iter()
        .filter(|(t, _)| t == "InternalIP")
        .map(|(_, a)| a)
        .collect();
    if internal != [joined.kubelet_node_ip.clone()] {
        return Err(format!(
            "{name}: InternalIPs {internal:?}, --node-ip {}",
            joined.kubelet_node_ip
        ));
    }
    if node
        .pointer("/spec/podCIDR")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(format!("{name}: no podCIDR"));
    }
    if !is_ready(node) {
        return Err(format!("{name}: not Ready"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_scenario_on_the_real_control_plane() {
    let (_serial, bed, client, dir) = shared_scenario(&["--hollow-nodes", "1"]).await;
    apply_manifest(bed, |d| !is_workload(d));
    let ccm = start_ccm(bed, dir.path()).await;
    let context = || format!("bare-ccm log:\n{}", ccm.log_text());

    let joined = bed.join(12, &["--prefix", "seed"]);
    // Mid-burst, an operator and other controllers change the same nodes.
    for node in &joined {
        let path = format!("/api/v1/nodes/{}", node.name);
        let deadline = Deadline::new(Duration::from_secs(60), "a node to register");
        while get_json(&client, &path).await.is_none() {
            deadline.tick(format!("{}\n{}", node.name, context())).await;
        }
        let name = node.name.as_str();
        bed.kubectl(&[
            "taint",
            "node",
            name,
            "example.com/maintenance=soon:PreferNoSchedule",
        ]);
        bed.kubectl(&["label", "node", name, "example.com/rack=r7"]);
        bed.kubectl(&["annotate", "node", name, "example.com/owner=ops"]);
    }

    let deadline = Deadline::new(Duration::from_secs(120), "every node initialised and Ready");
    'poll: loop {
        for node in &joined {
            let value = get_json(&client, &format!("/api/v1/nodes/{}", node.name))
                .await
                .unwrap_or_default();
            if let Err(why) = seed_check(&value, node) {
                deadline.tick(format!("{why}\n{}", context())).await;
                continue 'poll;
            }
        }
        break;
    }
    for node in &joined {
        let value = get_json(&client, &format!("/api/v1/nodes/{}", node.name))
            .await
            .unwrap();
        assert!(
            has_taint(&value, "example.com/maintenance"),
            "{}: the operator's taint was lost",
            node.name
        );
        assert_eq!(
            value.pointer("/metadata/labels/example.com~1rack"),
            Some(&Value::from("r7"))
        );
        assert_eq!(
            value.pointer("/metadata/annotations/example.com~1owner"),
            Some(&Value::from("ops"))
        );
        // k3s's own writes survive too.
        assert!(
            value
                .pointer("/metadata/annotations/k3s.io~1node-args")
                .is_some(),
            "{}: node-args lost",
            node.name
        );
    }

    let user = sa_user(SA);
    let requests: Vec<_> = bed
        .audit()
        .into_iter()
        .filter(|e| e.user.username == user)
        .collect();
    assert!(
        !requests.is_empty(),
        "the audit log shows no request from {user}"
    );
    let refused = AuditEvent::answered_with(&requests, 403);
    assert!(
        refused.is_empty(),
        "refused requests of {user}: {refused:?}"
    );
    // Preconditions (issue 11, item 3): the status write carries no resourceVersion and the
    // node write is a JSON patch that tests only what bare-ccm read of its own fields, so the
    // operator's, the kubelet's, nodeipam's and the lifecycle controller's writes to the same
    // Nodes in the same seconds cost bare-ccm no 409 Conflict (a failed test is a 422 and
    // re-reads the node).
    let joined_names: Vec<&str> = joined.iter().map(|n| n.name.as_str()).collect();
    let node_writes: Vec<&AuditEvent> = requests
        .iter()
        .filter(|e| e.is_write())
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|o| o.resource == "nodes" && joined_names.contains(&o.name.as_str()))
        })
        .collect();
    let conflicts = AuditEvent::answered_with(node_writes.iter().copied(), 409);
    assert!(
        conflicts.is_empty(),
        "409 Conflicts of {user} on busy nodes: {conflicts:?}"
    );
    let failed_tests = node_writes.iter().filter(|e| e.code() == 422).count();
    println!(
        "{} requests of {user} for {} nodes, 0 refused; {} node writes ({:.2} per node), \
         0 conflicts, {failed_tests} failed JSON-patch tests",
        requests.len(),
        joined.len(),
        node_writes.len(),
        node_writes.len() as f64 / joined.len() as f64
    );
    ccm.stop().await;
    bed.leave(&joined);
}

/// The scheduler binds the pod of each shipped layout to the only control-plane node,
/// which no CCM has initialised: it still carries the uninitialized taint, and the
/// not-ready taint because its network plugin cannot start before initialisation. The
/// DaemonSet (manifests/bare-ccm.yaml) first; once it is deleted and its pod gone, the
/// Deployment (manifests/bare-ccm-deployment.yaml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_manifest_schedules_onto_a_tainted_not_ready_control_plane_node() {
    let _serial = exclusive().await;
    // Its own cluster: one k3s server, never initialised.
    let bed = Testbed::start(&["--hollow-nodes", "1"]);
    let client = bed.client().await;
    let server = "tb-server-1";
    let path = format!("/api/v1/nodes/{server}");
    let deadline = Deadline::new(
        Duration::from_secs(60),
        "a tainted, NotReady control-plane node",
    );
    loop {
        let node = get_json(&client, &path).await.unwrap_or_default();
        let control_plane = node
            .pointer("/metadata/labels/node-role.kubernetes.io~1control-plane")
            .is_some();
        if has_taint(&node, TAINT) && has_taint(&node, NOT_READY) && control_plane {
            break;
        }
        deadline.tick(format!("{node}\n{}", bed.up_log())).await;
    }

    let pods_path =
        "/api/v1/namespaces/kube-system/pods?labelSelector=app.kubernetes.io%2Fname%3Dbare-ccm";
    for (file, kind, owner) in [
        ("bare-ccm.yaml", "DaemonSet", "DaemonSet"),
        ("bare-ccm-deployment.yaml", "Deployment", "ReplicaSet"),
    ] {
        let docs = shipped(file);
        assert!(
            docs.iter().any(|d| d["kind"] == kind),
            "manifests/{file} has no {kind}"
        );
        apply_documents(&bed, docs.clone().into_iter());
        let deadline = Deadline::new(Duration::from_secs(60), "the bare-ccm pod bound to a node");
        let (bound, pod_owner) = loop {
            let pods = get_json(&client, pods_path).await.unwrap_or_default();
            let bound = pods["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|p| {
                    let node = p.pointer("/spec/nodeName").and_then(Value::as_str)?;
                    let owner = p
                        .pointer("/metadata/ownerReferences/0/kind")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    Some((node.to_string(), owner.to_string()))
                });
            if let Some(bound) = bound {
                break bound;
            }
            deadline.tick(format!("{file}: pods: {pods}")).await;
        };
        assert_eq!(bound, server, "{file}");
        assert_eq!(pod_owner, owner, "{file}: the pod is not the {kind}'s");
        let node = get_json(&client, &path).await.unwrap();
        assert!(
            has_taint(&node, TAINT) && has_taint(&node, NOT_READY) && !is_ready(&node),
            "{file}: the node was initialised or Ready when checked: {node}"
        );

        // Remove the layout, and wait for its pod to go: the next one needs the host port.
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
        bed.kubectl_with_input(
            &["delete", "--wait=true", "--ignore-not-found", "-f", "-"],
            Some(&list.to_string()),
        );
        let deadline = Deadline::new(Duration::from_secs(90), "the bare-ccm pods to go");
        loop {
            let pods = get_json(&client, pods_path).await.unwrap_or_default();
            if pods["items"].as_array().is_none_or(Vec::is_empty) {
                break;
            }
            deadline.tick(format!("{file}: pods: {pods}")).await;
        }
    }
}

/// `bare-ccm doctor` on a cluster whose nodes wait for a CCM, then with bare-ccm running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_missing_ccm_then_reports_healthy() {
    let _serial = exclusive().await;
    let bed = Testbed::start(&["--hollow-nodes", "3"]);
    let client = bed.client().await;
    let deadline = Deadline::new(Duration::from_secs(60), "three tainted nodes");
    loop {
        let tainted = tainted_nodes(&client).await;
        if tainted == 3 {
            break;
        }
        deadline
            .tick(format!("{tainted} tainted\n{}", bed.up_log()))
            .await;
    }
    apply_manifest(&bed, |d| !is_workload(d));

    let doctor = |kubeconfig: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bare-ccm"))
            .args(["doctor", "-o", "json", "--kubeconfig"])
            .arg(kubeconfig)
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let out = doctor(bed.kubeconfig());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor -o json: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"no-ccm-running"), "{report:#}");

    let dir = tempfile::tempdir().unwrap();
    let ccm = start_ccm(&bed, dir.path()).await;
    let deadline = Deadline::new(Duration::from_secs(90), "doctor to exit 0");
    loop {
        let out = doctor(bed.kubeconfig());
        if out.status.code() == Some(0) {
            break;
        }
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        deadline.tick(format!("{report}\n{}", ccm.log_text())).await;
    }
    ccm.stop().await;
}

/// k3s's default datastore: kine with SQLite behind the same kube-apiserver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_initialised_on_kine_with_sqlite() {
    let _serial = exclusive().await;
    let bed = Testbed::start(&["--datastore", "sqlite", "--hollow-nodes", "3"]);
    assert_eq!(bed.status()["datastore"], "sqlite");
    let client = bed.client().await;
    let dir = tempfile::tempdir().unwrap();
    apply_manifest(&bed, |d| !is_workload(d));
    let ccm = start_ccm(&bed, dir.path()).await;
    let deadline = Deadline::new(Duration::from_secs(90), "three nodes initialised on SQLite");
    loop {
        let nodes = get_json(&client, "/api/v1/nodes").await.unwrap_or_default();
        let items = nodes["items"].as_array().cloned().unwrap_or_default();
        let done = items
            .iter()
            .filter(|n| !has_taint(n, TAINT) && n.pointer("/spec/providerID").is_some())
            .count();
        if items.len() == 3 && done == 3 {
            break;
        }
        deadline
            .tick(format!(
                "{done} of {} initialised\n{}",
                items.len(),
                ccm.log_text()
            ))
            .await;
    }
    ccm.stop().await;
}

/// k3s describes a node after its kubelet registered it: the agent's node-args (with
/// `--node-external-ip` and a dual-stack `--node-ip`) arrive later. bare-ccm must not
/// initialise a k3s node before that, so at the moment its taint goes it already has the
/// ExternalIP and both InternalIPs that only node-args gave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3s_nodes_are_initialised_only_once_k3s_described_them() {
    use futures::TryStreamExt;
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, WatchEvent, WatchParams};

    let _serial = exclusive().await;
    let bed = Testbed::shared(&["--hollow-nodes", "1"]);
    let client = bed.client().await;
    apply_manifest(bed, |d| !is_workload(d));
    let dir = tempfile::tempdir().unwrap();
    let ccm = start_ccm(bed, dir.path()).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let from = nodes
        .list_metadata(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap_or_default();
    // The agent describes each node 2 s after its kubelet started. Single-stack nodes
    // with an external address (their kubelet has --node-ip, so bare-ccm could
    // initialise them at once, without the ExternalIP), and dual-stack ones (k3s gives
    // such a kubelet no --node-ip).
    let late = ["--external-ip", "--agent-delay", "2s"];
    let mut joined = bed.join(3, &[&["--prefix", "late"][..], &late].concat());
    joined.extend(bed.join(
        2,
        &[&["--prefix", "late-dual", "--dual-stack"][..], &late].concat(),
    ));
    let events = nodes
        .watch(&WatchParams::default().timeout(120), &from)
        .await
        .unwrap();
    let mut events = std::pin::pin!(events);
    let mut checked = std::collections::BTreeSet::new();
    while checked.len() < joined.len() {
        let event = tokio::time::timeout(Duration::from_secs(120), events.try_next())
            .await
            .unwrap_or_else(|_| panic!("no initialisation within 120 s\n{}", ccm.log_text()))
            .unwrap();
        let Some(WatchEvent::Added(node) | WatchEvent::Modified(node)) = event else {
            continue;
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        let Some(spec) = joined.iter().find(|j| j.name == name) else {
            continue;
        };
        let tainted = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| t.key == TAINT));
        if tainted || !checked.insert(name.clone()) {
            continue;
        }
        // The first state of the node without the taint.
        let annotations = node.metadata.annotations.clone().unwrap_or_default();
        assert!(
            annotations.contains_key("k3s.io/node-args"),
            "{name} initialised before k3s described it"
        );
        let addresses: Vec<(String, String)> = node
            .status
            .and_then(|s| s.addresses)
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.type_, a.address))
            .collect();
        for ip in &spec.internal_i_ps {
            assert!(
                addresses.contains(&("InternalIP".into(), ip.clone())),
                "{name} initialised without InternalIP {ip}: {addresses:?}"
            );
        }
        for ip in &spec.external_i_ps {
            assert!(
                addresses.contains(&("ExternalIP".into(), ip.clone())),
                "{name} initialised without ExternalIP {ip}: {addresses:?}"
            );
        }
    }
    ccm.stop().await;
    bed.leave(&joined);
}
