#!/usr/bin/env bash
# GPU check from a carried package (issue 34): on a GPU machine that can fetch nothing and has no
# cargo, unpack the binary that benches/gpu/pack.sh built (tract's CUDA runtime in it, HDF5
# linked in), and check `--backend tract --device cuda` against tract on the CPU: teacher logits
# and gradient norms, exact Shapley maps, the README's `distill`; then a throughput table for a
# ResNet-18 at 224 px (exported here with the image's PyTorch) beside PyTorch's own rates, and
# the ImageNet-1K time they project. Only what the image has is used: bash, xz, python3 with
# h5py, numpy, torch, torchvision and onnx; the CUDA driver, libraries and headers.
#
#   bash benches/gpu/run.sh                        # from the repository root, on the GPU machine
#   GPU_RUN_DEVICE=cpu bash benches/gpu/run.sh     # dry run without a GPU (see below)
#
# The dry run takes every step with tract's CPU runtime standing in for tract-cuda
# (INFOUTIL_TRACT_CUDA_STANDIN=cpu): the same engine, plans and comparisons, no GPU.
#
# Report: $OUT/gpu-run.md (else out/gpu-run.md), its logs packed beside it in gpu-run-logs.tar.gz.
# Settings (environment):
#   GPU_RUN_DEVICE        cuda (default) or cpu
#   GPU_RUN_BUDGET_S      wall-clock budget, seconds (default 300, so that a 15-minute lease
#                         holds two runs and their machine starts): each step's timeout is cut to
#                         what is left, and steps past it are recorded as FAIL (not run)
#   GPU_RUN_PACK          the package folder (default gpu-pack)
#   GPU_RUN_TEACHERS      teachers to compare (default: every float32 models/*.onnx, models/zoo/*.onnx)
#   GPU_RUN_EXACT         image indices of the exact-Shapley comparison (default 0-3; cpu: 0)
#   GPU_RUN_FWD_N, GPU_RUN_GRAD_N, GPU_RUN_STAGE1_N   images in the throughput runs (defaults
#                         2048, 256, 16 on cuda; 32, 4, 1 on cpu)
#   GPU_RUN_BATCH, GPU_RUN_GRAD_BATCH                 batch sizes (default 256 and 64; cpu 16, 4)
#   GPU_RUN_TIMEOUT_SCALE each step's timeout times this (default 1; cpu 6: the stand-in runs a
#                         batch on one core, and the dry run's CPU is a shared 2-core one)
set -uo pipefail
export LC_ALL=C
[ -n "${EPOCHREALTIME:-}" ] || { echo "benches/gpu/run.sh needs bash >= 5" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
ROOT=$PWD

DEVICE=${GPU_RUN_DEVICE:-cuda}
case "$DEVICE" in cuda | cpu) ;; *) echo "GPU_RUN_DEVICE must be cuda or cpu" >&2; exit 2 ;; esac
BUDGET_S=${GPU_RUN_BUDGET_S:-300}
PACK=${GPU_RUN_PACK:-gpu-pack}
if [ "$DEVICE" = cuda ]; then
  EXACT=${GPU_RUN_EXACT:-0-3} FWD_N=${GPU_RUN_FWD_N:-2048} GRAD_N=${GPU_RUN_GRAD_N:-256}
  STAGE1_N=${GPU_RUN_STAGE1_N:-16} BATCH=${GPU_RUN_BATCH:-256} GRAD_BATCH=${GPU_RUN_GRAD_BATCH:-64}
  SCALE=${GPU_RUN_TIMEOUT_SCALE:-1}
else
  SCALE=${GPU_RUN_TIMEOUT_SCALE:-6}
  EXACT=${GPU_RUN_EXACT:-0} FWD_N=${GPU_RUN_FWD_N:-32} GRAD_N=${GPU_RUN_GRAD_N:-4}
  STAGE1_N=${GPU_RUN_STAGE1_N:-1} BATCH=${GPU_RUN_BATCH:-16} GRAD_BATCH=${GPU_RUN_GRAD_BATCH:-4}
  # tract's CPU runtime plans for the device engine (src/teacher/tract_device.rs).
  export INFOUTIL_TRACT_CUDA_STANDIN=cpu
