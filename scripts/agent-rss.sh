#!/usr/bin/env bash
# Measures the memory of `bare-ccm agent` (docs/performance.md, "bare-ccm agent memory"):
# the production binary (scripts/static-build.sh) runs as the DaemonSet runs it (UID 65532,
# no capabilities, the in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and a token
# bound to a Pod on its node in /var/run/secrets/kubernetes.io/serviceaccount) inside a
# test bed node's own network namespace (eth0 private, eth1 public), and its /proc status
# is read after its first publish, after an address change, and after a minute of steady
# state with a resync every two seconds (every resync reads the Node from the API server).
#
# Usage: scripts/agent-rss.sh [BINARY]     (default: the static build's binary)
#        AGENT_RSS_STEADY=600 scripts/agent-rss.sh    (ten minutes of steady state)
# Needs root (network namespaces), Go (the test bed) and kubectl.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/x86_64-unknown-linux-gnu/release/bare-ccm}"
[ -x "$bin" ] || { echo "agent-rss: $bin is missing: run scripts/static-build.sh" >&2; exit 2; }
"$root/scripts/testbed.sh" build >/dev/null
tb="$root/target/testbed/testbed"

work="$(mktemp -d)"
chmod 755 "$work"
state="$work/state"
kubeconfig="$work/admin.kubeconfig"
"$tb" up --hollow-nodes 0 --state-dir "$state" --kubeconfig-out "$kubeconfig" \
    --exit-with-pid $$ 2>"$work/up.log" &
up=$!
agent=""
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null || true
    kill "$up" 2>/dev/null || true
    wait "$up" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 300); do [ -f "$state/ready.json" ] && break; sleep 1; done
[ -f "$state/ready.json" ] || { cat "$work/up.log" >&2; exit 1; }
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }

joined="$("$tb" join --state-dir "$state" --nodes 1 --prefix rss --own-netns)"
node="$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])' <<<"$joined")"
netns="$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["netns"])' <<<"$joined")"
for _ in $(seq 60); do k get node "$node" >/dev/null 2>&1 && break; sleep 1; done

# The agent's ServiceAccount, RBAC and policy; a Pod of it on the node for a bound token.
# (Every document but the DaemonSet: this script runs the agent itself.)
python3 - "$root/manifests/bare-ccm-agent.yaml" <<'PY' | k apply -f - >/dev/null
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
print("\n---\n".join(d for d in docs if "\nkind: DaemonSet\n" not in d))
PY
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: agent-rss, namespace: kube-system}
spec:
  nodeName: $node
  serviceAccountName: bare-ccm-agent
  tolerations: [{operator: Exists}]
  containers: [{name: agent, image: ghcr.io/bare-ccm/bare-ccm:0.1.0, args: [agent]}]
EOF
token="$(k create token bare-ccm-agent -n kube-system --bound-object-kind Pod \
    --bound-object-name agent-rss --duration 1h)"
port="$(k config view --raw -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://')"
sa="$work/serviceaccount"
mkdir -p "$sa"
k config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$sa/ca.crt"
printf '%s' "$token" > "$sa/token"
printf 'kube-system' > "$sa/namespace"
chmod 755 "$sa"
chmod 644 "$sa"/*

# The pod's view: the service-account directory mounted where kube's in-cluster
# configuration reads it, in a mount namespace of the agent's own (over an empty /run, so
# that nothing is created on the host).
ip netns exec "$netns" unshare --mount --propagation private sh -c '
    mount -t tmpfs -o mode=755 none /run &&
    mkdir -p /run/secrets/kubernetes.io/serviceaccount &&
    mount --bind "$1" /run/secrets/kubernetes.io/serviceaccount &&
    shift && exec "$@"' sh "$sa" \
    env -u KUBECONFIG HOME=/nonexistent KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$port" \
    setpriv --reuid=65532 --regid=65532 --clear-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs \
    "$bin" agent --node-name "$node" --resync-interval 2s 2>"$work/agent.log" &
agent=$!
# `sh` and `setpriv` exec the agent: the pid is the agent's once it runs.
for _ in $(seq 50); do
    [ "$(readlink "/proc/$agent/exe" 2>/dev/null)" = "$bin" ] && break
    sleep 0.1
done

show() {
    local fields
    fields="$(grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|Threads)' "/proc/$agent/status" | tr -s ' \t' ' ' | tr '\n' ' ')"
    printf '%-32s %s\n' "$1:" "$fields"
}
annotation() { k get node "$node" -o jsonpath='{.metadata.annotations.bare-ccm\.io/interfaces}'; }
for _ in $(seq 100); do [ -n "$(annotation)" ] && break; sleep 0.1; done
[ -n "$(annotation)" ] || { cat "$work/agent.log" >&2; exit 1; }
echo "binary: $bin ($(wc -c <"$bin") bytes); annotation: $(annotation)"
show "after the first publish"
"$tb" address --state-dir "$state" --node "$node" --link eth1 --add 198.19.0.9 >/dev/null
sleep 3
echo "annotation: $(annotation)"
show "after an address change"
# AGENT_RSS_STEADY: seconds of steady state (default 60), shown each minute.
steady="${AGENT_RSS_STEADY:-60}"
for t in $(seq 60 60 "$steady"); do
    sleep 60
    show "after $t s (a resync every 2 s)"
done
if [ -n "${AGENT_RSS_DETAIL:-}" ]; then
    # Resident kB per mapping, largest first.
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6 " " $2 } /^Rss:/ { if ($2 > 0) print $2, name }' \
        "/proc/$agent/smaps" | sort -rn | head -12
fi
