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
. bench/fullsize.sh
export BF_DBCRASH_SUBSCRIBERS=$n
fullsize_run dbcrash "$n subscribers" 'email deliveries by'
exit $status
