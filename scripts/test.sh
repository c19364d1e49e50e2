#!/usr/bin/env bash
# Every test: installs what is missing, builds the guest test programs and runs the whole
# workspace's tests (release profile, shared with the demo and the benchmark).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (rustup) first" >&2; exit 1; }
scripts/setup-guest-toolchain.sh
cargo test --release --workspace "$@"
