#!/usr/bin/env bash
# Benchmark: the web console (services/console) on a settled period of a
# million subscribers (issue 15).
#
#   bash bench/console.sh [SUBSCRIBERS] [SSE_SECONDS] [ROUNDS]
#                                          (defaults 1000000, 30 and 200)
#   bash bench/console.sh --stack DIR [SSE_SECONDS] [ROUNDS]
#
# (--stack: only the measurement, on a running scripts/stack stack in DIR
# whose newest period is final, e.g. one left by the steps of bench/e2e.sh;
# the console is started on it and stopped again.)
#
# Runs bench/e2e.sh SUBSCRIBERS (scripts/stack on a durable throwaway
# PostgreSQL: the data generated, the month's run started through control,
# settled and every notice sent and final) and, through its E2E_PROBE hook
# once the cycle is final, starts the console on that stack (scripts/stack
# start console, with a user made by `console adduser`, its password
# random) and measures, with bench/console_bench (HTTP, libcurl):
#   a. every call the pages make, each ROUNDS times on one keep-alive
#      connection as a browser does: each /api/query verb with the pages'
#      arguments (the subscriber, bill and contact lookups ask for another
#      subscriber each time, sampled by bench/query_bench --sample, their
#      phones and emails opened with the stack's PII key), /api/me,
#      /api/overview, the page shell and every static file it loads; and
#      20 logins (argon2id) with their logouts. Target: p99 < 100 ms each.
#      run.report, the whole period's reconciliation, is asked 200 times on
#      its own as the Run page asks it (wait=0: control's kept report at
#      once, docs/control.md "Reconciliation report"); billctl's exact
#      report (wait=1) is timed once for comparison.
#   b. 50 browsers on the overview: 50 event streams (/api/events) open at
#      once for SSE_SECONDS, then 1 for as long. For each: the overview
#      events each client received, the console's polls of control (its
#      counter, /metrics) and control's queries by verb
#      (billflow_control_queries_total), per second. Target: 1 poll a
#      second, whatever the number of browsers.
# Prints bench/e2e.sh's output, the machine's load, then the figures and
# the targets. The console runs with its defaults but two: 128 connections
# per client address (console.per_ip_connections, default 32), since every
# simulated browser comes from this machine, and no per-session rate to speak
# of (console.session_rate, default 20 a second), since console_bench is one
# session asking back to back. Run as root (as scripts/stack is).
# Internal: `bench/console.sh --probe begin|end DIR` is the hook itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --stack ]; then
  [ $# -ge 2 ] && [ -f "$2/env" ] || { echo "console: --stack needs a stack directory (scripts/stack)" >&2; exit 2; }
  CONSOLE_SECONDS=${3:-30} CONSOLE_ROUNDS=${4:-200} bash "$0" --probe end "$2"
  exit $?
fi
if [ "${1:-}" != --probe ]; then
  n=${1:-1000000}
  seconds=${2:-30}
  rounds=${3:-200}
  [[ $n =~ ^[1-9][0-9]{0,8}$ ]] || { echo "console: bad SUBSCRIBERS '$n' (a positive whole number)" >&2; exit 2; }
  [[ $seconds =~ ^[1-9][0-9]{1,3}$ ]] || { echo "console: bad SSE_SECONDS '$seconds' (10 or more)" >&2; exit 2; }
  [[ $rounds =~ ^[1-9][0-9]{0,4}$ ]] || { echo "console: bad ROUNDS '$rounds'" >&2; exit 2; }
  bash scripts/bootstrap >/dev/null
  [ -f build/build.ninja ] || meson setup build >/dev/null
  meson compile -C build >/dev/null
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  # 50 browsers on one machine share one address: the console's
  # per-address connection limit (default 32) would refuse the last ones.
  export BILLFLOW_CONSOLE_PER_IP_CONNECTIONS=${BILLFLOW_CONSOLE_PER_IP_CONNECTIONS:-128}
  # console_bench asks each verb 200 times back to back from one session,
  # for the service's latency: far over one person's rate
  # (console.session_rate 20 a second), which would answer most of them 429.
  export BILLFLOW_CONSOLE_SESSION_RATE=${BILLFLOW_CONSOLE_SESSION_RATE:-100000}
  export BILLFLOW_CONSOLE_SESSION_BURST=${BILLFLOW_CONSOLE_SESSION_BURST:-100000}
  CONSOLE_OUT=$out CONSOLE_SECONDS=$seconds CONSOLE_ROUNDS=$rounds \
    E2E_PROBE="bash bench/console.sh --probe" bash bench/e2e.sh "$n"
  echo
  cat "$out"
  grep -q '^console: FAILED' "$out" && exit 1
  exit 0
fi

# ---------------------------------------------------------------------------
# The probe: nothing at `begin`; at `end` (the cycle final) the measurement,
# written to $CONSOLE_OUT (stdout when unset).
[ $# -eq 3 ] || { echo "console: usage: bench/console.sh --probe begin|end DIR" >&2; exit 2; }
[ "$2" = end ] || exit 0
dir=$3
[ -f "$dir/env" ] || { echo "console: $dir is not a stack directory (no env file)" >&2; exit 1; }
seconds=${CONSOLE_SECONDS:-30}
rounds=${CONSOLE_ROUNDS:-200}
[[ $seconds =~ ^[1-9][0-9]{1,3}$ ]] || { echo "console: bad SSE_SECONDS '$seconds' (10 or more)" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]{0,4}$ ]] || { echo "console: bad ROUNDS '$rounds'" >&2; exit 2; }
exec >"${CONSOLE_OUT:-/dev/stdout}" 2>&1
stack() { bash scripts/stack --dir "$dir" "$@"; }
fail() {   # as the hook: exit 0, so that bench/e2e.sh goes on and the outer call prints this
  echo "console: FAILED: $*"
  stack stop console >/dev/null 2>&1 || true
  [ -n "${CONSOLE_OUT:-}" ] && exit 0
  exit 1
}

