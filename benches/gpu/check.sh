#!/usr/bin/env bash
# GPU check (issue 14): on a bare machine with one NVIDIA GPU, install what infoutil's CUDA path
# needs from the package registries, build `--features cuda`, and check the CUDA backend against
# the CPU: teacher logits and gradient norms (every shipped teacher, zoo included), exact Shapley
# maps, the README's `distill`, and a throughput table with GPU utilisation. One markdown report,
# every check PASS or FAIL; the exit status is 1 when any check failed. Its helpers are shared
# with benches/gpu/run.sh (tract's CUDA route): benches/gpu/lib.sh (timed steps, the report) and
# benches/gpu/compare.py (the comparisons).
#
#   bash benches/gpu/check.sh                        # from the repository root, GPU machine
#   GPU_CHECK_DEVICE=cpu bash benches/gpu/check.sh   # the same code path with --device cpu
#
# Report: $OUT/gpu-check.md when OUT is set, else out/gpu-check.md; command logs beside it in
# gpu-check-logs/. Work files (HDF5) under out/gpu-check/. Settings (environment):
#   GPU_CHECK_DEVICE          cuda (default) or cpu (dry run: ONNX Runtime's CPU provider)
#   GPU_CHECK_BUDGET_S        wall-clock budget of the whole script, seconds (default 465); every
#                             step's timeout is cut to what is left, later steps are skipped (FAIL)
#   GPU_CHECK_VENV            virtual environment for onnxruntime-gpu and h5py (default .venv-gpu)
#   GPU_CHECK_EXACT_INDICES   images for the exact-Shapley comparison (default 0-3)
#   GPU_CHECK_EXACT_TIMEOUT_S timeout of each exact-Shapley run (default 300; 4 images take ~320 s
#                             with tract on 2 CPU cores)
#   GPU_CHECK_MEASURE_S       target seconds of work per throughput measurement (default 3)
#   CARGO_TARGET_DIR          where cargo builds (default target/)
set -uo pipefail
export LC_ALL=C
[ -n "${EPOCHREALTIME:-}" ] || { echo "benches/gpu/check.sh needs bash >= 5" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
ROOT=$PWD

DEVICE=${GPU_CHECK_DEVICE:-cuda}
case "$DEVICE" in cuda | cpu) ;; *) echo "GPU_CHECK_DEVICE must be cuda or cpu" >&2; exit 2 ;; esac
BUDGET_S=${GPU_CHECK_BUDGET_S:-465}
VENV=${GPU_CHECK_VENV:-.venv-gpu}
EXACT_INDICES=${GPU_CHECK_EXACT_INDICES:-0-3}
EXACT_TIMEOUT_S=${GPU_CHECK_EXACT_TIMEOUT_S:-300}
MEASURE_S=${GPU_CHECK_MEASURE_S:-3}
ORT_PIN="onnxruntime-gpu[cuda,cudnn]==1.31.1"
REPORT_DIR=${OUT:-out}
mkdir -p "$REPORT_DIR"
REPORT_DIR=$(cd "$REPORT_DIR" && pwd)
REPORT=$REPORT_DIR/gpu-check.md
LOGDIR=$REPORT_DIR/gpu-check-logs
WORK=$ROOT/out/gpu-check
ST=$WORK/status
rm -rf "$LOGDIR" "$WORK"
mkdir -p "$LOGDIR" "$ST"
BODY=$WORK/body.md
CHECKS=$WORK/checks.tsv
: >"$BODY"
: >"$CHECKS"
PY=$VENV/bin/python
CMP=("$PY" "$ROOT/benches/gpu/compare.py")
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/infoutil
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
START=${EPOCHREALTIME%.*}
DEADLINE=$((START + BUDGET_S))
SMI_PID=""
SCALE=1 BUDGET_VAR=GPU_CHECK_BUDGET_S MARGIN_S=10 LOGREF=gpu-check-logs SAY_TAG=gpu-check
source "$ROOT/benches/gpu/lib.sh"
report_head() {
  echo "# infoutil GPU check"
  echo
  echo "Device mode \`$DEVICE\` (\`--backend ort --device $DEVICE\` against the CPU), $(date -u '+%Y-%m-%d %H:%M UTC'),"
  echo "$(($(now) - START)) s so far of a ${BUDGET_S} s budget. Produced by \`bash benches/gpu/check.sh\`$([ "$DEVICE" = cpu ] && echo " with GPU_CHECK_DEVICE=cpu: a CPU dry run, nothing here was measured on a GPU")."
}

