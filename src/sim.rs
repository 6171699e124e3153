//! `bare-ccm sim`: the real controller against an embedded emulated cluster, for trying
//! bare-ccm (and measuring it) without a cluster. The controller runs as a separate
//! `bare-ccm run` process talking HTTPS through a generated kubeconfig, exactly as in
//! production; the emulator and the simulated kubelets run in this process.
//!
//! A run has up to four phases: optional existing (already initialised) nodes; the
//! controller's start until `/readyz` answers; the burst of joining nodes; an optional
//! steady state in which only heartbeats happen. With `--floor`, the controller is then
//! stopped and the same burst is replayed against the minimal client of [`floor`].

pub mod external;
pub mod floor;
mod measure;
mod process;
mod summary;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bare_ccm_emulator::kubelet::{Fleet, KubeletSpec, Registration, described_node};
use bare_ccm_emulator::{Emulator, EmulatorOptions};
use futures::TryStreamExt as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use serde_json::Value;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::Config;
use crate::explain::ExplainReport;
use crate::node_view::NodeView;
use crate::output::Output;
use crate::run::parse_duration;
use floor::{FLOOR_ACCOUNT, Floor, NodeWrites, warm_up};
use measure::{measure, requests_by, wait_initialised, wait_quiet};
use process::{
    CONTROLLER_ACCOUNT, CONTROLLER_NAMESPACE, Controller, proc_status_bytes, spawn_controller,
    stop_controller, wait_for_leader, wait_ready,
};
use summary::ratio;
pub use summary::{FloorSummary, Latency, Ratio, SteadyState, Summary, latency, render_text};

/// Name prefixes of the three sets of nodes, so that each phase measures only its own.
const JOIN_PREFIX: &str = "sim-node-";
const EXISTING_PREFIX: &str = "existing-node-";
const FLOOR_PREFIX: &str = "floor-node-";

/// How long the fleet retries a request through transient failures.
const RETRY_BUDGET: Duration = Duration::from_secs(60);

/// Registrations in flight at once, for every phase (the floor gets the same).
const REGISTRATION_CONCURRENCY: usize = 256;

/// Connections the kubelets' client opens before each burst: the registrations plus the
/// writes that follow them (node IPAM, lifecycle, k3s agent) are in flight together. A
/// follow-up that had to open a connection would add a TLS handshake to the latency of
/// the first burst only, since the floor's burst reuses the pool.
const KUBELET_CONNECTIONS: usize = 2 * REGISTRATION_CONCURRENCY;

/// The flags of `bare-ccm sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Number of simulated kubelets that join.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Joins per second; default: all at once.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Kubelets with a dual-stack `--node-ip v4,v6`.
    #[arg(long)]
    pub dual_stack: bool,
    /// Give up (exit 1) when not every node is initialised within this time (per phase).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Period of each kubelet's status heartbeat.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_period: Duration,
    /// Delay from a kubelet's registration to its k3s agent's node-args update.
    #[arg(long, default_value = "20ms", value_parser = parse_duration)]
    pub k3s_agent_delay: Duration,
    /// Nodes that exist, initialised and heartbeating, before the controller starts.
    // For the time to ready and the memory of a large cache (docs/performance.md).
    #[arg(long, default_value_t = 0)]
    pub existing_nodes: usize,
    /// Then heartbeat for this long and count the controller's writes (should be none).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub steady_state: Duration,
    /// Then replay the burst against a minimal client and report bare-ccm / floor ratios.
    // The floor makes the same writes the moment each node appears (docs/performance.md).
    #[arg(long)]
    pub floor: bool,
    /// Nodes the floor client writes at once (0: every node the moment it appears).
    #[arg(long, default_value_t = 0)]
    pub floor_concurrency: usize,
    /// Run the cluster without bare-ccm, to reproduce nodes stuck on the uninitialized taint.
    #[arg(long)]
    pub no_controller: bool,
    /// Keep the emulated cluster running after the summary, until Ctrl-C (for kubectl).
    #[arg(long)]
    pub keep_running: bool,
    /// Write an admin kubeconfig for the emulated cluster here.
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// Extra arguments passed to the controller's `run` (e.g. `--concurrent-node-syncs=8`).
    #[arg(long = "controller-arg", allow_hyphen_values = true)]
    pub controller_args: Vec<String>,
    /// Summary format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// The kubelets of a sim run: k3s agents with `--node-ip` (and an IPv6 when dual-stack),
