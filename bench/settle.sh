#!/usr/bin/env bash
# Benchmark: settle one period and compare with the floor.
#
#   bash bench/settle.sh [SUBSCRIBERS]      (default 1000000)
#
# On a throwaway PostgreSQL with durable settings: generate SUBSCRIBERS
# subscribers, run `settle --once` for the period (workers = cores), and
# print subscribers/s, wall time and settle's peak RSS. Then measure the
# FLOOR in the same run: the time PostgreSQL alone takes to COPY the same
# bill, bill_line and outbox rows into the same (emptied) tables, with the
# same column lists settle's COPYs use, in one transaction over one
# connection, from files dumped from the run.
# Target (issue 3): settle within 2x the floor (about 30 s for 1M on the
# 2-core machine), peak RSS under 300 MB, the same rate per subscriber at
# 5,000,000.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
period=2026-10

bash scripts/bootstrap >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
billdata=$PWD/build/tools/billdata/billdata
settle=$PWD/build/services/settle/settle

work=$(mktemp -d /tmp/billflow-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
"$billdata" keygen "$work/pii.key" >/dev/null
export BILLFLOW_PII_KEY_FILE="$work/pii.key" billdata settle n period work
# settle serves its event stream over CURVE only (docs/settle.md): a key pair
# and an empty allowed list, since nobody reads this run's stream.
"$PWD/build/services/billctl/billctl" keygen settle --dir "$work" >/dev/null
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
"$billdata" migrate >/dev/null 2>&1
echo "== generate $n subscribers"
"$billdata" generate --subscribers "$n" --period "$period" --seed 11 | tail -1
psql -X -q -c "CHECKPOINT"
echo
echo "== settle --once --period $period"
t0=$(ms)
"$settle" --once --period "$period" 2>"$work/settle.log" | tee "$work/settle.out"
t1=$(ms)
settle_ms=$((t1 - t0))
rows=$(psql -X -At -c "SELECT (SELECT count(*) FROM bill) || ' ' || (SELECT count(*) FROM bill_line) || ' ' || (SELECT count(*) FROM outbox)")
read -r bills lines events <<<"$rows"
echo "  wall ${settle_ms} ms: $((n * 1000 / settle_ms)) subscribers/s; rows written: $bills bills, $lines lines, $events events"
echo
echo "== floor: COPY the same rows into the same tables, PostgreSQL alone"
psql -X -q <<SQL
\copy (SELECT period, subscriber_id, bill_id, run_id, total, due_date, line_count FROM bill) TO '$work/bill.copy'
\copy (SELECT period, subscriber_id, line_no, code, amount, label FROM bill_line) TO '$work/bill_line.copy'
\copy (SELECT event_id, topic, period, bill_id, subscriber_id, payload FROM outbox) TO '$work/outbox.copy'
TRUNCATE bill, bill_line, outbox CASCADE;
CHECKPOINT;
SQL
t0=$(ms)
psql -X -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
\copy bill (period, subscriber_id, bill_id, run_id, total, due_date, line_count) FROM '$work/bill.copy'
\copy bill_line (period, subscriber_id, line_no, code, amount, label) FROM '$work/bill_line.copy'
\copy outbox (event_id, topic, period, bill_id, subscriber_id, payload) FROM '$work/outbox.copy'
COMMIT;
SQL
t1=$(ms)
floor_ms=$((t1 - t0))
echo "  floor ${floor_ms} ms for $bills + $lines + $events rows"
echo
awk -v s="$settle_ms" -v f="$floor_ms" 'BEGIN { printf "settle / floor = %.2f (target <= 2.00)\n", s / f }'
STEPS
scripts/pgtmp run -- bash "$work/steps.sh"
