//! The `bare-ccm` command line: one function per subcommand, nothing else.
#![forbid(unsafe_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use k8s_openapi::api::core::v1::Node;

use bare_ccm::config::Config;
use bare_ccm::explain::{ConfigUsed, ExplainReport};
use bare_ccm::node_view::NodeView;
use bare_ccm::output::Output;
use bare_ccm::telemetry::Chain;

#[derive(Parser)]
#[command(
    name = "bare-ccm",
    version,
    about = "Cloud-controller-manager for bare-metal and self-hosted k3s/Kubernetes: initialises nodes registered with --cloud-provider=external"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node-initialisation controller.
    Run(Box<bare_ccm::run::RunArgs>),
    /// Publish this node's interface addresses on its Node (the DaemonSet bare-ccm-agent).
    Agent(bare_ccm::agent::AgentArgs),
    /// Dry run: show what would be written to a node, and why. Never writes.
    Explain(ExplainArgs),
    /// Validate a config file, its ConfigMap, or the manifest holding it (exit 0 valid, 2 not).
    CheckConfig(CheckConfigArgs),
    /// Diagnose stuck nodes, naming the cause and the fix; read-only (exit 0 healthy, 1 findings).
    Doctor(bare_ccm::doctor::DoctorArgs),
    /// The real controller against an embedded emulated cluster with simulated kubelets.
    #[cfg(feature = "sim")]
    Sim(bare_ccm::sim::SimArgs),
    /// The floor client of `sim --floor` against a cluster of your own (the benchmark on
    /// the real control plane, scripts/bench-real.sh).
    #[cfg(feature = "sim")]
    #[command(hide = true)]
    SimFloor(bare_ccm::sim::external::FloorArgs),
    /// Simulated k3s kubelets registering a burst against a cluster of your own (the
    /// benchmark on the real control plane, scripts/bench-real.sh).
    #[cfg(feature = "sim")]
    #[command(hide = true)]
    SimFleet(bare_ccm::sim::external::FleetArgs),
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// A Node as JSON or YAML (a file, `-` for stdin), or the name of a node in the cluster.
    #[arg(long)]
    node: String,
    /// The bare-ccm config file; default: the ConfigMap below for a cluster node, else built-in.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Kubeconfig, used only when --node names a node; default: $KUBECONFIG, then in-cluster.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Namespace of the controller's ConfigMap.
    #[arg(long, default_value = "kube-system")]
    namespace: String,
    /// The ConfigMap whose config.yaml the controller runs with (manifests/bare-ccm.yaml).
    #[arg(long, default_value = bare_ccm::config::CONFIG_MAP)]
    config_map: String,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(clap::Args)]
