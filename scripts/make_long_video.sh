#!/usr/bin/env bash
# Test and benchmark videos for `emoclip analyze`, made with the ffmpeg CLI from the sample videos in media/
# (scripts/fetch_media.sh). Never committed: everything goes to OUT_DIR (e.g. target/videos).
#
#   scripts/make_long_video.sh OUT_DIR [--minutes 30] [--long-minutes 120] [--only base|long|small]
#
# OUT_DIR/
#   base_720p.mp4     ~95 s, 1280x720, 25 fps, H.264 (keyframe every 2 s) + AAC stereo: vtest.avi (people walking,
#                     79.5 s) + Megamind.avi (faces, with its audio) + carphone_pristine.mp4, each scaled and
#                     letterboxed to 720p; silence where a source has no audio
#   long_<M>min.mp4   base_720p.mp4 repeated to M minutes (default 30) with stream copy: the benchmark video
#   long_<L>min.mp4   the same to L minutes (default 120): the memory check
#   vfr.mkv           vtest with frames dropped irregularly (3 of every 7 for the first 40 s), timestamps kept:
#                     variable frame rate
#   offset.mkv        vtest starting at media time 10 s (container start time 10 s, first frame at 10 s)
#   vtest.ts          vtest as MPEG-TS (starts at 1.4 s, as MPEG-TS does)
#   rotated.mp4       carphone with a 90° display rotation (phone video): decoded frames are 176x144, players
#                     show 144x176
#   corrupt.mp4       vtest as H.264 with 64 KiB at its middle overwritten (0x55 bytes): a stretch of undecodable
#                     frames
#   audio_only.m4a    10 s of a sine tone, no video stream
#   no_people.mp4     20 s of ffmpeg's testsrc2 pattern at 1280x720: nobody to detect
#   short.mp4         1.5 s of Megamind: shorter than one 4 s window
#
# Encoding the 95 s base takes about a minute on 2 cores; the long videos are stream copies (I/O only,
# ~20 MB per 95 s: ~0.4 GB for 30 min, ~1.5 GB for 2 h).
set -euo pipefail

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-1}"; }
[[ $# -ge 1 ]] || usage
[[ "$1" == -h || "$1" == --help ]] && usage 0
OUT="$1"; shift
MINUTES=30
LONG_MINUTES=120
ONLY=all
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --long-minutes) LONG_MINUTES="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage ;;
  esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MEDIA="$ROOT/media"
for f in vtest.avi Megamind.avi carphone_pristine.mp4; do
  [[ -f "$MEDIA/$f" ]] || { echo "$MEDIA/$f missing: run scripts/fetch_media.sh first" >&2; exit 1; }
done
command -v ffmpeg >/dev/null || { echo "ffmpeg not found: apt-get install ffmpeg" >&2; exit 1; }
mkdir -p "$OUT"
FF=(ffmpeg -hide_banner -loglevel error -nostdin -y)

dur() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }
fit='fps=25,scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p'

make_base() {
  local d0 d1 d2
  d0=$(dur "$MEDIA/vtest.avi"); d1=$(dur "$MEDIA/Megamind.avi"); d2=$(dur "$MEDIA/carphone_pristine.mp4")
  echo "base_720p.mp4: ${d0}s + ${d1}s + ${d2}s"
  "${FF[@]}" -i "$MEDIA/vtest.avi" -i "$MEDIA/Megamind.avi" -i "$MEDIA/carphone_pristine.mp4" \
    -f lavfi -i anullsrc=r=48000:cl=stereo \
    -filter_complex "[0:v]$fit,trim=duration=$d0[v0];[1:v]$fit,trim=duration=$d1[v1];[2:v]$fit,trim=duration=$d2[v2];
      [3:a]asplit=2[s0][s2];[s0]atrim=duration=$d0[a0];
      [1:a]aresample=48000,aformat=channel_layouts=stereo,apad,atrim=duration=$d1[a1];
      [s2]atrim=duration=$d2[a2];
      [v0][a0][v1][a1][v2][a2]concat=n=3:v=1:a=1[v][a]" \
    -map '[v]' -map '[a]' -c:v libx264 -preset veryfast -crf 26 -g 50 -keyint_min 50 -sc_threshold 0 \
    -c:a aac -b:a 96k -movflags +faststart "$OUT/base_720p.mp4"
}

