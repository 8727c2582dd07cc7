#!/usr/bin/env bash
# How long `infoutil merge` takes for 1000 per-class shards of ImageNet shape (issue 13):
# 1000 classes, IPC 10, images 3×224×224, soft labels over 1000 classes.
#
#   examples/slurm/bench-merge-imagenet.sh [WORK_DIR]   (default: a new folder under /tmp,
#                                                        removed at the end unless KEEP=1)
#
# 1. One real shard: `infoutil distill --classes 0 --out WORK_DIR/real.h5 $DISTILL_ARGS` (the
#    shipped 28-px teacher), the template of the synthetic ones.
# 2. N synthetic shards WORK_DIR/shards/shard-K.h5 (examples/slurm/imagenet_shards.py make):
#    the real shard's schema, root attributes, config (distill.classes = [K]), dataset
#    attributes, dtypes and filters (shuffle + gzip 4) and infoutil's chunk rule, but ImageNet
#    shapes: /images float32 and /images_uint8 [10,3,224,224], /labels = K, /soft_labels and
#    /soft_logits [10,1,1000], /provenance/* [10,1(,4)], /candidates/* for 300 candidates
#    (crop_box [300,5,4], score [300,5], shapley [300,4,4]) and a class_names attribute of 1000
#    names. Images: the real 28-px distilled images upsampled bilinearly to 224, flipped,
#    rolled and tinted per channel, plus Gaussian noise of $NOISE grey levels (see the
#    helper's header); every shard differs.
# 3. For each n in $COUNTS: `infoutil merge shard-0.h5 … shard-(n-1).h5 --out merged-n.h5`
#    (with --allow-missing-classes when n < N, since the shards name 1000 classes), REPEAT
#    times from a warm page cache (the shards are read once with cat first; `sync` before
#    each run; the median is reported), each under /usr/bin/time -v (or a Python wrapper
#    reading getrusage where it is missing) for user/system time and peak RSS, with `uptime`
#    before each run. The merged file is checked with h5py (imagenet_shards.py check: 10·n
#    images of 3×224×224, labels 0..n-1 ten times each, shards byte-equal in it).
# 4. Unless COLD=0: one more merge of all N shards after their pages were dropped from the
#    page cache (COLD=fadvise, the default: posix_fadvise DONTNEED on the shard files, no root
#    needed; COLD=drop: `sync; echo 3 > /proc/sys/vm/drop_caches`, falling back to fadvise).
#    On a VM the host may still cache the disk, so this is "cold-ish".
# Needs h5py and numpy (scripts/setup.sh puts them in .venv) and about 11 GB in WORK_DIR.
# Environment: INFOUTIL (default target/release/infoutil), PYTHON (default .venv/bin/python),
# DISTILL_ARGS (default: none, the shipped defaults), N (shards made, default 1000), COUNTS
# (default "100 1000", each ≤ N), REPEAT (default 3), NOISE (default 4), JOBS (processes making
# shards, default all CPUs), COLD (default fadvise), KEEP (default 0).

set -euo pipefail
shopt -s inherit_errexit
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
INFOUTIL=${INFOUTIL:-$root/target/release/infoutil}
PYTHON=${PYTHON:-$root/.venv/bin/python}
helper=$root/examples/slurm/imagenet_shards.py
classes=1000 # the shards' class_names (imagenet_shards.py CLASSES)
N=${N:-1000}
COUNTS=${COUNTS:-100 1000}
REPEAT=${REPEAT:-3}
NOISE=${NOISE:-4}
JOBS=${JOBS:-0}
COLD=${COLD:-fadvise}
KEEP=${KEEP:-0}
read -r -a extra <<<"${DISTILL_ARGS:-}"

if [ -n "${1:-}" ]; then
  work=$1
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/infoutil-bench-merge-imagenet.XXXXXX)
  if [ "$KEEP" != 1 ]; then
    trap 'rm -rf "$work"' EXIT
  fi
fi
shards=$work/shards

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
size() { du -sk "$@" | awk '{ s += $1 } END { printf "%.1f MiB", s / 1024 }'; }

