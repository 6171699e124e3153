//! Pure: whether a tainted k3s node must wait for k3s to describe it before it is
//! initialised (`k3sAgentWait`). Shared by the controller (which re-queues the node for
//! when the wait ends) and `explain` (which says so); `now` is always an argument.
//!
//! Real k3s registers a node in three steps, each a separate write:
//! 1. the kubelet creates the Node, with the uninitialized taint (and, with `--node-ip`,
//!    `alpha.kubernetes.io/provided-node-ip`; k3s passes `--node-ip` to the kubelet only for
//!    one family when the embedded CCM is disabled: k3s
//!    `pkg/daemons/agent/agent_linux.go`, `kubeletArgsAndConfig`);
//! 2. the k3s agent's `configureNode` (k3s `pkg/agent/run.go`) waits for the Node and
//!    updates it with `k3s.io/node-args`, which carries `--node-external-ip` and the
//!    dual-stack `--node-ip` (`pkg/nodeconfig/nodeconfig.go`, `SetNodeConfigAnnotations`);
//! 3. on a server, `setNodeLabelsAndAnnotations` (k3s `pkg/server/server.go`) adds
//!    `node-role.kubernetes.io/control-plane=true`, polling each second until the Node exists.
//!
//! Initialising after step 1 would drop the ExternalIP, refuse dual-stack nodes, and let an
//! inventory selector on a role label miss for good (providerID is immutable). So a node
//! from k3s waits, for at most `k3sAgentWait` after its registration; a node that is not
//! from k3s never waits.

use std::fmt;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

pub use crate::facts::is_k3s_node;

use crate::facts::NODE_ARGS;
use crate::node_view::NodeView;

/// The label the k3s server gives its own node, value "true" (k3s `pkg/util`,
/// `ControlPlaneRoleLabelKey`).
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The part of k3s's description a node still lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The agent has not written `k3s.io/node-args` yet.
    NodeArgs,
    /// node-args says `server`, and the server has not added its role label yet.
    ControlPlaneLabel,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::NodeArgs => write!(f, "annotation {NODE_ARGS} (written by the k3s agent)"),
            Missing::ControlPlaneLabel => {
                write!(f, "label {CONTROL_PLANE_LABEL} (written by the k3s server)")
            }
        }
    }
}

/// What k3s's description of a node means for initialising it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentWait {
    /// Not tainted, not a k3s node, or `k3sAgentWait` is 0: nothing to wait for.
    NotApplicable,
    /// k3s has described the node: initialise it.
    Described,
    /// Not initialised before `until` unless the description arrives first.
    Waiting {
        /// Registration plus `k3sAgentWait`.
        until: Timestamp,
        /// What has not arrived.
        missing: Missing,
    },
    /// The wait is over without the description: initialise with what is there, and warn.
    Expired {
        /// When the wait ended; `None` when the node has no creationTimestamp.
        until: Option<Timestamp>,
        /// What never arrived.
        missing: Missing,
    },
}

/// Decides for `node` at `now`, with `wait` = `k3sAgentWait`. The wait counts from the
/// node's creationTimestamp (the API server's clock; on k3s, bare-ccm runs on a server, so
/// both clocks are the same host's).
pub fn agent_wait(node: &NodeView, wait: Duration, now: Timestamp) -> AgentWait {
    let tainted = node.is_uninitialized();
    if !tainted || !node.k3s || wait.is_zero() {
        return AgentWait::NotApplicable;
    }
    let Some(missing) = missing(node) else {
        return AgentWait::Described;
    };
    let until = node.created.and_then(|created| {
        let wait = SignedDuration::try_from(wait).ok()?;
        created.checked_add(wait).ok()
    });
    match until {
        Some(until) if now < until => AgentWait::Waiting { until, missing },
        until => AgentWait::Expired { until, missing },
    }
}

