#!/usr/bin/env bash
# Issue 5's results table on real Fashion-MNIST: distil the full 60 000-image training set with
# every method and ablation, train a student on each file (scripts/train_student.py, RDED's
# protocol, full 10 000-image test set), and write the table (examples/results_table.py).
#
#   scripts/results_fmnist.sh [SEEDS] [IPCS] [JOBS]     # defaults: "0 1 2" "1 10 50" 2
#
# Cost on one core per student: ~4 min at IPC 1, ~7 min at IPC 10, ~30 min at IPC 50 (300 epochs
# plus six evaluations on the 10 000 test images); 63 students in all. Then the cross-architecture
# row: a ResNet-18 student on the IPC 1 files of RDED, InfoUtil, tuned InfoUtil and random (~16 min
# each, mostly its evaluations; 12 students).
#
# FULL_TRAIN=1 adds the whole-training-set row: a ConvNet-3 student per seed on all 60 000 real
# images with the same recipe. ~6 min per epoch on one core, so ~30 h per seed at 300 epochs;
# FULL_EPOCHS=N shortens it (the table keeps other epoch counts in a table of their own).
#
# Needs: the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) and a
# python with examples/requirements-student.txt ($PYTHON, default python). Every step is skipped
# when its output exists, so a stopped run resumes. Outputs, logs and JSONs go to out/results/.
#
# The InfoUtil ablations of one seed share that seed's Shapley maps (`--maps-from`): a map depends
# only on the image, teacher, Shapley options and seed, not on IPC, scoring or crop noise. Their
# logged distillation times therefore exclude attribution; the base run's (infoutil at IPC 10)
# include it.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-0 1 2}
ipcs=${2:-1 10 50}
jobs=${3:-2}
source scripts/results_env.sh

# Seed by seed, so that a stopped run leaves whole seeds behind.
for s in $seeds; do
  base=infoutil-ipc10-s$s
  distil "$base" --ipc 10 --seed "$s"
  maps="--maps-from $dir/$base.h5"
  names=()
  for ipc in $ipcs; do
    [ "$ipc" = 10 ] || distil "infoutil-ipc$ipc-s$s" --ipc "$ipc" --seed "$s" $maps
    distil "infoutil-no-noise-ipc$ipc-s$s" --ipc "$ipc" --seed "$s" --alpha 0 $maps
    distil "infoutil-loss-ipc$ipc-s$s" --ipc "$ipc" --seed "$s" --score loss $maps
    distil "infoutil-last-layer-ipc$ipc-s$s" --ipc "$ipc" --seed "$s" --score last-layer $maps
    # The selection chosen on the validation split (scripts/tune_fmnist.sh, docs/tuning.md).
    distil "infoutil-tuned-ipc$ipc-s$s" --ipc "$ipc" --seed "$s" $TUNED $maps
    distil "rded-ipc$ipc-s$s" --ipc "$ipc" --seed "$s" --method rded
    distil "random-ipc$ipc-s$s" --ipc "$ipc" --seed "$s" --method random
    for m in infoutil infoutil-no-noise infoutil-loss infoutil-last-layer infoutil-tuned rded random; do
      names+=("$m-ipc$ipc-s$s")
    done
  done
  train "${names[@]}"
done

# Cross-architecture row: files distilled with the ConvNet-3 teacher, scored on a ResNet-18 student.
case " $ipcs " in *" 1 "*)
  cross=()
  for s in $seeds; do
    for m in rded infoutil infoutil-tuned random; do cross+=("$m-ipc1-s$s"); done
  done
  student=resnet18 train "${cross[@]}"
esac

# Whole-training-set row (opt-in: see the cost above).
if [ -n "${FULL_TRAIN:-}" ]; then
  epochs=${FULL_EPOCHS:-300}
  for s in $seeds; do
    out=$dir/whole-training-set-e$epochs-s$s
    [ -f "$out.json" ] && continue
    echo "[train] whole training set, $epochs epochs, seed $s"
    $py scripts/train_student.py --full-train-images "$data" --full-train-labels "$fm/train-labels-idx1-ubyte.gz" \
      --epochs "$epochs" --seed "$s" --threads 1 --test-images "$test_images" --test-labels "$test_labels" \
      --out "$out.json" > "$out.train.log" 2>&1
  done
fi

$py examples/results_table.py "$dir" --out "$dir/table.md"
echo "table: $dir/table.md"
