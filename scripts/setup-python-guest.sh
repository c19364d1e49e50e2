#!/usr/bin/env bash
# Installs what building Python guests needs, idempotently: a pinned componentize-py (which
# embeds CPython 3.x for wasm32-wasip2) from PyPI into a private virtual environment.
#
# Where: $WASMPROC_PYTHON_GUEST_VENV when set, otherwise
# ${XDG_CACHE_HOME:-$HOME/.cache}/wasmproc/python-guest/componentize-py-<version>.
# Prints the path of the componentize-py executable on stdout (messages go to stderr), so
# that `cpy=$(scripts/setup-python-guest.sh)` works.
set -euo pipefail

version="0.25.1"
venv="${WASMPROC_PYTHON_GUEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmproc/python-guest/componentize-py-$version}"
exe="$venv/bin/componentize-py"

if [ -x "$exe" ] && "$exe" --version 2>/dev/null | grep -q "$version"; then
  echo "wasmproc python setup: componentize-py $version already installed in $venv" >&2
  echo "$exe"
  exit 0
fi

python=""
for p in python3 python3.11 python3.12 python3.13 python; do
  if command -v "$p" >/dev/null 2>&1; then python="$p"; break; fi
done
if [ -z "$python" ]; then
  echo "wasmproc python setup: python3 not found; install python3 with venv and pip" >&2
  exit 1
fi

echo "wasmproc python setup: installing componentize-py $version into $venv (from PyPI)" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
if "$python" -m venv "$venv" >&2 2>/dev/null && [ -x "$venv/bin/pip" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "componentize-py==$version" >&2
else
  # Debian's python3 without python3-venv: a venv without pip, filled by the system's pip.
  rm -rf "$venv"
  "$python" -m venv --without-pip "$venv" >&2
  "$python" -m pip --python "$venv/bin/python" install -q --disable-pip-version-check \
    "componentize-py==$version" >&2
fi
"$exe" --version >&2
echo "$exe"
