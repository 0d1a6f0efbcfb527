#!/usr/bin/env bash
# The GPU check, in one script, for a machine with an NVIDIA GPU. Writes everything under one
# folder ($OUT, default gpu-check-DATE/):
#   nvidia-smi.txt     the GPU and driver
#   backends.txt       `srpnet backends`: what the binary was built with
#   parity-*.txt       forward and training-gradient parity of each GPU backend against flex on one
#                      fixed episode (tests/backends.rs: probabilities within 1e-3, weight
#                      gradients within 1e-3 of the largest entry) and the convolution checks of
#                      tests/conv.rs on every compiled backend (f64 definition, 1e-4 relative)
#   bench-*.txt        `srpnet bench` per backend (the embedded model and ResNet-50 at 417 px)
#   train-*/           a short paper-profile training (ResNet-50, 417 px, random initialisation,
#                      synthetic-5i fold 0, STEPS steps), `--plan` of the paper profile first
#   summary.txt        the lines that carry the numbers
#
# Usage: bash scripts/gpu-check.sh               builds with FEATURES (default "wgpu"), then runs
#        SRPNET_BIN_DIR=DIR bash scripts/gpu-check.sh   uses prebuilt binaries in DIR: srpnet,
#                      reproduce, and the test binaries backends-* and conv-* (cargo test --no-run)
# Exits 2 without a GPU, before building anything.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-gpu-check-$(date -u +%Y%m%d-%H%M%S)}
FEATURES=${FEATURES:-wgpu}
STEPS=${STEPS:-300}
RUNS=${RUNS:-5}
BACKENDS=${BACKENDS:-wgpu}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "error: no NVIDIA GPU found (nvidia-smi -L failed): this script checks the GPU backends" >&2
    echo "and has nothing to do on this machine; the CPU checks are \`cargo test\`." >&2
    exit 2
fi
mkdir -p "$OUT"
nvidia-smi >"$OUT/nvidia-smi.txt"

if [ -n "${SRPNET_BIN_DIR:-}" ]; then
    bin=$SRPNET_BIN_DIR
else
    cargo build --release --features "$FEATURES" --bin srpnet --bin reproduce
    cargo test --release --features "$FEATURES" --test backends --test conv --no-run \
        --message-format short 2>&1 | tee "$OUT/test-build.txt"
    bin=$OUT/bin
    mkdir -p "$bin"
    cp target/release/srpnet target/release/reproduce "$bin/"
    for t in backends conv; do
        cp "$(ls -t target/release/deps/$t-* | grep -v '\.d$' | head -1)" "$bin/$t-test"
    done
fi
srpnet=$bin/srpnet

# Every check runs even if an earlier one failed (a missing driver fails them all, and the
# folder should say so for each); the script exits 1 at the end if any failed.
failed=()
step() {
    local log=$1
    shift
    if ! "$@" >"$OUT/$log" 2>&1; then
        failed+=("$log")
        echo "FAILED: $*" >>"$OUT/$log"
    fi
    tail -n 12 "$OUT/$log"
}

step backends.txt "$srpnet" backends
# Parity against flex: the test binaries compare every compiled GPU backend with flex.
for t in backends conv; do
    step "parity-$t.txt" "$(ls "$bin"/$t-* | head -1)" --test-threads 1 --nocapture
done
for b in $BACKENDS; do
    step "bench-$b.txt" "$srpnet" bench --backend "$b" --profile embedded paper --runs "$RUNS"
done
step bench-flex.txt "$srpnet" bench --backend flex --profile embedded --runs "$RUNS"
for b in $BACKENDS; do
    step "plan-$b.txt" "$bin/reproduce" table1 --profile paper --weights random --backend "$b" --plan
    start=$(date +%s)
    step "train-$b.txt" "$srpnet" train --profile paper --weights random --backend "$b" --fold 0 \
        --steps "$STEPS" --out "$OUT/train-$b" --quiet
    echo "$b: $STEPS paper-profile steps in $(( $(date +%s) - start )) s" | tee -a "$OUT/train-$b.txt"
done

{
    echo "# gpu-check, $(date -u), $(nvidia-smi -L | head -1)"
    grep -h "max |\|relative\|test result\|skipped" "$OUT"/parity-*.txt || true
    grep -h "srpnet-" "$OUT"/bench-*.txt || true
    grep -h "paper-profile steps" "$OUT"/train-*.txt || true
    tail -n 2 "$OUT"/train-*/train-log.csv 2>/dev/null || true
} | tee "$OUT/summary.txt"
echo "gpu-check: everything is under $OUT/"
if [ ${#failed[@]} -gt 0 ]; then
    echo "gpu-check: failed: ${failed[*]}" >&2
    exit 1
fi
