#!/usr/bin/env bash
# Type-checks the `cuda` and `nccl` features (`cargo check -p emoclip-cli --features cuda,nccl`) without a CUDA
# toolkit, so CI catches a change that breaks the GPU code (scripts/test.sh runs it; docs/gpu.md).
#
# `cargo check` compiles no CUDA C and links nothing, so what `scripts/build_cuda.sh` fetches (nvcc and the
# CUDA headers from PyPI wheels, cudarc patched to load its libraries at run time) only matters for a real
# build. Two build scripts still ask for a toolkit:
#   - cudarc picks its API version from the toolkit: `CUDARC_CUDA_VERSION=13000` names it (CUDA 13.0, as the
#     real build uses);
#   - candle-kernels compiles its `.cu` kernels with nvcc into PTX strings and static libraries: `NVCC` points
#     at a stub that writes empty outputs (the PTX constants become "", never run by a check).
# So every line of Rust behind `#[cfg(feature = "cuda")]` / `"nccl"` (ours and candle's) is type-checked against
# the same candle and cudarc versions as the real build; the CUDA C kernels are candle's and are compiled only
# by `scripts/build_cuda.sh` (its `--check` does that too, ~9 min cold).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STUB="$ROOT/target/cuda-check/stub"
mkdir -p "$STUB/bin"
cat >"$STUB/bin/nvcc" <<'EOF'
#!/usr/bin/env bash
# Stub nvcc for `cargo check` (scripts/check_cuda.sh): answers the version queries, writes empty outputs.
set -eu
out="" outdir="" ptx=0 lib=0 src=""
while [ $# -gt 0 ]; do
    case "$1" in
        --version) echo "Cuda compilation tools, release 13.0, V13.0.88 (stub for cargo check)"; exit 0 ;;
        --list-gpu-code) echo "sm_90"; exit 0 ;;
        -o) out="$2"; shift ;;
        --output-directory) outdir="$2"; shift ;;
        --ptx) ptx=1 ;;
        --lib) lib=1 ;;
        *.cu) src="$1" ;;
    esac
    shift
done
if [ "$ptx" = 1 ]; then
    name="$(basename "$src" .cu).ptx"
    : >"${out:-$outdir/$name}"
elif [ "$lib" = 1 ]; then
    printf '!<arch>\n' >"$out"
elif [ -n "$out" ]; then
    : >"$out"
fi
EOF
chmod +x "$STUB/bin/nvcc"
export NVCC="$STUB/bin/nvcc" CUDA_HOME="$STUB" CUDARC_CUDA_VERSION=13000 CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# Its own target directory: the cuda feature set would otherwise rebuild candle in the shared one.
cd "$ROOT"
CARGO_TARGET_DIR="$ROOT/target/cuda-check" cargo check --locked -p emoclip-cli --features cuda,nccl "$@"
echo "cuda + nccl features type-check"
