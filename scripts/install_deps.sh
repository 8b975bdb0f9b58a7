#!/usr/bin/env bash
# Installs the Debian packages emoclip needs to build (FFmpeg development libraries for ffmpeg-next,
# clang/libclang for its bindgen step, pkg-config). Idempotent: does nothing when they are present.
set -euo pipefail
need=()
pkg-config --exists libavcodec libavformat libavutil libswscale 2>/dev/null || need+=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev libavdevice-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev clang)
if [ "${#need[@]}" -eq 0 ]; then
    exit 0
fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
echo "installing build dependencies: ${need[*]}"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