loop_to() { # minutes, output
  local minutes="$1" out="$2" base_d n list
  base_d=$(dur "$OUT/base_720p.mp4")
  n=$(awk -v m="$minutes" -v d="$base_d" 'BEGIN { n = int(m * 60 / d); if (n * d < m * 60) n++; print n }')
  list="$OUT/.concat_$minutes.txt"
  : > "$list"
  for ((i = 0; i < n; i++)); do echo "file 'base_720p.mp4'" >> "$list"; done
  echo "$(basename "$out"): base x $n, cut at $minutes min (stream copy)"
  "${FF[@]}" -f concat -safe 0 -i "$list" -t "$((minutes * 60))" -c copy -movflags +faststart "$out"
  rm -f "$list"
}

make_small() {
  echo "vfr.mkv, offset.mkv, vtest.ts, rotated.mp4, corrupt.mp4, audio_only.m4a, no_people.mp4, short.mp4"
  # variable frame rate: drop frames 4,5,6 of every 7 during the first 40 s, keep the source timestamps
  "${FF[@]}" -i "$MEDIA/vtest.avi" -vf "select='gte(t\,40)+lt(mod(n\,7)\,4)'" -fps_mode passthrough \
    -c:v libx264 -preset veryfast -crf 26 "$OUT/vfr.mkv"
  # non-zero start time
  "${FF[@]}" -i "$MEDIA/vtest.avi" -c:v libx264 -preset veryfast -crf 26 -output_ts_offset 10 "$OUT/offset.mkv"
  "${FF[@]}" -i "$MEDIA/vtest.avi" -c:v libx264 -preset veryfast -crf 26 -f mpegts "$OUT/vtest.ts"
  # phone video: display rotation in the container, pixels unchanged
  "${FF[@]}" -i "$MEDIA/carphone_pristine.mp4" -c copy -metadata:s:v:0 rotate=90 "$OUT/rotated.mp4"
  # corrupt stretch: overwrite 64 KiB at the middle of the file (the mp4 index stays intact)
  "${FF[@]}" -i "$MEDIA/vtest.avi" -c:v libx264 -preset veryfast -crf 26 -g 25 "$OUT/corrupt.mp4"
  local size
  size=$(stat -c %s "$OUT/corrupt.mp4")
  head -c 65536 /dev/zero | tr '\0' '\125' | dd of="$OUT/corrupt.mp4" bs=4096 seek=$((size / 2 / 4096)) conv=notrunc status=none
  "${FF[@]}" -f lavfi -i sine=frequency=440:duration=10 -c:a aac -b:a 64k "$OUT/audio_only.m4a"
  "${FF[@]}" -f lavfi -i testsrc2=size=1280x720:rate=25:duration=20 -c:v libx264 -preset veryfast -crf 28 \
    -pix_fmt yuv420p "$OUT/no_people.mp4"
  "${FF[@]}" -i "$MEDIA/Megamind.avi" -t 1.5 -c:v libx264 -preset veryfast -crf 26 -c:a aac "$OUT/short.mp4"
}

case "$ONLY" in
  base) make_base ;;
  long) [[ -f "$OUT/base_720p.mp4" ]] || make_base; loop_to "$MINUTES" "$OUT/long_${MINUTES}min.mp4"; loop_to "$LONG_MINUTES" "$OUT/long_${LONG_MINUTES}min.mp4" ;;
  small) make_small ;;
  all) make_base; loop_to "$MINUTES" "$OUT/long_${MINUTES}min.mp4"; loop_to "$LONG_MINUTES" "$OUT/long_${LONG_MINUTES}min.mp4"; make_small ;;
  *) echo "--only must be base, long or small" >&2; exit 1 ;;
esac
ls -l "$OUT"
