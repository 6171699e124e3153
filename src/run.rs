//! `bare-ccm run`: the flags, and the wiring of client, leader election, config reload,
//! HTTP endpoints and the node controller into one process that stops cleanly on
//! SIGTERM/SIGINT (workers stopped, lease released, exit within 5 s).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::config_reload::{ConfigFile, Reload, SharedConfig};
use crate::controller::client::{ApiLayer, Fence, build_client};
use crate::controller::events::{Events, REASON_CONFIG_INVALID, lease_ref};
use crate::controller::tasks::{TaskFailed, first_failure};
use crate::controller::{self, Context, Settings, named};
use crate::http::delegated::{AlwaysAllowPaths, DelegatedAuth, KubeReviewer};
use crate::http::tls::ServingCert;
use crate::http::{self, Port};
use crate::leader::{self, ElectionSettings, LeaderGate, RenewClock};
use crate::metrics::Metrics;
use crate::telemetry::{self, LogFormat};

/// Default plain HTTP port of the probes (`/healthz`, `/readyz`, `/livez`): clear of every
/// port a k3s or kubeadm host binds (docs/reference.md#ports).
pub const DEFAULT_PORT: u16 = 10270;

/// Default HTTPS port of `/metrics` and the probes, next to [`DEFAULT_PORT`] and equally
/// clear of the ports k3s and kubeadm bind (upstream CCMs use 10258, which k3s's own
/// cloud-controller may hold for ServiceLB).
pub const DEFAULT_SECURE_PORT: u16 = 10271;

/// The review client's rate limit: upstream's delegated authentication and authorization
/// clients get QPS 200 and burst 400 (k8s.io/apiserver `pkg/server/options/authorization.go`,
/// `getClient`), high enough never to slow a scrape, low enough that a flood of bogus
/// tokens cannot flood the API server.
const REVIEW_QPS: f64 = 200.0;
const REVIEW_BURST: u32 = 400;

/// The flags of `bare-ccm run`. Names and defaults follow the upstream
/// cloud-controller-manager where one exists.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Config file (YAML); default: built-in defaults, which reproduce k3s's embedded CCM.
    /// Re-read when it changes (a mounted ConfigMap).
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// How often the config file is checked for changes.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub config_poll_interval: Duration,

    /// Nodes synced concurrently. Upstream's default is 1 (serial). Each sync waits one API
    /// round trip per write, so a burst is initialised at about this many nodes per round
    /// trip: 128 kept up with 5000 nodes joining at once against the emulated API server
    /// on a loaded 2-core machine (32 queued every node of that burst for 1.7 s; see
    /// docs/performance.md).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_node_syncs: u16,

    /// Period of the full re-check of every node's addresses (upstream's flag and default).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub node_status_update_frequency: Duration,

    /// Client-side request rate limit (queries per second) to the API server; 0 disables.
    /// A safety net against runaway request loops rather than the normal brake: the
    /// --concurrent-node-syncs workers already bound requests in flight, and 429 answers
    /// are honoured. Node requests and Events are limited separately (each has its own
    /// client), so Events never delay an initialisation. Upstream's 20 would queue a burst
    /// of joining nodes behind the limiter for minutes.
    #[arg(long, default_value_t = 500.0)]
    pub kube_api_qps: f64,

    /// Requests allowed at once above --kube-api-qps, per client: 5000 joining nodes
    /// initialise without waiting for the limiter (one node write each).
    #[arg(long, default_value_t = 5000)]
    pub kube_api_burst: u32,

    /// Elect a leader on a Lease so that only one replica writes.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,

    /// How long a lease is valid without renewal; a standby takes over after it.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,

    /// A leader whose last renewal is older than this stops writing.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,

    /// Interval between lease renewals (and acquisition attempts).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,

    /// Name of the Lease.
    #[arg(long, default_value = "bare-ccm")]
    pub leader_elect_resource_name: String,

    /// Namespace of the Lease.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,

    /// Address of the plain HTTP port (the probes only).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind_address: IpAddr,

    /// Port of /healthz, /readyz and /livez in plain HTTP; 0 picks a free port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// HTTPS port of /metrics (token authenticated and authorised by the API server) and
    /// the probes; 0 disables it.
    #[arg(long, default_value_t = DEFAULT_SECURE_PORT)]
    pub secure_port: u16,

    /// Address of the secure port.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub secure_bind_address: IpAddr,

    /// PEM certificate chain of the secure port; default: a self-signed one made at start.
    #[arg(long, value_name = "FILE", requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of --tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,

    /// Paths the secure port serves without a token (exact, or a prefix ending in *).
    #[arg(long, value_delimiter = ',', default_value = crate::http::delegated::DEFAULT_ALWAYS_ALLOW_PATHS, value_parser = parse_allow_path)]
    pub authorization_always_allow_paths: Vec<String>,

    /// Controllers to run, upstream's syntax: `*` (all enabled by default), `NAME` (enable),
    /// `-NAME` (disable); the first entry naming a controller decides. bare-ccm has one,
    /// `cloud-node`; without it the process serves only the probes and /metrics.
    #[arg(long, value_delimiter = ',', default_value = "*", allow_hyphen_values = true, value_parser = parse_controller)]
    pub controllers: Vec<String>,

    /// Log format; the filter comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Ignored, with a warning: bare-ccm is itself the cloud provider. Accepted so that a
    /// manifest written for another cloud-controller-manager does not crash-loop.
    #[arg(long, value_name = "NAME")]
    pub cloud_provider: Option<String>,

    /// Ignored, with a warning: upstream's log verbosity. Use RUST_LOG instead.
    #[arg(long = "v", value_name = "N")]
    pub verbosity: Option<u32>,
}

