# Sourced by scripts/results_env.sh, scripts/tune_fmnist.sh and scripts/sweep_fmnist.sh: distil
# files and train students on them, each step skipped when its output exists, so a stopped run
# resumes.
# Expects: $dir (outputs), $data (the idx file to distil), $distil_opts (options every run shares),
# $test_images / $test_labels (what students are scored on), $bin (infoutil), $py (python with
# examples/requirements-student.txt), $jobs (students at a time, one thread each).

# distil NAME ARGS…: one `infoutil distill` run, its command in NAME.cmd and its stdout in NAME.log
# (both read by the trainer).
distil() {
  local name=$1; shift
  [ -f "$dir/$name.h5" ] && return
  local args="distill --data $data --backend ort $distil_opts --out $dir/$name.h5 $*"
  echo "infoutil $args" > "$dir/$name.cmd"
  echo "[distil] $name"
  $bin $args > "$dir/$name.log" 2>&1
}

# train NAME…: one student per file NAME.h5 (variant: NAME up to "-ipc", seed: after the last "-s").
# $student (default convnet3) picks the architecture; another student's JSONs and logs go to
# $dir/$student/, so that both can be trained on the same files.
train() {
  local arch=${student:-convnet3} out=$dir
  [ "$arch" = convnet3 ] || out=$dir/$arch
  mkdir -p "$out"
  for name in "$@"; do
    [ -f "$out/$name.json" ] || echo "$name"
  done | xargs -r -P "$jobs" -I{} bash -c '
    name={}; variant=${name%-ipc*}; seed=${name##*-s}
    echo "[train '"$arch"'] $name"
    '"$py"' scripts/train_student.py '"$dir"'/$name.h5 --student '"$arch"' --variant $variant --seed $seed \
      --threads 1 --test-images '"$test_images"' --test-labels '"$test_labels"' \
      --distill-command "$(cat '"$dir"'/$name.cmd)" --out '"$out"'/$name.json > '"$out"'/$name.train.log 2>&1'
}
