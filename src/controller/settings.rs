//! The controller's tunables, from `run`'s flags.

use std::time::Duration;

/// Tunables of the controller (from `run`'s flags).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Concurrent workers (`--concurrent-node-syncs`).
    pub workers: usize,
    /// Full re-queue period (`--node-status-update-frequency`).
    pub resync: Duration,
    /// Delay before retrying a node refused for lack of leadership.
    pub not_leader_retry: Duration,
}
