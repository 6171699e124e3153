//! `bare-ccm agent`, the `interfaces` address source and the agent's admission policy on
//! the real control plane (tests/testbed, docs/testing.md).
//!
//! - Agents run as host processes inside their node's own network namespace
//!   (`join --own-netns`: eth0 a private 10.44.x address, eth1 a public 198.18.x one, veth
//!   peers named veth-*), as uid 65532 without any capability, with a token bound to a Pod
//!   on their node, as the DaemonSet's pods get. They publish `bare-ccm.io/interfaces`;
//!   bare-ccm then writes the ExternalIPs that no k3s flag gave; an address added to an
//!   interface reaches `status.addresses` within 10 s; a steady node costs no writes.
//! - The shipped ValidatingAdmissionPolicy confines a pod-bound agent token of node A: its
//!   own annotation may change; node B's annotation, A's labels, taints and status may not.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[allow(dead_code)]
mod support;
use support::testbed::{Ccm, Joined, Testbed, get_json, shared_scenario};
use support::{NS, TAINT, addresses, has_taint, manifest_documents};

const AGENT_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/bare-ccm-agent.yaml");
const AGENT_SA: &str = "bare-ccm-agent";
const KEY: &str = "bare-ccm.io/interfaces";
/// The user the API server gives the agent's ServiceAccount.
const AGENT_USER: &str = "system:serviceaccount:kube-system:bare-ccm-agent";

fn agent_documents() -> Vec<Value> {
    let text = std::fs::read_to_string(AGENT_MANIFEST)
        .unwrap_or_else(|e| panic!("cannot read {AGENT_MANIFEST}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{AGENT_MANIFEST}: {e}"))
}

fn apply(bed: &Testbed, items: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    bed.kubectl_with_input(&["apply", "-f", "-"], Some(&list.to_string()));
}

/// bare-ccm's ServiceAccount, RBAC and config, and the agent's ServiceAccount, RBAC and
/// admission policy: both manifests without their workloads (the test runs the binaries).
fn install(bed: &Testbed) {
    let workload = |d: &Value| d["kind"] == "Deployment" || d["kind"] == "DaemonSet";
    apply(
        bed,
        manifest_documents()
            .into_iter()
            .filter(|d| !workload(d))
            .collect(),
    );
    apply(
        bed,
        agent_documents()
            .into_iter()
            .filter(|d| !workload(d))
            .collect(),
    );
}

async fn wait_registered(client: &kube::Client, nodes: &[Joined]) {
    let start = Instant::now();
    for node in nodes {
        while get_json(client, &format!("/api/v1/nodes/{}", node.name))
            .await
            .is_none()
        {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{} never registered",
                node.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A Pod of the agent's ServiceAccount on `node` (bound with spec.nodeName, tolerating
/// every taint as the DaemonSet does, so the node lifecycle controller never evicts it):
/// tokens bound to it carry the node's name.
fn bind_pod(bed: &Testbed, node: &str) -> String {
    let name = format!("agent-{node}");
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "nodeName": node,
            "serviceAccountName": AGENT_SA,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "agent", "image": "ghcr.io/bare-ccm/bare-ccm:0.1.0", "args": ["agent"]}],
        },
    });
    bed.kubectl_with_input(&["apply", "-f", "-"], Some(&pod.to_string()));
    name
}

/// The `kubernetes.io` claims of a service-account token (its JWT payload).
fn token_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .expect("base64url payload");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["kubernetes.io"].clone()
}

/// A directory any user may read, for what the unprivileged agent reads.
fn readable_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("agent directory");
    for path in [parent, dir.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    dir
}

