//! What `sim` measured and how it is printed: the [`Summary`] (`-o json` prints it as
//! is), its latency percentiles and the text table.

use std::collections::BTreeMap;

use serde::Serialize;

/// Registration-to-taint-removal latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What `sim` measured; `-o json` prints it as is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub nodes: usize,
    pub initialized: usize,
    pub latency_ms: Latency,
    /// From the k3s agent's node-args update to the taint removal: the part of
    /// `latency_ms` that is not k3s's.
    pub described_latency_ms: Latency,
    /// From the first registration to the last taint removal.
    pub makespan_ms: f64,
    /// The controller's API requests per joining node, by verb, from its start until it
    /// fell quiet after the burst (its initial list and watch, and the trailing Events,
    /// included).
    pub requests_per_node: BTreeMap<String, f64>,
    /// The controller's successful writes per joining node, by resource (`nodes`,
    /// `nodes/status`, `events`).
    pub writes_per_node: BTreeMap<String, f64>,
    /// 409 Conflict answers to the controller's writes.
    pub conflicts: u64,
    /// Resident memory of the controller process at the end (`VmRSS`), 0 without a
    /// controller. It includes file pages of the executable, shared with this process.
    pub controller_rss_bytes: u64,
    /// The anonymous part of that resident memory (`RssAnon`): the controller's own heap
    /// and stacks, without the shared executable pages.
    pub controller_rss_anon_bytes: u64,
    pub heartbeats_sent: u64,
    pub controller: bool,
    /// Nodes that existed before the controller started.
    pub existing_nodes: usize,
    /// From starting the controller process to its first `/readyz` 200.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<SteadyState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<FloorSummary>,
    /// bare-ccm divided by the floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
}

/// The quiet period after initialisation (measured once the controller's trailing Events
/// are sent): every node heartbeats, nothing else happens.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SteadyState {
    pub seconds: f64,
    /// Heartbeats the kubelets sent in the window.
    pub heartbeats: u64,
    /// The controller's writes in the window to nodes, nodes/status and events (its Lease
    /// renewals are not counted); the goal is 0.
    pub controller_writes: u64,
}

/// The floor's measurements of the same burst.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FloorSummary {
    pub initialized: usize,
    pub latency_ms: Latency,
    pub described_latency_ms: Latency,
    pub makespan_ms: f64,
    pub conflicts: u64,
}

/// bare-ccm's makespan and p99 latency divided by the floor's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ratio {
    pub makespan: f64,
    pub p99: f64,
}

/// Percentiles by the nearest-rank method over `samples` (milliseconds).
pub fn latency(samples: &mut [f64]) -> Latency {
    if samples.is_empty() {
        return Latency::default();
    }
    samples.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let idx = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[idx.clamp(1, samples.len()) - 1]
    };
    Latency {
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: samples[samples.len() - 1],
    }
}

/// `a / b`, 0 when there is nothing to divide by.
pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The human-readable summary.
pub fn render_text(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "nodes initialised: {}/{}{}",
        s.initialized,
        s.nodes,
        if s.controller {
            ""
        } else {
            " (no controller: nodes stay tainted)"
        }
    );
    if let Some(ready) = s.ready_ms {
        let _ = writeln!(
            out,
            "controller ready (/readyz) {ready:.1} ms after start, with {} existing nodes",
            s.existing_nodes
        );
    }
    match (&s.floor, &s.ratio) {
        (Some(f), Some(r)) => {
            let _ = writeln!(out, "registration -> taint removal (ms):");
            let _ = writeln!(
                out,
                "            {:>10} {:>10} {:>7}",
                "bare-ccm", "floor", "ratio"
            );
            let (b, fl) = (&s.latency_ms, &f.latency_ms);
            for (name, x, y) in [
                ("p50", b.p50, fl.p50),
                ("p90", b.p90, fl.p90),
                ("p99", b.p99, fl.p99),
                ("max", b.max, fl.max),
                ("makespan", s.makespan_ms, f.makespan_ms),
            ] {
                let _ = writeln!(out, "  {name:<9} {x:>10.1} {y:>10.1} {:>7.2}", ratio(x, y));
            }
            let (b, fl) = (&s.described_latency_ms, &f.described_latency_ms);
            let _ = writeln!(
                out,
                "k3s node-args update -> taint removal (ms): p50 {:.1} / {:.1}, p99 {:.1} / {:.1} (bare-ccm / floor)",
                b.p50, fl.p50, b.p99, fl.p99
            );
            let _ = writeln!(
                out,
                "floor: {}/{} initialised, {} conflicts; ratio makespan {:.2}, p99 {:.2}",
                f.initialized, s.nodes, f.conflicts, r.makespan, r.p99
            );
        }
        _ => {
            let l = &s.latency_ms;
            let _ = writeln!(
                out,
                "registration -> taint removal: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.p50, l.p90, l.p99, l.max
            );
            let d = &s.described_latency_ms;
            let _ = writeln!(
                out,
                "k3s node-args update -> taint removal: p50 {:.1} ms, p99 {:.1} ms",
                d.p50, d.p99
            );
            let _ = writeln!(out, "makespan: {:.1} ms", s.makespan_ms);
        }
    }
    let reqs: Vec<String> = s
        .requests_per_node
        .iter()
        .map(|(v, n)| format!("{v} {n:.2}"))
        .collect();
    let _ = writeln!(out, "controller API requests per node: {}", reqs.join(", "));
    let writes: Vec<String> = s
        .writes_per_node
        .iter()
        .map(|(v, n)| format!("{v} {n:.2}"))
        .collect();
    let _ = writeln!(
        out,
        "controller writes per node: {}; conflicts: {}",
        writes.join(", "),
        s.conflicts
    );
    if let Some(st) = &s.steady_state {
        let _ = writeln!(
            out,
            "steady state {:.0} s: {} heartbeats, {} controller writes",
            st.seconds, st.heartbeats, st.controller_writes
        );
    }
    let _ = writeln!(
        out,
        "controller RSS: {:.1} MiB (anonymous {:.1} MiB); heartbeats sent: {}",
        s.controller_rss_bytes as f64 / (1024.0 * 1024.0),
        s.controller_rss_anon_bytes as f64 / (1024.0 * 1024.0),
        s.heartbeats_sent
    );
    out
}
