//! `bare-ccm agent`: one per node (DaemonSet `bare-ccm-agent`). It reads the node's
//! interface addresses from the kernel and publishes them on its own Node as the
//! annotation `bare-ccm.io/interfaces`, which the controller's `interfaces` source reads.
//!
//! It owns that one annotation of that one Node and must touch nothing else: every write
//! is [`publish::annotation_patch`], and a ValidatingAdmissionPolicy
//! (manifests/bare-ccm-agent.yaml) refuses any other change its ServiceAccount attempts.
//! It writes only when the published set changes: a steady node costs no writes, and one
//! read of the Node per `--resync-interval`.

pub mod netlink;
pub mod publish;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::controller::client::{ApiLayer, build_client};
use crate::metrics::Metrics;
use crate::resolve::interfaces::{DEFAULT_IGNORE, check_pattern};
use crate::run::parse_duration;
use crate::telemetry::{Chain, LogFormat};

use publish::{Seen, annotation_patch, annotation_value};

/// The field manager of the agent's writes (`managedFields`).
pub const FIELD_MANAGER: &str = "bare-ccm-agent";

/// Client-side rate limit: the agent makes a request or two per change.
const QPS: f64 = 2.0;
const BURST: u32 = 5;

/// Wait after the kernel's first message for the rest of one change, and at most this
/// long in all: well within the "seconds" the issue asks for.
const SETTLE_QUIET: Duration = Duration::from_millis(200);
const SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// Retries of an API failure: from 1 s, doubling, up to a minute.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Writes refused because the annotation changed between read and write (the patch's
/// `test`), re-read and retried at once up to this many times.
const CONFLICT_TRIES: usize = 5;

/// When the kernel's notification socket fails, the interfaces are read at this period.
const POLL_FALLBACK: Duration = Duration::from_secs(5);

/// `bare-ccm agent` flags.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// This node's name: the Pod's spec.nodeName from the downward API.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,

    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    // `*` matches any characters; the list replaces the default one, and an empty value
    // publishes every interface (docs/addresses.md).
    /// Interfaces whose addresses are not published, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_IGNORE.map(String::from))]
    pub ignore_interfaces: Vec<String>,

    // A backstop for notifications the kernel dropped; it also restores an annotation
    // someone removed.
    /// How often interfaces and the Node's annotation are re-read without a notification.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::telemetry::init(args.log_format);
    if args.node_name.is_empty() {
        anyhow::bail!("--node-name (or NODE_NAME) must name this node");
    }
    let ignore: Vec<String> = args
        .ignore_interfaces
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect();
    for pattern in &ignore {
        check_pattern(pattern).map_err(|e| anyhow::anyhow!("--ignore-interfaces: {e}"))?;
    }
    let config = crate::kubeclient::client_config(args.kubeconfig.as_deref()).await?;
    let layer = ApiLayer::new(QPS, BURST, Arc::new(Metrics::new()));
    let nodes: Api<Node> = Api::all(build_client(config, layer)?);
    let mut monitor = netlink::Monitor::new()
        .context("cannot subscribe to the kernel's address changes (rtnetlink)")?;
    let mut publisher = Publisher {
        nodes,
        name: args.node_name.clone(),
        seen: None,
    };
    tracing::info!(node = %args.node_name, ignore = ?ignore, "bare-ccm agent started");

    let mut stop = std::pin::pin!(stop_signal());
    let mut retry = RETRY_MIN;
    let mut monitor_failed = false;
    loop {
        let wait = match publisher.sync(&ignore).await {
            Ok(()) => {
                retry = RETRY_MIN;
                args.resync_interval
            }
            Err(e) => {
                tracing::warn!(node = %publisher.name, retry_in = ?retry, "cannot publish the interfaces: {}", Chain(e.as_ref()));
                let wait = retry;
                retry = (retry * 2).min(RETRY_MAX);
                wait
            }
        };
        let wait = if monitor_failed {
            wait.min(POLL_FALLBACK)
        } else {
            wait
        };
        tokio::select! {
            () = &mut stop => return Ok(()),
            changed = monitor.changed(), if !monitor_failed => match changed {
                Ok(()) => monitor.settle(SETTLE_QUIET, SETTLE_LIMIT).await,
                Err(e) => {
                    tracing::warn!("the kernel's address notifications failed ({e}); reading the interfaces every {POLL_FALLBACK:?} instead");
                    monitor_failed = true;
                }
            },
            () = tokio::time::sleep(wait) => {
                // A resync reads the Node again, too.
                publisher.seen = None;
            }
        }
    }
}

/// Publishes the interfaces of one node.
struct Publisher {
    nodes: Api<Node>,
    name: String,
    /// What the Node holds, as last read or written; `None` reads it before the next
    /// write.
    seen: Option<Seen>,
}

impl Publisher {
    /// Reads the interfaces and writes the annotation when the Node does not hold them.
    async fn sync(&mut self, ignore: &[String]) -> anyhow::Result<()> {
        // A dump answers from kernel memory in well under a millisecond: no need for a
        // blocking thread, which would cost this one-thread process a second stack.
        let addresses =
            netlink::read_addresses().context("cannot read the interface addresses (rtnetlink)")?;
        let value = annotation_value(&addresses, ignore);
        if self.seen.as_ref().is_some_and(|s| s.holds(&value)) {
            return Ok(());
        }
        let result = self.publish(&value).await;
        if result.is_err() {
            self.seen = None;
        }
        result
    }

    async fn publish(&mut self, value: &str) -> anyhow::Result<()> {
        for _ in 0..CONFLICT_TRIES {
            let seen = match self.seen.take() {
                Some(seen) => seen,
                None => Seen::on(
                    &self
                        .nodes
                        .get(&self.name)
                        .await
                        .with_context(|| format!("cannot read node {}", self.name))?,
                ),
            };
            if seen.holds(value) {
                self.seen = Some(seen);
                return Ok(());
            }
            let ops = serde_json::from_value(annotation_patch(&seen, value))
                .context("building the annotation patch")?;
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            match self
                .nodes
                .patch(&self.name, &params, &Patch::Json::<()>(ops))
                .await
            {
                Ok(_) => {
                    tracing::info!(node = %self.name, interfaces = %value, "published");
                    self.seen = Some(Seen::Value(value.to_string()));
                    return Ok(());
                }
                // The annotation changed since it was read: read it again.
                Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => {
                    continue;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot patch node {}", self.name));
                }
            }
        }
        anyhow::bail!(
            "the annotation of node {} kept changing between read and write ({CONFLICT_TRIES} tries)",
            self.name
        )
    }
}

/// Resolves on SIGTERM or SIGINT; never when the handlers cannot be installed.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the agent with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
