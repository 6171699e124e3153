#!/bin/sh
# Renders the deployable manifests from one source, so the variants cannot drift apart:
#
#   manifests/src/bare-ccm.yaml.in      everything the variants share
#   manifests/src/<variant>/header.in           the file's opening comment
#   manifests/src/<variant>/configmap-data.in   extra keys of the ConfigMap (may be empty)
#   manifests/src/<variant>/container-env.in    how the container reaches the API server
#
# Each fragment replaces the line `#@<fragment>` of the template, indentation included.
# Variant k3s renders to manifests/bare-ccm.yaml (the all-in-one file for k3s's
# auto-deploy directory); any other variant V renders to manifests/bare-ccm-V.yaml.
#
# Usage: scripts/render-manifests.sh           write the rendered files
#        scripts/render-manifests.sh --check   exit 1 if a committed file differs
set -eu

cd "$(dirname "$0")/.."

mode="write"
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

template=manifests/src/bare-ccm.yaml.in
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
status=0

for dir in manifests/src/*/; do
    variant=$(basename "$dir")
    for fragment in header configmap-data container-env; do
        if [ ! -f "$dir$fragment.in" ]; then
            echo "render-manifests: $dir$fragment.in is missing" >&2
            exit 2
        fi
    done
    if [ "$variant" = k3s ]; then
        out=manifests/bare-ccm.yaml
    else
        out=manifests/bare-ccm-$variant.yaml
    fi

    # POSIX sed: `r` queues the file for output at the end of the cycle, `d` drops the
    # placeholder line itself.
    sed -e "/^#@header\$/{
r ${dir}header.in
d
}" -e "/^#@configmap-data\$/{
r ${dir}configmap-data.in
d
}" -e "/^#@container-env\$/{
r ${dir}container-env.in
d
}" "$template" > "$tmp"

    if grep -n '^#@' "$tmp" >&2; then
        echo "render-manifests: unknown placeholder left in $out (above)" >&2
        exit 2
    fi

    if [ "$mode" = check ]; then
        if ! cmp -s "$tmp" "$out"; then
            echo "render-manifests: $out is not what $template renders for variant $variant;" >&2
            echo "  run scripts/render-manifests.sh and commit the result. Difference:" >&2
            diff -u "$out" "$tmp" >&2 || true
            status=1
        fi
    else
        cp "$tmp" "$out"
        echo "rendered $out"
    fi
done

[ "$status" -eq 0 ] && [ "$mode" = check ] && echo "render-manifests: every rendered manifest is up to date"
exit "$status"