fi
REPORT_DIR=${OUT:-out}
mkdir -p "$REPORT_DIR" && REPORT_DIR=$(cd "$REPORT_DIR" && pwd)
REPORT=$REPORT_DIR/gpu-run.md
WORK=${TMPDIR:-/tmp}/infoutil-gpu-run
LOGDIR=$WORK/logs
ST=$WORK/status
rm -rf "$WORK" && mkdir -p "$LOGDIR" "$ST" || exit 2
BODY=$WORK/body.md
CHECKS=$WORK/checks.tsv
: >"$BODY"
: >"$CHECKS"
BIN=$WORK/bin/infoutil
CMP=(python3 "$ROOT/benches/gpu/compare.py")
DEV=(--backend tract --device cuda)
REF=(--backend tract --device cpu)
START=${EPOCHREALTIME%.*}
DEADLINE=$((START + BUDGET_S))
SMI_PID=""
EXPORT_PID=""
BUDGET_VAR=GPU_RUN_BUDGET_S MARGIN_S=15 LOGREF=logs SAY_TAG=gpu-run
source "$ROOT/benches/gpu/lib.sh"
placement() { grep -m1 '^note: tract on' "$LOGDIR/$1.log" | cut -c1-400; }
report_head() {
  echo "# infoutil GPU check from the carried package"
  echo
  echo "\`${DEV[*]}\` against \`${REF[*]}\`, mode \`$DEVICE\`, $(date -u '+%Y-%m-%d %H:%M UTC'); $(($(now) - START)) s of a ${BUDGET_S} s budget."
  echo "Produced by \`bash benches/gpu/run.sh\`$([ "$DEVICE" = cpu ] && echo " with GPU_RUN_DEVICE=cpu: a dry run, tract's CPU runtime standing in for CUDA; nothing here ran on a GPU")."
}

finish() {
  [ -z "$SMI_PID" ] || kill "$SMI_PID" 2>/dev/null
  [ -z "$EXPORT_PID" ] || kill "$EXPORT_PID" 2>/dev/null
  tar -C "$WORK" -czf "$REPORT_DIR/gpu-run-logs.tar.gz" logs 2>/dev/null
}
trap finish EXIT

# 0. Preflight: everything the run needs, checked in seconds; exit 2 naming what is missing. ----
MISSING=()
need() { MISSING+=("$1"); }
[ -f "$PACK/infoutil.xz" ] && [ -f "$PACK/MANIFEST" ] ||
  need "the package $PACK/ (infoutil.xz, MANIFEST): build it with benches/gpu/pack.sh and name it in the run's carry"
command -v xz >/dev/null || need "xz (to unpack the binary)"
command -v sha256sum >/dev/null || need "sha256sum"
command -v python3 >/dev/null || need "python3"
if ! pyerr=$(python3 -c 'import h5py, numpy, torch, torchvision, onnx' 2>&1); then
  need "python3 modules h5py, numpy, torch, torchvision, onnx: ${pyerr##*$'\n'}"
fi
for f in models/fmnist-convnet3.onnx models/fmnist-convnet3.grad.onnx data/fashion-mnist-mini export/export_module.py; do
  [ -e "$f" ] || need "$f (the tracked tree)"
