//! The `bare-ccm` command line: one function per subcommand, nothing else.
#![forbid(unsafe_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::Node;

use bare_ccm::config::Config;
use bare_ccm::explain::ExplainReport;
use bare_ccm::node_view::NodeView;

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
    /// Dry run: show what would be written to a node, and why. Never writes.
    Explain(ExplainArgs),
    /// Validate a configuration file (exit 0, or 2 with the offending keys).
    CheckConfig(CheckConfigArgs),
    /// Diagnose stuck nodes: name the cause and the fix. Read-only (exit 0 healthy, 1
    /// findings, 2 cannot check).
    Doctor(bare_ccm::doctor::DoctorArgs),
    /// The real controller against an embedded emulated cluster with simulated kubelets.
    #[cfg(feature = "sim")]
    Sim(bare_ccm::sim::SimArgs),
}

/// Output format of the reporting subcommands.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// A Node as JSON or YAML: a file, `-` for stdin, or else the name of a node read from
    /// the cluster.
    #[arg(long)]
    node: String,
    /// The bare-ccm configuration file (defaults when absent).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Kubeconfig used only when --node names a node in the cluster (default: KUBECONFIG,
    /// then in-cluster; read by `kubeclient::client_config`, which, like kubectl, treats
    /// an empty KUBECONFIG as unset).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(clap::Args)]
struct CheckConfigArgs {
    /// The configuration file to validate.
    file: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(*args),
        Command::Explain(args) => explain(args),
        Command::CheckConfig(args) => check_config(&args.file),
        Command::Doctor(args) => doctor(&args),
        #[cfg(feature = "sim")]
        Command::Sim(args) => sim(args),
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
            eprintln!("bare-ccm run: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "sim")]
fn sim(args: bare_ccm::sim::SimArgs) -> ExitCode {
    match runtime().and_then(|rt| rt.block_on(bare_ccm::sim::sim(args))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bare-ccm sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn doctor(args: &bare_ccm::doctor::DoctorArgs) -> ExitCode {
    use bare_ccm::doctor::DoctorOutput;
    let report = match runtime().map(|rt| rt.block_on(bare_ccm::doctor::doctor(args))) {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            eprintln!("bare-ccm doctor: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("bare-ccm doctor: {e:#}");
            return ExitCode::from(2);
        }
    };
    match args.output {
        DoctorOutput::Text => print!("{}", report.to_text()),
        DoctorOutput::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("bare-ccm doctor: cannot encode the report: {e}");
                return ExitCode::from(2);
            }
        },
    }
    ExitCode::from(report.exit_code())
}

fn explain(args: ExplainArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bare-ccm explain: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let node = match read_node(&args.node, args.kubeconfig.as_deref()) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("bare-ccm explain: {e:#}");
            return ExitCode::from(2);
        }
    };
    let report = ExplainReport::new(&NodeView::from_node(&node), &config);
    match args.output {
        Output::Text => print!("{}", report.to_text()),
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("bare-ccm explain: cannot encode the report: {e}");
                return ExitCode::from(2);
            }
        },
    }
    if report.resolves() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Reads the `--node` argument: stdin, a JSON/YAML file, or a node name in the cluster.
/// An argument shaped like a path (a node name has no `/` and no file extension) is never
/// looked up in the cluster, so a mistyped file name says so.
fn read_node(arg: &str, kubeconfig: Option<&Path>) -> anyhow::Result<Node> {
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
        return runtime()?.block_on(bare_ccm::kubeclient::get_node(kubeconfig, arg));
    };
    let node =
        parse_node(&text).with_context(|| format!("--node {arg} is not a Node in JSON or YAML"))?;
    if node.metadata.name.as_deref().unwrap_or_default().is_empty() {
        anyhow::bail!("--node {arg} is not a Node: metadata.name is missing");
    }
    Ok(node)
}

fn parse_node(text: &str) -> anyhow::Result<Node> {
    if text.trim_start().starts_with('{') {
        Ok(serde_json::from_str(text)?)
    } else {
        Ok(serde_saphyr::from_str(text)?)
    }
}

fn check_config(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            println!("{}: OK\n{}", file.display(), config.effective_summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
