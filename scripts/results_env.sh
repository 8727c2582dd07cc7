# shellcheck shell=bash
# Sourced by scripts/results_fmnist.sh and scripts/students_cross.sh: what every run of the
# results table shares. The full Fashion-MNIST training set is distilled into out/results/ with
# the table's options, students are scored on the full 10 000-image test set, and the helpers of
# scripts/students.sh (distil, train) are defined. Expects $jobs (students at a time).
source scripts/setup.sh
py=${PYTHON:-python}
fm=/usr/share/datasets/fashion-mnist
data=$fm/train-images-idx3-ubyte.gz
dir=out/results
# InfoUtil's options as tuned on a validation split carved from the training set (docs/tuning.md).
# shellcheck disable=SC2034  # used by the scripts that source this one
TUNED="--only-recognised --factor 2 --crop-span 3"
# $INFOUTIL: a fixed binary (e.g. a copy) for long runs next to development; else built here.
bin=${INFOUTIL:-target/release/infoutil}
[ -n "${INFOUTIL:-}" ] || cargo build --release --quiet
mkdir -p "$dir"

# Every run of the table takes the default Shapley budget (128). It is not given here: an option
# a method does not read (the budget, for rded and random) is refused when given.
distil_opts=""
test_images=$fm/t10k-images-idx3-ubyte.gz
test_labels=$fm/t10k-labels-idx1-ubyte.gz
source scripts/students.sh
