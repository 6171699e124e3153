#!/usr/bin/env bash
# The whole test suite: unit, table, property, emulator, kubectl and end-to-end tests.
# Installs what it needs on a fresh machine (kubectl for the emulator's kubectl tests).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kubectl >/dev/null 2>&1; then
    echo "installing kubectl (needed by emulator/tests/kubectl.rs)" >&2
    apt-get update -qq
    apt-get install -y -qq kubectl || apt-get install -y -qq kubernetes-client
fi

# Property tests run 10k cases per target unless the caller asks for fewer.
export PROPTEST_CASES="${PROPTEST_CASES:-10000}"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
