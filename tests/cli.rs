//! The `explain` and `check-config` subcommands as a user runs them: real binary, real
//! files, asserted on exit codes and output.

use std::path::PathBuf;
use std::process::{Command, Output};

use bare_ccm_emulator::kubelet::{KubeletSpec, described_node, node_object};
use serde_json::Value;

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
    assert_eq!(report["labels"], serde_json::json!({}));
    // The stale ExternalIP (no source gives it any more) is dropped by the refresh.
    let patches = report["patches"].as_array().expect("patches is a list");
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0]["target"], "nodes/status");
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
    let bad = write(
        &dir,
        "bad.yaml",
        "instanceType: k3s\nproviderID: \"k3s://{node}\"\nextraLabels:\n  kubernetes.io/evil: \"x\"\naddressSources: [inventory, dns]\n",
    );
    let out = bare_ccm(&["check-config", bad.to_str().expect("utf-8")], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("extraLabels"), "{err}");
    assert!(err.contains("addressSources[1]"), "{err}");
    assert!(err.contains("line"), "a line number is given: {err}");

    // A list written before k3s-annotations existed: the implied rank is printed.
    let old = write(
        &dir,
        "old.yaml",
        "addressSources: [inventory, annotations, k3s-node-args, provided-node-ip, kubelet]\n",
    );
    let out = bare_ccm(&["check-config", old.to_str().expect("utf-8")], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("address sources, highest priority first: inventory, annotations, k3s-node-args, k3s-annotations, provided-node-ip, kubelet"),
        "{text}"
    );

    let unknown = write(&dir, "unknown.yaml", "zone: a\nzones: b\n");
    let out = bare_ccm(&["check-config", unknown.to_str().expect("utf-8")], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("zones"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_a_node_by_name_from_the_cluster_and_writes_nothing() {
    use bare_ccm_emulator::{Emulator, EmulatorOptions};
    let emulator = Emulator::start(EmulatorOptions::default())
        .await
        .expect("emulator starts");
    let client = emulator
        .client(&emulator.admin_token())
        .await
        .expect("client");
    let node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(node_object(&KubeletSpec::k3s_agent("n5", "10.0.0.8", None)))
            .expect("node object");
    kube::Api::<k8s_openapi::api::core::v1::Node>::all(client)
        .create(&Default::default(), &node)
        .await
        .expect("node created");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    emulator
        .write_kubeconfig(&emulator.admin_token(), &kubeconfig)
        .expect("kubeconfig written");
    let writes_before = emulator.accounting().writes().len();
    let kubeconfig_arg = kubeconfig.to_str().expect("utf-8").to_owned();
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
