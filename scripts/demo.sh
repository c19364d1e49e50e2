#!/usr/bin/env bash
# The demo: installs what is missing, builds, and runs a program whose main process starts
# five children that end in five different ways.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (rustup) first" >&2; exit 1; }
scripts/setup-guest-toolchain.sh
echo "wasmproc demo: building the guest programs and the host (the first build takes minutes)" >&2
scripts/build-guests.sh --quiet
cargo build --release --quiet -p wasmproc
exec target/release/wasmproc run target/guests/wasm32-wasip2/release/demo.wasm "$@"
