# bench/fullsize.sh — sourced by the scripts that run an integration test at
# full size (chaos.sh, dbcrash.sh): builds, prints the machine and its load,
# runs the test NAME against a throwaway PostgreSQL with no meson timeout
# (the caller exports the test's size variables first), prints its "# NAME"
# lines and "NAME: passed|FAILED in N s", and sets $status. partition.sh,
# whose test starts its own PostgreSQL, uses fullsize_build alone.
#
#   . bench/fullsize.sh; fullsize_run NAME "WHAT IT RUNS" [LINES TO LEAVE OUT (grep -E)]
#
# fullsize_build: the build and the machine line alone (bench/partition.sh,
# whose test starts its own PostgreSQL).
fullsize_build() {
  bash scripts/bootstrap >/dev/null
  [ -f build/build.ninja ] || meson setup build >/dev/null
  meson compile -C build >/dev/null
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

fullsize_run() {
  local name=$1 what=$2 exclude=${3:-'^$'} start
  fullsize_build
  echo "$name: $what"
  start=$(date +%s)
  status=0
  scripts/pgtmp run --fast -- \
    meson test -C build --suite integration "$name" --timeout-multiplier 0 --print-errorlogs \
    >/dev/null || status=$?
  grep -E "^# $name|^(ok|not ok)" build/meson-logs/testlog.txt | grep -Ev "$exclude" || true
  echo "$name: $( [ $status -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}
