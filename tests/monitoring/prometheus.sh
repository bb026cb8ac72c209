#!/usr/bin/env bash
# A real Prometheus server (Debian's prometheus, on loopback, temporary
# data directory) scrapes a local stack (scripts/stack) every second
# during a settlement cycle; then its HTTP API is asked for
# sum(billflow_bills_written_total) and sum(billflow_settle_chunks_committed_total),
# which must equal the database's bills and the run's chunks, and for
# sum by (state) (billflow_deliveries) (the active control's gauges), which
# must equal the database's notices by state.
#
#   bash tests/monitoring/prometheus.sh [BUILD_DIR]     (default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
period=2026-10
command -v prometheus >/dev/null || { echo "prometheus.sh: prometheus not found (scripts/bootstrap)" >&2; exit 1; }

state=$(mktemp -d /tmp/billflow-prom.XXXXXX)
prom_pid=""
cleanup() {
  [ -z "$prom_pid" ] || { kill "$prom_pid" 2>/dev/null || true; wait "$prom_pid" 2>/dev/null || true; }
  scripts/stack --dir "$state" down >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
stack() { scripts/stack --dir "$state" "$@"; }

stack up --period "$period" --build "$build" >"$state.up.log" 2>&1 || { cat "$state.up.log"; exit 1; }
rm -f "$state.up.log"
addr() { sed -n "s/^export BILLFLOW_$1_HTTP='\{0,1\}\([^']*\)'\{0,1\}$/\1/p" "$state/env" | tail -1; }
settle=$(addr SETTLE) notify=$(addr NOTIFY) control=$(addr CONTROL)

free_port() {
  local port
  for _ in $(seq 200); do
    port=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}
mkdir -p "$state/prom"
cat >"$state/prom/prometheus.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 900ms}
scrape_configs:
  - job_name: billflow-static
    static_configs:
      - targets: ["$settle"]
        labels: {service: settle}
      - targets: ["$notify"]
        labels: {service: notify}
      - targets: ["$control"]
        labels: {service: control}
YML
# Prometheus does not report a port the kernel picked (:0), so its port is
# picked here: when another process takes it first ("address already in
# use"), it starts again on another, up to 5 times (docs/harness.md "Ports").
for attempt in 1 2 3 4 5; do
  port=$(free_port) || { echo "prometheus.sh: no free port" >&2; exit 1; }
  prometheus --config.file="$state/prom/prometheus.yml" --storage.tsdb.path="$state/prom/data" \
    --web.listen-address="127.0.0.1:$port" >"$state/prom/log" 2>&1 &
  prom_pid=$!
  for _ in $(seq 100); do
    kill -0 "$prom_pid" 2>/dev/null || break
    curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/-/ready" && break
    sleep 0.2
  done
  kill -0 "$prom_pid" 2>/dev/null && break
  wait "$prom_pid" 2>/dev/null || true
  prom_pid=""
  grep -qi "address already in use" "$state/prom/log" \
    || { echo "prometheus.sh: Prometheus exited" >&2; cat "$state/prom/log" >&2; exit 1; }
  echo "prometheus.sh: port $port was taken (attempt $attempt of 5): another port"
done
[ -n "$prom_pid" ] || { echo "prometheus.sh: Prometheus found no free port in 5 attempts" >&2; exit 1; }

query() {  # PROMQL -> the value of its single sample, or "none"
  curl -s --get "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
result = doc["data"]["result"] if doc.get("status") == "success" else []
print(result[0]["value"][1] if result else "none")'
}
for _ in $(seq 100); do
  [ "$(query 'sum(up)' 2>/dev/null || echo none)" = 3 ] && break
  sleep 0.3
done
[ "$(query 'sum(up)')" = 3 ] || { echo "prometheus.sh: Prometheus does not see all three targets up" >&2; cat "$state/prom/log" >&2; exit 1; }

stack generate "${BF_SUBSCRIBERS:-3000}" "$period" 5 >/dev/null
rc=0
"$state/billctl" run start "$period" --command-id "prom-$period" >/dev/null || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "prometheus.sh: run start failed ($rc)" >&2; exit 1; }
rc=0
"$state/billctl" run watch "$period" --interval 1000 >/dev/null || rc=$?
[ "$rc" -eq 0 ] || { echo "prometheus.sh: run watch ended with $rc" >&2; exit 1; }

