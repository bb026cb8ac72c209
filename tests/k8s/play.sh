#!/usr/bin/env bash
# tests/k8s/play.sh — the demo overlay (deploy/k8s/overlays/demo) run on a
# real container engine with `podman kube play`, and a month's cycle through
# it (deploy/README.md, "What the CI proof covers"):
#   1. images: billflow and billflow-mock (scripts/image, its store reused),
#      and PostgreSQL 15 from the same Debian base (tests/k8s/play/);
#   2. renders tests/k8s/play (the demo with that PostgreSQL image) and turns
#      it into Pods (tests/k8s/play/topods.py: StatefulSets, the Job and the
#      CronJob as their pod templates, Services as /etc/hosts entries);
#   3. PostgreSQL, the migrate Job's pod, the subscribers (billdata generate),
#      then control x2, the mock, settle x2, notify x2 and the console; every
#      /readyz (the console's: control answers it) answers; the console logs in the
#      demo's user (POST /api/login) and serves the overview with that
#      session, and refuses a wrong password;
#   4. cycle A: the CronJob's pod starts the previous month's run; a second
#      run of it starts nothing (the command's stored answer, "replayed");
#      the run completes and `billctl run report` is final (every bill has a
#      final notice); its bills are exported;
#   5. cycle B: the same data in a fresh database, the CronJob's pod again,
#      one settle container killed mid-run: the run completes, the report is
#      final and the exported bills are byte-identical to cycle A's;
#   6. removes everything it made (pods, secrets, volumes, the network).
# Prints each step's time; the whole is bounded by --timeout.
#
#   tests/k8s/play.sh [--dir DIR] [--no-build] [--subscribers N] [--timeout SECONDS]
#     --dir DIR        scripts/image's store (default build-image/)
#     --no-build       use billflow's images in the store as they are (no
#                      scripts/image: a changed tree would rebuild them)
#     --subscribers N  subscribers of the cycle (default 10000: two chunks)
#     --timeout S      bound on the whole (default 1800)
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=build-image
subscribers=10000
limit=1800
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:-}; shift 2 || shift ;;
    --subscribers) subscribers=${2:-}; shift 2 || shift ;;
    --no-build) build=0; shift ;;
    --timeout) limit=${2:-}; shift 2 || shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "play: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$subscribers" =~ ^[1-9][0-9]*$ ]] || { echo "play: --subscribers needs a positive number" >&2; exit 2; }
[[ "$limit" =~ ^[1-9][0-9]*$ ]] || { echo "play: --timeout needs seconds" >&2; exit 2; }
[ -n "$dir" ] || { echo "play: --dir needs a directory" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "play: needs root (podman's store and network here)" >&2; exit 1; }

# The bound: the script runs again under timeout(1); SIGTERM runs the teardown.
if [ -z "${BILLFLOW_PLAY_BOUNDED:-}" ]; then
  exec env BILLFLOW_PLAY_BOUNDED=1 BILLFLOW_PLAY_BUILD=$build timeout --kill-after=60 "$limit" \
    "$0" --dir "$dir" --subscribers "$subscribers" --timeout "$limit"
fi

t_start=$(date +%s)
step_start=$t_start
step() {   # NAME: prints the time of the step that just ended
  local now
  now=$(date +%s)
  echo "play: step '$1' took $((now - step_start)) s"
  step_start=$now
}
fail() {
  echo "play: FAILED: $*" >&2
  exit 1
}

# -- 1. images ---------------------------------------------------------------
if [ "${BILLFLOW_PLAY_BUILD:-1}" = 1 ]; then
  scripts/image --dir "$dir" || fail "scripts/image failed"
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file
        --storage-driver overlay --root "$dir/storage" --runroot "$dir/run"
        --tmpdir "$dir/tmp")
