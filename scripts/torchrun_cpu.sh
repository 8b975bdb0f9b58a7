#!/usr/bin/env bash
# Data-parallel `emoclip train` on one machine, launched the way torchrun does it: NPROC processes with
# RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT set; on CPU the ranks talk over TCP.
# Every rank trains on `batch_size` clips per step (the global batch is NPROC × batch_size); rank 0 writes
# checkpoints, metrics.jsonl and loss.svg to the config's out_dir (or --out).
#
# Usage: scripts/torchrun_cpu.sh [NPROC] [emoclip train arguments...]
#   scripts/torchrun_cpu.sh 2 --config configs/train_tiny.toml --out runs/train_tiny_dp
# Environment: EMOCLIP (binary, default the newer of target/{release,debug}/emoclip), MASTER_PORT
# (default 29500), EMOCLIP_DIST_TIMEOUT (seconds a rank waits for the others, default 600), THREADS (compute
# threads per rank, default cores / NPROC).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NPROC="${1:-2}"
shift || true
if ! [[ "$NPROC" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 NPROC [emoclip train arguments...] (NPROC must be a positive integer, got '$NPROC')" >&2
    exit 2
fi
[ $# -gt 0 ] || set -- --config "$ROOT/configs/train_tiny.toml"
BIN="${EMOCLIP:-}"
if [ -z "$BIN" ]; then
    # The newer of the release and debug builds (a stale release binary may predate data-parallel support).
    for b in "$ROOT/target/release/emoclip" "$ROOT/target/debug/emoclip"; do
        if [ -x "$b" ] && { [ -z "$BIN" ] || [ "$b" -nt "$BIN" ]; }; then BIN="$b"; fi
    done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "no emoclip binary: run 'cargo build --release' or set EMOCLIP" >&2; exit 2; }
THREADS="${THREADS:-$(( $(nproc) / NPROC > 0 ? $(nproc) / NPROC : 1 ))}"

export MASTER_ADDR=127.0.0.1 MASTER_PORT="${MASTER_PORT:-29500}" WORLD_SIZE="$NPROC"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup INT TERM
for ((r = 0; r < NPROC; r++)); do
    RANK=$r LOCAL_RANK=$r RAYON_NUM_THREADS="$THREADS" "$BIN" --threads "$THREADS" train "$@" &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do
    wait "$p" || status=$?
done
# A failed rank makes the others stop with an error too (closed connection or timeout).
exit "$status"
