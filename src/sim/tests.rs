//! Unit tests of `sim`: the pure parts (percentiles, node names, the text table) and the
//! controller child's settings.

use std::collections::BTreeMap;

use super::process::{MALLOC_MMAP_THRESHOLD, status_kib};
use super::*;

#[test]
fn the_controller_runs_with_the_allocator_setting_of_the_image() {
    let expected = format!("ENV MALLOC_MMAP_THRESHOLD_={MALLOC_MMAP_THRESHOLD}");
    let dockerfile = include_str!("../../Dockerfile");
    assert!(
        dockerfile.lines().any(|l| l.trim() == expected),
        "the Dockerfile lacks {expected:?}"
    );
}

#[test]
fn status_fields_are_read_by_exact_name_in_kib() {
    let status = "VmRSSX:\t1 kB\nRssAnon:\t   5120 kB\nVmRSS:\t  14336 kB\n";
    assert_eq!(status_kib(status, "VmRSS"), Some(14336));
    assert_eq!(status_kib(status, "RssAnon"), Some(5120));
    assert_eq!(status_kib(status, "RssFile"), None);
}

#[test]
fn nearest_rank_percentiles() {
    let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
    let l = latency(&mut samples);
    assert_eq!(
        l,
        Latency {
            p50: 50.0,
            p90: 90.0,
            p99: 99.0,
            max: 100.0
        }
    );
    assert_eq!(latency(&mut []), Latency::default());
    assert_eq!(latency(&mut [7.0]).p99, 7.0);
}

#[test]
fn kubelet_names_and_addresses_are_unique_and_dual_stack_on_request() {
    let specs = kubelet_specs(JOIN_PREFIX, 0, 300, true);
    let names: std::collections::BTreeSet<_> = specs.iter().map(|s| &s.name).collect();
    let ips: std::collections::BTreeSet<_> = specs.iter().map(|s| &s.node_ip[0]).collect();
    assert_eq!((names.len(), ips.len()), (300, 300));
    assert_eq!(specs[255].node_ip, vec!["10.0.1.0", "fd00::100"]);
    assert_eq!(
        kubelet_specs(JOIN_PREFIX, 0, 1, false)[0].node_ip,
        vec!["10.0.0.1"]
    );
}

#[test]
fn an_ip_offset_keeps_the_sets_apart() {
    let existing = kubelet_specs(EXISTING_PREFIX, 0, 10, false);
    let joining = kubelet_specs(JOIN_PREFIX, 10, 10, false);
    assert_eq!(existing[9].node_ip, vec!["10.0.0.10"]);
    assert_eq!(joining[0].node_ip, vec!["10.0.0.11"]);
    assert_eq!(joining[0].name, "sim-node-00000");
}

#[test]
fn text_summary_shows_the_floor_table_with_ratios() {
    let mut s = Summary {
        nodes: 2,
        initialized: 2,
        latency_ms: Latency {
            p50: 4.0,
            p90: 6.0,
            p99: 8.0,
            max: 8.0,
        },
        described_latency_ms: Latency::default(),
        makespan_ms: 10.0,
        requests_per_node: BTreeMap::new(),
        writes_per_node: BTreeMap::new(),
        conflicts: 0,
        controller_rss_bytes: 0,
        controller_rss_anon_bytes: 0,
        heartbeats_sent: 0,
        controller: true,
        existing_nodes: 0,
        ready_ms: Some(12.5),
        steady_state: None,
        floor: Some(FloorSummary {
            initialized: 2,
            latency_ms: Latency {
                p50: 2.0,
                p90: 3.0,
                p99: 4.0,
                max: 4.0,
            },
            described_latency_ms: Latency::default(),
            makespan_ms: 5.0,
            conflicts: 0,
        }),
        ratio: Some(Ratio {
            makespan: 2.0,
            p99: 2.0,
        }),
    };
    let text = render_text(&s);
    for line in [
        "  p99              8.0        4.0    2.00",
        "  makespan        10.0        5.0    2.00",
        "ready (/readyz) 12.5 ms",
    ] {
        assert!(text.contains(line), "{line:?} is not in {text}");
    }
    s.floor = None;
    let json = serde_json::to_value(&s).unwrap_or_default();
    assert_eq!(
        json["ratio"],
        serde_json::json!({"makespan": 2.0, "p99": 2.0})
    );
    assert!(json.get("floor").is_none());
}
