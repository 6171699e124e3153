//! Leader election on a Lease, and the gate every write passes.
//!
//! The elector follows client-go's `leaderelection` (k8s.io/client-go
//! `tools/leaderelection/leaderelection.go`, `tryAcquireOrRenew`): read the Lease; take it
//! when it is free, released, or unchanged for its `leaseDurationSeconds` as observed on
//! this replica's clock (no cross-node clock comparison); write it back with `update` and
//! its resourceVersion, so two candidates can never both win; the leader renews every
//! retry period and releases on shutdown. (kube-lease-manager was not used: it acquires
//! with server-side apply, which this project does not depend on.)
//!
//! A replica may write only while it holds the lease *and* its last successful renewal is
//! younger than `--leader-elect-renew-deadline`: a leader cut off from the API server stops
//! writing before another replica can take over (lease duration > renew deadline).
//! Nothing here writes to Nodes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// When this replica last renewed (or acquired) its lease, counted from when the renewal
/// was *sent*: the API server stored it no earlier, so a standby cannot have seen it before
/// then. Counting from the answer instead would reopen the gate for a whole renew deadline
/// when an old answer is read late (a process frozen with the answer waiting in its
/// socket, while another replica took the lease).
#[derive(Debug, Default)]
pub struct RenewClock {
    last: Mutex<Option<Instant>>,
}

impl RenewClock {
    /// Notes a successful renewal whose request left at `sent`.
    pub fn renewed(&self, sent: Instant) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(sent);
        }
    }

    /// When the last successful renewal happened, if any.
    pub fn last(&self) -> Option<Instant> {
        self.last.lock().ok().and_then(|last| *last)
    }
}

/// Whether this replica may write now. Cheap to check; checked before every write.
#[derive(Debug)]
pub struct LeaderGate {
    leading: AtomicBool,
    /// `None` when leader election is disabled: the replica always writes.
    renewals: Option<(Arc<RenewClock>, Duration)>,
    changes: watch::Sender<bool>,
}

impl LeaderGate {
    /// The gate of a replica that runs without leader election (`--leader-elect=false`).
    pub fn always() -> Self {
        let (changes, _) = watch::channel(true);
        LeaderGate {
            leading: AtomicBool::new(true),
            renewals: None,
            changes,
        }
    }

    /// The gate of an elected replica: closed until [`LeaderGate::set_leading`] opens it,
    /// and closed again whenever `renewals` saw no successful write for `renew_deadline`.
    pub fn elected(renewals: Arc<RenewClock>, renew_deadline: Duration) -> Self {
        let (changes, _) = watch::channel(false);
        LeaderGate {
            leading: AtomicBool::new(false),
            renewals: Some((renewals, renew_deadline)),
            changes,
        }
    }

    /// True while this replica holds the lease and its last renewal is fresh.
    pub fn may_write(&self) -> bool {
        if !self.leading.load(Ordering::Acquire) {
            return false;
        }
        match &self.renewals {
            None => true,
            Some((clock, deadline)) => clock.last().is_some_and(|t| t.elapsed() < *deadline),
        }
    }

    /// True while this replica holds the lease (renewal freshness aside).
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Records a change of lease ownership and notifies subscribers.
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
        self.changes.send_replace(leading);
    }

    /// A receiver of ownership changes (the controller re-enqueues every node on gaining it).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }
}

/// The `--leader-elect-*` settings.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Why the leader-election settings cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ElectionSettingsError {
    #[error(
        "--leader-elect-lease-duration ({lease:?}) must be longer than --leader-elect-renew-deadline ({renew:?})"
    )]
    LeaseNotLongerThanRenew { lease: Duration, renew: Duration },
    #[error(
        "--leader-elect-renew-deadline ({renew:?}) must be longer than --leader-elect-retry-period ({retry:?})"
    )]
    RenewNotLongerThanRetry { renew: Duration, retry: Duration },
    #[error("--leader-elect-retry-period must be above zero")]
    RetryTooShort,
}