bills=$(stack psql -At -c "SELECT count(*) FROM bill")
chunks=$(stack psql -At -c "SELECT sum(chunks_total) FROM settlement_run")
# Two scrape intervals, then the figures must have arrived.
ok=0
for _ in $(seq 50); do
  b=$(query 'sum(billflow_bills_written_total)') c=$(query 'sum(billflow_settle_chunks_committed_total)')
  if [ "$b" = "$bills" ] && [ "$c" = "$chunks" ]; then ok=1; break; fi
  sleep 0.2
done
echo "prometheus.sh: database $bills bills, $chunks chunks; Prometheus $b bills, $c chunks"
[ "$ok" = 1 ] || { echo "prometheus.sh: Prometheus's figures differ from the database" >&2; exit 1; }
[ "$(query 'max(billflow_control_leader)')" = 1 ] || { echo "prometheus.sh: no control leader in Prometheus" >&2; exit 1; }

# Notices by state: the active control's billflow_deliveries, summed over
# channels (and over instances: a standby exports none), against the
# database. control refreshes them every control.metrics_ms (5 s).
states_db=$(stack psql -At -c "SELECT coalesce (string_agg (state || '=' || n, ',' ORDER BY state), '')
  FROM (SELECT state, count(*) AS n FROM delivery GROUP BY state) s")
[ -n "$states_db" ] || { echo "prometheus.sh: the cycle made no notices" >&2; exit 1; }
by_state() {  # the instant vector of sum by (state) (billflow_deliveries) as STATE=N,... (zeros left out)
  curl -s --get "http://127.0.0.1:$port/api/v1/query" \
    --data-urlencode 'query=sum by (state) (billflow_deliveries)' | python3 -c '
import json, sys
doc = json.load(sys.stdin)
result = doc["data"]["result"] if doc.get("status") == "success" else []
pairs = sorted((r["metric"].get("state", ""), int(float(r["value"][1]))) for r in result)
print(",".join(f"{s}={n}" for s, n in pairs if n != 0))'
}
ok=0
for _ in $(seq 100); do
  states_prom=$(by_state)
  if [ "$states_prom" = "$states_db" ]; then ok=1; break; fi
  sleep 0.2
  states_db=$(stack psql -At -c "SELECT coalesce (string_agg (state || '=' || n, ',' ORDER BY state), '')
    FROM (SELECT state, count(*) AS n FROM delivery GROUP BY state) s")
done
echo "prometheus.sh: notices by state: database $states_db; Prometheus $states_prom"
[ "$ok" = 1 ] || { echo "prometheus.sh: Prometheus's notices by state differ from the database" >&2; exit 1; }

# BF_SCREENSHOT=FILE.png: Prometheus's graph page with some of the
# dashboard's queries over the cycle, rendered by headless Chromium
# (docs/observability.md shows it).
if [ -n "${BF_SCREENSHOT:-}" ]; then
  url=$(python3 - "$port" <<'PY'
import sys, urllib.parse
queries = [
    "sum(rate(billflow_bills_written_total[15s]))",
    "sum(rate(billflow_settle_chunks_committed_total[15s]))",
    "histogram_quantile(0.95, sum by (le) (rate(billflow_settle_chunk_duration_seconds_bucket[15s])))",
]
params = {}
for i, q in enumerate(queries):
    params.update({f"g{i}.expr": q, f"g{i}.tab": "0", f"g{i}.range_input": "2m",
                   f"g{i}.stacked": "0", f"g{i}.show_exemplars": "0"})
print(f"http://127.0.0.1:{sys.argv[1]}/graph?" + urllib.parse.urlencode(params))
PY
)
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2400 \
    --virtual-time-budget=15000 --screenshot="$BF_SCREENSHOT" "$url" >/dev/null 2>&1 \
    || echo "prometheus.sh: chromium could not take the screenshot" >&2
fi
echo "prometheus.sh: OK"
