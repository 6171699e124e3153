//! A fleet of simulated kubelets sharing one client ([`Fleet`]): registration, and the
//! actors that follow each registration, each after its delay of [`Registration`] counted
//! from the create (the k3s writes in `k3s`, the controllers in `controllers`).
//!
//! Registration is a `create` of the whole Node, retried with backoff on failure; an
//! `AlreadyExists` answer means the Node exists and the kubelet adopts it (kubernetes
//! `pkg/kubelet/kubelet_node_status.go`, `tryRegisterWithAPIServer`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::controllers::nodeipam_patch;
use super::heartbeat::{HEARTBEATS_IN_FLIGHT, Heartbeats, SimulatedNode};
use super::node::{node_args_value, node_object};
use super::retry::{DEFAULT_RETRY_BUDGET, is_already_exists};
use super::spec::KubeletSpec;
use super::{K3S_NODE_ARGS, KubeletError, NODES_PATH};
use crate::sync::lock;

/// When the writes that follow a registration happen, counted from the create's answer,
/// and which of them the fleet simulates. Each is its own actor, as on a real cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The k3s agent's `Update` with `k3s.io/node-args` (specs with `node_args`). It
    /// watches for its Node (k3s `pkg/agent/run.go`, `configureNode`), so it follows the
    /// create closely.
    pub agent_delay: Duration,
    /// The k3s server's role labels (specs with `server_labels`). It polls for its Node
    /// each second (k3s `pkg/server/server.go`, `setNodeLabelsAndAnnotations`), so it comes
    /// up to a second after the create.
    pub server_delay: Duration,
    /// The simulated node lifecycle controller: the not-ready taint this long after the
    /// create, and its removal once the node is Ready. `None` where a real
    /// kube-controller-manager runs.
    pub lifecycle: Option<Duration>,
    /// The simulated node IPAM controller: the podCIDR this long after the create. `None`
    /// where a real kube-controller-manager runs.
    pub nodeipam: Option<Duration>,
}

impl Default for Registration {
    /// A k3s cluster as the emulator stands in for it: the controllers react to the new
    /// Node through their informers within milliseconds, the agent a moment later, the
    /// server within its one-second poll.
    fn default() -> Self {
        Registration {
            agent_delay: Duration::from_millis(20),
            server_delay: Duration::from_millis(500),
            lifecycle: Some(Duration::from_millis(5)),
            nodeipam: Some(Duration::from_millis(5)),
        }
    }
}

impl Registration {
    /// Against a real kube-apiserver with a kube-controller-manager: only the kubelet and
    /// k3s writes are simulated.
    pub fn real_cluster() -> Self {
        Registration {
            lifecycle: None,
            nodeipam: None,
            ..Registration::default()
        }
    }
}

/// What a fleet's handle, its follow-up tasks and its heartbeat task share.
pub(super) struct Inner {
    pub(super) client: Client,
    pub(super) nodes: Api<Node>,
    pub(super) retry_budget: Duration,
    pub(super) registration: Registration,
    /// The writes that follow registrations, still to come or under way.
    pub(super) followups: Followups,
    pub(super) registered: Mutex<Vec<Arc<SimulatedNode>>>,
    pub(super) heartbeats: Mutex<Option<Heartbeats>>,
    /// Bounds the heartbeat requests in flight; a permit is held until the answer.
    pub(super) heartbeats_in_flight: Arc<Semaphore>,
    pub(super) sent: AtomicU64,
    pub(super) failed: AtomicU64,
}

/// Counts the follow-up writes of registrations, so that they can be awaited and stopped.
#[derive(Default)]
pub(super) struct Followups {
    pub(super) pending: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) done: tokio::sync::Notify,
    pub(super) cancel: Mutex<CancellationToken>,
}

impl Followups {
    fn token(&self) -> CancellationToken {
        lock(&self.cancel).clone()
    }
}

/// A set of simulated kubelets (and admins) sharing one client. Dropping it stops the
/// heartbeats and the registrations' follow-up writes.
pub struct Fleet {
    pub(super) inner: Arc<Inner>,
}

impl Fleet {
    /// A fleet sending its requests through `client`, retrying transient failures for up to
    /// 60 s per action.
    pub fn new(client: Client) -> Fleet {
        Fleet::with_retry_budget(client, DEFAULT_RETRY_BUDGET)
    }

