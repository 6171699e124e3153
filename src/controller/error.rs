//! Why a node sync failed, and what the worker does about it: every failure names the node
//! and the fix, maps to one of a fixed set of metric labels, and (for 403/422) to the
//! Warning Event that says what to grant or fix.

use std::time::Duration;

use super::events::{REASON_WRITE_FORBIDDEN, REASON_WRITE_REJECTED};
use super::grants::missing_grant;
use super::queue;

/// Why a node sync failed. Every variant names the node and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resolver reported errors; the node keeps its taint (or its addresses).
    #[error("node {node}: metadata cannot be resolved: {}", errors.join("; "))]
    Unresolved { node: String, errors: Vec<String> },
    /// Others kept changing the node between our read and our write.
    #[error(
        "node {node}: the write conflicted with other writers {attempts} times in a row; retrying with backoff"
    )]
    Conflict { node: String, attempts: u32 },
    /// This replica does not hold the lease (or its renewal is overdue).
    #[error("node {node}: not written, this replica does not hold the leader lease")]
    NotLeader { node: String },
    /// The API server refused or did not answer.
    #[error(
        "node {node}: {write} failed: {source}; check that the API server is reachable and that bare-ccm may get/patch nodes and nodes/status"
    )]
    Api {
        node: String,
        write: Write,
        #[source]
        source: kube::Error,
    },
}

/// Every value of [`Error::metric_label`], exported with a count of 0 from the start.
pub const SYNC_FAILURE_REASONS: [&str; 7] = [
    "unresolved",
    "conflict",
    "not_leader",
    "throttled",
    "api_server_error",
    "api_rejected",
    "api_unreachable",
];

/// A refusal that retrying soon cannot fix: what the Warning Event and the log say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The Warning reason ([`REASON_WRITE_FORBIDDEN`] or [`REASON_WRITE_REJECTED`]).
    pub reason: &'static str,
    /// The Event note and log message: what was refused and what to do.
    pub note: String,
}

impl Error {
    /// The refusal when the API server answered 403 Forbidden (RBAC) or 422 Invalid (a
    /// write it will never accept; a failed JSON-patch `test` is a conflict instead, see
    /// `sync::is_failed_test`). Retrying such a write every 30 s only repeats the refusal;
    /// it is retried with [`REJECTED_BACKOFF`].
    pub fn rejection(&self) -> Option<Rejection> {
        let Error::Api {
            write,
            source: kube::Error::Api(status),
            ..
        } = self
        else {
            return None;
        };
        match status.code {
            403 => {
                let fix = match missing_grant(&status.message) {
                    Some(grant) => format!(
                        "{} may not {} {} in API group {:?} {}: grant it, e.g. re-apply the ClusterRole bare-ccm of manifests/bare-ccm.yaml",
                        grant.user, grant.verb, grant.resource, grant.group, grant.scope
                    ),
                    None => "check bare-ccm's RBAC (re-apply manifests/bare-ccm.yaml)".into(),
                };
                Some(Rejection {
                    reason: REASON_WRITE_FORBIDDEN,
                    note: format!("{write} is forbidden: {fix}"),
                })
            }
            422 => Some(Rejection {
                reason: REASON_WRITE_REJECTED,
                note: format!(
                    "{write} was refused by the API server as invalid: {}",
                    status.message
                ),
            }),
            _ => None,
        }
    }

    /// A low-cardinality label for `bare_ccm_node_sync_failures_total{reason}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Unresolved { .. } => "unresolved",
            Error::Conflict { .. } => "conflict",
            Error::NotLeader { .. } => "not_leader",
            Error::Api { source, .. } => match source {
                kube::Error::Api(s) if s.code == 429 => "throttled",
                kube::Error::Api(s) if s.code >= 500 => "api_server_error",
                kube::Error::Api(_) => "api_rejected",
                _ => "api_unreachable",
            },
        }
    }
}

/// Which of the two writes a request is, for errors and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Addresses,
    Init,
    Labels,
    Read,
}

impl std::fmt::Display for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Write::Addresses => "writing status.addresses (nodes/status)",
            Write::Init => "removing the uninitialized taint",
            Write::Labels => "adding missing labels",
            Write::Read => "re-reading the node",
        })
    }
}

/// Upper bound of the per-node backoff after a failed write that may heal by itself (5xx,
/// conflicts, throttling, an unreachable server; 403 and 422 use [`REJECTED_BACKOFF`]).
/// Upstream's controllers cap at 1000 s (client-go
/// `util/workqueue/default_rate_limiters.go`, `DefaultControllerRateLimiter`: 5 ms
/// doubling to 1000 s); bare-ccm runs at bootstrap, where a node waiting minutes for a
/// retry is a node without networking (its pods cannot be scheduled while the taint
/// stays), so 30 s bounds both the retry rate during an outage and the delay after it.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Per-node backoff after a 403 or 422 ([`Error::rejection`]): 5 minutes, doubling up to
/// 1000 s. Nothing but a fix of the RBAC or of the node makes such a write succeed, so a
/// fast retry only repeats the refusal (and its log line) every 30 s forever. 1000 s is
/// upstream's per-item cap (client-go `util/workqueue/default_rate_limiters.go`,
/// `DefaultControllerRateLimiter`: `NewTypedItemExponentialFailureRateLimiter(5ms,
/// 1000s)`); 5 minutes is the pace of a repeated Warning Event ([`events::REPEAT_INTERVAL`],
/// client-go's spam filter). A change of the node still retries it at once.
pub const REJECTED_BACKOFF: queue::Backoff = queue::Backoff {
    base: Duration::from_secs(300),
    max: Duration::from_secs(1000),
};

/// When an unresolvable node is looked at again if neither it nor the config changed.
/// Issue 3 asks to retry such nodes when the node or the config changes, which the watch
/// and the config reload already do; this bounds a stuck fleet to one WARN line and one
/// resolution per node per 5 minutes, the pace of the repeated Warning event.
pub const UNRESOLVED_RETRY: Duration = Duration::from_secs(300);
