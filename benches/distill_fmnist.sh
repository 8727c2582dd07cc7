#!/usr/bin/env bash
# Wall time and peak memory of `infoutil distill` on the FULL Fashion-MNIST training set
# (60 000 images, Debian package dataset-fashion-mnist) at IPC 1, 10 and 50, with the paper's
# candidate count. Prints a markdown table (one row per run) and keeps each run's log and output
# under out/bench-distill/.
#
#   benches/distill_fmnist.sh [BACKEND] [BUDGET] [IPCS]     # defaults: auto 128 "1 10 50"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
backend=${1:-auto}
budget=${2:-128}
ipcs=${3:-1 10 50}
data=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$data" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
[ -x /usr/bin/time ] || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"; $SUDO apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet
mkdir -p out/bench-distill
echo "| IPC | method | candidates/class | budget | backend | wall (s) | peak RSS (MiB) | stages (s) |"
echo "|---:|---|---:|---:|---|---:|---:|---|"
for ipc in $ipcs; do
  log=out/bench-distill/ipc$ipc.log
  /usr/bin/time -v target/release/infoutil distill --data "$data" --ipc "$ipc" --candidates 300 \
    --budget "$budget" --backend "$backend" --out "out/bench-distill/ipc$ipc.h5" >"$log" 2>&1
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident set size" "$log" | awk '{printf "%.0f", $NF/1024}')
  ran=$(grep -o "on [a-z]* ([a-z]*)" "$log" | head -1 | sed 's/^on //')
  stages=$(grep -o "read [0-9.]*, attribution [0-9.]*, utility [0-9.]*, reconstruction [0-9.]*, soft labels [0-9.]*" "$log" || echo "failed: see $log")
  echo "| $ipc | infoutil | 300 | $budget | $ran | $wall | $rss | $stages |"
done
