//! The real `kubectl` binary against the emulator, over HTTPS with a bearer token from a
//! kubeconfig written by `Emulator::write_kubeconfig`. Each command's effect is asserted on
//! the stored object, so these tests show that kubectl's requests (discovery, GET, merge,
//! JSON and strategic merge patches) and its reading of our Status errors work as against a
//! real cluster. kubectl must be installed (Debian package `kubectl`; `.ci/run` installs
//! it); without it these tests fail rather than pass silently.

use std::path::PathBuf;

use bare_ccm_emulator::kubelet::{KubeletSpec, described_node};
use bare_ccm_emulator::{Emulator, EmulatorOptions};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tempfile::TempDir;

const UNINITIALIZED: &str = "node.cloudprovider.kubernetes.io/uninitialized";
const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// An emulator with one registered Node `n1` (as a kubelet with
/// `--cloud-provider=external` registers it) and a kubeconfig for kubectl.
struct Cluster {
    emu: Emulator,
    dir: TempDir,
    kubeconfig: PathBuf,
}

/// What one kubectl run printed and whether it succeeded.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Cluster {
    async fn start() -> Cluster {
        let kubectl = kubectl_binary();
        assert!(kubectl.is_file(), "kubectl at {}", kubectl.display());
        let emu = Emulator::start(EmulatorOptions::default())
            .await
            .expect("emulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        emu.write_kubeconfig(&emu.admin_token(), &kubeconfig)
            .expect("kubeconfig written");
        let client = emu.client(&emu.admin_token()).await.expect("client");
        // The Node as registered and described: tainted uninitialized and not-ready.
        let node: Node = serde_json::from_value(described_node(&KubeletSpec::new("n1")))
            .expect("the simulated kubelet's Node decodes");
        Api::<Node>::all(client)
            .create(&PostParams::default(), &node)
            .await
            .expect("node n1 registered");
        Cluster {
            emu,
            dir,
            kubeconfig,
        }
    }

    /// Runs kubectl with this cluster's kubeconfig and a private discovery cache.
    async fn kubectl(&self, args: &[&str]) -> Run {
        let out = tokio::process::Command::new(kubectl_binary())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .await
            .unwrap_or_else(|e| panic!("running kubectl {args:?}: {e}"));
        Run {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl and requires it to succeed.
    async fn ok(&self, args: &[&str]) -> String {
        let run = self.kubectl(args).await;
        assert!(
            run.success,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// Runs kubectl and requires it to fail; returns its error output.
    async fn fails(&self, args: &[&str]) -> String {
        let run = self.kubectl(args).await;
        assert!(
            !run.success,
            "kubectl {args:?} succeeded but must fail:\n{}",
            run.stdout
        );
        run.stderr
    }

    fn node(&self) -> Value {
        self.emu
            .get_object("nodes", None, "n1")
            .expect("node n1 is stored")
    }
}

/// The kubectl binary on PATH; its absence fails the test with how to install it.
fn kubectl_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "kubectl is not on PATH; these tests drive the real binary. Install it with \
             `apt-get install -y kubectl` (CI's .ci/run does)"
        )
    })
}

