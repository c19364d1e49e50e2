#!/usr/bin/env bash
# The demo: installs what is missing, builds, and runs a program whose main process starts
# five children that end in five different ways.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (rustup) first" >&2; exit 1; }
scripts/setup-guest-toolchain.sh
# The first build (wasmtime, the guests' standard library) takes minutes: cargo then shows its
# progress on stderr; later builds are quiet.
quiet=--quiet
if [ ! -x target/release/wasmproc ] || [ ! -f target/guests/wasm32-wasip2/release/demo.wasm ]; then
  echo "wasmproc demo: first build of the guest programs and the host (this takes minutes)" >&2
  quiet=
fi
scripts/build-guests.sh $quiet
cargo build --release $quiet -p wasmproc
exec target/release/wasmproc run target/guests/wasm32-wasip2/release/demo.wasm "$@"
