#!/usr/bin/env bash
# One prepared check of a CUDA machine: training and inference speed against the peak measured
# in the same run, the whole run against its step, a short bf16 + torch.compile training run
# with its sample grid, the whole run against the official code's in the same run (when its
# checkout is at ../shared/anchors or $I2I_OFFICIAL_CYCLEGAN), and two-process DDP when two GPUs
# exist. At most 8 minutes on one GPU (the sum of the stages' limits; 9.5 with the DDP stage).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh            # on the CUDA machine
#   OUT=/some/folder bash benchmarks/gpu_check.sh --dry-run  # the same stages on the CPU, tiny
#
# Everything goes under $OUT (a temporary folder when unset): results.jsonl (every JSON line of
# every stage, plus one {"bench": "gpu_check", "stage": ...} line per stage with its exit status
# and seconds), logs/STAGE.log (each stage's stderr), and the run folders with their pictures
# (whole_run/*/samples, train_bf16_compile/overlap/samples, loss curves). A failed stage is
# recorded and the next one runs; the exit status is non-zero if any stage failed. --only runs
# the stages named (e.g. --only train_speed,whole_run) when there is less device time.
set -u -o pipefail
cd "$(dirname "$0")/.."

USAGE="usage: bash benchmarks/gpu_check.sh [--dry-run] [--only STAGE,STAGE...]"
DRY=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --only) [ $# -ge 2 ] || { echo "$USAGE" >&2; exit 2; }; ONLY=",$2,"; shift ;;
    *) echo "$USAGE" >&2; exit 2 ;;
  esac
  shift
done

OUT="${OUT:-$(mktemp -d -t i2i-gpu-check-XXXXXX)}"
mkdir -p "$OUT/logs"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
PY="${PYTHON:-python3}"
FAILED=0

# stage NAME SECONDS COMMAND...: run with a time limit, JSON lines to results.jsonl.
stage() {
  local name=$1 limit=$(($2 * LIMIT_SCALE))
  shift 2
  if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then
    printf '{"bench": "gpu_check", "stage": "%s", "skipped": "not in --only"}\n' "$name" \
      | tee -a "$RESULTS"
    return
  fi
  echo "== $name" >&2
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2> "$OUT/logs/$name.log" | grep --line-buffered '^{' | tee -a "$RESULTS"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { FAILED=1; tail -n 3 "$OUT/logs/$name.log" >&2; }
  printf '{"bench": "gpu_check", "stage": "%s", "rc": %d, "seconds": %d}\n' \
    "$name" "$rc" $((SECONDS - start)) | tee -a "$RESULTS"
}

# The dry run: the same stages and scripts on the CPU with tiny networks, one configuration
# each, no ONNX export, and no torch.compile (the CPU compiler alone takes minutes).
if [ "$DRY" -eq 1 ]; then
  DEVICE=cpu
  QUICK=(--quick-peak)
  TRAIN_NETS=(--sizes 32 --ngf 4 --ndf 4 --steps 1 --warmup 0)
  TRAIN_GRID=(--batches 1 --precisions fp32)
  COMPILE=off
  APPLY=(--sizes 32 --images 2 --batch-sizes 2 --ngf 4 --no-onnx --compile off)
  WHOLE=(--gen resnet6 --ngf 4 --ndf 4 --size 32 --images 4 --steps 3 --step-only 1 --warmup 0)
  QUALITY=(--rows cyclegan-quality --looks dusk --seeds 0 --steps 2 --size 32 --jobs 1)
  GPUS=0
  LIMIT_SCALE=4  # a shared CPU is slow to start Python processes; the limits are for a GPU box
else
  DEVICE=cuda
  QUICK=()
  TRAIN_NETS=(--sizes 256 --steps 15 --warmup 2)
  TRAIN_GRID=(--batches 1,4 --precisions fp32,bf16)
  COMPILE=on
  LIMIT_SCALE=1
  APPLY=(--sizes 256 --images 32 --batch-sizes 4 8 --compile both)
  WHOLE=(--gen resnet9 --ngf 64 --ndf 64 --size 256 --images 100 --steps 150 --step-only 20)
  # The CycleGAN rows of the CPU-sized suite file, eight runs at a time on the GPU (its rows at
  # equal CPU wall time, CUT, FastCUT and UNSB, would not fit the stage's limit).
  QUALITY=(--rows cyclegan-quality,cyclegan-paper --jobs 8)
  GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2> /dev/null || echo 0)
  if [ "$GPUS" -lt 1 ]; then
    echo "no CUDA device here; use --dry-run to check the script on the CPU" >&2
    exit 2
  fi
