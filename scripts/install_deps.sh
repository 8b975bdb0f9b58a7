#!/usr/bin/env bash
# Installs the Debian packages emoclip needs to build (FFmpeg development libraries for ffmpeg-next,
# clang/libclang for its bindgen step, pkg-config) and ONNX Runtime's shared library. Idempotent.
set -euo pipefail
need=()
pkg-config --exists libavcodec libavformat libavutil libswscale 2>/dev/null || need+=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev libavdevice-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev clang)
if [ "${#need[@]}" -gt 0 ]; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    echo "installing build dependencies: ${need[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# ONNX Runtime shared library for the `ort` crate (load-dynamic): extracted from the PyPI wheel into
# third_party/onnxruntime/ (gitignored). Used by the YOLO person detector and its tests.
ORT_VERSION=1.32.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_DIR="$ROOT/third_party/onnxruntime"
if [ ! -f "$ORT_DIR/libonnxruntime.so" ]; then
    echo "fetching onnxruntime $ORT_VERSION (PyPI wheel) for libonnxruntime.so"
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_28_x86_64 "onnxruntime==$ORT_VERSION" -d "$tmp"
    mkdir -p "$ORT_DIR"
    python3 - "$tmp" "$ORT_DIR" <<'PY'
import glob, os, sys, zipfile
whl = glob.glob(os.path.join(sys.argv[1], "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if "/capi/libonnxruntime.so." in n)
    data = z.read(name)
tmp = os.path.join(sys.argv[2], ".libonnxruntime.so.part")
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, os.path.join(sys.argv[2], "libonnxruntime.so"))
PY
    rm -rf "$tmp"
fi
