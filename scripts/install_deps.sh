#!/usr/bin/env bash
# Installs the Debian packages emoclip needs to build (FFmpeg development libraries for ffmpeg-next,
# clang/libclang for its bindgen step, pkg-config, the ffmpeg CLI for decoder-parity tests) and ONNX Runtime's shared library. Idempotent.
set -euo pipefail
#
# Each "already there?" test checks what the consumer actually loads, not a look-alike file:
#  - FFmpeg: pkg-config must resolve every library ffmpeg-sys-next links (its .pc files come only with -dev).
#  - libclang: bindgen (clang-sys) dlopens libclang.so / libclang-N.so / libclang.so.N and needs clang's
#    builtin headers (stddef.h). libclang-cpp.so.N (the C++ API, present on the base image) is NOT libclang.
#  - ffmpeg: the command-line tool the decoder-parity tests compare against.
need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists libavcodec libavformat libavutil libswscale libswresample libavfilter libavdevice 2>/dev/null \
    || need+=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev)
have_libclang() {
    local d f
    for d in ${LIBCLANG_PATH:-} /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
        for f in "$d"/libclang.so "$d"/libclang.so.* "$d"/libclang-[0-9]*.so "$d"/libclang-[0-9]*.so.*; do
            [ -e "$f" ] && return 0
        done
    done
    return 1
}
have_clang_headers() { compgen -G '/usr/lib/llvm-*/lib/clang/*/include/stddef.h' >/dev/null; }
{ have_libclang && have_clang_headers; } || need+=(libclang-dev clang)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
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
