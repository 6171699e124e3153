#!/usr/bin/env bash
# bare-ccm side by side with the upstream cloud-node controller (at its defaults and
# tuned) and the floor, on the real control plane (tests/testbed): each in turn meets a
# fresh burst of N nodes joining at once; one watch-based observer times them all
# (docs/performance.md, "On the real control plane").
#
#   scripts/bench-real.sh --nodes N [--datastore etcd|sqlite] [--kubelets hollow|fleet] [-o json]
#                         [--contestants bare-ccm,upstream-default,upstream-tuned,floor]
#
# Exit status 1 when any contestant leaves a node tainted. Runs as root (the test bed
# creates a network namespace). BARE_CCM selects the binary (default: a release build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

args=()
while [ $# -gt 0 ]; do
    case "$1" in
        -o) [ "${2:-}" = json ] || { echo "bench-real: -o takes json" >&2; exit 2; }
            args+=(--json); shift 2 ;;
        -o=json|--output=json) args+=(--json); shift ;;
        --nodes|--datastore|--kubelets|--contestants|--timeout)
            [ $# -ge 2 ] || { echo "bench-real: $1 needs a value" >&2; exit 2; }
            args+=("$1" "$2"); shift 2 ;;
        --nodes=*|--datastore=*|--kubelets=*|--contestants=*|--timeout=*) args+=("$1"); shift ;;
        *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done

scripts/testbed.sh build
if [ -z "${BARE_CCM:-}" ]; then
    cargo build --release --quiet
    BARE_CCM="$root/target/release/bare-ccm"
fi
exec target/testbed/testbed bench --bare-ccm "$BARE_CCM" --fleet "$BARE_CCM" \
    --manifest "$root/manifests/bare-ccm.yaml" "${args[@]}"
