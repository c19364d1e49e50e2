#!/usr/bin/env bash
# Builds a Python program into a wasmproc component: scripts/build-python-guest.sh APP.py OUT.wasm
# (`wasmproc build APP.py -o OUT.wasm` does the same.) Installs componentize-py first when
# it is missing (scripts/setup-python-guest.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -ne 2 ] || [[ "$1" != *.py ]]; then
  echo "usage: $0 APP.py OUT.wasm" >&2
  exit 2
fi
app="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
out="$2"
cpy="$("$root/scripts/setup-python-guest.sh")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
module="$(basename "$app" .py)"
cat > "$tmp/wasmproc_app_main.py" <<PY
import wasmproc._guest as _guest
_guest.prepare("$module")
Guest = _guest.Guest
PY
"$cpy" -d "$root/wit" -w program componentize \
  -p "$tmp" -p "$root/python" -p "$(dirname "$app")" wasmproc_app_main -o "$out"
