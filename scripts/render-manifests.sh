#!/usr/bin/env bash
# Renders everything in manifests/ from the one source, the Helm chart charts/bare-ccm,
# so that the plain manifests, the k3s HelmChart and the chart cannot drift apart:
#
#   manifests/NAME.yaml        manifests/src/NAME.header (the file's opening comment), then
#                              `helm template bare-ccm charts/bare-ccm --namespace
#                              kube-system -f manifests/src/NAME.values.yaml`, only the
#                              templates listed in manifests/src/NAME.templates when it
#                              exists (--show-only: the agent's manifest)
#   manifests/helmchart/bare-ccm-helmchart.yaml
#                              a helm.cattle.io/v1 HelmChart for k3s's helm-controller with
#                              the packaged chart inline (spec.chartContent, base64)
#
# helm is the v4 release pinned in tests/testbed/helm/go.mod, built from its Go module by
# scripts/testbed.sh build-helm (cached). The packaged chart is reproducible: every file is
# packaged with the same modification time, and helm's gzip header carries none. --check
# accepts a HelmChart whose archive holds the same files compressed differently.
#
# Usage: scripts/render-manifests.sh           write the rendered files
#        scripts/render-manifests.sh --check   exit 1 if a committed file differs
set -euo pipefail

cd "$(dirname "$0")/.."

mode="write"
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

chart=charts/bare-ccm
helm=target/testbed/helm
helmchart=manifests/helmchart/bare-ccm-helmchart.yaml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/testbed.sh build-helm > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; echo "render-manifests: cannot build helm" >&2; exit 2; }
status=0

# Whether two HelmChart files are the same apart from how their chart was compressed:
# the same text around chartContent, and the same files with the same contents in it (a
# newer Go may compress the same archive to other bytes).
same_helmchart() {
    python3 - "$1" "$2" <<'PY'
import base64, io, sys, tarfile
def split(path):
    text = open(path).read()
    head, _, content = text.partition("  chartContent: ")
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(content.strip())), mode="r:gz") as tar:
        files = sorted((m.name, m.mode, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile())
    return head, files
sys.exit(0 if split(sys.argv[1]) == split(sys.argv[2]) else 1)
PY
}

# Compares or writes one rendered file.
emit() {
    local rendered="$1" out="$2" source="$3"
    if [ "$mode" = check ]; then
        if ! cmp -s "$rendered" "$out" \
            && ! { [ "$out" = "$helmchart" ] && [ -f "$out" ] && same_helmchart "$rendered" "$out"; }; then
            echo "render-manifests: $out is not what $source renders;" >&2
            echo "  run scripts/render-manifests.sh and commit the result. Difference:" >&2
            # The HelmChart's one long base64 line says nothing in a diff.
            diff -u "$out" "$rendered" | cut -c1-200 | head -100 >&2 || true
            status=1
        fi
    else
        mkdir -p "$(dirname "$out")"
        cp "$rendered" "$out"
        echo "rendered $out"
    fi
}

count=0
for values in manifests/src/*.values.yaml; do
    name=$(basename "$values" .values.yaml)
    header=manifests/src/$name.header
    [ -f "$header" ] || { echo "render-manifests: $header is missing" >&2; exit 2; }
    only=()
    if [ -f "manifests/src/$name.templates" ]; then
        while read -r template; do
            [ -n "$template" ] && only+=(--show-only "$template")
        done < "manifests/src/$name.templates"
    fi
    {
        cat "$header"
        "$helm" template bare-ccm "$chart" --namespace kube-system -f "$values" "${only[@]}"
    } > "$work/$name.yaml"
    emit "$work/$name.yaml" "manifests/$name.yaml" "$chart with $values"
    count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "render-manifests: no manifests/src/*.values.yaml" >&2; exit 2; }

# The packaged chart, reproducibly: a copy whose files all carry one modification time.
cp -r "$chart" "$work/chart"
find "$work/chart" -exec touch -h -d @0 {} +
"$helm" package "$work/chart" --destination "$work/package" > /dev/null
version=$(sed -n 's/^version: *//p' "$chart/Chart.yaml")
tgz="$work/package/bare-ccm-$version.tgz"
[ -f "$tgz" ] || { echo "render-manifests: helm package wrote no $tgz" >&2; exit 2; }
{
    cat <<HEADER
# bare-ccm for k3s, the Helm way: k3s's helm-controller installs the chart inline below
# (charts/bare-ccm $version, packaged and base64-encoded) as the release bare-ccm in
# kube-system. An alternative to bare-ccm.yaml; use one or the other.
#
#   1. Start every k3s server with --disable-cloud-controller, and every k3s node with
#      --kubelet-arg=cloud-provider=external; put the image archive on every server
#      (dist/bare-ccm-$version-linux-amd64.tar into /var/lib/rancher/k3s/agent/images/).
#   2. sudo cp bare-ccm-helmchart.yaml /var/lib/rancher/k3s/server/manifests/
#
# bootstrap: true runs the install job on a server's host network against its local API
# server, tolerating the taints of uninitialised nodes: it works before any node is
# initialised, as bare-ccm itself must. Chart values go in spec.valuesContent
# (docs/helm.md lists them). Guide: docs/helm.md#k3s-helmchart.
#
# Generated by scripts/render-manifests.sh from charts/bare-ccm; CI fails when it is
# not current.
HEADER
    cat <<MANIFEST
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: bare-ccm
  namespace: kube-system
spec:
  targetNamespace: kube-system
  bootstrap: true
  # Chart values, as in a values file; empty = the chart's defaults.
  valuesContent: ""
MANIFEST
    printf '  chartContent: %s\n' "$(base64 -w0 "$tgz")"
} > "$work/helmchart.yaml"
emit "$work/helmchart.yaml" "$helmchart" "$chart (helm package)"

if [ "$mode" = check ] && [ "$status" -eq 0 ]; then
    echo "render-manifests: the $count manifests and the k3s HelmChart are what charts/bare-ccm renders"
fi
exit "$status"
