//! A node migrated from k3s's embedded CCM whose kubelet lacks
//! `--cloud-provider=external`, on the real control plane: a hollow kubelet not in
//! external mode, which writes its own `[InternalIP, Hostname]` back on every status
//! sync. The node keeps its `k3s://` providerID, so bare-ccm refreshes its addresses;
//! bare-ccm must notice that the kubelet reverts them, stop writing after a bounded
//! number of writes, and say so in a Warning Event that names the fix; `doctor` reports
//! the node.

use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(dead_code)]
mod support;
use support::sa_user;
use support::testbed::{Ccm, Testbed, exclusive, get_json};

const NODE: &str = "tb-legacy-1";
/// How long the fight is watched: the kubelet syncs its status every 10 s.
const WATCH: Duration = Duration::from_secs(75);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_not_in_external_mode_wins_the_addresses_after_a_bounded_number_of_writes() {
    let _serial = exclusive().await;
    let bed = Testbed::start(&["--hollow-nodes", "0", "--not-external-nodes", "1"]);
    let client = bed.client().await;
    let path = format!("/api/v1/nodes/{NODE}");
    let start = Instant::now();
    while get_json(&client, &path).await.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{NODE} never registered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // As k3s's embedded CCM left it: a k3s:// providerID. And an address only bare-ccm
    // knows, so bare-ccm's list differs from the kubelet's.
    bed.kubectl(&[
        "patch",
        "node",
        NODE,
        "--type=merge",
        "-p",
        &format!(r#"{{"spec":{{"providerID":"k3s://{NODE}"}}}}"#),
    ]);
    bed.kubectl(&[
        "annotate",
        "node",
        NODE,
        "bare-ccm.io/external-ip=198.51.100.7",
    ]);
    bed.apply_manifest_without_workload();

    let dir = tempfile::tempdir().unwrap();
    let before = bed.audit().len();
    let ccm = Ccm::start(&bed, dir.path(), &support::manifest_config(), &[]);
    ccm.wait_ready().await;
    tokio::time::sleep(WATCH).await;

    let user = sa_user("bare-ccm");
    let writes = bed
        .audit()
        .into_iter()
        .skip(before)
        .filter(|e| e.user.username == user && e.is_write())
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|o| o.name == NODE && o.subresource == "status")
        })
        .count();
    let events = get_json(&client, "/apis/events.k8s.io/v1/namespaces/default/events")
        .await
        .unwrap_or_default();
    let warned = events["items"].as_array().into_iter().flatten().any(|e| {
        e.pointer("/regarding/name").and_then(Value::as_str) == Some(NODE)
            && e["reason"] == "KubeletOwnsAddresses"
            && e["note"]
                .as_str()
                .is_some_and(|n| n.contains("--kubelet-arg=cloud-provider=external"))
    });
    let node = get_json(&client, &path).await.unwrap_or_default();
    println!(
        "{writes} address writes by bare-ccm to {NODE} in {WATCH:?}; addresses now {}",
        node.pointer("/status/addresses")
            .cloned()
            .unwrap_or_default()
    );
    assert!(
        writes >= 1,
        "bare-ccm never refreshed {NODE}:\n{}",
        ccm.log_text()
    );
    assert!(
        writes <= 2,
        "{writes} address writes in {WATCH:?}: bare-ccm kept fighting the kubelet\n{}",
        ccm.log_text()
    );
    assert!(
        warned,
        "no KubeletOwnsAddresses Warning naming the fix: {events}"
    );
    // doctor reports the node and the fix.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bare-ccm"))
        .args(["doctor", "-o", "json", "--kubeconfig"])
        .arg(bed.kubeconfig())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let named = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["code"] == "kubelet-owns-addresses" && f["node"] == NODE);
    assert!(named, "doctor did not report {NODE}: {report:#}");
    ccm.stop().await;
}
