#!/usr/bin/env bash
# Builds the bare-ccm container image without Docker: an OCI image archive in dist/ that
# containerd imports as it is, both by hand (`k3s ctr images import`, `ctr -n k8s.io
# images import`) and by k3s itself from /var/lib/rancher/k3s/agent/images/.
#
#   scripts/build-image.sh                    -> dist/bare-ccm-0.1.0-linux-amd64.tar (+ .sha256)
#   scripts/build-image.sh --arch arm64       the arm64 image, where the Rust target
#                                             aarch64-unknown-linux-gnu is installed (an
#                                             arm64 machine); not on these build machines
#   IMAGE=registry.example.com/ops/bare-ccm:0.1.0 scripts/build-image.sh
#                                             the same image under another name
#
# What it does:
#   1. builds the static binary with scripts/static-build.sh (the recipe the Dockerfile and
#      CI use);
#   2. makes one layer holding /bare-ccm (0755) and /etc/ssl/certs/ca-certificates.crt
#      (0644, this machine's CA bundle, from Debian's ca-certificates), owned by 0:0, with
#      GNU tar in its reproducible mode;
#   3. with umoci: a new OCI layout, the layer, and the configuration of the Dockerfile's
#      final stage (entrypoint, command, user 65532:65532, environment, working directory,
#      exposed port, labels, os/architecture), read from the Dockerfile by
#      scripts/image-spec.py, so that Docker and this script build the same configuration;
#   4. names the image in index.json the way containerd reads names: the full reference in
#      io.containerd.image.name, the tag in org.opencontainers.image.ref.name (k3s imports
#      agent/images/ archives with containerd's client.Import and no reference translator,
#      so only the containerd annotation gives the full name; see scripts/image-spec.py);
#   5. packs the layout (oci-layout, index.json, blobs/) into one tar, again reproducibly,
#      and reads it back with skopeo.
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default 0, 1970-01-01), file owners
# and modes are fixed, entries are sorted, and the JSON is written canonically. The same
# binary, CA bundle, name and SOURCE_DATE_EPOCH give the same bytes on every build (CI
# builds twice and compares). The version tag comes from Cargo.toml.
#
# Needs: cargo (for the binary), python3, GNU tar, umoci and skopeo; the missing Debian
# packages among them are installed with apt-get (as root). No Docker, no registry.
set -euo pipefail

cd "$(dirname "$0")/.."

fail() {
    echo "build-image: FAIL: $*" >&2
    exit 1
}

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

arch=amd64
out_dir=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) [ $# -ge 2 ] || usage; arch=$2; shift 2 ;;
        --arch=*) arch=${1#--arch=}; shift ;;
        --out-dir) [ $# -ge 2 ] || usage; out_dir=$2; shift 2 ;;
        --out-dir=*) out_dir=${1#--out-dir=}; shift ;;
        -h | --help) usage ;;
        *) echo "build-image: unknown argument $1" >&2; usage ;;
    esac
done
case "$arch" in
    amd64) target=x86_64-unknown-linux-gnu ;;
    arm64) target=aarch64-unknown-linux-gnu ;;
    *) fail "--arch $arch: only amd64 and arm64 are known" ;;
esac

# --- tools ---------------------------------------------------------------------------------
missing=()
command -v python3 > /dev/null 2>&1 || missing+=(python3)
command -v umoci > /dev/null 2>&1 || missing+=(umoci)
command -v skopeo > /dev/null 2>&1 || missing+=(skopeo)
tar --version 2> /dev/null | grep -q 'GNU tar' || missing+=(tar)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || fail "missing ${missing[*]}: run 'apt-get install ${missing[*]}' as root, or run this script as root"
    echo "build-image: installing ${missing[*]} (Debian packages)"
    apt-get update -qq || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null \
        || fail "apt-get install ${missing[*]} failed"
fi
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || fail "CA bundle $ca not found (apt-get install ca-certificates)"

spec() { python3 scripts/image-spec.py "$@"; }
version=$(spec version) || fail "cannot read the version from Cargo.toml"
image=${IMAGE:-$(spec name)} || fail "cannot compute the image name"
# The tag is what follows the last ':' after the last '/' (a registry port is not a tag).
last=${image##*/}
case "$last" in
    *:*) tag=${last##*:} ;;
    *) fail "IMAGE=$image has no tag; give one, e.g. $image:$version" ;;