period=$(bash scripts/stack --dir "$dir" psql -XAtc "SELECT max (period) FROM settlement_run") \
  || fail "no settlement run in the stack's database"
[ -n "$period" ] || fail "no settlement run in the stack's database"
work="$dir/console-bench"
mkdir -p "$work"

# The user: a new name each time (a stack may be measured again), a random
# password, given to `console adduser` on stdin.
user=bench-$$-$RANDOM
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$work/password"
chmod 600 "$work/password"
stack adduser "$user" operator <"$work/password" >"$work/adduser.log" 2>&1 \
  || { cat "$work/adduser.log"; fail "console adduser"; }
stack start console >"$work/start.log" 2>&1 || { cat "$work/start.log"; fail "scripts/stack start console"; }
# Its ports: the stack writes them into DIR/env once it runs.
addr=$(sed -n "s/^export BILLFLOW_CONSOLE_LISTEN='\(.*\)'$/\1/p" "$dir/env" | tail -1)
console_http=$(sed -n "s/^export BILLFLOW_CONSOLE_HTTP='\(.*\)'$/\1/p" "$dir/env" | tail -1)
control_http=$(sed -n "s/^export BILLFLOW_CONTROL_HTTP='\(.*\)'$/\1/p" "$dir/env" | tail -1)
url="http://$addr"

# Subscribers to ask for: ids, bill ids, phones and emails of the period.
( for v in $(compgen -v BILLFLOW_ || true); do unset "$v"; done
  . "$dir/env"
  build/bench/query_bench --sample -n "$rounds" -p "$period" ) >"$work/sample.tsv" \
  || fail "query_bench --sample"
[ -s "$work/sample.tsv" ] || fail "no subscribers with bills of $period to sample"

