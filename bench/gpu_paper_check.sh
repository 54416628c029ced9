#!/usr/bin/env bash
# GPU check of config/paper.yaml's paper-figure stages (issue 11), run where snakemake is not installed:
# the exact commands the workflow runs (`snakemake -n -p --configfile config/paper.yaml ...` prints them),
# with the data root and output folders set here.
#   1. paper Fig. 2: escape probes of the classic CNN (32/64 channels, 1024 hidden) at initialisation,
#      every (scale, ratio) of the paper's grid, 64 inputs x 3 seeds, 400 descent + 1000 PGA steps;
#   2. paper Fig. 3's adversarial training: 10 epochs of the classic CNN at scale 0.1, ratio 1, one seed,
#      40 PGA steps per minibatch on the full training set.
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
ds="--dataset fashion_mnist --root $root --dim 64 --split-seed 0"
cnn="--architecture cnn --cnn-channels 32,64 --cnn-kernel-size 5 --cnn-hidden 1024 --loss squared_error"
if [ "$quick" = quick ]; then
  fig2_size="--n-test 200 --seeds 0 --n-inputs 4 --steps 20 --descent-steps 16"
  train_size="--n-train 256 --n-test 64 --epochs 2 --checkpoints 0,2 --attack-steps 2 --eval-steps 2"
else
  fig2_size="--n-test none --seeds 0,1,2 --n-inputs 64 --steps 1000 --descent-steps 400"
  train_size="--n-train none --n-test 1000 --epochs 10 --checkpoints 0,10 --attack-steps 40 --eval-steps 20"
fi
"$py" - <<'EOF' | tee "$out/device.txt"
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
EOF
t0=$(date +%s.%N)
"$py" scripts/escape.py run --figure fig2 --out-dir "$out/paper_fig2" $ds --n-train none $cnn --norm l2 \
  --scales 0.1,10,1000 --ratios 0.001,0.01,0.1,1,10 --step-size 1.0 --descent-step-size 0.1 --descent-stages 8 \
  --check-directions 32 --check-radius 0.01 --check-mapping-step 0.01 --check-gtol 0.05 --check-ftol 0.0001 \
  --rtol 1e-06 --input-normalization none --device auto --threads 4 $fig2_size > "$out/fig2.log" 2>&1
t1=$(date +%s.%N)
"$py" scripts/train.py --out-root "$out/paper_fig3_train" --scale 0.1 --seeds 0 $ds --download false $cnn \
  --ratio 1 --norm l2 --batch-size 128 --optimizer adam --lr 0.001 --lr-scale-power 0 --momentum 0 \
  --attack-step-size 0.1 --attack-gradient raw --attack-init uniform_ball --eval-restarts 1 --batch-seeds false \
  --progress false --device auto --threads 4 $train_size > "$out/train.log" 2>&1
t2=$(date +%s.%N)
"$py" - "$t0" "$t1" "$t2" "$out" <<'EOF' | tee "$out/times.txt"
import csv, json, sys
t0, t1, t2 = map(float, sys.argv[1:4]); out = sys.argv[4]
rows = list(csv.DictReader(open(f"{out}/paper_fig2/escape.csv")))
ep = list(csv.DictReader(open(f"{out}/paper_fig3_train/seed~0/epochs.csv")))
print(json.dumps({"fig2_stage_s": round(t1 - t0, 1), "fig2_trajectories": len(rows),
                  "train_s": round(t2 - t1, 1), "train_epochs": len(ep) - 1,
                  "train_s_per_epoch": round((t2 - t1) / max(1, len(ep) - 1), 1),
                  "last_epoch": ep[-1]}))
EOF
