#!/usr/bin/env bash
# The benchmark command: wasmproc's start+join latency (both designs of the wasm backend,
# timed inside a guest and from Rust), CPython multiprocessing's fork/spawn/forkserver in
# the same run, and how many sleeping processes one host holds at what memory cost.
# See tests/benches/process.rs. Prints figures only; nothing fails on speed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-guest-toolchain.sh
exec cargo bench -p wasmproc-tests --bench process "$@"
