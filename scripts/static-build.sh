#!/bin/sh
# Builds the production bare-ccm binary: statically linked, without the `sim` feature
# (so without the API emulator), from the locked dependency set.
#
# This is the one recipe for the static binary: the Dockerfile runs this very script in
# its builder stage, and CI runs it before the empty-root smoke test
# (scripts/chroot-smoke.sh), so what CI proves is what the image contains.
#
# Why static glibc and not musl: only the x86_64-unknown-linux-gnu target is installable
# on our build machines. `-C target-feature=+crt-static` links glibc statically; the
# explicit `--target` keeps RUSTFLAGS away from build scripts and proc-macros, which
# must stay dynamic (rustc cannot build a proc-macro with crt-static).
#
# Usage: scripts/static-build.sh
#        BARE_CCM_TARGET=aarch64-unknown-linux-gnu scripts/static-build.sh   (another target,
#        where it is installed: `rustup target list --installed`; on these build machines
#        only x86_64-unknown-linux-gnu is)
# Prints the path and size of the binary on its last two lines. Honours CARGO_TARGET_DIR.
# That the result really is static is proven by scripts/chroot-smoke.sh, which runs it
# in a root that has no dynamic loader.
set -eu

cd "$(dirname "$0")/.."

target=${BARE_CCM_TARGET:-x86_64-unknown-linux-gnu}
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"
export RUSTFLAGS

cargo build --release --locked --no-default-features --target "$target" -p bare-ccm --bin bare-ccm

bin="${CARGO_TARGET_DIR:-target}/$target/release/bare-ccm"
if [ ! -x "$bin" ]; then
    echo "static-build: expected binary $bin is missing" >&2
    exit 1
fi

size=$(wc -c < "$bin" | tr -d ' ')
echo "binary: $bin"
echo "size: $size bytes ($(( size / 1024 )) KiB)"
