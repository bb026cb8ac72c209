#!/usr/bin/env bash
# Benchmark: run.report through control (issue 15) on the database the PG*
# environment points at, whose PERIOD is set up already (bench/query.sh runs
# this last, on its million-subscriber period).
#
#   bash bench/report.sh [PERIOD] [ROUNDS]      (defaults 2026-10 and 200)
#
# Starts one control on the database (its own keys, an ipc socket in a
# temporary directory), then times with bench/report_bench:
#   1. the first request (wait=1): control computes the report;
#   2. ROUNDS requests wait=1 and ROUNDS wait=0 of the unchanged period:
#      the report control keeps (services/control/bf_report_cache.h);
#      25 ms apart here and below (control admits 50 requests a second
#      per key: control.client_rate);
#   3. ROUNDS requests wait=0 while a writer changes one held
#      notice of the period every 500 ms (each change moves the period's
#      version): the kept report, mostly not current, while the reporter
#      recomputes in the background;
#   4. one request wait=1 right after a change: it waits for a computation.
# Then prints control's CPU time and stops it, and last what the triggers of
# db/013_report_change.sql cost notify's statements in PostgreSQL CPU time.
# BUILD_DIR names the meson build directory (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
period=${1:-2026-10}
rounds=${2:-200}
build=${BUILD_DIR:-build}
meson compile -C "$build" control:executable billctl:executable report_bench >/dev/null
bench=$PWD/$build/bench/report_bench

dir=$(mktemp -d /tmp/billflow-report.XXXXXX)
control_pid=
writer_pid=
cleanup() {
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null || true
  [ -n "$control_pid" ] && kill "$control_pid" 2>/dev/null && wait "$control_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$PWD/$build/services/billctl/billctl" keygen control --dir "$dir" >/dev/null
"$PWD/$build/services/billctl/billctl" keygen ops --dir "$dir" >/dev/null
pubkey() { awk -F'"' '/public-key/ {print $2}' "$1"; }
control_key=$(pubkey "$dir/control.key")
echo "ops viewer $(pubkey "$dir/ops.key")" >"$dir/allowed_keys"
chmod 600 "$dir/allowed_keys"
conninfo="host=${PGHOST:-} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=${PGDATABASE:-postgres}"
BILLFLOW_DB_CONNINFO="$conninfo" BILLFLOW_CONTROL_BIND="ipc://$dir/control.ipc" \
  BILLFLOW_CONTROL_KEY_FILE="$dir/control.key_secret" BILLFLOW_CONTROL_ALLOWED_KEYS="$dir/allowed_keys" \
  BILLFLOW_SERVICE_INSTANCE=control-bench \
  "$PWD/$build/services/control/control" >"$dir/control.log" 2>&1 &
control_pid=$!
for _ in $(seq 200); do
  grep -q "active, listening" "$dir/control.log" && break
  sleep 0.1
done
grep -q "active, listening" "$dir/control.log" || { cat "$dir/control.log" >&2; exit 1; }
ask() { "$bench" "ipc://$dir/control.ipc" "$control_key" "$dir/ops.key_secret" -p "$period" "$@"; }

echo "== run.report through control, period $period (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  1. first request, computed:"
ask -n 1 --wait 1 | sed 's/^/     /'
echo "  2. the period unchanged, the kept report:"
ask -n "$rounds" --wait 1 --pause 25 | sed 's/^/     /'
ask -n "$rounds" --wait 0 --pause 25 | sed 's/^/     /'
echo "  3. a held notice changed every 500 ms meanwhile, wait=0:"
held=$(psql -X -At -c "SELECT id FROM delivery WHERE period = '$period' AND state = 'HELD' LIMIT 1")
( while true; do
    psql -X -q -c "UPDATE delivery SET hold_reason = 'bench ' || clock_timestamp () WHERE id = $held" >/dev/null
    sleep 0.5
  done ) &
writer_pid=$!
ask -n "$rounds" --wait 0 --pause 25 | sed 's/^/     /'
kill "$writer_pid"; wait "$writer_pid" 2>/dev/null || true; writer_pid=
echo "  4. wait=1 right after a change (waits for a computation):"
psql -X -q -c "UPDATE delivery SET hold_reason = 'quiet hours (subscriber)' WHERE id = $held" >/dev/null
ask -n 1 --wait 1 | sed 's/^/     /'
echo "  control's CPU: $(awk '{printf "%.1f s user, %.1f s system", $14 / 100, $15 / 100}' /proc/$control_pid/stat)"
echo "  (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"

echo
echo "== what the triggers of db/013_report_change.sql cost a writer"
# notify's batch, as bf_dispatch.c writes it: 200 attempts in one INSERT,
# and 200 notices in one UPDATE, each in a transaction rolled back (nothing
# stays), N times on one connection with the triggers disabled, then
# enabled, three rounds. The figure is the backend's CPU time (utime + stime
# of its /proc stat, read by pg_read_file: a superuser's session, as
# scripts/pgtmp gives) per statement: unlike wall-clock time it does not
# grow with the machine's load.
n=400
triggers() {   # ENABLE | DISABLE
  psql -X -q -c "ALTER TABLE delivery_attempt $1 TRIGGER attempt_count_insert" \
       -c "ALTER TABLE delivery $1 TRIGGER report_change_insert, $1 TRIGGER report_change_update,
           $1 TRIGGER report_change_delete"
}
maxb=$(psql -X -At -c "SELECT max (id) / 200 - 1 FROM delivery")
cpu() { echo "SELECT '$1 ' || (split_part (s, ' ', 14)::int + split_part (s, ' ', 15)::int)
              FROM pg_read_file ('/proc/' || pg_backend_pid () || '/stat') s;"; }
attempts() { echo "BEGIN; INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider,
  started_at, finished_at, outcome, status_code) SELECT id, 1000, channel, 'bench', now (), now (),
  'DELIVERED', 200 FROM delivery WHERE id > $(($1 * 200)) AND id <= $(($1 * 200 + 200))
  ON CONFLICT (delivery_id, attempt_no) DO NOTHING; ROLLBACK;"; }
states() { echo "BEGIN; UPDATE delivery SET updated_at = now () WHERE id > $(($1 * 200))
  AND id <= $(($1 * 200 + 200)); ROLLBACK;"; }
cost() {   # ENABLE | DISABLE: "attempts-ms states-ms" per statement
  triggers "$1"
  { for i in 1 2 3; do attempts $i; states $i; done    # the session's caches
    cpu t0; for i in $(seq $n); do attempts $(( (i * 37) % maxb )); done
    cpu t1; for i in $(seq $n); do states $(( (i * 37) % maxb )); done
    cpu t2; } | psql -X -q -At | awk -v n=$n '/^t[0-9] / {t[$1] = $2}
      END {printf "%.2f %.2f", (t["t1"] - t["t0"]) * 1000 / 100 / n, (t["t2"] - t["t1"]) * 1000 / 100 / n}'
}
trap 'triggers ENABLE >/dev/null 2>&1 || true; cleanup' EXIT
for round in 1 2 3; do
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  read -r a0 s0 <<<"$(cost DISABLE)"
  read -r a1 s1 <<<"$(cost ENABLE)"
  echo "  round $round (load average $load): backend CPU ms per statement, without / with the triggers"
  printf "    %-40s %6s / %6s\n" "INSERT of 200 attempts" "$a0" "$a1" "UPDATE of 200 notices" "$s0" "$s1"
done
