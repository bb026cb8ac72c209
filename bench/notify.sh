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
#
# Then, in the same run (issue 17), the FLOOR of notify's durable writes
# (bench/notify_floor.sh): with notify and the other processes stopped,
# PostgreSQL alone COPYs the run's final delivery, attempt and content rows
# back into the emptied tables (same indexes, constraints and counter
# triggers) in transactions of FLOOR_BATCH deliveries (default 5000), and
# the script prints `floor`, `notify` and `ratio` (notify's time / the
# floor's), with the CPU and WAL of both. FLOOR_VARIANTS=0 skips the floor's
# breakdown (without each secondary index, unique constraint, the foreign
# keys, the counter triggers; batches of 500 and of everything).
# PG_STATS=1 loads pg_stat_statements (track = all, nested statements too)
# and track_functions = pl, and prints where notify's database time went,
# per statement and per delivery; off by default (it costs a little).
# PG_EXPLAIN=1 logs the plans of one statement in 50 (auto_explain, nested
# statements too) and prints each statement's slowest plan with its node
# times, rows and buffers (bench/explain_summary.py); diagnosis only.
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
. bench/notify_floor.sh
if [ "${PG_STATS:-0}" = 1 ]; then
  # The library must be loaded at start: set, then restart the cluster.
  printf '%s\n' "shared_preload_libraries = 'pg_stat_statements'" "pg_stat_statements.track = 'all'" \
         "pg_stat_statements.max = 1000" "track_functions = 'pl'" \
    >>"$(psql -X -At -c 'SHOW data_directory')/postgresql.conf"
  scripts/pgtmp restart "$PGHOST"
  psql -X -q -c "CREATE EXTENSION pg_stat_statements"
fi
if [ "${PG_EXPLAIN:-0}" = 1 ]; then
  # Every statement's plan with its row counts, buffers and node times
  # (auto_explain, nested statements too: triggers and foreign-key checks),
  # for one statement in 50; the script prints, per statement, its plan that
  # took longest (diagnosis only: it slows the run down).
  printf '%s\n' "shared_preload_libraries = 'auto_explain'" "auto_explain.log_min_duration = 0" \
         "auto_explain.log_analyze = on" "auto_explain.log_buffers = on" \
         "auto_explain.log_nested_statements = on" "auto_explain.sample_rate = 0.02" \
    >>"$(psql -X -At -c 'SHOW data_directory')/postgresql.conf"
  scripts/pgtmp restart "$PGHOST"
fi
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
# Start from a checkpoint, as the floor does (same full-page writes).
psql -X -q -c "CHECKPOINT"
[ "${PG_STATS:-0}" = 1 ] && psql -X -q -c "SELECT pg_stat_statements_reset ()" >/dev/null
c0=$(nf_pg_cpu_ms); l0=$(nf_lsn)
t0=$(date +%s%3N)
"$notify" 2>"$work/notify.log" & npid=$!; pids+=($npid)
hwm=0
while true; do
  sleep 1
  # From the counters (db/006_delivery_count.sql: a few rows, exact): a
  # scan of every delivery each second cost PostgreSQL about a fifth of
  # notify's own database time (issue 17). HELD by a subscriber's own quiet
  # window is final for now (G4: a rule the operator sees): when only HELD
  # ones are left, one scan tells which.
  read -r total open < <(psql -X -At -F ' ' -c "SELECT coalesce (sum (n), 0), coalesce (sum (n) FILTER (WHERE state NOT IN ('DELIVERED','FAILED','HELD')), 0) FROM delivery_count")
  if [ "$total" -ge "$expected" ] && [ "$open" -eq 0 ]; then
    read -r total open < <(psql -X -At -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE state NOT IN ('DELIVERED','FAILED') AND NOT (state = 'HELD' AND hold_reason = 'quiet hours (subscriber)')) FROM delivery")
  fi
  h=$(awk '/VmHWM/ {print $2}' /proc/$npid/status 2>/dev/null || echo 0); [ "${h:-0}" -gt "$hwm" ] && hwm=$h
  printf "  %6ds  %8d deliveries, %8d open\n" $(( ($(date +%s%3N) - t0) / 1000 )) "$total" "$open"
  [ "$total" -ge "$expected" ] && [ "$open" -eq 0 ] && break
done
t1=$(date +%s%3N)
ms=$((t1 - t0))
# CPU while notify ran: notify itself, its own backends (ingest and the
# dispatchers, connected for the whole run), and the whole cluster
# (autovacuum, WAL writer, checkpointer and this script's polling too).
l1=$(nf_lsn); c1=$(nf_pg_cpu_ms)
notify_cpu=$(nf_proc_cpu_ms "$npid")
be_cpu=0
for p in $(psql -X -At -c "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'notify%'"); do
  be_cpu=$((be_cpu + $(nf_proc_cpu_ms "$p")))
