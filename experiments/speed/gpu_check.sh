#!/usr/bin/env bash
# The GPU checks of experiments/speed (issue 22) as one script, in order of worth, each step bounded so a slow
# one cannot eat the next: `make bench` on paper-size PromptIR (ours compiled against the baseline, then each
# switch alone eagerly), the suite's Trainer on CUDA (compile + bf16 + fused AdamW) with its checkpoint
# evaluated in bf16 and fp32, the bench on Restormer, and a one-process DDP run without unused-parameter search.
#
#   bash experiments/speed/gpu_check.sh            # results under outputs/gpu_check (or $OUT)
#   BUDGET_S=540 PY=python3 bash experiments/speed/gpu_check.sh
#
# Everything it prints also goes to $OUT/gpu_check.log; bench reports go to $OUT/<step>/bench.{json,md}.
set -u
OUT=${OUT:-outputs/gpu_check}
PY=${PY:-python}
BUDGET_S=${BUDGET_S:-1800}
RUNS=${RUNS:-/tmp/aioir_gpu_runs}
TRAIN_STEPS=${TRAIN_STEPS:-200}
MODEL=${MODEL:-promptir}
TINY=${TINY:-promptir_tiny}
SECOND=${SECOND:-restormer}
ACCEL=${ACCEL:-gpu}                 # cpu: a dry run of the script itself on a machine without a GPU
# the steps to run, by name (default: all, in the order below); lets a second short device call pick up
# what the first did not reach, e.g. ONLY="eval_bf16 eval_fp32 bench_restormer"
read -r -a ONLY <<<"${ONLY:-bench_$MODEL ablation_$MODEL train eval_bf16 eval_fp32 bench_$SECOND ddp}"
read -r -a BENCH_EXTRA <<<"${BENCH_EXTRA:-}"   # e.g. "--override model.backbone.dim=8 --train-size 32"
read -r -a TRAIN_EXTRA <<<"${TRAIN_EXTRA:-}"
export PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline WANDB_SILENT=true
# one line per recompilation: the compiled training graph must not recompile for validation, test or eval
export TORCH_LOGS=${TORCH_LOGS:-recompiles}
mkdir -p "$OUT" "$RUNS"
END=$((SECONDS + BUDGET_S))

step() {  # step NAME LIMIT_S command...: run under min(LIMIT_S, time left), report rc and seconds
  local name=$1 limit=$2 left=$((END - SECONDS))
  shift 2
  if [[ " ${ONLY[*]} " != *" $name "* ]]; then echo "=== $name not asked for (ONLY)"; return; fi
  ((left < limit)) && limit=$left
  if ((limit < 20)); then echo "=== $name skipped: ${left}s of the budget left"; return; fi
  echo "=== $name (limit ${limit}s, $(date +%T)): $*"
  local start=$SECONDS
  timeout --signal=INT --kill-after=20 "$limit" "$@"
  echo "=== $name rc=$? in $((SECONDS - start))s"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  "$PY" -c "import torch, lightning; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'lightning',
lightning.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

  # 1. ours (compiled) against the baseline: the figure the goal needs; compiling paper PromptIR's training
  #    step took ~150 s on an H200, so no ablation here (each compiled setting would cost as much again)
  step bench_"$MODEL" 330 "$PY" -m src.bench --models "$MODEL" --no-4k --families --steps 8 --compile-warmup 5 \
    --out "$OUT/bench_$MODEL" "${BENCH_EXTRA[@]}"
  cat "$OUT/bench_$MODEL/bench.md" 2>/dev/null
  # 2. each switch alone, eagerly (measured on an H200 on 2026-12-04: experiments/speed/results)
  step ablation_"$MODEL" 120 "$PY" -m src.bench --models "$MODEL" --no-4k --families --steps 8 \
    --ablation channels_last bf16 fused_adamw ddp_no_unused_search --ours compile=false \
    --out "$OUT/ablation_$MODEL" "${BENCH_EXTRA[@]}"
  cat "$OUT/ablation_$MODEL/bench.md" 2>/dev/null
  train=(paths.log_dir="$RUNS" logger=csv data.samples_per_epoch=$((TRAIN_STEPS * 4)) data.num_workers=4
         trainer.max_epochs=2 trainer.log_every_n_steps=25 trainer.accelerator="$ACCEL" "${TRAIN_EXTRA[@]}")
  # 3. one-process DDP without the unused-parameter search (eager: seconds)
  step ddp 90 "$PY" -m src.train model="$TINY" data=synth5deg trainer=ddp trainer.devices=1 task_name=gpu_ddp \
    "${train[@]}" trainer.max_epochs=1 data.samples_per_epoch=400
  # 4. compile forced: a run this short would not compile under speed.compile_min_steps
  step train 240 "$PY" -m src.train model="$TINY" data=synth5deg trainer=gpu task_name=gpu_train speed.compile=true \
    "${train[@]}"
  ckpt=$(ls -t "$RUNS"/gpu_train/runs/*/checkpoints/best*.ckpt 2>/dev/null | head -1)  # this call's or an earlier one's
  echo "checkpoint: ${ckpt:-none}"
  if [[ -n $ckpt ]]; then
    step eval_bf16 45 "$PY" -m src.eval ckpt_path="$ckpt" paths.log_dir="$RUNS" task_name=gpu_eval_bf16 logger=csv \
      trainer.accelerator="$ACCEL"
    step eval_fp32 45 "$PY" -m src.eval ckpt_path="$ckpt" paths.log_dir="$RUNS" task_name=gpu_eval_fp32 logger=csv \
      trainer.accelerator="$ACCEL" trainer.precision=32-true
    for run in "$RUNS"/gpu_eval_*/runs/*/; do echo "--- $run"; cat "$run/results.md" 2>/dev/null; done
  fi

  step bench_"$SECOND" 200 "$PY" -m src.bench --models "$SECOND" --no-4k --families --steps 8 --compile-warmup 5 \
    --out "$OUT/bench_$SECOND" "${BENCH_EXTRA[@]}"
  cat "$OUT/bench_$SECOND/bench.md" 2>/dev/null

  echo "=== done in ${SECONDS}s"
} 2>&1 | tee "$OUT/gpu_check.log"
