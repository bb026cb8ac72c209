#!/usr/bin/env bash
# Benchmark: control's queries on a settled period of a million subscribers.
#
#   bash bench/query.sh [SUBSCRIBERS] [ROUNDS]     (defaults 1000000 and 200)
#
# On a throwaway PostgreSQL with durable settings: generate SUBSCRIBERS
# subscribers (seed 41), settle the period with `settle --once`, then create
# its notices with SQL — one per bill and channel of the subscriber, as
# ingest does, in one INSERT through the delivery_count triggers — in mixed
# states (3 % failed, 2 % held by quiet hours, 2 % pending, 1 % retrying,
# 1 % sending, the rest delivered), the SMS fallbacks of the failed emails
# as notify adds them, every notice's send attempts (as many as its attempts
# counter), 2,000 commands, 200,000 audit rows, a few service instances and
# an hour of the run's rate samples (3,600, as the active control writes
# them once a second). It checks the counters against count(*) (and shows what that
# count costs), then runs bench/query_bench: each query ROUNDS times on one
# connection, min / median / p99 / max in milliseconds around bf_query()
# (SQL, JSON, decrypting and masking contacts). Target: milliseconds each.
# The subscriber and bill queries ask for another subscriber each round
# (query_bench.c); their plans are printed after the timings (the scans of
# each statement, from auto_explain).
# Then what the counters' triggers cost a writer: pgbench latencies of
# notify-like statements with the triggers disabled and enabled, in turn.
# Last, bench/report.sh: run.report through a control started on the
# period, and what db/013_report_change.sql's triggers cost in CPU.
#
# BUILD_DIR names the meson build directory (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
rounds=${2:-200}
period=2026-10
build=${BUILD_DIR:-build}

bash scripts/bootstrap >/dev/null
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" billdata:executable settle:executable billctl:executable query_bench >/dev/null
billdata=$PWD/$build/tools/billdata/billdata
settle=$PWD/$build/services/settle/settle
bench=$PWD/$build/bench/query_bench

work=$(mktemp -d /tmp/billflow-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
"$billdata" keygen "$work/pii.key" >/dev/null
export BILLFLOW_PII_KEY_FILE="$work/pii.key" billdata settle bench n rounds period work build
# settle serves its event stream over CURVE only (docs/settle.md): a key pair
# and an empty allowed list, since nobody reads this run's stream.
"$PWD/$build/services/billctl/billctl" keygen settle --dir "$work" >/dev/null
echo "# nobody reads" >"$work/allowed_keys"
chmod 600 "$work/allowed_keys"   # a file naming keys: owner only (docs/configuration.md)
export BILLFLOW_SETTLE_KEY_FILE="$work/settle.key_secret" BILLFLOW_SETTLE_ALLOWED_KEYS="$work/allowed_keys"
export BILLFLOW_SETTLE_PUB_ENDPOINT='tcp://127.0.0.1:*'

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "PostgreSQL: durable settings (fsync on), see scripts/pgtmp"
echo

cat >"$work/steps.sh" <<'STEPS'
set -euo pipefail
ms() { date +%s%3N; }
# The period's run gets SECONDS rate samples, one a second, as the active
# control writes them (db/014_rates.sql): its bills over the first tenth,
# its notices after, and a 20 s gap (a failover) in the middle.
rate_samples() {
  psql -X -q -v seconds="$1" -v period="$period" <<'SQL'
DELETE FROM run_rate_sample WHERE run_id = (SELECT max (run_id) FROM settlement_run
                                             WHERE period = :'period');
INSERT INTO run_rate_sample (run_id, at, bills, notices, gap)
SELECT r.run_id, r.started_at + i * interval '1 second',
       least (r.bills, r.bills * i / greatest (1, :seconds / 10)),
       greatest (0, n.total * (i - :seconds / 10) / greatest (1, :seconds - :seconds / 10)),
       i = :seconds / 2
  FROM (SELECT * FROM settlement_run WHERE period = :'period' ORDER BY run_id DESC LIMIT 1) r,
       (SELECT sum (n) AS total FROM delivery_count WHERE period = :'period'
          AND state IN ('DELIVERED', 'FAILED', 'CANCELLED')) n,
       generate_series (0, :seconds) i
 WHERE i NOT BETWEEN :seconds / 2 - 20 AND :seconds / 2 - 1;
SQL
}
"$billdata" migrate >/dev/null 2>&1
echo "== generate $n subscribers and settle $period"
"$billdata" generate --subscribers "$n" --period "$period" --seed 41 | tail -1
"$settle" --once --period "$period" 2>/dev/null
echo
echo "== notices, commands, audit rows, services"
t0=$(ms)
psql -X -q -v ON_ERROR_STOP=1 -v period="$period" <<'SQL'
-- r: a stable pseudo-random 0..999 per notice.
INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, state, attempts,
                      not_before, hold_reason, last_error, event_seq, final_at)