fi
export PYTHONUNBUFFERED=1

# Stages in order of value, each with its own limit; the limits add up to 8 minutes (9.5 with DDP).
stage environment 30 "$PY" -c '
import json, os, torch, i2i
cuda = torch.cuda.is_available()
print(json.dumps({"bench": "environment", "i2i": i2i.__version__, "torch": torch.__version__,
    "cuda": torch.version.cuda, "gpus": torch.cuda.device_count(),
    "gpu_name": torch.cuda.get_device_name() if cuda else None, "cpu_count": os.cpu_count()}))'

# Training step: fp32 and bf16 at batch 1 and 4, each configuration in its own process.
stage train_speed 70 "$PY" benchmarks/train_speed.py --devices "$DEVICE" "${TRAIN_NETS[@]}" \
  "${TRAIN_GRID[@]}" --compile off "${QUICK[@]}"

# A whole run (data included) against its step: the trainer's loader and the overlap.
stage whole_run 50 "$PY" benchmarks/whole_run.py --device "$DEVICE" --precision bf16 \
  "${WHOLE[@]}" --out "$OUT/whole_run" "${QUICK[@]}" --official off

# The same whole run, fp32, as i2i train and as the official train.py, one after the other:
# wall time and peak memory of each process (skipped without a checkout of the official code).
stage whole_run_vs_official 90 "$PY" benchmarks/whole_run.py --device "$DEVICE" \
  --precision fp32 "${WHOLE[@]}" --variants "" --out "$OUT/whole_run_vs_official"

# Inference: i2i apply with PyTorch fp32 and bf16, eager and compiled, and ONNX Runtime's CUDA
# provider if present.
stage apply_speed 75 "$PY" benchmarks/apply_speed.py --devices "$DEVICE" "${APPLY[@]}" \
  "${QUICK[@]}"

# A short bf16 + torch.compile training run, with its sample grid and loss curve; then the
# compiled step alone at the same batch size, which finds the compiled graphs in the cache.
COMPILE_FLAG=(--compile)
[ "$COMPILE" = on ] || COMPILE_FLAG=()
stage train_bf16_compile 105 "$PY" benchmarks/whole_run.py --device "$DEVICE" \
  --precision bf16 "${COMPILE_FLAG[@]}" "${WHOLE[@]}" --variants overlap \
  --out "$OUT/train_bf16_compile" "${QUICK[@]}" --official off
stage train_speed_compile 40 "$PY" benchmarks/train_speed.py --devices "$DEVICE" \
  "${TRAIN_NETS[@]}" --batches 1 --precisions bf16 --compile "$COMPILE" "${QUICK[@]}"

# The memory format's share: bf16, batch 4, contiguous instead of channels_last.
stage train_speed_no_channels_last 20 "$PY" benchmarks/train_speed.py --devices "$DEVICE" \
  "${TRAIN_NETS[@]}" --batches 4 --precisions bf16 --compile off --channels-last off \
  "${QUICK[@]}"

# Two-process DDP when two GPUs exist: a short run through torchrun, timed end to end.
if [ "$GPUS" -ge 2 ]; then
  stage ddp_two_gpus 90 "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 \
    benchmarks/whole_run.py --device cuda --precision bf16 "${WHOLE[@]}" --variants overlap \
    --out "$OUT/ddp" --official off
else
  printf '{"bench": "gpu_check", "stage": "ddp_two_gpus", "skipped": "%s GPU(s); DDP needs 2"}\n' \
    "$GPUS" | tee -a "$RESULTS"
fi

# The known-answer suite (benchmarks/quality.py): the quality recipe on three seeds and the
# paper's defaults on one, on the looks and the painting pairs (monet and ukiyo-e <-> photo).
# Last, since it needs the photos of ../shared/data (or $I2I_SHARED_DATA); on a GPU it is best
# run alone: --only quality_suite.
SHARED_DATA="${I2I_SHARED_DATA:-../shared/data}"
if [ -d "$SHARED_DATA/monet2photo" ]; then
  stage quality_suite 480 "$PY" benchmarks/quality.py --suite benchmarks/quality_suite_cpu.json \
    "${QUALITY[@]}" --device "$DEVICE" --shared-data "$SHARED_DATA" \
    --out "$OUT/quality_suite" --work "$OUT/quality_suite_runs"
else
  printf '{"bench": "gpu_check", "stage": "quality_suite", "skipped": "no photos at %s"}\n' \
    "$SHARED_DATA" | tee -a "$RESULTS"
fi

echo "results: $RESULTS" >&2
exit "$FAILED"
