#!/usr/bin/env bash
# Benchmark of `emoclip analyze` on long generated videos (a script, not a timed test).
#
#   scripts/bench_analyze.sh [--minutes 30] [--long-minutes 120] [--weights random] [--dtype f32|bf16] [--batch N]
#                            [--detector FILE] [--skip-long]
#
# Makes target/videos/long_<M>min.mp4 (1280x720, 25 fps) with scripts/make_long_video.sh, builds the release
# binary, runs `emoclip analyze` on it (full-size ViT-B/32 EmotionCLIP with random weights by default; with
# --detector, e.g. target/fixtures/yolov8n.onnx from scripts/fixtures/gen_yolov8n.py, persons are detected)
# and prints: video seconds per wall second, frames decoded / converted / used, seconds per stage (decode,
# detect, track, preprocess, encode, score, write) and peak RSS (/usr/bin/time -v). The same on the
# <L>-minute video shows whether memory depends on the length (--skip-long leaves it out).
# Goals (issue 13): converted = used; peak RSS independent of length (< 1.5 GB with ViT-B/32); the model, not
# decoding, is the bottleneck.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MINUTES=30; LONG=120; WEIGHTS=random; DTYPE=f32; BATCH=8; DETECTOR=""; SKIP_LONG=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --long-minutes) LONG="$2"; shift 2 ;;
    --weights) WEIGHTS="$2"; shift 2 ;;
    --dtype) DTYPE="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --detector) DETECTOR="$2"; shift 2 ;;
    --skip-long) SKIP_LONG=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 1 ;;
  esac
done
cd "$ROOT"
VID=target/videos
[[ -f "$VID/base_720p.mp4" ]] || bash scripts/make_long_video.sh "$VID" --only base
mk() { # minutes
  local m="$1"; [[ -f "$VID/long_${m}min.mp4" ]] && return
  [[ "$m" == 0 ]] && return
  bash scripts/make_long_video.sh "$VID" --only long --minutes "$m" --long-minutes "$m"
}
mk "$MINUTES"; [[ $SKIP_LONG == 1 ]] || mk "$LONG"
# EMOCLIP_BIN: a binary already built (skips the release build)
if [[ -n "${EMOCLIP_BIN:-}" ]]; then BIN="$EMOCLIP_BIN"; else
cargo build --release -p emoclip-cli
BIN="${CARGO_TARGET_DIR:-target}/release/emoclip"
[[ -x "$BIN" ]] || BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/emoclip"
fi
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$ROOT/third_party/onnxruntime/libonnxruntime.so}"

run() { # minutes
  local m="$1"
  local out="target/bench_analyze/${m}min" log="target/bench_analyze/${m}min.time"
  rm -rf "$out"; mkdir -p "$out"
  local det=(); [[ -n "$DETECTOR" ]] && det=(--detector "$DETECTOR")
  echo "== $m min: emoclip --threads 2 analyze --weights $WEIGHTS --dtype $DTYPE --batch $BATCH ${det[*]}"
  /usr/bin/time -v "$BIN" --threads 2 analyze "$VID/long_${m}min.mp4" --out "$out" --weights "$WEIGHTS" --dtype "$DTYPE" --batch "$BATCH" "${det[@]}" 2> "$log" || { tail -20 "$log"; exit 1; }
  python3 - "$out/long_${m}min.mp4/.done" "$log" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1])); s = d["stats"]; t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
wall = s["wall_s"] + s["write_s"]
print(f"video {d['duration']:.0f} s in {wall:.1f} s wall: {d['duration'] / wall:.2f} video-s per wall-s")
print(f"frames decoded {s['frames_decoded']} / converted {s['frames_converted']} / used {s['frames_used']}"
      f" (detected {s['frames_detected']}); windows {s['windows']}, clips {s['clips']}")
print("seconds: " + ", ".join(f"{k} {s[k + '_s']:.1f}" for k in ["decode", "detect", "track", "preprocess", "encode", "score", "write"]))
print(f"peak RSS {rss:.0f} MiB; frames held at most {s['max_frames_held']}")
PY
}
run "$MINUTES"
[[ $SKIP_LONG == 1 ]] || run "$LONG"