cleanup() {
  if [ -n "$SMI_PID" ]; then kill "$SMI_PID" 2>/dev/null; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
say "device mode $DEVICE, budget ${BUDGET_S}s, report $REPORT"
md "## 0. Machine" ""
{
  echo '```'
  echo "host: $(uname -srm); $(nproc) cores; $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) memory"
  grep -m1 PRETTY_NAME /etc/os-release 2>/dev/null
  echo "python3: $(python3 --version 2>&1); cargo: $(cargo --version 2>&1)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo 'no git') $(git status --porcelain 2>/dev/null | grep -qv '^??' && echo '(working tree has changes)')"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    nvidia-smi 2>&1 | grep -o 'CUDA Version: [0-9.]*'
  else
    echo "nvidia-smi: not found"
  fi
  echo '```'
} >>"$BODY"
if [ "$DEVICE" = cuda ]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >"$LOGDIR/nvidia-smi.log" 2>&1; then
    check "0 machine" "a GPU is visible (nvidia-smi -L)" PASS "$(head -1 "$LOGDIR/nvidia-smi.log")"
    # onnxruntime-gpu 1.31.1 on PyPI is built with CUDA 13: the driver must support CUDA >= 13.0.
    cuda_drv=$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | awk '{ print $3 }')
    if awk -v v="${cuda_drv:-0}" 'BEGIN { exit !(v + 0 >= 13.0) }'; then
      check "0 machine" "driver supports CUDA 13 (the onnxruntime-gpu 1.31.1 wheel's CUDA)" PASS "driver CUDA $cuda_drv"
    else
      check "0 machine" "driver supports CUDA 13 (the onnxruntime-gpu 1.31.1 wheel's CUDA)" FAIL "driver CUDA ${cuda_drv:-unknown} < 13.0: CUDA 13 runtime libraries will not run on it"
    fi
  else
    check "0 machine" "a GPU is visible (nvidia-smi -L)" FAIL "$(head -1 "$LOGDIR/nvidia-smi.log" 2>/dev/null || echo 'nvidia-smi not found')"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 1. Install: venv with onnxruntime-gpu (background), libhdf5-dev, then the --features cuda build.
md "" "## 1. Install and build" ""
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
venv_ok() {
  [ -x "$PY" ] && "$PY" - <<'EOF' 2>/dev/null
import h5py, numpy, onnxruntime
from onnxruntime.capi import build_and_package_info as i
assert onnxruntime.__version__ == "1.31.1" and i.package_name == "onnxruntime-gpu", (onnxruntime.__version__, i.package_name)
EOF
}
PIP_PID=""
if venv_ok; then
  echo "venv $VENV already holds onnxruntime-gpu 1.31.1" >"$LOGDIR/pip.log"
  echo 0 >"$ST/pip.rc"
else
  need_apt_venv=0
  if ! python3 -m venv "$VENV" >"$LOGDIR/venv.log" 2>&1; then need_apt_venv=1; fi
  if [ "$need_apt_venv" = 0 ]; then
    run pip 240 "$VENV/bin/pip" install -q --disable-pip-version-check "$ORT_PIN" h5py numpy &
    PIP_PID=$!
  fi
