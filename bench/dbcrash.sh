#!/usr/bin/env bash
# The database crash tests at full size: a whole billing cycle of SUBSCRIBERS
# (control, two settle, notify with four dispatchers, the mock provider)
# while PostgreSQL crashes three times, once per run:
#   - SIGKILL of the settle worker's backend during its COPY,
#   - SIGKILL of a notify dispatcher's backend during dispatch,
#   - SIGKILL of the postmaster and every backend, then a start;
# each run must end with the bills of a clean run, one message per delivered
# notice at the mock provider, at most 40 failed connection attempts per
# process in the outage, and no database failure logged as permanent
# (tests/integration/itest_dbcrash.c; CI runs it at 2,000 subscribers).
#
#   bash bench/dbcrash.sh [SUBSCRIBERS]     (default 100000)
#
# Prints, per fault, how long the database took to answer again, how long
# each service took to get its connection back ("database back after N s,
# M attempts"), its failed connection attempts, and when the cycle was done.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}

bash scripts/bootstrap >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "dbcrash: $n subscribers"
start=$(date +%s)
status=0
BF_DBCRASH_SUBSCRIBERS=$n \
  scripts/pgtmp run --fast -- \
  meson test -C build --suite integration dbcrash --timeout-multiplier 0 --print-errorlogs \
  >/dev/null || status=$?
grep -E '^# dbcrash|^(ok|not ok)' build/meson-logs/testlog.txt | grep -v 'email deliveries by' || true
echo "dbcrash: $( [ $status -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s"
exit $status
