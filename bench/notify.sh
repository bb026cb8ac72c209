#!/usr/bin/env bash
# Benchmark: notices through the mock provider under its default conditions.
#
#   bash bench/notify.sh [SUBSCRIBERS]      (default 620000: about 1,000,000
#                                            notices at ~1.6 channels each)
#
# On a throwaway PostgreSQL with durable settings: generate, settle the
# period, start the mock provider with its defaults (email 1 s latency and
# 1 % transient failures, SMS and push immediate), the settle service (for
# replay) and notify (clock set to daytime so quiet hours do not hold), and
# time from notify's start until every delivery is final. Prints the rate,
# the latency distribution of a delivery (created -> final, and of one send
# attempt), retries and fallbacks, notify's peak RSS, and the mock
# provider's report. Target (issue 4): >= 5,000 deliveries/s sustained on
# the 2-core machine, with every retry and fallback resolved.
#
# MOCK_FLAGS adds mock provider flags (for diagnosis only, e.g.
# MOCK_FLAGS="--email-latency-ms 0"); the target is for the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-620000}
period=2026-10

. bench/notify_stack.sh
export MOCK_FLAGS="${MOCK_FLAGS:-}"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo

cat >"$work/steps.sh" <<'STEPS'
set -euo pipefail
steps_begin
echo "== generate $n subscribers and settle $period"
"$billdata" generate --subscribers "$n" --period "$period" --seed 31 | tail -1
"$settle" --once --period "$period" 2>/dev/null
echo "== mock provider: defaults ${MOCK_FLAGS:+plus $MOCK_FLAGS}"
# shellcheck disable=SC2086
"$mock" --http-port 0 --smtp-port 0 $MOCK_FLAGS > "$work/mock.out" 2> "$work/mock.err" & pids+=($!)
for _ in $(seq 100); do grep -q ready "$work/mock.out" 2>/dev/null && break; sleep 0.1; done
read -r http smtp < <(sed -n '1s/http=\([0-9]*\) smtp=\([0-9]*\)/\1 \2/p' "$work/mock.out")
"$settle" 2>"$work/settle.log" & pids+=($!)
expected=$(psql -X -At -c "SELECT count(*) FROM bill b JOIN subscriber s ON s.id = b.subscriber_id, unnest (s.channels) c")
echo "== notify: $expected notices"
export BILLFLOW_NOTIFY_SETTLE_PUB_ENDPOINTS="ipc://$work/pub" BILLFLOW_NOTIFY_SETTLE_REPLAY_ENDPOINTS="ipc://$work/replay"
export BILLFLOW_NOTIFY_SMTP_URL="smtp://127.0.0.1:$smtp" BILLFLOW_NOTIFY_SMS_URL="http://127.0.0.1:$http" BILLFLOW_NOTIFY_PUSH_URL="http://127.0.0.1:$http"
export BILLFLOW_NOTIFY_CLOCK="$(date -d tomorrow +%Y-%m-%d)T10:00" BILLFLOW_NOTIFY_BACKOFF_BASE_MS=1000 BILLFLOW_NOTIFY_BACKOFF_MAX_MS=5000
# With replies after 1 s, emails per second = sessions in flight: size the
# pool for the target (the mock provider takes ~8,000 sessions).
export BILLFLOW_NOTIFY_EMAIL_CONCURRENCY=${EMAIL_CONCURRENCY:-6000}
echo "  notify: email concurrency $BILLFLOW_NOTIFY_EMAIL_CONCURRENCY, backoff 1-5 s, clock $BILLFLOW_NOTIFY_CLOCK"
t0=$(date +%s%3N)
"$notify" 2>"$work/notify.log" & npid=$!; pids+=($npid)
hwm=0
while true; do
  sleep 1
  # HELD by a subscriber's own quiet window is final for now (G4: a rule the operator sees).
  read -r total open < <(psql -X -At -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE state NOT IN ('DELIVERED','FAILED') AND NOT (state = 'HELD' AND hold_reason = 'quiet hours (subscriber)')) FROM delivery")
  h=$(awk '/VmHWM/ {print $2}' /proc/$npid/status 2>/dev/null || echo 0); [ "${h:-0}" -gt "$hwm" ] && hwm=$h
  printf "  %6ds  %8d deliveries, %8d open\n" $(( ($(date +%s%3N) - t0) / 1000 )) "$total" "$open"
  [ "$total" -ge "$expected" ] && [ "$open" -eq 0 ] && break
done
t1=$(date +%s%3N)
ms=$((t1 - t0))
final=$(psql -X -At -c "SELECT count(*) FROM delivery")
echo
echo "== result"
echo "  $final deliveries final in ${ms} ms: $((final * 1000 / ms)) deliveries/s; notify peak RSS $((hwm / 1024)) MB"
psql -X -q -P footer=off <<'SQL'
SELECT channel, state, count(*) FROM delivery GROUP BY 1, 2 ORDER BY 1, 2;
SELECT 'created -> final' AS latency,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 2) AS p50_s,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY x)::numeric, 2) AS p90_s,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY x)::numeric, 2) AS p99_s,
       round(max(x)::numeric, 2) AS max_s
  FROM (SELECT extract(epoch FROM final_at - created_at) AS x FROM delivery) d
UNION ALL
SELECT 'one attempt', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 3),
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY x)::numeric, 3),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY x)::numeric, 3), round(max(x)::numeric, 3)
  FROM (SELECT extract(epoch FROM finished_at - started_at) AS x FROM delivery_attempt) a;
SELECT outcome, count(*) AS attempts FROM delivery_attempt GROUP BY 1 ORDER BY 1;
SELECT count(*) AS sms_fallbacks FROM delivery WHERE fallback_of IS NOT NULL;
SQL
echo "== mock provider report"
curl -s "http://127.0.0.1:$http/v1/report" | head -c 2000; echo
STEPS
scripts/pgtmp run -- bash "$work/steps.sh"
