//! The cluster-wide context every check reads: the [`Snapshot`], the time, the config in
//! force, what the bare-ccm and k3s Leases say ([`LeaseState`]) and whether bare-ccm is
//! deployed. A leaf of `doctor`: the checks and `diagnose` import it, it imports none of
//! them.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;

use super::finding::human_age;
use super::{Fetched, Snapshot, Workload};
use crate::config::Config;

/// Lease duration assumed when a Lease does not state one (upstream default 15 s).
const DEFAULT_LEASE_SECS: i64 = 15;
/// Tolerated difference between the cluster's clocks and this machine's clock before a
/// renewal counts as stale.
const CLOCK_SKEW_SECS: i64 = 5;

/// What a Lease says about the controller holding it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum LeaseState {
    Fresh {
        holder: String,
        age: i64,
    },
    Stale {
        holder: String,
        age: i64,
        duration: i64,
    },
    Released,
    Absent,
    Unreadable(String),
}

impl LeaseState {
    pub(super) fn of(lease: &Fetched<Lease>, now: Timestamp) -> LeaseState {
        let lease = match lease {
            Fetched::Found(l) => l,
            Fetched::NotFound => return LeaseState::Absent,
            Fetched::Unreadable(why) => return LeaseState::Unreadable(why.clone()),
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        if holder.is_empty() {
            return LeaseState::Released;
        }
        let duration = spec
            .lease_duration_seconds
            .map(i64::from)
            .unwrap_or(DEFAULT_LEASE_SECS);
        let renewed = spec.renew_time.or(spec.acquire_time).map(|t| t.0);
        let age = renewed.map(|t| seconds_between(t, now));
        match age {
            Some(age) if age <= duration + CLOCK_SKEW_SECS => LeaseState::Fresh { holder, age },
            Some(age) => LeaseState::Stale {
                holder,
                age,
                duration,
            },
            None => LeaseState::Stale {
                holder,
                age: i64::MAX,
                duration,
            },
        }
    }

    pub(super) fn is_fresh(&self) -> bool {
        matches!(self, LeaseState::Fresh { .. })
    }

    /// "held by X, renewed 2s ago" and the like, for messages.
    pub(super) fn describe(&self) -> String {
        match self {
            LeaseState::Fresh { holder, age } => {
                format!("held by {holder}, renewed {} ago", human_age(*age))
            }
            LeaseState::Stale { holder, age, .. } if *age == i64::MAX => {
                format!("held by {holder}, never renewed")
            }
            LeaseState::Stale {
                holder,
                age,
                duration,
            } => format!(
                "held by {holder}, last renewed {} ago (lease duration {duration}s)",
                human_age(*age)
            ),
            LeaseState::Released => "released (no holder)".into(),
            LeaseState::Absent => "absent".into(),
            LeaseState::Unreadable(why) => format!("unreadable ({why})"),
        }
    }
}

/// The cluster-wide facts the per-node checks depend on.
pub(super) struct Context<'a> {
    pub(super) snap: &'a Snapshot,
    pub(super) now: Timestamp,
    pub(super) config: Config,
    pub(super) bare_ccm: LeaseState,
    pub(super) k3s_ccm: LeaseState,
    /// Evidence that k3s's embedded node controller is enabled.
    pub(super) k3s_node_controller: bool,
    /// A bare-ccm DaemonSet or Deployment exists or a bare-ccm Lease has a holder.
    pub(super) deployed: bool,
}

impl Context<'_> {
    pub(super) fn lease_ref(&self) -> String {
        format!(
            "Lease {}/{}",
            self.snap.target.namespace, self.snap.target.lease
        )
    }

    /// "DaemonSet kube-system/bare-ccm" (or Deployment, or "DaemonSet or Deployment" when
    /// there is none).
    pub(super) fn workload_ref(&self) -> String {
        let kind = self.workload_word(Workload::kind, "DaemonSet or Deployment");
        let t = &self.snap.target;
        format!("{kind} {}/{}", t.namespace, t.workload)
    }

    /// `daemonset/bare-ccm` (or deployment/...), for kubectl commands.
    pub(super) fn workload_arg(&self) -> String {
        let resource = self.workload_word(Workload::resource, "daemonset");
        format!("{resource}/{}", self.snap.target.workload)
    }

    /// `word` of the workload found, or `missing` when there is none.
    fn workload_word(
        &self,
        word: fn(&Workload) -> &'static str,
        missing: &'static str,
    ) -> &'static str {
        self.snap.workload.found().map_or(missing, word)
    }

    pub(super) fn pods_command(&self) -> String {
        format!(
            "kubectl -n {} get pods -l app.kubernetes.io/name=bare-ccm",
            self.snap.target.namespace
        )
    }

    /// Some node controller (bare-ccm or k3s's) is running and will remove the taint.
    pub(super) fn some_ccm_running(&self) -> bool {
        self.bare_ccm.is_fresh() || (self.k3s_ccm.is_fresh() && self.k3s_node_controller)
    }
}

/// Whole seconds from `then` to `now` (negative when `then` is in the future).
pub(super) fn seconds_between(then: Timestamp, now: Timestamp) -> i64 {
    now.as_second() - then.as_second()
}