    /// A fleet retrying transient failures for up to `budget` per action (a reliability
    /// test with a 15 s outage needs more than 15 s).
    pub fn with_retry_budget(client: Client, budget: Duration) -> Fleet {
        Fleet::with_registration(client, budget, Registration::default())
    }

    /// A fleet whose registrations are followed as `registration` says (see
    /// [`Registration::real_cluster`] for a real kube-apiserver, with an admin client).
    pub fn with_registration(
        client: Client,
        budget: Duration,
        registration: Registration,
    ) -> Fleet {
        Fleet {
            inner: Arc::new(Inner {
                nodes: Api::all(client.clone()),
                client,
                retry_budget: budget,
                registration,
                followups: Followups::default(),
                registered: Mutex::new(Vec::new()),
                heartbeats: Mutex::new(None),
                heartbeats_in_flight: Arc::new(Semaphore::new(HEARTBEATS_IN_FLIGHT as usize)),
                sent: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        }
    }

    /// Registers one Node as its kubelet would, adds it to the heartbeat rotation, and
    /// starts the writes that follow a registration ([`Registration`]); returns once the
    /// create is answered ([`Fleet::settled`] waits for the rest). The JSON is posted as is
    /// and the answer is not parsed, to keep the simulated kubelets' own CPU use small
    /// next to the system under test.
    pub async fn register(&self, spec: &KubeletSpec) -> Result<(), KubeletError> {
        let body = serde_json::to_vec(&node_object(spec)).map_err(|e| KubeletError::Request {
            action: "registration",
            node: spec.name.clone(),
            source: kube::Error::SerdeError(e),
        })?;
        self.inner
            .retry("registration", &spec.name, || async {
                let request = kube::core::Request::new(NODES_PATH)
                    .create(&PostParams::default(), body.clone())
                    .map_err(kube::Error::BuildRequest)?;
                match self.inner.client.request_text(request).await {
                    // The Node exists already (an earlier attempt got through although its answer
                    // was lost, or the kubelet restarted): the kubelet adopts it
                    // (`tryRegisterWithAPIServer` in kubelet_node_status.go).
                    Err(e) if is_already_exists(&e) => Ok(()),
                    other => other.map(drop),
                }
            })
            .await?;
        lock(&self.inner.registered).push(Arc::new(SimulatedNode {
            name: spec.name.clone(),
            settled: AtomicBool::new(false),
        }));
        self.follow_up(spec);
        Ok(())
    }

    /// Registers many Nodes with at most `concurrency` registrations in flight, either all
    /// at once (`rate_per_sec` None) or started at a steady rate. Stops at the first
    /// registration that fails for good.
    pub async fn register_all(
        &self,
        specs: Vec<KubeletSpec>,
        rate_per_sec: Option<f64>,
        concurrency: usize,
    ) -> Result<(), KubeletError> {
        let start = tokio::time::Instant::now();
        let interval = rate_per_sec
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .map(|rate| Duration::from_secs_f64(1.0 / rate));
        futures::stream::iter(specs.into_iter().enumerate().map(Ok))
            .try_for_each_concurrent(concurrency.max(1), |(index, spec)| async move {
                if let Some(interval) = interval {
                    let offset = interval.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX));
                    tokio::time::sleep_until(start + offset).await;
                }
                self.register(&spec).await
            })
            .await
    }

    /// Starts the actors that write to a Node after its registration, each after its delay.
    fn follow_up(&self, spec: &KubeletSpec) {
        let r = &self.inner.registration;
        let name = spec.name.as_str();
        if let Some(delay) = r.nodeipam {
            let patch = nodeipam_patch(name);
            self.spawn_followup(delay, name, move |inner, node| async move {
                inner.assign_pod_cidr(&node, &patch).await
            });
        }
        if let Some(delay) = r.lifecycle {
            self.spawn_followup(delay, name, |inner, node| async move {
                inner.taint_not_ready(&node).await
            });
        }
        if let Some(args) = &spec.node_args {
            let mut annotations = spec.agent_annotations.clone();
            annotations.insert(K3S_NODE_ARGS.to_owned(), node_args_value(args));
            self.spawn_followup(r.agent_delay, name, move |inner, node| async move {
                inner
                    .update_metadata(
                        "k3s agent node-args update",
                        &node,
                        "annotations",
                        &annotations,
                    )
                    .await
            });
        }
        if !spec.server_labels.is_empty() {
            let labels = spec.server_labels.clone();
            self.spawn_followup(r.server_delay, name, move |inner, node| async move {
                inner
                    .update_metadata("k3s server role labels", &node, "labels", &labels)
                    .await
            });
        }
    }

