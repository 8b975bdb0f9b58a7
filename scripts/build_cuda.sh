#!/usr/bin/env bash
# Builds the CUDA `emoclip` binary (candle `--features cuda`, optionally `nccl`) on a machine with no GPU and
# no system CUDA toolkit, as measured here (README, "GPU (CUDA) build"):
#   1. nvcc, cicc/libnvvm, crt headers, cudart and cccl from NVIDIA's PyPI wheels, pinned to CUDA 13.0.x
#      (a newer 13.x emits PTX that driver 580 cannot JIT), unpacked into third_party/cuda/ (gitignored);
#   2. candle-core 0.11.1 asks cudarc for `dynamic-linking` (libcuda, cublas, curand, nvrtc at link time; no
#      wheel ships libcuda). We do not copy candle's source: the build runs in a scratch copy of the workspace
#      whose `[patch.crates-io]` points cudarc at a copy of the registry's cudarc 0.19.10 in which the
#      `dynamic-linking` feature means `dynamic-loading` (dlopen at run time; its own cfgs become `any()`,
#      i.e. false). The repository's own Cargo files and Cargo.lock are never modified.
#   3. CUDA_COMPUTE_CAP (default 90 = H100/H200) so candle's kernel build does not ask nvidia-smi.
# Output: target/cuda/release/emoclip. It links no CUDA library (it starts on CPU-only machines too);
# libcuda/cublas/curand/nvrtc (and nccl with --nccl) are dlopen'ed when a CUDA device is first used, so set
# LD_LIBRARY_PATH to the CUDA libraries, e.g. PyTorch's `site-packages/nvidia/cu13/lib`.
#
# Usage: scripts/build_cuda.sh [--nccl] [--check]   (--check: `cargo check` only, minutes instead of ~20)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FEATURES="cuda"
CMD=build
for a in "$@"; do
    case "$a" in
        --nccl) FEATURES="cuda,nccl" ;;
        --check) CMD=check ;;
        -h|--help) sed -n 2,19p "$0"; exit 0 ;;
        *) echo "unknown option $a (use --nccl, --check)" >&2; exit 2 ;;
    esac
done

CUDA_ROOT="$ROOT/third_party/cuda"
export CUDA_HOME="$CUDA_ROOT/nvidia/cu13"
WHEELS=(
    "nvidia-cuda-nvcc==13.0.88"     # nvcc, ptxas, fatbinary, nvlink
    "nvidia-nvvm==13.0.88"          # cicc, libnvvm, libdevice (moved out of the nvcc wheel in CUDA 13)
    "nvidia-cuda-crt==13.0.88"      # crt headers
    "nvidia-cuda-runtime==13.0.96"  # cuda_runtime.h, cuda_fp16.h, libcudart.so.13
    "nvidia-cuda-cccl==13.0.85"     # cub / thrust / libcu++
)

# --- 1. toolkit from wheels ---------------------------------------------------------------------------------
if [ ! -x "$CUDA_HOME/bin/nvcc" ] || [ ! -f "$CUDA_ROOT/.complete" ]; then
    echo "fetching the CUDA 13.0 toolkit pieces from PyPI into $CUDA_ROOT"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        "${WHEELS[@]}" -d "$tmp/wheels"
    rm -rf "$CUDA_ROOT.part" && mkdir -p "$CUDA_ROOT.part"
    python3 - "$tmp/wheels" "$CUDA_ROOT.part" <<'PY'
import glob, os, sys, zipfile
for whl in sorted(glob.glob(os.path.join(sys.argv[1], "*.whl"))):
    with zipfile.ZipFile(whl) as z:
        z.extractall(sys.argv[2])
PY
    rm -rf "$CUDA_ROOT" && mv "$CUDA_ROOT.part" "$CUDA_ROOT"
    chmod +x "$CUDA_HOME"/bin/* "$CUDA_HOME"/nvvm/bin/* 2>/dev/null || true
    # candle-kernels links `-lcudart`; the wheel only has the versioned name.
    ln -sf libcudart.so.13 "$CUDA_HOME/lib/libcudart.so"
    touch "$CUDA_ROOT/.complete"
fi
export PATH="$CUDA_HOME/bin:$PATH"
export LIBRARY_PATH="$CUDA_HOME/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
nvcc --version | tail -n 2

# --- 2. scratch workspace with cudarc patched to dynamic-loading -------------------------------------------
BUILD="$ROOT/target/cuda-build"
mkdir -p "$BUILD"
CUDARC_VERSION="$(awk '/^name = "cudarc"/{getline; gsub(/[^0-9.]/, "", $0); print; exit}' "$ROOT/Cargo.lock")"
[ -n "$CUDARC_VERSION" ] || { echo "cudarc is not in Cargo.lock; run \`cargo fetch\` first" >&2; exit 1; }
(cd "$ROOT" && cargo fetch --quiet)
CUDARC_SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$CUDARC_VERSION" | head -n 1)"
[ -d "$CUDARC_SRC" ] || { echo "cudarc $CUDARC_VERSION source not found in the cargo registry" >&2; exit 1; }
rm -rf "$BUILD/cudarc" && cp -r "$CUDARC_SRC" "$BUILD/cudarc"
# `dynamic-linking` becomes an alias of `dynamic-loading`; every cfg on the old name is switched off.
sed -i 's/^dynamic-linking = \[\]/dynamic-linking = ["dynamic-loading"]/' "$BUILD/cudarc/Cargo.toml"
grep -q '^dynamic-linking = \["dynamic-loading"\]' "$BUILD/cudarc/Cargo.toml" \
    || { echo "cudarc $CUDARC_VERSION: unexpected Cargo.toml layout, patch not applied" >&2; exit 1; }
grep -rl 'feature = "dynamic-linking"' "$BUILD/cudarc" --include='*.rs' \
    | xargs -r sed -i 's/feature = "dynamic-linking"/any()/g'

WS="$BUILD/ws"
mkdir -p "$WS"
# Copy the workspace sources (not target/, media/, fixtures/); `cp -a` keeps mtimes, so rebuilds stay incremental.
rm -rf "$WS/crates"
cp -a "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" "$ROOT/crates" "$WS/"
cat >>"$WS/Cargo.toml" <<EOF

# Added by scripts/build_cuda.sh (scratch copy only).
[patch.crates-io]
cudarc = { path = "$BUILD/cudarc" }
EOF

# --- 3. build -------------------------------------------------------------------------------------------------
cd "$WS"
CARGO_TARGET_DIR="$ROOT/target/cuda" cargo "$CMD" --release -p emoclip-cli --features "$FEATURES"
if [ "$CMD" = build ]; then
    ls -l "$ROOT/target/cuda/release/emoclip"
    echo "built $ROOT/target/cuda/release/emoclip (features: $FEATURES, sm_$CUDA_COMPUTE_CAP)"
fi
