#!/usr/bin/env bash
# Holds N sleeping children of the wasm backend in one `wasmproc run` and counts the host's
# kernel mappings (lines of /proc/<pid>/maps) and memory with them, against the same host
# holding none: `scripts/hold-maps.sh N [wasmproc run flags...]`.
#
# Uses target/release/wasmproc (cargo build --release) and the guest hostile_maps.wasm
# (scripts/build-guests.sh --bin hostile_maps). Prints one line per host: how many sleepers
# it held (or the refusal that stopped it, or how it died), its mappings and RSS.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exe="$root/target/release/wasmproc"
guest="$root/target/guests/wasm32-wasip2/release/hostile_maps.wasm"
n="${1:?usage: hold-maps.sh N [flags...]}"
shift

hold() {
  local want="$1" out pid start line
  shift
  out="$(mktemp)"
  "$exe" run "$@" "$guest" -- "$want" hold >"$out" 2>&1 &
  pid=$!
  start=$(date +%s.%N)
  while kill -0 "$pid" 2>/dev/null && ! grep -q '^holding' "$out"; do sleep 0.2; done
  local secs
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  if kill -0 "$pid" 2>/dev/null; then
    local maps rss
    maps=$(wc -l <"/proc/$pid/maps")
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    line="$(grep -v '^holding' "$out" | tail -1)"
    echo "asked $want: $(grep '^holding' "$out"); maps $maps; rss ${rss} KiB; ${secs}s${line:+; $line}"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
  else
    wait "$pid"
    echo "asked $want: host exited with status $?: $(tail -3 "$out" | tr '\n' '|')"
  fi
  rm -f "$out"
}

hold 0 "$@"
hold "$n" "$@"