done
if [ "$DEVICE" = cuda ]; then
  if ! nvidia-smi -L >"$LOGDIR/nvidia-smi.log" 2>&1; then need "a GPU: nvidia-smi -L failed ($(head -1 "$LOGDIR/nvidia-smi.log"))"; fi
  drv=$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | awk '{ print $3 }')
  awk -v v="${drv:-0}" 'BEGIN { exit !(v + 0 >= 13.0) }' ||
    need "a driver for CUDA >= 13 (tract-cuda is built for CUDA 13.0); nvidia-smi says ${drv:-nothing}"
  # The toolkit's headers, for NVRTC (tract-cuda compiles its kernels on first use).
  nvcc_root=$(command -v nvcc >/dev/null && dirname "$(dirname "$(command -v nvcc)")")
  for c in "${CUDA_HOME:-}" /usr/local/cuda "$nvcc_root"; do
    [ -n "$c" ] || continue
    if compgen -G "$c/include/cuda_fp16.h" >/dev/null || compgen -G "$c/targets/*/include/cuda_fp16.h" >/dev/null; then
      export CUDA_HOME=$c
      break
    fi
  done
  [ -n "${CUDA_HOME:-}" ] || need "the CUDA toolkit's headers (cuda_fp16.h under \$CUDA_HOME, /usr/local/cuda or nvcc's root)"
  # Libraries tract-cuda loads at run time: from the system, else from the Python nvidia-* wheels.
  site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
  for lib in libcudart.so.13 libnvrtc.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
    ldconfig -p 2>/dev/null | grep -q "$lib " && continue
    hit=$(find "${CUDA_HOME:-/usr/local/cuda}/lib64" "${CUDA_HOME:-/usr/local/cuda}"/targets/*/lib "$site/nvidia" \
      -maxdepth 3 -name "$lib" 2>/dev/null | head -1)
    if [ -n "$hit" ]; then
      case ":${LD_LIBRARY_PATH:-}:" in *":$(dirname "$hit"):"*) ;; *) export LD_LIBRARY_PATH="$(dirname "$hit")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
    else
      need "$lib (not in ldconfig, ${CUDA_HOME:-/usr/local/cuda}/lib64 or $site/nvidia)"
    fi
  done
fi
if [ "${#MISSING[@]}" -gt 0 ]; then
  printf 'benches/gpu/run.sh cannot run here; missing:\n' >&2
  printf '  - %s\n' "${MISSING[@]}" >&2
  printf '%s\n' "# infoutil GPU check: not run" "" "Missing:" "${MISSING[@]/#/- }" >"$REPORT"
  exit 2
fi
say "preflight passed in $(($(now) - START)) s; mode $DEVICE, budget ${BUDGET_S} s, report $REPORT"

# 1. Unpack -----------------------------------------------------------------------------------
md "## 0. Machine and package" "" '```'
{
  echo "host: $(uname -srm); $(nproc) cores; $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  grep -m1 PRETTY_NAME /etc/os-release 2>/dev/null
  echo "python3: $(python3 -c 'import sys, torch, h5py; print(sys.version.split()[0], "torch", torch.__version__, "h5py", h5py.__version__)' 2>&1)"
  echo "cargo: $(command -v cargo || echo 'not on PATH (not needed)')"
  [ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  [ "$DEVICE" = cpu ] || echo "CUDA_HOME=$CUDA_HOME LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  cat "$PACK/MANIFEST"
} >>"$BODY"
md '```'
mkdir -p "$WORK/bin"
if xz -dc "$PACK/infoutil.xz" >"$BIN" && chmod +x "$BIN" &&
  [ "$(sha256sum "$BIN" | cut -d' ' -f1)" = "$(sed -n 's/^sha256 //p' "$PACK/MANIFEST")" ] &&
  "$BIN" --version >"$LOGDIR/version.log" 2>&1; then
  missing_libs=$(ldd "$BIN" 2>&1 | grep -E 'not found|libhdf5' | tr -s ' \t' ' ')
  if [ -z "$missing_libs" ]; then
    check "1 package" "unpack, sha256 as packed, runs, every library found, no libhdf5" PASS "$(head -1 "$LOGDIR/version.log")"
  else
    check "1 package" "unpack, sha256 as packed, runs, every library found, no libhdf5" FAIL "ldd: $missing_libs"
  fi
else
  check "1 package" "unpack, sha256 as packed, runs, every library found, no libhdf5" FAIL "$(cat "$LOGDIR/version.log" 2>/dev/null | head -2)"
  exit 1
fi

# ResNet-18 for the throughput table, exported in the background with the image's PyTorch.
R18=$WORK/r18/resnet18-224.onnx
mkdir -p "$WORK/r18"
"${CMP[@]}" classes 1000 "$WORK/r18/classes.txt"
run export-r18 240 python3 export/export_module.py --module torchvision.models:resnet18 \
  --kwargs '{"num_classes": 1000}' --constructor-weights --input-shape 3,224,224 \
  --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --class-names "$WORK/r18/classes.txt" \
  --n 4 --threads "$(nproc)" --out "$R18" &
EXPORT_PID=$!

# 2. The device, once: it fails here first if CUDA cannot run (NVRTC compiles the kernels now).
if run smoke 240 "$BIN" teacher eval "${DEV[@]}" --no-grad-norms; then
  check "2 device" "teacher eval ${DEV[*]} runs (kernels compiled, cached)" PASS "$(secs_of smoke) s; $(placement smoke)"
else
  check "2 device" "teacher eval ${DEV[*]} runs (kernels compiled, cached)" FAIL "$(why smoke)"
fi
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 >"$WORK/gpu-util.csv" 2>/dev/null &
  SMI_PID=$!
fi

# 3. Agreement: CPU references in the background while the device runs. -----------------------
if [ -n "${GPU_RUN_TEACHERS:-}" ]; then
  read -ra TEACHERS <<<"$GPU_RUN_TEACHERS"
else
  TEACHERS=()
  for t in models/*.onnx models/zoo/*.onnx; do
    case "$t" in *.grad.onnx | *.cam.onnx | *fp16*) ;; *) TEACHERS+=("$t") ;; esac
  done
fi
tname() { basename "$1" .onnx; }
cpu_refs() {
  local t
  for t in "${TEACHERS[@]}"; do
    run "eval-ref-$(tname "$t")" 180 "$BIN" teacher eval --teacher "$t" "${REF[@]}" --out "$WORK/eval-ref-$(tname "$t").h5"
  done
  run attr-ref 300 "$BIN" attribute --estimator exact --indices "$EXACT" "${REF[@]}" --out "$WORK/attr-ref.h5"
  run distill-ref 240 "$BIN" distill "${REF[@]}" --out "$WORK/distill-ref.h5"
}
cpu_refs &
REFS_PID=$!
for t in "${TEACHERS[@]}"; do
  run "eval-dev-$(tname "$t")" 180 "$BIN" teacher eval --teacher "$t" "${DEV[@]}" --out "$WORK/eval-dev-$(tname "$t").h5"
done
run attr-dev 300 "$BIN" attribute --estimator exact --indices "$EXACT" "${DEV[@]}" --out "$WORK/attr-dev.h5"
run distill-dev 240 "$BIN" distill "${DEV[@]}" --out "$WORK/distill-dev.h5" --png "$WORK/distill-dev.png"
run inspect-dev 60 "$BIN" inspect "$WORK/distill-dev.h5"
say "device runs done; waiting for the CPU references"
wait "$REFS_PID"

md "" "## 1. Teachers: \`teacher eval\` on the embedded test set (1 000 real Fashion-MNIST images)" ""
md "Pass: the same arg-max on every image, max |Δlogit| ≤ 1e-4, gradient norms within 1e-4 relative on ≥ 99 %" \
  "of the images and within 1e-2 on all (docs/backends.md: ReLU kinks within float32 noise)." ""
md "| teacher | top-1 device / CPU | arg-max agree | max \\|Δlogit\\| | grad norms max rel. diff | result |" "|---|---|---|---|---|---|"
for t in "${TEACHERS[@]}"; do
  n=$(tname "$t")
  if [ "$(rc_of "eval-dev-$n")" != 0 ] || [ "$(rc_of "eval-ref-$n")" != 0 ]; then
    md "| $n | device: $(why "eval-dev-$n"); CPU: $(why "eval-ref-$n") |||||"
    check "3 teachers" "$n" FAIL "device: $(why "eval-dev-$n"); CPU: $(why "eval-ref-$n")"
    continue
  fi
  row=$("${CMP[@]}" eval "$n" "$WORK/eval-dev-$n.h5" "$WORK/eval-ref-$n.h5" 2>"$LOGDIR/cmp-eval-$n.log")
  rc=$?
  md "${row:-| $n | comparison failed (logs/cmp-eval-$n.log) |||||}"
  detail="device $(secs_in "eval-dev-$n") s, CPU $(secs_in "eval-ref-$n") s (with gradient norms); $(placement "eval-dev-$n")"
  if [ "$rc" = 0 ]; then check "3 teachers" "$n" PASS "$detail"; else check "3 teachers" "$n" FAIL "$row $(tail -n 1 "$LOGDIR/cmp-eval-$n.log")"; fi
done

md "" "## 2. Exact Shapley maps: \`attribute --estimator exact --indices $EXACT\`" ""
if [ "$(rc_of attr-dev)" != 0 ] || [ "$(rc_of attr-ref)" != 0 ]; then
  check "4 exact maps" "within 1e-4 × max |φ| of tract on the CPU" FAIL "device: $(why attr-dev); CPU: $(why attr-ref)"
else
  out=$("${CMP[@]}" attr "$WORK/attr-dev.h5" "$WORK/attr-ref.h5" 2>"$LOGDIR/cmp-attr.log")
  rc=$?
  md "$(echo "$out" | grep -v '^MAX_ABS')" "" "Wall: device $(secs_of attr-dev) s, CPU $(secs_of attr-ref) s. $(placement attr-dev)"
  st=FAIL && [ "$rc" = 0 ] && st=PASS
  check "4 exact maps" "within 1e-4 × max |φ| of tract on the CPU" "$st" "max |Δφ| $(echo "$out" | awk '/^MAX_ABS/ { print $2 }') $(tail -n 1 "$LOGDIR/cmp-attr.log")"
fi

md "" "## 3. The README's main command: \`infoutil distill ${DEV[*]}\` (defaults, seed 0), then \`inspect\`" ""
if [ "$(rc_of distill-dev)" = 0 ] && [ "$(rc_of inspect-dev)" = 0 ]; then
  check "5 distill" "distill ${DEV[*]}, then inspect" PASS "$(secs_of distill-dev) s: $(grep -m1 'candidate images' "$LOGDIR/distill-dev.log")"
else
  check "5 distill" "distill ${DEV[*]}, then inspect" FAIL "distill: $(why distill-dev); inspect: $(why inspect-dev)"
fi
if [ "$(rc_of distill-dev)" = 0 ] && [ "$(rc_of distill-ref)" = 0 ]; then
  md "| pair | same tile sources | same crop boxes | same labels | same candidate crops | same uint8 images | max \\|Δ soft label\\| | max \\|Δφ\\| / max \\|φ\\| | max rel. Δ score |" \
    "|---|---|---|---|---|---|---|---|---|"
  row=$("${CMP[@]}" distill "$WORK/distill-dev.h5" "$WORK/distill-ref.h5" "device vs CPU" 2>"$LOGDIR/cmp-distill.log")
  rc=$?
  md "${row:-| comparison failed (logs/cmp-distill.log) ||||||||}" "" "Wall: device $(secs_of distill-dev) s, CPU $(secs_of distill-ref) s (the CPU run shared the cores)."
  st=FAIL && [ "$rc" = 0 ] && st=PASS
  check "5 distill" "same crops (provenance) as tract on the CPU, same seed" "$st" "$(tail -n 1 "$LOGDIR/cmp-distill.log")"
else
  check "5 distill" "same crops (provenance) as tract on the CPU, same seed" FAIL "device: $(why distill-dev); CPU: $(why distill-ref)"
fi

# 4. Throughput: ResNet-18 at 224 px. -----------------------------------------------------------
md "" "## 4. Throughput: ResNet-18 (torchvision, 1 000 classes, constructor's weights), 224 px" ""
wait "$EXPORT_PID"
EXPORT_PID=""
if [ "$(rc_of export-r18)" = 0 ] && [ -f "${R18%.onnx}.grad.onnx" ]; then
  check "6 throughput" "ResNet-18 exported here (forward + gradient graph, verified by the exporter)" PASS "$(secs_of export-r18) s"
else
  check "6 throughput" "ResNet-18 exported here (forward + gradient graph, verified by the exporter)" FAIL "$(why export-r18)"
fi
util_of() { "${CMP[@]}" util "$WORK/gpu-util.csv" "$1" "$2" 2>/dev/null || echo "n/a | n/a | n/a"; }
THR_FAIL=""
row() { # NAME LABEL BATCH WORK SECONDS RATE T0 T1
  local ok=PASS
  [ "$(rc_of "$1")" = 0 ] && [ -n "$6" ] || ok=FAIL
  [ "$ok" = PASS ] || THR_FAIL="$THR_FAIL $1"
  md "| $2 | $3 | $4 | ${5:-–} | ${6:-$(why "$1")} | $(util_of "$7" "$8") | $ok |"
}
run data-fwd 60 "${CMP[@]}" images "$FWD_N" 224 1000 "$WORK/r18/fwd.h5"
run data-grad 60 "${CMP[@]}" images "$GRAD_N" 224 1000 "$WORK/r18/grad.h5"
md "infoutil \`${DEV[*]}\`: raw inference is \`teacher eval --no-grad-norms\` (images/s as it reports them: HDF5" \
  "reading and preprocessing included, loading not); gradient norms are \`teacher eval\` with norms, less" \
  "the forward pass at the raw rate; Stage 1 is \`attribute --budget 128\` (Leverage SHAP, 128 masked images" \
  "an image), n × 128 / (wall − the wall of a 1-image budget-48 run: loading, planning, kernel set-up)." \
  "Images: a fixed pseudo-random 224 × 224 pattern (HDF5). PyTorch: benches/gpu/torch_ref.py, same network." ""
md "| measurement | batch | work | seconds | rate | GPU util. mean % | max % | GPU mem. max MiB | result |" "|---|---:|---|---:|---:|---:|---:|---:|---|"
t0=$EPOCHREALTIME
run r18-fwd 120 "$BIN" teacher eval --teacher "$R18" --data "$WORK/r18/fwd.h5" --no-grad-norms --batch-size "$BATCH" "${DEV[@]}"
r_fwd=$(rate_of r18-fwd)
row r18-fwd "infoutil raw inference" "$BATCH" "$FWD_N images" "$(secs_in r18-fwd)" "${r_fwd:+$r_fwd images/s}" "$t0" "$EPOCHREALTIME"
t0=$EPOCHREALTIME
run r18-grad 150 "$BIN" teacher eval --teacher "$R18" --data "$WORK/r18/grad.h5" --batch-size "$GRAD_BATCH" "${DEV[@]}"
sg=$(secs_in r18-grad)
r_grad=""
[ -n "$sg" ] && [ -n "$r_fwd" ] && r_grad=$(awk -v n="$GRAD_N" -v s="$sg" -v r="$r_fwd" 'BEGIN { d = s - n / r; if (d > 0) printf "%.1f", n / d }')
row r18-grad "infoutil gradient norms" "$GRAD_BATCH" "$GRAD_N images" "$sg" "${r_grad:+$r_grad norms/s}" "$t0" "$EPOCHREALTIME"
run r18-startup 90 "$BIN" attribute --teacher "$R18" --data "$WORK/r18/fwd.h5" --indices 0 --budget 48 --batch-size "$BATCH" "${DEV[@]}" --out "$WORK/r18/startup.h5"
t0=$EPOCHREALTIME
run r18-stage1 150 "$BIN" attribute --teacher "$R18" --data "$WORK/r18/fwd.h5" --indices "0-$((STAGE1_N - 1))" --budget 128 --batch-size "$BATCH" "${DEV[@]}" --out "$WORK/r18/stage1.h5"
r_s1=""
[ "$(rc_of r18-startup)" = 0 ] && r_s1=$(awk -v n="$STAGE1_N" -v w="$(secs_of r18-stage1)" -v s="$(secs_of r18-startup)" 'BEGIN { d = w - s; if (d > 0) printf "%.1f", n * 128 / d }')
row r18-stage1 "infoutil Stage 1 (attribute)" "$BATCH" "$STAGE1_N × 128 masked" \
  "$(awk -v w="$(secs_of r18-stage1)" -v s="$(secs_of r18-startup)" 'BEGIN { printf "%.1f", w - s }')" "${r_s1:+$r_s1 masked images/s}" "$t0" "$EPOCHREALTIME"
t0=$EPOCHREALTIME
torch_dev=cuda && [ "$DEVICE" = cpu ] && torch_dev=cpu
run torch-ref 120 python3 benches/gpu/torch_ref.py --device "$torch_dev" --batch "$BATCH" --grad-batch "$GRAD_BATCH" --seconds 3
if [ "$(rc_of torch-ref)" = 0 ] && [ "$(grep -c '^| PyTorch' "$LOGDIR/torch-ref.log")" = 2 ]; then
  u=$(util_of "$t0" "$EPOCHREALTIME")
  while IFS= read -r line; do md "$line $u | PASS |"; done < <(grep '^| PyTorch' "$LOGDIR/torch-ref.log")
else
  md "| PyTorch reference | | | | $(why torch-ref) | | | FAIL |"
  THR_FAIL="$THR_FAIL torch-ref"
fi
md "" "Placement of the ResNet-18 graphs:" ""
while IFS= read -r line; do md "- \`${line#note: }\`"; done < <(cat "$LOGDIR"/r18-*.log | grep '^note: tract on' | sort -u)
if [ -z "$THR_FAIL" ]; then
  check "6 throughput" "raw inference, gradient norms, Stage 1, PyTorch reference" PASS "table in section 4"
else
  check "6 throughput" "raw inference, gradient norms, Stage 1, PyTorch reference" FAIL "failed:$THR_FAIL"
fi
# The projection of docs/benchmarks.md ("Projected: full ImageNet-1K"): 1 000 classes × 300
# candidates, 128 teacher forwards (Stage 1) and 5 gradient norms (Stage 2) a candidate.
if [ -n "$r_s1" ] && [ -n "$r_grad" ]; then
  md "" "**Projected ImageNet-1K** (docs/benchmarks.md's formula, T = 300 000 × (128 / r_stage1 + 5 / r_gradnorm)," \
    "from the rates above, one device, one process): $(awk -v a="$r_s1" -v g="$r_grad" 'BEGIN {
      s1 = 300000 * 128 / a / 3600; s2 = 300000 * 5 / g / 3600;
      printf "Stage 1 %.1f h + Stage 2 %.1f h = **%.1f h**", s1, s2, s1 + s2 }')."
fi

time_section
render
say "done: $FAILS check(s) failed; report $REPORT"
[ "$FAILS" = 0 ]
