//! The fault-injection reliability suite: two replicas of the real `bare-ccm run` binary
//! against the API emulator while 300 simulated kubelets join, under each fault profile of
//! docs/reliability.md. After every profile the same invariants are checked:
//! - every node ends exactly as `explain` predicts from the node as k3s describes it;
//! - taints, labels and annotations added concurrently by others are all still there;
//! - no replica writes while another holds the Lease (write log + Lease write history);
//! - no process panics or crashes, and its memory stays bounded;
//! - the request rate stays bounded (nothing retried in a hot loop).
//!
//! Profiles run one at a time (they share two CPU cores), each bounded in time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bare_ccm::config::Config;
use bare_ccm::explain::ExplainReport;
use bare_ccm::node_view::NodeView;
use bare_ccm_emulator::Emulator;
use bare_ccm_emulator::accounting::{AttributedRequest, WriteRecord};
use bare_ccm_emulator::faults::InjectedStatus;
use bare_ccm_emulator::kubelet::{KubeletSpec, described_node};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use serde_json::Value;
use tokio::process::{Child, Command};

#[allow(dead_code)]
mod support;
use support::{Cluster, FAST_ELECTION, LEASE, NS, TAINT, eventually, has_taint, sa_user};

const NODES: usize = 300;
const REPLICAS: [&str; 2] = ["bare-ccm-a", "bare-ccm-b"];
/// The lease duration of [`FAST_ELECTION`].
const LEASE_DURATION: Duration = Duration::from_secs(4);
/// A forced takeover (another holder overwriting a live Lease) is seen by the old leader
/// at its next renewal attempt, one retry period later; writes it had already started may
/// land in that window, as with every Lease-based election.
const TAKEOVER_GRACE: Duration = Duration::from_millis(1500);
/// Highest request rate of the replicas together over any [`RATE_WINDOW`]. The whole
/// profile needs about 1300 requests (300 nodes, 2 to 4 each, Lease traffic); a replica
/// retrying in a loop would exceed it within a second. The client-side limits (default
/// 5000 at once, then 500/s per client) are far above it and do not enforce it.
const MAX_RATE: f64 = 500.0;
/// Joins per second of the burst's second half, so that the burst lasts ~10 s and the
/// periodic faults (watch cuts, expiry every 2 s) and the Lease takeover (held 3 s, then
/// 4 s until it lapses) all happen while nodes are still joining.
const SECOND_HALF_RATE: f64 = 15.0;
/// Length of the window in which every request fails (in the server-errors profile).
const OUTAGE: Duration = Duration::from_secs(5);
/// Requests to one Node above which retries during [`OUTAGE`] are a hot loop. The
/// per-node backoff (5 ms doubling) allows 10 attempts in 5 s, one request each when every
/// request fails; k3s's own writes to a node during the window may add an immediate retry
/// each. Twice the backoff's 10 leaves room for those. The replicas' total rate depends on
/// how many nodes are waiting when the window opens (65–260/s on this machine), so it is
/// reported, and bounded by `MAX_RATE` like any other window, but the per-node count is
/// what tells a hot loop.
const MAX_OUTAGE_REQUESTS_PER_NODE: u64 = 20;
/// Window of the request-rate bound.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Requests per node over a whole profile above which retries are a hot loop: a clean
/// initialisation takes 2 to 4 (writes, Event) and each injected failure adds one retry.
const MAX_REQUESTS_PER_NODE: f64 = 20.0;
/// Memory bound of one debug-build replica with 300 cached nodes.
const MAX_RSS: u64 = 150 * 1024 * 1024;

const CONFIG: &str = "providerID: \"k3s://{node}\"\nextraLabels:\n  example.com/pool: burst\n";
const CONFIG_INVALID: &str = "providerID: 5\nnoSuchKey: true\n";
/// The same settings reformatted: a reload that is valid and changes nothing.
const CONFIG_EQUIVALENT: &str =
    "# reloaded\nextraLabels: {example.com/pool: burst}\nproviderID: 'k3s://{node}'\n";

/// Profiles share the machine, so they never overlap.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One `bare-ccm run` replica.
struct Replica {
    account: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
    killed: bool,
}