done
wal=$(nf_wal_bytes "$l0" "$l1")
final=$(psql -X -At -c "SELECT count(*) FROM delivery")
echo
echo "== result"
echo "  $final deliveries final in ${ms} ms: $((final * 1000 / ms)) deliveries/s; notify peak RSS $((hwm / 1024)) MB"
awk -v d="$final" -v n="$notify_cpu" -v b="$be_cpu" -v c=$((c1 - c0)) -v w="$wal" 'BEGIN {
    printf "  CPU: notify %.1f s (%.0f ms per 1,000 deliveries), its backends %.1f s (%.0f ms per 1,000), whole cluster %.1f s (%.0f ms per 1,000)\n",
           n / 1000, n * 1000 / d, b / 1000, b * 1000 / d, c / 1000, c * 1000 / d
    printf "  WAL: %.1f MB, %.0f bytes per delivery\n", w / 1048576, w / d }'
# HOT updates need free room on the page and no indexed column changed
# (partial indexes' predicates count): issue 17's fillfactor direction.
psql -X -At -F ' ' -c "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'delivery'" \
  | awk '{ printf "  delivery updates: %d, of which HOT %d (statistics as last flushed)\n", $1, $2 }'
# What the claims read of the due queue (issue 17): index entries of
# delivery_due per delivery. Read in order from the cursor and stopped at the
# batch, a few per delivery; read whole past the cursor and sorted for every
# batch (a bitmap scan planned from stale statistics), it grows with the
# backlog.
psql -X -At -F ' ' -c "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'delivery_due'" \
  | awk -v d="$final" '{ printf "  delivery_due entries read: %d, %.1f per delivery (statistics as last flushed)\n", $1, $1 / d }'
echo "  load average at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
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
if [ "${PG_STATS:-0}" = 1 ]; then
  echo
  echo "== where notify's database time went (pg_stat_statements over notify's run; nested = run by a trigger)"
  psql -X -q -P footer=off -v d="$final" <<'SQL'
SELECT round (total_exec_time::numeric / 1000, 1) AS total_s, calls, rows,
       round ((total_exec_time / calls)::numeric, 2) AS ms_per_call,
       round ((total_exec_time * 1000 / :d)::numeric, 1) AS us_per_delivery,
       round (wal_bytes / :d) AS wal_b_per_delivery,
       CASE WHEN toplevel THEN 'top' ELSE 'nested' END AS level,
       left (regexp_replace (query, '\s+', ' ', 'g'), 90) AS statement
  FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15;
SELECT round (sum (total_exec_time)::numeric / 1000, 1) AS toplevel_total_s,
       round ((sum (total_exec_time) * 1000 / :d)::numeric, 1) AS us_per_delivery,
       round (sum (wal_bytes) / :d) AS wal_b_per_delivery
  FROM pg_stat_statements WHERE toplevel;
SELECT funcname, calls, round (total_time::numeric / 1000, 1) AS total_s,
       round ((total_time * 1000 / :d)::numeric, 1) AS us_per_delivery
  FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 5;
SQL
fi
if [ "${PG_EXPLAIN:-0}" = 1 ]; then
  echo
  echo "== plans of notify's statements (auto_explain, one in 50; the slowest of each)"
  python3 bench/explain_summary.py "$PGHOST/server.log" 12
fi
echo
# The floor runs alone: notify, settle and the mock provider stop first.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
notify_floor "$work"
awk -v ms="$ms" -v f="$(sed -n 's/^floor_ms=//p' "$work/floor.result")" \
    -v c=$((c1 - c0)) -v n="$notify_cpu" -v fc="$(sed -n 's/^floor_pg_cpu_ms=//p' "$work/floor.result")" 'BEGIN {
    printf "notify: %.1f s\n", ms / 1000
    printf "ratio: %.2f (notify / floor, wall clock; target <= 2.00)\n", ms / f
    printf "  CPU ratio: %.2f (notify and the cluster during its run / the cluster during the floor);" \
           " PostgreSQL alone %.2f\n", (n + c) / fc, c / fc }'
echo "  load average at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
if [ "${FLOOR_VARIANTS:-1}" = 1 ]; then
  echo
  notify_floor_variants "$work"
fi
STEPS
scripts/pgtmp run -- bash "$work/steps.sh"