# The pages' calls, one line "LABEL<TAB>PATH" each, ROUNDS rounds.
curl -fsS --max-time 10 "$url/" >"$work/index.html" || fail "GET / of the console"
# The Run page's chart reads run.rates of the period's newest run.
run_id=$(stack psql -XAtc "SELECT coalesce (max (run_id), 0) FROM settlement_run WHERE period = '$period'")
python3 - "$work" "$period" "$rounds" "$url" "$run_id" <<'PY' || fail "making the request list"
import re, sys, urllib.parse, urllib.request
work, period, rounds, url, run_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
sample = [line.rstrip('\n').split('\t') for line in open(f'{work}/sample.tsv') if line.strip()]
ids = [s[0] for s in sample]
bills = [s[1] for s in sample]
phones = [s[2] for s in sample if len(s) > 2 and s[2]]
emails = [s[3] for s in sample if len(s) > 3 and s[3]]
q = lambda verb, **args: f'/api/query/{verb}' + ('?' + urllib.parse.urlencode(args) if args else '')
# Static: the shell, what it links, what those modules import (one level
# deeper each time, until nothing new), and Chart.js.
static = set()
html = open(f'{work}/index.html', encoding='utf-8').read()
found = set(re.findall(r'''(?:src|href)="(/static/[^"?#]+)"''', html)) | {'/static/chart.esm.js'}
todo = sorted(found)
while todo:
    path = todo.pop()
    if path in static:
        continue
    static.add(path)
    if path.endswith('.js'):
        body = urllib.request.urlopen(url + path, timeout=10).read().decode('utf-8', 'replace')
        # import/export statements only (Chart.js's comments name types
        # with import("..."), which are not files it loads).
        for ref in re.findall(r'''^\s*(?:import|export)\b[^;'"]*?(?:from\s*)?['"](\.{1,2}/[^'"]+|/static/[^'"]+)['"]''',
                              body, re.M):
            todo.append(urllib.parse.urljoin(path, ref))
with open(f'{work}/requests.tsv', 'w') as out:
    for r in range(rounds):
        i = r % len(ids)
        rows = [
            ('login page: GET /', '/'),
            ('GET /api/me', '/api/me'),
            ('overview: GET /api/overview', '/api/overview'),
            ('overview: services.list', q('services.list')),
            ('run: runs.list', q('runs.list')),
            ('run: run.show', q('run.show', period=period)),
            ('run: run.rates', q('run.rates', run_id=run_id)),
            ('notices: deliveries.summary', q('deliveries.summary', period=period)),
            ('notices: deliveries.failures', q('deliveries.failures', period=period, limit='50')),
            ('subscriber: find by id', q('subscriber.find', subscriber_id=ids[i])),
            ('subscriber: subscriber.timeline', q('subscriber.timeline', subscriber_id=ids[i])),
            ('subscriber: bill.show', q('bill.show', bill_id=bills[i])),
            ('templates: templates.list', q('templates.list')),
            ('templates: template.show', q('template.show', channel='EMAIL', version='1')),
            ('templates: template.preview', q('template.preview', channel='SMS', version='1',
                                              bill_id=bills[i])),
            ('audit: audit.list', q('audit.list')),
            ('audit: commands.list', q('commands.list')),
            ('audit: control.status', q('control.status')),
        ]
        if phones:
            rows.append(('subscriber: find by phone', q('subscriber.find', phone=phones[r % len(phones)])))
        if emails:
            rows.append(('subscriber: find by email', q('subscriber.find', email=emails[r % len(emails)])))
        rows += [(f'static: {p}', p) for p in sorted(static)]
        for label, path in rows:
            out.write(f'{label}\t{path}\n')
# The reconciliation report as the Run page asks it (wait=0: control's kept
# report, recomputed in the background when the period changed): 200
# rounds, in a run of their own.
with open(f'{work}/report.tsv', 'w') as out:
    for r in range(200):
        out.write(f"run: run.report wait=0\t{q('run.report', period=period, wait='0')}\n")
print(f'{len(static)} static files, {len(ids)} subscribers sampled')
PY

