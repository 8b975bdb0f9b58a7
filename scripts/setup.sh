#!/usr/bin/env bash
# One command from a fresh Debian 12 machine: build dependencies, sample media, release build, and the
# main job: analyze a sample video over time (per-window emotion timeline + report.html), embed the sample
# videos and image, then a zero-shot similarity table.
# Set EMOCLIP_WEIGHTS to a real checkpoint (e.g. the released EmotionCLIP .pt) to use it; without it a
# randomly initialised ViT-B/32 EmotionCLIP is used, which shows the pipeline but gives meaningless vectors.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install_deps.sh
bash scripts/fetch_media.sh
cargo build --release -p emoclip-cli
BIN="$ROOT/target/release/emoclip"
WEIGHTS="${EMOCLIP_WEIGHTS:-random}"
mkdir -p out
echo "== emoclip analyze (weights: $WEIGHTS)"
# No person detector ships with the project (pass --detector yolov8n.onnx for per-person rows): scene rows only.
"$BIN" analyze media/Megamind.avi --weights "$WEIGHTS" --prompts basic --out out/analyze
echo "== emoclip embed (weights: $WEIGHTS)"
set +e
"$BIN" embed media/vtest.avi media/Megamind.avi media/carphone_pristine.mp4 media/person.jpg \
    --weights "$WEIGHTS" --out out/embeddings.npy
rc=$?
set -e
[ "$rc" -le 1 ] || exit "$rc"
echo "== emoclip similarity"
"$BIN" similarity media/Megamind.avi media/vtest.avi media/person.jpg --weights "$WEIGHTS" \
    --prompt "a person who is happy" --prompt "a person who is angry" --prompt "a person who is sad" \
    --out out/similarity.json
echo "outputs: out/analyze/Megamind.avi/ (timeline.csv, report.html, ...), out/embeddings.npy (+ out/embeddings.files.txt), out/similarity.json"
