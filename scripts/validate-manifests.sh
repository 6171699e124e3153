#!/usr/bin/env bash
# Validates the Helm chart charts/bare-ccm and everything rendered from it:
#   1. manifests/*.yaml and manifests/helmchart/ are exactly what scripts/render-manifests.sh
#      renders from the chart, and the k3s HelmChart's inline chart renders the same
#      objects as the chart directory;
#   2. each manifest's file name, up to its first dot, is a DNS-1123 label: k3s names an
#      AddOn object after it, and an invalid name (an underscore, say) is never applied;
#   3. `helm lint --strict` with the default values and with every values file of
#      manifests/src/ and charts/bare-ccm/ci/;
#   4. `helm template` with each of those, and the committed manifests, pass
#      scripts/check-rendering.py: `kubernetes-validate --strict` (unknown fields are
#      errors) against Kubernetes 1.33, the version bare-ccm is built against, and the
#      newest version kubernetes-validate ships schemas for; the ServiceMonitor and
#      PrometheusRule against the CRD schemas of prometheus-operator (its Go module,
#      example/prometheus-operator-crd/), strictly, with jsonschema.
# Installs kubernetes-validate from PyPI when it is missing; builds helm from its Go
# module (scripts/testbed.sh build-helm).
#
# Usage: scripts/validate-manifests.sh
set -euo pipefail

cd "$(dirname "$0")/.."

# The prometheus-operator release whose CRDs the chart's ServiceMonitor and
# PrometheusRule are checked against (the newest the Go module proxy serves here).
PROMETHEUS_OPERATOR=github.com/prometheus-operator/prometheus-operator@v0.85.0

fail() {
    echo "validate-manifests: FAIL: $*" >&2
    exit 1
}

scripts/render-manifests.sh --check || fail "rendered manifests are stale"
helm=target/testbed/helm
chart=charts/bare-ccm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

files=$(ls manifests/*.yaml manifests/*.yml manifests/*.json manifests/helmchart/*.yaml 2>/dev/null || true)
[ -n "$files" ] || fail "no manifests found in manifests/"
for f in $files; do
    base=$(basename "$f")
    name=${base%%.*}
    # DNS-1123 label: lower-case alphanumerics and '-', starting and ending with an
    # alphanumeric, at most 63 characters.
    if ! printf '%s\n' "$name" | grep -Eq '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'; then
        fail "$f: '$name' (the file name up to its first dot) is not a valid DNS-1123 name"
    fi
done
echo "file names: every name is a valid DNS-1123 label"

# The HelmChart's chartContent is the chart: rendered from it, the objects are the same.
python3 - manifests/helmchart/bare-ccm-helmchart.yaml "$work/inline.tgz" <<'PY' || fail "cannot read the HelmChart's chartContent"
import base64, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert doc["apiVersion"] == "helm.cattle.io/v1" and doc["kind"] == "HelmChart", "not a HelmChart"
assert doc["spec"]["bootstrap"] is True, "spec.bootstrap must be true"
open(sys.argv[2], "wb").write(base64.b64decode(doc["spec"]["chartContent"], validate=True))
PY
"$helm" template bare-ccm "$work/inline.tgz" --namespace kube-system > "$work/inline.yaml"
"$helm" template bare-ccm "$chart" --namespace kube-system > "$work/directory.yaml"
cmp -s "$work/inline.yaml" "$work/directory.yaml" \
    || fail "the HelmChart's inline chart renders differently from $chart: $(diff "$work/directory.yaml" "$work/inline.yaml" | head -20)"
echo "k3s HelmChart: bootstrap, and its inline chart renders the same objects as $chart"

# The module, not the kubernetes-validate entry point: pip may install that outside PATH.
if ! python3 -c 'import kubernetes_validate, jsonschema, yaml' > /dev/null 2>&1; then
    echo "installing kubernetes-validate from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate jsonschema pyyaml \
        || fail "cannot install kubernetes-validate (python3 -m pip install kubernetes-validate)"
fi
newest=$(python3 -c 'from kubernetes_validate.utils import latest_version; print(latest_version())') \
    || fail "cannot read the newest Kubernetes version kubernetes-validate ships"
echo "kubernetes-validate $(python3 -m pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p'), newest schema: $newest"

crds=$(go mod download -json "$PROMETHEUS_OPERATOR" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') \
    || fail "cannot download $PROMETHEUS_OPERATOR from the Go module proxy"
crds="$crds/example/prometheus-operator-crd"
[ -f "$crds/monitoring.coreos.com_servicemonitors.yaml" ] || fail "no ServiceMonitor CRD in $crds"
echo "CRD schemas: $PROMETHEUS_OPERATOR example/prometheus-operator-crd/"

check() {
    python3 scripts/check-rendering.py --kubernetes-version 1.33.0 --kubernetes-version "$newest" \
        --crds "$crds" "$@" || fail "validation failed: $*"
}

# The chart with each set of values: lint, render, validate.
for values in "" manifests/src/*.values.yaml "$chart"/ci/*.yaml; do
    label="helm template ${values:-(default values)}"
    "$helm" lint --strict "$chart" ${values:+-f "$values"} > "$work/lint.txt" \
        || { cat "$work/lint.txt" >&2; fail "helm lint --strict ${values:-(default values)}"; }
    "$helm" template bare-ccm "$chart" --namespace kube-system ${values:+-f "$values"} > "$work/rendered.yaml" \
        || fail "$label"
    expect=(--expect-kind ServiceAccount --expect-kind ConfigMap --expect-kind Lease)
    case "$values" in
        *monitoring*) expect+=(--expect-kind ServiceMonitor --expect-kind PrometheusRule --expect-kind Service) ;;
    esac
    check --label "$label" "${expect[@]}" "$work/rendered.yaml"
done
echo "helm lint --strict: every values file"

# The committed manifests themselves (the HelmChart is checked above).
for f in manifests/*.yaml; do
    check "$f"
done
echo "validate-manifests: OK"
