//! Simulated kubelets against a running emulator over HTTPS: registration as a kubelet with
//! `--cloud-provider=external` does it, status heartbeats that really move
//! `lastHeartbeatTime`, retries through injected faults, and concurrent taint, label and
//! annotation changes that must all survive.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bare_ccm_emulator::faults::InjectedStatus;
use bare_ccm_emulator::kubelet::KubeletError;
use bare_ccm_emulator::kubelet::{
    Fleet, K3S_NODE_ARGS, KubeletSpec, NODE_RBAC, NOT_READY_TAINT, PROVIDED_NODE_IP, Registration,
    UNINITIALIZED_TAINT, pod_cidr,
};
use bare_ccm_emulator::rbac::RbacPolicy;
use bare_ccm_emulator::{Emulator, EmulatorOptions};
use serde_json::Value;

async fn start() -> (Emulator, Fleet) {
    start_with(Registration::default()).await
}

async fn start_with(registration: Registration) -> (Emulator, Fleet) {
    let emu = Emulator::start(EmulatorOptions::default())
        .await
        .expect("emulator starts");
    let token = emu.issue_token("system:node:fleet", &["system:nodes"]);
    let client = emu
        .client(&token)
        .await
        .expect("client for the kubelet token");
    (
        emu,
        Fleet::with_registration(client, Duration::from_secs(20), registration),
    )
}

fn node(emu: &Emulator, name: &str) -> Value {
    emu.get_object("nodes", None, name)
        .unwrap_or_else(|| panic!("node {name} is stored"))
}

fn taint_keys(node: &Value) -> BTreeSet<String> {
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["key"].as_str().map(str::to_owned))
        .collect()
}

