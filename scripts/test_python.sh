#!/usr/bin/env bash
# The Python package's tests (crates/emoclip-py/tests, pytest): builds the `emoclip` extension into a project
# venv (.venv-py, or $EMOCLIP_PY_VENV; created on first use with pinned maturin/pytest/numpy from PyPI), runs the
# tests against the `emoclip` CLI binary of the same cargo build, then examples/quickstart.py on random weights.
# scripts/test.sh runs this after the Rust tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${EMOCLIP_PY_VENV:-$ROOT/.venv-py}"
PYTHON="${PYTHON:-python3}"
PINS=("maturin==1.16.0" "pytest==9.2.0" "numpy==2.4.6")
if ! "$VENV/bin/python" -c "import maturin, pytest, numpy" 2>/dev/null; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$ROOT/third_party/onnxruntime/libonnxruntime.so}"
# The CLI the tests compare against: the dev-profile binary `cargo test --workspace` already built.
cargo build --quiet -p emoclip-cli
TARGET="$(cargo metadata --format-version 1 --no-deps | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export EMOCLIP_CLI="${EMOCLIP_CLI:-$TARGET/debug/emoclip}"
# `maturin develop` (dev profile): reuses the dependencies of the cargo build above instead of a release build.
VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" develop --quiet -m crates/emoclip-py/Cargo.toml
"$VENV/bin/python" -m pytest -q crates/emoclip-py/tests "$@"
