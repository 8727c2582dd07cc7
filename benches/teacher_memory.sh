#!/usr/bin/env bash
# Peak RSS and wall time of `infoutil teacher eval` with gradient norms, per binary, teacher and
# backend, the runs interleaved (every combination once per round, ROUNDS rounds), medians; and
# whether each binary's tract output is byte for byte the first binary's (its logits, labels and
# gradient norms datasets, compared with h5py).
#
#   benches/teacher_memory.sh ROUNDS "NAME=BINARY ..." "TEACHER.onnx=DATA ..." ["tract ort"]
#
# e.g. the table in docs/benchmarks.md ("Teacher memory by backend and resolution"):
#   benches/teacher_memory.sh 3 "before=/tmp/infoutil-main after=target/release/infoutil" \
#     "models/fmnist-convnet3.onnx=data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz \
#      /work/t224/resnet18-224.onnx=/work/tree224"
# Needs /usr/bin/time and, for the comparison, a Python with h5py (PYTHON, default .venv's).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1
read -r -a binaries <<<"$2"
read -r -a teachers <<<"$3"
read -r -a backends <<<"${4:-tract ort}"
python=${PYTHON:-.venv/bin/python}
out=out/bench-teacher-memory
mkdir -p "$out"
: >"$out/runs.tsv"
for round in $(seq "$rounds"); do
  for pair in "${teachers[@]}"; do
    teacher=${pair%%=*}
    data=${pair#*=}
    for backend in "${backends[@]}"; do
      for named in "${binaries[@]}"; do
        name=${named%%=*}
        bin=${named#*=}
        tag="$name.$(basename "$teacher" .onnx).$backend"
        log="$out/$tag.$round.log"
        /usr/bin/time -v "$bin" teacher eval --teacher "$teacher" --data "$data" \
          --backend "$backend" --out "$out/$tag.h5" >"$log" 2>&1
        wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' |
          awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
        rss=$(grep "Maximum resident set size" "$log" | awk '{printf "%.0f", $NF/1024}')
        printf '%s\t%s\t%s\t%s\t%s\n' "$(basename "$teacher" .onnx)" "$backend" "$name" \
          "$wall" "$rss" >>"$out/runs.tsv"
      done
    done
  done
done
echo "| teacher | backend | binary | wall, median (s) | peak RSS, median (MiB) | runs |"
echo "|---|---|---|---:|---:|---:|"
sort -k1,1 -k2,2 -k3,3 -s "$out/runs.tsv" | awk -F'\t' '
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  { k = $1 "\t" $2 "\t" $3; if (!(k in w)) order[++m] = k; w[k] = w[k] " " $4; r[k] = r[k] " " $5; c[k]++ }
  END { for (i = 1; i <= m; i++) { k = order[i]; split(k, f, "\t");
        printf "| %s | %s | %s | %.1f | %d | %d |\n", f[1], f[2], f[3], median(w[k]), median(r[k]), c[k] } }'
first=${binaries[0]%%=*}
for pair in "${teachers[@]}"; do
  stem=$(basename "${pair%%=*}" .onnx)
  for named in "${binaries[@]:1}"; do
    name=${named%%=*}
    "$python" - "$out/$first.$stem.tract.h5" "$out/$name.$stem.tract.h5" <<'EOF'
import sys
import h5py
import numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = [n for n in ("logits", "labels", "grad_norms", "source_index") if n in a]
for n in names:
    x, y = a[n][()], b[n][()]
    if x.shape == y.shape and np.array_equal(x.view(np.uint8), y.view(np.uint8)):
        print(f"{sys.argv[2]}: {n} byte-identical to {sys.argv[1]}")
        continue
    differ = (x != y).sum() if x.shape == y.shape else "all"
    worst = float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-30))) if x.dtype.kind == "f" else None
    print(f"{sys.argv[2]}: {n} DIFFERS from {sys.argv[1]} in {differ} of {x.size} values"
          + (f", at most {worst:.1e} relative" if worst is not None else ""))
EOF
  done
done
