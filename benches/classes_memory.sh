#!/usr/bin/env bash
# Peak memory of `infoutil distill` at ImageNet's shape as the class count grows (issue 12 §4):
# synthetic 224-px JPEG trees of 10, 20 and 40 classes (examples/imagenet_tree.py), each
# distilled with a depthwise-convolution teacher of that many classes (torchvision's
# MobileNetV3-Small, constructor weights, exported by export/export_module.py with its gradient
# graph). Classes are distilled one at a time, so the working memory should be that of one class
# and one batch; what grows with the class count is the result held for the output file (the
# distilled images: classes × IPC × 3 × 224 × 224 × 4 bytes), printed beside it.
#
#   PYTHON_EXPORT=/path/to/venv/bin/python benches/classes_memory.sh [CLASSES] [PER_CLASS] [BUDGET] [IPC]
#   # defaults: "10 20 40" 20 48 10; PYTHON_EXPORT has export/requirements.txt (torch, torchvision)
#
# Work files in out/bench-classes/ (trees, teachers, logs); the markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
counts=${1:-10 20 40}
per_class=${2:-20}
budget=${3:-48}
ipc=${4:-10}
pyx=${PYTHON_EXPORT:-python}
bin=${INFOUTIL:-target/release/infoutil}
[ -n "${INFOUTIL:-}" ] || cargo build --release --quiet
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
[ -x /usr/bin/time ] || $SUDO apt-get install -y -qq time >/dev/null
work=out/bench-classes
mkdir -p "$work"

echo "| classes | candidates | budget | IPC | wall (s) | peak RSS (MiB) | distilled images held (MiB) |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for k in $counts; do
  tree=$work/tree$k teacher=$work/mnv3s-$k.onnx log=$work/distill$k.log
  [ -f "$tree/classes.txt" ] ||
    .venv/bin/python examples/imagenet_tree.py "$tree" --classes "$k" --per-class "$per_class" >/dev/null
  [ -f "$teacher" ] ||
    "$pyx" export/export_module.py --module torchvision.models:mobilenet_v3_small \
      --kwargs "{\"num_classes\": $k}" --constructor-weights --input-shape 3,224,224 \
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --resize-shorter 256 \
      --class-names "$tree/classes.txt" --n 4 --out "$teacher" >"$work/export$k.log" 2>&1
  rm -f "$work/distill$k.h5"
  /usr/bin/time -v "$bin" distill --teacher "$teacher" --label-teacher "$teacher" --data "$tree" \
    --ipc "$ipc" --candidates "$per_class" --budget "$budget" --backend ort \
    --out "$work/distill$k.h5" >"$log" 2>&1
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' |
    awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident set size" "$log" | awk '{printf "%.0f", $NF/1024}')
  held=$(awk -v k="$k" -v i="$ipc" 'BEGIN { printf "%.0f", k * i * 3 * 224 * 224 * 4 / 1048576 }')
  echo "| $k | $((k * per_class)) | $budget | $ipc | $wall | $rss | $held |"
done
