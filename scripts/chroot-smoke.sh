#!/bin/sh
# Proves the production binary runs in an empty root, as it does in the `scratch` image:
# a directory holding only the static binary, the CA bundle and a sample Node. Docker
# cannot run on the build machines, so this chroot stands in for the image here;
# scripts/prove-image.sh then proves the image archive itself (umoci, containerd).
#
# Checks:
#   1. `bare-ccm --version` exits 0;
#   2. `bare-ccm explain --node /node.json -o json` on docs/examples/node-k3s-agent.json
#      exits 0 and resolves the node's InternalIP from its k3s node-args;
#   3. the kubeconfig of manifests/bare-ccm-kubeadm.yaml works from the empty root: with
#      the service-account CA and token files added where Kubernetes mounts them,
#      `bare-ccm explain --node NAME` reads the node (and the manifest's ConfigMap, the
#      config explain then uses) over TLS from a loopback server whose
#      certificate, like kubeadm's, names "kubernetes" but not 127.0.0.1. This proves TLS,
#      tls-server-name and tokenFile handling in the static binary without DNS or libc
#      files, and the control run without tls-server-name must fail.
# Prints the binary size. Needs root (chroot(2) needs CAP_SYS_CHROOT), python3 (JSON
# checks, the test server) and openssl (its certificates).
#
# Usage: scripts/chroot-smoke.sh            (builds with scripts/static-build.sh first)
set -eu

cd "$(dirname "$0")/.."

fail() {
    echo "chroot-smoke: FAIL: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "must run as root (chroot needs CAP_SYS_CHROOT)"

command -v openssl > /dev/null 2>&1 || fail "openssl is needed (apt-get install openssl)"

build_log=$(mktemp)
root=$(mktemp -d)
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2> /dev/null || true; fi
    rm -rf "$root" "$work" "$build_log"
}
trap cleanup EXIT

scripts/static-build.sh > "$build_log" 2>&1 || { cat "$build_log" >&2; fail "static build failed"; }
bin=$(sed -n 's/^binary: //p' "$build_log")
size_line=$(sed -n 's/^size: //p' "$build_log")
[ -n "$bin" ] || { cat "$build_log" >&2; fail "static build printed no binary path"; }

ca=/etc/ssl/certs/ca-certificates.crt
node_json=docs/examples/node-k3s-agent.json
expected_ip=10.0.0.21
[ -f "$ca" ] || fail "CA bundle $ca not found (install the ca-certificates package)"
[ -f "$node_json" ] || fail "sample node $node_json not found"

# The whole root filesystem: nothing else, in particular no /lib, no loader, no shell.
mkdir -p "$root/etc/ssl/certs"
cp "$bin" "$root/bare-ccm"
cp "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
cp "$node_json" "$root/node.json"
echo "empty root: $(cd "$root" && find . -type f | sort | tr '\n' ' ')"

version=$(chroot "$root" /bare-ccm --version) || fail "'bare-ccm --version' exited $? in the empty root"
echo "version: $version"

rc=0
chroot "$root" /bare-ccm explain --node /node.json -o json > "$root/explain.json" || rc=$?
[ "$rc" -eq 0 ] || { cat "$root/explain.json" >&2; fail "'bare-ccm explain' exited $rc in the empty root (want 0)"; }

python3 - "$root/explain.json" "$expected_ip" <<'PY' || fail "explain output does not match the sample node"
import json, sys

path, expected_ip = sys.argv[1], sys.argv[2]
with open(path) as f:
    out = json.load(f)
problems = []
if out.get("node") != "k3s-agent-1":
    problems.append(f"node is {out.get('node')!r}, want 'k3s-agent-1'")
if out.get("wouldInitialize") is not True:
    problems.append(f"wouldInitialize is {out.get('wouldInitialize')!r}, want true; errors: {out.get('errors')}")
internal = [a for a in out.get("addresses", []) if a.get("type") == "InternalIP"]
if not internal or internal[0].get("address") != expected_ip:
    problems.append(f"first InternalIP is {internal[:1]}, want {expected_ip}")
elif internal[0].get("source") != "k3s-node-args":
    problems.append(f"InternalIP source is {internal[0].get('source')!r}, want 'k3s-node-args'")
for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "explain: InternalIP $expected_ip from k3s-node-args, wouldInitialize=true"

# --- 3. the kubeadm manifest's kubeconfig, from the empty root ---------------------------
# A CA and a serving certificate shaped like kubeadm's: DNS names kubernetes*, the Service
# IP, no 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=smoke-ca \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2> /dev/null || fail "openssl: cannot make the CA"
openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver \
    -keyout "$work/srv.key" -out "$work/srv.csr" 2> /dev/null || fail "openssl: cannot make the CSR"
printf 'subjectAltName=DNS:kubernetes,DNS:kubernetes.default,IP:10.96.0.1\nextendedKeyUsage=serverAuth\n' > "$work/ext.cnf"
openssl x509 -req -days 1 -in "$work/srv.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -extfile "$work/ext.cnf" -out "$work/srv.crt" 2> /dev/null \
    || fail "openssl: cannot sign the serving certificate"
