# Helpers shared by the two GPU checks, benches/gpu/run.sh (tract's CUDA runtime, from a carried
# package) and benches/gpu/check.sh (ONNX Runtime's CUDA provider, built on the machine): steps
# run under `timeout` within one wall-clock budget, their exit status and seconds kept in files,
# a one-line reason for a failed step, and the markdown report of PASS/FAIL checks. The Python
# side of both is benches/gpu/compare.py.
#
# Sourced by the script after it has set: START and DEADLINE (epoch seconds), BUDGET_S and
# BUDGET_VAR (the setting's name, for messages), SCALE (factor on each step's timeout) and
# MARGIN_S (seconds kept back for the report), LOGDIR, ST, BODY, CHECKS, REPORT, LOGREF (how
# the report names the log folder), SAY_TAG; and, before the first check, a function
# report_head that prints the report's title and introduction.
FAILS=0

now() { echo "${EPOCHREALTIME%.*}"; }
say() { echo "[$SAY_TAG $(($(now) - START))s] $*" >&2; }
md() { printf '%s\n' "$@" >>"$BODY"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# Seconds a step may take: what it asks for times SCALE, cut to the budget left less MARGIN_S.
tmo() {
  local left=$((DEADLINE - $(now) - MARGIN_S)) want=$(($1 * SCALE))
  if [ "$want" -lt "$left" ]; then echo "$want"; else echo "$left"; fi
}

# run NAME WANT_S CMD...: CMD under `timeout`, output in $LOGDIR/NAME.log, exit status in
# $ST/NAME.rc, wall seconds in $ST/NAME.s. 125: not started, the budget is spent.
run() {
  local name=$1 want=$2 t t0 rc
  shift 2
  t=$(tmo "$want")
  if [ "$t" -lt 5 ]; then
    echo "not run: the budget ($BUDGET_VAR=$BUDGET_S) is spent" >"$LOGDIR/$name.log"
    echo 125 >"$ST/$name.rc"
    echo 0 >"$ST/$name.s"
    return 125
  fi
  t0=$EPOCHREALTIME
  { echo "\$ $* (timeout ${t}s)"; timeout -k 5 "$t" "$@"; } >"$LOGDIR/$name.log" 2>&1
  rc=$?
  echo "$rc" >"$ST/$name.rc"
  secs "$t0" "$EPOCHREALTIME" >"$ST/$name.s"
  return "$rc"
}
rc_of() { cat "$ST/$1.rc" 2>/dev/null || echo 126; }
secs_of() { cat "$ST/$1.s" 2>/dev/null || echo 0; }
# From a `teacher eval` log's "(0.7 s, 1346 images/s, …)": the rate, the seconds, or both.
rate_of() { sed -n 's/.*(\([0-9.]*\) s, \([0-9]*\) images\/s.*/\2/p' "$LOGDIR/$1.log" | head -1; }
secs_in() { sed -n 's/.*(\([0-9.]*\) s, \([0-9]*\) images\/s.*/\1/p' "$LOGDIR/$1.log" | head -1; }
speed_of() { sed -n 's/.*(\([0-9.]* s, [0-9]* images\/s\), .*/\1/p' "$LOGDIR/$1.log" | head -1; }

# Why a step failed, in one line: timeout, budget, or its first error line (else its last line).
why() {
  local rc line
  rc=$(rc_of "$1")
  case "$rc" in
    0) echo "ok" ;;
    124 | 137) echo "timed out after $(secs_of "$1") s ($LOGREF/$1.log)" ;;
    125) echo "not run: budget spent" ;;
    126) echo "not run" ;;
    *)
      line=$(grep -m1 -E '^(error|Error|ERROR|thread .* panicked)' "$LOGDIR/$1.log" 2>/dev/null || tail -n 1 "$LOGDIR/$1.log" 2>/dev/null)
      [ "${#line}" -le 300 ] || line="${line:0:300}…"
      echo "exit $rc: $line ($LOGREF/$1.log)"
      ;;
  esac
}

# check SECTION NAME PASS|FAIL DETAIL: one row of the report's table (written again at once).
check() {
  local detail=${4//$'\t'/ }
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${detail//|/\\|}" >>"$CHECKS"
  [ "$3" = PASS ] || FAILS=$((FAILS + 1))
  say "$3 $1: $2 — $4"
  render
}

# The report: report_head's lines, the count, the table of checks, then the body so far.
render() {
  local n f
  n=$(wc -l <"$CHECKS")
  f=$(awk -F'\t' '$3 != "PASS"' "$CHECKS" | wc -l)
  {
    report_head
    echo
    echo "**$((n - f)) of $n checks passed, $f failed.**"
    echo
    echo "| # | step | check | result | detail |"
    echo "|---:|---|---|---|---|"
    awk -F'\t' '{ r = ($3 == "PASS") ? "PASS" : "**FAIL**"; printf "| %d | %s | %s | %s | %s |\n", NR, $1, $2, r, $4 }' "$CHECKS"
    echo
    cat "$BODY"
  } >"$REPORT.tmp" && mv "$REPORT.tmp" "$REPORT"
}

# The closing section: every step's seconds and exit status, then NOTE after the total.
time_section() {
  local f n
  md "" "## Time" "" "| run | seconds | exit |" "|---|---:|---:|"
  for f in "$ST"/*.s; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .s)
    md "| $n | $(cat "$f") | $(rc_of "$n") |"
  done
  md "" "Whole script: $(($(now) - START)) s (budget $BUDGET_S s).${1:+ $1}"
}