impl Replica {
    async fn start(emu: &Emulator, dir: &Path, account: &'static str, config: &Path) -> Replica {
        let kubeconfig = dir.join(format!("{account}.kubeconfig"));
        emu.write_kubeconfig(&emu.service_account_token(NS, account), &kubeconfig)
            .expect("kubeconfig written");
        let port = support::free_port();
        let log = dir.join(format!("{account}.log"));
        let child = support::run_command(&kubeconfig, port)
            .arg("--config")
            .arg(config)
            .args(["--config-poll-interval", "200ms"])
            .args(FAST_ELECTION)
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("bare-ccm starts");
        Replica {
            account,
            child,
            port,
            log,
            killed: false,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn rss(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    }

    fn signal(&mut self, sig: &str) {
        support::signal(&self.child, sig);
        if sig == "-KILL" {
            self.killed = true;
        }
    }

    /// SIGTERM, then the exit status and stderr are checked: a clean exit within 5 s, and
    /// never a panic.
    async fn stop_and_check(mut self) {
        if !self.killed {
            self.signal("-TERM");
            let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                .await
                .unwrap_or_else(|_| panic!("{} did not exit within 5 s of SIGTERM", self.account))
                .expect("exit status");
            assert!(
                status.success(),
                "{} exited with {status}; log:\n{}",
                self.account,
                self.log_text()
            );
        }
        let log = self.log_text();
        assert!(
            !log.contains("panicked"),
            "{} panicked:\n{log}",
            self.account
        );
    }
}

/// What a profile does to the cluster while the nodes join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    ServerErrors,
    Throttled,
    ConflictOnFirstWrite,
    WatchCuts,
    ResourceVersionExpiry,
    Unreachable,
    LeaderKilled,
    LeaseTaken,
    ConfigReload,
}

/// The burst: k3s agents, some dual-stack, some reporting no InternalIP (two writes), and
/// a few whose provided-node-ip matches no address (they must keep the taint).
fn specs() -> Vec<KubeletSpec> {
    (0..NODES)
        .map(|i| {
            let n = i + 1;
            let v4 = format!("10.1.{}.{}", n / 256, n % 256);
            let v6 = format!("fd00::1:{n:x}");
            let name = format!("node-{i:04}");
            let mut spec = match i % 10 {
                6 | 7 => KubeletSpec::k3s_agent(&name, &v4, Some(&v6)),
                _ => KubeletSpec::k3s_agent(&name, &v4, None),
            };
            if i % 10 == 8 {
                spec.report_internal_ip = false;
            }
            if i % 50 == 9 {
                spec.provided_node_ip = Some("192.0.2.1".into());
            }
            spec
        })
        .collect()
}

/// Nodes on which others add a taint, a label and an annotation during the burst.
fn touched(i: usize) -> bool {
    i % 10 == 3
}

fn predictions(specs: &[KubeletSpec], config: &Config) -> BTreeMap<String, ExplainReport> {
    specs
        .iter()
        .map(|spec| {
            let node: Node =
                serde_json::from_value(described_node(spec)).expect("registered node parses");
            let report = ExplainReport::new(&NodeView::from_node(&node), config);
            (spec.name.clone(), report)
        })
        .collect()
}

fn str_at<'a>(node: &'a Value, pointer: &str) -> Option<&'a str> {
    node.pointer(pointer).and_then(Value::as_str)
}

/// The write log of one object, for failure messages.
fn history(emu: &Emulator, name: &str) -> Vec<String> {
    emu.accounting()
        .writes()
        .iter()
        .filter(|w| w.name == name)
        .map(|w| {
            format!(
                "{} {} {}/{} -> {} rv {}",
                w.user, w.verb, w.resource, w.subresource, w.code, w.resource_version
            )
        })
        .collect()
}

/// Sum of the requests made by the replicas so far.
fn replica_requests(emu: &Emulator) -> u64 {
    replica_requests_where(emu, |_| true)
}

/// The replicas' requests that `keep` selects.
fn replica_requests_where(emu: &Emulator, keep: impl Fn(&AttributedRequest) -> bool) -> u64 {
    let users: Vec<String> = REPLICAS.iter().map(|a| sa_user(a)).collect();
    emu.accounting()
        .attributed_requests()
        .iter()
        .filter(|(r, _)| users.contains(&r.user) && keep(r))
        .map(|(_, n)| n)
        .sum()
}

