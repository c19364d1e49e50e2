#!/usr/bin/env bash
# Python guests' benchmark: start+join of a no-op Python-guest child on both backends next to
# CPython's multiprocessing fork and spawn in the same run (scripts/bench_cpython.py), and the
# host's memory while N Python-guest processes are alive (wasm backend: one OS process).
# Usage: scripts/bench-python-guest.sh [START_N] [HOLD_N]   (defaults 50, 1000)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start_n="${1:-50}"
hold_n="${2:-1000}"
cd "$root"
cargo build --release -q -p wasmproc
wasmproc="$root/target/release/wasmproc"
out="$root/target/python-bench"
mkdir -p "$out"
"$wasmproc" build scripts/bench_python_guest.py -o "$out/bench.wasm" >/dev/null
"$wasmproc" run "$out/bench.wasm" start 1 >/dev/null   # compile once into wasmtime's cache
echo "date $(date -u '+%Y-%m-%d %H:%M')"
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
for backend in wasm native; do
  echo "== python guest, $backend"
  "$wasmproc" run --backend "$backend" "$out/bench.wasm" start "$start_n"
done
echo "== cpython"
python3 scripts/bench_cpython.py 200 "$start_n" 5 | grep -v forkserver
echo "== hold $hold_n python guests (wasm backend)"
rss_before=$(awk '/VmRSS/ {print $2}' /proc/self/status)
"$wasmproc" run --limit "children=$((hold_n + 10))" "$out/bench.wasm" hold "$hold_n" &
pid=$!
sleep 0.5
peak=0
for _ in $(seq 1 400); do
  kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "${kb:-0}" -gt "$peak" ] && peak=$kb
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
wait "$pid"
echo "hold_peak_rss_kib $peak"
echo "hold_rss_kib_per_process $((peak / hold_n))"
: "$rss_before"
