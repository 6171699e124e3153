#!/usr/bin/env bash
# The whole test suite: unit, table, property, emulator, kubectl and end-to-end tests, on
# the emulator and on the real control plane (tests/testbed: kube-apiserver, etcd,
# controller-manager, scheduler and hollow kubelets built from the Kubernetes Go modules).
# Installs what it needs on a fresh machine (kubectl; iproute2 for the test bed's network
# namespace) and builds the test bed (Go 1.26+, the Go module proxy; cached after the first
# build). Runs as root: the test bed creates a network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kubectl >/dev/null 2>&1; then
    echo "installing kubectl (needed by emulator/tests/kubectl.rs)" >&2
    apt-get update -qq
    apt-get install -y -qq kubectl || apt-get install -y -qq kubernetes-client
fi

if ! command -v ip >/dev/null 2>&1; then
    echo "installing iproute2 (the test bed's network namespace)" >&2
    apt-get update -qq
    apt-get install -y -qq iproute2
fi
scripts/testbed.sh build

# Property tests run 10k cases per target unless the caller asks for fewer.
export PROPTEST_CASES="${PROPTEST_CASES:-10000}"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