/// Checks one `--authorization-always-allow-paths` entry (only a trailing `*`).
fn parse_allow_path(entry: &str) -> Result<String, String> {
    crate::http::delegated::AlwaysAllowPaths::new(&[entry]).map(|_| entry.to_string())
}

/// Parses a Go-style duration as upstream flags take it: `15s`, `500ms`, `5m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let span: k8s_openapi::jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("invalid duration {text:?} ({e}); use e.g. 15s, 500ms, 5m"))?;
    Duration::try_from(span).map_err(|_| format!("duration {text:?} must not be negative"))
}

/// The node controller's name in `--controllers`: upstream's name for the controller that
/// initialises nodes (kubernetes/cloud-provider `app/controllermanager.go`,
/// `DefaultInitFuncConstructors["cloud-node"]`).
pub const NODE_CONTROLLER: &str = "cloud-node";

/// The name recent upstream releases also accept for it (`cloud-node` became its alias).
const NODE_CONTROLLER_ALIAS: &str = "cloud-node-controller";

/// Checks one `--controllers` entry: `*`, or a known controller name with an optional
/// leading `-`; returns it with an alias replaced by the name.
pub fn parse_controller(entry: &str) -> Result<String, String> {
    let (minus, name) = match entry.strip_prefix('-') {
        Some(name) => ("-", name),
        None => ("", entry),
    };
    match name {
        "*" if minus.is_empty() => Ok(entry.to_string()),
        NODE_CONTROLLER | NODE_CONTROLLER_ALIAS => Ok(format!("{minus}{NODE_CONTROLLER}")),
        _ => Err(format!(
            "unknown controller {entry:?}; bare-ccm has one controller, {NODE_CONTROLLER}: use *, {NODE_CONTROLLER} or -{NODE_CONTROLLER}"
        )),
    }
}

/// Whether `--controllers` enables the node controller, by upstream's rule
/// (k8s.io/controller-manager `app/helper.go`, `IsControllerEnabled`): the first entry
/// naming it decides; else `*` enables it; else it is off.
pub fn node_controller_enabled(controllers: &[String]) -> bool {
    let disable = format!("-{NODE_CONTROLLER}");
    let mut star = false;
    for entry in controllers {
        if entry == NODE_CONTROLLER {
            return true;
        }
        if *entry == disable {
            return false;
        }
        star |= entry == "*";
    }
    star
}