fn taints(node: &Value) -> Vec<Value> {
    node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn taint_keys(node: &Value) -> Vec<String> {
    taints(node)
        .iter()
        .filter_map(|t| t["key"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_get_nodes_json_lists_the_stored_node() {
    let c = Cluster::start().await;
    let out = c.ok(&["get", "nodes", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&out).expect("kubectl printed JSON");
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    let stored = c.node();
    assert_eq!(items[0]["metadata"]["name"], "n1");
    assert_eq!(items[0]["metadata"]["uid"], stored["metadata"]["uid"]);
    assert_eq!(
        items[0]["metadata"]["resourceVersion"],
        stored["metadata"]["resourceVersion"]
    );
    assert_eq!(items[0]["spec"]["taints"], stored["spec"]["taints"]);

    let by_label = c
        .ok(&[
            "get",
            "nodes",
            "-l",
            "kubernetes.io/hostname=n1",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(by_label.trim(), "node/n1");
    let none = c
        .ok(&[
            "get",
            "nodes",
            "-l",
            "kubernetes.io/hostname=n2",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(none.trim(), "");
    let by_field = c
        .ok(&[
            "get",
            "nodes",
            "--field-selector",
            "metadata.name=n1",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(by_field.trim(), "node/n1");

    let stderr = c.fails(&["get", "nodes", "-l", "a b"]).await;
    assert!(
        stderr.contains("(BadRequest)")
            && stderr.contains(
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
            ),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_taint_adds_a_taint_and_removes_it_by_key() {
    let c = Cluster::start().await;
    assert_eq!(taint_keys(&c.node()), [UNINITIALIZED, NOT_READY]);

    // kubectl sends the whole list (taints are atomic), new taints first
    c.ok(&["taint", "nodes", "n1", "dedicated=infra:NoSchedule"])
        .await;
    let node = c.node();
    assert_eq!(taint_keys(&node), ["dedicated", UNINITIALIZED, NOT_READY]);
    let added = &taints(&node)[0];
    assert_eq!(added["value"], "infra");
    assert_eq!(added["effect"], "NoSchedule");

    c.ok(&["taint", "nodes", "n1", "dedicated-"]).await;
    assert_eq!(taint_keys(&c.node()), [UNINITIALIZED, NOT_READY]);

    // the manual workaround for a node no cloud controller initialises
    c.ok(&["taint", "nodes", "n1", &format!("{UNINITIALIZED}-")])
        .await;
    assert_eq!(taint_keys(&c.node()), [NOT_READY]);

    let stderr = c.fails(&["taint", "nodes", "n1", "absent-"]).await;
    assert!(stderr.contains("not found"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_label_and_annotate_write_and_remove_metadata() {
    let c = Cluster::start().await;
    c.ok(&["label", "nodes", "n1", "topology.kubernetes.io/zone=z1"])
        .await;
    assert_eq!(
        c.node()["metadata"]["labels"]["topology.kubernetes.io/zone"],
        "z1"
    );

    let stderr = c
        .fails(&["label", "nodes", "n1", "topology.kubernetes.io/zone=z2"])
        .await;
    assert!(stderr.contains("already has a value (z1)"), "{stderr}");
    c.ok(&[
        "label",
        "--overwrite",
        "nodes",
        "n1",
        "topology.kubernetes.io/zone=z2",
    ])
    .await;
    assert_eq!(
        c.node()["metadata"]["labels"]["topology.kubernetes.io/zone"],
        "z2"
    );

    c.ok(&["label", "nodes", "n1", "topology.kubernetes.io/zone-"])
        .await;
    assert!(
        c.node()["metadata"]["labels"]
            .get("topology.kubernetes.io/zone")
            .is_none()
    );
    assert_eq!(
        c.node()["metadata"]["labels"]["kubernetes.io/hostname"],
        "n1"
    );

    c.ok(&["annotate", "nodes", "n1", "example.com/note=hello world"])
        .await;
    assert_eq!(
        c.node()["metadata"]["annotations"]["example.com/note"],
        "hello world"
    );
    c.ok(&["annotate", "nodes", "n1", "example.com/note-"])
        .await;
    assert!(
        c.node()["metadata"]["annotations"]
            .get("example.com/note")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_patch_merge_json_and_strategic_change_the_stored_node() {
    let c = Cluster::start().await;

    c.ok(&[
        "patch",
        "node",
        "n1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"providerID":"bare://n1"}}"#,
    ])
    .await;
    assert_eq!(c.node()["spec"]["providerID"], "bare://n1");

    c.ok(&[
        "patch",
        "node",
        "n1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/example.com~1tier","value":"edge"}]"#,
    ])
    .await;
    assert_eq!(c.node()["metadata"]["labels"]["example.com/tier"], "edge");

    // taints have no patch strategy: a strategic merge patch replaces the list whole
    c.ok(&[
        "patch",
        "node",
        "n1",
        "--type",
        "strategic",
        "-p",
        r#"{"metadata":{"labels":{"example.com/tier":null}},"spec":{"taints":[{"key":"only","effect":"NoExecute"}]}}"#,
    ])
    .await;
    let node = c.node();
    assert_eq!(
        node["spec"]["taints"],
        json!([{ "key": "only", "effect": "NoExecute" }])
    );
    assert!(node["metadata"]["labels"].get("example.com/tier").is_none());
    assert_eq!(node["spec"]["providerID"], "bare://n1");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_patch_of_the_status_subresource_merges_addresses_by_type() {
    let c = Cluster::start().await;
    c.ok(&[
        "patch",
        "node",
        "n1",
        "--subresource",
        "status",
        "--type",
        "strategic",
        "-p",
        r#"{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.5"}]}}"#,
    ])
    .await;
    let addresses = c.node()["status"]["addresses"].clone();
    assert_eq!(
        addresses,
        json!([
            { "type": "InternalIP", "address": "10.0.0.5" },
            { "type": "Hostname", "address": "n1" },
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_reports_the_servers_422_and_the_node_is_unchanged() {
    let c = Cluster::start().await;
    c.ok(&[
        "patch",
        "node",
        "n1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"providerID":"bare://n1"}}"#,
    ])
    .await;
    let before = c.node();

    let stderr = c
        .fails(&[
            "patch",
            "node",
            "n1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"providerID":"bare://other"}}"#,
        ])
        .await;
    assert!(
        stderr.contains(
            r#"The Node "n1" is invalid: spec.providerID: Invalid value: null: field cannot be modified once set"#
        ),
        "{stderr}"
    );

    let stderr = c
        .fails(&[
            "patch",
            "node",
            "n1",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"-bad":"x"}}}"#,
        ])
        .await;
    assert!(
        stderr.contains(r#"The Node "n1" is invalid: metadata.labels: Invalid value: "-bad": name part must consist of"#),
        "{stderr}"
    );

    let stderr = c
        .fails(&[
            "patch",
            "node",
            "n1",
            "--type",
            "strategic",
            "-p",
            r#"{"spec":{"taints":[{"key":"k","effect":"Sometimes"}]}}"#,
        ])
        .await;
    assert!(
        stderr.contains(r#"metadata.taints[0].effect: Unsupported value: "Sometimes""#),
        "{stderr}"
    );

    let stderr = c
        .fails(&[
            "patch",
            "node",
            "n1",
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/spec/providerID","value":"nope"}]"#,
        ])
        .await;
    assert!(!stderr.is_empty());
    assert_eq!(c.node(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_get_raw_version_prints_the_version_document() {
    let c = Cluster::start().await;
    let out = c.ok(&["get", "--raw", "/version"]).await;
    let version: Value = serde_json::from_str(&out).expect("kubectl printed JSON");
    assert_eq!(version["major"], "1");
    assert!(
        version["gitVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.")),
        "{version}"
    );
    assert!(
        version["minor"].as_str().is_some_and(|m| !m.is_empty()),
        "{version}"
    );
}

/// The whitespace-separated fields of each printed line.
fn table_lines(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_get_nodes_prints_the_server_side_node_columns() {
    let c = Cluster::start().await;
    let stored = c.node();
    let ready = stored["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|x| x["type"] == "Ready"))
        .map(|x| {
            if x["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .unwrap_or("Unknown");
    let version = stored["status"]["nodeInfo"]["kubeletVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();

    let lines = table_lines(&c.ok(&["get", "nodes"]).await);
    assert_eq!(lines[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(lines[1][..3], ["n1", ready, "<none>"]);
    assert!(lines[1][3].ends_with('s'), "age {:?}", lines[1]);
    assert_eq!(lines[1][4], version);

    let wide = table_lines(&c.ok(&["get", "nodes", "-o", "wide"]).await);
    assert_eq!(
        wide[0],
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ]
    );
    let internal = stored["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("<none>")
        .to_string();
    assert_eq!(wide[1][5], internal, "{:?}", wide[1]);

    // Taints alone do not change STATUS; cordoning adds SchedulingDisabled.
    c.ok(&["taint", "nodes", "n1", "example.com/t=v:NoSchedule"])
        .await;
    assert_eq!(table_lines(&c.ok(&["get", "nodes"]).await)[1][1], ready);
    c.ok(&["cordon", "n1"]).await;
    assert_eq!(
        table_lines(&c.ok(&["get", "node", "n1"]).await)[1][1],
        format!("{ready},SchedulingDisabled")
    );
    c.ok(&[
        "label",
        "nodes",
        "n1",
        "node-role.kubernetes.io/worker=true",
    ])
    .await;
    assert_eq!(table_lines(&c.ok(&["get", "nodes"]).await)[1][2], "worker");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_get_of_configmaps_and_namespaces_prints_their_server_side_columns() {
    let c = Cluster::start().await;
    // Created through the API: `kubectl create configmap` writes protobuf, which the
    // emulator does not decode.
    let client = c.emu.client(&c.emu.admin_token()).await.expect("client");
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata":{"name":"settings"}})).expect("configmap");
    Api::namespaced(client, "default")
        .create(&PostParams::default(), &cm)
        .await
        .expect("configmap created");
    let lines = table_lines(&c.ok(&["get", "configmaps", "-n", "default"]).await);
    assert_eq!(lines[0], ["NAME", "DATA", "AGE"]);
    assert_eq!(lines[1][..2], ["settings", "0"]);
    let namespaces = table_lines(&c.ok(&["get", "namespaces"]).await);
    assert_eq!(namespaces[0], ["NAME", "STATUS", "AGE"]);
    assert_eq!(namespaces[1][1], "Active");
    assert_eq!(namespaces.len(), 5, "{namespaces:?}");
}
