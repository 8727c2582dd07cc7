#!/usr/bin/env bash
# Peak memory of `infoutil attribute` at 1 000 and 10 000 real Fashion-MNIST test images (the
# full test set, Debian package dataset-fashion-mnist): it should not grow with the number of
# images, since images stream through in chunks and only the maps are kept.
#
#   benches/attribute_memory.sh [BACKEND] [BUDGET]     # defaults: auto 64
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
backend=${1:-auto}
budget=${2:-64}
data=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
[ -f "$data" ] || $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
[ -x /usr/bin/time ] || $SUDO apt-get install -y -qq time >/dev/null
cargo build --release --quiet
mkdir -p out/bench-attribute
echo "| images | budget | backend | wall (s) | peak RSS (MiB) |"
echo "|---:|---:|---|---:|---:|"
for n in 1000 10000; do
  log=out/bench-attribute/n$n.log
  /usr/bin/time -v target/release/infoutil attribute --data "$data" --indices "0-$((n - 1))" \
    --budget "$budget" --backend "$backend" --out "out/bench-attribute/n$n.h5" >"$log" 2>&1
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident set size" "$log" | awk '{printf "%.0f", $NF/1024}')
  ran=$(grep -o "on [a-z]* ([a-z]*)" "$log" | head -1 | sed 's/^on //')
  echo "| $n | $budget | $ran | $wall | $rss |"
done