/// Runs the controller until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    if let Some(provider) = &args.cloud_provider {
        tracing::warn!(
            "ignoring --cloud-provider={provider}: bare-ccm is itself the cloud provider"
        );
    }
    if let Some(v) = args.verbosity {
        tracing::warn!("ignoring --v={v}: set the log level with RUST_LOG, e.g. RUST_LOG=debug");
    }

    let (config_file, config) = match &args.config {
        Some(path) => {
            let (file, config) = ConfigFile::open(path).map_err(anyhow::Error::msg)?;
            (Some(file), config)
        }
        None => (None, Config::default()),
    };
    let shared_config = Arc::new(SharedConfig::new(config));

    let kube_config = crate::kubeclient::client_config(args.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(Metrics::new());
    let identity = leader::default_identity();
    let election = ElectionSettings {
        lease_name: args.leader_elect_resource_name.clone(),
        lease_namespace: args.leader_elect_resource_namespace.clone(),
        identity: identity.clone(),
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
    };
    let renewals = Arc::new(RenewClock::default());
    let (gate, lease_client) = if args.leader_elect {
        election.validate()?;
        // The lease has its own client without the rate limit: renewals must never wait
        // behind a burst of node writes.
        let lease_client =
            build_client(kube_config.clone(), ApiLayer::new(0.0, 0, metrics.clone()))
                .context("cannot build the Kubernetes client for leader election")?;
        let gate = LeaderGate::elected(renewals.clone(), args.leader_elect_renew_deadline);
        (Arc::new(gate), Some(lease_client))
    } else {
        (Arc::new(LeaderGate::always()), None)
    };

    // A client with its own --kube-api-qps/--kube-api-burst token bucket, whose writes
    // leave only while this replica leads (checked after every wait).
    let fence = Fence::new(
        gate.clone(),
        args.leader_elect_lease_duration,
        args.leader_elect_renew_deadline,
    );
    let limited_client = || {
        build_client(
            kube_config.clone(),
            ApiLayer::new(args.kube_api_qps, args.kube_api_burst, metrics.clone())
                .fenced(fence.clone()),
        )
    };
    let client = limited_client().context("cannot build the Kubernetes client")?;
    // Events have their own client, so their token bucket is not the node writes': a
    // burst's `Synced` Events never hold back the next node's initialisation.
    let events_client =
        limited_client().context("cannot build the Kubernetes client for Events")?;
    let (events, event_writer) = Events::new(
        events_client,
        identity.clone(),
        gate.clone(),
        metrics.events_dropped.clone(),
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        events,
        metrics.clone(),
        gate.clone(),
        shared_config.clone(),
        Settings {
            workers: usize::from(args.concurrent_node_syncs),
            resync: args.node_status_update_frequency,
            not_leader_retry: args.leader_elect_retry_period,
        },
    ));

    let listener = http::bind(SocketAddr::new(args.bind_address, args.port), Port::Probes).await?;
    let secure = if args.secure_port == 0 {
        None
    } else {
        let tls = ServingCert::load_or_generate(
            args.tls_cert_file.as_deref(),
            args.tls_private_key_file.as_deref(),
            args.secure_bind_address,
        )?
        .server_config()?;
        // The reviews have their own client: never fenced (a standby answers scrapes too)
        // and never behind a burst of node writes.
        let reviews = build_client(
            kube_config.clone(),
            ApiLayer::new(REVIEW_QPS, REVIEW_BURST, metrics.clone()),
        )
        .context("cannot build the Kubernetes client for token and access reviews")?;
        let auth = DelegatedAuth::new(
            KubeReviewer::new(reviews),
            AlwaysAllowPaths::new(&args.authorization_always_allow_paths)
                .map_err(anyhow::Error::msg)?,
        )?;
        let addr = SocketAddr::new(args.secure_bind_address, args.secure_port);
        let listener = http::bind(addr, Port::Secure).await?;
        Some((listener, tls, http::secure(ctx.clone(), Arc::new(auth))))
    };
    let local =
        |l: &tokio::net::TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(
        address = %local(&listener),
        secure_address = %secure.as_ref().map(|(l, _, _)| local(l)).unwrap_or_else(|| "off".into()),
        identity = %identity,
        leader_elect = args.leader_elect,
        workers = args.concurrent_node_syncs,
        "bare-ccm starting"
    );

    let shutdown = CancellationToken::new();
    // Cancelled once the node workers have stopped: the election releases the lease only
    // then.
    let workers_stopped = CancellationToken::new();
    let mut background = tokio::task::JoinSet::new();
    background.spawn(named("signal handler", stop_on_signal(shutdown.clone())));
    background.spawn(named("event writer", event_writer.run(shutdown.clone())));
    background.spawn({
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        named("HTTP server", async move {
            if let Err(e) = http::serve(listener, http::probes(ctx), shutdown).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        })
    });
    if let Some((listener, tls, router)) = secure {
        let shutdown = shutdown.clone();
        background.spawn(named(
            "HTTPS server",
            http::tls::serve(listener, tls, router, shutdown),
        ));
    }
    if let Some(file) = config_file {
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        let lease = lease_ref(
            &args.leader_elect_resource_namespace,
            &args.leader_elect_resource_name,
        );
        let interval = args.config_poll_interval;
        background.spawn(named("config reload", async move {
            let mut file = file;
            loop {
                let outcome = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    outcome = file.changed(&shared_config, interval) => outcome,
                };
                match outcome {
                    Reload::Applied => {
                        tracing::info!("config file changed; re-checking every node");
                        ctx.enqueue_all();
                    }
                    Reload::Rejected(message) => {
                        tracing::error!(%message, "config reload rejected");
                        ctx.events
                            .warn(lease.clone(), REASON_CONFIG_INVALID, &message);
                    }
                    Reload::Unchanged => {}
                }
            }
        }));
    }
    let controller_enabled = node_controller_enabled(&args.controllers);
    // Without the controller nothing is written, so there is nothing to lead.
    if let Some(lease_client) = lease_client.filter(|_| controller_enabled) {
        let status = metrics.leader_election_status(&args.leader_elect_resource_name);
        let election = leader::run_election(
            lease_client,
            election,
            gate.clone(),
            renewals,
            shutdown.clone(),
            workers_stopped.clone(),
            status,
        );
        background.spawn(named("leader election", async move {
            if let Err(e) = election.await {
                tracing::error!(error = %e, "leader election could not run");
            }
        }));
    }

    // Every task runs until shutdown; the first one to fail stops the process (non-zero
    // exit) rather than leaving it running without that task.
    let controller = async {
        if controller_enabled {
            return controller::run(ctx, client, shutdown.clone()).await;
        }
        ctx.run_without_controller();
        tracing::info!(
            "node controller disabled by --controllers; serving only the probes and /metrics"
        );
        shutdown.cancelled().await;
        Ok(())
    };
    let mut controller = std::pin::pin!(controller);
    let mut failure = tokio::select! {
        stopped = &mut controller => stopped.err(),
        failed = first_failure(&mut background, "a background task", &shutdown) => {
            tracing::error!(error = %failed, "background task failed; stopping");
            shutdown.cancel();
            controller.await.err().or(Some(failed))
        }
    };
    workers_stopped.cancel();

    // The election releases the lease (the workers have stopped), the others stop at once;
    // 3 s at most, then cut.
    let stopped = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(ended) = background.join_next().await {
            if let Err(e) = ended
                && e.is_panic()
                && failure.is_none()
            {
                failure = Some(TaskFailed {
                    task: "a background task".into(),
                    how: "panicked during shutdown".into(),
                });
            }
        }
    })
    .await;
    if stopped.is_err() {
        background.abort_all();
        while background.join_next().await.is_some() {}
    }
    match failure {
        Some(failed) => Err(failed.into()),
        None => {
            tracing::info!("bare-ccm stopped");
            Ok(())
        }
    }
}

