#!/usr/bin/env bash
# The console's tests in a real browser (docs/console.md "Browser tests").
#   Starts a throwaway stack (scripts/stack: PostgreSQL, the mock provider,
#   control, settle, notify with CURVE keys), loads a small generated dataset
#   (billdata generate --out, then import, so the test knows every email and
#   phone in clear), makes two people with `scripts/stack adduser` (an
#   operator and a viewer, random passwords), starts the real console with
#   `scripts/stack start console` (its own key, role `console` in
#   control.allowed_keys, on ports the kernel picks), and
#   runs tests/browser/console.test.mjs (puppeteer-core driving Debian's
#   chromium, headless). Screenshots go to BUILD/browser-shots/, or to
#   --shots DIR (`--shots docs/console` refreshes the documentation's: a test
#   run never changes a tracked file). Everything it started is stopped and
#   removed at the end, also on failure or Ctrl-C.
#
#   bash tests/browser/run.sh [--build DIR] [--subscribers N] [--shots DIR] [--keep]
#
# Exit status: 0 every test passed, 1 a test failed or the set-up did.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

BUILD=$ROOT/build
SUBSCRIBERS=600
KEEP=0
SHOTS=
PERIOD=2026-11
SEED=15
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$(cd "${2:?--build needs a directory}" && pwd); shift 2 ;;
    --subscribers) SUBSCRIBERS=${2:?--subscribers needs a number}; shift 2 ;;
    --shots) SHOTS=${2:?--shots needs a directory}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "browser: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
SHOTS=${SHOTS:-$BUILD/browser-shots}
mkdir -p "$SHOTS" || { echo "browser: cannot make the screenshot directory '$SHOTS'" >&2; exit 2; }
SHOTS=$(cd "$SHOTS" && pwd)
[[ $SUBSCRIBERS =~ ^[1-9][0-9]{0,6}$ ]] || { echo "browser: bad --subscribers '$SUBSCRIBERS'" >&2; exit 2; }

say() { echo "browser: $*"; }
fail() { echo "browser: $*" >&2; exit 1; }

CHROMIUM=${BF_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "$CHROMIUM is missing (scripts/bootstrap installs the Debian package chromium)"
command -v node >/dev/null || fail "node is missing (scripts/bootstrap installs nodejs)"
command -v npm >/dev/null || fail "npm is missing (scripts/bootstrap installs npm)"
for p in services/console/console services/billctl/billctl tools/billdata/billdata; do
  [ -x "$BUILD/$p" ] || fail "$BUILD/$p is missing: build first (meson compile -C $BUILD)"
done

# puppeteer-core at the version package-lock.json pins; npm ci again only
# when the lock file changed.
lock_sum=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/browser/node_modules/.bf-lock 2>/dev/null)" != "$lock_sum" ]; then
  say "npm ci (puppeteer-core, pinned in tests/browser/package-lock.json)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"
  echo "$lock_sum" >tests/browser/node_modules/.bf-lock
fi

