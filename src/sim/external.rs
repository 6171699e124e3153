//! The sim's clients against a cluster of one's own, for the benchmark on the real control
//! plane (`scripts/bench-real.sh`):
//! - `bare-ccm sim-floor`: the floor client of `sim --floor`. bare-ccm's writes come from a
//!   template the benchmark records while bare-ccm initialises an identical burst; the
//!   floor replays them on the next burst, each node renamed, the moment each node appears.
//! - `bare-ccm sim-fleet`: the simulated k3s kubelets, registering a burst the way k3s
//!   does and then heartbeating, for scale runs beyond what real (hollow) kubelets fit.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use kube::Api;
use kube::api::ListParams;
use serde::Deserialize;
use serde_json::Value;

use super::floor::{Floor, NodeWrites};
use super::kubelet_specs;
use crate::controller::cache::LeanNode;
use bare_ccm_emulator::kubelet::{Fleet, Registration};

/// The flags of `bare-ccm sim-floor`.
#[derive(Debug, clap::Args)]
pub struct FloorArgs {
    /// Kubeconfig of the floor client (give it bare-ccm's ServiceAccount and RBAC).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// bare-ccm's writes, as JSON (`{"nodes": [...]}`).
    // Each node: {"name", "registered", "after", "wroteStatus", "wroteNode", "event"}.
    #[arg(long)]
    pub template: PathBuf,
    /// `FROM=TO`: the floor's nodes are the template's with FROM replaced by TO.
    #[arg(long, value_parser = parse_rename)]
    pub rename: (String, String),
    /// Nodes written at once (0: every node the moment it appears).
    #[arg(long, default_value_t = 0)]
    pub in_flight: usize,
}

fn parse_rename(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .filter(|(from, _)| !from.is_empty())
        .ok_or_else(|| format!("--rename {text:?}: expected FROM=TO"))
}

#[derive(Deserialize)]
struct Template {
    nodes: Vec<TemplateNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateNode {
    name: String,
    registered: Value,
    after: Value,
    wrote_status: bool,
    wrote_node: bool,
    #[serde(default)]
    event: Option<Value>,
}

/// Runs the floor until SIGTERM or SIGINT; says `floor: watching` once it watches.
pub async fn sim_floor(args: FloorArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.template)
        .with_context(|| format!("cannot read {}", args.template.display()))?;
    let template: Template = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a floor template", args.template.display()))?;
    let (from, to) = &args.rename;
    let writes: HashMap<String, NodeWrites> = template
        .nodes
        .iter()
        .map(|n| {
            let derived = NodeWrites::derive(
                &n.registered,
                &n.after,
                n.wrote_status,
                n.wrote_node,
                n.event.as_ref(),
            );
            (n.name.replace(from, to), derived.renamed(from, to))
        })
        .collect();
    let kubeconfig = std::fs::read_to_string(&args.kubeconfig)
        .with_context(|| format!("cannot read {}", args.kubeconfig.display()))?;
    // Watch from now: the burst registers after this.
    let config = crate::kubeclient::client_config(Some(&args.kubeconfig)).await?;
    let client = kube::Client::try_from(config).context("cannot build the client")?;
    let now = Api::<LeanNode>::all(client)
        .list_metadata(&ListParams::default().limit(1))
        .await
        .context("cannot list nodes")?
        .metadata
        .resource_version
        .unwrap_or_default();
    let nodes = writes.len();
    let floor = Floor::start(kubeconfig, now, writes, args.in_flight)
        .await
        .context("cannot start the floor client")?;
    eprintln!("floor: watching for {nodes} nodes");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let stats = floor.stats();
    eprintln!(
        "floor: stopped; {} conflicts, {} failed writes",
        stats.conflicts.load(std::sync::atomic::Ordering::Relaxed),
        stats.failures.load(std::sync::atomic::Ordering::Relaxed)
    );
    floor.stop().await;
    Ok(())
}

/// The flags of `bare-ccm sim-fleet`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// Kubeconfig of the kubelets (an admin).
    // On a real cluster each kubelet has its own identity; one client keeps the fleet light.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Nodes to register, all at once.
    #[arg(long)]
    pub nodes: usize,
    /// Node names are PREFIX00000, PREFIX00001, ...
    #[arg(long)]
    pub prefix: String,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Heartbeat period of every kubelet.
    #[arg(long, default_value = "10s", value_parser = crate::run::parse_duration)]
    pub heartbeat_period: std::time::Duration,
}

/// Registers the burst (the kubelet's create, then k3s's writes; the cluster's own
/// controller-manager does the rest), heartbeats until SIGTERM or SIGINT.
pub async fn sim_fleet(args: FleetArgs) -> anyhow::Result<()> {
    let config = crate::kubeclient::client_config(Some(&args.kubeconfig)).await?;
    let client = kube::Client::try_from(config).context("cannot build the client")?;
    let fleet = Fleet::with_registration(
        client,
        std::time::Duration::from_secs(120),
        Registration::real_cluster(),
    );
    fleet
        .start_heartbeats(args.heartbeat_period)
        .context("cannot start heartbeats")?;
    let specs = kubelet_specs(&args.prefix, 0, args.nodes, false);
    fleet
        .register_all(specs, None, args.concurrency)
        .await
        .context("the kubelets could not register")?;
    eprintln!("fleet: {} nodes registered", args.nodes);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    fleet.stop().await;
    Ok(())
}
