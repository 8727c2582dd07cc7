#!/usr/bin/env bash
# Issue 15's sensitivity sweeps on the validation split (the test set is never read): InfoUtil's
# noise scale α ∈ {0, 0.5, 1, 2, 5} and crops per image ∈ {1, 2, 4, 8, 16} (the last crop of each
# image is the noise-free one; the default is α = 2 and 5 crops), one changed at a time from the
# defaults, at IPC 1 and 10, ConvNet-3 students scored on the 3 000 held-out training images
# (the same split, protocol and trainer as scripts/tune_fmnist.sh). A map depends on the image,
# the teacher, the Shapley options and the seed only, so every point of both IPCs reuses its
# seed's maps from the IPC 1 default run (--maps-from): attribution runs once per seed.
#
#   scripts/sweep_fmnist.sh [SEEDS] [JOBS] [IPCS]     # defaults: "0 1 2" 1 "1 10"
#   python examples/sweep_plot.py out/sweep            # the two pictures and their table
#
# Needs what scripts/results_fmnist.sh needs. Every step is skipped when its output exists, so a
# stopped run resumes. Files go to out/sweep/ipcN/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
seeds=${1:-0 1 2}
jobs=${2:-1}
ipcs=${3:-1 10}
py=${PYTHON:-python}
fm=/usr/share/datasets/fashion-mnist
split=out/tune/split
bin=${INFOUTIL:-target/release/infoutil}
[ -n "${INFOUTIL:-}" ] || cargo build --release --quiet
[ -f $split/val-labels-idx1-ubyte.gz ] ||
  $py examples/split_validation.py $fm/train-images-idx3-ubyte.gz $fm/train-labels-idx1-ubyte.gz $split 300
data=$split/train-images-idx3-ubyte.gz
test_images=$split/val-images-idx3-ubyte.gz
test_labels=$split/val-labels-idx1-ubyte.gz
source scripts/students.sh

alphas=(0 0.5 1 2 5)
crops=(1 2 4 8 16)
maps() { echo "out/sweep/ipc1/alpha2-ipc1-s$1.h5"; }
for s in $seeds; do   # the defaults at IPC 1 compute each seed's maps
  dir=out/sweep/ipc1 distil_opts="--ipc 1"
  mkdir -p "$dir"
  distil "alpha2-ipc1-s$s" --seed "$s"
done
for ipc in $ipcs; do
  dir=out/sweep/ipc$ipc
  distil_opts="--ipc $ipc"
  mkdir -p "$dir"
  for s in $seeds; do
    names=()
    for a in "${alphas[@]}"; do
      distil "alpha$a-ipc$ipc-s$s" --seed "$s" --alpha "$a" --maps-from "$(maps "$s")"
      names+=("alpha$a-ipc$ipc-s$s")
    done
    for c in "${crops[@]}"; do
      distil "crops$c-ipc$ipc-s$s" --seed "$s" --crops-per-image "$c" --maps-from "$(maps "$s")"
      names+=("crops$c-ipc$ipc-s$s")
    done
    train "${names[@]}"
  done
done
echo "done: python examples/sweep_plot.py out/sweep"