fi
if ! pkg-config --exists hdf5 2>/dev/null || [ "${need_apt_venv:-0}" = 1 ]; then
  pkgs=(libhdf5-dev pkg-config)
  [ "${need_apt_venv:-0}" = 1 ] && pkgs+=(python3-venv)
  run apt 180 bash -c "$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ${pkgs[*]}"
  if [ "${need_apt_venv:-0}" = 1 ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" >"$LOGDIR/venv.log" 2>&1
    run pip 240 "$VENV/bin/pip" install -q --disable-pip-version-check "$ORT_PIN" h5py numpy &
    PIP_PID=$!
  fi
  if pkg-config --exists hdf5; then
    check "1 install" "libhdf5-dev (apt)" PASS "installed in $(secs_of apt) s: HDF5 $(pkg-config --modversion hdf5)"
  else
    check "1 install" "libhdf5-dev (apt)" FAIL "$(why apt)"
  fi
else
  check "1 install" "libhdf5-dev (apt)" PASS "already there: HDF5 $(pkg-config --modversion hdf5)"
fi

command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
if run build 330 cargo build --release --features cuda; then
  check "1 install" "cargo build --release --features cuda" PASS "$(secs_of build) s; $BIN"
else
  check "1 install" "cargo build --release --features cuda" FAIL "$(why build)"
fi
if [ -n "$PIP_PID" ]; then wait "$PIP_PID"; fi
if venv_ok; then
  check "1 install" "pip install $ORT_PIN h5py numpy" PASS "$(secs_of pip) s; $("${CMP[@]}" env 2>&1)"
else
  check "1 install" "pip install $ORT_PIN h5py numpy" FAIL "$(why pip)"
fi

# ONNX Runtime for infoutil: the wheel's library; the CUDA and cuDNN libraries of the nvidia-*
# wheels go on LD_LIBRARY_PATH (onnxruntime's preload_dlls() does this for Python only).
SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" 2>/dev/null || echo "$VENV/none")
ORT_DYLIB_PATH=$(find "$SITE/onnxruntime/capi" -maxdepth 1 -name 'libonnxruntime.so*' 2>/dev/null | sort | head -1)
export ORT_DYLIB_PATH
nv_dirs=$(find "$SITE/nvidia" -mindepth 2 -maxdepth 2 -type d -name lib 2>/dev/null | sort | paste -sd: -)
export LD_LIBRARY_PATH="${nv_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
  echo "ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "--- ldd libonnxruntime_providers_cuda.so"
  ldd "$SITE/onnxruntime/capi/libonnxruntime_providers_cuda.so"
  echo "--- cuDNN"
  find "$SITE/nvidia" -name 'libcudnn.so*'
} >"$LOGDIR/libs.log" 2>&1
missing=$(grep 'not found' "$LOGDIR/libs.log" | awk '{ print $1 }' | sort -u | paste -sd' ' -)
expected_missing=""
[ "$DEVICE" = cpu ] && expected_missing="libcuda.so.1" # the driver's library: absent without a GPU
if [ -n "$ORT_DYLIB_PATH" ] && [ "$missing" = "$expected_missing" ] && grep -q 'libcudnn.so.9' "$LOGDIR/libs.log"; then
  check "1 install" "the CUDA provider's libraries resolve (ldd, LD_LIBRARY_PATH)" PASS \
    "missing: ${missing:-none}$([ "$DEVICE" = cpu ] && echo ' (the driver library, expected without a GPU)'); cuDNN 9 present"
else
  check "1 install" "the CUDA provider's libraries resolve (ldd, LD_LIBRARY_PATH)" FAIL "missing: ${missing:-none}; ORT_DYLIB_PATH='$ORT_DYLIB_PATH' (gpu-check-logs/libs.log)"
fi
md "- \`ORT_DYLIB_PATH=${ORT_DYLIB_PATH#"$ROOT"/}\`" "- \`LD_LIBRARY_PATH\`: the \`lib\` folders of the nvidia-* wheels (${nv_dirs//$ROOT\//})"

