#!/usr/bin/env bash
# Submit a sharded distillation to Slurm: the array of examples/slurm/array.sh (one task per
# share of the classes) and examples/slurm/merge.sh, which waits for the whole array
# (--dependency=afterok) and writes $OUT_DIR/all.h5. Prints both job ids.
#
#   CLASSES=1000 NTASKS=100 OUT_DIR=/shared/run1 \
#   DISTILL_ARGS="--teacher /shared/t.onnx --data /shared/train --ipc 10 --seed 0" \
#     examples/slurm/submit.sh [sbatch options for the array tasks, e.g. --partition=cpu]
#
# Environment:
#   CLASSES       number of classes of the teacher (required)
#   NTASKS        array tasks to split the classes into (default 10, at most CLASSES)
#   OUT_DIR       shared folder for the shards, the merged file and the logs (required)
#   DISTILL_ARGS  distill options for every task; never --classes, --resume or --out
#   INFOUTIL      the infoutil binary (default: infoutil on PATH, made absolute here)
#   ARRAY         the tasks to submit (default 0-$((NTASKS-1)); "3,7" reruns two tasks,
#                 "0-99%20" runs at most 20 at once)
#   LOG_DIR       where the jobs' logs go (default $OUT_DIR/logs)
#   MERGE_SBATCH_ARGS  sbatch options for the merge job (e.g. "--partition=cpu")
# sbatch's own input variables (SBATCH_PARTITION, SBATCH_ACCOUNT, …) apply to both jobs.
#
# Output: "ARRAY_JOB_ID=…" and "MERGE_JOB_ID=…" lines, then what to watch.

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "submit.sh: error: $*" >&2; exit 2; }

: "${CLASSES:?set CLASSES to the number of classes of the teacher (10 for the shipped one)}"
: "${OUT_DIR:?set OUT_DIR to a folder every node sees}"
NTASKS=${NTASKS:-10}
if [ "$NTASKS" -lt 1 ] || [ "$NTASKS" -gt "$CLASSES" ]; then die "NTASKS=$NTASKS must be 1 to CLASSES=$CLASSES"; fi
case " ${DISTILL_ARGS:-} " in
  *" --classes"* | *" --resume"* | *" --out"*) die "DISTILL_ARGS must not set --classes, --resume or --out: array.sh sets them" ;;
esac
if [ -z "${INFOUTIL:-}" ]; then
  INFOUTIL=$(command -v infoutil) || die "no infoutil on PATH: set INFOUTIL=/path/to/infoutil"
fi
INFOUTIL=$(cd "$(dirname "$INFOUTIL")" && pwd)/$(basename "$INFOUTIL")
[ -x "$INFOUTIL" ] || die "$INFOUTIL is not executable"
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
LOG_DIR=${LOG_DIR:-$OUT_DIR/logs}
mkdir -p "$LOG_DIR" # Slurm does not make it: a missing log folder fails the job with no log
ARRAY=${ARRAY:-0-$((NTASKS - 1))}
export CLASSES NTASKS OUT_DIR INFOUTIL DISTILL_ARGS="${DISTILL_ARGS:-}"

array_id=$(sbatch --parsable --array="$ARRAY" --output="$LOG_DIR/%A_%a.out" "$@" "$here/array.sh")
array_id=${array_id%%;*}
read -r -a merge_args <<<"${MERGE_SBATCH_ARGS:-}"
merge_id=$(sbatch --parsable --dependency="afterok:$array_id" --output="$LOG_DIR/%j-merge.out" \
  ${merge_args[@]+"${merge_args[@]}"} "$here/merge.sh")
merge_id=${merge_id%%;*}

echo "ARRAY_JOB_ID=$array_id"
echo "MERGE_JOB_ID=$merge_id"
cat >&2 <<EOF
array $array_id: tasks $ARRAY, $CLASSES classes in $NTASKS shares → $OUT_DIR/shard-ID.h5
merge $merge_id: after every task succeeded → $OUT_DIR/all.h5
logs: $LOG_DIR/${array_id}_TASK.out and $LOG_DIR/${merge_id}-merge.out
watch: squeue -r -j $array_id,$merge_id    rerun failed tasks: see examples/slurm/README.md
EOF