/// The replicas' requests to each Node (and its status) so far.
fn replica_requests_per_node(emu: &Emulator) -> BTreeMap<String, u64> {
    let users: Vec<String> = REPLICAS.iter().map(|a| sa_user(a)).collect();
    let mut out = BTreeMap::new();
    for (r, n) in emu.accounting().attributed_requests() {
        if users.contains(&r.user) && r.resource == "nodes" && !r.name.is_empty() {
            *out.entry(r.name).or_default() += n;
        }
    }
    out
}

/// Sends `sig` to every process in `pids`, ignoring those that are gone.
fn send_signal(pids: &[String], sig: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill").args([sig, pid]).status();
    }
}

/// The replicas' requests with `verb` on Nodes.
fn replica_node_requests(emu: &Emulator, verb: &str) -> u64 {
    replica_requests_where(emu, |r| r.verb == verb && r.resource == "nodes")
}

/// Checks that the profiles whose fault is periodic or timed actually made the replicas
/// recover from it: re-watches after cuts, re-lists after expiry, the Lease written back
/// by a replica after the intruder's hold.
fn assert_fault_was_met(profile: Profile, emu: &Emulator) {
    // Each replica lists and watches once at start.
    let started = REPLICAS.len() as u64;
    match profile {
        Profile::WatchCuts => {
            let watches = replica_node_requests(emu, "watch");
            assert!(
                watches > started,
                "{profile:?}: {watches} node watches: no watch was cut and resumed"
            );
        }
        Profile::ResourceVersionExpiry => {
            let lists = replica_node_requests(emu, "list");
            assert!(
                lists > started,
                "{profile:?}: {lists} node lists: no expired watch forced a re-list"
            );
        }
        Profile::LeaseTaken => {
            let holder = leader(emu);
            assert!(
                holder
                    .as_deref()
                    .is_some_and(|h| REPLICAS.iter().any(|a| sa_user(a) == h)),
                "{profile:?}: the Lease was last written by {holder:?}, not by a replica"
            );
        }
        _ => {}
    }
}

