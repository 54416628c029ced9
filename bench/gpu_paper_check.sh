#!/usr/bin/env bash
# GPU check of config/paper.yaml's paper-figure stages (issue 11), run where snakemake is not installed:
# the exact commands the workflow runs, read from bench/gpu_paper_commands.sh (generated from
# `snakemake -n -p --configfile config/paper.yaml ...` by bench/gpu_paper_commands.py; tests/test_bench.py
# fails when it is stale), with the data root, output folder and the overrides below set here
# (the scripts keep the last value of a repeated flag):
#   1. paper Fig. 2: the whole rule paper_fig2_escape_run, escape probes of the classic CNN (32/64 channels,
#      1024 hidden) at initialisation, every (scale, ratio) of the paper's grid, 64 inputs x 3 seeds,
#      400 descent + 1000 PGA steps;
#   2. paper Fig. 3's adversarial training: rule paper_fig3_train at scale 0.1, ratio 1, cut to one seed and
#      10 epochs (checkpoints 0 and 10), 40 PGA steps per minibatch on the full training set.
# Usage: bench/gpu_paper_check.sh DATA_ROOT OUT_DIR [quick]
#   DATA_ROOT holds MNIST-format IDX files (Fashion-MNIST stands in for MNIST where MNIST is not reachable:
#   same 28x28 shape and size, so the same cost); `quick` shrinks everything to check the script on a CPU.
set -euo pipefail
root=$1
out=$2
quick=${3:-}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
RESULTS=$out  # stands for the workflow's results/stages/<stage>/<key> folders: "$RESULTS"/<stage>, here in the output folder
# shellcheck source=bench/gpu_paper_commands.sh
source "$(dirname "$0")/gpu_paper_commands.sh"
data=(--dataset fashion_mnist --root "$root")
train_cut=(--seeds 0 --epochs 10 --checkpoints 0,10 --progress false)
if [ "$quick" = quick ]; then
  fig2_size="--n-test 200 --seeds 0 --n-inputs 4 --steps 20 --descent-steps 16"
  train_size="--n-train 256 --n-test 64 --epochs 2 --checkpoints 0,2 --attack-steps 2 --eval-steps 2"
else
  fig2_size=""
  train_size=""
fi
"$py" - <<'EOF' | tee "$out/device.txt"
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
EOF
t0=$(date +%s.%N)
"$py" "${paper_fig2_escape_run[@]}" "${data[@]}" $fig2_size > "$out/fig2.log" 2>&1
t1=$(date +%s.%N)
"$py" "${paper_fig3_train[@]}" "${data[@]}" "${train_cut[@]}" $train_size > "$out/train.log" 2>&1
t2=$(date +%s.%N)
"$py" - "$t0" "$t1" "$t2" "$out" "$paper_fig3_train_run" <<'EOF' | tee "$out/times.txt"
import csv, json, sys
t0, t1, t2 = map(float, sys.argv[1:4]); out, train_run = sys.argv[4:6]
rows = list(csv.DictReader(open(f"{out}/paper_fig2_escape_run/escape.csv")))
ep = list(csv.DictReader(open(f"{train_run}/epochs.csv")))
print(json.dumps({"fig2_stage_s": round(t1 - t0, 1), "fig2_trajectories": len(rows),
                  "train_s": round(t2 - t1, 1), "train_epochs": len(ep) - 1,
                  "train_s_per_epoch": round((t2 - t1) / max(1, len(ep) - 1), 1),
                  "last_epoch": ep[-1]}))
EOF