export TMPDIR="$dir/tmp"
version=$(meson introspect --projectinfo meson.build \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
nofile=$(ulimit -Hn)
if [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ]; then nofile=65536; fi
ULIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=4096:4096")
# kube play has no --ulimit: the same limits as podman's defaults, from a
# containers.conf of our own (the machine's is untouched). Without them runc
# fails where the hard limits are lower than podman's default ones.
export CONTAINERS_CONF="$dir/play-containers.conf"
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n' "$nofile" "$nofile" \
  >"$CONTAINERS_CONF"
# kube play makes its pods' infra image locally from catatonit (nothing is
# pulled): Debian's package.
if ! command -v catatonit >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends catatonit >/dev/null \
    || fail "apt-get install catatonit failed"
fi
for image in "localhost/billflow:$version" "localhost/billflow-mock:$version"; do
  "${PODMAN[@]}" image exists "$image" || fail "$image is not in $dir (run scripts/image --dir $dir)"
done
"${PODMAN[@]}" build -f tests/k8s/play/postgres.Containerfile -t localhost/billflow-postgres:15 \
  --build-arg BASE=localhost/billflow-base:bookworm --network host "${ULIMITS[@]}" --layers . \
  >"$dir/build-postgres.log" 2>&1 \
  || { tail -20 "$dir/build-postgres.log" >&2; fail "building the PostgreSQL image (log: $dir/build-postgres.log)"; }
step "images"

# -- 2. render, pods ---------------------------------------------------------
work=$(mktemp -d "$dir/play.XXXXXX")
tag=bfplay$$
net=$tag
secrets=()
volumes=()
kube_net=
played=()
teardown() {
  local rc=$?
  trap - EXIT INT TERM
  echo "play: tearing down"
  local p
  for p in "${played[@]}"; do
    "${PODMAN[@]}" pod rm -f -t 2 "$p" >/dev/null 2>&1 || echo "play: warning: pod rm $p failed" >&2
  done
  for p in "${volumes[@]}"; do
    "${PODMAN[@]}" volume rm -f "$p" >/dev/null 2>&1 || echo "play: warning: volume rm $p failed" >&2
  done
  for p in "${secrets[@]}"; do
    "${PODMAN[@]}" secret rm "$p" >/dev/null 2>&1 || echo "play: warning: secret rm $p failed" >&2
  done
  "${PODMAN[@]}" network rm -f "$net" >/dev/null 2>&1 || true
  if [ -n "$kube_net" ]; then
    "${PODMAN[@]}" network rm -f "$kube_net" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  echo "play: all steps took $(( $(date +%s) - t_start )) s"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# kube play makes podman's default kube network when it is missing (even
# with --network): removed again at the end when it was made here.
kube_net=podman-default-kube-network
"${PODMAN[@]}" network exists "$kube_net" && kube_net=
"${PODMAN[@]}" network create "$net" >/dev/null || fail "podman network create"
subnet=$("${PODMAN[@]}" network inspect "$net" --format '{{range .Subnets}}{{.Subnet}}{{end}}')
[[ "$subnet" =~ ^([0-9]+\.[0-9]+\.[0-9]+\.)0/24$ ]] || fail "unexpected subnet '$subnet' of $net"
prefix=${BASH_REMATCH[1]}
kubectl kustomize tests/k8s/play >"$work/rendered.yaml" 2>"$work/kustomize.err" \
  || { cat "$work/kustomize.err" >&2; fail "kubectl kustomize tests/k8s/play"; }
python3 tests/k8s/play/topods.py "$work/rendered.yaml" "$work/out" "$prefix" \
  || fail "topods.py"

# name -> address, file, app
declare -A ADDR FILE
while IFS=$'\t' read -r name addr file _kind _app; do
  ADDR[$name]=$addr
  FILE[$name]=$file
done <"$work/out/pods.tsv"

for f in "$work/out/secrets/"*.json; do
  name=$(basename "$f" .json)
  "${PODMAN[@]}" secret create "$name" "$f" >/dev/null || fail "podman secret create $name"
  secrets+=("$name")
done
mapfile -t claims < <(python3 -c 'import sys,yaml; [print(d["metadata"]["name"]) for d in yaml.safe_load_all(open(sys.argv[1])) if d]' "$work/out/pvc.yaml")
if [ ${#claims[@]} -gt 0 ]; then
  "${PODMAN[@]}" kube play "$work/out/pvc.yaml" >/dev/null || fail "podman kube play of the claims"
  volumes+=("${claims[@]}")
fi

configmaps=$(printf '%s,' "$work/out/configmaps/"*.yaml)
configmaps=${configmaps%,}
play() {   # POD: plays it on the network at its address
  local out
  played+=("$1")
  out=$("${PODMAN[@]}" kube play --network "$net" --ip "${ADDR[$1]}" \
        --configmap "$configmaps" "${FILE[$1]}" 2>&1) \
    || { echo "$out" >&2; fail "podman kube play $1"; }
}
ctr() {   # POD: its one container's name
  "${PODMAN[@]}" pod inspect "$1" --format '{{range .Containers}}{{.Name}} {{end}}' \
    | tr ' ' '\n' | grep -v -- '-infra$' | grep . | head -1
}
finished() {   # POD SECONDS: waits for the pod's container to exit 0
  local c i state code
  c=$(ctr "$1")
  for ((i = 0; i < $2; i++)); do
    state=$("${PODMAN[@]}" inspect "$c" --format '{{.State.Status}} {{.State.ExitCode}}')
    code=${state#* }
    if [ "${state% *}" = exited ] && [ "$code" = 0 ]; then return 0; fi
    sleep 1
  done
  "${PODMAN[@]}" logs "$c" 2>&1 | tail -20 >&2
  fail "$1 did not finish with exit 0 in $2 s (state: $state)"
}
psql_db() {   # DATABASE SQL: one value from the demo database, over the pod network
  PGPASSWORD=demo-only psql -X -A -t -q -h "${ADDR[billflow-postgres-0]}" -U billflow -d "${1}" -c "$2"
}
# billdata or billctl in a throwaway container on the network, with the
# demo's keys: BIN ARGS...
secret_file() {   # SECRET KEY FILE: writes a Secret's key to FILE, 0400 10001
  python3 -c 'import sys,json,base64; d=json.load(open(sys.argv[1])); sys.stdout.buffer.write(base64.b64decode(d[sys.argv[2]]))' \
    "$work/out/secrets/$1.json" "$2" >"$3"
  chown 10001:10001 "$3"
  chmod 0400 "$3"
}
mkdir -p "$work/keys" "$work/export/a" "$work/export/b"
chown -R 10001:10001 "$work/export"
secret_file billflow-pii pii.key "$work/keys/pii.key"
secret_file billflow-billctl-key billctl.key_secret "$work/keys/billctl.key_secret"
server_key=$(python3 -c 'import sys,yaml; [print(d["data"]["control_server_key"]) for d in yaml.safe_load_all(open(sys.argv[1])) if d]' "$work/out/configmaps/billflow-public-keys.yaml")
tool() {   # BIN ARGS...
  local bin=$1
  shift
  "${PODMAN[@]}" run --rm --network "$net" --read-only --cap-drop all --user 10001:10001 \
    --security-opt no-new-privileges "${ULIMITS[@]}" -v "$work/keys:/keys:ro" \
    -v "$work/export:/export" \
    -e "BILLFLOW_DB_CONNINFO=host=${ADDR[billflow-postgres-0]} dbname=billflow user=billflow password=demo-only sslmode=disable" \
    -e BILLFLOW_PII_KEY_FILE=/keys/pii.key \
    -e "BILLFLOW_CONTROL_ENDPOINT=tcp://${ADDR[billflow-control-0]}:7100,tcp://${ADDR[billflow-control-1]}:7100" \
    -e BILLFLOW_CONTROL_CLIENT_KEY_FILE=/keys/billctl.key_secret \
    -e "BILLFLOW_CONTROL_SERVER_KEY=$server_key" \
    --entrypoint "/usr/local/bin/$bin" "localhost/billflow:$version" "$@"
}
step "render and pods"

# -- 3. PostgreSQL, migrate, data, services -----------------------------------
period=$(TZ=Asia/Seoul date -d "$(TZ=Asia/Seoul date +%Y-%m-01) -1 day" +%Y-%m)
echo "play: period $period (the month before this one in Asia/Seoul), $subscribers subscribers"
play billflow-postgres-0
pg_up() {
  local i
  for ((i = 0; i < 120; i++)); do
    PGPASSWORD=demo-only pg_isready -q -h "${ADDR[billflow-postgres-0]}" -U billflow -d billflow && return 0
    sleep 1
  done
  "${PODMAN[@]}" logs "$(ctr billflow-postgres-0)" 2>&1 | tail -20 >&2
  fail "PostgreSQL did not accept connections in 120 s"
}
pg_up
step "postgres"

migrate_and_generate() {
  play billflow-migrate
  finished billflow-migrate 180
  "${PODMAN[@]}" pod rm -f -t 2 billflow-migrate >/dev/null
  tool billdata generate --subscribers "$subscribers" --period "$period" >"$work/generate.log" 2>&1 \
    || { tail -20 "$work/generate.log" >&2; fail "billdata generate"; }
}
migrate_and_generate
step "migrate and generate"

services=()
for name in "${!ADDR[@]}"; do
  case "$name" in
    billflow-control-*|billflow-settle-*|billflow-notify-*|billflow-mock-*|billflow-console-*)
      services+=("$name") ;;
  esac
done
mapfile -t services < <(printf '%s\n' "${services[@]}" | sort)
for name in billflow-control-0 billflow-control-1 billflow-mock-a billflow-settle-a billflow-settle-b \
            billflow-notify-a billflow-notify-b billflow-console-a; do
  play "$name"
done
ready() {   # waits for every service's /readyz (the mock: its HTTP port)
  local name port i ok
  for ((i = 0; i < 120; i++)); do
    ok=1
    for name in "${services[@]}"; do
      case "$name" in
        billflow-control-*) port=9103 ;; billflow-settle-*) port=9101 ;;
        billflow-notify-*) port=9102 ;; billflow-mock-*) port=8025 ;;
        billflow-console-*) port=9104 ;;   # ready when control answers it
      esac
      if [ "$port" = 8025 ]; then
        curl -s -o /dev/null -m 2 "http://${ADDR[$name]}:$port/" || ok=0
      else
        curl -fs -o /dev/null -m 2 "http://${ADDR[$name]}:$port/readyz" || ok=0
      fi
    done
    [ $ok -eq 1 ] && return 0
    sleep 1
  done
  for name in "${services[@]}"; do
    echo "--- $name" >&2
    "${PODMAN[@]}" logs "$(ctr "$name")" 2>&1 | tail -5 >&2
  done
  fail "not every /readyz answered 200 in 120 s"
}
ready
# The console: the demo overlay's user logs in (billflow-console-users,
# deploy/README.md), and the session opens the overview (control's
# services.list and runs.list through the console's CURVE key, role
# console); a wrong password is refused. The cookie is Secure (TLS ends at
# the Ingress, which podman does not play): curl, in plain HTTP to the pod,
# sends it back by hand.
console_url="http://${ADDR[billflow-console-a]}:8080"
code=$(curl -s -o "$work/login.json" -w '%{http_code}' -m 10 -D "$work/login.headers" \
       -H 'Content-Type: application/json' -d '{"name": "demo", "password": "demo-console-only"}' \
       "$console_url/api/login") || true
