#!/usr/bin/env bash
# Runs bench_python.py (see its docstring): builds the release extension and the release CLI in one cargo
# invocation, stages an importable `emoclip` package under <target>/py-bench/, and runs the benchmark with
# .venv-fixtures' Python (torch, open_clip, torchvision). Extra arguments go to bench_python.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
PYO3_BUILD_EXTENSION_MODULE=1 cargo build --release --workspace --lib --bins
TARGET="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
STAGE="$TARGET/py-bench"
rm -rf "$STAGE" && mkdir -p "$STAGE/emoclip"
cp crates/emoclip-py/python/emoclip/*.py crates/emoclip-py/python/emoclip/*.pyi crates/emoclip-py/python/emoclip/py.typed "$STAGE/emoclip/"
cp "$TARGET/release/lib_emoclip.so" "$STAGE/emoclip/_emoclip.abi3.so"
PYTHONPATH="$STAGE" "$ROOT/.venv-fixtures/bin/python" crates/emoclip-py/bench/bench_python.py \
    --cli "$TARGET/release/emoclip" "$@"
