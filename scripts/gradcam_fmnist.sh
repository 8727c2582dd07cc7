#!/usr/bin/env bash
# Issue 15's Grad-CAM comparison (the paper's Table 8 on Fashion-MNIST): InfoUtil with Grad-CAM
# maps (`--attribution gradcam`, the teacher's relu3 block) in place of Shapley maps, everything
# else at InfoUtil's defaults, with the results table's protocol: the full 60 000-image training
# set distilled, ConvNet-3 students scored on the full 10 000-image test set. The Shapley rows
# are scripts/results_fmnist.sh's `infoutil` files (same folder, same names and commands).
#
#   scripts/gradcam_fmnist.sh [SEEDS] [IPCS] [JOBS]    # defaults: "0 1 2" "1 10 50" 1
#   python examples/results_table.py out/results        # the table, gradcam rows beside the rest
#
# Every step is skipped when its output exists, so a stopped run resumes. Needs what
# scripts/results_fmnist.sh needs, and a teacher with its Grad-CAM graph (models/*.cam.onnx).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-0 1 2}
ipcs=${2:-1 10 50}
jobs=${3:-1}
source scripts/results_env.sh

for s in $seeds; do
  names=()
  for ipc in $ipcs; do
    distil "infoutil-gradcam-ipc$ipc-s$s" --ipc "$ipc" --seed "$s" --attribution gradcam
    names+=("infoutil-gradcam-ipc$ipc-s$s")
  done
  train "${names[@]}"
done
$py examples/results_table.py "$dir" --out "$dir/table.md"
echo "table: $dir/table.md"