impl ElectionSettings {
    /// Checks upstream's constraints: lease duration > renew deadline > retry period > 0.
    pub fn validate(&self) -> Result<(), ElectionSettingsError> {
        if self.lease_duration <= self.renew_deadline {
            return Err(ElectionSettingsError::LeaseNotLongerThanRenew {
                lease: self.lease_duration,
                renew: self.renew_deadline,
            });
        }
        if self.renew_deadline <= self.retry_period {
            return Err(ElectionSettingsError::RenewNotLongerThanRetry {
                renew: self.renew_deadline,
                retry: self.retry_period,
            });
        }
        if self.retry_period.is_zero() {
            return Err(ElectionSettingsError::RetryTooShort);
        }
        Ok(())
    }

    /// `leaseDurationSeconds` as written to the Lease (whole seconds, rounded up).
    fn lease_seconds(&self) -> i32 {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
    }
}

/// upstream's default identity: `<hostname>_<uuid>`.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "bare-ccm".to_string());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// The outcome of one look at the Lease.
#[derive(Debug, PartialEq)]
enum Attempt {
    /// This replica holds the lease (acquired or renewed just now).
    Leading,
    /// Another replica holds it (or won the race for it).
    Standby,
}

/// The fields whose change shows the holder is alive: holder and renewTime.
type HolderRecord = (Option<String>, Option<MicroTime>);

/// One candidate's view of the Lease.
struct Elector {
    api: Api<Lease>,
    settings: ElectionSettings,
    /// The holder and renewTime last seen, and when this replica first saw them.
    observed: Option<(HolderRecord, Instant)>,
    /// The Lease as our last successful write returned it (the renewal fast path).
    ours: Option<Lease>,
}

impl Elector {
    fn new(client: kube::Client, settings: ElectionSettings) -> Self {
        Elector {
            api: Api::namespaced(client, &settings.lease_namespace),
            settings,
            observed: None,
            ours: None,
        }
    }