[ "$code" = 200 ] && grep -q '"role": *"operator"' "$work/login.json" \
  || { cat "$work/login.json" >&2; fail "the console's login of demo answered $code"; }
session=$(sed -n 's/^[Ss]et-[Cc]ookie: *\(bf_session=[^;]*\);.*/\1/p' "$work/login.headers" | head -1)
[ -n "$session" ] || fail "the console's login set no bf_session cookie"
grep -i '^set-cookie: bf_session=' "$work/login.headers" | grep -q 'HttpOnly.*Secure\|Secure.*HttpOnly' \
  || fail "the console's session cookie is not HttpOnly and Secure: $(grep -i '^set-cookie' "$work/login.headers")"
# The first snapshot comes with the poller's first round (once a second).
for ((i = 0; i < 30; i++)); do
  code=$(curl -s -o "$work/overview.json" -w '%{http_code}' -m 10 -H "Cookie: $session" \
         "$console_url/api/overview") || true
  [ "$code" = 200 ] && grep -q '"services"' "$work/overview.json" \
    && grep -q '"error": *null' "$work/overview.json" && break
  sleep 1
done
[ "$code" = 200 ] && grep -q '"error": *null' "$work/overview.json" \
  || { head -c 500 "$work/overview.json" >&2; fail "the console's /api/overview answered $code"; }
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -H 'Content-Type: application/json' \
       -d '{"name": "demo", "password": "not-the-password"}' "$console_url/api/login") || true