esac
case "$image" in
    */*) ;;
    *) fail "IMAGE=$image: give a registry host first (registry.example.com/bare-ccm:$version), or runtimes read it as docker.io/library/..." ;;
esac
case "${image%%/*}" in
    *.* | *:* | localhost) ;;
    *) fail "IMAGE=$image: the first component must be a registry host (with a dot or a port), or runtimes read it as docker.io/..." ;;
esac
epoch=${SOURCE_DATE_EPOCH:-0}
case "$epoch" in
    '' | *[!0-9]*) fail "SOURCE_DATE_EPOCH=$epoch is not a number of seconds" ;;
esac
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

# --- 1. the binary -------------------------------------------------------------------------
sysroot=$(rustc --print sysroot 2> /dev/null) || fail "rustc not found (https://rustup.rs, or apt-get install rustc cargo)"
if [ ! -d "$sysroot/lib/rustlib/$target/lib" ]; then
    installed=$(cd "$sysroot/lib/rustlib" && for d in */lib; do printf '%s ' "${d%/lib}"; done)
    fail "the Rust target $target is not installed here (installed: ${installed% }).
  Build the $arch image on a Linux $arch machine, where it is the host target: scripts/build-image.sh --arch $arch
  (cross-building needs 'rustup target add $target' plus a C cross toolchain and linker)"
fi
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
BARE_CCM_TARGET=$target scripts/static-build.sh > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; fail "scripts/static-build.sh failed"; }
bin=$(sed -n 's/^binary: //p' "$work/build.log")
[ -x "$bin" ] || { cat "$work/build.log" >&2; fail "scripts/static-build.sh printed no binary"; }
built=$(date +%s)

# --- 2. the layer --------------------------------------------------------------------------
reproducible_tar() {
    # GNU tar's reproducible mode (reproducible-builds.org/docs/archives): sorted entries,
    # one mtime, numeric owner 0:0, normalised modes, no atime/ctime.
    tar --create --sort=name --format=posix \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
        --mode='u+rwX,go+rX,go-w' "$@"
}
rootfs=$work/rootfs
mkdir -p "$rootfs/etc/ssl/certs"
install -m 0755 "$bin" "$rootfs/bare-ccm"
install -m 0644 "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
reproducible_tar --file "$work/layer.tar" --directory "$rootfs" --no-recursion \
    etc etc/ssl etc/ssl/certs etc/ssl/certs/ca-certificates.crt bare-ccm

# --- 3. the OCI layout, with umoci ---------------------------------------------------------
layout=$work/oci
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci raw add-layer --image "$layout:$tag" --history.created="$created" \
    --history.created_by="scripts/build-image.sh: /bare-ccm and /etc/ssl/certs/ca-certificates.crt" \
    "$work/layer.tar"
config_args=()
while IFS= read -r -d '' arg; do config_args+=("$arg"); done < <(spec umoci-args --arch "$arch")
[ ${#config_args[@]} -gt 0 ] || fail "scripts/image-spec.py gave no configuration"
umoci config --image "$layout:$tag" --no-history --created="$created" "${config_args[@]}"
umoci gc --layout "$layout"

# --- 4. the name containerd reads ----------------------------------------------------------
spec annotate-index "$layout/index.json" "$image" --arch "$arch"

# --- 5. the archive ------------------------------------------------------------------------
mkdir -p "$out_dir"
archive=$out_dir/bare-ccm-$tag-linux-$arch.tar
reproducible_tar --file "$work/archive.tar" --directory "$layout" oci-layout index.json blobs
mv "$work/archive.tar" "$archive"
(cd "$out_dir" && sha256sum "$(basename "$archive")" > "$(basename "$archive").sha256")

digest=$(skopeo inspect --format '{{.Digest}}' "oci-archive:$archive") \
    || fail "skopeo cannot read $archive"
size=$(wc -c < "$archive" | tr -d ' ')
end=$(date +%s)
echo "image: $image ($arch)"
echo "archive: $archive"
echo "size: $size bytes ($((size / 1024)) KiB)"
echo "sha256: $(cut -d' ' -f1 "$archive.sha256")"
echo "manifest digest: $digest"
echo "binary: $bin"
echo "ca bundle: $ca, sha256 $(sha256sum "$ca" | cut -d' ' -f1) (ca-certificates $(dpkg-query -W -f '${Version}' ca-certificates 2> /dev/null || echo unknown))"
echo "created: $created (SOURCE_DATE_EPOCH=$epoch)"
echo "time: static build $((built - start)) s, image $((end - built)) s"
