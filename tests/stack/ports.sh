#!/usr/bin/env bash
# stack-ports: scripts/stack comes up while other processes hold the ports a
# picker would have chosen (docs/harness.md "Ports").
#
#   bash tests/stack/ports.sh BUILDDIR
#
# A holder binds (without listening) 2000 random loopback ports in 20000-49999,
# the range the old free-port picker drew from: a connect probe, which is how
# that picker told a free port, sees each as free, and a service told to bind
# one fails with "Address already in use". The test checks that the probe is
# indeed fooled, then, with the ports held, starts a stack in a directory over
# 80 characters (so the ZeroMQ sockets go to a directory of their own),
# and checks: every program's /healthz answers on the port in DIR/env, which is
# the port its log names; `restart settle` and `start console` bring them up on
# new ports the same way; `down` removes the sockets' directory. Exit 0 on
# success, 1 on a failure (with the reason), 77 when python3 is missing (skip).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:?usage: ports.sh BUILDDIR}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
cd "$ROOT"
command -v python3 >/dev/null || { echo "stack-ports: python3 is missing: skipped"; exit 77; }

fail() { echo "stack-ports: FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

base=$(mktemp -d "${TMPDIR:-/tmp}/bf-ports.XXXXXX")
chmod 711 "$base"    # PostgreSQL (the user postgres when we are root) reaches DIR/pg
# DIR of 85 characters: over the stack's 80 for socket paths, under what
# PostgreSQL's own socket in DIR/pg needs (107 in all).
pad=$(( 85 - ${#base} - 1 ))
[ "$pad" -ge 1 ] || fail "TMPDIR is too long for this test ($base)"
dir=$base/$(printf 'd%.0s' $(seq 1 "$pad"))
holder=""
cleanup() {
  local rc=$?
  if [ -f "$dir/stack.conf" ]; then
    [ "$rc" = 0 ] || { echo "---- stack logs ----" >&2; tail -n 5 "$dir"/*.log >&2 || true; }
    bash scripts/stack --dir "$dir" down >/dev/null 2>&1 || true
  fi
  if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true; fi
  rm -rf "$base"
  exit "$rc"
}
trap cleanup EXIT

# The holder: binds, never listens, prints the ports, holds them until killed.
python3 - >"$base/held" 2>"$base/holder.err" <<'PY' &
import random, signal, socket, sys, time
held = []
for port in random.sample(range(20000, 50000), 2000):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    held.append(s)
    print(port)
print("held", len(held))
sys.stdout.flush()
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    time.sleep(1)
PY
holder=$!
for _ in $(seq 1 100); do grep -q '^held' "$base/held" && break; sleep 0.1; done
grep -q '^held' "$base/held" || { cat "$base/holder.err" >&2; fail "the port holder did not start"; }
nheld=$(sed -n 's/^held //p' "$base/held")
[ "$nheld" -ge 1000 ] || fail "the holder got only $nheld ports"
ok "holding $nheld ports in 20000-49999"

# The old picker's probe calls a held port free: a picked port could be one.
p=$(head -1 "$base/held")
if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then fail "a connect to held port $p succeeded"; fi
if python3 -c "import socket,sys; socket.socket().bind(('127.0.0.1', $p))" 2>/dev/null; then
  fail "held port $p could be bound"
fi
ok "held port $p: a connect probe sees it free, a bind fails (the race a picker loses)"

bash scripts/stack --dir "$dir" up --build "$BUILD" >"$base/up.log" 2>&1 \
  || { cat "$base/up.log" >&2; fail "stack up failed with the ports held"; }
ok "stack up with the ports held"

# shellcheck disable=SC1091
. "$dir/stack.conf"
[ -n "$SOCK_DIR" ] && [ -S "$SOCK_DIR/control.ipc" ] || fail "no control socket in a directory of its own (SOCK_DIR '$SOCK_DIR')"
grep -q "^export BILLFLOW_CONTROL_ENDPOINT='ipc://$SOCK_DIR/control.ipc'" "$dir/env" || fail "control's endpoint is not the socket"
ok "ZeroMQ sockets in $SOCK_DIR (no TCP port picked)"

addr() { sed -n "s/^export BILLFLOW_$1_HTTP='\(.*\)'$/\1/p" "$dir/env" | tail -1; }
check_http() {   # NAME: env's port is the one the log names, and /healthz answers there
  local name=$1 a port logged
  a=$(addr "${name^^}")
  port=${a##*:}
  [[ $port =~ ^[1-9][0-9]*$ ]] || fail "$name: no port in DIR/env ('$a')"
  logged=$(sed -n 's/.*http: serving \/metrics.* (port \([0-9]*\)).*/\1/p' "$dir/$name.log" | tail -1)
  [ "$port" = "$logged" ] || fail "$name: DIR/env has port $port, its log $logged"
  curl -fsS --max-time 5 -o /dev/null "http://$a/healthz" || fail "$name: no /healthz on $a"
  ok "$name: /healthz on $a (the port its log names)"
}
for name in control settle notify; do check_http "$name"; done

before=$(addr SETTLE)
bash scripts/stack --dir "$dir" restart settle >>"$base/up.log" 2>&1 || { tail -n 20 "$base/up.log" >&2; fail "restart settle"; }
check_http settle
[ "$(grep -c "http: serving /metrics" "$dir/settle.log")" -eq 2 ] || fail "settle: not two starts in its log"
ok "settle restarted (was $before, now $(addr SETTLE))"

head -c 18 /dev/urandom | base64 | tr -d '/+=' | bash scripts/stack --dir "$dir" adduser kim operator \
  >>"$base/up.log" 2>&1 || { tail -n 20 "$base/up.log" >&2; fail "adduser"; }
bash scripts/stack --dir "$dir" start console >>"$base/up.log" 2>&1 || { tail -n 20 "$base/up.log" >&2; fail "start console"; }
check_http console
web=$(sed -n "s/^export BILLFLOW_CONSOLE_LISTEN='\(.*\)'$/\1/p" "$dir/env" | tail -1)
curl -fsS --max-time 5 -o /dev/null "http://$web/" || fail "console: no page on $web"
ok "console pages on $web"

"$dir/billctl" --timeout 5000 services >/dev/null || fail "billctl services over the socket"
ok "billctl services"

bash scripts/stack --dir "$dir" --keep down >/dev/null 2>&1 || fail "stack down"
[ ! -e "$SOCK_DIR" ] || fail "down left $SOCK_DIR"
ok "down removed the sockets' directory"
