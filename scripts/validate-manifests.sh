#!/bin/sh
# Validates the deployable manifests (manifests/*.yaml):
#   1. each is exactly what scripts/render-manifests.sh renders from manifests/src/;
#   2. each file name, up to its first dot, is a DNS-1123 label: k3s names an AddOn
#      object after it, and an invalid name (an underscore, say) is never applied;
#   3. every object passes `kubernetes-validate --strict` (unknown fields are errors)
#      against Kubernetes 1.33, the version bare-ccm is built against, and against the
#      newest version the installed kubernetes-validate ships schemas for.
# Installs kubernetes-validate from PyPI when it is missing.
#
# Usage: scripts/validate-manifests.sh
set -eu

cd "$(dirname "$0")/.."

fail() {
    echo "validate-manifests: FAIL: $*" >&2
    exit 1
}

scripts/render-manifests.sh --check || fail "rendered manifests are stale"

files=$(ls manifests/*.yaml manifests/*.yml manifests/*.json 2>/dev/null || true)
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

# The module, not the kubernetes-validate entry point: pip may install that outside PATH.
if ! python3 -c 'import kubernetes_validate' > /dev/null 2>&1; then
    echo "installing kubernetes-validate from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate \
        || fail "cannot install kubernetes-validate (python3 -m pip install kubernetes-validate)"
fi
kv() { python3 -m kubernetes_validate "$@"; }

newest=$(python3 -c 'from kubernetes_validate.utils import latest_version; print(latest_version())') \
    || fail "cannot read the newest Kubernetes version kubernetes-validate ships"
echo "kubernetes-validate $(python3 -m pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p'), newest schema: $newest"

for version in 1.33.0 "$newest"; do
    # shellcheck disable=SC2086 # $files is a list of paths without blanks
    kv --strict --kubernetes-version "$version" $files \
        || fail "manifests do not validate against Kubernetes $version (strict)"
done
echo "validate-manifests: OK"
