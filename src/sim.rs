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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bare_ccm_emulator::kubelet::{Fleet, KubeletSpec, Registration, described_node};
use bare_ccm_emulator::{Emulator, EmulatorOptions};
use futures::TryStreamExt as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::Config;
use crate::explain::ExplainReport;
use crate::node_view::NodeView;
use crate::run::parse_duration;
use floor::{FLOOR_ACCOUNT, Floor, NodeWrites, warm_up};

/// The service account the controller runs as, as in the shipped manifest.
const CONTROLLER_NAMESPACE: &str = "kube-system";
const CONTROLLER_ACCOUNT: &str = "bare-ccm";

/// Name prefixes of the three sets of nodes, so that each phase measures only its own.
const JOIN_PREFIX: &str = "sim-node-";
const EXISTING_PREFIX: &str = "existing-node-";
const FLOOR_PREFIX: &str = "floor-node-";

/// The simulated kubelets' user.
const KUBELET_USER: &str = "system:node:sim";

/// How long the fleet retries a request through transient failures.
const RETRY_BUDGET: Duration = Duration::from_secs(60);

/// How long the controller must have been silent before a steady state is measured.
const QUIET: Duration = Duration::from_secs(1);

/// Registrations in flight at once, for every phase (the floor gets the same).
const REGISTRATION_CONCURRENCY: usize = 256;

/// Connections the kubelets' client opens before each burst: the registrations plus the
/// writes that follow them (node IPAM, lifecycle, k3s agent) are in flight together. A
/// follow-up that had to open a connection would add a TLS handshake to the latency of
/// the first burst only, since the floor's burst reuses the pool.
const KUBELET_CONNECTIONS: usize = 2 * REGISTRATION_CONCURRENCY;

/// The glibc allocator setting of the container image (the Dockerfile's
/// `ENV MALLOC_MMAP_THRESHOLD_`), given to the controller process so that `sim` measures
/// the memory of the shipped configuration.
const MALLOC_MMAP_THRESHOLD: &str = "131072";

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
    /// Nodes that exist, initialised and heartbeating, before the controller starts (for
    /// the time to ready and the memory of a large cache).
    #[arg(long, default_value_t = 0)]
    pub existing_nodes: usize,
    /// After every node is initialised, keep heartbeating for this long and count the
    /// controller's writes in that window (heartbeats must cause none).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub steady_state: Duration,
    /// Then stop the controller and replay the same burst against a minimal client making
    /// the same writes the moment each node appears, and report bare-ccm / floor ratios.
    #[arg(long)]
    pub floor: bool,
    /// Nodes the floor client writes at once (0: every node the moment it appears).
    #[arg(long, default_value_t = 0)]
    pub floor_concurrency: usize,
    /// Run the cluster without bare-ccm, to reproduce nodes stuck on the uninitialized taint.
    #[arg(long)]
    pub no_controller: bool,
    /// Keep the emulated cluster (and the controller) running after the summary, until
    /// Ctrl-C, so kubectl or `bare-ccm doctor` can be pointed at it.
    #[arg(long)]
    pub keep_running: bool,
    /// Write an admin kubeconfig for the emulated cluster here.
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// Extra arguments passed to the controller's `run` (e.g. `--concurrent-node-syncs=8`).
    #[arg(long = "controller-arg", allow_hyphen_values = true)]
    pub controller_args: Vec<String>,
    /// Summary format.
    #[arg(short = 'o', long, value_enum, default_value_t = SimOutput::Text)]
    pub output: SimOutput,
}

/// Output format of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimOutput {
    Text,
    Json,
}

/// Registration-to-taint-removal latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What `sim` measured; `-o json` prints it as is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub nodes: usize,
    pub initialized: usize,
    pub latency_ms: Latency,
    /// From the k3s agent's node-args update to the taint removal: the part of
    /// `latency_ms` that is not k3s's.
    pub described_latency_ms: Latency,
    /// From the first registration to the last taint removal.
    pub makespan_ms: f64,
    /// The controller's API requests per joining node, by verb, from its start until it
    /// fell quiet after the burst (its initial list and watch, and the trailing Events,
    /// included).
    pub requests_per_node: BTreeMap<String, f64>,
    /// The controller's successful writes per joining node, by resource (`nodes`,
    /// `nodes/status`, `events`).
    pub writes_per_node: BTreeMap<String, f64>,
    /// 409 Conflict answers to the controller's writes.
    pub conflicts: u64,
    /// Resident memory of the controller process at the end (`VmRSS`), 0 without a
    /// controller. It includes file pages of the executable, shared with this process.
    pub controller_rss_bytes: u64,
    /// The anonymous part of that resident memory (`RssAnon`): the controller's own heap
    /// and stacks, without the shared executable pages.
    pub controller_rss_anon_bytes: u64,
    pub heartbeats_sent: u64,
    pub controller: bool,
    /// Nodes that existed before the controller started.
    pub existing_nodes: usize,
    /// From starting the controller process to its first `/readyz` 200.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<SteadyState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<FloorSummary>,
    /// bare-ccm divided by the floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
}

