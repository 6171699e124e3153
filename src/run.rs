//! `bare-ccm run`: the wiring of client, leader election, config reload, HTTP endpoints
//! and the node controller into one process that stops cleanly on SIGTERM/SIGINT (workers
//! stopped, lease released, exit within 5 s). It reads as [`assemble`] then
//! [`Process::supervise`]; the flags are in `args`, the reload loop in `config_reload`.

mod args;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use args::{
    DEFAULT_PORT, DEFAULT_SECURE_PORT, NODE_CONTROLLER, RunArgs, node_controller_enabled,
    parse_controller, parse_duration,
};

use crate::config::Config;
use crate::config_reload::{self, ConfigFile, Reload, SharedConfig};
use crate::controller::client::{ApiLayer, Fence, build_client};
use crate::controller::events::{Events, REASON_CONFIG_INVALID, lease_ref};
use crate::controller::tasks::{TaskFailed, first_failure};
use crate::controller::{self, Context, Settings, named};
use crate::http::delegated::{AlwaysAllowPaths, DelegatedAuth, KubeReviewer};
use crate::http::tls::ServingCert;
use crate::http::{self, Port};
use crate::leader::{self, ElectionSettings, LeaderGate, RenewClock};
use crate::metrics::Metrics;
use crate::telemetry;

/// The review client's rate limit: upstream's delegated authentication and authorization
/// clients get QPS 200 and burst 400 (k8s.io/apiserver `pkg/server/options/authorization.go`,
/// `getClient`), high enough never to slow a scrape, low enough that a flood of bogus
/// tokens cannot flood the API server.
const REVIEW_QPS: f64 = 200.0;
const REVIEW_BURST: u32 = 400;

/// Runs the controller until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    assemble(args).await?.supervise().await
}

/// The process once every part is built and the background tasks run: what is left is
/// to run the node controller and stop everything in order.
struct Process {
    ctx: Arc<Context>,
    client: kube::Client,
    controller_enabled: bool,
    background: JoinSet<&'static str>,
    shutdown: CancellationToken,
    /// Cancelled once the node workers have stopped: the election releases the lease only
    /// then.
    workers_stopped: CancellationToken,
}

/// Builds the clients, the controller's context and the listeners from the flags, and
/// spawns the background tasks (signals, Events, HTTP(S), config reload, election).
async fn assemble(args: RunArgs) -> anyhow::Result<Process> {
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
    let local = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(
        address = %local(&listener),
        secure_address = %secure.as_ref().map(|(l, _, _)| local(l)).unwrap_or_else(|| "off".into()),
        identity = %identity,
        leader_elect = args.leader_elect,
        workers = args.concurrent_node_syncs,
        "bare-ccm starting"
    );

    let shutdown = CancellationToken::new();
    let workers_stopped = CancellationToken::new();
    let mut background = JoinSet::new();
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
        let ctx = ctx.clone();
        let lease = lease_ref(
            &args.leader_elect_resource_namespace,
            &args.leader_elect_resource_name,
        );
        let watch = config_reload::watch(
            file,
            shared_config,
            args.config_poll_interval,
            shutdown.clone(),
            move |outcome| match outcome {
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
            },
        );
        background.spawn(named("config reload", watch));
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

    Ok(Process {
        ctx,
        client,
        controller_enabled,
        background,
        shutdown,
        workers_stopped,
    })
}

impl Process {
    /// Runs the node controller (or, without it, waits) until shutdown or until a
    /// background task fails; then stops the rest, 3 s at most.
    async fn supervise(self) -> anyhow::Result<()> {
        let Process {
            ctx,
            client,
            controller_enabled,
            mut background,
            shutdown,
            workers_stopped,
        } = self;
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
