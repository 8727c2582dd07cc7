#!/usr/bin/env bash
# Combine the shards of examples/slurm/array.sh into one file, as if one machine had distilled
# every class:
#   infoutil merge $OUT_DIR/shard-*.h5 --out $OUT_DIR/all.h5
# Submit it after the array with `sbatch --dependency=afterok:ARRAY_JOB_ID merge.sh` (submit.sh
# does): it then starts only when every task of the array has succeeded. merge refuses shards
# of different runs and, unless MERGE_ARGS has --allow-missing-classes, a missing class.
#
# Environment: OUT_DIR (required), MERGED (default $OUT_DIR/all.h5), INFOUTIL (default infoutil
# on PATH), MERGE_ARGS (further merge options).
#
#SBATCH --job-name=infoutil-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --time=01:00:00
#SBATCH --output=logs/%j-merge.out

set -euo pipefail
: "${OUT_DIR:?set OUT_DIR to the folder of the shards}"
INFOUTIL=${INFOUTIL:-infoutil}
MERGED=${MERGED:-$OUT_DIR/all.h5}

shopt -s nullglob
shards=("$OUT_DIR"/shard-*.h5)
[ "${#shards[@]}" -gt 0 ] || { echo "[merge] error: no $OUT_DIR/shard-*.h5" >&2; exit 2; }
read -r -a extra <<<"${MERGE_ARGS:-}"
echo "[merge] ${#shards[@]} shard(s) → $MERGED"
start=$(date +%s.%N)
if [ "${#shards[@]}" -eq 1 ]; then
  # One task held every class: its shard is the whole result (merge wants two or more files).
  cp "${shards[0]}" "$MERGED.tmp" && mv "$MERGED.tmp" "$MERGED"
else
  "$INFOUTIL" merge "${shards[@]}" --out "$MERGED" ${extra[@]+"${extra[@]}"}
fi
echo "[merge] done in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s: $MERGED"