/// The quiet period after initialisation (measured once the controller's trailing Events
/// are sent): every node heartbeats, nothing else happens.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SteadyState {
    pub seconds: f64,
    /// Heartbeats the kubelets sent in the window.
    pub heartbeats: u64,
    /// The controller's writes in the window to nodes, nodes/status and events (its Lease
    /// renewals are not counted); the goal is 0.
    pub controller_writes: u64,
}

/// The floor's measurements of the same burst.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FloorSummary {
    pub initialized: usize,
    pub latency_ms: Latency,
    pub described_latency_ms: Latency,
    pub makespan_ms: f64,
    pub conflicts: u64,
}

/// bare-ccm's makespan and p99 latency divided by the floor's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ratio {
    pub makespan: f64,
    pub p99: f64,
}

/// Percentiles by the nearest-rank method over `samples` (milliseconds).
pub fn latency(samples: &mut [f64]) -> Latency {
    if samples.is_empty() {
        return Latency::default();
    }
    samples.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let idx = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[idx.clamp(1, samples.len()) - 1]
    };
    Latency {
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: samples[samples.len() - 1],
    }
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

/// The controller process, with the port of its HTTP endpoints.
struct Controller {
    child: Child,
    port: u16,
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

    match args.output {
        SimOutput::Text => print!("{}", render_text(&summary)),
        SimOutput::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
    }
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

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
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

fn spawn_controller(kubeconfig: &Path, extra: &[String]) -> anyhow::Result<Controller> {
    let exe = std::env::current_exe().context("cannot find the bare-ccm executable")?;
    let port = free_port().context("cannot find a free port for the controller")?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--bind-address", "127.0.0.1", "--port", &port.to_string()])
        // Nothing scrapes the sim's controller; its secure port would only take 10271.
        .args(["--secure-port", "0"])
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("MALLOC_MMAP_THRESHOLD_", MALLOC_MMAP_THRESHOLD)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let child = cmd.spawn().context("cannot start `bare-ccm run`")?;
    Ok(Controller { child, port })
}

/// A port that was free a moment ago (the kernel picks it; the listener is closed again).
fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

/// Polls the controller's `/readyz` until it answers 200; returns the milliseconds since
/// `started`.
async fn wait_ready(port: u16, started: Instant, limit: Duration) -> anyhow::Result<f64> {
    loop {
        if readyz_ok(port).await {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "the controller's /readyz on port {port} did not answer 200 within {limit:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One plain HTTP/1.1 GET of `/readyz`; true on a 200 answer.
async fn readyz_ok(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.ends_with(b" 200")
}

/// The controller is ready to work once it holds the Lease.
async fn wait_for_leader(emulator: &Emulator, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let holder = emulator
            .get_object("leases", Some(CONTROLLER_NAMESPACE), CONTROLLER_ACCOUNT)
            .and_then(|l| l.pointer("/spec/holderIdentity").cloned())
            .and_then(|h| h.as_str().map(str::to_owned))
            .unwrap_or_default();
        if !holder.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("the controller did not take the lease within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stop_controller(mut child: Child) {
    if let Some(pid) = child.id() {
        // SIGTERM lets the controller release its lease; fall back to a kill.
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(6), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Waits until the controller has written nothing but its Lease for [`QUIET`] (the Events
/// of the burst may trail the initialisations), or `limit`; returns when the quiet began.
async fn wait_quiet(emulator: &Emulator, user: &str, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        let last = emulator
            .accounting()
            .writes()
            .iter()
            .rev()
            .find(|w| w.user == user && w.resource != "leases")
            .map(|w| w.at);
        let now = Instant::now();
        match last {
            Some(at) if now.duration_since(at) < QUIET && now < deadline => {}
            _ => return now,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `count` nodes named `prefix*` lost the uninitialized taint, or `limit`.
async fn wait_initialised(emulator: &Emulator, prefix: &str, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while count_initialized(emulator, prefix) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count_initialized(emulator: &Emulator, prefix: &str) -> usize {
    emulator
        .accounting()
        .node_times()
        .iter()
        .filter(|(name, t)| name.starts_with(prefix) && t.taint_removed.is_some())
        .count()
}

/// One memory figure of a process in bytes, e.g. `VmRSS` or `RssAnon`, from
/// `/proc/PID/status` (0 where unavailable).
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| status_kib(&s, field))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The value in KiB of `field` in the text of `/proc/PID/status` (`VmRSS:  1234 kB`).
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// What [`measure`] finds for one set of nodes.
struct Measured {
    latency: Latency,
    described_latency: Latency,
    makespan_ms: f64,
    initialized: usize,
}

/// Latency percentiles (from registration, and from the k3s agent's node-args update),
/// makespan and count of the nodes named `prefix*` that lost the uninitialized taint.
fn measure(emulator: &Emulator, prefix: &str) -> Measured {
    let described: HashMap<String, Instant> = emulator
        .accounting()
        .writes()
        .into_iter()
        .filter(|w| {
            w.user == KUBELET_USER
                && w.verb == "update"
                && w.resource == "nodes"
                && (200..300).contains(&w.code)
                && w.name.starts_with(prefix)
        })
        .map(|w| (w.name, w.at))
        .collect();
    let node_times = emulator.accounting().node_times();
    let mut from_described: Vec<f64> = node_times
        .iter()
        .filter_map(|(name, t)| {
            let at = described.get(name)?;
            Some(t.taint_removed?.saturating_duration_since(*at))
        })
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let times = node_times;
    let times: Vec<_> = times
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, t)| t)
        .collect();
    let mut samples: Vec<f64> = times
        .iter()
        .filter_map(|t| Some(t.taint_removed?.saturating_duration_since(t.registered?)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let first = times.iter().filter_map(|t| t.registered).min();
    let last = times.iter().filter_map(|t| t.taint_removed).max();
    let makespan_ms = match (first, last) {
        (Some(f), Some(l)) => l.saturating_duration_since(f).as_secs_f64() * 1000.0,
        _ => 0.0,
    };
    let initialized = samples.len();
    Measured {
        latency: latency(&mut samples),
        described_latency: latency(&mut from_described),
        makespan_ms,
        initialized,
    }
}

/// The requests of `user` so far, by (verb, status code).
fn requests_by(emulator: &Emulator, user: &str) -> BTreeMap<(String, u16), u64> {
    let mut out = BTreeMap::new();
    for (r, n) in emulator.accounting().attributed_requests() {
        if r.user == user {
            *out.entry((r.verb, r.code)).or_insert(0) += n;
        }
    }
    out
}

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

/// The human-readable summary.
pub fn render_text(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "nodes initialised: {}/{}{}",
        s.initialized,
        s.nodes,
        if s.controller {
            ""
        } else {
            " (no controller: nodes stay tainted)"
        }
    );
    if let Some(ready) = s.ready_ms {
        let _ = writeln!(
            out,
            "controller ready (/readyz) {ready:.1} ms after start, with {} existing nodes",
            s.existing_nodes
        );
    }
    match (&s.floor, &s.ratio) {
        (Some(f), Some(r)) => {
            let _ = writeln!(out, "registration -> taint removal (ms):");
            let _ = writeln!(
                out,
                "            {:>10} {:>10} {:>7}",
                "bare-ccm", "floor", "ratio"
            );
            let (b, fl) = (&s.latency_ms, &f.latency_ms);
            for (name, x, y) in [
                ("p50", b.p50, fl.p50),
                ("p90", b.p90, fl.p90),
                ("p99", b.p99, fl.p99),
                ("max", b.max, fl.max),
                ("makespan", s.makespan_ms, f.makespan_ms),
            ] {
                let _ = writeln!(out, "  {name:<9} {x:>10.1} {y:>10.1} {:>7.2}", ratio(x, y));
            }
            let (b, fl) = (&s.described_latency_ms, &f.described_latency_ms);
            let _ = writeln!(
                out,
                "k3s node-args update -> taint removal (ms): p50 {:.1} / {:.1}, p99 {:.1} / {:.1} (bare-ccm / floor)",
                b.p50, fl.p50, b.p99, fl.p99
            );
            let _ = writeln!(
                out,
                "floor: {}/{} initialised, {} conflicts; ratio makespan {:.2}, p99 {:.2}",
                f.initialized, s.nodes, f.conflicts, r.makespan, r.p99
            );
        }
        _ => {
            let l = &s.latency_ms;
            let _ = writeln!(
                out,
                "registration -> taint removal: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.p50, l.p90, l.p99, l.max
            );
            let d = &s.described_latency_ms;
            let _ = writeln!(
                out,
                "k3s node-args update -> taint removal: p50 {:.1} ms, p99 {:.1} ms",
                d.p50, d.p99
            );
            let _ = writeln!(out, "makespan: {:.1} ms", s.makespan_ms);
        }
    }
    let reqs: Vec<String> = s
        .requests_per_node
        .iter()
        .map(|(v, n)| format!("{v} {n:.2}"))
        .collect();
    let _ = writeln!(out, "controller API requests per node: {}", reqs.join(", "));
    let writes: Vec<String> = s
        .writes_per_node
        .iter()
        .map(|(v, n)| format!("{v} {n:.2}"))
        .collect();
    let _ = writeln!(
        out,
        "controller writes per node: {}; conflicts: {}",
        writes.join(", "),
        s.conflicts
    );
    if let Some(st) = &s.steady_state {
        let _ = writeln!(
            out,
            "steady state {:.0} s: {} heartbeats, {} controller writes",
            st.seconds, st.heartbeats, st.controller_writes
        );
    }
    let _ = writeln!(
        out,
        "controller RSS: {:.1} MiB (anonymous {:.1} MiB); heartbeats sent: {}",
        s.controller_rss_bytes as f64 / (1024.0 * 1024.0),
        s.controller_rss_anon_bytes as f64 / (1024.0 * 1024.0),
        s.heartbeats_sent
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_runs_with_the_allocator_setting_of_the_image() {
        let expected = format!("ENV MALLOC_MMAP_THRESHOLD_={MALLOC_MMAP_THRESHOLD}");
        let dockerfile = include_str!("../Dockerfile");
        assert!(
            dockerfile.lines().any(|l| l.trim() == expected),
            "the Dockerfile lacks {expected:?}"
        );
    }

    #[test]
    fn status_fields_are_read_by_exact_name_in_kib() {
        let status = "VmRSSX:\t1 kB\nRssAnon:\t   5120 kB\nVmRSS:\t  14336 kB\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(14336));
        assert_eq!(status_kib(status, "RssAnon"), Some(5120));
        assert_eq!(status_kib(status, "RssFile"), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = latency(&mut samples);
        assert_eq!(
            l,
            Latency {
                p50: 50.0,
                p90: 90.0,
                p99: 99.0,
                max: 100.0
            }
        );
        assert_eq!(latency(&mut []), Latency::default());
        assert_eq!(latency(&mut [7.0]).p99, 7.0);
    }

    #[test]
    fn kubelet_names_and_addresses_are_unique_and_dual_stack_on_request() {
        let specs = kubelet_specs(JOIN_PREFIX, 0, 300, true);
        let names: std::collections::BTreeSet<_> = specs.iter().map(|s| &s.name).collect();
        let ips: std::collections::BTreeSet<_> = specs.iter().map(|s| &s.node_ip[0]).collect();
        assert_eq!((names.len(), ips.len()), (300, 300));
        assert_eq!(specs[255].node_ip, vec!["10.0.1.0", "fd00::100"]);
        assert_eq!(
            kubelet_specs(JOIN_PREFIX, 0, 1, false)[0].node_ip,
            vec!["10.0.0.1"]
        );
    }

    #[test]
    fn an_ip_offset_keeps_the_sets_apart() {
        let existing = kubelet_specs(EXISTING_PREFIX, 0, 10, false);
        let joining = kubelet_specs(JOIN_PREFIX, 10, 10, false);
        assert_eq!(existing[9].node_ip, vec!["10.0.0.10"]);
        assert_eq!(joining[0].node_ip, vec!["10.0.0.11"]);
        assert_eq!(joining[0].name, "sim-node-00000");
    }

    #[test]
    fn text_summary_shows_the_floor_table_with_ratios() {
        let mut s = Summary {
            nodes: 2,
            initialized: 2,
            latency_ms: Latency {
                p50: 4.0,
                p90: 6.0,
                p99: 8.0,
                max: 8.0,
            },
            described_latency_ms: Latency::default(),
            makespan_ms: 10.0,
            requests_per_node: BTreeMap::new(),
            writes_per_node: BTreeMap::new(),
            conflicts: 0,
            controller_rss_bytes: 0,
            controller_rss_anon_bytes: 0,
            heartbeats_sent: 0,
            controller: true,
            existing_nodes: 0,
            ready_ms: Some(12.5),
            steady_state: None,
            floor: Some(FloorSummary {
                initialized: 2,
                latency_ms: Latency {
                    p50: 2.0,
                    p90: 3.0,
                    p99: 4.0,
                    max: 4.0,
                },
                described_latency_ms: Latency::default(),
                makespan_ms: 5.0,
                conflicts: 0,
            }),
            ratio: Some(Ratio {
                makespan: 2.0,
                p99: 2.0,
            }),
        };
        let text = render_text(&s);
        assert!(
            text.contains("  p99              8.0        4.0    2.00"),
            "{text}"
        );
        assert!(
            text.contains("  makespan        10.0        5.0    2.00"),
            "{text}"
        );
        assert!(text.contains("ready (/readyz) 12.5 ms"), "{text}");
        s.floor = None;
        let json = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(
            json["ratio"],
            serde_json::json!({"makespan": 2.0, "p99": 2.0})
        );
        assert!(json.get("floor").is_none());
    }
}