    /// Runs `write` for `node` after `delay`, counted in [`Fleet::settled`] and cancelled
    /// by [`Fleet::stop`] and by dropping the fleet.
    fn spawn_followup<F, Fut>(&self, delay: Duration, node: &str, write: F)
    where
        F: FnOnce(Arc<Inner>, String) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), KubeletError>> + Send,
    {
        let inner = self.inner.clone();
        let cancel = inner.followups.token();
        let node = node.to_owned();
        inner.followups.pending.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let result = tokio::select! {
                _ = cancel.cancelled() => Ok(()),
                result = async {
                    tokio::time::sleep(delay).await;
                    write(inner.clone(), node).await
                } => result,
            };
            if let Err(e) = result {
                inner.followups.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "a simulated write after registration failed");
            }
            if inner.followups.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                inner.followups.done.notify_waiters();
            }
        });
    }

    /// Waits until every write that follows the registrations so far has been made (or
    /// has failed for good: see [`Fleet::followup_failures`]).
    pub async fn settled(&self) {
        let followups = &self.inner.followups;
        loop {
            let done = followups.done.notified();
            if followups.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }

    /// Follow-up writes that failed for good (retry budget exhausted, or refused).
    pub fn followup_failures(&self) -> u64 {
        self.inner.followups.failed.load(Ordering::Relaxed)
    }

    /// Names of the nodes this fleet registered, in registration order.
    pub fn registered(&self) -> Vec<String> {
        lock(&self.inner.registered)
            .iter()
            .map(|node| node.name.clone())
            .collect()
    }

    /// Stops the heartbeats and the registrations' follow-up writes, and waits until the
    /// last request in flight has been answered, so none reaches the server after this
    /// returns. The fleet may register again afterwards.
    pub async fn stop(&self) {
        let followups = &self.inner.followups;
        std::mem::replace(&mut *lock(&followups.cancel), CancellationToken::new()).cancel();
        self.settled().await;
        let heartbeats = lock(&self.inner.heartbeats).take();
        if let Some(heartbeats) = heartbeats {
            heartbeats.cancel.cancel();
            // The task only ends by cancellation; a join error means it panicked, which
            // the heartbeat counters already reflect.
            let _ = heartbeats.task.await;
        }
        // Every heartbeat request holds a permit until it is answered. The semaphore is
        // never closed, so acquiring cannot fail.
        let _ = self
            .inner
            .heartbeats_in_flight
            .acquire_many(HEARTBEATS_IN_FLIGHT)
            .await;
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(heartbeats) = lock(&self.inner.heartbeats).take() {
            heartbeats.cancel.cancel();
        }
        lock(&self.inner.followups.cancel).cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A fleet whose server refuses every connection (a port nothing listens on).
    fn unreachable_fleet(budget: Duration) -> Fleet {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .unwrap_or(9);
        let url = format!("http://127.0.0.1:{port}");
        let config = kube::Config::new(url.parse().unwrap_or_default());
        match Client::try_from(config) {
            Ok(client) => Fleet::with_retry_budget(client, budget),
            Err(e) => panic!("client for {url}: {e}"),
        }
    }

    #[tokio::test]
    async fn unreachable_server_exhausts_the_retry_budget() {
        let fleet = unreachable_fleet(Duration::from_millis(300));
        let started = Instant::now();
        let result = fleet.register(&KubeletSpec::new("n")).await;
        assert!(
            matches!(
                result,
                Err(KubeletError::RetriesExhausted {
                    action: "registration",
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(fleet.registered().is_empty());
    }

    #[tokio::test]
    async fn heartbeats_need_a_positive_period() {
        let fleet = unreachable_fleet(Duration::ZERO);
        assert!(matches!(
            fleet.start_heartbeats(Duration::ZERO),
            Err(KubeletError::ZeroPeriod)
        ));
    }

    #[test]
    fn heartbeats_outside_a_runtime_are_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let fleet = match runtime {
            Ok(runtime) => runtime.block_on(async { unreachable_fleet(Duration::ZERO) }),
            Err(e) => panic!("runtime: {e}"),
        };
        assert!(matches!(
            fleet.start_heartbeats(Duration::from_secs(1)),
            Err(KubeletError::NoRuntime)
        ));
    }
}