fn missing(node: &NodeView) -> Option<Missing> {
    missing_from(
        node.annotations.get(NODE_ARGS).map(String::as_str),
        node.labels.contains_key(CONTROL_PLANE_LABEL),
    )
}

/// The first part of k3s's description a node lacks, from its node-args annotation (if
/// any) and whether it has the control-plane label. A node-args value that is not a JSON
/// array still counts as written: waiting would not fix it.
pub fn missing_from(node_args: Option<&str>, has_control_plane_label: bool) -> Option<Missing> {
    let Some(args) = node_args else {
        return Some(Missing::NodeArgs);
    };
    let is_server = serde_json::from_str::<Vec<serde_json::Value>>(args)
        .ok()
        .is_some_and(|a| a.first().and_then(serde_json::Value::as_str) == Some("server"));
    (is_server && !has_control_plane_label).then_some(Missing::ControlPlaneLabel)
}

impl AgentWait {
    /// How long until a waiting node must be looked at again (the watch event of the
    /// description normally comes sooner).
    pub fn retry_in(&self, now: Timestamp) -> Option<Duration> {
        let AgentWait::Waiting { until, .. } = self else {
            return None;
        };
        Some(Duration::try_from(until.duration_since(now)).unwrap_or_default())
    }

    /// Why a waiting node is not initialised yet, for `explain`.
    pub fn waiting_reason(&self, now: Timestamp) -> Option<String> {
        let AgentWait::Waiting { until, missing } = self else {
            return None;
        };
        let left = self.retry_in(now).unwrap_or_default().as_secs();
        Some(format!(
            "waiting for k3s to describe the node: {missing} is not there yet; initialised when it arrives, or at {until} ({left}s from now, k3sAgentWait after registration) with what is there"
        ))
    }

