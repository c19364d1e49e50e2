#!/usr/bin/env bash
# Builds every guest program in tests/programs for wasm32-wasip2 into
# target/guests/wasm32-wasip2/release/<name>.wasm.
#
# Uses rustup's wasm32-wasip2 target when it is installed; otherwise Debian's rustc-web with
# -Zbuild-std (scripts/setup-guest-toolchain.sh installs it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${WASMPROC_GUEST_TARGET_DIR:-$root/target/guests}"

# Build scripts export variables meant for the outer build; they must not leak into this one.
unset RUSTC RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS \
      CARGO_TARGET_DIR CARGO_BUILD_TARGET CARGO_MAKEFLAGS MAKEFLAGS MFLAGS \
      CARGO_PRIMARY_PACKAGE CARGO_MANIFEST_DIR CARGO_PKG_NAME TARGET HOST OUT_DIR \
      CARGO_BUILD_RUSTC CARGO_BUILD_RUSTC_WRAPPER

args=(build --release --manifest-path "$root/tests/programs/Cargo.toml" --target wasm32-wasip2
      --target-dir "$target_dir")
if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  exec cargo "${args[@]}" "$@"
fi

missing=()
[ -x /usr/bin/rustc ] && /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.' || missing+=(rustc-web)
[ -d /usr/lib/rustlib/src/rust/library ] || missing+=(rust-web-src)
[ -e /usr/bin/wasm-ld-22 ] || missing+=(lld-22)
[ -d /usr/lib/wasm32-wasi ] || missing+=(wasi-libc)
if [ ${#missing[@]} -ne 0 ]; then
  echo "error: no toolchain for wasm32-wasip2 guests (missing: ${missing[*]})." >&2
  echo "  Run scripts/setup-guest-toolchain.sh (installs Debian's rustc-web, rust-web-src," >&2
  echo "  rust-web-llvm, lld-22 and wasi-libc), or: rustup target add wasm32-wasip2" >&2
  exit 1
fi

export RUSTC_BOOTSTRAP=1
exec cargo "${args[@]}" \
  --config 'build.rustc="/usr/bin/rustc"' \
  --config 'target.wasm32-wasip2.rustflags=["-L","native=/usr/lib/wasm32-wasi","-C","link-arg=--wasm-ld-path=/usr/bin/wasm-ld-22"]' \
  -Zbuild-std=std,panic_abort "$@"