metric_sum() {   # URL NAME-REGEX: the sum of the matching samples of URL's /metrics
  curl -fsS --max-time 5 "$1/metrics" | awk -v re="$2" '$0 !~ /^#/ && $1 ~ re { s += $NF } END { printf "%.0f\n", s }'
}
by_verb() {   # the control's query counters by verb, "verb count" lines
  curl -fsS --max-time 5 "http://$control_http/metrics" \
    | sed -n 's/^billflow_control_queries_total{verb="\([^"]*\)"} \([0-9.e+]*\)$/\1 \2/p'
}
polls() { metric_sum "http://$console_http" '^billflow_console_polls_total'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== the console on the stack of $period ($(stack psql -XAtc "SELECT count(*) FROM subscriber") subscribers," \
     "$(stack psql -XAtc "SELECT count(*) FROM bill WHERE period = '$period'") bills," \
     "$(stack psql -XAtc "SELECT count(*) FROM delivery WHERE period = '$period'") notices)"
echo "load average before: $(load) on $(nproc) cores"
echo
echo "== a. the pages' calls, each $rounds times (target: p99 < 100 ms)"
build/bench/console_bench "$url" "$user" --password-file "$work/password" --requests "$work/requests.tsv" \
  --logins 20 --target-ms 100 || fail "console_bench (requests)"
echo
echo "== a'. the Run page's reconciliation report (run.report wait=0), 200 times"
build/bench/console_bench "$url" "$user" --password-file "$work/password" --requests "$work/report.tsv" \
  --target-ms 100 || echo "console: run.report did not answer 200 every time (above)"
t0=$(date +%s%N)
if "$dir/billctl" --timeout 60000 run report "$period" >/dev/null 2>&1; then
  echo "  for comparison, billctl run report (timeout 60 s) took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
else
  echo "  for comparison, billctl run report (timeout 60 s) failed after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
fi
echo "load average after: $(load)"

sse() {   # CLIENTS: the streams for $seconds; polls counted while they are all open
  local clients=$1 p0 p1 t0 t1 open bench window
  build/bench/console_bench "$url" "$user" --password-file "$work/password" \
    --sse "$clients" --seconds "$seconds" >"$work/sse.out" 2>&1 &
  bench=$!
  # The window: from 3 s after the start (the login, argon2id, and the
  # streams opening) to 2 s before their end.
  window=$(( seconds - 5 ))
  sleep 3
  by_verb >"$work/verbs.0"
  p0=$(polls) || fail "the console's /metrics"
  t0=$(date +%s.%N)
  sleep $(( window / 2 ))
  open=$(metric_sum "http://$console_http" '^billflow_console_streams') || open="?"
  sleep $(( window - window / 2 ))
  p1=$(polls)
  t1=$(date +%s.%N)
  by_verb >"$work/verbs.1"
  wait "$bench" || { cat "$work/sse.out"; fail "console_bench --sse $clients"; }
  grep -v '^console_bench: ok' "$work/sse.out" || true
  echo "  streams open at the console in the window (billflow_console_streams): $open"
  awk -v c="$clients" -v a="$p0" -v b="$p1" -v t0="$t0" -v t1="$t1" 'BEGIN {
    s = t1 - t0; printf "%d browser(s): the console polled control %d times in %.1f s: %.2f polls/s (target 1/s)\n", c, b - a, s, (b - a) / s }'
  awk -v t0="$t0" -v t1="$t1" 'NR == FNR { before[$1] = $2; next }
    { d = $2 - before[$1]; if (d > 0) { line = line sprintf(" %s %.2f/s,", $1, d / (t1 - t0)); total += d } }
    END { sub(/,$/, "", line); printf "  control answered %.2f queries/s:%s\n", total / (t1 - t0), line }' \
    "$work/verbs.0" "$work/verbs.1"
}
echo
echo "== b. browsers on the live overview, $seconds s each (target: 1 poll a second, whatever the number)"
sse 50
sse 1
echo "load average at the end: $(load)"
stack stop console >/dev/null 2>&1 || true
echo "console: done"