[ "$code" = 401 ] || fail "the console answered a wrong password with $code, not 401"
echo "play: the console logs demo in (operator, an HttpOnly Secure cookie), serves the overview, refuses a wrong password"

# What podman made of the probes: a liveness probe becomes a healthcheck
# (run only by systemd timers, absent here); readiness and startup probes
# are not run by podman 4.3 — hence the /readyz checks above.
echo "play: podman's healthcheck of control: $("${PODMAN[@]}" inspect "$(ctr billflow-control-0)" --format '{{.Config.Healthcheck}}')"
user=$("${PODMAN[@]}" inspect "$(ctr billflow-settle-a)" --format 'user {{.Config.User}}, read-only root {{.HostConfig.ReadonlyRootfs}}, {{len .HostConfig.CapDrop}} capabilities dropped, {{len .HostConfig.CapAdd}} added')
echo "play: settle's container: $user"
step "services ready"

# -- 4. cycle A: the CronJob's pod, twice -------------------------------------
wait_final() {   # LABEL SECONDS: waits for `billctl run report` to be final
  local i
  for ((i = 0; i < $2; i += 5)); do
    if tool billctl run report "$period" >"$work/report.txt" 2>&1; then
      grep -q "Reconciliation report of $period: FINAL" "$work/report.txt" \
        || { cat "$work/report.txt" >&2; fail "$1: report exit 0 but not FINAL"; }
      return 0
    fi
    sleep 5
  done
  cat "$work/report.txt" >&2
  fail "$1: the period was not final in $2 s"
}
check_bills() {   # LABEL: the report's accounting, checked in the tables too
  local bills missing open states
  bills=$(psql_db billflow "SELECT count(*) FROM bill WHERE period = '$period'")
  [ "$bills" -gt 0 ] || fail "$1: no bills"
  missing=$(psql_db billflow "SELECT count(*) FROM bill b WHERE period = '$period' AND NOT EXISTS
    (SELECT 1 FROM delivery d WHERE d.bill_id = b.bill_id AND d.period = b.period)")
  [ "$missing" = 0 ] || fail "$1: $missing bills without any notice"
  open=$(psql_db billflow "SELECT count(*) FROM delivery WHERE period = '$period'
    AND state IN ('PENDING', 'SENDING', 'RETRY')")
  [ "$open" = 0 ] || fail "$1: $open notices still pending, sending or retrying"
  grep -q 'agrees with the runs' "$work/report.txt" || fail "$1: the bill table does not agree with the runs"
  states=$(psql_db billflow "SELECT string_agg(channel || ' ' || state || ' ' || n, ', ' ORDER BY channel, state)
    FROM (SELECT channel, state, count(*) n FROM delivery WHERE period = '$period' GROUP BY 1, 2) s")
  echo "play: $1: report FINAL; $bills bills, each with a notice, none in progress (notices: $states)"
}
export_bills() {   # NAME
  tool billdata export-bills --period "$period" "/export/$1" >/dev/null 2>"$work/export.err" \
    || { cat "$work/export.err" >&2; fail "billdata export-bills"; }
}

play billflow-run-start-1
finished billflow-run-start-1 120
"${PODMAN[@]}" logs "$(ctr billflow-run-start-1)" 2>&1 | sed 's/^/play: run-start-1: /' | head -8
step "cycle A: run start (CronJob pod)"
play billflow-run-start-2
finished billflow-run-start-2 120
"${PODMAN[@]}" logs "$(ctr billflow-run-start-2)" >"$work/run-start-2.log" 2>&1
grep -q 'nothing ran again' "$work/run-start-2.log" \
  || { cat "$work/run-start-2.log" >&2; fail "the CronJob's second run was not answered from the store"; }
runs=$(psql_db billflow "SELECT count(*) FROM settlement_run WHERE period = '$period'")
[ "$runs" = 1 ] || fail "the CronJob's second run made $runs runs of $period, not 1"
echo "play: the CronJob's second run: replayed, still one run of $period"
step "cycle A: run start again (replayed)"
wait_final "cycle A" 600
check_bills "cycle A"
export_bills a
step "cycle A: run completed, report final"

# -- 5. cycle B: fresh database, one settle killed mid-run -------------------
for name in "${services[@]}"; do
  "${PODMAN[@]}" pod stop -t 10 "$name" >/dev/null || fail "podman pod stop $name"
done
psql_db postgres "DROP DATABASE billflow WITH (FORCE)" >/dev/null || fail "dropping the database"
psql_db postgres "CREATE DATABASE billflow" >/dev/null || fail "creating the database"
migrate_and_generate
for name in "${services[@]}"; do
  "${PODMAN[@]}" pod start "$name" >/dev/null || fail "podman pod start $name"
done
ready
step "cycle B: fresh database, services ready"
play billflow-run-start-3
# The settle container whose worker holds the chunk lease is killed (SIGKILL)
# while it rates: its lease lapses (settle.lease_ms) and a worker of the
# other settle takes the chunk over.
killed=0
for ((i = 0; i < 1200; i++)); do
  owner=$(psql_db billflow "SELECT c.lease_owner FROM settlement_chunk c JOIN settlement_run r USING (run_id)
    WHERE r.period = '$period' AND c.state = 'CLAIMED' LIMIT 1")
  if [ -n "$owner" ]; then
    case "$owner" in
      *billflow-settle-a*) victim=billflow-settle-a ;;
      *billflow-settle-b*) victim=billflow-settle-b ;;
      *) fail "cannot tell which settle pod holds the lease '$owner'" ;;
    esac
    # The process itself, not `podman kill` (a stop by the user, which podman
    # never restarts): a crash, which the pod's restartPolicy Always restarts.
    pid=$("${PODMAN[@]}" inspect "$(ctr "$victim")" --format '{{.State.Pid}}')
    [[ "$pid" =~ ^[1-9][0-9]*$ ]] || fail "no process id for $victim"
    kill -KILL "$pid" || fail "kill -KILL $pid ($victim)"
    echo "play: killed settle (pid $pid) in $victim while it held a chunk ($owner)"
    killed=1
    break
  fi
  state=$(psql_db billflow "SELECT coalesce(max(state), '') FROM settlement_run WHERE period = '$period'")
  [ "$state" = COMPLETED ] && break
  sleep 0.05
done
[ $killed -eq 1 ] || fail "the run ended before a settle container could be killed while holding a chunk"
restarts=0
for ((i = 0; i < 60; i++)); do
  [ "$("${PODMAN[@]}" inspect "$(ctr "$victim")" --format '{{.State.Status}}')" = running ] \
    && [ "$("${PODMAN[@]}" inspect "$(ctr "$victim")" --format '{{.State.Pid}}')" != "$pid" ] && { restarts=1; break; }
  sleep 1
done
[ $restarts -eq 1 ] || fail "$victim's settle was not restarted after the kill"
echo "play: $victim's settle restarted (restartPolicy Always)"
finished billflow-run-start-3 120
step "cycle B: run start, settle killed"
wait_final "cycle B" 600
check_bills "cycle B"
echo "play: cycle B's chunks: $(psql_db billflow "SELECT string_agg('chunk ' || chunk_no || ' done by ' || done_by
  || ' after ' || attempts || ' claim(s)', ', ' ORDER BY chunk_no) FROM settlement_chunk")"
export_bills b
cmp -s "$work/export/a/bills.csv" "$work/export/b/bills.csv" \
  || fail "cycle B's bills differ from cycle A's (bills.csv)"
cmp -s "$work/export/a/bill_lines.csv" "$work/export/b/bill_lines.csv" \
  || fail "cycle B's bill lines differ from cycle A's (bill_lines.csv)"
echo "play: cycle B's $(($(wc -l <"$work/export/b/bills.csv") - 1)) bills and their lines are byte-identical to cycle A's"
step "cycle B: run completed, bills identical"

echo "play: ok"
