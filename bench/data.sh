#!/usr/bin/env bash
# Benchmark: `billdata generate` and `billdata import` at scale.
#
#   bash bench/data.sh [SUBSCRIBERS]      (default 1000000)
#
# On a throwaway PostgreSQL with durable settings (fsync on; scripts/pgtmp
# without --fast), for SUBSCRIBERS subscribers of one period:
#   1. generate into CSV files only (the generator's own speed),
#   2. generate into a fresh database (generator + validating loader + COPY),
#   3. import the CSV files of step 1 into another fresh database,
#   4. export-bills of one period after SQL fills the bill tables with one
#      bill and ten lines per subscriber (until settle writes real ones).
# Prints wall time, rows/s and peak RSS of billdata for each, and the
# machine. Target (issue 2): steps 2 and 3 within 60 s each for 1,000,000
# subscribers on the 2-core machine; export in seconds with flat memory.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
period=2026-10
seed=7

bash scripts/bootstrap >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
billdata=$PWD/build/tools/billdata/billdata

work=$(mktemp -d /tmp/billflow-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
"$billdata" keygen "$work/pii.key" >/dev/null
export BILLFLOW_PII_KEY_FILE="$work/pii.key" billdata n period seed work

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "PostgreSQL: durable settings (fsync on), see scripts/pgtmp"
echo

cat >"$work/steps.sh" <<'STEPS'
set -euo pipefail
t() {
  local s; s=$(date +%s%N); "$@"
  local ms=$(( ($(date +%s%N) - s) / 1000000 ))
  printf "  wall %d.%03d s\n" $((ms / 1000)) $((ms % 1000))
}
echo "== 1. generate $n subscribers to CSV"
t "$billdata" generate --subscribers "$n" --period "$period" --seed "$seed" --out "$work/csv"
du -sh "$work/csv" | awk '{print "  CSV size " $1}'
wc -l "$work"/csv/*.csv | sed 's/^/  /'
echo
echo "== 2. generate $n subscribers into the database"
createdb gen && export PGDATABASE=gen
"$billdata" migrate >/dev/null 2>&1
t "$billdata" generate --subscribers "$n" --period "$period" --seed "$seed"
echo
echo "== 3. import the CSV files into a fresh database"
createdb imp && export PGDATABASE=imp
"$billdata" migrate >/dev/null 2>&1
t "$billdata" import "$work/csv"
echo
echo "== 4. export-bills of $n bills with 10 lines each"
psql -X -q -v period="$period" <<'SQL'
INSERT INTO settlement_run (period, state, chunk_size) VALUES (:'period', 'COMPLETED', 1000);
INSERT INTO bill (period, subscriber_id, bill_id, run_id, total, due_date, line_count)
  SELECT :'period', id, id, 1, 10 * (id % 9000), '2026-11-25', 10 FROM subscriber;
INSERT INTO bill_line (period, subscriber_id, line_no, code, amount, label)
  SELECT :'period', id, l, 'PLAN:LTE_43', id % 50000, 'LTE 43' FROM subscriber, generate_series (1, 10) l;
SQL
mkdir "$work/export"
t "$billdata" export-bills --period "$period" "$work/export"
ls -l "$work/export" | awk 'NR > 1 {print "  " $5 " bytes  " $9}'
STEPS
scripts/pgtmp run -- bash "$work/steps.sh"
