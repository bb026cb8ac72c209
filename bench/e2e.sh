#!/usr/bin/env bash
# End to end: SUBSCRIBERS subscribers from `billctl run start` to every
# notice final, through the real control, settle and notify and the mock
# provider with its default conditions (email replies after 1 s, 1 %
# failures per channel), on a durable throwaway PostgreSQL (scripts/stack).
#
#   bash bench/e2e.sh [SUBSCRIBERS]        (default 1000000)
#
# Prints the machine, the time to generate the data (not counted), the
# time from `run start` to the run COMPLETED and to every notice final,
# the notices and their rate, and ends with `billctl run report`.
# Target (issue 6): 1,000,000 subscribers in under 5 minutes on 2 cores.
# EMAIL_CONCURRENCY sets notify.email_concurrency (default 6000, as in
# bench/notify.sh: with 1 s replies, in-flight emails bound the rate).
# SCRAPE=1 scrapes /metrics of settle, notify and control once a second
# from run start to the end (as a Prometheus would) and prints the count;
# bench/scrape.sh pairs runs with and without it.
# E2E_PROBE=CMD runs `CMD begin DIR` just before `run start` and `CMD end DIR`
# as soon as every notice is final (DIR: the stack's state directory);
# bench/capacity.sh measures the cycle's resources that way.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
period=2026-10

bash scripts/bootstrap >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
export BILLFLOW_NOTIFY_EMAIL_CONCURRENCY=${EMAIL_CONCURRENCY:-6000}
export BILLFLOW_NOTIFY_BACKOFF_BASE_MS=1000 BILLFLOW_NOTIFY_BACKOFF_MAX_MS=5000

dir=$(mktemp -u /tmp/billflow-e2e.XXXXXX)
stack() { bash scripts/stack --dir "$dir" "$@"; }
trap 'stack down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
probe() {   # begin|end: the optional measuring hook (E2E_PROBE: a command and its words)
  # shellcheck disable=SC2086
  [ -z "${E2E_PROBE:-}" ] || $E2E_PROBE "$1" "$dir" || { echo "E2E_PROBE $1 failed"; exit 1; }
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

stack up >/dev/null
t0=$(now)
stack generate "$n" "$period" 41 >/dev/null
t1=$(now)
echo "data: $n subscribers generated into the database in $(secs "$t0" "$t1") s (not counted)"

scraper=""
if [ "${SCRAPE:-0}" = 1 ]; then
  # shellcheck disable=SC1091
  urls=$(. "$dir/env"; for a in "$BILLFLOW_SETTLE_HTTP" "$BILLFLOW_NOTIFY_HTTP" "$BILLFLOW_CONTROL_HTTP"; do
           echo "http://$a/metrics"; done)
  ( n_ok=0; n_bytes=0
    trap 'echo "$n_ok $n_bytes" >"$dir/scrapes"; exit 0' TERM
    while :; do
      for u in $urls; do
        b=$(curl -sf --max-time 5 "$u" | wc -c) && n_ok=$((n_ok + 1)) && n_bytes=$((n_bytes + b))
      done
      sleep 1
    done ) &
  scraper=$!
fi

probe begin
start=$(now)
# --timeout: on a loaded machine, starting a run of a million can take longer than the default 3 s
"$dir/billctl" --timeout 60000 run start "$period" --command-id "bench-e2e-$period" >/dev/null
completed=""
while :; do
  json=$("$dir/billctl" --json run status "$period" 2>/dev/null || true)
  if [ -z "$completed" ] && grep -q '"state": *"COMPLETED"' <<<"$json"; then
    completed=$(now)
    echo "settled: run COMPLETED $(secs "$start" "$completed") s after run start"
  fi
  if grep -q '"final": *true' <<<"$json"; then break; fi
  if grep -q '"state": *"FAILED"' <<<"$json"; then echo "run FAILED"; exit 1; fi
  sleep 1
done
end=$(now)
probe end
if [ -n "$scraper" ]; then
  kill "$scraper"; wait "$scraper" 2>/dev/null || true
  read -r n_ok n_bytes <"$dir/scrapes"
  echo "scraping: $n_ok scrapes of settle, notify and control answered ($((n_bytes / 1024)) KiB in all)"
fi
notices=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["notices"]["total"])' "$json")
elapsed=$(secs "$start" "$end")
echo "final: every notice final $elapsed s after run start;" \
     "$notices notices, $(awk -v n="$notices" -v s="$elapsed" 'BEGIN { printf "%.0f", n / s }') notices/s overall"
echo
r0=$(now)
"$dir/billctl" run report "$period" > "$dir/report.txt" || true
r1=$(now)
cat "$dir/report.txt"
echo "report: billctl run report took $(secs "$r0" "$r1") s"
echo
echo "mock provider: $(stack report-mock | tr -d '\n' | head -c 600)"
