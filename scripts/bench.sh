#!/usr/bin/env bash
# The benchmark command: wasmproc's start+join latency (four designs: the wasm backend with a
# task or a thread per process or the pooling allocator, and the native backend; timed
# inside a guest and from Rust), CPython multiprocessing's fork/spawn/forkserver in the same
# run, and how many sleeping processes one host holds at what memory cost.
# See tests/benches/process.rs. Prints figures only; nothing fails on speed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-guest-toolchain.sh
# The native design re-executes target/release/wasmproc for every child: build it first.
cargo build --release -p wasmproc
exec cargo bench -p wasmproc-tests --bench process "$@"