SELECT b.period, b.bill_id, b.subscriber_id, c, 'BILL_ISSUED', x.state,
       CASE x.state WHEN 'PENDING' THEN 0 WHEN 'HELD' THEN 0 WHEN 'FAILED' THEN 5
                    WHEN 'RETRY' THEN 2 ELSE 1 END,
       CASE WHEN x.state = 'HELD'
            THEN now () + interval '10 hours' + (b.bill_id % 600) * interval '1 s'
            ELSE now () END,
       CASE WHEN x.state = 'HELD' THEN 'quiet hours (subscriber)' END,
       CASE WHEN x.state IN ('FAILED', 'RETRY') THEN '550 5.1.1 "mailbox unavailable"' END,
       o.seq,
       CASE WHEN x.state IN ('DELIVERED', 'FAILED')
            THEN now () - (b.bill_id % 7200) * interval '1 s' END
  FROM bill b
  JOIN subscriber s ON s.id = b.subscriber_id
  JOIN outbox o ON o.period = b.period AND o.bill_id = b.bill_id
  CROSS JOIN unnest (s.channels) c
  CROSS JOIN LATERAL (SELECT abs (hashtext (b.bill_id || c)) % 1000 AS r) h
  CROSS JOIN LATERAL (SELECT CASE WHEN h.r < 30 THEN 'FAILED' WHEN h.r < 50 THEN 'HELD'
                                  WHEN h.r < 70 THEN 'PENDING' WHEN h.r < 80 THEN 'RETRY'
                                  WHEN h.r < 90 THEN 'SENDING' ELSE 'DELIVERED' END AS state) x
 WHERE b.period = :'period';
INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, fallback_of, state,
                      attempts, final_at)
SELECT period, bill_id, subscriber_id, 'SMS', purpose, id, 'DELIVERED', 1, now ()
  FROM delivery WHERE state = 'FAILED' AND channel = 'EMAIL'
    ON CONFLICT (bill_id, channel, purpose) DO NOTHING;
INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider, started_at,
                              finished_at, outcome, status_code, error)
SELECT d.id, n, d.channel, 'mock-' || lower (d.channel),
       d.created_at + n * interval '1 min', d.created_at + n * interval '1 min' + interval '1 s',
       CASE WHEN n < d.attempts OR d.state IN ('FAILED', 'RETRY') THEN 'TRANSIENT'
            ELSE 'DELIVERED' END,
       CASE WHEN n < d.attempts OR d.state IN ('FAILED', 'RETRY') THEN 503 ELSE 200 END,
       CASE WHEN n < d.attempts OR d.state IN ('FAILED', 'RETRY') THEN 'busy, try later' END
  FROM delivery d CROSS JOIN LATERAL generate_series (1, d.attempts) n;
INSERT INTO notify_cursor (consumer, last_seq) SELECT 'notify', last_seq FROM relay_state;
INSERT INTO command (command_id, client, target, verb, args, state, result, error, received_at,
                     forwarded_at, completed_at)
