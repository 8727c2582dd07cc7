#!/usr/bin/env bash
# How long `infoutil merge` takes for many per-class shards (docs/scale.md).
#
#   examples/slurm/bench-merge.sh [WORK_DIR]      (default: a new folder under /tmp)
#
# 1. Real shards: `infoutil distill --classes C --out real/shard-C.h5 $DISTILL_ARGS` for every
#    class C of the shipped 10-class teacher, then `infoutil merge real/shard-*.h5` (REPEAT
#    times, median).
# 2. Many shards: the shipped teacher has 10 classes, so larger counts are made by copying the
#    real shards: copy K of N is the real shard of class K mod 10, relabelled as class K (its
#    /labels and /candidates/label, and a class_names root attribute of N names), for N in
#    $COUNTS; each set is merged REPEAT times (median). The copies have the size, layout and
#    contents of real one-class shards of these options; merge checks them like real ones (one
#    run, disjoint classes, all N classes present).
# Needs h5py (scripts/setup.sh puts it in .venv). Environment: INFOUTIL (default
# target/release/infoutil), DISTILL_ARGS (default: none, the shipped defaults), COUNTS
# (default "100 1000"), REPEAT (default 3), PYTHON (default .venv/bin/python).

set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
INFOUTIL=${INFOUTIL:-$root/target/release/infoutil}
PYTHON=${PYTHON:-$root/.venv/bin/python}
COUNTS=${COUNTS:-100 1000}
REPEAT=${REPEAT:-3}
work=${1:-$(mktemp -d /tmp/infoutil-bench-merge.XXXXXX)}
mkdir -p "$work/real"
read -r -a extra <<<"${DISTILL_ARGS:-}"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
size() { du -sk "$@" | awk '{ s += $1 } END { printf "%.1f MiB", s / 1024 }'; }

# Time `infoutil merge` of the files in $1 into $1/../merged-$2.h5, REPEAT times: the median.
time_merge() {
  local dir=$1 name=$2 out=$work/merged-$2.h5 times=() shards=("$1"/shard-*.h5)
  for _ in $(seq "$REPEAT"); do
    rm -f "$out"
    local t0
    t0=$(now)
    "$INFOUTIL" merge "$dir"/shard-*.h5 --out "$out" >/dev/null
    times+=("$(since "$t0")")
  done
  echo "merge $name: ${#shards[@]} shards ($(size "${shards[@]}")) → $(size "$out"): median $(printf '%s\n' "${times[@]}" | median) s of ${times[*]} s"
}

echo "work folder: $work; distill options: ${DISTILL_ARGS:-(defaults)}"
t0=$(now) made=0
for c in $(seq 0 9); do
  if [ ! -s "$work/real/shard-$c.h5" ]; then
    "$INFOUTIL" distill --classes "$c" --out "$work/real/shard-$c.h5" ${extra[@]+"${extra[@]}"} >/dev/null 2>&1
    made=$((made + 1))
  fi
done
echo "distil $made one-class shards (of 10; the others were there): $(since "$t0") s"
time_merge "$work/real" real-10

for n in $COUNTS; do
  dir=$work/copies-$n
  if [ ! -s "$dir/shard-$((n - 1)).h5" ]; then
    mkdir -p "$dir"
    "$PYTHON" - "$work/real" "$dir" "$n" <<'PY'
import json, shutil, sys
import h5py

real, dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = json.dumps([f"class {k}" for k in range(n)])
for k in range(n):
    out = f"{dir}/shard-{k}.h5"
    shutil.copyfile(f"{real}/shard-{k % 10}.h5", out)
    with h5py.File(out, "r+") as f:
        f["labels"][...] = k
        f["candidates/label"][...] = k
        f.attrs["class_names"] = names
PY
  fi
  time_merge "$dir" "copies-$n"
done