struct CheckConfigArgs {
    /// A config file, a ConfigMap or a manifest holding bare-ccm-config; `-` reads stdin.
    file: String,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

/// Printed after clap's error for an unknown flag.
const UNKNOWN_FLAG_HINT: &str = "hint: `bare-ccm run --help` lists every flag. Of the upstream cloud-controller-manager's flags, bare-ccm takes those it implements (the leader-election ones, --kubeconfig, --controllers, --concurrent-node-syncs, ...) and accepts --cloud-provider and --v with a warning; remove any other.";

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let unknown = e.kind() == clap::error::ErrorKind::UnknownArgument
                && std::env::args().nth(1).as_deref() == Some("run");
            // Prints help and version too (on stdout, exit 0).
            let _ = e.print();
            if unknown {
                eprintln!("\n{UNKNOWN_FLAG_HINT}");
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match cli.command {
        Command::Run(args) => run(*args),
        Command::Agent(args) => agent(args),
        Command::Explain(args) => explain(args),
        Command::CheckConfig(args) => check_config(&args),
        Command::Doctor(args) => doctor(&args),
        #[cfg(feature = "sim")]
        Command::Sim(args) => sim(args),
        #[cfg(feature = "sim")]
        Command::SimFloor(args) => {
            run_external("sim-floor", bare_ccm::sim::external::sim_floor(args))
        }
        #[cfg(feature = "sim")]
        Command::SimFleet(args) => {
            run_external("sim-fleet", bare_ccm::sim::external::sim_fleet(args))
        }
    }
}

/// The async runtime, with one worker per core unless `workers` caps it.
fn runtime_with(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_with(None)
}

/// The controller's work is I/O-bound: two workers are plenty, and on a many-core
/// control-plane host a worker per core would only add stacks and allocator arenas.
const CONTROLLER_WORKERS: usize = 2;

fn run(args: bare_ccm::run::RunArgs) -> ExitCode {
    let result =
        runtime_with(Some(CONTROLLER_WORKERS)).and_then(|rt| rt.block_on(bare_ccm::run::run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-ccm run: {}", Chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The agent does one thing at a time: one thread keeps its memory to a few MiB.
fn agent(args: bare_ccm::agent::AgentArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(bare_ccm::agent::run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-ccm agent: {}", Chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Runs one of the sim's clients against a cluster of your own until it stops.
#[cfg(feature = "sim")]
fn run_external(name: &str, task: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    match runtime().and_then(|rt| rt.block_on(task)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-ccm {name}: {}", Chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "sim")]
fn sim(args: bare_ccm::sim::SimArgs) -> ExitCode {
    match runtime().and_then(|rt| rt.block_on(bare_ccm::sim::sim(args))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bare-ccm sim: {}", Chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

fn doctor(args: &bare_ccm::doctor::DoctorArgs) -> ExitCode {
    let report = match runtime().map(|rt| rt.block_on(bare_ccm::doctor::doctor(args))) {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            eprintln!("bare-ccm doctor: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("bare-ccm doctor: {}", Chain(e.as_ref()));
            return ExitCode::from(2);
        }
    };
    if let Err(e) = args
        .output
        .print(&report, || print!("{}", report.to_text()))
    {
        eprintln!("bare-ccm doctor: cannot encode the report: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(report.exit_code())
}

fn explain(args: ExplainArgs) -> ExitCode {
    let (node, from_cluster) = match read_node(&args.node, args.kubeconfig.as_deref()) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("bare-ccm explain: {}", Chain(e.as_ref()));
            return ExitCode::from(2);
        }
    };
    let (config, used) = match explain_config(&args, from_cluster) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bare-ccm explain: {}", Chain(e.as_ref()));
            return ExitCode::from(2);
        }
    };
    let mut report = ExplainReport::new(&NodeView::from_node(&node), &config);
    report.config = used;
    if let Err(e) = args
        .output
        .print(&report, || print!("{}", report.to_text()))
    {
        eprintln!("bare-ccm explain: cannot encode the report: {e}");
        return ExitCode::from(2);
    }
    if report.resolves() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The config `explain` uses: `--config`; else, for a node read from the cluster, the
/// running controller's (its ConfigMap's `config.yaml`, or the defaults the controller
/// would then use); else the built-in defaults.
fn explain_config(args: &ExplainArgs, from_cluster: bool) -> anyhow::Result<(Config, ConfigUsed)> {
    if let Some(path) = &args.config {
        return Ok((Config::load(path)?, ConfigUsed::file(path)));
    }
    if !from_cluster {
        return Ok((
            Config::default(),
            ConfigUsed::defaults(
                "the node is not from the cluster; pass --config FILE for another",
            ),
        ));
    }
    let (ns, name) = (args.namespace.as_str(), args.config_map.as_str());
    let config_map = runtime()?
        .block_on(bare_ccm::kubeclient::get_config_map(
            args.kubeconfig.as_deref(),
            ns,
            name,
        ))
        .context("pass --config FILE to explain with a config file instead")?;
    let Some(config_map) = config_map else {
        return Ok((
            Config::default(),
            ConfigUsed::defaults(format!("ConfigMap {ns}/{name} not found")),
        ));
    };
    let key = bare_ccm::config::CONFIG_KEY;
    let Some(text) = config_map.data.as_ref().and_then(|d| d.get(key)) else {
        return Ok((
            Config::default(),
            ConfigUsed::defaults(format!("ConfigMap {ns}/{name} has no key {key}")),
        ));
    };
    let origin = format!("ConfigMap {ns}/{name} key {key}");
    let config = Config::parse(text, Some(Path::new(&origin)), 0)?;
    let version = config_map.metadata.resource_version.unwrap_or_default();
    Ok((config, ConfigUsed::config_map(ns, name, &version)))
}

/// Reads the `--node` argument: stdin, a JSON/YAML file, or a node name in the cluster.
/// An argument shaped like a path (a node name has no `/` and no file extension) is never
/// looked up in the cluster, so a mistyped file name says so.
fn read_node(arg: &str, kubeconfig: Option<&Path>) -> anyhow::Result<(Node, bool)> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the node from stdin")?;
        s
    } else if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("cannot read node file {arg}"))?
    } else if arg.contains('/') || [".json", ".yaml", ".yml"].iter().any(|e| arg.ends_with(e)) {
        anyhow::bail!("--node {arg}: file not found");
    } else {
        let node = runtime()?.block_on(bare_ccm::kubeclient::get_node(kubeconfig, arg))?;
        return Ok((node, true));
    };
    let node =
        parse_node(&text).with_context(|| format!("--node {arg} is not a Node in JSON or YAML"))?;
    if node.metadata.name.as_deref().unwrap_or_default().is_empty() {
        anyhow::bail!("--node {arg} is not a Node: metadata.name is missing");
    }
    Ok((node, false))
}

fn parse_node(text: &str) -> anyhow::Result<Node> {
    if text.trim_start().starts_with('{') {
        Ok(serde_json::from_str(text)?)
    } else {
        Ok(serde_saphyr::from_str(text)?)
    }
}

/// `check-config`: exit 0 when the config is valid, 2 when it is not or cannot be read.
fn check_config(args: &CheckConfigArgs) -> ExitCode {
    let (name, text) = if args.file == "-" {
        let mut s = String::new();
        match std::io::stdin().read_to_string(&mut s) {
            Ok(_) => ("<stdin>".to_string(), Ok(s)),
            Err(e) => (
                "<stdin>".to_string(),
                Err(format!("cannot read stdin: {e}")),
            ),
        }
    } else {
        let text = std::fs::read_to_string(&args.file)
            .map_err(|e| format!("cannot read {}: {e}", args.file));
        (args.file.clone(), text)
    };
    let located = text.and_then(|text| {
        bare_ccm::config::locate_config(&text).map_err(|why| format!("{name}: {why}"))
    });
    let (source, result) = match located {
        Ok(found) => {
            let source = found.config_map.map_or_else(
                || "config file".to_string(),
                |cm| format!("{cm}, key {}", bare_ccm::config::CONFIG_KEY),
            );
            let result = Config::parse(&found.text, Some(Path::new(&name)), found.line_offset);
            (
                source,
                result
                    .map(|c| c.effective_summary())
                    .map_err(|e| (e.to_string(), e.problems())),
            )
        }
        Err(why) => {
            let problem = bare_ccm::config::ConfigProblem {
                path: String::new(),
                line: None,
                message: why.clone(),
            };
            (String::new(), Err((why, vec![problem])))
        }
    };
    let problems = result
        .as_ref()
        .err()
        .map(|(_, p)| p.clone())
        .unwrap_or_default();
    let report = serde_json::json!({
        "file": name,
        "source": source,
        "valid": result.is_ok(),
        "problems": problems,
    });
    let printed = args.output.print(&report, || match &result {
        Ok(summary) if source == "config file" => println!("{name}: OK\n{summary}"),
        Ok(summary) => println!("{name}: {source}: OK\n{summary}"),
        Err((message, _)) => eprintln!("{message}"),
    });
    if let Err(e) = printed {
        eprintln!("bare-ccm check-config: cannot encode the report: {e}");
    }
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