/// `bare-ccm agent` for `node`, inside the node's network namespace, as uid 65532 with
/// no capability (the DaemonSet's securityContext), with a token bound to a Pod on the
/// node. Killed when dropped.
struct Agent {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Agent {
    fn start(bed: &Testbed, node: &Joined, dir: &Path) -> Agent {
        assert!(
            !node.netns.is_empty(),
            "{} has no namespace of its own",
            node.name
        );
        let dir = readable_dir(dir, &node.name);
        let pod = bind_pod(bed, &node.name);
        let (kubeconfig, token) = bed.pod_token_kubeconfig(NS, AGENT_SA, &pod, &dir);
        std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644))
            .expect("chmod kubeconfig");
        assert_eq!(
            token_claims(&token)["node"]["name"],
            node.name.as_str(),
            "a pod-bound token names the pod's node"
        );
        let log = dir.join("agent.log");
        let child = tokio::process::Command::new("ip")
            .args(["netns", "exec", &node.netns])
            .args([
                "setpriv",
                "--reuid=65532",
                "--regid=65532",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
            ])
            .arg(env!("CARGO_BIN_EXE_bare-ccm"))
            .arg("agent")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--node-name", &node.name])
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "info,bare_ccm=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("agent log"))
            .kill_on_drop(true)
            .spawn()
            .expect("ip netns exec ... bare-ccm agent");
        Agent { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit within 10 s.
    async fn stop(mut self) {
        support::signal(&self.child, "-TERM");
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        assert!(
            matches!(status, Ok(Ok(s)) if s.success()),
            "the agent did not exit cleanly on SIGTERM: {status:?}\n{}",
            self.log_text()
        );
    }
}

/// The annotation an agent on `node` publishes: eth0 with its internal address, eth1 with
/// its public ones (host routes, as the test bed assigns them); lo, link-local IPv6 and
/// the veth peers are skipped.
fn expected_annotation(node: &Joined, extra_public: &[&str]) -> String {
    let host = |ip: &String| format!("{ip}/32");
    let mut public: Vec<String> = node.public_i_ps.iter().map(host).collect();
    public.extend(extra_public.iter().map(|ip| format!("{ip}/32")));
    let internal: Vec<String> = node.internal_i_ps.iter().map(host).collect();
    // Written out: serde_json's maps would sort the keys ("name" comes first).
    format!(
        r#"[{{"name":"eth0","addresses":{}}},{{"name":"eth1","addresses":{}}}]"#,
        json!(internal),
        json!(public)
    )
}

fn annotation(node: &Value) -> Option<String> {
    node.pointer(&format!("/metadata/annotations/{}", KEY.replace('/', "~1")))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Polls `check` on node `name` every 100 ms until it returns `Ok`, or panics after
/// `limit` with its last `Err` and `context()`; returns the time it took.
async fn until_node(
    client: &kube::Client,
    name: &str,
    limit: Duration,
    context: impl Fn() -> String,
    mut check: impl FnMut(&Value) -> Result<(), String>,
) -> Duration {
    let start = Instant::now();
    loop {
        let node = get_json(client, &format!("/api/v1/nodes/{name}"))
            .await
            .unwrap_or_default();
        match check(&node) {
            Ok(()) => return start.elapsed(),
            Err(why) => assert!(
                start.elapsed() < limit,
                "{name} after {limit:?}: {why}\n{}",
                context()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_publish_interfaces_and_bare_ccm_writes_external_ips_no_flag_gave() {
    let (_serial, bed, client, dir) = shared_scenario(&["--hollow-nodes", "0"]).await;
    install(bed);
    let joined = bed.join(2, &["--prefix", "nic", "--own-netns"]);
    wait_registered(&client, &joined).await;
    let audit_start = bed.audit().len();

    let agents: Vec<Agent> = joined
        .iter()
        .map(|node| Agent::start(bed, node, dir.path()))
        .collect();
    let agent_logs = || {
        agents
            .iter()
            .map(|a| a.log_text())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    for node in &joined {
        assert!(!node.public_i_ps.is_empty(), "{node:?}");
        let want = expected_annotation(node, &[]);
        until_node(
            &client,
            &node.name,
            Duration::from_secs(30),
            agent_logs,
            |n| match annotation(n) {
                Some(v) if v == want => Ok(()),
                other => Err(format!("annotation {other:?}, want {want}")),
            },
        )
        .await;
        // No k3s flag gave the public address.
        let value = get_json(&client, &format!("/api/v1/nodes/{}", node.name))
            .await
            .unwrap_or_default();
        let args = value
            .pointer("/metadata/annotations/k3s.io~1node-args")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(
            args.contains("--node-ip") && !args.contains("--node-external-ip"),
            "{args}"
        );
    }

    let ccm_dir = dir.path().join("ccm");
    let ccm = Ccm::start(bed, &ccm_dir, &support::manifest_config(), &[]);
    ccm.wait_ready().await;
    let context = || {
        format!(
            "bare-ccm log:\n{}\nagents:\n{}",
            ccm.log_text(),
            agent_logs()
        )
    };
    for node in &joined {
        until_node(&client, &node.name, Duration::from_secs(60), context, |n| {
            let want: Vec<(String, String)> = node
                .internal_i_ps
                .iter()
                .map(|ip| ("InternalIP".to_string(), ip.clone()))
                .chain(
                    node.public_i_ps
                        .iter()
                        .map(|ip| ("ExternalIP".to_string(), ip.clone())),
                )
                .chain([("Hostname".to_string(), node.name.clone())])
                .collect();
            let have = addresses(n);
            if has_taint(n, TAINT) || have != want {
                return Err(format!(
                    "tainted {}, addresses {have:?}, want {want:?}",
                    has_taint(n, TAINT)
                ));
            }
            Ok(())
        })
        .await;
    }

    // An operator adds a second public address to eth1 of the first node.
    let a = &joined[0];
    let added = "198.19.200.1";
    bed.add_address(&a.name, "eth1", &[added]);
    let took = until_node(&client, &a.name, Duration::from_secs(10), context, |n| {
        if addresses(n).contains(&("ExternalIP".to_string(), added.to_string())) {
            Ok(())
        } else {
            Err(format!("addresses {:?}", addresses(n)))
        }
    })
    .await;
    println!(
        "an address added to eth1 of {} reached status.addresses in {took:?}",
        a.name
    );
    let node = get_json(&client, &format!("/api/v1/nodes/{}", a.name))
        .await
        .unwrap_or_default();
    assert_eq!(annotation(&node), Some(expected_annotation(a, &[added])));

    // The agents' writes in the audit log from entry `from` on.
    let agent_writes = |from: usize| -> Vec<String> {
        bed.audit()
            .into_iter()
            .skip(from)
            .filter(|e| e.user.username == AGENT_USER && e.is_write())
            .map(|e| e.describe())
            .collect()
    };
    // A steady node costs no writes.
    let before = bed.audit().len();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let steady = agent_writes(before);
    assert!(steady.is_empty(), "writes of steady agents: {steady:?}");

    // Every write of the agents: one publish per node, one more for the added address,
    // each a patch of the node itself (never its status), each accepted.
    let writes = agent_writes(audit_start);
    let mut expected: Vec<String> = joined
        .iter()
        .map(|n| format!("patch nodes {} -> 200", n.name))
        .collect();
    expected.push(format!("patch nodes {} -> 200", a.name));
    let mut sorted = writes.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "{}", agent_logs());

    ccm.stop().await;
    for agent in agents {
        agent.stop().await;
    }
    bed.leave(&joined);
}

/// A kube client authenticated as in `kubeconfig`.
async fn client_from(kubeconfig: &Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig");
    kube::Client::try_from(config).expect("client")
}

/// kubectl with `kubeconfig` (an agent's token), whatever its exit status.
fn kubectl_as(kubeconfig: &Path, args: &[&str]) -> Output {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl")
}

fn refused(out: &Output, what: &str, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} was allowed");
    assert!(
        err.contains(needle),
        "{what}: expected {needle:?} in: {err}"
    );
}

const POLICY_DENIED: &str =
    "ValidatingAdmissionPolicy 'bare-ccm-agent' with binding 'bare-ccm-agent' denied request";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admission_policy_confines_an_agent_token_to_its_own_nodes_annotation() {
    let (_serial, bed, client, dir) = shared_scenario(&["--hollow-nodes", "0"]).await;
    install(bed);
    let joined = bed.join(2, &["--prefix", "vap"]);
    wait_registered(&client, &joined).await;
    let (a, b) = (joined[0].name.as_str(), joined[1].name.as_str());
    let pod = bind_pod(bed, a);
    let (token_a, token) = bed.pod_token_kubeconfig(NS, AGENT_SA, &pod, dir.path());
    assert_eq!(token_claims(&token)["node"]["name"], a);

    // The policy is enforced once the API server's admission plugin has loaded it.
    let start = Instant::now();
    loop {
        let probe = kubectl_as(
            &token_a,
            &["label", "node", a, "probe=1", "--dry-run=server"],
        );
        if String::from_utf8_lossy(&probe.stderr).contains(POLICY_DENIED) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the policy never took effect: {probe:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 1. Its own node's annotation: allowed.
    let out = kubectl_as(
        &token_a,
        &["annotate", "node", a, &format!("{KEY}=[]"), "--overwrite"],
    );
    assert!(out.status.success(), "{out:?}");
    let node = get_json(&client, &format!("/api/v1/nodes/{a}"))
        .await
        .unwrap_or_default();
    assert_eq!(annotation(&node).as_deref(), Some("[]"));
    // As a JSON patch, as the agent sends it.
    let patch = json!([
        {"op": "test", "path": "/metadata/annotations/bare-ccm.io~1interfaces", "value": "[]"},
        {"op": "add", "path": "/metadata/annotations/bare-ccm.io~1interfaces", "value": "[{\"name\":\"eth9\",\"addresses\":[\"192.0.2.1/24\"]}]"},
    ]);
    let out = kubectl_as(
        &token_a,
        &["patch", "node", a, "--type=json", "-p", &patch.to_string()],
    );
    assert!(out.status.success(), "{out:?}");

    // 2. Another node's annotation: denied.
    let out = kubectl_as(
        &token_a,
        &["annotate", "node", b, &format!("{KEY}=[]"), "--overwrite"],
    );
    refused(&out, "annotating another node", POLICY_DENIED);
    refused(
        &out,
        "annotating another node",
        &format!("bare-ccm-agent of node {a} may not write node {b}"),
    );
    let node_b = get_json(&client, &format!("/api/v1/nodes/{b}"))
        .await
        .unwrap_or_default();
    assert_eq!(annotation(&node_b), None);

    // 3. A label, a taint, another annotation on its own node: denied.
    let only = "bare-ccm-agent may change only the annotation bare-ccm.io/interfaces of its Node";
    let out = kubectl_as(&token_a, &["label", "node", a, "example.com/evil=1"]);
    refused(&out, "labelling its node", only);
    let out = kubectl_as(
        &token_a,
        &["taint", "node", a, "example.com/evil=1:NoSchedule"],
    );
    refused(&out, "tainting its node", only);
    let out = kubectl_as(
        &token_a,
        &[
            "annotate",
            "node",
            a,
            &format!("{KEY}=x"),
            "example.com/also=1",
            "--overwrite",
        ],
    );
    refused(&out, "another annotation with its own", only);
    let out = kubectl_as(
        &token_a,
        &[
            "patch",
            "node",
            a,
            "--type=merge",
            "-p",
            r#"{"spec":{"unschedulable":true}}"#,
        ],
    );
    refused(&out, "cordoning its node", only);

    // 4. Its node's status: refused by RBAC (the agent may patch nodes, not nodes/status)...
    let as_a = client_from(&token_a).await;
    let status =
        json!({"status": {"addresses": [{"type": "ExternalIP", "address": "192.0.2.66"}]}});
    let patch_status = || async {
        kube::Api::<k8s_openapi::api::core::v1::Node>::all(as_a.clone())
            .patch_status(
                a,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&status),
            )
            .await
    };
    let denied = |result: Result<k8s_openapi::api::core::v1::Node, kube::Error>| match result {
        Err(kube::Error::Api(s)) if s.code == 403 => s.message,
        other => panic!("patching its node's status: {other:?}"),
    };
    let message = denied(patch_status().await);
    assert!(
        message.contains("cannot patch resource \"nodes/status\""),
        "{message}"
    );
    // ...and by the policy where RBAC would allow it.
    let grant = json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "test-agent-status"},
         "rules": [{"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "test-agent-status"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "test-agent-status"},
         "subjects": [{"kind": "ServiceAccount", "name": AGENT_SA, "namespace": NS}]},
    ]);
    apply(bed, grant.as_array().cloned().unwrap_or_default());
    let start = Instant::now();
    let message = loop {
        let message = denied(patch_status().await);
        if !message.contains("cannot patch resource") {
            break message;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the extra RBAC never took effect"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        message.contains(POLICY_DENIED) && message.contains(only),
        "{message}"
    );
    bed.kubectl(&[
        "delete",
        "clusterrolebinding,clusterrole",
        "test-agent-status",
    ]);
    let node = get_json(&client, &format!("/api/v1/nodes/{a}"))
        .await
        .unwrap_or_default();
    assert!(
        !addresses(&node).contains(&("ExternalIP".to_string(), "192.0.2.66".to_string())),
        "{node}"
    );

    // 5. A token of the account not bound to a pod names no node: nothing is allowed.
    let unbound = bed.token_kubeconfig(NS, AGENT_SA, dir.path());
    let out = kubectl_as(
        &unbound,
        &["annotate", "node", a, &format!("{KEY}=[]"), "--overwrite"],
    );
    refused(&out, "an unbound token", "its token names no node");

    // Other users are not concerned: the admin labels the node as before.
    bed.kubectl(&["label", "node", a, "example.com/admin=1"]);
    bed.leave(&joined);
}