    /// client-go's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        // Fast path: renew from the object our last write returned, without a read.
        if let Some(mut lease) = self.ours.take() {
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(now.clone());
            }
            if let Ok(renewed) = self
                .api
                .replace(&self.settings.lease_name, &PostParams::default(), &lease)
                .await
            {
                self.ours = Some(renewed);
                return Ok(Attempt::Leading);
            }
        }
        let Some(mut lease) = self.api.get_opt(&self.settings.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.lease_name.clone()),
                    namespace: Some(self.settings.lease_namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    lease_duration_seconds: Some(self.settings.lease_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.ours = Some(created);
                    Ok(Attempt::Leading)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Standby),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let key = (holder.clone(), spec.renew_time.clone());
        let observed_at = match &self.observed {
            Some((seen, at)) if *seen == key => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((key, at));
                at
            }
        };
        let is_ours = holder.as_deref() == Some(self.settings.identity.as_str());
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        if holder.is_some() && !is_ours && observed_at.elapsed() < duration {
            return Ok(Attempt::Standby);
        }
        let mut next = spec.clone();
        next.holder_identity = Some(self.settings.identity.clone());
        next.lease_duration_seconds = Some(self.settings.lease_seconds());
        next.renew_time = Some(now.clone());
        if !is_ours {
            next.acquire_time = Some(now);
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(next);
        // `lease` carries the resourceVersion just read: a concurrent writer makes this 409.
        match self
            .api
            .replace(&self.settings.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.ours = Some(updated);
                Ok(Attempt::Leading)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Standby),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up (client-go's `release`): no holder, a one-second duration.
    async fn release(&mut self) -> Result<(), kube::Error> {
        let lease = match self.ours.take() {
            Some(lease) => lease,
            None => match self.api.get_opt(&self.settings.lease_name).await? {
                Some(lease) => lease,
                None => return Ok(()),
            },
        };
        let mut lease = lease;
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        self.api
            .replace(&self.settings.lease_name, &PostParams::default(), &lease)
            .await
            .map(drop)
    }
}

/// Runs the election until `shutdown`: opens and closes `gate` as the lease is won and
/// lost, and on shutdown closes the gate first, then releases the lease. `status` is the
/// lease's `leader_election_master_status` series, 1 while the gate is open.
pub async fn run_election(
    client: kube::Client,
    settings: ElectionSettings,
    gate: Arc<LeaderGate>,
    renewals: Arc<RenewClock>,
    shutdown: CancellationToken,
    workers_stopped: CancellationToken,
    status: Gauge,
) -> Result<(), ElectionSettingsError> {
    settings.validate()?;
    let lease = format!("{}/{}", settings.lease_namespace, settings.lease_name);
    let (retry, renew_deadline) = (settings.retry_period, settings.renew_deadline);
    let identity = settings.identity.clone();
    let mut elector = Elector::new(client, settings);
    tracing::info!(%identity, %lease, "waiting for the leader lease");
    loop {
        // Each attempt is bounded by the renew deadline, as client-go's renew loop is
        // (leaderelection.go, `renew`: context.WithTimeout(ctx, RenewDeadline)): a hung
        // API server must not keep this replica reporting leadership, or a standby
        // waiting, forever.
        let sent = Instant::now();
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => break,
            attempt = tokio::time::timeout(renew_deadline, elector.try_acquire_or_renew()) => attempt,
        };
        match attempt {
            Ok(Ok(Attempt::Leading)) => {
                renewals.renewed(sent);
                if !gate.is_leading() {
                    tracing::info!(%identity, %lease, "became the leader");
                    gate.set_leading(true);
                }
            }
            Ok(Ok(Attempt::Standby)) => {
                if gate.is_leading() {
                    tracing::warn!(%identity, %lease, "lost the leader lease; stopped writing");
                    gate.set_leading(false);
                }
            }
            Ok(Err(e)) => {
                if !stop_if_overdue(&gate, &renewals, renew_deadline) {
                    if let Some(hint) = crate::controller::grants::forbidden_hint(&e) {
                        tracing::warn!(%lease, error = %crate::telemetry::Chain(&e), "cannot read or renew the leader lease ({hint}); retrying");
                    } else {
                        tracing::warn!(%lease, error = %crate::telemetry::Chain(&e), "cannot read or renew the leader lease; retrying");
                    }
                } else {
                    tracing::warn!(%identity, %lease, error = %crate::telemetry::Chain(&e), "lease not renewed within the renew deadline; stopped writing");
                }
            }
            Err(_) => {
                if stop_if_overdue(&gate, &renewals, renew_deadline) {
                    tracing::warn!(%identity, %lease, "the API server did not answer within the renew deadline; stopped writing");
                } else {
                    tracing::warn!(%lease, timeout = ?renew_deadline, "no answer about the leader lease; retrying");
                }
            }
        }
        status.set(i64::from(gate.is_leading()));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(retry) => {}
        }
    }
    gate.set_leading(false);
    status.set(0);
    // The lease is given up only once no worker can write any more: a standby that took
    // it at once must not meet a write of ours still in flight.
    if tokio::time::timeout(WORKERS_STOP_WAIT, workers_stopped.cancelled())
        .await
        .is_err()
    {
        tracing::warn!(%lease, "workers still running; the lease is left to expire instead of released");
        return Ok(());
    }
    match tokio::time::timeout(RELEASE_WAIT, elector.release()).await {
        Ok(Ok(())) => tracing::info!(%lease, "released the leader lease"),
        Ok(Err(e)) => {
            tracing::warn!(%lease, error = %crate::telemetry::Chain(&e), "could not release the leader lease; it expires on its own")
        }
        Err(_) => {
            tracing::warn!(%lease, "timed out releasing the leader lease; it expires on its own")
        }
    }
    Ok(())
}

/// How long the election waits on shutdown for the workers to stop (they get 2 s to
/// finish a write in flight) before it leaves the lease to expire.
const WORKERS_STOP_WAIT: Duration = Duration::from_millis(2500);

/// How long releasing the lease may take on shutdown, so that the process exits within
/// 5 s of SIGTERM.
const RELEASE_WAIT: Duration = Duration::from_millis(1500);