    /// The Warning for a node whose wait ran out, for the Event and `explain`.
    pub fn expired_warning(&self, node: &str, wait: Duration) -> Option<String> {
        let AgentWait::Expired { until, missing } = self else {
            return None;
        };
        let when = until.map_or_else(
            || "(the node has no creationTimestamp)".to_string(),
            |u| format!("(until {u})"),
        );
        let lost = match missing {
            Missing::NodeArgs => "its --node-external-ip and dual-stack --node-ip are unknown",
            Missing::ControlPlaneLabel => "inventory selectors on its role label did not match",
        };
        Some(format!(
            "k3s did not describe node {node} within k3sAgentWait ({}s) of its registration {when}: {missing} is missing, so it is initialised with what is there and {lost}; check k3s on the node (journalctl -u k3s or -u k3s-agent), raise k3sAgentWait, or set it to 0s if the node does not run k3s",
            wait.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{string_map, uninitialized};

    const T0: i64 = 1_800_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(T0 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// A node registered at T0 by a k3s kubelet, with the given annotations and labels.
    fn k3s_node(annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> NodeView {
        NodeView {
            name: "n1".into(),
            taints: vec![uninitialized()],
            created: Some(at(0)),
            k3s: true,
            annotations: string_map(annotations),
            labels: string_map(labels),
            ..NodeView::default()
        }
    }

    const AGENT_ARGS: (&str, &str) = (NODE_ARGS, r#"["agent","--node-ip","10.0.0.5"]"#);
    const SERVER_ARGS: (&str, &str) = (NODE_ARGS, r#"["server","--disable-cloud-controller"]"#);
    const ROLE: (&str, &str) = (CONTROL_PLANE_LABEL, "true");
    const WAIT: Duration = Duration::from_secs(30);

    #[test]
    fn the_decision_table() {
        let waiting = |missing| AgentWait::Waiting {
            until: at(30),
            missing,
        };
        let expired = |missing| AgentWait::Expired {
            until: Some(at(30)),
            missing,
        };
        let mut not_k3s = k3s_node(&[], &[]);
        not_k3s.k3s = false;
        let mut untainted = k3s_node(&[], &[]);
        untainted.taints.clear();
        let mut unknown_registration = k3s_node(&[], &[]);
        unknown_registration.created = None;
        let cases: Vec<(&str, NodeView, Duration, i64, AgentWait)> = vec![
            (
                "not from k3s: never waits",
                not_k3s,
                WAIT,
                1,
                AgentWait::NotApplicable,
            ),
            ("untainted", untainted, WAIT, 1, AgentWait::NotApplicable),
            (
                "k3sAgentWait: 0",
                k3s_node(&[], &[]),
                Duration::ZERO,
                1,
                AgentWait::NotApplicable,
            ),
            (
                "no node-args yet",
                k3s_node(&[], &[]),
                WAIT,
                1,
                waiting(Missing::NodeArgs),
            ),
            (
                "no node-args, wait over",
                k3s_node(&[], &[]),
                WAIT,
                30,
                expired(Missing::NodeArgs),
            ),
            (
                "agent described",
                k3s_node(&[AGENT_ARGS], &[]),
                WAIT,
                1,
                AgentWait::Described,
            ),
            (
                "server without its role label",
                k3s_node(&[SERVER_ARGS], &[]),
                WAIT,
                29,
                waiting(Missing::ControlPlaneLabel),
            ),
            (
                "server without its role label, wait over",
                k3s_node(&[SERVER_ARGS], &[]),
                WAIT,
                31,
                expired(Missing::ControlPlaneLabel),
            ),
            (
                "server described",
                k3s_node(&[SERVER_ARGS], &[ROLE]),
                WAIT,
                1,
                AgentWait::Described,
            ),
            (
                "node-args that is not JSON still counts as written",
                k3s_node(&[(NODE_ARGS, "--node-ip 10.0.0.5")], &[]),
                WAIT,
                1,
                AgentWait::Described,
            ),
            (
                "no creationTimestamp: the wait cannot be bounded, so it is over",
                unknown_registration,
                WAIT,
                1,
                AgentWait::Expired {
                    until: None,
                    missing: Missing::NodeArgs,
                },
            ),
        ];
        for (name, node, wait, now, expected) in cases {
            assert_eq!(agent_wait(&node, wait, at(now)), expected, "{name}");
        }
    }

    #[test]
    fn k3s_is_recognised_by_either_version() {
        assert!(is_k3s_node("v1.33.4+k3s1", "containerd://2.0.5-k3s1"));
        assert!(is_k3s_node("v1.33.4+k3s1", "docker://27.1.0"));
        assert!(is_k3s_node("v1.33.4", "containerd://2.0.5-k3s1"));
        assert!(!is_k3s_node("v1.33.4", "containerd://2.0.5"));
        assert!(!is_k3s_node("", ""));
    }

    #[test]
    fn a_waiting_node_is_retried_when_the_wait_ends() {
        let w = agent_wait(&k3s_node(&[], &[]), WAIT, at(12));
        assert_eq!(w.retry_in(at(12)), Some(Duration::from_secs(18)));
        assert_eq!(w.retry_in(at(40)), Some(Duration::ZERO));
        let reason = w.waiting_reason(at(12)).unwrap_or_default();
        assert!(reason.contains("annotation k3s.io/node-args"), "{reason}");
        assert!(reason.contains("18s from now"), "{reason}");
        assert_eq!(w.expired_warning("n1", WAIT), None);
        assert_eq!(AgentWait::Described.retry_in(at(0)), None);
    }

    #[test]
    fn an_expired_wait_names_what_is_missing_and_the_fix() {
        let w = agent_wait(&k3s_node(&[], &[]), WAIT, at(31));
        let text = w.expired_warning("n1", WAIT).unwrap_or_default();
        for part in [
            "k3s did not describe node n1 within k3sAgentWait (30s)",
            &format!("until {}", at(30)),
            "annotation k3s.io/node-args",
            "--node-external-ip",
            "k3sAgentWait",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        assert_eq!(w.waiting_reason(at(31)), None);
    }
}
