//! Fencing on the real control plane: two replicas of bare-ccm, a burst of joining nodes,
//! and in the middle of it the API server is paused (SIGSTOP) while the leader is frozen
//! too. The standby takes the lease once the API server answers again; when the old
//! leader wakes up, the writes it had queued must not land. The audit log tells the
//! replicas apart by their tokens (credential-id) and proves that no write of the
//! deposed leader landed after the new leader's first write.

use std::time::Duration;

#[allow(dead_code)]
mod support;
use support::testbed::{AuditEvent, Ccm, Testbed, exclusive, get_json, tainted_nodes};
use support::{LEASE, NS, sa_user};

async fn lease_holder(client: &kube::Client) -> Option<String> {
    get_json(
        client,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{LEASE}"),
    )
    .await?
    .pointer("/spec/holderIdentity")?
    .as_str()
    .map(str::to_string)
}

fn kill(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {signal} {pid}");
}

/// The node and Event writes (not the Lease's) of the replica with `credential`.
fn node_writes<'a>(requests: &'a [AuditEvent], credential: &str) -> Vec<&'a AuditEvent> {
    requests
        .iter()
        .filter(|e| e.is_write() && e.user.credential() == Some(credential))
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|o| o.resource != "leases")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_lands_no_write_after_the_new_leaders_first() {
    let _serial = exclusive().await;
    let bed = Testbed::start(&["--hollow-nodes", "0"]);
    let client = bed.client().await;
    bed.apply_manifest_without_workload();
    let dir = tempfile::tempdir().unwrap();
    let config = support::manifest_config();

    // A leads first: it is the only replica. Its client is throttled to 5 requests a
    // second, so that during the burst its writes queue in the token bucket, where a
    // write waits after the writer last checked the lease.
    let a = Ccm::start(
        &bed,
        &dir.path().join("a"),
        &config,
        &["--kube-api-qps=5", "--kube-api-burst=1"],
    );
    a.wait_ready().await;
    let mut first_holder = None;
    for _ in 0..100 {
        first_holder = lease_holder(&client).await;
        if first_holder.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_holder = first_holder.expect("A took the lease");
    let user = sa_user("bare-ccm");
    let credential_a = bed
        .audit()
        .iter()
        .find(|e| e.user.username == user)
        .and_then(|e| e.user.credential().map(str::to_string))
        .expect("A's requests carry a credential id");
    let b = Ccm::start(&bed, &dir.path().join("b"), &config, &[]);
    b.wait_ready().await;

    // A burst joins; in the middle of it, once A has begun to write (a fixed pause was too
    // short on a loaded machine, where k3s's node-args arrived later), the API server
    // stops, and A freezes with it.
    let mut joined = bed.join(30, &["--prefix", "fence"]);
    let mut a_began = false;
    for _ in 0..600 {
        let requests: Vec<AuditEvent> = bed.audit();
        if !node_writes(&requests, &credential_a).is_empty() {
            a_began = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        a_began,
        "A wrote nothing within 60 s of the burst; A's log:\n{}",
        a.log_text()
    );
    bed.signal("apiserver", "STOP");
    tokio::time::sleep(Duration::from_secs(1)).await;
    kill(a.pid(), "-STOP");
    tokio::time::sleep(Duration::from_secs(5)).await;
    bed.signal("apiserver", "CONT");
    // B takes the lease (A's renewals stopped more than a lease duration ago).
    let mut taken = false;
    for _ in 0..150 {
        if lease_holder(&client)
            .await
            .is_some_and(|h| h != first_holder)
        {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(taken, "B never took the lease; B's log:\n{}", b.log_text());
    joined.extend(bed.join(20, &["--prefix", "fence-late"]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A wakes up with whatever it had queued.
    kill(a.pid(), "-CONT");

    let mut left = joined.len();
    for _ in 0..600 {
        left = tainted_nodes(&client).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "nodes left tainted; B's log:\n{}", b.log_text());
    a.stop().await;
    b.stop().await;

    let requests: Vec<AuditEvent> = bed
        .audit()
        .into_iter()
        .filter(|e| e.user.username == user)
        .collect();
    let credential_b = requests
        .iter()
        .filter_map(|e| e.user.credential())
        .find(|c| *c != credential_a)
        .expect("B made requests")
        .to_string();
    let by_a = node_writes(&requests, &credential_a);
    let by_b = node_writes(&requests, &credential_b);
    assert!(!by_a.is_empty(), "A wrote nothing while it led");
    let b_first = by_b
        .iter()
        .map(|e| e.request_received_timestamp)
        .min()
        .expect("B wrote after taking over");
    let late: Vec<String> = by_a
        .iter()
        .filter(|e| (200..300).contains(&e.code()) && e.stage_timestamp > b_first)
        .map(|e| format!("{} at {}", e.describe(), e.stage_timestamp))
        .collect();
    println!(
        "A: {} node/event writes, B: {} (B's first at {b_first}); A's landing after it: {}",
        by_a.len(),
        by_b.len(),
        late.len()
    );
    assert!(
        late.is_empty(),
        "writes of the deposed leader landed after the new leader's first write ({b_first}):\n{}\nA's log:\n{}",
        late.join("\n"),
        std::fs::read_to_string(dir.path().join("a/bare-ccm.log")).unwrap_or_default()
    );
}
