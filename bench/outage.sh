#!/usr/bin/env bash
# Fault at full size: the email provider down in the middle of a run (issue 16).
#
#   bash bench/outage.sh [SUBSCRIBERS]      (default 100000)
#
# On a throwaway PostgreSQL: generate and settle the period, start the mock
# provider with its defaults (email 1 s latency and 1 % transient failures),
# the settle service (for replay) and notify (breaker, retries and backoff at
# their defaults; email rate EMAIL_RATE, default 2000/s). When half the emails
# are accepted, the mail server goes down for OUTAGE_S seconds (default 300):
# the first half refusing connections, the second half greeting with 554
# (POST /v1/outage). Prints the breaker's changes (metrics and log lines), the
# outage's failures by the rule that told them (breaker, or no success of the
# provider since the attempt started) and the provider's back-offs, the
# time from the recovery until every notice is final and the drain rate, the
# FAILED count and SMS fallbacks (both must be 0: the mock rejects no one and
# 1 % failures do not exhaust 5 attempts), the retry budget the outage spent,
# and duplicates at the mock (must be 0).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
period=2026-10

. bench/notify_stack.sh
export OUTAGE_S=${OUTAGE_S:-300} EMAIL_RATE=${EMAIL_RATE:-2000}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo

cat >"$work/steps.sh" <<'STEPS'
set -euo pipefail
steps_begin
now_ms() { date +%s%3N; }
echo "== generate $n subscribers and settle $period"
"$billdata" generate --subscribers "$n" --period "$period" --seed 31 | tail -1
"$settle" --once --period "$period" 2>/dev/null
"$mock" --http-port 0 --smtp-port 0 > "$work/mock.out" 2> "$work/mock.err" & pids+=($!)
for _ in $(seq 100); do grep -q ready "$work/mock.out" 2>/dev/null && break; sleep 0.1; done
read -r http smtp < <(sed -n '1s/http=\([0-9]*\) smtp=\([0-9]*\)/\1 \2/p' "$work/mock.out")
"$settle" 2>"$work/settle.log" & pids+=($!)
expected=$(psql -X -At -c "SELECT count(*) FROM bill b JOIN subscriber s ON s.id = b.subscriber_id, unnest (s.channels) c")
emails=$(psql -X -At -c "SELECT count(*) FROM bill b JOIN subscriber s ON s.id = b.subscriber_id WHERE 'EMAIL' = ANY (s.channels)")
export BILLFLOW_NOTIFY_SETTLE_PUB_ENDPOINTS="ipc://$work/pub" BILLFLOW_NOTIFY_SETTLE_REPLAY_ENDPOINTS="ipc://$work/replay"
export BILLFLOW_NOTIFY_SMTP_URL="smtp://127.0.0.1:$smtp" BILLFLOW_NOTIFY_SMS_URL="http://127.0.0.1:$http" BILLFLOW_NOTIFY_PUSH_URL="http://127.0.0.1:$http"
export BILLFLOW_NOTIFY_CLOCK="$(date -d tomorrow +%Y-%m-%d)T10:00"
export BILLFLOW_NOTIFY_EMAIL_CONCURRENCY=${EMAIL_CONCURRENCY:-6000} BILLFLOW_NOTIFY_EMAIL_RATE=$EMAIL_RATE
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BILLFLOW_NOTIFY_HTTP="127.0.0.1:$nport"
echo "== notify: $expected notices, $emails emails; email rate $EMAIL_RATE/s, concurrency $BILLFLOW_NOTIFY_EMAIL_CONCURRENCY; outage ${OUTAGE_S} s"
t0=$(now_ms)
"$notify" 2>"$work/notify.log" & npid=$!; pids+=($npid)
accepted() { curl -s "http://127.0.0.1:$http/v1/report" | python3 -c 'import json,sys; print(json.load(sys.stdin)["email"]["accepted"])'; }
until [ "$(accepted)" -ge $((emails / 2)) ]; do sleep 0.2; done
half=$((OUTAGE_S * 500))
curl -sf -X POST "http://127.0.0.1:$http/v1/outage?channel=email&refuse_ms=$half&error_ms=$((OUTAGE_S * 1000 - half))" >/dev/null
down=$(now_ms)
echo "  $(( (down - t0) / 1000 ))s: email down with $(accepted) of $emails accepted (refused ${half} ms, then 554)"
sleep "$OUTAGE_S"
up=$(now_ms); at_up=$(accepted)
echo "  $(( (up - t0) / 1000 ))s: email back; $at_up accepted during and before the outage"
while true; do
  open=$(psql -X -At -c "SELECT count(*) FROM delivery WHERE state NOT IN ('DELIVERED','FAILED') AND NOT (state = 'HELD' AND hold_reason = 'quiet hours (subscriber)')")
  [ "$open" -eq 0 ] && break
  sleep 0.5
done
done_ms=$(now_ms)
drain=$((done_ms - up)); after=$(( $(accepted) - at_up ))
curl -s "http://127.0.0.1:$nport/metrics" > "$work/metrics"
echo
echo "== result"
echo "  drain: every notice final $((drain / 1000)).$(( (drain % 1000) / 100 )) s after the recovery; $after emails in it, $(( after * 1000 / (drain > 0 ? drain : 1) ))/s (configured $EMAIL_RATE/s)"
echo "  breaker (metrics): $(grep '^billflow_notify_breaker_changes_total{provider="email"' "$work/metrics" | sed 's/.*to="\([a-z_]*\)"} /\1 /' | tr '\n' ' ')"
echo "  breaker (log lines): opened $(grep -c 'email breaker opened' "$work/notify.log"), reopened $(grep -c 'email breaker reopened' "$work/notify.log"), half-open $(grep -c 'email breaker half-open' "$work/notify.log"), closed $(grep -c 'email breaker closed' "$work/notify.log")"
echo "  outage attempts (not counted against the budget): $(sed -n 's/^billflow_notify_outage_attempts_total{channel="email"} //p' "$work/metrics")"
echo "  of them told by: the breaker $(sed -n 's/^billflow_notify_provider_outage_failures_total{provider="email",rule="breaker"} //p' "$work/metrics"), no success since the attempt started $(sed -n 's/^billflow_notify_provider_outage_failures_total{provider="email",rule="no_success"} //p' "$work/metrics"); provider back-offs (log lines): $(grep -c 'email provider down' "$work/notify.log")"
echo "  notices failed past notify.outage_window_ms: $(sed -n 's/^billflow_notify_outage_expired_total{channel="email"} //p' "$work/metrics")"
psql -X -q -P footer=off <<'SQL'
SELECT count(*) FILTER (WHERE state = 'FAILED') AS failed,
       count(*) FILTER (WHERE fallback_of IS NOT NULL) AS sms_fallbacks,
       max(attempts - attempt_base) FILTER (WHERE channel = 'EMAIL') AS most_counted_attempts,
       count(*) FILTER (WHERE channel = 'EMAIL' AND attempt_base > 0) AS emails_with_outage_attempts
  FROM delivery;
SELECT outcome, count(*) AS email_attempts FROM delivery_attempt WHERE provider = 'email' GROUP BY 1 ORDER BY 1;
SQL
curl -s "http://127.0.0.1:$http/v1/report" | python3 -c '
import json, sys
r = json.load(sys.stdin)
e = r["email"]
print("  mock: email accepted %d, duplicate deliveries %d, recipients with more than one %s" % (
    e["accepted"], e["duplicate_deliveries"],
    sum(r[c]["recipients_over_one_total"] for c in ("email", "sms", "lms", "push"))))'
STEPS
scripts/pgtmp run -- bash "$work/steps.sh"