SELECT 'cmd-' || i, CASE WHEN i % 4 = 0 THEN 'cron' ELSE 'ops-kim' END,
       (ARRAY['settle', 'notify', 'control'])[1 + i % 3], 'run.start',
       jsonb_build_object ('period', :'period'),
       (ARRAY['DONE', 'DONE', 'DONE', 'FAILED', 'FORWARDED'])[1 + i % 5],
       '{"outcome": "started"}', NULL, now () - (2000 - i) * interval '1 hour',
       now () - (2000 - i) * interval '1 hour', now () - (2000 - i) * interval '1 hour'
  FROM generate_series (1, 2000) i;
INSERT INTO audit_log (at, actor, command_id, target, verb, args, outcome, detail)
SELECT now () - (200000 - i) * interval '1 minute',
       (ARRAY['ops-kim', 'ops-lee', 'dashboard', 'settle-1', 'notify-1'])[1 + i % 5],
       'cmd-' || (i % 2000 + 1), 'settle', 'run.start', '{"period": "2026-10"}', 'OK', NULL
  FROM generate_series (1, 200000) i;
INSERT INTO service_instance (instance_id, service, key_name, pid, version, verbs,
                              last_heartbeat, state)
SELECT s || '-' || i, s, s || '-' || i, 1000 + i, '0.1.0', '{run.start}',
       now () - i * interval '2 s', '{"ok": true}'
  FROM unnest (ARRAY['settle', 'notify']) s, generate_series (1, 3) i;
INSERT INTO control_instance (instance_id, pid, bind)
SELECT 'control-' || i, 2000 + i, 'tcp://*:7100' FROM generate_series (1, 2) i;
UPDATE control_leader SET instance_id = 'control-1', since = now ();
SQL
rate_samples 3600
psql -X -q -c "VACUUM ANALYZE"
t1=$(ms)
echo "  created in $((t1 - t0)) ms:"
psql -X -q -P footer=off -c "SELECT state, count(*) FROM delivery GROUP BY 1 ORDER BY 2 DESC"
psql -X -At -c "SELECT count(*) || ' notices, ' || count (fallback_of) || ' fallbacks, '
                || (SELECT count(*) FROM delivery_attempt) || ' attempts' FROM delivery"
