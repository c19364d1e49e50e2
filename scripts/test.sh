#!/usr/bin/env bash
# Every test: installs what is missing, builds the guest test programs and runs the whole
# workspace's tests (release profile, shared with the demo and the benchmark).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (rustup) first" >&2; exit 1; }
scripts/setup-guest-toolchain.sh
# componentize-py, which tests/all/python.rs builds the Python guest test program with.
scripts/setup-python-guest.sh >/dev/null
cargo test --release --workspace "$@"
# Both crates carry the WIT they are built from (host/wit and guest-sdk/wit link to wit/), so
# that each can be packaged without the repository.
wits=$(cargo package --list --offline --allow-dirty -p wasmproc -p wasmproc-guest 2>/dev/null \
  | grep -c '^wit/process.wit$' || true)
if [ "$wits" != 2 ]; then
  echo "error: cargo package lists wit/process.wit in $wits of the 2 crates" >&2
  exit 1
fi
