#!/usr/bin/env bash
# The test command (README; CI runs exactly this). No network beyond the package registries; the tests use
# only committed fixtures.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install_deps.sh
cargo test --workspace --no-fail-fast 2>&1
# Python `webdataset` must read the shards `emoclip prepare` writes (own venv, webdataset from PyPI).
bash scripts/check_webdataset.sh
