#!/usr/bin/env bash
# Benchmark: commands.list and audit.list filtered by actor, verb, state and
# time on a large log (issue 15, page 7; docs/control.md "Commands and audit").
#
#   bash bench/audit.sh [AUDIT_ROWS] [ROUNDS]     (defaults 1000000 and 200)
#
# On a throwaway PostgreSQL with durable settings and every migration:
# AUDIT_ROWS audit rows and a fifth as many commands, inserted by SQL over
# 349 days of 2026 (one audit row every 30 s at a million), with a rare
# actor (1 %), a rare verb (2 %) and a rare state (0.1 %) among common ones.
# Then bench/query_bench times each list ROUNDS times on one connection
# around bf_query() (min / median / p99 / max ms), and prints each
# statement's plan once (auto_explain: the index it reads, rows, buffers).
#
# BUILD_DIR names the meson build directory (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
rounds=${2:-200}
build=${BUILD_DIR:-build}

[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" billdata:executable query_bench >/dev/null
billdata=$PWD/$build/tools/billdata/billdata
bench=$PWD/$build/bench/query_bench
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
export n rounds bench

cat >"$work/steps.sh" <<'STEPS'
set -euo pipefail
ms() { date +%s%3N; }
t0=$(ms)
psql -X -q -v ON_ERROR_STOP=1 -v n="$n" <<'SQL'
INSERT INTO audit_log (at, actor, command_id, target, verb, args, outcome)
SELECT timestamptz '2026-01-01 00:00:00+00' + i * (interval '349 days' / :n),
       CASE WHEN i % 100 = 0 THEN 'console/rare' WHEN i % 100 < 30 THEN 'console/kim'
            WHEN i % 100 < 60 THEN 'ops-kim' ELSE 'cron' END,
       'cmd-' || (i / 5 + 1), 'settle',
       CASE WHEN i % 50 = 7 THEN 'run.resume'
            ELSE (ARRAY['run.start', 'dispatch.pause', 'deliveries.retry', 'run.stop'])[1 + i % 4]
       END,
       '{"period": "2026-10"}',
       CASE WHEN i % 1000 = 3 THEN 'refused' WHEN i % 97 = 0 THEN 'failed'
            WHEN i % 2 = 0 THEN 'received' ELSE 'done' END
  FROM generate_series (1, :n) i;
INSERT INTO command (command_id, client, target, verb, args, state, received_at)
SELECT 'cmd-' || i,
       CASE WHEN i % 100 = 0 THEN 'console/rare' WHEN i % 100 < 30 THEN 'console/kim'
            WHEN i % 100 < 60 THEN 'ops-kim' ELSE 'cron' END,
       'settle',
       CASE WHEN i % 50 = 7 THEN 'run.resume'
            ELSE (ARRAY['run.start', 'dispatch.pause', 'deliveries.retry', 'run.stop'])[1 + i % 4]
       END,
       '{"period": "2026-10"}',
       CASE WHEN i % 1000 = 3 THEN 'REJECTED' WHEN i % 97 = 0 THEN 'FAILED' ELSE 'DONE' END,
       timestamptz '2026-01-01 00:00:00+00' + i * (interval '349 days' / (:n / 5))
  FROM generate_series (1, :n / 5) i;
ANALYZE audit_log;
ANALYZE command;
SQL
echo "== $n audit rows and $((n / 5)) commands inserted and analysed in $(( ($(ms) - t0) / 1000 )) s"
psql -X -At -c "SELECT 'audit_log ' || pg_size_pretty (pg_total_relation_size ('audit_log'))
                || ', command ' || pg_size_pretty (pg_total_relation_size ('command'))"
echo
echo "== timings (ms); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" -n "$rounds" -o commands.list 2>/dev/null
"$bench" -n "$rounds" -o audit.list 2>/dev/null | tail -n +2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== plans"
"$bench" --explain -o commands.list 2>/dev/null
"$bench" --explain -o audit.list 2>/dev/null
STEPS

echo "machine: $(nproc) cores; PostgreSQL: durable settings (fsync on), see scripts/pgtmp"
scripts/pgtmp run --migrate "$billdata" -- bash "$work/steps.sh"
