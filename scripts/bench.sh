#!/usr/bin/env bash
# The benchmark command. Prints figures only; nothing fails on speed.
#
#   spawn  wasmproc's start+join latency (four designs: the wasm backend with a task or a
#          thread per process or the pooling allocator, and the native backend; timed inside
#          a guest and from Rust), CPython multiprocessing's fork/spawn/forkserver in the same
#          run, and how many sleeping processes one host holds at what memory cost
#          (tests/benches/process.rs);
#   queue  Queue throughput, a child putting u64s and the parent getting them, wasm and
#          native backends next to CPython's multiprocessing.Queue (tests/benches/sync.rs);
#   pool   Pool.map of a trivial function with chunksize=1, wasm and native backends next
#          to CPython's multiprocessing.Pool(...).map(..., chunksize=1) (tests/benches/sync.rs);
#   prims  one operation of Lock, Value, SimpleQueue, JoinableQueue, Condition, Barrier, Event
#          and a managed dict, wasm and native backends next to CPython's multiprocessing
#          (tests/benches/prims.rs);
#   compute  what the wasm backend's memory layout costs compiled code: a guest's loads and
#          stores with bounds checks (the default `memory` limit) and without (4 GiB)
#          (tests/benches/compute.rs; not part of `all`).
#
# Usage: scripts/bench.sh [spawn] [queue] [pool] [prims] [compute] [-- ARGS for cargo bench]
# With no name, spawn, queue and pool run; the names may also come from WASMPROC_BENCH=queue,pool.
# The other WASMPROC_BENCH_* variables (iterations, rounds, backends) are described at the
# top of tests/benches/process.rs and tests/benches/sync.rs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

selected=()
IFS=',' read -r -a from_env <<< "${WASMPROC_BENCH:-}"
for name in "${from_env[@]}"; do
  name="${name// /}"
  [ -n "$name" ] && selected+=("$name")
done
while [ $# -gt 0 ]; do
  case "$1" in
    spawn|queue|pool|prims|compute) selected+=("$1"); shift ;;
    all) selected+=(spawn queue pool); shift ;;
    --) break ;;
    *) break ;;
  esac
done
[ ${#selected[@]} -eq 0 ] && selected=(spawn queue pool)
for name in "${selected[@]}"; do
  case "$name" in
    spawn|queue|pool|prims|compute) ;;
    *) echo "error: unknown benchmark '$name' (known: spawn, queue, pool, prims, compute)" >&2; exit 2 ;;
  esac
done
want() { [[ " ${selected[*]} " == *" $1 "* ]]; }
benches=()
want spawn && benches+=(--bench process)
if want queue || want pool; then
  benches+=(--bench sync)
fi
want prims && benches+=(--bench prims)
want compute && benches+=(--bench compute)
WASMPROC_BENCH="$(IFS=','; echo "${selected[*]}")"
export WASMPROC_BENCH

scripts/setup-guest-toolchain.sh
# The native backend re-executes target/release/wasmproc for every child: build it first.
cargo build --release -p wasmproc
exec cargo bench -p wasmproc-tests "${benches[@]}" "$@"
