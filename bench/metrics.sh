#!/usr/bin/env bash
# Benchmark: the cost of metrics and scraping on settle.
#
#   bash bench/metrics.sh [SUBSCRIBERS] [ROUNDS]     (default 100000, 3)
#
# On one throwaway PostgreSQL (durable settings): generate SUBSCRIBERS
# subscribers once, then settle the period with `settle --once` ROUNDS
# times without scraping and ROUNDS times while a client scrapes
# /metrics every 100 ms, alternating (plain, scraped, plain, ...), with
# the settlement tables emptied before each run. Prints every run's wall
# time and the median of each kind. The metric increments themselves are
# in both kinds of run (they are always on); what differs is the HTTP
# server and the scrapes. Reports wall time and settle's CPU time
# (user + system over all its threads), which other load on the machine
# disturbs less than the wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
rounds=${2:-3}
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
export BILLFLOW_PII_KEY_FILE="$work/pii.key" billdata settle n period work rounds
export BILLFLOW_SETTLE_PUB_ENDPOINT='tcp://127.0.0.1:*'
# settle serves its event stream over CURVE only (docs/settle.md): a key pair
# and an empty allowed list, since nobody reads this run's stream.
"$PWD/build/services/billctl/billctl" keygen settle --dir "$work" >/dev/null
echo "# nobody reads" >"$work/allowed_keys"
chmod 600 "$work/allowed_keys"   # a file naming keys: owner only (docs/configuration.md)
export BILLFLOW_SETTLE_KEY_FILE="$work/settle.key_secret" BILLFLOW_SETTLE_ALLOWED_KEYS="$work/allowed_keys"

echo "machine: $(nproc) cores; $n subscribers, $rounds rounds of each kind"

cat >"$work/steps.sh" <<'STEPS'
set -euo pipefail
ms() { date +%s%3N; }
"$billdata" migrate >/dev/null 2>&1
"$billdata" generate --subscribers "$n" --period "$period" --seed 11 | tail -1
one() {  # KIND -> prints the wall ms
  local kind=$1 from scraper="" t0 t1
  psql -X -q -c "SET client_min_messages = warning" -c "TRUNCATE bill_line, outbox, rating_error, bill, settlement_chunk, settlement_run CASCADE" -c "CHECKPOINT"
  if [ "$kind" = scraped ]; then
    # The port the kernel gives settle (:0), read from this run's part of
    # its log ("http: serving ... (port P)"): none picked ahead to be taken.
    export BILLFLOW_SETTLE_HTTP=127.0.0.1:0
    from=$(stat -c %s "$work/settle.log" 2>/dev/null || echo 0)
    ( port=""
      while :; do
        [ -n "$port" ] || port=$(tail -c +"$((from + 1))" "$work/settle.log" 2>/dev/null \
          | sed -n 's/.*http: serving .* (port \([0-9]*\)).*/\1/p' | head -1)
        [ -z "$port" ] || curl -s -o /dev/null "http://127.0.0.1:$port/metrics" || true
        sleep 0.1
      done ) &
    scraper=$!
  else
    export BILLFLOW_SETTLE_HTTP=off
  fi
  # Wall time, and settle's own CPU time (user + system, every thread:
  # the HTTP thread's rendering included), which a busy machine disturbs less.
  python3 - "$kind" "$settle" "$period" "$work" >>"$work/times" <<'PY'
import resource, subprocess, sys, time
kind, settle, period, work = sys.argv[1:]
t0 = time.monotonic()
with open(f"{work}/settle.out", "w") as out, open(f"{work}/settle.log", "a") as log:
    subprocess.run([settle, "--once", "--period", period], stdout=out, stderr=log, check=True)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(kind, round(wall * 1000), round((ru.ru_utime + ru.ru_stime) * 1000))
PY
  if [ -n "$scraper" ]; then kill "$scraper"; wait "$scraper" 2>/dev/null || true; fi
  grep -q COMPLETED "$work/settle.out" || { cat "$work/settle.out" >&2; exit 1; }
  tail -1 "$work/times"
}
for r in $(seq "$rounds"); do one plain; one scraped; done
python3 - "$work/times" <<'PY'
import statistics, sys
wall, cpu = {}, {}
for line in open(sys.argv[1]):
    kind, w, c = line.split()
    wall.setdefault(kind, []).append(int(w))
    cpu.setdefault(kind, []).append(int(c))
for name, d in (("wall", wall), ("settle CPU", cpu)):
    p, s = statistics.median(d["plain"]), statistics.median(d["scraped"])
    print(f"{name}: median plain {p:.0f} ms, scraped every 100 ms {s:.0f} ms: {100 * (s - p) / p:+.1f} %")
PY
STEPS
scripts/pgtmp run -- bash "$work/steps.sh"
