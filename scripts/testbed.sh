#!/usr/bin/env bash
# The real control plane test bed (tests/testbed, docs/testing.md).
#
#   scripts/testbed.sh build                 build target/testbed/{testbed,testbed-kine,helm} (cached)
#   scripts/testbed.sh build-helm            build target/testbed/helm alone (cached)
#   scripts/testbed.sh check                 gofmt and go vet of the test bed's Go code
#   scripts/testbed.sh up --hollow-nodes N --kubeconfig-out FILE [--datastore etcd|sqlite]
#                         [--peer-ccm] [--no-k3s-writes] [--state-dir DIR] ...
#   scripts/testbed.sh join|leave|address|signal|status --state-dir DIR ...
#
# `up` stays in the foreground until SIGTERM or Ctrl-C, then stops everything it
# started. Every other argument goes to the testbed program (`testbed up -h` lists them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/testbed"
out="$root/target/testbed"

# The Kubernetes release the test bed is built from: the version of k8s.io/kubernetes in
# tests/testbed/go.mod, also stamped into the binaries (what `kubectl version` shows).
k8s_version() {
    awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$src/go.mod"
}

build() {
    command -v go >/dev/null || { echo "testbed: Go is required (go 1.26 or newer)" >&2; exit 2; }
    mkdir -p "$out"
    local version minor
    version="$(k8s_version)"
    minor="$(echo "$version" | cut -d. -f2)"
    local pkg=k8s.io/component-base/version
    local ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    echo "testbed: building the test bed from k8s.io/kubernetes $version (the first build takes several minutes)" >&2
    (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$out/testbed" .)
    echo "testbed: building kine (SQLite datastore)" >&2
    (cd "$src/kine" && CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o "$out/testbed-kine" github.com/k3s-io/kine)
    build_helm
}

# Helm v4 from its Go module (tests/testbed/helm/go.mod pins the release and keeps every
# k8s.io module at the test bed's release), stamped with its version as helm's Makefile
# does. It renders manifests/ from charts/bare-ccm and installs the chart on the test bed.
build_helm() {
    command -v go >/dev/null || { echo "testbed: Go is required (go 1.26 or newer)" >&2; exit 2; }
    mkdir -p "$out"
    local version
    version="$(awk '$1 == "helm.sh/helm/v4" { print $2; exit }' "$src/helm/go.mod")"
    echo "testbed: building helm $version" >&2
    (cd "$src/helm" && CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
        -o "$out/helm" helm.sh/helm/v4/cmd/helm)
}

check() {
    local unformatted
    unformatted="$(cd "$src" && gofmt -l . kine helm)"
    if [ -n "$unformatted" ]; then
        echo "testbed: gofmt would change: $unformatted" >&2
        exit 1
    fi
    (cd "$src" && go vet ./...)
    (cd "$src/kine" && go mod verify >/dev/null)
    (cd "$src/helm" && go mod verify >/dev/null)
}

cmd="${1:-}"
case "$cmd" in
    build)
        build
        ;;
    build-helm)
        build_helm
        ;;
    check)
        check
        ;;
    up|join|leave|address|signal|status)
        shift
        if [ "$cmd" = up ] || [ ! -x "$out/testbed" ]; then
            build
        fi
        exec "$out/testbed" "$cmd" "$@"
        ;;
    *)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