token=smoke-token-$$
printf '%s' "$token" > "$work/token"

# A loopback HTTPS server that answers, for the right token only, GET of the node
# k3s-agent-1 and of the ConfigMap kube-system/bare-ccm-config (explain --node NAME reads
# the running controller's config from it: here the kubeadm manifest's own ConfigMap); it
# stops by itself after 60 s.
python3 - "$work" "$token" "$node_json" manifests/bare-ccm-kubeadm.yaml > "$work/server.log" 2>&1 <<'PY' &
import http.server, json, ssl, sys, time
work, token, node_json, manifest = sys.argv[1:5]
node = open(node_json, "rb").read()
# config.yaml of the manifest's ConfigMap: the block under "  config.yaml: |", indented 4.
lines = open(manifest).read().split("\n")
config = []
for line in lines[lines.index("  config.yaml: |") + 1:]:
    if line.startswith("    ") or line == "":
        config.append(line[4:])
    else:
        break
config_map = json.dumps({"kind": "ConfigMap", "apiVersion": "v1",
    "metadata": {"name": "bare-ccm-config", "namespace": "kube-system"},
    "data": {"config.yaml": "\n".join(config).strip() + "\n"}}).encode()
objects = {"/api/v1/nodes/k3s-agent-1": node,
           "/api/v1/namespaces/kube-system/configmaps/bare-ccm-config": config_map}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        found = objects.get(self.path.split("?")[0])
        ok = found is not None and self.headers.get("Authorization") == "Bearer " + token
        body = found if ok else b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":401,"reason":"Unauthorized"}'
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(work + "/srv.crt", work + "/srv.key")
server.socket = tls.wrap_socket(server.socket, server_side=True)
server.timeout = 0.5
with open(work + "/port", "w") as f:
    f.write(str(server.server_address[1]))
deadline = time.time() + 60
while time.time() < deadline:
    try:
        server.handle_request()
    except Exception:
        pass
PY
server_pid=$!
i=0
while [ ! -s "$work/port" ]; do
    i=$((i + 1))
    [ "$i" -le 50 ] || { cat "$work/server.log" >&2; fail "the test API server did not start"; }
    sleep 0.1
done
port=$(cat "$work/port")

# The kubeconfig exactly as the kubeadm manifest ships it, only the port changed.
python3 - manifests/bare-ccm-kubeadm.yaml "$port" > "$root/kubeconfig" <<'PY' || fail "cannot extract the kubeconfig from manifests/bare-ccm-kubeadm.yaml"
import sys
text, port = open(sys.argv[1]).read(), sys.argv[2]
# The kubeconfig is the block under "kubeconfig: |" in the ConfigMap, indented 4 spaces.
lines = text.split("\n")
start = lines.index("  kubeconfig: |") + 1
block = []
for line in lines[start:]:
    if line.startswith("    ") or line == "":
        block.append(line[4:])
    else:
        break
out = "\n".join(block).strip() + "\n"
assert "https://127.0.0.1:6443" in out, "the kubeconfig no longer points at 127.0.0.1:6443"
sys.stdout.write(out.replace("https://127.0.0.1:6443", "https://127.0.0.1:" + port))
PY
sa="$root/var/run/secrets/kubernetes.io/serviceaccount"
mkdir -p "$sa"
cp "$work/ca.crt" "$sa/ca.crt"
cp "$work/token" "$sa/token"

rc=0
chroot "$root" /bare-ccm explain --node k3s-agent-1 --kubeconfig /kubeconfig -o json \
    > "$root/explain-remote.json" 2> "$work/explain-remote.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$work/explain-remote.err" >&2; fail "explain through the kubeadm kubeconfig exited $rc (want 0)"; }
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("node")=="k3s-agent-1" else 1)' \
    "$root/explain-remote.json" || fail "explain through the kubeadm kubeconfig returned the wrong node"
echo "kubeadm kubeconfig: node read over TLS as \"kubernetes\" from 127.0.0.1:$port, token accepted"

# Control: the same kubeconfig without tls-server-name must be refused, or the check above
# proves nothing.
grep -v 'tls-server-name' "$root/kubeconfig" > "$root/kubeconfig-plain"
if chroot "$root" /bare-ccm explain --node k3s-agent-1 --kubeconfig /kubeconfig-plain -o json \
    > /dev/null 2> "$work/control.err"; then
    fail "without tls-server-name the certificate was accepted for 127.0.0.1: the test server is wrong"
fi
grep -q "not valid for name" "$work/control.err" \
    || { cat "$work/control.err" >&2; fail "the control run failed for another reason than the certificate name"; }
echo "kubeadm kubeconfig control: without tls-server-name the certificate is refused for 127.0.0.1"

echo "binary size: $size_line"
echo "chroot-smoke: OK"