/// Cancels `shutdown` on SIGTERM or SIGINT. Cancels before logging: logging must never be
/// able to keep the process from stopping.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop bare-ccm with SIGKILL");
        shutdown.cancelled().await;
        return;
    };
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = shutdown.cancelled() => return,
    };
    shutdown.cancel();
    tracing::info!("{which} received; stopping");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn go_style_durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn defaults_follow_upstream_where_upstream_has_the_flag() {
        let cli = Cli::try_parse_from(["run"]).unwrap();
        let a = cli.run;
        assert!(a.leader_elect);
        assert_eq!(a.leader_elect_lease_duration, Duration::from_secs(15));
        assert_eq!(a.leader_elect_renew_deadline, Duration::from_secs(10));
        assert_eq!(a.leader_elect_retry_period, Duration::from_secs(2));
        assert_eq!(a.leader_elect_resource_namespace, "kube-system");
        assert_eq!(a.leader_elect_resource_name, "bare-ccm");
        assert_eq!(a.node_status_update_frequency, Duration::from_secs(300));
        assert_eq!(a.port, DEFAULT_PORT);
    }

    #[test]
    fn probes_stay_local_and_metrics_are_on_the_secure_port_by_default() {
        let a = Cli::try_parse_from(["run"]).unwrap().run;
        assert_eq!(a.bind_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((a.port, a.secure_port), (10270, 10271));
        assert_eq!(a.secure_bind_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(a.tls_cert_file, None);
        assert_eq!(
            a.authorization_always_allow_paths,
            ["/healthz", "/readyz", "/livez"]
        );
        let a = Cli::try_parse_from([
            "run",
            "--secure-port=0",
            "--authorization-always-allow-paths=/healthz,/debug/*",
        ])
        .unwrap()
        .run;
        assert_eq!(a.secure_port, 0);
        assert_eq!(a.authorization_always_allow_paths, ["/healthz", "/debug/*"]);
    }

    #[test]
    fn a_certificate_needs_its_key_and_stars_only_end_a_path() {
        for args in [
            &["run", "--tls-cert-file=/c.pem"][..],
            &["run", "--tls-private-key-file=/k.pem"][..],
            &["run", "--authorization-always-allow-paths=/a*b"][..],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(
            Cli::try_parse_from([
                "run",
                "--tls-cert-file=/c.pem",
                "--tls-private-key-file=/k.pem"
            ])
            .is_ok()
        );
    }

    #[test]
    fn leader_elect_can_be_switched_off_the_upstream_way() {
        let cli = Cli::try_parse_from(["run", "--leader-elect=false"]).unwrap();
        assert!(!cli.run.leader_elect);
        let cli = Cli::try_parse_from(["run", "--leader-elect"]).unwrap();
        assert!(cli.run.leader_elect);
    }

    fn controllers(args: &[&str]) -> Result<Vec<String>, clap::Error> {
        let argv = std::iter::once("run").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.run.controllers)
    }

    #[test]
    fn controllers_flag_follows_upstream_syntax() {
        let enabled = |args: &[&str]| node_controller_enabled(&controllers(args).unwrap());
        assert!(enabled(&[]), "default *");
        assert!(enabled(&["--controllers", "*"]));
        assert!(enabled(&["--controllers", "cloud-node"]));
        assert!(enabled(&["--controllers=cloud-node-controller"]));
        assert!(!enabled(&["--controllers", "-cloud-node"]));
        assert!(!enabled(&["--controllers", "*,-cloud-node"]));
        assert!(!enabled(&["--controllers", "-cloud-node,*"]));
        assert!(enabled(&["--controllers", "cloud-node,-cloud-node"]));
    }

    #[test]
    fn unknown_controllers_are_refused_naming_the_known_one() {
        for bad in ["service", "-route", "-*", ""] {
            let message = controllers(&["--controllers", bad])
                .unwrap_err()
                .to_string();
            assert!(message.contains("cloud-node"), "{bad}: {message}");
        }
    }

    #[test]
    fn upstream_cloud_provider_and_verbosity_flags_are_accepted_and_nothing_else() {
        let cli = Cli::try_parse_from(["run", "--cloud-provider=external", "--v=2"]).unwrap();
        assert_eq!(cli.run.cloud_provider.as_deref(), Some("external"));
        assert_eq!(cli.run.verbosity, Some(2));
        let cli = Cli::try_parse_from(["run", "--cloud-provider", "k3s", "--v", "4"]).unwrap();
        assert_eq!(cli.run.cloud_provider.as_deref(), Some("k3s"));
        for unknown in [
            "--allocate-node-cidrs=false",
            "--configure-cloud-routes=false",
        ] {
            let err = Cli::try_parse_from(["run", unknown])
                .err()
                .map(|e| e.kind());
            assert_eq!(
                err,
                Some(clap::error::ErrorKind::UnknownArgument),
                "{unknown}"
            );
        }
    }

    #[test]
    fn zero_workers_is_refused() {
        assert!(Cli::try_parse_from(["run", "--concurrent-node-syncs", "0"]).is_err());
    }
}
