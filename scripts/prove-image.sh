#!/usr/bin/env bash
# Proves the image archive of scripts/build-image.sh with third-party tools, as CI does:
#
#   1. reproducible: a second build into another directory gives the same bytes;
#   2. skopeo inspect (and inspect --config) shows the entrypoint /bare-ccm, the command
#      run, user 65532:65532, the environment (MALLOC_MMAP_THRESHOLD_=131072 among it) and
#      linux/amd64; the whole configuration equals the Dockerfile's
#      (scripts/image-spec.py check-config); index.json names the image for containerd;
#   3. umoci unpacks it: the root filesystem holds exactly /bare-ccm (the binary just built)
#      and the CA bundle; the OCI runtime config umoci derives runs /bare-ccm run as
#      65532:65532 with the image's environment; and in a chroot of that root filesystem,
#      as that user with that environment, `bare-ccm --version` and
#      `bare-ccm explain` (docs/examples/node-k3s-agent.json) work;
#   4. Debian's containerd, started here with its own root, state and socket, imports the
#      archive with `ctr images import --all-platforms` (as k3s imports agent/images/, into
#      the k8s.io namespace) and lists it under the image name, complete and unpacked (a
#      control without the name annotation gets another name); the runtime spec containerd
#      derives from the image runs /bare-ccm run as 65532:65532 with the environment; and
#      runc runs `bare-ccm --version` and `bare-ccm explain` in real containers of it.
#
# Usage: scripts/prove-image.sh        (builds the archive first; needs root for chroot,
#                                       umoci unpack and containerd)
# Installs the Debian packages it needs (python3, umoci, skopeo, containerd) when missing.
set -euo pipefail

cd "$(dirname "$0")/.."

