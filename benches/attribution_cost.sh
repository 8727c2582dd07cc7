#!/usr/bin/env bash
# What a map costs: `infoutil attribute` on the same N real Fashion-MNIST test images (the
# embedded subset, 10 per class by default) with Shapley maps (--budget forwards per image) and
# with Grad-CAM (one forward and backward per image), on tract and ONNX Runtime, interleaved so
# that a shared machine's load falls on both alike; the median of REPS runs of each. The time is
# the whole command (teacher load, data, crops, file), so Grad-CAM's figure is an upper bound on
# its attribution.
#
#   benches/attribution_cost.sh [PER_CLASS] [BUDGET] [REPS]     # defaults: 10 128 3
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
per_class=${1:-10}
budget=${2:-128}
reps=${3:-3}
bin=${INFOUTIL:-target/release/infoutil}
[ -n "${INFOUTIL:-}" ] || cargo build --release --quiet
dir=out/bench-attribution-cost
mkdir -p "$dir"
now() { date +%s.%N; }
declare -A times
for r in $(seq "$reps"); do
  for backend in tract ort; do
    for attribution in shapley gradcam; do
      t0=$(now)
      "$bin" attribute --per-class "$per_class" --budget "$budget" --backend "$backend" \
        --attribution "$attribution" --out "$dir/$backend-$attribution.h5" >/dev/null 2>&1
      t1=$(now)
      times[$backend-$attribution]+="$(echo "$t1 - $t0" | bc) "
    done
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
n=$((per_class * 10))
echo "| backend | attribution | images | wall, median of $reps (s) | per image (ms) | Shapley / Grad-CAM |"
echo "|---|---|---:|---:|---:|---:|"
for backend in tract ort; do
  s=$(echo "${times[$backend-shapley]}" | median)
  g=$(echo "${times[$backend-gradcam]}" | median)
  printf "| %s | shapley (budget %s) | %s | %.2f | %.1f | |\n" "$backend" "$budget" "$n" "$s" "$(echo "$s * 1000 / $n" | bc -l)"
  printf "| %s | gradcam | %s | %.2f | %.1f | %.0f× |\n" "$backend" "$n" "$g" "$(echo "$g * 1000 / $n" | bc -l)" "$(echo "$s / $g" | bc -l)"
done
