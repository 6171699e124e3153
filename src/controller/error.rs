//! Why a node sync failed, and what the worker does about it: every failure names the node
//! and the fix, maps to one of a fixed set of metric labels, and (for 403/422) to the
//! Warning Event that says what to grant or fix.

use std::time::Duration;

use super::events::{REASON_WRITE_FORBIDDEN, REASON_WRITE_REJECTED};
use super::grants::missing_grant;
use super::queue;
use super::settings::Settings;

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

    /// What the worker does with the node: the retry policy as a value.
    pub fn retry(&self, settings: &Settings) -> Retry {
        match self {
            Error::NotLeader { .. } => Retry::After(settings.not_leader_retry),
            Error::Unresolved { .. } => Retry::Park(UNRESOLVED_RETRY),
            _ => self.rejection().map_or(Retry::Backoff, Retry::Refused),
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

/// What the worker does with a node whose sync failed ([`Error::retry`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retry {
    /// This replica does not lead: look again after this long, the backoff untouched.
    After(Duration),
    /// Only a change of the node or the config can fix it, and a change re-queues the node
    /// (watch, config reload): forget the failures and look again after this long, a
    /// safety net rather than the mechanism.
    Park(Duration),
    /// Refused for good until someone fixes the RBAC or the node: back off with
    /// [`REJECTED_BACKOFF`] and say so in a Warning Event.
    Refused(Rejection),
    /// A failure that may heal by itself: the per-node backoff up to [`MAX_BACKOFF`].
    Backoff,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::grants::{MissingGrant, forbidden_hint, missing_grant};

    fn api(code: u16) -> Error {
        Error::Api {
            node: "n".into(),
            write: Write::Addresses,
            source: kube::Error::Api(
                kube::core::Status::failure("x", "y")
                    .with_code(code)
                    .boxed(),
            ),
        }
    }

    fn api_with(code: u16, message: &str) -> Error {
        Error::Api {
            node: "n1".into(),
            write: Write::Addresses,
            source: kube::Error::Api(
                kube::core::Status::failure(message, "Forbidden")
                    .with_code(code)
                    .boxed(),
            ),
        }
    }

    const FORBIDDEN: &str = r#"nodes "n1" is forbidden: User "system:serviceaccount:kube-system:bare-ccm" cannot patch resource "nodes/status" in API group "" at the cluster scope"#;

    #[test]
    fn a_403_names_the_missing_verb_resource_and_user() {
        assert_eq!(
            missing_grant(FORBIDDEN),
            Some(MissingGrant {
                user: "system:serviceaccount:kube-system:bare-ccm".into(),
                verb: "patch".into(),
                resource: "nodes/status".into(),
                group: "".into(),
                scope: "at the cluster scope".into(),
            })
        );
        let lease = r#"leases.coordination.k8s.io "bare-ccm" is forbidden: User "u" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system""#;
        let grant = missing_grant(lease).unwrap();
        assert_eq!(
            (
                grant.verb.as_str(),
                grant.resource.as_str(),
                grant.group.as_str()
            ),
            ("update", "leases", "coordination.k8s.io")
        );
        assert_eq!(grant.scope, r#"in the namespace "kube-system""#);
        assert_eq!(missing_grant("forbidden"), None);

        let rejection = api_with(403, FORBIDDEN).rejection().unwrap();
        assert_eq!(rejection.reason, "WriteForbidden");
        assert_eq!(
            rejection.note,
            r#"writing status.addresses (nodes/status) is forbidden: system:serviceaccount:kube-system:bare-ccm may not patch nodes/status in API group "" at the cluster scope: grant it, e.g. re-apply the ClusterRole bare-ccm of manifests/bare-ccm.yaml"#
        );
    }

    #[test]
    fn only_403_and_422_are_rejections() {
        assert_eq!(
            api_with(422, "Node \"n1\" is invalid: x")
                .rejection()
                .map(|r| r.reason),
            Some("WriteRejected")
        );
        for code in [400, 409, 429, 500, 503] {
            assert_eq!(api_with(code, "x").rejection(), None, "{code}");
        }
        let unreachable = Error::Api {
            node: "n".into(),
            write: Write::Init,
            source: kube::Error::TlsRequired,
        };
        assert_eq!(unreachable.rejection(), None);
    }

    #[test]
    fn rbac_advice_only_for_a_403() {
        let forbidden = kube::Error::Api(
            kube::core::Status::failure(FORBIDDEN, "Forbidden")
                .with_code(403)
                .boxed(),
        );
        let hint = forbidden_hint(&forbidden).unwrap();
        assert!(hint.contains("may not patch nodes/status"), "{hint}");
        let refused = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        )));
        assert_eq!(forbidden_hint(&refused), None);
        let unavailable = kube::Error::Api(
            kube::core::Status::failure("x", "ServiceUnavailable")
                .with_code(503)
                .boxed(),
        );
        assert_eq!(forbidden_hint(&unavailable), None);
    }

    #[test]
    fn rejections_back_off_from_five_minutes_to_upstreams_1000_seconds() {
        assert_eq!(REJECTED_BACKOFF.delay(1), Duration::from_secs(300));
        assert_eq!(REJECTED_BACKOFF.delay(2), Duration::from_secs(600));
        assert_eq!(REJECTED_BACKOFF.delay(3), Duration::from_secs(1000));
        assert_eq!(REJECTED_BACKOFF.delay(30), Duration::from_secs(1000));
    }

    #[test]
    fn every_failure_label_is_exported_from_the_start() {
        let errors = [
            Error::Unresolved {
                node: "n".into(),
                errors: vec!["no IP".into()],
            },
            Error::Conflict {
                node: "n".into(),
                attempts: 6,
            },
            Error::NotLeader { node: "n".into() },
            api(429),
            api(503),
            api(422),
            Error::Api {
                node: "n".into(),
                write: Write::Init,
                source: kube::Error::TlsRequired,
            },
        ];
        let mut labels: Vec<&str> = errors.iter().map(Error::metric_label).collect();
        labels.sort_unstable();
        let mut expected = SYNC_FAILURE_REASONS;
        expected.sort_unstable();
        assert_eq!(labels, expected);
    }

    #[test]
    fn each_failure_has_its_retry() {
        let settings = Settings {
            workers: 1,
            resync: Duration::from_secs(60),
            not_leader_retry: Duration::from_secs(2),
        };
        let forbidden = api_with(403, FORBIDDEN);
        let rows = [
            (
                Error::NotLeader { node: "n".into() },
                Retry::After(Duration::from_secs(2)),
            ),
            (
                Error::Unresolved {
                    node: "n".into(),
                    errors: vec!["no IP".into()],
                },
                Retry::Park(UNRESOLVED_RETRY),
            ),
            (
                Error::Conflict {
                    node: "n".into(),
                    attempts: 6,
                },
                Retry::Backoff,
            ),
            (api(503), Retry::Backoff),
            (api(429), Retry::Backoff),
            (
                api(422),
                Retry::Refused(
                    api(422)
                        .rejection()
                        .unwrap_or_else(|| panic!("422 refuses")),
                ),
            ),
            (
                api_with(403, FORBIDDEN),
                Retry::Refused(
                    forbidden
                        .rejection()
                        .unwrap_or_else(|| panic!("403 refuses")),
                ),
            ),
        ];
        for (error, want) in rows {
            assert_eq!(error.retry(&settings), want, "{error}");
        }
    }
}