/// named `{prefix}{i:05}`; `ip_offset` shifts the addresses so sets do not overlap. The
/// addresses are documentation/test ranges and are never contacted.
pub fn kubelet_specs(
    prefix: &str,
    ip_offset: usize,
    nodes: usize,
    dual_stack: bool,
) -> Vec<KubeletSpec> {
    (0..nodes)
        .map(|i| {
            let n = ip_offset + i + 1;
            let v4 = format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
            let v6 = format!("fd00::{n:x}");
            KubeletSpec::k3s_agent(
                &format!("{prefix}{i:05}"),
                &v4,
                dual_stack.then_some(v6.as_str()),
            )
        })
        .collect()
}

/// The signals that end `sim`: SIGINT (Ctrl-C) and SIGTERM (`kill`, service managers, CI
/// timeouts). Both are caught from the start, so that either one, in any phase, still
/// stops the controller child and removes the temporary directory instead of leaving an
/// orphaned `bare-ccm run` behind.
struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    fn listen() -> std::io::Result<Shutdown> {
        Ok(Shutdown {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM and names it.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Runs the simulation and prints its summary. Returns whether every node was initialised.
/// SIGINT or SIGTERM ends it at any point (with `--keep-running`, after the summary); the
/// controller child is stopped before the emulator it talks to.
pub async fn sim(args: SimArgs) -> anyhow::Result<bool> {
    let mut shutdown = Shutdown::listen().context("cannot listen for SIGINT and SIGTERM")?;
    let emulator = Emulator::start(EmulatorOptions::default())
        .await
        .context("cannot start the API emulator")?;
    let workdir = tempfile::tempdir().context("cannot create a temporary directory")?;
    if let Some(path) = &args.kubeconfig_out {
        emulator
            .write_kubeconfig(&emulator.admin_token(), path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("admin kubeconfig written to {}", path.display());
    }
    let kubelet_client = emulator
        .client(&emulator.issue_token("system:node:sim", &["system:nodes"]))
        .await
        .context("cannot build the kubelets' client")?;
    let fleet = sim_fleet(kubelet_client.clone(), &args);

    let mut controller = None;
    let outcome = tokio::select! {
        outcome = simulate(
            &emulator,
            workdir.path(),
            &fleet,
            kubelet_client,
            &args,
            &mut controller,
        ) => outcome,
        signal = shutdown.recv() => Err(anyhow::anyhow!(
            "stopped by {signal} before the simulation finished"
        )),
    };
    if args.keep_running && outcome.is_ok() {
        eprintln!(
            "emulated cluster at {} keeps running; SIGINT (Ctrl-C) or SIGTERM stops it",
            emulator.url()
        );
        shutdown.recv().await;
    }
    fleet.stop().await;
    if let Some(c) = controller.take() {
        stop_controller(c.child).await;
    }
    emulator.shutdown().await;
    outcome
}

/// The phases of a run, up to the printed summary. The controller process is kept in
/// `controller` from its spawn on, so the caller can stop it however this ends.
async fn simulate(
    emulator: &Emulator,
    workdir: &Path,
    fleet: &Fleet,
    kubelet_client: kube::Client,
    args: &SimArgs,
    controller: &mut Option<Controller>,
) -> anyhow::Result<bool> {
    if args.existing_nodes > 0 {
        add_initialised_nodes(emulator, fleet, args.existing_nodes, args.dual_stack).await?;
    }
    fleet
        .start_heartbeats(args.heartbeat_period)
        .context("cannot start heartbeats")?;
    // Setup traffic is not the controller's: measure from here on.
    emulator.accounting().reset();

    let mut ready_ms = None;
    if !args.no_controller {
        let token = emulator.service_account_token(CONTROLLER_NAMESPACE, CONTROLLER_ACCOUNT);
        let kubeconfig = workdir.join("bare-ccm.kubeconfig");
        emulator
            .write_kubeconfig(&token, &kubeconfig)
            .context("cannot write the controller's kubeconfig")?;
        let started = Instant::now();
        let c = controller.insert(spawn_controller(&kubeconfig, &args.controller_args)?);
        ready_ms = Some(wait_ready(c.port, started, Duration::from_secs(60)).await?);
        wait_for_leader(emulator, Duration::from_secs(30)).await?;
    }

    let specs = kubelet_specs(
        JOIN_PREFIX,
        args.existing_nodes,
        args.nodes,
        args.dual_stack,
    );
    warm_up(&kubelet_client, KUBELET_CONNECTIONS)
        .await
        .context("the kubelets' client cannot reach the emulator")?;
    fleet
        .register_all(specs.clone(), args.rate, REGISTRATION_CONCURRENCY)
        .await
        .context("the simulated kubelets could not register")?;
    if controller.is_some() {
        wait_initialised(emulator, JOIN_PREFIX, args.nodes, args.timeout).await;
    }
    let user = sa_user(CONTROLLER_ACCOUNT);
    // The burst's requests include the Events that trail the last initialisation.
    let burst_end = if controller.is_some() {
        wait_quiet(emulator, &user, args.timeout).await
    } else {
        Instant::now()
    };
    let burst_requests = requests_by(emulator, &user);

    let steady_state = if args.steady_state.is_zero() {
        None
    } else {
        let quiet_from = burst_end;
        let sent = fleet.heartbeat_stats().sent;
        tokio::time::sleep(args.steady_state).await;
        let controller_writes = emulator
            .accounting()
            .writes()
            .iter()
            .filter(|w| w.user == user && w.at >= quiet_from && w.resource != "leases")
            .count() as u64;
        Some(SteadyState {
            seconds: args.steady_state.as_secs_f64(),
            heartbeats: fleet.heartbeat_stats().sent - sent,
            controller_writes,
        })
    };

    let pid = controller.as_ref().and_then(|c| c.child.id());
    let mut summary = summarize(emulator, args, &user, &burst_requests, burst_end);
    if let Some(pid) = pid {
        summary.controller_rss_bytes = proc_status_bytes(pid, "VmRSS");
        summary.controller_rss_anon_bytes = proc_status_bytes(pid, "RssAnon");
    }
    summary.heartbeats_sent = fleet.heartbeat_stats().sent;
    summary.ready_ms = ready_ms;
    summary.steady_state = steady_state;

    let mut floor_complete = true;
    if args.floor
        && let Some(c) = controller.take()
    {
        stop_controller(c.child).await;
        fleet.stop().await;
        let floor = run_floor(emulator, args, &specs, kubelet_client).await?;
        floor_complete = floor.initialized == args.nodes;
        summary.ratio = Some(Ratio {
            makespan: ratio(summary.makespan_ms, floor.makespan_ms),
            p99: ratio(summary.latency_ms.p99, floor.latency_ms.p99),
        });
        summary.floor = Some(floor);
    }

    args.output
        .print(&summary, || print!("{}", render_text(&summary)))?;
    Ok(args.no_controller || (summary.initialized == summary.nodes && floor_complete))
}

/// The simulated kubelets, their k3s agents after `--k3s-agent-delay`, and the simulated
/// node IPAM and lifecycle controllers.
fn sim_fleet(client: kube::Client, args: &SimArgs) -> Fleet {
    let registration = Registration {
        agent_delay: args.k3s_agent_delay,
        ..Registration::default()
    };
    Fleet::with_registration(client, RETRY_BUDGET, registration)
}

fn sa_user(account: &str) -> String {
    format!("system:serviceaccount:{CONTROLLER_NAMESPACE}:{account}")
}

/// Registers `count` nodes and initialises them the way bare-ccm would (the patches
/// `explain` computes, sent by an admin), so they exist before the controller starts.
async fn add_initialised_nodes(
    emulator: &Emulator,
    fleet: &Fleet,
    count: usize,
    dual_stack: bool,
) -> anyhow::Result<()> {
    let specs = kubelet_specs(EXISTING_PREFIX, 0, count, dual_stack);
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    fleet
        .register_all(specs, None, REGISTRATION_CONCURRENCY)
        .await
        .context("the existing nodes could not register")?;
    // k3s describes them before they are initialised, as bare-ccm would wait for.
    fleet.settled().await;
    let admin = emulator
        .client(&emulator.admin_token())
        .await
        .context("cannot build the admin client")?;
    let config = Config::default();
    let nodes: kube::Api<Node> = kube::Api::all(admin);
    futures::stream::iter(names.into_iter().map(Ok))
        .try_for_each_concurrent(64, |name| {
            let (nodes, config) = (&nodes, &config);
            async move {
                let stored = emulator
                    .get_object("nodes", None, &name)
                    .with_context(|| format!("node {name} vanished after registration"))?;
                let node: Node = serde_json::from_value(stored)?;
                let report = ExplainReport::new(&NodeView::from_node(&node), config);
                for mut p in report.patches {
                    // Sent back to back by one writer: the precondition of the second
                    // would be stale after the first.
                    if let Some(meta) = p.patch.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                    let params = PatchParams::default();
                    if p.target == "nodes/status" {
                        nodes
                            .patch_status(&name, &params, &Patch::Merge(&p.patch))
                            .await?;
                    } else {
                        nodes.patch(&name, &params, &Patch::Merge(&p.patch)).await?;
                    }
                }
                anyhow::Ok(())
            }
        })
        .await
        .context("cannot initialise the existing nodes")
}

/// The summary of the burst: `measure` of the joining nodes and the controller's
/// requests and writes per node up to `until`.
fn summarize(
    emulator: &Emulator,
    args: &SimArgs,
    user: &str,
    requests: &BTreeMap<(String, u16), u64>,
    until: Instant,
) -> Summary {
    let measured = measure(emulator, JOIN_PREFIX);
    let per_node = |n: u64| n as f64 / args.nodes.max(1) as f64;
    let mut requests_per_node = BTreeMap::new();
    let mut conflicts = 0;
    for ((verb, code), n) in requests {
        *requests_per_node.entry(verb.clone()).or_insert(0.0) += per_node(*n);
        if *code == 409 {
            conflicts += n;
        }
    }
    let mut writes_per_node = BTreeMap::new();
    for w in emulator.accounting().writes() {
        if w.user != user || w.at > until || !(200..300).contains(&w.code) {
            continue;
        }
        let key = if w.subresource.is_empty() {
            w.resource.clone()
        } else {
            format!("{}/{}", w.resource, w.subresource)
        };
        *writes_per_node.entry(key).or_insert(0.0) += per_node(1);
    }
    Summary {
        nodes: args.nodes,
        initialized: measured.initialized,
        latency_ms: measured.latency,
        described_latency_ms: measured.described_latency,
        makespan_ms: measured.makespan_ms,
        requests_per_node,
        writes_per_node,
        conflicts,
        controller_rss_bytes: 0,
        controller_rss_anon_bytes: 0,
        heartbeats_sent: 0,
        controller: !args.no_controller,
        existing_nodes: args.existing_nodes,
        ready_ms: None,
        steady_state: None,
        floor: None,
        ratio: None,
    }
}

/// Derives bare-ccm's writes for every node of the burst, then registers the same burst
/// again (nodes renamed) against the floor client and measures it the same way.
async fn run_floor(
    emulator: &Emulator,
    args: &SimArgs,
    specs: &[KubeletSpec],
    kubelet_client: kube::Client,
) -> anyhow::Result<FloorSummary> {
    let user = sa_user(CONTROLLER_ACCOUNT);
    let mut wrote: HashSet<(String, bool)> = HashSet::new();
    for w in emulator.accounting().writes() {
        if w.user == user && w.resource == "nodes" && (200..300).contains(&w.code) {
            wrote.insert((w.name, w.subresource == "status"));
        }
    }
    let mut events: HashMap<String, Value> = HashMap::new();
    for e in emulator.list_objects("events", None) {
        let regarding = e
            .pointer("/regarding/name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(node) = regarding
            && e.get("reportingController").and_then(Value::as_str) == Some(CONTROLLER_ACCOUNT)
        {
            events.insert(node, e);
        }
    }
    let floor_specs = kubelet_specs(
        FLOOR_PREFIX,
        args.existing_nodes,
        specs.len(),
        args.dual_stack,
    );
    let mut writes = HashMap::new();
    for (spec, floor_spec) in specs.iter().zip(&floor_specs) {
        let Some(after) = emulator.get_object("nodes", None, &spec.name) else {
            continue;
        };
        let derived = NodeWrites::derive(
            &described_node(spec),
            &after,
            wrote.contains(&(spec.name.clone(), true)),
            wrote.contains(&(spec.name.clone(), false)),
            events.get(&spec.name),
        );
        writes.insert(
            floor_spec.name.clone(),
            derived.renamed(&spec.name, &floor_spec.name),
        );
    }

    let token = emulator.service_account_token(CONTROLLER_NAMESPACE, FLOOR_ACCOUNT);
    let floor = Floor::start(
        emulator.kubeconfig_yaml(&token),
        emulator.current_resource_version().to_string(),
        writes,
        args.floor_concurrency,
    )
    .await
    .context("cannot start the floor client")?;
    let fleet = sim_fleet(kubelet_client, args);
    fleet
        .start_heartbeats(args.heartbeat_period)
        .context("cannot start heartbeats")?;
    fleet
        .register_all(floor_specs, args.rate, REGISTRATION_CONCURRENCY)
        .await
        .context("the floor's kubelets could not register")?;
    wait_initialised(emulator, FLOOR_PREFIX, specs.len(), args.timeout).await;
    let conflicts = floor
        .stats()
        .conflicts
        .load(std::sync::atomic::Ordering::Relaxed);
    floor.stop().await;
    fleet.stop().await;
    let measured = measure(emulator, FLOOR_PREFIX);
    Ok(FloorSummary {
        initialized: measured.initialized,
        latency_ms: measured.latency,
        described_latency_ms: measured.described_latency,
        makespan_ms: measured.makespan_ms,
        conflicts,
    })
}

#[cfg(test)]
mod tests;
