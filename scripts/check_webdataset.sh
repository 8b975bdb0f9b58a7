#!/usr/bin/env bash
# Checks that the Python `webdataset` package reads the shards `emoclip prepare` writes (scripts/test.sh runs this
# after the Rust tests). Uses its own small venv (target/wds-venv, or $WDS_VENV) with webdataset from PyPI, created on
# first use; the shards come from the committed clip and the tiny text-emotion fixture model.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${WDS_VENV:-$ROOT/target/wds-venv}"
PYTHON="${PYTHON:-python3}"
if ! "$VENV/bin/python" -c "import webdataset, PIL" 2>/dev/null; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "webdataset==1.0.2" pillow
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cargo run --quiet -p emoclip-cli -- prepare fixtures/media/clip_vtest40.mp4 \
    --captions-dir fixtures/prepare_numbers/captions --emotion-model fixtures/text_emotion \
    --boxes-dir fixtures/prepare_numbers/boxes --neutral-max 1 --out "$TMP/out"
"$VENV/bin/python" scripts/check_webdataset.py "$TMP/out"
