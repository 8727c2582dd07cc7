#!/usr/bin/env bash
# One Slurm array task = one share of the teacher's classes. Each task runs
#   infoutil distill --classes LO-HI --resume --out $OUT_DIR/shard-$ID.h5 $DISTILL_ARGS
# and examples/slurm/merge.sh (a job that depends on the whole array) combines the shards.
# submit.sh submits both; see examples/slurm/README.md.
#
# Environment (sbatch passes the submitting shell's environment to the job):
#   CLASSES       number of classes of the teacher (required; 10 for the shipped teacher)
#   OUT_DIR       folder for the shards (required; on a file system every node sees)
#   NTASKS        number of tasks the classes are split into (default: the array's size, when
#                 the array is 0..N-1; set it when resubmitting only some tasks, --array=3,7)
#   INFOUTIL      the infoutil binary (default: infoutil on PATH)
#   DISTILL_ARGS  further distill options, the same for every task (teacher, data, ipc, seed…)
#   ORT_DYLIB_PATH  ONNX Runtime library, passed through to infoutil as it is
#
#SBATCH --job-name=infoutil-distill
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --output=logs/%A_%a.out
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --signal=B:TERM@60
#
# GPU variant: remove one '#' from the next line, run infoutil from a venv with
# `pip install "infoutil[gpu]"` (or point ORT_DYLIB_PATH at onnxruntime-gpu's library for a
# checkout's build, which has the CUDA provider by default) and add
# "--backend ort --device cuda" to DISTILL_ARGS.
##SBATCH --gres=gpu:1

set -euo pipefail

say() { echo "[array task ${SLURM_ARRAY_TASK_ID:-?}] $*"; }
die() { say "error: $*" >&2; exit 2; }

: "${CLASSES:?set CLASSES to the number of classes of the teacher (10 for the shipped one)}"
: "${OUT_DIR:?set OUT_DIR to the folder for the shards}"
INFOUTIL=${INFOUTIL:-infoutil}
id=${SLURM_ARRAY_TASK_ID:?not an array task: submit with sbatch --array=0-N (or submit.sh)}

# The split must not depend on which tasks of the array run now: a resubmission of tasks 3 and 7
# alone has SLURM_ARRAY_TASK_COUNT=2, so it needs NTASKS.
ntasks=${NTASKS:-}
if [ -z "$ntasks" ]; then
  if [ "${SLURM_ARRAY_TASK_MIN:-}" = 0 ] &&
    [ "$((SLURM_ARRAY_TASK_MAX + 1))" = "${SLURM_ARRAY_TASK_COUNT:-}" ]; then
    ntasks=$SLURM_ARRAY_TASK_COUNT
  else
    die "the array is not 0..N-1 (${SLURM_ARRAY_TASK_COUNT:-?} tasks, ${SLURM_ARRAY_TASK_MIN:-?} to ${SLURM_ARRAY_TASK_MAX:-?}): set NTASKS to the size of the whole split"
  fi
fi
[ "$id" -lt "$ntasks" ] || die "task $id is outside the split into NTASKS=$ntasks tasks"
[ "$ntasks" -le "$CLASSES" ] || die "NTASKS=$ntasks is more than CLASSES=$CLASSES: some tasks would have no class"

# Task i takes classes [i*C/N, (i+1)*C/N): shares differ by at most one class.
lo=$((id * CLASSES / ntasks))
hi=$(((id + 1) * CLASSES / ntasks - 1))

# As many compute threads as CPUs Slurm gave this task (rayon for tract, OpenMP-aware libraries).
threads=${SLURM_CPUS_PER_TASK:-1}
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

out="$OUT_DIR/shard-$id.h5"
say "classes $lo-$hi of $CLASSES (task $id of $ntasks), $threads thread(s), on $(hostname -s), restart ${SLURM_RESTART_COUNT:-0}, → $out"
if [ -s "$out" ]; then
  say "$out exists already: nothing to do (delete it to distil these classes again)"
  exit 0
fi
read -r -a extra <<<"${DISTILL_ARGS:-}"

# distill runs in the background so that the shell can act on Slurm's TERM (preemption,
# `scontrol requeue`, or 60 s before the time limit through --signal=B:TERM@60). Classes
# finished so far stay in $out.parts/ (each one saved atomically); only the class in progress
# is lost. When Slurm starts the task again (--requeue), --resume takes the finished classes.
child=
on_term() {
  say "TERM: stopping distill; finished classes stay in $out.parts/ and --resume continues from them"
  [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true
  wait "$child" 2>/dev/null || true
  exit 143
}
trap on_term TERM

"$INFOUTIL" distill --classes "$lo-$hi" --resume --out "$out" ${extra[@]+"${extra[@]}"} &
child=$!
rc=0
wait "$child" || rc=$?
[ "$rc" -eq 0 ] || die "infoutil distill failed (exit $rc)"
say "done: $out"