STATE=$(mktemp -d /tmp/billflow-browser.XXXXXX)
chmod 711 "$STATE"    # PostgreSQL (the user postgres when we are root) reaches STATE/stack/pg
# Chromium runs detached from this script's process group; its profile lives
# under STATE (TMPDIR), which is how the clean-up finds a browser left over.
stop_browsers() {
  local d pid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF -- "--user-data-dir=$STATE/" && kill -KILL "$pid" 2>/dev/null
  done
  return 0
}
cleanup() {
  local rc=$?
  trap '' INT TERM
  stop_browsers
  if [ "$rc" -ne 0 ] && [ -f "$STATE/stack/console.log" ]; then
    echo "---- last lines of the console's log ----" >&2
    tail -n 30 "$STATE/stack/console.log" >&2 || true
  fi
  if [ "$KEEP" = 1 ]; then
    say "kept the stack in $STATE (scripts/stack --dir $STATE down)"
  elif [ -f "$STATE/stack/stack.conf" ]; then
    scripts/stack --dir "$STATE/stack" down >/dev/null 2>&1 || true
    rm -rf "$STATE"
  else
    rm -rf "$STATE"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "data: $SUBSCRIBERS subscribers for $PERIOD (billdata generate --out)"
mkdir -m 700 "$STATE/data"
(for v in $(compgen -v BILLFLOW_ || true); do unset "$v"; done
 "$BUILD/tools/billdata/billdata" generate --subscribers "$SUBSCRIBERS" --period "$PERIOD" \
   --seed "$SEED" --out "$STATE/data") >"$STATE/data.log" 2>&1 \
  || { cat "$STATE/data.log" >&2; fail "billdata generate failed"; }

# Failed notices for "retry failed", while the run can still reach FINAL: the
# mock provider refuses the email address of a few subscribers who also have
# a phone or a push token (their bill is notified on the other channel).
# Nothing else fails permanently.
mapfile -t rejected < <(awk -F, 'NR > 1 && $3 != "" && $11 ~ /EMAIL/ && $11 ~ /SMS|PUSH/ && ($4 != "" || $14 != "") { print $3 }' \
  "$STATE/data/subscribers.csv" | head -n 8)
[ ${#rejected[@]} -ge 3 ] || fail "the dataset has too few subscribers with an email and another channel"
mock_flags="--email-fail-pct 0 --sms-fail-pct 0 --push-fail-pct 0 --fail-mode permanent --email-latency-ms 20"
for a in "${rejected[@]}"; do mock_flags+=" --reject-recipient $a"; done

# Small chunks and rate-limited channels, so that a run lasts long enough to
# be watched.
export BILLFLOW_SETTLE_CHUNK_SIZE=${BILLFLOW_SETTLE_CHUNK_SIZE:-20}
export BILLFLOW_NOTIFY_EMAIL_RATE=${BILLFLOW_NOTIFY_EMAIL_RATE:-40}
export BILLFLOW_NOTIFY_SMS_RATE=${BILLFLOW_NOTIFY_SMS_RATE:-40}
export BILLFLOW_NOTIFY_PUSH_RATE=${BILLFLOW_NOTIFY_PUSH_RATE:-40}
export BILLFLOW_CONSOLE_LOGIN_THREADS=2
say "stack: scripts/stack up (period $PERIOD)"
scripts/stack --dir "$STATE/stack" up --period "$PERIOD" --build "$BUILD" --mock-flags "$mock_flags" \
  >"$STATE/stack-up.log" 2>&1 || { cat "$STATE/stack-up.log" >&2; fail "the stack did not start"; }
S=$STATE/stack

in_stack() {   # runs "$@" with the stack's settings only
  ( for v in $(compgen -v BILLFLOW_ || true); do unset "$v"; done
    # shellcheck disable=SC1091
    . "$S/env"; "$@" )
}
say "data: billdata import"
in_stack "$BUILD/tools/billdata/billdata" import "$STATE/data" >>"$STATE/data.log" 2>&1 \
  || { cat "$STATE/data.log" >&2; fail "billdata import failed"; }

# scripts/stack makes the console's key and lists it with role console.
say "console key: role console in control.allowed_keys (scripts/stack)"
pub=$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$S/keys/console.key")
[ ${#pub} -eq 40 ] || fail "could not read the console's public key"
awk -v k="$pub" '$1 == "console" && $2 == "console" && $3 == k { f = 1 } END { exit !f }' "$S/keys/allowed_keys" \
  || fail "the stack's allowed_keys does not list the console's key with role console"

say "people: console adduser (an operator and a viewer)"
OP_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
VW_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$OP_PW" | scripts/stack --dir "$S" adduser kim operator \
  || fail "console adduser kim failed"
printf '%s\n' "$VW_PW" | scripts/stack --dir "$S" adduser lee viewer \
  || fail "console adduser lee failed"

# The console on ports the kernel picks (scripts/stack start console writes
# them into the stack's env): no port chosen here that another process could
# take first.
scripts/stack --dir "$S" start console >>"$STATE/stack-up.log" 2>&1 \
  || { tail -n 20 "$STATE/stack-up.log" >&2; fail "the console did not start"; }
addr=$(sed -n "s/^export BILLFLOW_CONSOLE_LISTEN='\(.*\)'$/\1/p" "$S/env" | tail -1)
[ -n "$addr" ] && [ "${addr##*:}" != 0 ] || fail "no console address in $S/env"
URL=http://$addr
say "console: $URL"
ready=0
for _ in $(seq 1 150); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/api/me" || true)
  [ "$code" = 401 ] && { ready=1; break; }
  sleep 0.2
done
[ "$ready" = 1 ] || fail "the console did not answer within 30 s"

say "chromium: $("$CHROMIUM" --version 2>/dev/null | head -1)"
rc=0
mkdir -m 700 "$STATE/tmp"
TMPDIR=$STATE/tmp BF_URL=$URL BF_PERIOD=$PERIOD BF_STATE=$S BF_DATA=$STATE/data BF_BUILD=$BUILD \
BF_OPERATOR=kim BF_OPERATOR_PW=$OP_PW BF_VIEWER=lee BF_VIEWER_PW=$VW_PW \
BF_CHROMIUM=$CHROMIUM BF_SHOTS=$SHOTS BF_TMP=$STATE \
  timeout -k 5 360 node --test --test-concurrency=1 tests/browser/console.test.mjs || rc=$?
[ "$rc" != 124 ] || echo "browser: the tests did not finish within 360 s" >&2
exit "$rc"