echo
echo "== counters against count(*)"
t0=$(ms)
bad=$(psql -X -At -c "SELECT count(*) FROM
  (SELECT period, channel, state, sum (n) AS n, sum (fallbacks) AS f FROM delivery_count
    GROUP BY 1, 2, 3 HAVING sum (n) <> 0 OR sum (fallbacks) <> 0) c
  FULL JOIN (SELECT period, channel, state, count(*) AS n, count (fallback_of) AS f
    FROM delivery GROUP BY 1, 2, 3) d USING (period, channel, state)
  WHERE c.n IS DISTINCT FROM d.n OR c.f IS DISTINCT FROM d.f")
t1=$(ms)
echo "  keys that differ: $bad (the check, a count(*) of every delivery, took $((t1 - t0)) ms)"
[ "$bad" = 0 ] || { echo "  COUNTERS ARE WRONG" >&2; exit 1; }
echo
echo "== queries, $rounds rounds each (run.rates: the run has an hour of samples)"
"$bench" -n "$rounds" -p "$period"
echo
echo "== run.rates with a week of samples (604,800 rows), $rounds rounds"
rate_samples 604800
psql -X -q -c "VACUUM ANALYZE run_rate_sample"
"$bench" -n "$rounds" -p "$period" -o run.rates
echo
echo "== plans of the subscriber and bill queries (each node's scan, from auto_explain)"
for verb in subscriber.find subscriber.timeline bill.show; do
  "$bench" --explain -o "$verb" -p "$period" \
    | grep -E "duration:|Scan|Append|Execution Time" | sed -E 's/^ *(-> )?/  /' | cut -c1-110
done
echo
echo "== what the counters cost a writer: the triggers disabled and enabled, alternately"
pgbench=${PG_BINDIR:-/usr/lib/postgresql/15/bin}/pgbench
cat >"$work/batch.sql" <<'SQL'
\set b random(0, :maxid / 200 - 1)
BEGIN;
UPDATE delivery SET state = CASE state WHEN 'PENDING' THEN 'SENDING' WHEN 'SENDING' THEN 'RETRY'
       ELSE 'PENDING' END, final_at = NULL, updated_at = now ()
 WHERE id > :b * 200 AND id <= (:b + 1) * 200;
UPDATE delivery SET state = 'HELD', updated_at = now ()
 WHERE id > :b * 200 AND id <= :b * 200 + 20 AND state = 'PENDING';
COMMIT;
SQL
cat >"$work/one.sql" <<'SQL'
\set i random(1, :maxid)
UPDATE delivery SET state = CASE state WHEN 'PENDING' THEN 'SENDING' WHEN 'SENDING' THEN 'RETRY'
       ELSE 'PENDING' END, final_at = NULL, updated_at = now () WHERE id = :i;
SQL
triggers() {   # ENABLE | DISABLE
  psql -X -q -c "ALTER TABLE delivery $1 TRIGGER delivery_count_insert, $1 TRIGGER delivery_count_update, $1 TRIGGER delivery_count_delete"
}
maxid=$(psql -X -At -c "SELECT max (id) FROM delivery")
latency() {
  "$pgbench" -n -c 1 -T 10 -D maxid="$maxid" -f "$1" 2>/dev/null | awk '/latency average/ {print $4}'
}
# Rolled back: a DELETE of the copies would check fallback_of's foreign key
# by scanning delivery once per row.
insert_ms() {
  local t0 t1; t0=$(ms)
  psql -X -q -c "BEGIN" -c "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose)
                 SELECT period, bill_id, subscriber_id, channel, 'COST' FROM delivery
                  WHERE purpose = 'BILL_ISSUED' AND id <= 200000" -c "ROLLBACK"
  t1=$(ms); echo $((t1 - t0))
}
copies=$(psql -X -At -c "SELECT count(*) FROM delivery WHERE purpose = 'BILL_ISSUED' AND id <= 200000")
for round in 1 2 3; do
  triggers DISABLE; psql -X -q -c CHECKPOINT
  i0=$(insert_ms); o0=$(latency "$work/one.sql"); b0=$(latency "$work/batch.sql")
  triggers ENABLE; psql -X -q -c CHECKPOINT
  i1=$(insert_ms); o1=$(latency "$work/one.sql"); b1=$(latency "$work/batch.sql")
  echo "  round $round: without / with the triggers"
  printf "    %-42s %8s / %8s ms\n" "INSERT ... SELECT of $copies notices" "$i0" "$i1" \
    "one-row UPDATE of a state" "$o0" "$o1" "two 200-row UPDATEs in a transaction" "$b0" "$b1"
done
psql -X -At -c "SELECT 'delivery_count: ' || pg_size_pretty (pg_relation_size ('delivery_count'))
  || ', ' || n_tup_upd || ' updates, ' || n_tup_hot_upd || ' of them HOT'
  FROM pg_stat_user_tables WHERE relname = 'delivery_count'"
# Writes made with the triggers disabled were not counted: seed the
# counters again, as the migration does.
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
BEGIN;
LOCK TABLE delivery IN SHARE ROW EXCLUSIVE MODE;
DELETE FROM delivery_count;
INSERT INTO delivery_count (period, channel, state, shard, n, fallbacks)
SELECT period, channel, state, 0, count(*), count(fallback_of) FROM delivery GROUP BY 1, 2, 3;
COMMIT;
SQL
echo
BUILD_DIR=$build bash bench/report.sh "$period"
STEPS
scripts/pgtmp run -- bash "$work/steps.sh"