/// Samples the replicas' request count every 250 ms until `done`; returns the highest
/// rate seen over any [`RATE_WINDOW`].
async fn sample_rate(emu: Emulator, done: Arc<AtomicBool>) -> f64 {
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let mut max_rate: f64 = 0.0;
    while !done.load(Ordering::Relaxed) {
        let now = Instant::now();
        let count = replica_requests(&emu);
        if let Some((t, c)) = samples
            .iter()
            .rev()
            .find(|(t, _)| now.duration_since(*t) >= RATE_WINDOW)
        {
            let rate = (count - c) as f64 / now.duration_since(*t).as_secs_f64();
            max_rate = max_rate.max(rate);
        }
        samples.push((now, count));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    max_rate
}

/// Checks that every write of a replica to nodes and events happened while the Lease's
/// latest write was its own and still valid (or within [`TAKEOVER_GRACE`] of a forced
/// takeover). Returns the violations.
fn writes_without_lease(writes: &[WriteRecord]) -> Vec<String> {
    let replicas: Vec<String> = REPLICAS.iter().map(|a| sa_user(a)).collect();
    let mut last_lease: Option<&WriteRecord> = None;
    let mut violations = Vec::new();
    for w in writes {
        if w.resource == "leases" && w.name == LEASE {
            last_lease = Some(w);
            continue;
        }
        if !replicas.contains(&w.user) || !(w.resource == "nodes" || w.resource == "events") {
            continue;
        }
        let ok = match last_lease {
            None => false,
            Some(l) if l.user == w.user => w.at.duration_since(l.at) <= LEASE_DURATION,
            Some(l) => w.at.duration_since(l.at) <= TAKEOVER_GRACE,
        };
        if !ok {
            violations.push(format!(
                "{} wrote {}/{} {} while the last Lease write was {:?}",
                w.user,
                w.resource,
                w.subresource,
                w.name,
                last_lease.map(|l| (&l.user, w.at.duration_since(l.at)))
            ));
        }
    }
    violations
}

/// Overwrites the Lease as another holder would, renewing it every second for `hold`.
async fn take_lease(emu: &Emulator, hold: Duration) {
    let admin = emu.client(&emu.admin_token()).await.expect("admin client");
    let leases: Api<Lease> = Api::namespaced(admin, NS);
    let start = Instant::now();
    while start.elapsed() < hold {
        if let Ok(mut lease) = leases.get(LEASE).await {
            let spec = lease.spec.get_or_insert_with(Default::default);
            let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
            if spec.holder_identity.as_deref() != Some("intruder") {
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.holder_identity = Some("intruder".into());
            spec.lease_duration_seconds = Some(4);
            spec.renew_time = Some(now);
            let _ = leases.replace(LEASE, &PostParams::default(), &lease).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The account whose write to the Lease is the latest: the current leader.
fn leader(emu: &Emulator) -> Option<String> {
    emu.accounting()
        .writes()
        .iter()
        .rev()
        .find(|w| w.resource == "leases" && w.name == LEASE)
        .map(|w| w.user.clone())
}

/// What a profile's run measured, printed for docs/reliability.md.
struct Outcome {
    seconds: f64,
    max_rate: f64,
    requests_per_node: f64,
    max_rss: u64,
}

async fn run_profile(profile: Profile) -> Outcome {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let Cluster {
        emu, fleet, dir, ..
    } = Cluster::builder()
        .kubelet_retry_budget(Duration::from_secs(90))
        .start()
        .await;
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, CONFIG).expect("config written");
    let config = Config::from_yaml(CONFIG).expect("test config is valid");

    let mut replicas = Vec::new();
    for account in REPLICAS {
        replicas.push(Replica::start(&emu, dir.path(), account, &config_path).await);
    }
    for r in &replicas {
        let log = || format!("{}: {}", r.account, r.log_text());
        support::wait_ready(r.port, Duration::from_secs(30), log).await;
    }
    eventually(Duration::from_secs(20), "a leader", || {
        leader(&emu).is_some()
    })
    .await;

    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_rate(emu.clone(), done.clone()));
    let pids: Vec<String> = replicas
        .iter()
        .filter_map(|r| r.child.id())
        .map(|pid| pid.to_string())
        .collect();
    let background = {
        let (emu, done) = (emu.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                match profile {
                    Profile::WatchCuts => emu.cut_watches(),
                    Profile::ResourceVersionExpiry => {
                        // The replicas are paused while their watches are cut and the
                        // cluster moves on (heartbeats, joins), then the retained window is
                        // dropped: each resumes from a resourceVersion older than the
                        // window, like a client that fell behind a compaction, and gets
                        // 410 Expired. (A watcher that is caught up may resume from the
                        // current resourceVersion even after a compaction.)
                        send_signal(&pids, "-STOP");
                        emu.cut_watches();
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        emu.expire_resource_versions();
                        send_signal(&pids, "-CONT");
                    }
                    _ => return,
                }
            }
        })
    };
    let faults = emu.faults();
    match profile {
        Profile::ServerErrors => faults.fail_ratio(
            0.05,
            "*",
            "*",
            vec![
                InjectedStatus::InternalError,
                InjectedStatus::ServiceUnavailable,
            ],
        ),
        Profile::Throttled => faults.fail_ratio(
            0.05,
            "*",
            "*",
            vec![InjectedStatus::TooManyRequests {
                retry_after_secs: 1,
            }],
        ),
        // The replicas' own first write to each object: the kubelets, k3s and the
        // controllers write to every node before bare-ccm does.
        Profile::ConflictOnFirstWrite => faults
            .fail_first_write_per_object_by("system:serviceaccount:", InjectedStatus::Conflict),
        _ => {}
    }
    fleet
        .start_heartbeats(Duration::from_secs(2))
        .expect("heartbeats");

    let specs = specs();
    let (first, second) = specs.split_at(NODES / 2);
    fleet
        .register_all(first.to_vec(), None, 64)
        .await
        .expect("first half registers");

    // Mid-burst.
    let mut outage_rate = None;
    let mut outage_busiest_node = None;
    match profile {
        Profile::ServerErrors => {
            // Within the 5% profile, a window where every request of the replicas fails.
            // The kubelets and k3s get through, so that the nodes of the first half are
            // described by k3s during the window and the replicas have work to retry.
            let before = replica_requests(&emu);
            let per_node_before = replica_requests_per_node(&emu);
            let replicas = "system:serviceaccount:";
            let unavailable = vec![InjectedStatus::ServiceUnavailable];
            faults.fail_ratio_by(replicas, 1.0, "*", "*", unavailable);
            tokio::time::sleep(OUTAGE).await;
            let sent = replica_requests(&emu) - before;
            outage_rate = Some(sent as f64 / OUTAGE.as_secs_f64());
            outage_busiest_node = replica_requests_per_node(&emu)
                .into_iter()
                .map(|(name, n)| (n - per_node_before.get(&name).copied().unwrap_or(0), name))
                .max();
            faults.fail_ratio_by(replicas, 0.0, "*", "*", vec![]);
        }
        Profile::Unreachable => faults.refuse_connections_for(Duration::from_secs(15)),
        Profile::LeaderKilled => {
            let leading = leader(&emu).expect("a leader");
            if let Some(r) = replicas.iter_mut().find(|r| sa_user(r.account) == leading) {
                r.signal("-KILL");
            }
        }
        Profile::LeaseTaken => {
            let emu = emu.clone();
            tokio::spawn(async move { take_lease(&emu, Duration::from_secs(3)).await });
        }
        Profile::ConfigReload => {
            std::fs::write(&config_path, CONFIG_INVALID).expect("config written");
            tokio::time::sleep(Duration::from_millis(800)).await;
            std::fs::write(&config_path, CONFIG_EQUIVALENT).expect("config written");
        }
        _ => {}
    }
    let additions = async {
        for spec in first
            .iter()
            .enumerate()
            .filter(|(i, _)| touched(*i))
            .map(|(_, s)| s)
        {
            let node = spec.name.as_str();
            fleet
                .add_taint(node, "example.com/maintenance", "yes", "NoSchedule")
                .await
                .expect("taint added");
            fleet
                .set_label(node, "example.com/team", Some("blue"))
                .await
                .expect("label added");
            fleet
                .set_annotation(node, "example.com/note", Some("kept"))
                .await
                .expect("annotation added");
        }
    };
    let (registered, ()) = tokio::join!(
        fleet.register_all(second.to_vec(), Some(SECOND_HALF_RATE), 64),
        additions
    );
    registered.expect("second half registers");

    // Every node that can be initialised is, in bounded time.
    let predicted = predictions(&specs, &config);
    let expected: Vec<&String> = predicted
        .iter()
        .filter(|(_, r)| r.remove_taint)
        .map(|(n, _)| n)
        .collect();
    assert!(
        expected.len() >= NODES * 9 / 10,
        "most nodes must be initialisable"
    );
    let limit = Duration::from_secs(120);
    let t0 = Instant::now();
    while !expected.iter().all(|n| {
        emu.get_object("nodes", None, n)
            .is_some_and(|node| !has_taint(&node, TAINT))
    }) {
        if t0.elapsed() > limit {
            let logs: Vec<String> = replicas.iter().map(Replica::log_text).collect();
            panic!("{profile:?}: not every node initialised within {limit:?}; logs:\n{logs:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    faults.clear();
    done.store(true, Ordering::Relaxed);
    let max_rate = sampler.await.expect("sampler");
    let _ = background.await;
    fleet.stop().await;

    // Invariant: every node is exactly what explain predicts for it.
    for (name, report) in &predicted {
        let node = emu.get_object("nodes", None, name).expect("node stored");
        assert_eq!(
            has_taint(&node, TAINT),
            !report.remove_taint,
            "{profile:?}: {name}: taint state differs from explain ({:?})",
            report.errors
        );
        if !report.would_initialize {
            assert_eq!(str_at(&node, "/spec/providerID"), None, "{name}");
            continue;
        }
        assert_eq!(
            str_at(&node, "/spec/providerID"),
            Some(report.provider_id.as_str()),
            "{profile:?}: {name}: providerID"
        );
        let addresses = support::addresses(&node);
        let predicted_addresses: Vec<(String, String)> = report
            .addresses
            .iter()
            .map(|a| (a.type_.clone(), a.address.clone()))
            .collect();
        assert_eq!(
            addresses, predicted_addresses,
            "{profile:?}: {name}: addresses"
        );
        for (key, value) in &report.labels {
            assert_eq!(
                str_at(
                    &node,
                    &format!("/metadata/labels/{}", key.replace('/', "~1"))
                ),
                Some(value.as_str()),
                "{profile:?}: {name}: label {key}"
            );
        }
    }
    // Invariant: what others added concurrently is still there.
    for (i, spec) in first.iter().enumerate().filter(|(i, _)| touched(*i)) {
        let node = emu
            .get_object("nodes", None, &spec.name)
            .expect("node stored");
        assert!(
            has_taint(&node, "example.com/maintenance"),
            "{profile:?}: node {i}: a concurrently added taint was lost: {:?}; writes: {:#?}",
            node.pointer("/spec/taints"),
            history(&emu, &spec.name)
        );
        assert_eq!(
            str_at(&node, "/metadata/labels/example.com~1team"),
            Some("blue"),
            "{profile:?}: node {i}: concurrent label lost"
        );
        assert_eq!(
            str_at(&node, "/metadata/annotations/example.com~1note"),
            Some("kept"),
            "{profile:?}: node {i}: concurrent annotation lost"
        );
    }
    // Invariant: only the Lease holder writes.
    let writes = emu.accounting().writes();
    assert_eq!(emu.accounting().dropped_writes(), 0);
    let violations = writes_without_lease(&writes);
    assert!(
        violations.is_empty(),
        "{profile:?}: writes without the lease:\n{}",
        violations.join("\n")
    );
    // Invariant: bounded request rate and memory.
    assert!(
        max_rate <= MAX_RATE,
        "{profile:?}: replicas sent {max_rate:.0} requests/s over {RATE_WINDOW:?} (bound {MAX_RATE:.0})"
    );
    // The fault happened while nodes were joining, and the replicas went through it.
    assert_fault_was_met(profile, &emu);
    if let Some((requests, node)) = &outage_busiest_node {
        eprintln!(
            "{profile:?}: outage: {:.0} requests/s in all, at most {requests} to one node ({node})",
            outage_rate.unwrap_or(0.0)
        );
        assert!(
            *requests <= MAX_OUTAGE_REQUESTS_PER_NODE,
            "{profile:?}: {requests} requests to {node} in {OUTAGE:?} while every request \
             failed: a hot loop (its backoff allows 10)"
        );
    }
    let requests_per_node = replica_requests(&emu) as f64 / NODES as f64;
    assert!(
        requests_per_node <= MAX_REQUESTS_PER_NODE,
        "{profile:?}: {requests_per_node:.1} requests per node"
    );
    let max_rss = replicas.iter().map(Replica::rss).max().unwrap_or(0);
    assert!(max_rss <= MAX_RSS, "{profile:?}: RSS {max_rss} bytes");
    // Invariant: no panic, a clean exit on SIGTERM.
    for r in replicas {
        r.stop_and_check().await;
    }
    emu.shutdown().await;
    let outcome = Outcome {
        seconds: started.elapsed().as_secs_f64(),
        max_rate,
        requests_per_node,
        max_rss,
    };
    eprintln!(
        "| {profile:?} | pass | {:.1} s | {:.0}/s | {} | {:.2} | {:.1} MiB |",
        outcome.seconds,
        outcome.max_rate,
        outage_rate.map_or("-".into(), |r| format!("{r:.0}/s")),
        outcome.requests_per_node,
        outcome.max_rss as f64 / 1048576.0
    );
    outcome
}

/// One test per fault profile: `name => Profile`, each running [`run_profile`].
macro_rules! profile_tests {
    ($($name:ident => $profile:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_profile(Profile::$profile).await;
        }
    )*};
}

profile_tests! {
    five_percent_server_errors_lose_nothing => ServerErrors,
    throttling_with_retry_after_is_obeyed_and_loses_nothing => Throttled,
    a_conflict_on_every_first_write_is_retried_without_losing_concurrent_changes => ConflictOnFirstWrite,
    watches_cut_every_two_seconds_miss_no_node => WatchCuts,
    expired_resource_versions_force_a_relist_that_misses_no_node => ResourceVersionExpiry,
    the_leader_killed_mid_burst_is_replaced_by_the_standby => LeaderKilled,
    a_lease_taken_by_another_holder_stops_every_write_until_it_is_regained => LeaseTaken,
    config_reloads_mid_burst_including_an_invalid_one_keep_the_good_config => ConfigReload,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_unreachable_for_fifteen_seconds_is_survived() {
    let outcome = run_profile(Profile::Unreachable).await;
    assert!(outcome.seconds >= 15.0, "the outage lasted 15 s");
}

/// `bare-ccm sim --keep-running` stopped by a plain SIGTERM (not only Ctrl-C) must stop
/// its `bare-ccm run` child and remove its temporary directory, not orphan them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_stopped_by_sigterm_stops_its_controller_and_removes_its_temp_dir() {
    let _serial = SERIAL.lock().await;
    let mut sim = Command::new(env!("CARGO_BIN_EXE_bare-ccm"))
        .args(["sim", "--nodes", "3", "--keep-running"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sim starts");
    let sim_pid = sim.id().expect("sim running");
    let mut stderr = tokio::io::BufReader::new(sim.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        while !line.contains("keeps running") {
            line.clear();
            let n = tokio::io::AsyncBufReadExt::read_line(&mut stderr, &mut line)
                .await
                .expect("sim stderr readable");
            assert!(n > 0, "sim ended before its summary");
        }
    })
    .await
    .expect("sim printed its summary within 120 s");

    let children = std::fs::read_to_string(format!("/proc/{sim_pid}/task/{sim_pid}/children"))
        .expect("children of sim readable");
    let controller: u32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("sim has its controller child");
    let cmdline = std::fs::read(format!("/proc/{controller}/cmdline")).expect("controller cmdline");
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert_eq!(args.get(1).map(String::as_str), Some("run"), "{args:?}");
    let kubeconfig = args
        .iter()
        .skip_while(|a| *a != "--kubeconfig")
        .nth(1)
        .map(PathBuf::from)
        .expect("controller started with --kubeconfig");
    let temp_dir = kubeconfig
        .parent()
        .expect("kubeconfig in a directory")
        .to_owned();
    assert!(temp_dir.exists());

    support::signal(&sim, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), sim.wait())
        .await
        .expect("sim exits within 20 s of SIGTERM")
        .expect("sim exit status");
    assert!(status.success(), "sim exit status after SIGTERM: {status}");
    let mut rest = String::new();
    let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut rest).await;
    assert!(
        !Path::new(&format!("/proc/{controller}")).exists(),
        "controller {controller} still running after sim exited"
    );
    assert!(!temp_dir.exists(), "{} left behind", temp_dir.display());
    // The controller is stopped while the emulator still answers, so its shutdown logs
    // no connection errors.
    let lower = rest.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("error"),
        "{rest}"
    );
}

#[test]
fn a_write_after_another_holder_took_the_lease_is_a_violation() {
    let t = Instant::now();
    let rec = |user: &str, resource: &str, after_ms: u64| WriteRecord {
        at: t + Duration::from_millis(after_ms),
        wall: std::time::SystemTime::now(),
        user: user.into(),
        verb: "patch".into(),
        resource: resource.into(),
        subresource: String::new(),
        namespace: String::new(),
        name: if resource == "leases" { LEASE } else { "n" }.into(),
        code: 200,
        resource_version: "1".into(),
    };
    let a = sa_user(REPLICAS[0]);
    let b = sa_user(REPLICAS[1]);
    let fine = [
        rec(&a, "leases", 0),
        rec(&a, "nodes", 100),
        rec(&b, "leases", 5000),
        rec(&b, "nodes", 5100),
    ];
    assert!(writes_without_lease(&fine).is_empty());
    let late = [
        rec(&a, "leases", 0),
        rec(&b, "leases", 100),
        rec(&a, "nodes", 3000),
    ];
    assert_eq!(writes_without_lease(&late).len(), 1);
    let stale = [rec(&a, "leases", 0), rec(&a, "nodes", 6000)];
    assert_eq!(writes_without_lease(&stale).len(), 1);
    assert_eq!(writes_without_lease(&[rec(&a, "events", 1)]).len(), 1);
}
