//! kube-rs against the emulator, the way bare-ccm will use it: a kubeconfig written to disk
//! and read back (`Kubeconfig::read_from`), HTTPS verified against the emulator's CA, a
//! bearer token; then `Api<Node>`, the runtime watcher (including recovery after cut
//! watches and after expired resourceVersions), and a Lease create/replace.

use std::time::Duration;

use bare_ccm_emulator::{Emulator, EmulatorOptions};
use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

async fn client_from_written_kubeconfig(
    emu: &Emulator,
    token: &str,
) -> (kube::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    emu.write_kubeconfig(token, &path)
        .expect("kubeconfig written");
    let kc = Kubeconfig::read_from(&path).expect("kubeconfig read");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    assert!(
        config
            .cluster_url
            .to_string()
            .starts_with("https://127.0.0.1:")
    );
    (kube::Client::try_from(config).expect("client"), dir)
}

fn node(name: &str) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"role": "worker"}},
        "spec": {"taints": [{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "Hostname", "address": name}]}
    }))
    .expect("node")
}

#[tokio::test]
async fn api_node_get_list_and_patch_over_https_with_a_service_account_token() {
    let emu = Emulator::start(EmulatorOptions::default())
        .await
        .expect("start");
    let token = emu.service_account_token("kube-system", "bare-ccm");
    let (client, _dir) = client_from_written_kubeconfig(&emu, &token).await;
    let nodes: Api<Node> = Api::all(client);
    nodes
        .create(&PostParams::default(), &node("n1"))
        .await
        .expect("create");
    nodes
        .create(&PostParams::default(), &node("n2"))
        .await
        .expect("create");

    let n1 = nodes.get("n1").await.expect("get");
    assert_eq!(n1.metadata.name.as_deref(), Some("n1"));
    assert!(n1.metadata.uid.is_some());

    let listed = nodes
        .list(&ListParams::default().labels("role=worker").limit(1))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.continue_.is_some());

    let patched = nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"providerID": "bare://n1"}})),
        )
        .await
        .expect("patch");
    assert_eq!(
        patched.spec.and_then(|s| s.provider_id).as_deref(),
        Some("bare://n1")
    );
    let stored = emu.get_object("nodes", None, "n1").expect("stored");
    assert_eq!(stored["spec"]["providerID"], "bare://n1");

    let missing = nodes.get("nope").await.expect_err("404");
    match missing {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.reason, "NotFound");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The next watcher event that names a node, skipping errors the watcher recovers from.
async fn next_named<S>(stream: &mut S, wait: Duration) -> Option<(String, String)>
where
    S: Stream<Item = Result<watcher::Event<Node>, watcher::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let item = tokio::time::timeout_at(deadline, stream.next())
            .await
            .ok()??;
        match item {
            Ok(watcher::Event::Apply(n)) => {
                return Some(("apply".into(), n.metadata.name.unwrap_or_default()));
            }
            Ok(watcher::Event::Delete(n)) => {
                return Some(("delete".into(), n.metadata.name.unwrap_or_default()));
            }
            Ok(watcher::Event::InitApply(n)) => {
                return Some(("init_apply".into(), n.metadata.name.unwrap_or_default()));
            }
            Ok(watcher::Event::Init) => return Some(("init".into(), String::new())),
            Ok(watcher::Event::InitDone) => return Some(("init_done".into(), String::new())),
            Err(_) => continue,
        }
    }
}

#[tokio::test]
async fn runtime_watcher_receives_events_and_recovers_from_cut_and_expired_watches() {
    let emu = Emulator::start(EmulatorOptions::default())
        .await
        .expect("start");
    let (client, _dir) = client_from_written_kubeconfig(&emu, &emu.admin_token()).await;
    let nodes: Api<Node> = Api::all(client);
    nodes
        .create(&PostParams::default(), &node("a"))
        .await
        .expect("create");
    let mut stream = watcher(nodes.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let wait = Duration::from_secs(10);
    assert_eq!(
        next_named(&mut stream, wait).await,
        Some(("init".into(), String::new()))
    );
    assert_eq!(
        next_named(&mut stream, wait).await,
        Some(("init_apply".into(), "a".into()))
    );
    assert_eq!(
        next_named(&mut stream, wait).await,
        Some(("init_done".into(), String::new()))
    );

    nodes
        .create(&PostParams::default(), &node("b"))
        .await
        .expect("create");
    assert_eq!(
        next_named(&mut stream, wait).await,
        Some(("apply".into(), "b".into()))
    );

    // Cut: the watcher resumes from its last resourceVersion, no re-list, nothing missed.
    emu.cut_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    nodes
        .create(&PostParams::default(), &node("c"))
        .await
        .expect("create");
    assert_eq!(
        next_named(&mut stream, wait).await,
        Some(("apply".into(), "c".into()))
    );

    // Expired: while the watcher is cut (and not polled), "d" is created and the retained
    // window is dropped; the resumed watch gets 410 and the watcher lists again.
    emu.cut_watches();
    nodes
        .create(&PostParams::default(), &node("d"))
        .await
        .expect("create");
    emu.expire_resource_versions();
    let mut seen = Vec::new();
    while let Some(ev) = next_named(&mut stream, wait).await {
        let done = ev.0 == "init_done";
        seen.push(ev);
        if done {
            break;
        }
    }
    assert!(
        seen.contains(&("init".into(), String::new())),
        "no re-list after 410: {seen:?}"
    );
    assert!(
        seen.contains(&("init_apply".into(), "d".into())),
        "{seen:?}"
    );
    // A pure delete is seen too.
    nodes
        .delete("a", &Default::default())
        .await
        .expect("delete");
    assert_eq!(
        next_named(&mut stream, wait).await,
        Some(("delete".into(), "a".into()))
    );
}

#[tokio::test]
async fn a_lease_is_created_and_replaced_with_optimistic_concurrency() {
    let emu = Emulator::start(EmulatorOptions::default())
        .await
        .expect("start");
    let (client, _dir) = client_from_written_kubeconfig(&emu, &emu.admin_token()).await;
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "bare-ccm"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .expect("lease");
    let created = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create");
    let mut next = created.clone();
    if let Some(spec) = next.spec.as_mut() {
        spec.holder_identity = Some("b".into());
    }
    let replaced = leases
        .replace("bare-ccm", &PostParams::default(), &next)
        .await
        .expect("replace");
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    // Replacing again with the old resourceVersion loses the race: 409.
    let stale = leases
        .replace("bare-ccm", &PostParams::default(), &next)
        .await
        .expect_err("conflict");
    match stale {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
        }
        other => panic!("expected 409, got {other:?}"),
    }
    let stored = emu
        .get_object("leases", Some("kube-system"), "bare-ccm")
        .expect("lease");
    assert_eq!(stored["spec"]["holderIdentity"], "b");
}
