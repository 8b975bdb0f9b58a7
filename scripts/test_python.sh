#!/usr/bin/env bash
# The Python package's tests (crates/emoclip-py/tests, pytest; scripts/test.sh runs this after the Rust tests).
# A project venv (.venv-py, or $EMOCLIP_PY_VENV) gets pinned pytest, numpy and pandas (to test `to_pandas`; not a
# dependency of the package) from PyPI on first use; the
# extension is built by the same cargo build as the Rust tests and installed editable (what `maturin develop`
# does), and the tests compare it with the `emoclip` binary of that build. Measured: right after
# `cargo test --workspace` the build here only compiles pyo3/numpy/emoclip-py (~30 s on 2 loaded cores);
# `maturin develop` builds emoclip-py alone, which resolves the workspace's features differently and recompiles
# emoclip and its dependencies (12 min). The wheel itself: docs/python.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${EMOCLIP_PY_VENV:-$ROOT/.venv-py}"
PYTHON="${PYTHON:-python3}"
PINS=("pytest==9.2.0" "numpy==2.4.6" "pandas==3.1.1")
if ! "$VENV/bin/python" -c "import pytest, numpy, pandas" 2>/dev/null; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$ROOT/third_party/onnxruntime/libonnxruntime.so}"
# The CLI binary with the workspace's features (nothing to do right after `cargo test --workspace`).
cargo test --workspace --no-run --quiet
# The extension module: PYO3_BUILD_EXTENSION_MODULE (what maturin sets) leaves the Python symbols to the
# interpreter that imports it instead of linking libpython.
PYO3_BUILD_EXTENSION_MODULE=1 cargo build --workspace --lib --quiet
TARGET="$(cargo metadata --format-version 1 --no-deps | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
PKG="$ROOT/crates/emoclip-py/python"
cp "$TARGET/debug/lib_emoclip.so" "$PKG/emoclip/_emoclip.abi3.so.tmp"
mv "$PKG/emoclip/_emoclip.abi3.so.tmp" "$PKG/emoclip/_emoclip.abi3.so"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$PKG" > "$SITE/emoclip-dev.pth"
export EMOCLIP_CLI="${EMOCLIP_CLI:-$TARGET/debug/emoclip}"
"$VENV/bin/python" -m pytest -q crates/emoclip-py/tests "$@"
