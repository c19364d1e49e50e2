#!/usr/bin/env bash
# Installs what building wasmproc guests needs, idempotently.
#
# Route (see the project's toolchain notes): Debian's rustc-web (a Rust 1.96 compiler with the
# wasm backend) + its std sources, built with -Zbuild-std, linked by lld-22 and
# wasm-component-ld, against wasi-libc. When the user's rustup toolchain already has the
# wasm32-wasip2 target, that is used instead and nothing is installed.
set -euo pipefail

if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "wasmproc setup: using rustup's wasm32-wasip2 target"
  exit 0
fi

need=()
for pkg in rustc-web rust-web-src rust-web-llvm lld-22 wasi-libc; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "wasmproc setup: guest toolchain already installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "wasmproc setup: cannot install the guest toolchain: no apt-get here." >&2
  echo "  Install rustup's wasm32-wasip2 target (rustup target add wasm32-wasip2), or on Debian:" >&2
  echo "  apt-get install rustc-web rust-web-src rust-web-llvm lld-22 wasi-libc" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "wasmproc setup: installing ${need[*]} (Debian packages, ~30 s)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
echo "wasmproc setup: guest toolchain installed"
