#!/usr/bin/env bash
# Fuzz every target for SECONDS of wall time each, JOBS at a time (default 2), at low priority;
# prints each target's CPU seconds (user+sys), executions and findings. NICE (default 10) is the
# fuzzers' niceness; TARGETS picks targets (default: all six). On a machine others load, more
# fuzzers at once at a high niceness take more of the idle time without slowing the others. New corpus entries go to
# fuzz/corpus-work/ (not committed), crashes to fuzz/artifacts/TARGET/.
# Build first: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build -O --sanitizer none
# (RUSTC_BOOTSTRAP lets the stable toolchain take cargo-fuzz's nightly flags.)
set -u
cd "$(dirname "$0")/.."
seconds=${1:-300}
niceness=${NICE:-10}
jobs=${JOBS:-2}
bin=fuzz/target/x86_64-unknown-linux-gnu/release
run() {
  local t=$1 max_len=4096
  case $t in cifar) max_len=8192 ;; onnx) max_len=131072 ;; esac
  mkdir -p fuzz/corpus-work/$t fuzz/artifacts/$t
  local start_cpu end
  /usr/bin/time -f "%U %S" -o fuzz/artifacts/$t.time nice -n "$niceness" "$bin/$t" \
    fuzz/corpus-work/$t fuzz/corpus/$t -max_total_time="$seconds" -max_len=$max_len \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=fuzz/artifacts/$t/ > fuzz/artifacts/$t.log 2>&1
  local cpu execs
  cpu=$(awk '{print $1 + $2}' fuzz/artifacts/$t.time)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' fuzz/artifacts/$t.log | grep -o '[0-9]*$')
  echo "$t: cpu ${cpu}s, execs ${execs:-?}, findings $(ls fuzz/artifacts/$t | wc -l)"
}
targets=(${TARGETS:-idx cifar image h5_layout teacher_meta onnx})
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  for t in "${targets[@]:i:jobs}"; do run "$t" & done
  wait
done
