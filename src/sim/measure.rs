//! Reading a run off the emulator's accounting: when the burst is initialised and the
//! controller quiet, the latency of a set of nodes, and the controller's requests and
//! writes per node.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bare_ccm_emulator::Emulator;

use super::summary::{Latency, latency};

/// The simulated kubelets' user.
const KUBELET_USER: &str = "system:node:sim";

/// How long the controller must have been silent before a steady state is measured.
const QUIET: Duration = Duration::from_secs(1);

/// Waits until the controller has written nothing but its Lease for [`QUIET`] (the Events
/// of the burst may trail the initialisations), or `limit`; returns when the quiet began.
pub(super) async fn wait_quiet(emulator: &Emulator, user: &str, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        let last = emulator
            .accounting()
            .writes()
            .iter()
            .rev()
            .find(|w| w.user == user && w.resource != "leases")
            .map(|w| w.at);
        let now = Instant::now();
        match last {
            Some(at) if now.duration_since(at) < QUIET && now < deadline => {}
            _ => return now,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `count` nodes named `prefix*` lost the uninitialized taint, or `limit`.
pub(super) async fn wait_initialised(
    emulator: &Emulator,
    prefix: &str,
    count: usize,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while count_initialized(emulator, prefix) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) fn count_initialized(emulator: &Emulator, prefix: &str) -> usize {
    emulator
        .accounting()
        .node_times()
        .iter()
        .filter(|(name, t)| name.starts_with(prefix) && t.taint_removed.is_some())
        .count()
}

/// What [`measure`] finds for one set of nodes.
pub(super) struct Measured {
    pub(super) latency: Latency,
    pub(super) described_latency: Latency,
    pub(super) makespan_ms: f64,
    pub(super) initialized: usize,
}

/// Latency percentiles (from registration, and from the k3s agent's node-args update),
/// makespan and count of the nodes named `prefix*` that lost the uninitialized taint.
pub(super) fn measure(emulator: &Emulator, prefix: &str) -> Measured {
    let described: HashMap<String, Instant> = emulator
        .accounting()
        .writes()
        .into_iter()
        .filter(|w| {
            w.user == KUBELET_USER
                && w.verb == "update"
                && w.resource == "nodes"
                && (200..300).contains(&w.code)
                && w.name.starts_with(prefix)
        })
        .map(|w| (w.name, w.at))
        .collect();
    let node_times = emulator.accounting().node_times();
    let mut from_described: Vec<f64> = node_times
        .iter()
        .filter_map(|(name, t)| {
            let at = described.get(name)?;
            Some(t.taint_removed?.saturating_duration_since(*at))
        })
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let times = node_times;
    let times: Vec<_> = times
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, t)| t)
        .collect();
    let mut samples: Vec<f64> = times
        .iter()
        .filter_map(|t| Some(t.taint_removed?.saturating_duration_since(t.registered?)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let first = times.iter().filter_map(|t| t.registered).min();
    let last = times.iter().filter_map(|t| t.taint_removed).max();
    let makespan_ms = match (first, last) {
        (Some(f), Some(l)) => l.saturating_duration_since(f).as_secs_f64() * 1000.0,
        _ => 0.0,
    };
    let initialized = samples.len();
    Measured {
        latency: latency(&mut samples),
        described_latency: latency(&mut from_described),
        makespan_ms,
        initialized,
    }
}

/// The requests of `user` so far, by (verb, status code).
pub(super) fn requests_by(emulator: &Emulator, user: &str) -> BTreeMap<(String, u16), u64> {
    let mut out = BTreeMap::new();
    for (r, n) in emulator.accounting().attributed_requests() {
        if r.user == user {
            *out.entry((r.verb, r.code)).or_insert(0) += n;
        }
    }
    out
}