# The device, once, with the CLI's own timing: it fails here first if CUDA cannot run.
if run smoke 90 "$BIN" teacher eval --backend ort --device "$DEVICE" --no-grad-norms --batch-size 1024; then
  check "1 install" "infoutil runs on --device $DEVICE" PASS "$(speed_of smoke), 1 000 images, logits only"
else
  check "1 install" "infoutil runs on --device $DEVICE" FAIL "exit $(rc_of smoke): $(grep -m1 '^error' "$LOGDIR/smoke.log" || why smoke)"
fi
# The GPU's share: an explicit device and arena limit run; a device that does not exist is refused.
if [ "$DEVICE" = cuda ]; then
  if run share 90 "$BIN" teacher eval --backend ort --device cuda --cuda-device 0 --cuda-memory-limit 2048 --no-grad-norms; then
    check "1 install" "--cuda-device 0 --cuda-memory-limit 2048 runs" PASS "$(speed_of share)"
  else
    check "1 install" "--cuda-device 0 --cuda-memory-limit 2048 runs" FAIL "exit $(rc_of share): $(why share)"
  fi
  if ! run nodev 60 "$BIN" teacher eval --backend ort --device cuda --cuda-device 99 --no-grad-norms; then
    check "1 install" "--cuda-device 99 is refused" PASS "\`$(grep -m1 '^error' "$LOGDIR/nodev.log" | cut -c1-160)\`"
  else
    check "1 install" "--cuda-device 99 is refused" FAIL "it ran"
  fi
fi

# Without a GPU (dry run): --device cuda must refuse with a clear error, not fall back to the CPU.
if [ "$DEVICE" = cpu ]; then
  run nocuda 60 "$BIN" teacher eval --backend ort --device cuda --no-grad-norms
  msg=$(grep -m1 '^error' "$LOGDIR/nocuda.log")
  if [ "$(rc_of nocuda)" != 0 ] && [ "$(rc_of nocuda)" -lt 124 ] && [ -n "$msg" ] && ! grep -q 'top-1' "$LOGDIR/nocuda.log"; then
    check "1 install" "--device cuda without a GPU is refused (no CPU fallback)" PASS "exit $(rc_of nocuda): \`$msg\`"
  else
    check "1 install" "--device cuda without a GPU is refused (no CPU fallback)" FAIL "$(why nocuda)"
  fi
fi

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 >"$WORK/gpu-util.csv" 2>/dev/null &
  SMI_PID=$!
fi