fail() {
    echo "prove-image: FAIL: $*" >&2
    exit 1
}
section() { echo "--- $*"; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (chroot, umoci unpack and containerd need it)"

missing=()
command -v python3 > /dev/null 2>&1 || missing+=(python3)
command -v umoci > /dev/null 2>&1 || missing+=(umoci)
command -v skopeo > /dev/null 2>&1 || missing+=(skopeo)
command -v containerd > /dev/null 2>&1 || missing+=(containerd)
if [ ${#missing[@]} -gt 0 ]; then
    echo "prove-image: installing ${missing[*]} (Debian packages)"
    apt-get update -qq || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null \
        || fail "apt-get install ${missing[*]} failed"
fi

tmp=$(mktemp -d)
ctr_pid=
cleanup() {
    if [ -n "$ctr_pid" ]; then
        # A task left running by a failed check keeps its shim alive: kill it first.
        for ns in k8s.io control; do
            for t in $(command ctr --address "$tmp/containerd/containerd.sock" --namespace "$ns" tasks ls -q 2> /dev/null); do
                command ctr --address "$tmp/containerd/containerd.sock" --namespace "$ns" tasks kill -s SIGKILL "$t" 2> /dev/null || true
            done
        done
        sleep 0.5
        kill "$ctr_pid" 2> /dev/null || true
        wait "$ctr_pid" 2> /dev/null || true
    fi
    # containerd's overlay snapshots are directories, but unmount anything left below tmp.
    for m in $(grep -o " $tmp[^ ]*" /proc/mounts 2> /dev/null | sort -r); do umount "$m" 2> /dev/null || true; done
    rm -rf "$tmp" || true
}
trap cleanup EXIT

image=$(python3 scripts/image-spec.py name)
version=$(python3 scripts/image-spec.py version)

# --- 1. build, twice ----------------------------------------------------------------------
section "build: scripts/build-image.sh"
scripts/build-image.sh > "$tmp/build1.log" 2>&1 || { cat "$tmp/build1.log" >&2; fail "scripts/build-image.sh failed"; }
cat "$tmp/build1.log"
archive=$(sed -n 's/^archive: //p' "$tmp/build1.log")
bin=$(sed -n 's/^binary: //p' "$tmp/build1.log")
[ -f "$archive" ] || fail "scripts/build-image.sh printed no archive"
[ "$archive" = "dist/bare-ccm-$version-linux-amd64.tar" ] || fail "archive is $archive, want dist/bare-ccm-$version-linux-amd64.tar"
(cd "$(dirname "$archive")" && sha256sum --quiet -c "$(basename "$archive").sha256") || fail "$archive.sha256 does not match"

section "reproducible: a second build into another directory"
scripts/build-image.sh --out-dir "$tmp/again" > "$tmp/build2.log" 2>&1 || { cat "$tmp/build2.log" >&2; fail "the second build failed"; }
cmp "$archive" "$tmp/again/$(basename "$archive")" || fail "two builds of the same binary differ"
echo "byte-identical: $(sha256sum "$archive" | cut -d' ' -f1)"

# --- 2. skopeo -----------------------------------------------------------------------------
section "skopeo inspect oci-archive:$archive"
skopeo inspect "oci-archive:$archive" > "$tmp/inspect.json" || fail "skopeo inspect failed"
skopeo inspect --config "oci-archive:$archive" > "$tmp/config.json" || fail "skopeo inspect --config failed"
tar -xOf "$archive" index.json > "$tmp/index.json" || fail "the archive has no index.json"
python3 - "$tmp/inspect.json" "$tmp/config.json" "$tmp/index.json" "$image" <<'PY' || fail "skopeo's view of the image is wrong (above)"
import json, sys

inspect, config, index = (json.load(open(p)) for p in sys.argv[1:4])
image = sys.argv[4]
c = config.get("config", {})
checks = [
    ("Os (inspect)", inspect.get("Os"), "linux"),
    ("Architecture (inspect)", inspect.get("Architecture"), "amd64"),
    ("os/architecture (config)", f"{config.get('os')}/{config.get('architecture')}", "linux/amd64"),
    ("Entrypoint", c.get("Entrypoint"), ["/bare-ccm"]),
    ("Cmd", c.get("Cmd"), ["run"]),
    ("User", c.get("User"), "65532:65532"),
    ("WorkingDir", c.get("WorkingDir"), "/"),
    ("ExposedPorts", sorted(c.get("ExposedPorts") or {}), ["10270/tcp", "10271/tcp"]),
    ("Env (inspect) has MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_=131072" in (inspect.get("Env") or []), True),
    ("Env (config)", c.get("Env"), ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "MALLOC_MMAP_THRESHOLD_=131072"]),
    ("layers", len(inspect.get("Layers") or []), 1),
    ("index manifests", len(index.get("manifests") or []), 1),
]
m = (index.get("manifests") or [{}])[0]
ann = m.get("annotations") or {}
checks += [
    ("index io.containerd.image.name", ann.get("io.containerd.image.name"), image),
    ("index org.opencontainers.image.ref.name", ann.get("org.opencontainers.image.ref.name"), image.rsplit(":", 1)[1]),
    ("index platform", m.get("platform"), {"architecture": "amd64", "os": "linux"}),
    ("index digest = inspect Digest", m.get("digest"), inspect.get("Digest")),
]
bad = 0
for what, got, want in checks:
    ok = got == want
    bad += not ok
    print(f"  {'ok ' if ok else 'BAD'} {what}: {json.dumps(got)}" + ("" if ok else f" (want {json.dumps(want)})"))
sys.exit(1 if bad else 0)
PY
python3 scripts/image-spec.py check-config "$tmp/config.json" || fail "the archive's configuration is not the Dockerfile's"

# --- 3. umoci unpack and a chroot ----------------------------------------------------------
section "umoci unpack, then the root filesystem in a chroot"
mkdir -p "$tmp/layout"
tar -xf "$archive" -C "$tmp/layout"
umoci unpack --image "$tmp/layout:$version" "$tmp/bundle" > /dev/null || fail "umoci unpack failed"
rootfs=$tmp/bundle/rootfs
files=$(cd "$rootfs" && find . -mindepth 1 \( -type f -o -type l \) -printf '%P %m %U:%G\n' | sort | tr '\n' ';')
want="bare-ccm 755 0:0;etc/ssl/certs/ca-certificates.crt 644 0:0;"
[ "$files" = "$want" ] || fail "the root filesystem holds '$files', want '$want'"
cmp "$rootfs/bare-ccm" "$bin" || fail "/bare-ccm in the image is not the binary just built ($bin)"
echo "root filesystem: /bare-ccm (755, = $bin) and /etc/ssl/certs/ca-certificates.crt (644), nothing else"

# umoci's OCI runtime config: what a runtime would start from this image.
mapfile -t runtime < <(python3 - "$tmp/bundle/config.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["process"]
print(json.dumps(p["args"]))
print(f"{p['user']['uid']}:{p['user']['gid']}")
print(p.get("cwd", ""))
for e in p.get("env", []):
    print(e)
PY
)
[ ${#runtime[@]} -ge 3 ] || fail "cannot read umoci's runtime config $tmp/bundle/config.json"
[ "${runtime[0]}" = '["/bare-ccm", "run"]' ] || fail "umoci's runtime config runs ${runtime[0]}, want [\"/bare-ccm\", \"run\"]"
[ "${runtime[1]}" = "65532:65532" ] || fail "umoci's runtime config runs as ${runtime[1]}, want 65532:65532"
[ "${runtime[2]}" = "/" ] || fail "umoci's runtime config has cwd ${runtime[2]}, want /"
# (umoci adds TERM=xterm, as runc's default spec does; the rest is the image's.)
env_vars=("${runtime[@]:3}")
printf '%s\n' "${env_vars[@]}" | grep -qx 'MALLOC_MMAP_THRESHOLD_=131072' \
    || fail "umoci's runtime config lacks MALLOC_MMAP_THRESHOLD_=131072 (env: ${env_vars[*]})"
echo "runtime config (umoci): args ${runtime[0]}, user ${runtime[1]}, cwd ${runtime[2]}, env ${env_vars[*]}"

in_image() { env -i "${env_vars[@]}" chroot --userspec="${runtime[1]}" "$rootfs" "$@"; }
version_out=$(in_image /bare-ccm --version) || fail "'bare-ccm --version' failed in the image's root filesystem"
echo "chroot as ${runtime[1]}: /bare-ccm --version -> $version_out"
case "$version_out" in
    *"$version"*) ;;
    *) fail "--version printed '$version_out', want version $version" ;;
esac
rc=0
in_image /bare-ccm explain --node - -o json < docs/examples/node-k3s-agent.json > "$tmp/explain.json" || rc=$?
[ "$rc" -eq 0 ] || { cat "$tmp/explain.json" >&2; fail "'bare-ccm explain' exited $rc in the image's root filesystem"; }
python3 - "$tmp/explain.json" <<'PY' || fail "explain in the image gave the wrong answer"
import json, sys
out = json.load(open(sys.argv[1]))
internal = [a["address"] for a in out.get("addresses", []) if a.get("type") == "InternalIP"]
assert out.get("node") == "k3s-agent-1", out.get("node")
assert out.get("wouldInitialize") is True, out.get("errors")
assert internal[:1] == ["10.0.0.21"], internal
print(f"chroot as 65532:65532: /bare-ccm explain --node - (docs/examples/node-k3s-agent.json) -> "
      f"wouldInitialize=true, InternalIP {', '.join(internal)}")
PY

# --- 4. containerd -------------------------------------------------------------------------
section "containerd $(containerd --version | awk '{print $3}'): ctr images import, then a container"
ctd=$tmp/containerd
mkdir -p "$ctd/root" "$ctd/state"
cat > "$ctd/config.toml" <<TOML
version = 2
root = "$ctd/root"
state = "$ctd/state"
# The image store and runc are exercised; the CRI plugin (the kubelet's API) is not needed.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctd/containerd.sock"
[ttrpc]
  address = "$ctd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
TOML
containerd --config "$ctd/config.toml" > "$ctd/log" 2>&1 &
ctr_pid=$!
ctr_ns() {
    local ns=$1
    shift
    command ctr --address "$ctd/containerd.sock" --namespace "$ns" "$@"
}
ctr() { ctr_ns k8s.io "$@"; }
i=0
until ctr version > /dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$ctr_pid" 2> /dev/null; then
        tail -20 "$ctd/log" >&2
        fail "containerd did not start (log above)"
    fi
    sleep 0.1
done

# As k3s imports agent/images/: all platforms, namespace k8s.io. k3s names the image from
# io.containerd.image.name (it passes no reference translator), and ctr does the same when
# the annotation is there, so the name listed here is the name k3s gives the image.
ctr images import --all-platforms "$archive" || fail "ctr images import refused the archive"
names=$(ctr images ls -q)
echo "images in containerd (namespace k8s.io): $names"
[ "$names" = "$image" ] || fail "containerd lists '$names', want exactly '$image'"
check=$(ctr images check "name==$image")
echo "$check"
echo "$check" | grep -q 'complete (2/2)' || fail "the imported image is not complete: $check"
echo "$check" | grep -Eq 'true *$' || fail "the imported image is not unpacked: $check"
digest=$(ctr images ls "name==$image" | awk 'NR==2 {print $3}')
want_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Digest"])' "$tmp/inspect.json")
[ "$digest" = "$want_digest" ] || fail "containerd's digest $digest is not the archive's $want_digest"
echo "containerd: $image imported, complete and unpacked, digest $digest"

# Control: the same archive without io.containerd.image.name does not get our name (ctr
# makes one up from the bare tag; k3s would refuse the bare tag), so the check above
# really proves the annotation.
mkdir -p "$tmp/control"
cp -a "$tmp/layout/." "$tmp/control/"
python3 -c '
import json, sys
p = sys.argv[1]
d = json.load(open(p))
del d["manifests"][0]["annotations"]["io.containerd.image.name"]
json.dump(d, open(p, "w"))
' "$tmp/control/index.json"
tar -cf "$tmp/control.tar" -C "$tmp/control" oci-layout index.json blobs
ctr_ns control images import --all-platforms "$tmp/control.tar" > /dev/null || fail "control: import failed"
control=$(ctr_ns control images ls -q)
[ -n "$control" ] && [ "$control" != "$image" ] || fail "control: without the annotation the image is still named '$control'"
echo "control: without io.containerd.image.name, ctr names the same image '$control'"

# The OCI runtime spec containerd itself derives from the image configuration.
ctr containers create "$image" prove-spec > /dev/null || fail "ctr containers create failed"
ctr containers info prove-spec > "$tmp/container.json" || fail "ctr containers info failed"
ctr containers rm prove-spec > /dev/null
python3 - "$tmp/container.json" <<'PY' || fail "containerd's runtime spec for the image is wrong"
import json, sys
p = json.load(open(sys.argv[1]))["Spec"]["process"]
got = {"args": p.get("args"), "user": f"{p['user']['uid']}:{p['user']['gid']}", "cwd": p.get("cwd")}
want = {"args": ["/bare-ccm", "run"], "user": "65532:65532", "cwd": "/"}
assert got == want, f"{got} != {want}"
assert "MALLOC_MMAP_THRESHOLD_=131072" in p.get("env", []), p.get("env")
print(f"container spec (containerd): args {got['args']}, user {got['user']}, cwd {got['cwd']}, env {' '.join(p['env'])}")
PY

# And real containers (runc, on the image's overlayfs snapshot, as the image's user).
# stdin is /dev/null and the timeout kills, because PID 1 of a container ignores SIGTERM.
# The sample node is bind-mounted read-only.
run_in_container() {
    local id=$1
    shift
    timeout -s KILL 60 ctr --address "$ctd/containerd.sock" --namespace k8s.io run --rm --net-host \
        --mount "type=bind,src=$PWD/docs/examples/node-k3s-agent.json,dst=/node.json,options=rbind:ro" \
        "$image" "$id" "$@" < /dev/null
}
version_out=$(run_in_container prove-version /bare-ccm --version) || fail "'bare-ccm --version' failed in a container"
echo "container: /bare-ccm --version -> $version_out"
run_in_container prove-explain /bare-ccm explain --node /node.json -o json > "$tmp/explain-ctr.json" \
    || fail "'bare-ccm explain' failed in a container"
python3 - "$tmp/explain-ctr.json" <<'PY' || fail "explain in a container gave the wrong answer"
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("node") == "k3s-agent-1" and d.get("wouldInitialize") is True, d
print("container: /bare-ccm explain --node /node.json -> wouldInitialize=true")
PY

echo "prove-image: OK"
