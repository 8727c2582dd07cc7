#!/usr/bin/env bash
# Issue 15's cross-architecture table: do files distilled with the ConvNet-3 teacher train
# students of other architectures? A small ViT and an MLP-Mixer (scripts/train_student.py
# --student vit|mixer, sized for 28 px) on the IPC 10 files of random, RDED, InfoUtil and tuned
# InfoUtil, 3 seeds, with the results table's protocol (full 10 000-image test set).
#
#   scripts/students_cross.sh [SEEDS] [STUDENTS] [JOBS]   # defaults: "0 1 2" "vit mixer" 1
#   python examples/results_table.py out/results           # the table, one section per student
#
# The files are the ones scripts/results_fmnist.sh makes (same names, same folder, same
# commands: whichever script runs first makes them, the other reuses them). Every step is
# skipped when its output exists, so a stopped run resumes. Needs what results_fmnist.sh needs.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-0 1 2}
students=${2:-vit mixer}
jobs=${3:-1}
source scripts/results_env.sh

for s in $seeds; do
  distil "infoutil-ipc10-s$s" --ipc 10 --seed "$s"
  distil "infoutil-tuned-ipc10-s$s" --ipc 10 --seed "$s" $TUNED --maps-from "$dir/infoutil-ipc10-s$s.h5"
  distil "rded-ipc10-s$s" --ipc 10 --seed "$s" --method rded
  distil "random-ipc10-s$s" --ipc 10 --seed "$s" --method random
  for st in $students; do
    student=$st train "random-ipc10-s$s" "rded-ipc10-s$s" "infoutil-ipc10-s$s" "infoutil-tuned-ipc10-s$s"
  done
done
