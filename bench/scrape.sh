#!/usr/bin/env bash
# Benchmark: does scraping every second slow a whole cycle? (issue 13)
#
#   bash bench/scrape.sh [SUBSCRIBERS] [ROUNDS]     (default 1000000, 1)
#
# Runs bench/e2e.sh SUBSCRIBERS ROUNDS times without scraping and ROUNDS
# times with SCRAPE=1 (settle's, notify's and control's /metrics each
# scraped once a second from run start to every notice final), alternating
# plain and scraped, each on its own throwaway stack. Prints each run's
# time from `run start` to every notice final, the mean of each kind, and
# scraped / plain. The target is a ratio within 1.02.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
rounds=${2:-1}
out=$(mktemp -d /tmp/billflow-scrape.XXXXXX)
trap 'rm -rf "$out"' EXIT

final_secs() { sed -n 's/^final: every notice final \([0-9.]*\) s after run start.*/\1/p' "$1"; }
plain=() scraped=()
for r in $(seq 1 "$rounds"); do
  for kind in plain scraped; do
    log="$out/$kind.$r.log"
    if [ "$kind" = scraped ]; then SCRAPE=1 bash bench/e2e.sh "$n" >"$log" 2>&1
    else SCRAPE=0 bash bench/e2e.sh "$n" >"$log" 2>&1; fi
    t=$(final_secs "$log")
    [ -n "$t" ] || { echo "bench/e2e.sh ($kind, round $r) did not finish:"; tail -20 "$log"; exit 1; }
    extra=$(grep '^scraping:' "$log" || true)
    echo "round $r $kind: $t s${extra:+ ($extra)}"
    if [ "$kind" = scraped ]; then scraped+=("$t"); else plain+=("$t"); fi
  done
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.1f", s / NR }'; }
mp=$(mean "${plain[@]}") ms=$(mean "${scraped[@]}")
echo "subscribers: $n; plain mean $mp s; scraped mean $ms s;" \
     "scraped / plain = $(awk -v a="$ms" -v b="$mp" 'BEGIN { printf "%.3f", a / b }') (target <= 1.02)"
