#!/usr/bin/env bash
# The benchmarks of docs/performance.md, one at a time (they share the machine's cores),
# against a release build. Each run's JSON summary goes to target/bench/NAME.json, and a
# one-line digest is printed. Usage: scripts/bench.sh [NAME...] (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/bare-ccm
out=target/bench
mkdir -p "$out"

run() {
    local name=$1
    shift
    echo "== $name: bare-ccm sim $*" >&2
    "$bin" sim "$@" -o json >"$out/$name.json"
    python3 - "$out/$name.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
l, f, r = s["latencyMs"], s.get("floor"), s.get("ratio")
line = f'{s["initialized"]}/{s["nodes"]} p50 {l["p50"]:.1f} p99 {l["p99"]:.1f} makespan {s["makespanMs"]:.1f} ms'
if f:
    line += f' | floor p50 {f["latencyMs"]["p50"]:.1f} p99 {f["latencyMs"]["p99"]:.1f} makespan {f["makespanMs"]:.1f} | ratio makespan {r["makespan"]:.2f} p99 {r["p99"]:.2f}'
line += f' | rss {s["controllerRssBytes"]/1048576:.1f} MiB (anon {s["controllerRssAnonBytes"]/1048576:.1f} MiB)'
if "readyMs" in s:
    line += f' | ready {s["readyMs"]:.0f} ms'
if "steadyState" in s:
    line += f' | steady {s["steadyState"]}'
line += f' | req/node {s["requestsPerNode"]} writes/node {s["writesPerNode"]} conflicts {s["conflicts"]}'
print(line)
PY
}

all=(burst-1 burst-100 burst-1000 burst-5000 burst-5000-w32 rss-0 rss-1000 rss-5000 rss-10000 steady-1000 serial-1000 upstream-100)
for name in "${@:-${all[@]}}"; do
    case $name in
        burst-*-w*) n=${name#burst-}
            run "$name" --nodes "${n%-w*}" --floor --timeout 300s --controller-arg=--concurrent-node-syncs="${n#*-w}" ;;
        burst-*) run "$name" --nodes "${name#burst-}" --floor --timeout 300s ;;
        rss-*) run "$name" --nodes 0 --existing-nodes "${name#rss-}" --steady-state 10s --timeout 300s ;;
        steady-1000) run "$name" --nodes 1000 --steady-state 30s --heartbeat-period 10s ;;
        serial-1000) run "$name" --nodes 1000 --floor --timeout 300s --controller-arg=--concurrent-node-syncs=1 ;;
        upstream-100) run "$name" --nodes 100 --floor --timeout 300s --controller-arg=--concurrent-node-syncs=1 \
            --controller-arg=--kube-api-qps=20 --controller-arg=--kube-api-burst=30 ;;
        *) echo "unknown benchmark $name" >&2; exit 2 ;;
    esac
done
