#!/usr/bin/env bash
# The soak command: 100,000 (or $1) start+join cycles per backend, with memory, threads and
# descriptors at the start and the end, and the orphans left after a host killed by SIGKILL;
# then 1,000 (or $2) rounds of each hostile attack per backend under the default limits.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-guest-toolchain.sh
cargo bench -p wasmproc --bench soak -- "${1:-100000}" "${2:-1000}"
