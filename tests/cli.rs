//! The `explain` and `check-config` subcommands as a user runs them: real binary, real
//! files, asserted on exit codes and output.

use std::path::PathBuf;
use std::process::{Command, Output};

use bare_ccm_emulator::kubelet::{KubeletSpec, described_node, node_object};
use serde_json::Value;

#[allow(dead_code)]
mod support;
use support::Cluster;

fn bare_ccm(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bare-ccm"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bare-ccm starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    // A command that refuses its arguments may exit before reading stdin.
    if let Err(e) = input.write_all(stdin.unwrap_or("").as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing stdin: {e}"
        );
    }
    drop(input);
    child.wait_with_output().expect("bare-ccm finishes")
}

/// `bare-ccm check-config` of `text`, written as `name` into `dir`; asserts its exit `code`.
fn check_config_file(dir: &tempfile::TempDir, name: &str, text: &str, code: i32) -> Output {
    let path = write(dir, name, text);
    let out = bare_ccm(&["check-config", path.to_str().expect("utf-8")], None);
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    out
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("temp file is writable");
    path
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn explain_dual_stack_k3s_agent_from_stdin_prints_the_documented_json_shape() {
    let node = described_node(&KubeletSpec::k3s_agent("n1", "10.0.0.5", Some("fd00::5")));
    let out = bare_ccm(
        &["explain", "--node", "-", "-o", "json"],
        Some(&node.to_string()),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(report["node"], "n1");
    assert_eq!(report["tainted"], true);
    assert_eq!(report["wouldInitialize"], true);
    assert_eq!(report["removeTaint"], true);
    assert_eq!(report["providerID"], "k3s://n1");
    let addresses: Vec<(String, String, String)> = report["addresses"]
        .as_array()
        .expect("addresses is a list")
        .iter()
        .map(|a| {
            (
                a["type"].as_str().unwrap_or_default().to_owned(),
                a["address"].as_str().unwrap_or_default().to_owned(),
                a["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("InternalIP", "10.0.0.5", "k3s-node-args"),
        ("InternalIP", "fd00::5", "k3s-node-args"),
        ("Hostname", "n1", "kubelet"),
    ];
    assert_eq!(
        addresses,
        expected.map(|(t, a, s)| (t.to_owned(), a.to_owned(), s.to_owned()))
    );
    assert_eq!(report["labels"]["node.kubernetes.io/instance-type"], "k3s");
    assert_eq!(report["labels"]["beta.kubernetes.io/instance-type"], "k3s");
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert_eq!(report["errors"], serde_json::json!([]));
}

#[test]
fn explain_provided_node_ip_mismatch_exits_1_and_says_why() {
    let mut spec = KubeletSpec::k3s_agent("n2", "10.0.0.6", None);
    spec.provided_node_ip = Some("10.9.9.9".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let node = write(&dir, "node.yaml", &described_node(&spec).to_string());
    let out = bare_ccm(
        &[
            "explain",
            "--node",
            node.to_str().expect("utf-8 path"),
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report = json(&out);
    assert_eq!(report["wouldInitialize"], false);
    assert_eq!(report["removeTaint"], false);
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("10.9.9.9"),
        "the error names the IP: {errors}"
    );
}

#[test]
fn explain_text_names_every_source_and_never_needs_a_cluster() {
    let node = described_node(&KubeletSpec::k3s_agent("n3", "10.0.0.7", None));
    let out = bare_ccm(&["explain", "--node", "-"], Some(&node.to_string()));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("would be initialised"), "{text}");
    assert!(
        text.contains("10.0.0.7") && text.contains("k3s-node-args"),
        "{text}"
    );
    assert!(text.contains("providerID: k3s://n3"), "{text}");
}

#[test]
fn explain_with_a_bad_config_or_bad_node_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(&dir, "bad.yaml", "providerId: \"x\"\n");
    let node = node_object(&KubeletSpec::new("n4")).to_string();
    let out = bare_ccm(
        &[
            "explain",
            "--node",
            "-",
            "--config",
            bad.to_str().expect("utf-8"),
        ],
        Some(&node),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = bare_ccm(&["explain", "--node", "-"], Some("{not json"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn explain_refuses_a_document_that_is_not_a_named_node() {
    for doc in ["{}", "name: x\n", "{\"metadata\": {\"labels\": {}}}"] {
        let out = bare_ccm(&["explain", "--node", "-"], Some(doc));
        assert_eq!(out.status.code(), Some(2), "{doc:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--node - is not a Node: metadata.name is missing"),
            "{doc:?}: {err}"
        );
    }
}

#[test]
fn explain_with_a_missing_node_file_says_file_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let in_dir = dir.path().join("missing.json");
    for arg in [
        in_dir.to_str().expect("utf-8"),
        "missing.json",
        "node.yaml",
        "nodes/n1",
    ] {
        // An unreachable kubeconfig: a cluster lookup would fail differently.
        let out = bare_ccm(
            &[
                "explain",
                "--node",
                arg,
                "--kubeconfig",
                "/nonexistent/kubeconfig",
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{arg}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.trim_end(),
            format!("bare-ccm explain: --node {arg}: file not found"),
            "{arg}"
        );
    }
}

#[test]
fn explain_of_an_initialised_node_shows_only_its_refresh() {
    let mut node = described_node(&KubeletSpec::k3s_agent("n6", "10.0.0.9", None));
    node["spec"] = serde_json::json!({"providerID": "k3s://n6"});
    node["status"]["addresses"] = serde_json::json!([
        {"type": "InternalIP", "address": "10.0.0.9"},
        {"type": "ExternalIP", "address": "203.0.113.9"},
        {"type": "Hostname", "address": "n6"},
    ]);
    let out = bare_ccm(
        &["explain", "--node", "-", "-o", "json"],
        Some(&node.to_string()),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(report["tainted"], false);
    assert_eq!(report["providerID"], "k3s://n6");
    assert_eq!(report["setProviderID"], false);
    // The instance-type labels it lacks are added, as after a config change.
    assert_eq!(
        report["labels"],
        serde_json::json!({
            "beta.kubernetes.io/instance-type": "k3s",
            "node.kubernetes.io/instance-type": "k3s",
        })
    );
    // The stale ExternalIP (no source gives it any more) is dropped by the refresh.
    let patches = report["patches"].as_array().expect("patches is a list");
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert_eq!(patches[0]["target"], "nodes/status");
    assert_eq!(patches[1]["target"], "nodes");
    assert_eq!(patches[1]["patchType"], "json");
    assert_eq!(
        patches[0]["patch"]["status"],
        serde_json::json!({"addresses": [
            {"type": "InternalIP", "address": "10.0.0.9"},
            {"type": "Hostname", "address": "n6"},
        ]})
    );
}

#[test]
fn check_config_accepts_the_documented_example_and_names_bad_keys_with_lines() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/config.yaml");
    let out = bare_ccm(&["check-config", example], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let out = check_config_file(
        &dir,
        "bad.yaml",
        "instanceType: k3s\nproviderID: \"k3s://{node}\"\nextraLabels:\n  kubernetes.io/evil: \"x\"\naddressSources: [inventory, dns]\n",
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("extraLabels"), "{err}");
    assert!(err.contains("addressSources[1]"), "{err}");
    assert!(err.contains("line"), "a line number is given: {err}");

    // A list written before k3s-annotations and interfaces existed: the implied ranks are
    // printed.
    let out = check_config_file(
        &dir,
        "old.yaml",
        "addressSources: [inventory, annotations, k3s-node-args, provided-node-ip, kubelet]\n",
        0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("address sources, highest priority first: inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet"),
        "{text}"
    );

    let out = check_config_file(&dir, "unknown.yaml", "zone: a\nzones: b\n", 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("zones"));
}

/// The 1-based line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    let index = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not found"));
    u64::try_from(index).expect("small") + 1
}

/// Issue 14: a bad CIDR or type in `interfaces.rules` is refused with exit 2, its path and
/// its line; `-o json` lists each.
#[test]
fn check_config_refuses_a_bad_interfaces_rule_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        &dir,
        "rules.yaml",
        "zone: z1\ninterfaces:\n  rules:\n    - {cidr: 10.0.0.0/8, type: InternalIP}\n    - {cidr: 192.168.1.0/16, type: ExternalIP}\n    - {cidr: 0.0.0.0/0, type: Public}\n",
    );
    let path = bad.to_str().expect("utf-8");
    let out = bare_ccm(&["check-config", path], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"interfaces.rules[1].cidr: "192.168.1.0/16" has host bits set: the network is 192.168.0.0/16 (line 5)"#),
        "{err}"
    );
    assert!(
        err.contains(r#"interfaces.rules[2].type: unknown type "Public" (expected InternalIP, ExternalIP or ignore) (line 6)"#),
        "{err}"
    );
    let out = bare_ccm(&["check-config", path, "-o", "json"], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let report = json(&out);
    let paths: Vec<&str> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["interfaces.rules[1].cidr", "interfaces.rules[2].type"]
    );

    check_config_file(
        &dir,
        "good.yaml",
        "interfaces:\n  ignore: [lo, \"veth*\"]\n  rules:\n    - {cidr: 192.168.0.0/16, type: InternalIP}\n    - {cidr: \"fc00::/7\", type: ignore}\n",
        0,
    );
}

#[test]
fn check_config_finds_the_config_map_in_a_manifest_and_points_lines_into_it() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/bare-ccm.yaml");
    let out = bare_ccm(&["check-config", manifest], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("ConfigMap kube-system/bare-ccm-config, key config.yaml: OK"),
        "{out:?}"
    );

    let shipped = std::fs::read_to_string(manifest).expect("manifest readable");
    let broken = shipped.replacen("    # zone: \"\"", "    zone: 7\n    colour: blue", 1);
    assert_ne!(broken, shipped);
    let (zone, colour) = (
        line_of(&broken, "    zone: 7"),
        line_of(&broken, "colour: blue"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(&dir, "bare-ccm.yaml", &broken);
    let file = file.to_str().expect("utf-8");
    let out = bare_ccm(&["check-config", file], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("invalid config in {file}:")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "zone: 7 is not a string: quote it (\"7\") (line {zone})"
        )),
        "{err}"
    );
    assert!(
        err.contains("colour: unknown key") && err.contains(&format!("(line {colour})")),
        "{err}"
    );

    // The same from stdin, as JSON.
    let out = bare_ccm(&["check-config", "-", "-o", "json"], Some(&broken));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let report = json(&out);
    assert_eq!(report["valid"], false);
    assert_eq!(
        report["source"],
        "ConfigMap kube-system/bare-ccm-config, key config.yaml"
    );
    let problems: Vec<(String, u64)> = report["problems"]
        .as_array()
        .expect("problems is a list")
        .iter()
        .map(|p| {
            assert!(p["message"].as_str().is_some_and(|m| !m.is_empty()), "{p}");
            (
                p["path"].as_str().unwrap_or_default().to_owned(),
                p["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [("zone".to_owned(), zone), ("colour".to_owned(), colour)]
    );
}

#[test]
fn check_config_takes_a_config_map_document_and_refuses_a_manifest_without_one() {
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: my-config\n  namespace: ops\ndata:\n  config.yaml: |\n    zone: z1\n    region: 7\n";
    let out = bare_ccm(&["check-config", "-", "-o", "json"], Some(config_map));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let report = json(&out);
    assert_eq!(report["source"], "ConfigMap ops/my-config, key config.yaml");
    assert_eq!(report["problems"][0]["path"], "region");
    assert_eq!(report["problems"][0]["line"], 9);

    let valid = config_map.replace("region: 7", "region: \"7\"");
    let out = bare_ccm(&["check-config", "-"], Some(&valid));
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let other = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {}\n";
    let out = bare_ccm(&["check-config", "-"], Some(other));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no ConfigMap bare-ccm-config among its 2 documents"),
        "{out:?}"
    );
    let out = bare_ccm(&["check-config", "/nonexistent/config.yaml"], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// An emulated cluster holding the Node a k3s kubelet `name` registers (not yet described
/// by its agent), and the cluster's admin kubeconfig as an argument.
async fn cluster_with_node(name: &str, ip: &str) -> (Cluster, String) {
    use k8s_openapi::api::core::v1::Node;
    let c = Cluster::builder().start().await;
    let node: Node = serde_json::from_value(node_object(&KubeletSpec::k3s_agent(name, ip, None)))
        .expect("node object");
    kube::Api::<Node>::all(c.client.clone())
        .create(&Default::default(), &node)
        .await
        .expect("node created");
    let kubeconfig = c.admin_kubeconfig().to_str().expect("utf-8").to_owned();
    (c, kubeconfig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_a_node_by_name_from_the_cluster_and_writes_nothing() {
    let (c, kubeconfig_arg) = cluster_with_node("n5", "10.0.0.8").await;
    let emulator = &c.emu;
    let writes_before = emulator.accounting().writes().len();
    let out = tokio::task::spawn_blocking(move || {
        bare_ccm(
            &[
                "explain",
                "--node",
                "n5",
                "--kubeconfig",
                &kubeconfig_arg,
                "-o",
                "json",
            ],
            None,
        )
    })
    .await
    .expect("explain ran");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(report["addresses"][0]["address"], "10.0.0.8");
    // Just registered by a k3s kubelet, not yet described by the k3s agent.
    assert_eq!(report["wouldInitialize"], false, "{report}");
    assert_eq!(report["k3sAgentWait"]["state"], "waiting", "{report}");
    assert!(report["k3sAgentWait"]["until"].is_string(), "{report}");
    assert_eq!(emulator.accounting().writes().len(), writes_before);
    let stored = emulator
        .get_object("nodes", None, "n5")
        .expect("node stored");
    assert!(
        stored.pointer("/spec/providerID").is_none(),
        "explain never writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_of_a_cluster_node_uses_the_controllers_config_map_and_says_so() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let (c, kubeconfig) = cluster_with_node("n7", "10.0.0.7").await;
    let (emulator, client, dir) = (&c.emu, c.client.clone(), &c.dir);
    let explain = |extra: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["explain", "--node", "n7", "--kubeconfig", &kubeconfig];
            args.extend(extra.iter().map(String::as_str));
            bare_ccm(&args, None)
        })
    };
    let json_args = || vec!["-o".to_owned(), "json".to_owned()];

    // No ConfigMap: the defaults, as the controller would use them, and why.
    let out = explain(json_args()).await.expect("explain ran");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(report["config"]["source"], "defaults");
    assert_eq!(
        report["config"]["note"],
        "ConfigMap kube-system/bare-ccm-config not found"
    );
    assert!(
        report["labels"]
            .get("topology.kubernetes.io/zone")
            .is_none()
    );

    let config_map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bare-ccm-config", "namespace": "kube-system"},
        "data": {"config.yaml": "zone: z1\n"}
    }))
    .expect("config map");
    let created = kube::Api::<ConfigMap>::namespaced(client, "kube-system")
        .create(&Default::default(), &config_map)
        .await
        .expect("config map created");
    let version = created
        .metadata
        .resource_version
        .expect("a resourceVersion");
    let writes_before = emulator.accounting().writes().len();
    let out = explain(json_args()).await.expect("explain ran");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(
        report["config"],
        serde_json::json!({"source": "configMap", "name": "kube-system/bare-ccm-config", "resourceVersion": version})
    );
    assert_eq!(report["labels"]["topology.kubernetes.io/zone"], "z1");
    let out = explain(vec![]).await.expect("explain ran");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "config: ConfigMap kube-system/bare-ccm-config (resourceVersion {version}), key config.yaml"
        )),
        "{text}"
    );
    assert_eq!(emulator.accounting().writes().len(), writes_before);

    // --config wins over the cluster's.
    let file = write(dir, "other.yaml", "zone: z2\n");
    let file = file.to_str().expect("utf-8").to_owned();
    let mut args = json_args();
    args.extend(["--config".to_owned(), file.clone()]);
    let report = json(&explain(args).await.expect("explain ran"));
    assert_eq!(
        report["config"],
        serde_json::json!({"source": "file", "name": file})
    );
    assert_eq!(report["labels"]["topology.kubernetes.io/zone"], "z2");
}

#[test]
fn run_accepts_upstream_cloud_provider_and_v_with_a_warning_each_and_refuses_other_flags_with_a_hint()
 {
    let out = bare_ccm(
        &[
            "run",
            "--cloud-provider=external",
            "--v=2",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ],
        None,
    );
    // The flags parse; the missing kubeconfig then stops it (not a usage error).
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("ignoring --")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].contains("ignoring --cloud-provider=external"),
        "{err}"
    );
    assert!(
        warnings[1].contains("ignoring --v=2") && warnings[1].contains("RUST_LOG"),
        "{err}"
    );

    let out = bare_ccm(&["run", "--allocate-node-cidrs=false"], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unexpected argument '--allocate-node-cidrs'"),
        "{err}"
    );
    assert!(
        err.contains("hint: `bare-ccm run --help` lists every flag"),
        "{err}"
    );
}

/// `bare-ccm run` against an API server that refuses connections, for 3 s; its stderr.
fn run_against_a_refusing_server() -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let kubeconfig = write(
        &dir,
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_bare-ccm"))
        .args([
            "run",
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            "0",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bare-ccm starts");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(stopped, "SIGTERM sent");
    let out = child.wait_with_output().expect("bare-ccm stops");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn logs_to_a_pipe_have_no_colours_no_duplicate_client_lines_and_no_rbac_advice_for_a_refused_connection()
 {
    let log = run_against_a_refusing_server();
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a pipe:\n{log}"
    );
    let lease: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot read or renew the leader lease"))
        .collect();
    assert!(!lease.is_empty(), "{log}");
    for line in &lease {
        assert!(
            line.contains("Connection refused"),
            "the cause is shown: {line}"
        );
        assert!(
            !line.contains("RBAC"),
            "no RBAC advice for a refused connection: {line}"
        );
    }
    // Each failed request is logged once, by bare-ccm, not again by kube's trace layer.
    assert!(!log.contains("kube_client"), "{log}");
    assert!(!log.contains("failed with error"), "{log}");
}

#[test]
fn help_texts_name_no_internal_function() {
    let sim = cfg!(feature = "sim").then_some("sim");
    for command in ["run", "explain", "check-config", "doctor"]
        .into_iter()
        .chain(sim)
    {
        let out = bare_ccm(&[command, "--help"], None);
        assert_eq!(out.status.code(), Some(0), "{command}: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(!help.is_empty(), "{command}");
        for line in help.lines() {
            assert!(!line.contains("::"), "bare-ccm {command} --help: {line}");
        }
    }
}