fn condition_times(node: &Value, field: &str) -> Vec<String> {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn registered_nodes_are_stored_tainted_with_server_metadata() {
    let (emu, fleet) = start().await;
    let mut specs: Vec<KubeletSpec> = (0..10)
        .map(|i| {
            KubeletSpec::k3s_agent(
                &format!("agent-{i}"),
                &format!("10.0.0.{i}"),
                Some(&format!("fd00::{i}")),
            )
        })
        .collect();
    specs.extend((0..10).map(|i| KubeletSpec::new(&format!("worker-{i}"))));
    fleet
        .register_all(specs, None, 8)
        .await
        .expect("all register");
    fleet.settled().await;
    assert_eq!(fleet.followup_failures(), 0);

    let nodes = emu.list_objects("nodes", None);
    assert_eq!(nodes.len(), 20);
    for node in &nodes {
        let keys = taint_keys(node);
        assert!(
            keys.contains(UNINITIALIZED_TAINT) && keys.contains(NOT_READY_TAINT),
            "{keys:?}"
        );
        assert!(
            node["metadata"]["uid"]
                .as_str()
                .is_some_and(|uid| !uid.is_empty())
        );
        assert!(node["metadata"]["creationTimestamp"].is_string());
    }
    let agent = node(&emu, "agent-3");
    let stored_size = serde_json::to_vec(&agent).map_or(0, |bytes| bytes.len());
    assert!(
        (10_000..=20_000).contains(&stored_size),
        "{stored_size} bytes stored"
    );
    assert_eq!(agent["spec"]["podCIDR"], pod_cidr("agent-3").as_str());
    assert!(agent["metadata"]["annotations"][K3S_NODE_ARGS].is_string());
    assert_eq!(
        agent["metadata"]["annotations"][PROVIDED_NODE_IP],
        "10.0.0.3,fd00::3"
    );
    assert_eq!(
        agent["status"]["addresses"].as_array().map(Vec::len),
        Some(3)
    );
    let worker = node(&emu, "worker-3");
    assert_eq!(
        worker["status"]["addresses"],
        serde_json::json!([{"type": "Hostname", "address": "worker-3"}])
    );

    let accounting = emu.accounting();
    let responses = accounting.responses();
    assert_eq!(responses[&("create".into(), "nodes".into(), 201)], 20);
    // The k3s agents' node-args updates; the plain kubelets have no agent.
    assert_eq!(responses[&("update".into(), "nodes".into(), 200)], 10);
    let times = accounting.node_times();
    assert_eq!(times.len(), 20);
    assert!(
        times
            .values()
            .all(|t| t.registered.is_some() && t.taint_removed.is_none())
    );
    assert!(
        accounting
            .writes()
            .iter()
            .all(|w| w.user == "system:node:fleet")
    );
    assert_eq!(fleet.registered().len(), 20);
}

/// The writes of one node by the fleet, in order: `(verb, what changed)` is read from the
/// stored object after each, so the test states the order real k3s registers in.
fn node_writes(emu: &Emulator, name: &str) -> Vec<String> {
    emu.accounting()
        .writes()
        .iter()
        .filter(|w| w.name == name && (200..300).contains(&w.code))
        .map(|w| w.verb.clone())
        .collect()
}

/// Issue 11 item 15: the kubelet's create carries none of what k3s and the controllers add
/// later; the agent's node-args, the server's role labels and the podCIDR then arrive as
/// separate writes, in that order of their delays. The not-ready taint is there from the
/// create: the API server's TaintNodesByCondition admission adds it (kubernetes
/// `plugin/pkg/admission/nodetaint`), as the conformance test found on the real server.
#[tokio::test]
async fn a_k3s_server_registers_in_the_order_real_k3s_does() {
    let (emu, fleet) = start_with(Registration {
        nodeipam: Some(Duration::from_millis(100)),
        lifecycle: Some(Duration::from_millis(300)),
        agent_delay: Duration::from_millis(600),
        server_delay: Duration::from_millis(900),
    })
    .await;
    fleet
        .register(&KubeletSpec::k3s_server("server-1", "10.0.0.2", None))
        .await
        .expect("registers");
    let created = node(&emu, "server-1");
    assert_eq!(
        taint_keys(&created),
        BTreeSet::from([UNINITIALIZED_TAINT.to_owned(), NOT_READY_TAINT.to_owned()])
    );
    assert!(created["spec"].get("podCIDR").is_none());
    assert!(
        created["metadata"]["annotations"]
            .get(K3S_NODE_ARGS)
            .is_none()
    );
    assert!(
        created["metadata"]["labels"]
            .get("node-role.kubernetes.io/control-plane")
            .is_none()
    );
    assert_eq!(
        created["status"]["nodeInfo"]["kubeletVersion"],
        "v1.33.4+k3s1"
    );

    // Each step seen on its own, between its neighbours.
    let seen = |check: fn(&Value) -> bool| {
        let emu = &emu;
        async move {
            let started = Instant::now();
            while !check(&node(emu, "server-1")) && started.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            node(emu, "server-1")
        }
    };
    let with_cidr = seen(|n| n["spec"]["podCIDR"].is_string()).await;
    assert!(
        with_cidr["metadata"]["annotations"]
            .get(K3S_NODE_ARGS)
            .is_none()
    );
    let with_args = seen(|n| n["metadata"]["annotations"][K3S_NODE_ARGS].is_string()).await;
    assert!(
        with_args["metadata"]["labels"]
            .get("node-role.kubernetes.io/control-plane")
            .is_none()
    );
    assert!(with_args["metadata"]["annotations"]["k3s.io/node-config-hash"].is_string());
    fleet.settled().await;
    let done = node(&emu, "server-1");
    assert_eq!(
        done["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        "true"
    );
    assert_eq!(
        done["metadata"]["labels"]["node-role.kubernetes.io/master"],
        "true"
    );
    assert_eq!(
        taint_keys(&done),
        BTreeSet::from([UNINITIALIZED_TAINT.to_owned(), NOT_READY_TAINT.to_owned()])
    );
    // create (with admission's not-ready taint, which the lifecycle controller then
    // finds in place); nodeipam's patch; the agent's and the server's Updates of the
    // whole object.
    assert_eq!(
        node_writes(&emu, "server-1"),
        ["create", "patch", "update", "update"]
    );
    assert_eq!(fleet.followup_failures(), 0);
}

/// k3s's writes are Updates of the whole Node with its resourceVersion: one that lost a
/// race is refused with 409 and made again from a fresh read, and keeps what the other
/// writer wrote.
#[tokio::test]
async fn the_agent_update_is_conflict_safe() {
    let (emu, fleet) = start_with(Registration {
        agent_delay: Duration::ZERO,
        ..Registration::real_cluster()
    })
    .await;
    emu.faults()
        .fail_next(1, "update", "nodes", InjectedStatus::Conflict);
    fleet
        .register(&KubeletSpec::k3s_agent("agent-1", "10.0.0.5", None))
        .await
        .expect("registers");
    fleet
        .set_label("agent-1", "example.com/team", Some("storage"))
        .await
        .expect("labelled");
    fleet.settled().await;
    let stored = node(&emu, "agent-1");
    assert!(stored["metadata"]["annotations"][K3S_NODE_ARGS].is_string());
    assert_eq!(stored["metadata"]["labels"]["example.com/team"], "storage");
    let responses = emu.accounting().responses();
    assert_eq!(responses[&("update".into(), "nodes".into(), 409)], 1);
    assert_eq!(responses[&("update".into(), "nodes".into(), 200)], 1);
    assert!(responses[&("get".into(), "nodes".into(), 200)] >= 2);
}

/// Against a real kube-apiserver the kube-controller-manager assigns podCIDRs and taints
/// NotReady nodes; the fleet then writes only what the kubelet and k3s write.
#[tokio::test]
async fn with_the_simulated_controllers_off_only_the_kubelet_and_k3s_write() {
    let (emu, fleet) = start_with(Registration {
        agent_delay: Duration::ZERO,
        server_delay: Duration::ZERO,
        ..Registration::real_cluster()
    })
    .await;
    fleet
        .register(&KubeletSpec::k3s_server("server-1", "10.0.0.2", None))
        .await
        .expect("registers");
    fleet
        .register(&KubeletSpec::new("worker-1"))
        .await
        .expect("registers");
    fleet.settled().await;
    fleet
        .start_heartbeats(Duration::from_millis(100))
        .expect("heartbeats start");
    fleet
        .remove_taint("server-1", UNINITIALIZED_TAINT)
        .await
        .expect("initialised");
    tokio::time::sleep(Duration::from_millis(400)).await;
    fleet.stop().await;

    let server = node(&emu, "server-1");
    assert!(server["spec"].get("podCIDR").is_none());
    // Admission's not-ready taint stays: no lifecycle controller removes it here.
    assert_eq!(
        taint_keys(&server),
        BTreeSet::from([NOT_READY_TAINT.to_owned()])
    );
    assert!(server["metadata"]["annotations"][K3S_NODE_ARGS].is_string());
    assert_eq!(
        server["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        "true"
    );
    // Without a podCIDR the network never comes up, so the kubelet does not report Ready.
    assert_eq!(ready_condition(&server)["status"], "False");
    // Heartbeats (status patches) aside, only the kubelet's create touched the worker.
    let worker_writes: Vec<String> = node_writes(&emu, "worker-1")
        .into_iter()
        .filter(|verb| verb != "patch")
        .collect();
    assert_eq!(worker_writes, ["create"]);
    let server_writes: Vec<String> = node_writes(&emu, "server-1")
        .into_iter()
        .filter(|verb| verb != "patch")
        .collect();
    assert_eq!(server_writes, ["create", "update", "update"]);
    let patches = emu
        .accounting()
        .writes()
        .iter()
        .filter(|w| w.name == "server-1" && w.verb == "patch" && w.subresource.is_empty())
        .count();
    assert_eq!(patches, 1, "only the admin's taint removal");
}

#[tokio::test]
async fn registering_an_existing_node_adopts_it() {
    let (emu, fleet) = start().await;
    let spec = KubeletSpec::new("worker-0");
    fleet.register(&spec).await.expect("first registration");
    fleet
        .register(&spec)
        .await
        .expect("second registration adopts the node");
    assert_eq!(emu.list_objects("nodes", None).len(), 1);
    assert_eq!(
        emu.accounting().responses()[&("create".into(), "nodes".into(), 409)],
        1
    );
}

#[tokio::test]
async fn paced_registration_follows_the_rate() {
    let (emu, fleet) = start().await;
    let specs: Vec<KubeletSpec> = (0..6)
        .map(|i| KubeletSpec::new(&format!("w-{i}")))
        .collect();
    let started = Instant::now();
    fleet
        .register_all(specs, Some(20.0), 6)
        .await
        .expect("all register");
    // Six starts at 20 per second: the last one starts 250 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(emu.list_objects("nodes", None).len(), 6);
}

#[tokio::test]
async fn heartbeats_move_last_heartbeat_time_and_keep_the_rest_of_the_status() {
    let (emu, fleet) = start().await;
    for i in 0..3 {
        fleet
            .register(&KubeletSpec::new(&format!("hb-{i}")))
            .await
            .expect("registers");
    }
    fleet.settled().await;
    let before = node(&emu, "hb-0");
    fleet
        .start_heartbeats(Duration::from_millis(300))
        .expect("heartbeats start");
    // Heartbeat times have one-second resolution, as in the real kubelet.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    fleet.stop().await;

    let after = node(&emu, "hb-0");
    let (beat_before, beat_after) = (
        condition_times(&before, "lastHeartbeatTime"),
        condition_times(&after, "lastHeartbeatTime"),
    );
    assert_eq!(beat_after.len(), 4);
    assert!(
        beat_before.iter().zip(&beat_after).all(|(b, a)| a > b),
        "{beat_before:?} -> {beat_after:?}"
    );
    assert_eq!(
        condition_times(&before, "lastTransitionTime"),
        condition_times(&after, "lastTransitionTime")
    );
    assert_eq!(
        condition_times(&before, "type"),
        condition_times(&after, "type")
    );
    assert_eq!(before["status"]["images"], after["status"]["images"]);
    assert!(after["status"].get("$setElementOrder/conditions").is_none());
    let without_beats = |node: &Value| {
        let mut conditions = node["status"]["conditions"].clone();
        for condition in conditions.as_array_mut().into_iter().flatten() {
            condition["lastHeartbeatTime"] = Value::Null;
        }
        conditions
    };
    assert_eq!(without_beats(&before), without_beats(&after));
    assert_eq!(before["spec"], after["spec"]);

    let stats = fleet.heartbeat_stats();
    assert!(stats.sent >= 6, "{stats:?}");
    assert_eq!(stats.failed, 0);
    let patches = emu.accounting().responses()[&("patch".into(), "nodes/status".into(), 200)];
    assert_eq!(patches, stats.sent);

    // Stopped means stopped.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(fleet.heartbeat_stats(), stats);
}

fn ready_condition(node: &Value) -> Value {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn initialised_node_becomes_ready_and_loses_not_ready_within_a_heartbeat_period() {
    let (emu, fleet) = start().await;
    for name in ["initialised", "tainted"] {
        fleet
            .register(&KubeletSpec::new(name))
            .await
            .expect("registers");
    }
    fleet.settled().await;
    let registered = ready_condition(&node(&emu, "initialised"));
    assert_eq!(registered["status"], "False");
    let period = Duration::from_secs(1);
    fleet.start_heartbeats(period).expect("heartbeats start");
    // Transition times have one-second resolution: initialise in a later second.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // What the CCM does last: remove the uninitialized taint.
    fleet
        .remove_taint("initialised", UNINITIALIZED_TAINT)
        .await
        .expect("taint removed");
    let initialised_at = Instant::now();
    let settled = |node: &Value| {
        ready_condition(node)["status"] == "True" && !taint_keys(node).contains(NOT_READY_TAINT)
    };
    while !settled(&node(&emu, "initialised")) && initialised_at.elapsed() < period * 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = initialised_at.elapsed();
    let first_ready = ready_condition(&node(&emu, "initialised"));
    // One period, plus the round trips of the status update and the taint removal.
    assert!(
        took <= period + Duration::from_millis(400),
        "Ready after {took:?}"
    );

    // Later heartbeats keep it Ready and do not move the transition time.
    tokio::time::sleep(period * 2).await;
    fleet.stop().await;
    let ready = node(&emu, "initialised");
    let condition = ready_condition(&ready);
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], "KubeletReady");
    assert_eq!(condition["message"], "kubelet is posting ready status");
    let transition = condition["lastTransitionTime"].as_str().unwrap_or_default();
    let registered_transition = registered["lastTransitionTime"]
        .as_str()
        .unwrap_or_default();
    assert!(
        transition > registered_transition,
        "{registered_transition} -> {transition}"
    );
    assert_eq!(
        condition["lastTransitionTime"],
        first_ready["lastTransitionTime"]
    );
    assert!(condition["lastHeartbeatTime"].as_str().unwrap_or_default() > transition);
    assert_eq!(taint_keys(&ready), BTreeSet::new());

    let tainted = node(&emu, "tainted");
    assert_eq!(ready_condition(&tainted)["status"], "False");
    assert_eq!(ready_condition(&tainted)["reason"], "KubeletNotReady");
    assert_eq!(
        taint_keys(&tainted),
        BTreeSet::from([UNINITIALIZED_TAINT.to_owned(), NOT_READY_TAINT.to_owned()])
    );
    // Node writes: the podCIDR after registration (the not-ready taint came with the
    // create, from admission), the uninitialized taint removal, then the not-ready one's,
    // nothing more.
    let node_writes = emu
        .accounting()
        .writes()
        .iter()
        .filter(|w| w.name == "initialised" && w.verb == "patch" && w.subresource.is_empty())
        .count();
    assert_eq!(node_writes, 3);
}

#[tokio::test]
async fn not_ready_removal_starts_from_the_seen_node_and_rereads_after_a_conflict() {
    let (emu, fleet) = start().await;
    fleet
        .register(&KubeletSpec::new("n"))
        .await
        .expect("registers");
    fleet.settled().await;
    fleet
        .remove_taint("n", UNINITIALIZED_TAINT)
        .await
        .expect("initialised");
    fleet
        .add_taint("n", "example.com/maintenance", "", "NoSchedule")
        .await
        .expect("admin taint");
    // The next node write is refused as stale, as if another writer got in between.
    emu.faults()
        .fail_next(1, "patch", "nodes", InjectedStatus::Conflict);
    fleet
        .start_heartbeats(Duration::from_millis(200))
        .expect("heartbeats start");
    let started = Instant::now();
    while taint_keys(&node(&emu, "n")).contains(NOT_READY_TAINT)
        && started.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fleet.stop().await;

    let stored = node(&emu, "n");
    assert_eq!(
        taint_keys(&stored),
        BTreeSet::from(["example.com/maintenance".to_owned()])
    );
    assert_eq!(ready_condition(&stored)["status"], "True");
    let responses = emu.accounting().responses();
    assert_eq!(responses[&("patch".into(), "nodes".into(), 409)], 1);
    // The lifecycle controller's read before adding the taint, two reads by the admin
    // edits, one re-read after the conflict: the first removal attempt used the Node the
    // status update returned.
    assert_eq!(responses[&("get".into(), "nodes".into(), 200)], 4);
}

#[tokio::test]
async fn fleet_retries_through_injected_failures() {
    let (emu, fleet) = start().await;
    emu.faults()
        .fail_next(3, "create", "nodes", InjectedStatus::ServiceUnavailable);
    emu.faults()
        .fail_first_write_per_object(true, InjectedStatus::Conflict);
    fleet
        .register(&KubeletSpec::new("n"))
        .await
        .expect("registers after 503s");
    // The first write to the node (the podCIDR or the not-ready taint) meets the 409 and
    // is made again.
    fleet.settled().await;
    assert_eq!(fleet.followup_failures(), 0);
    fleet
        .add_taint("n", "example.com/maintenance", "true", "NoExecute")
        .await
        .expect("taint after 409");

    let responses = emu.accounting().responses();
    assert_eq!(responses[&("create".into(), "nodes".into(), 503)], 3);
    assert_eq!(responses[&("patch".into(), "nodes".into(), 409)], 1);
    assert!(taint_keys(&node(&emu, "n")).contains("example.com/maintenance"));
}

#[tokio::test]
async fn concurrent_taint_label_and_annotation_changes_all_survive() {
    let (emu, fleet) = start().await;
    fleet
        .register(&KubeletSpec::k3s_agent("busy", "10.0.0.9", None))
        .await
        .expect("registers");
    fleet
        .start_heartbeats(Duration::from_millis(50))
        .expect("heartbeats start");

    let adds = (0..8).map(|i| {
        let fleet = &fleet;
        async move {
            let key = format!("example.com/t{i}");
            fleet.add_taint("busy", &key, "x", "NoSchedule").await?;
            fleet
                .set_label("busy", &format!("example.com/l{i}"), Some("v"))
                .await?;
            fleet
                .set_annotation("busy", &format!("example.com/a{i}"), Some("v"))
                .await
        }
    });
    for result in futures::future::join_all(adds).await {
        result.expect("concurrent change succeeds");
    }
    let removals = (0..4).map(|i| {
        let fleet = &fleet;
        async move {
            fleet
                .remove_taint("busy", &format!("example.com/t{i}"))
                .await?;
            fleet
                .set_label("busy", &format!("example.com/l{i}"), None)
                .await
        }
    });
    for result in futures::future::join_all(removals).await {
        result.expect("concurrent removal succeeds");
    }
    fleet.settled().await;
    fleet.stop().await;

    let stored = node(&emu, "busy");
    let mut expected: BTreeSet<String> = (4..8).map(|i| format!("example.com/t{i}")).collect();
    expected.insert(UNINITIALIZED_TAINT.to_owned());
    expected.insert(NOT_READY_TAINT.to_owned());
    assert_eq!(taint_keys(&stored), expected);
    let labels = &stored["metadata"]["labels"];
    for i in 0..8 {
        assert_eq!(
            labels.get(format!("example.com/l{i}")).is_some(),
            i >= 4,
            "label l{i}"
        );
        assert_eq!(
            stored["metadata"]["annotations"][format!("example.com/a{i}")],
            "v"
        );
    }
    // So did the k3s agent's Update, racing them all.
    assert!(stored["metadata"]["annotations"][K3S_NODE_ARGS].is_string());
    assert!(fleet.heartbeat_stats().sent > 0);
    // The taint edits raced: some were refused as stale and retried.
    let conflicts = emu.accounting().responses()[&("patch".into(), "nodes".into(), 409)];
    assert!(
        conflicts > 0,
        "no conflict happened, so the race was not exercised"
    );
}

/// Scale check for the benchmarks: 5000 kubelets joining at once, then one heartbeat
/// period for all of them. Ignored by default (tens of seconds in a debug build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale check, run with --ignored"]
async fn five_thousand_kubelets_join_at_once_and_heartbeat() {
    let (emu, fleet) = start().await;
    let specs: Vec<KubeletSpec> = (0..5000)
        .map(|i| {
            KubeletSpec::k3s_agent(
                &format!("n{i:05}"),
                &format!("10.1.{}.{}", i / 250, i % 250 + 1),
                None,
            )
        })
        .collect();
    let started = Instant::now();
    fleet
        .register_all(specs, None, 256)
        .await
        .expect("all register");
    let registration = started.elapsed();
    assert_eq!(emu.list_objects("nodes", None).len(), 5000);

    // One round of heartbeats for every node: due within 5 s, allowed 60 s in a debug build.
    let beats = Instant::now();
    fleet
        .start_heartbeats(Duration::from_secs(5))
        .expect("heartbeats start");
    while fleet.heartbeat_stats().sent < 5000 && beats.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let round = beats.elapsed();
    fleet.stop().await;
    let stats = fleet.heartbeat_stats();
    eprintln!(
        "5000 nodes: registration {registration:?}, first heartbeat round {round:?}, {stats:?}"
    );
    assert!(stats.sent >= 5000, "{stats:?}");
    assert_eq!(stats.failed, 0);
}

#[tokio::test]
async fn throttled_kubelets_wait_as_long_as_retry_after_asks() {
    let (emu, fleet) = start().await;
    emu.faults().fail_next(
        1,
        "create",
        "nodes",
        InjectedStatus::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    let started = Instant::now();
    fleet
        .register(&KubeletSpec::new("n"))
        .await
        .expect("registers after the 429");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let responses = emu.accounting().responses();
    assert_eq!(responses[&("create".into(), "nodes".into(), 429)], 1);
    assert_eq!(responses[&("create".into(), "nodes".into(), 201)], 1);
}

#[tokio::test]
async fn with_rbac_on_node_grants_suffice_and_other_users_are_forbidden() {
    let (emu, fleet) = start().await;
    emu.set_rbac(Some(
        RbacPolicy::from_yaml(NODE_RBAC).expect("node RBAC loads"),
    ));
    fleet
        .register(&KubeletSpec::new("n"))
        .await
        .expect("kubelet may register");
    fleet
        .start_heartbeats(Duration::from_millis(100))
        .expect("heartbeats start");
    fleet
        .add_taint("n", "example.com/x", "", "NoSchedule")
        .await
        .expect("may taint");
    fleet
        .set_label("n", "example.com/l", Some("v"))
        .await
        .expect("may label");
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet.stop().await;
    let stats = fleet.heartbeat_stats();
    assert!(stats.sent > 0 && stats.failed == 0, "{stats:?}");

    let stranger = emu.issue_token("mallory", &[]);
    let client = emu.client(&stranger).await.expect("client");
    let other = Fleet::with_retry_budget(client, Duration::from_secs(20));
    let started = Instant::now();
    match other.register(&KubeletSpec::new("m")).await {
        Err(KubeletError::Request {
            source: kube::Error::Api(status),
            ..
        }) => {
            assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
        }
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
    // A refusal is final: it is not retried for the whole budget.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(emu.get_object("nodes", None, "m").is_none());
}