# ---------------------------------------------------------------------------------------------
# 2-4: the CPU references run in the background (tract, and ONNX Runtime's CPU provider) while
# the device runs in the foreground; the comparisons wait for both.
TEACHERS=()
for t in models/*.onnx models/zoo/*.onnx; do
  case "$t" in *.grad.onnx) ;; *) [ -f "$t" ] && TEACHERS+=("$t") ;; esac
done
tname() { basename "$1" .onnx; }

cpu_refs() {
  local t n
  for t in "${TEACHERS[@]}"; do
    n=$(tname "$t")
    run "eval-tract-$n" 120 "$BIN" teacher eval --teacher "$t" --backend tract --out "$WORK/eval-tract-$n.h5"
    run "eval-ortcpu-$n" 120 "$BIN" teacher eval --teacher "$t" --backend ort --device cpu --out "$WORK/eval-ortcpu-$n.h5"
  done
  run attr-tract "$EXACT_TIMEOUT_S" "$BIN" attribute --estimator exact --indices "$EXACT_INDICES" --backend tract --out "$WORK/attr-tract.h5"
  run distill-tract 180 "$BIN" distill --backend tract --out "$WORK/distill-tract.h5"
  run distill-ortcpu 120 "$BIN" distill --backend ort --device cpu --out "$WORK/distill-ortcpu.h5"
}
say "CPU references in the background"
cpu_refs &
REFS_PID=$!

for t in "${TEACHERS[@]}"; do
  n=$(tname "$t")
  run "eval-dev-$n" 120 "$BIN" teacher eval --teacher "$t" --backend ort --device "$DEVICE" --out "$WORK/eval-dev-$n.h5"
done
run attr-dev "$EXACT_TIMEOUT_S" "$BIN" attribute --estimator exact --indices "$EXACT_INDICES" --backend ort --device "$DEVICE" --out "$WORK/attr-dev.h5"
run distill-dev 180 "$BIN" distill --backend ort --device "$DEVICE" --out "$WORK/distill-dev.h5"
run inspect-dev 60 "$BIN" inspect "$WORK/distill-dev.h5"
say "device runs done; waiting for the CPU references"
wait "$REFS_PID"

# 2. Teachers ---------------------------------------------------------------------------------
md "" "## 2. Teachers: \`teacher eval --backend ort --device $DEVICE\` vs \`--backend tract\` (CPU)" ""
md "Embedded test set (1 000 real Fashion-MNIST images), logits and per-sample gradient norms." \
  "Pass: top-1 identical, max |Δlogit| ≤ 1e-4, gradient norms within 1e-4 relative of tract. Images" \
  "where the two CPU backends (tract, ONNX Runtime CPU) already differ by more than 1e-4 relative sit" \
  "on a ReLU kink (docs/backends.md) and are held to 1e-2 instead: they are counted in the \"kink\" column." ""
md "| teacher | top-1 device / tract | arg-max agree | max \\|Δlogit\\| vs tract | vs ORT CPU | grad rel. diff vs tract (max) | kink images | max on the others | grad vs ORT CPU | result |" \
  "|---|---|---|---|---|---|---:|---|---|---|"
for t in "${TEACHERS[@]}"; do
  n=$(tname "$t")
  if [ "$(rc_of "eval-dev-$n")" != 0 ]; then
    md "| $n | device run failed: $(why "eval-dev-$n") ||||||||"
    check "2 teachers" "$n: ort $DEVICE vs tract" FAIL "device run: $(why "eval-dev-$n")"
    continue
  fi
  if [ "$(rc_of "eval-tract-$n")" != 0 ]; then
    check "2 teachers" "$n: ort $DEVICE vs tract" FAIL "tract run: $(why "eval-tract-$n")"
    continue
  fi
  ortcpu="$WORK/eval-ortcpu-$n.h5"
  [ "$(rc_of "eval-ortcpu-$n")" = 0 ] || ortcpu=-
  row=$("${CMP[@]}" eval "$n" "$WORK/eval-dev-$n.h5" "$WORK/eval-tract-$n.h5" "$ortcpu" 2>"$LOGDIR/cmp-eval-$n.log")
  rc=$?
  md "${row:-| $n | comparison failed (gpu-check-logs/cmp-eval-$n.log) ||||||||}"
  rate="$(speed_of "eval-dev-$n") with gradient norms"
  if [ "$rc" = 0 ]; then
    check "2 teachers" "$n: ort $DEVICE vs tract" PASS "$rate"
  else
    check "2 teachers" "$n: ort $DEVICE vs tract" FAIL "$(echo "$row" | cut -d'|' -f3-10 | tr -s ' ')$(tail -n 1 "$LOGDIR/cmp-eval-$n.log" 2>/dev/null)"
    # Diagnostic: is it TensorFloat-32 in cuBLAS/cuDNN? (infoutil leaves ONNX Runtime's use_tf32 off.)
    if [ "$DEVICE" = cuda ]; then
      run "eval-dev-notf32-$n" 60 env NVIDIA_TF32_OVERRIDE=0 "$BIN" teacher eval --teacher "$t" --backend ort --device cuda --out "$WORK/eval-dev-notf32-$n.h5" &&
        md "| $n, NVIDIA_TF32_OVERRIDE=0 (diagnostic) |$("${CMP[@]}" eval "$n" "$WORK/eval-dev-notf32-$n.h5" "$WORK/eval-tract-$n.h5" "$ortcpu" 2>&1 | cut -d'|' -f3-)"
    fi
  fi
done

# 3. Exact Shapley maps -----------------------------------------------------------------------
md "" "## 3. Exact Shapley maps: \`attribute --estimator exact --indices $EXACT_INDICES\`, ort $DEVICE vs tract" ""
md "All 2^16 coalitions of the 4×4 grid per image (65 536 masked images each). A Shapley value is a" \
  "weighted average (weights summing to 1) of differences v(S∪i) − v(S) of two logits, so a logit" \
  "agreement of ε bounds |Δφ| by 2ε; the tolerance 1e-4 × max |φ| (2e-4 to 4e-4 on images 0-3, whose" \
  "max |φ| is 2 to 4) is the 1e-4 logit tolerance of step 2 carried over, made relative so that it" \
  "scales with the map." ""
if [ "$(rc_of attr-dev)" != 0 ]; then
  check "3 exact maps" "attribute --estimator exact on $DEVICE" FAIL "$(why attr-dev)"
elif [ "$(rc_of attr-tract)" != 0 ]; then
  check "3 exact maps" "attribute --estimator exact on $DEVICE" FAIL "tract run: $(why attr-tract)"
else
  out=$("${CMP[@]}" attr "$WORK/attr-dev.h5" "$WORK/attr-tract.h5" 2>"$LOGDIR/cmp-attr.log")
  rc=$?
  md "$(echo "$out" | grep -v '^MAX_ABS')" "" "Times: device $(secs_of attr-dev) s, tract $(secs_of attr-tract) s (the tract run shared the CPU with the device runs)."
  maxabs=$(echo "$out" | awk '/^MAX_ABS/ { print $2 }')
  if [ "$rc" = 0 ]; then
    check "3 exact maps" "exact maps within 1e-4 × map scale of tract" PASS "max |Δφ| = ${maxabs}"
  else
    check "3 exact maps" "exact maps within 1e-4 × map scale of tract" FAIL "max |Δφ| = ${maxabs:-?} $(tail -n 1 "$LOGDIR/cmp-attr.log")"
  fi
fi

# 4. The README's main command ----------------------------------------------------------------
md "" "## 4. \`infoutil distill\` (defaults, seed 0) with \`--backend ort --device $DEVICE\`, and \`inspect\`" ""
if [ "$(rc_of distill-dev)" = 0 ] && [ "$(rc_of inspect-dev)" = 0 ]; then
  check "4 distill" "distill --backend ort --device $DEVICE, then inspect" PASS "$(grep -m1 '^time' "$LOGDIR/distill-dev.log")"
  md '```' "$(grep -E '^(time|[0-9]+ candidate)' "$LOGDIR/distill-dev.log")" '```' "" "\`inspect\` of the result (its \`@config\` JSON left out):" '```' \
    "$(awk '/^\$ /{ next } /^  @config:/{ skip = 1; next } skip && /^    }$/{ skip = 0; next } !skip' "$LOGDIR/inspect-dev.log")" '```' ""
else
  check "4 distill" "distill --backend ort --device $DEVICE, then inspect" FAIL "distill: $(why distill-dev); inspect: $(why inspect-dev)"
fi
md "| pair | same tile sources | same crop boxes | same labels | same candidate crops | same uint8 images | max \\|Δ soft label\\| | max \\|Δφ\\| / max \\|φ\\| | max rel. Δ score |" \
  "|---|---|---|---|---|---|---|---|---|"
cmp_distill() { # A B LABEL → a row; exit status 0 when the provenance is identical
  local r rc
  r=$("${CMP[@]}" distill "$WORK/$1.h5" "$WORK/$2.h5" "$3" 2>>"$LOGDIR/cmp-distill.log")
  rc=$?
  md "${r:-| $3 | comparison failed (gpu-check-logs/cmp-distill.log) ||||||||}"
  return "$rc"
}
if [ "$(rc_of distill-dev)" = 0 ] && [ "$(rc_of distill-tract)" = 0 ]; then
  if cmp_distill distill-dev distill-tract "ort $DEVICE vs tract"; then
    check "4 distill" "same crop provenance as the CPU run (tract, same seed)" PASS "every tile from the same record and box"
  else
    check "4 distill" "same crop provenance as the CPU run (tract, same seed)" FAIL "provenance differs (table in section 4)"
  fi
  if [ "$(rc_of distill-ortcpu)" = 0 ]; then
    cmp_distill distill-dev distill-ortcpu "ort $DEVICE vs ort cpu"
    cmp_distill distill-ortcpu distill-tract "ort cpu vs tract (reference pair)"
  fi
  md "" "Wall: device $(secs_of distill-dev) s, tract $(secs_of distill-tract) s, ort cpu $(secs_of distill-ortcpu) s (CPU runs shared the cores with the device runs)."
else
  check "4 distill" "same crop provenance as the CPU run (tract, same seed)" FAIL "device: $(why distill-dev); tract: $(why distill-tract)"
fi

# 5. Throughput -------------------------------------------------------------------------------
md "" "## 5. Throughput (\`--backend ort --device $DEVICE\`)" ""
round_n() { # RATE SECONDS MIN MAX: images for about SECONDS of work, a multiple of 1024
  awk -v r="$1" -v s="$2" -v lo="$3" -v hi="$4" 'BEGIN { n = int(r * s / 1024 + 1) * 1024; if (n < lo) n = lo; if (n > hi) n = hi; print n }'
}
util_of() { "${CMP[@]}" util "$WORK/gpu-util.csv" "$1" "$2" 2>/dev/null || echo "n/a | n/a | n/a"; }
# Sizes for about MEASURE_S seconds of work each: the forward rate from a calibration run on
# 16 384 images (the 1 000-image runs above are dominated by warm-up on a GPU), the rate with
# gradient norms from step 2's run (an underestimate, hence twice the seconds).
run tile-cal 60 "${CMP[@]}" tile data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz 16384 "$WORK/tiled-cal.h5"
run thr-calibrate 90 "$BIN" teacher eval --data "$WORK/tiled-cal.h5" --no-grad-norms --batch-size 1024 --backend ort --device "$DEVICE"
r_fwd=$(rate_of thr-calibrate)
r_grad=$(rate_of eval-dev-fmnist-convnet3)
n_fwd=$(round_n "${r_fwd:-1000}" "$MEASURE_S" 4096 1048576)
n_grad=$(round_n "${r_grad:-100}" "$((MEASURE_S * 2))" 1024 262144)
run tile 60 "${CMP[@]}" tile data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz "$n_fwd" "$WORK/tiled-fwd.h5"
run tile-grad 60 "${CMP[@]}" tile data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz "$n_grad" "$WORK/tiled-grad.h5"
md "Teacher \`models/fmnist-convnet3.onnx\` (ConvNet-3, 28×28). Raw inference: \`teacher eval --no-grad-norms --batch-size B\`" \
  "on $n_fwd images (the embedded test set tiled, HDF5), images/s as the CLI reports it (data reading" \
  "and conversion included, session creation not). Gradient norms: \`teacher eval --batch-size B\` on $n_grad" \
  "images (logits and norms), and norms/s = N / (its time − N / forward rate). Stage 1: \`attribute" \
  "--budget 1024 --batch-size B\` (Leverage SHAP, 1 024 masked images per image), masked images/s =" \
  "n·1024 / (wall − the wall of a 1-image, budget-48 run: start-up, CUDA and session set-up)." \
  "GPU utilisation: \`nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used -lms 200\`, over each run." ""
md "| measurement | batch | work | seconds | rate | GPU util. mean % | max % | GPU mem. max MiB | result |" \
  "|---|---:|---|---:|---:|---:|---:|---:|---|"
thr_row() { # NAME LABEL BATCH WORK SECONDS RATE T0 T1
  local ok=FAIL
  if [ "$(rc_of "$1")" = 0 ] && [ -n "$6" ]; then ok=PASS; fi
  md "| $2 | $3 | $4 | ${5:-–} | ${6:-$(why "$1")} | $(util_of "$7" "$8") | $ok |"
  [ "$ok" = PASS ] || THR_FAIL="$THR_FAIL $1"
}
THR_FAIL=""
t0=$EPOCHREALTIME
run attr-startup 60 "$BIN" attribute --indices 0 --budget 48 --backend ort --device "$DEVICE" --out "$WORK/attr-startup.h5"
startup=$(secs_of attr-startup)
for b in 64 256 1024; do
  t0=$EPOCHREALTIME
  run "thr-fwd-$b" 90 "$BIN" teacher eval --data "$WORK/tiled-fwd.h5" --no-grad-norms --batch-size "$b" --backend ort --device "$DEVICE"
  t1=$EPOCHREALTIME
  rf=$(rate_of "thr-fwd-$b")
  thr_row "thr-fwd-$b" "raw inference (logits)" "$b" "$n_fwd images" "$(secs_in "thr-fwd-$b")" "${rf:+$rf images/s}" "$t0" "$t1"

  t0=$EPOCHREALTIME
  run "thr-grad-$b" 90 "$BIN" teacher eval --data "$WORK/tiled-grad.h5" --batch-size "$b" --backend ort --device "$DEVICE"
  t1=$EPOCHREALTIME
  sg=$(secs_in "thr-grad-$b")
  gn=""
  [ -n "$sg" ] && [ -n "$rf" ] && gn=$(awk -v n="$n_grad" -v s="$sg" -v r="$rf" 'BEGIN { d = s - n / r; if (d > 0) printf "%.0f norms/s", n / d }')
  thr_row "thr-grad-$b" "gradient norms" "$b" "$n_grad images" "$sg" "$gn" "$t0" "$t1"

  # Stage 1: enough images for about MEASURE_S seconds at this batch's forward rate.
  na=$(awk -v r="${rf:-1000}" -v s="$MEASURE_S" 'BEGIN { n = int(r * s / 1024 + 0.5); if (n < 2) n = 2; if (n > 1000) n = 1000; print n }')
  t0=$EPOCHREALTIME
  run "thr-attr-$b" 90 "$BIN" attribute --indices "0-$((na - 1))" --budget 1024 --batch-size "$b" --backend ort --device "$DEVICE" --out "$WORK/thr-attr-$b.h5"
  t1=$EPOCHREALTIME
  wa=$(secs_of "thr-attr-$b")
  ra=$(awk -v n="$na" -v w="$wa" -v s="$startup" 'BEGIN { d = w - s; if (d > 0) printf "%.0f masked images/s", n * 1024 / d }')
  thr_row "thr-attr-$b" "Stage 1 (attribute)" "$b" "$na × 1024 masked" "$(awk -v w="$wa" -v s="$startup" 'BEGIN { printf "%.1f", w - s }')" "$ra" "$t0" "$t1"
done
md "" "Stage 1 start-up subtracted: $startup s (\`attribute --indices 0 --budget 48\`)."
if [ -z "$THR_FAIL" ]; then
  check "5 throughput" "9 measurements at batch 64, 256, 1024" PASS "table in section 5"
else
  check "5 throughput" "9 measurements at batch 64, 256, 1024" FAIL "failed:$THR_FAIL"
fi
if [ -n "$SMI_PID" ]; then
  kill "$SMI_PID" 2>/dev/null
  SMI_PID=""
  md "" "GPU samples: $(wc -l <"$WORK/gpu-util.csv") (\`out/gpu-check/gpu-util.csv\`)."
else
  md "" "No nvidia-smi on this machine: no utilisation figures."
fi

# Time ----------------------------------------------------------------------------------------
time_section "CPU-reference runs (tract, ort cpu) ran in the background during the device runs of steps 2–4."
render
say "done: $FAILS check(s) failed; report $REPORT"
[ "$FAILS" = 0 ]
