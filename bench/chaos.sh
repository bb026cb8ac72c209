#!/usr/bin/env bash
# The chaos test at full size: a whole billing cycle of SUBSCRIBERS while a
# seeded driver kills -9 settle, notify, control and the active relay at
# random moments and restarts them, and restarts PostgreSQL once; then the
# bills must equal a clean run's, every bill's event must have reached
# notify, the mock provider must have accepted exactly one SMS/LMS/push per
# (bill, channel) and no more second emails than sends in the possibly
# delivered window (docs/guarantees.md), and no delivery may be left unfinished
# (tests/integration/itest_chaos.c; CI runs it at 3,000 subscribers).
#
#   bash bench/chaos.sh [SUBSCRIBERS] [SEED]     (default 100000, seed from the clock)
#
# The seed and every fault are printed ("# chaos ..."): run again with the
# same SEED to replay a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
seed=${2:-$(date +%s)}

. bench/fullsize.sh
export BF_CHAOS_SUBSCRIBERS=$n BF_CHAOS_SEED=$seed
fullsize_run chaos "$n subscribers, seed $seed"
exit $status