# Run "$@" and print "WALL USER SYS MAXRSS_KB" (seconds, seconds, seconds, KiB) on stdout; the
# command's own output goes to stderr.
measure() {
  local t0 stats
  stats=$(mktemp)
  t0=$(now)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$stats" "$@" 1>&2
    local wall
    wall=$(since "$t0")
    awk -v wall="$wall" -F': ' '
      /User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { m = $2 }
      END { print wall, u, s, m }' "$stats"
  else
    "$PYTHON" - "$stats" "$@" <<'PY'
import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:], stdout=sys.stderr).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    print(r.ru_utime, r.ru_stime, r.ru_maxrss, file=f)
sys.exit(rc)
PY
    local wall
    wall=$(since "$t0")
    awk -v wall="$wall" '{ print wall, $1, $2, $3 }' "$stats"
  fi
  rm -f "$stats"
}

# Merge the first $1 shards into $work/merged-$1.h5 once; prints the measure line.
merge_once() {
  local n=$1 files=() flags=()
  for k in $(seq 0 $((n - 1))); do files+=("$shards/shard-$k.h5"); done
  if [ "$n" -lt "$classes" ]; then flags=(--allow-missing-classes); fi
  rm -f "$work/merged-$n.h5"
  sync
  echo "  load before: $(uptime)" >&2
  measure "$INFOUTIL" merge "${files[@]}" --out "$work/merged-$n.h5" ${flags[@]+"${flags[@]}"}
}

echo "work folder: $work; N=$N COUNTS=\"$COUNTS\" REPEAT=$REPEAT NOISE=$NOISE COLD=$COLD"
echo "infoutil: $INFOUTIL ($("$INFOUTIL" --version 2>/dev/null || echo '?')); $(nproc) CPUs; $(free -g | awk '/Mem:/ { print $2 " GiB RAM" }')"
if [ ! -s "$work/real.h5" ]; then
  t0=$(now)
  "$INFOUTIL" distill --classes 0 --out "$work/real.h5" ${extra[@]+"${extra[@]}"} >/dev/null 2>&1
  echo "distil the real one-class shard: $(since "$t0") s"
fi
t0=$(now)
"$PYTHON" "$helper" make "$work/real.h5" "$shards" "$N" --noise "$NOISE" --jobs "$JOBS"
echo "make $N synthetic shards: $(since "$t0") s; $(size "$shards")"

for n in $COUNTS; do
  files=()
  for k in $(seq 0 $((n - 1))); do files+=("$shards/shard-$k.h5"); done
  cat "${files[@]}" >/dev/null
  walls=() lines=()
  for r in $(seq "$REPEAT"); do
    out=$(merge_once "$n")
    read -r wall user sys rss <<<"$out"
    walls+=("$wall")
    lines+=("run $r: ${wall} s wall, ${user} s user, ${sys} s sys, peak RSS ${rss} KiB")
    echo "  merge $n (warm) ${lines[-1]}"
  done
  "$PYTHON" "$helper" check "$work/merged-$n.h5" "$shards" "$n"
  med=$(printf '%s\n' "${walls[@]}" | median)
  echo "merge $n shards warm: $(size "${files[@]}") → $(size "$work/merged-$n.h5"): median $med s of ${walls[*]} s ($(awk -v m="$med" -v n="$n" 'BEGIN { printf "%.1f", 1000 * m / n }') ms a shard)"
done

if [ "$COLD" != 0 ]; then
  files=()
  for k in $(seq 0 $((N - 1))); do files+=("$shards/shard-$k.h5"); done
  rm -f "$work/merged-$N.h5"
  sync
  if [ "$COLD" = drop ] && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
    echo "dropped the page cache (drop_caches)"
  else
    "$PYTHON" "$helper" evict "${files[@]}"
  fi
  out=$(merge_once "$N")
  read -r wall user sys rss <<<"$out"
  echo "merge $N shards cold-ish: ${wall} s wall, ${user} s user, ${sys} s sys, peak RSS ${rss} KiB"
  "$PYTHON" "$helper" check "$work/merged-$N.h5" "$shards" "$N"
fi