/// Closes the gate when this replica leads but its last renewal is older than the renew
/// deadline; whether it did.
fn stop_if_overdue(gate: &LeaderGate, renewals: &RenewClock, renew_deadline: Duration) -> bool {
    let overdue = renewals
        .last()
        .is_none_or(|t| t.elapsed() >= renew_deadline);
    if gate.is_leading() && overdue {
        gate.set_leading(false);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lease: u64, renew: u64, retry: u64) -> ElectionSettings {
        ElectionSettings {
            lease_name: "bare-ccm".into(),
            lease_namespace: "kube-system".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
        }
    }

    #[test]
    fn upstream_defaults_are_accepted() {
        assert!(settings(15, 10, 2).validate().is_ok());
        assert_eq!(settings(15, 10, 2).lease_seconds(), 15);
    }

    #[test]
    fn inconsistent_durations_are_rejected() {
        assert!(matches!(
            settings(10, 10, 2).validate(),
            Err(ElectionSettingsError::LeaseNotLongerThanRenew { .. })
        ));
        assert!(matches!(
            settings(15, 2, 2).validate(),
            Err(ElectionSettingsError::RenewNotLongerThanRetry { .. })
        ));
        assert_eq!(
            settings(15, 10, 0).validate().unwrap_err(),
            ElectionSettingsError::RetryTooShort
        );
    }

    #[test]
    fn gate_without_election_always_writes() {
        assert!(LeaderGate::always().may_write());
    }

    #[test]
    fn gate_closes_when_renewals_are_older_than_the_renew_deadline() {
        let clock = Arc::new(RenewClock::default());
        let gate = LeaderGate::elected(clock.clone(), Duration::from_millis(50));
        assert!(!gate.may_write(), "not leading yet");
        clock.renewed(Instant::now());
        gate.set_leading(true);
        assert!(gate.may_write());
        std::thread::sleep(Duration::from_millis(60));
        assert!(gate.is_leading());
        assert!(!gate.may_write(), "renewal too old");
        clock.renewed(Instant::now());
        assert!(gate.may_write());
        gate.set_leading(false);
        assert!(!gate.may_write(), "lease lost");
    }

    /// A client of a stand-in API server for the Lease: no Lease to read, and every create
    /// or update answered with this replica's Lease. The answer to the create is only read `late` after it was sent, as when this
    /// process was frozen (SIGSTOP) with the answer waiting in its socket: the thread is
    /// blocked, so the renew-deadline timer and the answer are ready at the same poll.
    fn client_of_a_lease_server(late: Duration) -> kube::Client {
        let creates = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let server = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let creates = creates.clone();
            async move {
                let lease = r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
                    "metadata":{"name":"bare-ccm","namespace":"kube-system","resourceVersion":"1"},
                    "spec":{"holderIdentity":"me","leaseDurationSeconds":1}}"#;
                let (status, body) = match *req.method() {
                    http::Method::GET => (
                        http::StatusCode::NOT_FOUND,
                        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#,
                    ),
                    http::Method::POST => {
                        if creates.fetch_add(1, Ordering::SeqCst) == 0 {
                            std::thread::sleep(late);
                        }
                        (http::StatusCode::CREATED, lease)
                    }
                    _ => (http::StatusCode::OK, lease),
                };
                let mut resp = http::Response::new(http_body_util::Full::new(
                    axum::body::Bytes::from_static(body.as_bytes()),
                ));
                *resp.status_mut() = status;
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        kube::Client::new(server, "default")
    }

    /// A token of workers that have already stopped.
    fn stopped() -> CancellationToken {
        let token = CancellationToken::new();
        token.cancel();
        token
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_answer_read_after_the_renew_deadline_does_not_open_the_gate() {
        let renew_deadline = Duration::from_millis(200);
        let client = client_of_a_lease_server(renew_deadline * 2);
        let clock = Arc::new(RenewClock::default());
        let gate = Arc::new(LeaderGate::elected(clock.clone(), renew_deadline));
        let mut changes = gate.subscribe();
        let shutdown = CancellationToken::new();
        let election = tokio::spawn(run_election(
            client,
            ElectionSettings {
                lease_duration: Duration::from_secs(1),
                renew_deadline,
                retry_period: Duration::from_millis(100),
                ..settings(15, 10, 2)
            },
            gate.clone(),
            clock,
            shutdown.clone(),
            stopped(),
            Gauge::default(),
        ));
        changes.wait_for(|leading| *leading).await.unwrap();
        assert!(
            !gate.may_write(),
            "the lease was won by a request sent a renew deadline ago, yet the gate opened"
        );
        // The next renewal is answered at once and opens the gate.
        let opened = tokio::time::timeout(Duration::from_secs(2), async {
            while !gate.may_write() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(opened.is_ok(), "a prompt renewal did not open the gate");
        shutdown.cancel();
        election.await.unwrap().unwrap();
    }

    #[test]
    fn identity_is_hostname_underscore_uuid() {
        let id = default_identity();
        let (_, uuid) = id.rsplit_once('_').unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'4');
    }
}
