#!/usr/bin/env bash
# Python guests' benchmark: start+join of a no-op Python-guest child on both backends next to
# CPython's multiprocessing fork and spawn in the same run (scripts/bench_cpython.py), and the
# host's memory (RSS and PSS) while N Python-guest processes are alive (wasm backend: one OS
# process).
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
# The host's peak RSS while the program holds $1 live Python-guest children, and its peak
# proportional set size (PSS: a page mapped by several processes' memories, as the pages of a
# copy-on-write image are, counted once; RSS counts it once per mapping), as "RSS PSS" in KiB.
peak_mem() {
  "$wasmproc" run --limit "children=$(($1 + 10))" "$out/bench.wasm" hold "$1" >&2 &
  local pid=$! peak=0 peak_pss=0 kb pss
  while kill -0 "$pid" 2>/dev/null; do
    kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak" ] && peak=$kb
    [ "${pss:-0}" -gt "$peak_pss" ] && peak_pss=$pss
    sleep 0.05
  done
  wait "$pid"
  echo "$peak $peak_pss"
}
echo "== hold 1 and $hold_n python guests (wasm backend: one OS process)"
read -r base base_pss < <(peak_mem 1)
read -r peak peak_pss < <(peak_mem "$hold_n")
echo "hold_1_peak_rss_kib $base"
echo "hold_${hold_n}_peak_rss_kib $peak"
echo "hold_rss_kib_per_extra_process $(( (peak - base) / (hold_n - 1) ))"
echo "hold_1_peak_pss_kib $base_pss"
echo "hold_${hold_n}_peak_pss_kib $peak_pss"
echo "hold_pss_kib_per_extra_process $(( (peak_pss - base_pss) / (hold_n - 1) ))"
