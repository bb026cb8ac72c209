#!/usr/bin/env bash
# Smoke test of the images scripts/image builds (it runs this with --smoke):
#   runtime image: every program (settle, notify, control, console, billctl,
#   billdata) answers --help with exit 0; the console starts with a key and a
#   user made in the image and answers /healthz and GET / inside its
#   container; run as the image's own user with a read-only
#   root filesystem, every capability dropped, no new privileges and no
#   network; that user is not root (image config and `id -u` inside); no
#   compiler, build or test tool is installed; the mock provider is not in it.
#   mock image: mockprovider --help exits 0 under the same restrictions, as
#   a non-root user, and the billflow programs are not in it.
# Prints one line per check and "smoke: N passed, N failed"; exits 1 when any
# check failed.
#
#   tests/image/smoke.sh RUNTIME_IMAGE MOCK_IMAGE
# The podman command comes from $BILLFLOW_PODMAN (scripts/image sets it, with
# its storage and runtime flags), else plain "podman"; the run's --ulimit
# flags from $BILLFLOW_ULIMITS (default: 1024 open files, 1024 processes).
set -uo pipefail

[ $# -eq 2 ] || { echo "usage: $0 RUNTIME_IMAGE MOCK_IMAGE" >&2; exit 2; }
runtime=$1
mock=$2
read -r -a PODMAN <<<"${BILLFLOW_PODMAN:-podman}"
read -r -a ULIMITS <<<"${BILLFLOW_ULIMITS:---ulimit nofile=1024:1024 --ulimit nproc=1024:1024}"

passed=0
failed=0
check() {   # NAME OK(0|1) [DETAIL]: records and prints one check
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "smoke: ok   $1"
  else
    failed=$((failed + 1)); echo "smoke: FAIL $1${3:+: $3}"
  fi
}
# run IMAGE [podman run options] -- ARGS: the image under the restrictions
# a production pod has; stdout and stderr together on stdout.
run() {
  local image=$1; shift
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  "${PODMAN[@]}" run --rm --read-only --cap-drop all --security-opt no-new-privileges \
    --network none "${ULIMITS[@]}" "${opts[@]}" "$image" "$@" 2>&1
}

for image in "$runtime" "$mock"; do
  "${PODMAN[@]}" image exists "$image" || { echo "smoke: image $image not found" >&2; exit 1; }
  user=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$image")
  case "$user" in
    ''|0|0:*|root|root:*) check "$image: configured user '$user' is not root" 1 ;;
    *) check "$image: configured user '$user' is not root" 0 ;;
  esac
  uid=$(run "$image" --entrypoint /usr/bin/id -- -u)
  [[ $uid =~ ^[1-9][0-9]*$ ]]
  check "$image: id -u inside is $uid (not 0)" $? "$uid"
  entry=$("${PODMAN[@]}" image inspect --format '{{json .Config.Entrypoint}}' "$image")
  [[ $entry == '["/'* ]]
  check "$image: exec-form entrypoint $entry" $?
  for label in version revision title source; do
    value=$("${PODMAN[@]}" image inspect \
      --format "{{index .Config.Labels \"org.opencontainers.image.$label\"}}" "$image")
    [ -n "$value" ] && [ "$value" != "<no value>" ]
    check "$image: label org.opencontainers.image.$label=$value" $?
  done
done

# Runtime image: each program's --help, through its own path.
for prog in settle notify control console billctl billdata; do
  out=$(run "$runtime" --entrypoint "/usr/local/bin/$prog" -- --help)
  rc=$?
  [ $rc -eq 0 ] && grep -qi usage <<<"$out"
  check "runtime: $prog --help (exit $rc)" $? "$(head -3 <<<"$out")"
done
# The console starts and serves: its key pair made by the image's billctl,
# a user by `console adduser` (password on stdin), then the console under
# the same restrictions (control is not there: it is a client and starts
# without it); inside the container, /healthz on its observability port
# and the page shell on its web port answer 200.
cdir=$(mktemp -d)
chown 10001:10001 "$cdir" 2>/dev/null || chmod 0777 "$cdir"
run "$runtime" -v "$cdir:/work" --entrypoint /usr/local/bin/billctl -- keygen console --dir /work >/dev/null
check "runtime: billctl keygen console" $?
out=$(printf 'smoke-test-password\n' | run "$runtime" -i -v "$cdir:/work" --entrypoint /usr/local/bin/console \
      -- adduser smoke --role operator --users /work/users)
check "runtime: console adduser (password on stdin)" $? "$out"
server_key=$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$cdir/console.key" 2>/dev/null)
cid=$("${PODMAN[@]}" run -d --read-only --cap-drop all --security-opt no-new-privileges --network none \
      "${ULIMITS[@]}" -v "$cdir:/work:ro" -e BILLFLOW_CONSOLE_USERS_FILE=/work/users \
      -e BILLFLOW_CONSOLE_KEY_FILE=/work/console.key_secret -e BILLFLOW_CONSOLE_LISTEN=127.0.0.1:8080 \
      -e BILLFLOW_CONSOLE_HTTP=127.0.0.1:9104 -e BILLFLOW_CONTROL_ENDPOINT=tcp://127.0.0.1:7100 \
      -e "BILLFLOW_CONTROL_SERVER_KEY=$server_key" --entrypoint /usr/local/bin/console "$runtime" 2>&1)
check "runtime: console starts (read-only, no capabilities, no network)" $? "$cid"
get() {   # PORT PATH: the status line of a GET inside the console's container
  "${PODMAN[@]}" exec "$cid" /bin/bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET $2 HTTP/1.0\r\n\r\n' >&3 && head -1 <&3" 2>&1 | tr -d '\r'
}
status=""
for _ in $(seq 1 20); do
  status=$(get 9104 /healthz)
  [[ $status == *" 200"* ]] && break
  sleep 0.5
done
[[ $status == *" 200"* ]]
check "runtime: console /healthz answers 200" $? "$status; $("${PODMAN[@]}" logs "$cid" 2>&1 | tail -3)"
status=$(get 8080 /)
[[ $status == *" 200"* ]]
check "runtime: console serves its page shell (GET / answers 200)" $? "$status"
"${PODMAN[@]}" rm -f -t 2 "$cid" >/dev/null 2>&1
rm -rf "$cdir"
# The image's default command (the entrypoint with CMD ["--help"]).
out=$(run "$runtime" --)
check "runtime: default command (billdata --help)" $? "$(head -3 <<<"$out")"

# No compiler, build or test tool: neither as package nor as program.
packages=$(run "$runtime" --entrypoint /usr/bin/dpkg-query -- -W -f '${Package}\n')
check "runtime: dpkg-query lists the packages" $? "$(head -3 <<<"$packages")"
bad=$(grep -E '^(gcc(-[0-9]+)?|cpp(-[0-9]+)?|g\+\+.*|clang.*|make|meson|ninja-build|pkg-config|pkgconf|binutils|libc6-dev|libcmocka.*|valgrind|gdb|protobuf-c-compiler|.*-dev)$' \
      <<<"$packages" | tr '\n' ' ')
[ -z "$bad" ]
check "runtime: no build or test package installed" $? "$bad"
found=$(run "$runtime" --entrypoint /usr/bin/find -- /usr/bin /usr/local/bin /usr/sbin \
        \( -name 'gcc*' -o -name cc -o -name c99 -o -name cpp -o -name 'cpp-[0-9]*' -o -name meson -o -name ninja \
           -o -name ld -o -name 'protoc*' -o -name mockprovider -o -name 'bf-embed' \) -print)
[ -z "$found" ]
check "runtime: no gcc, cc, meson, ninja, ld, protoc-c, mockprovider" $? "$found"
for prog in settle notify control console billctl billdata; do
  run "$runtime" --entrypoint /usr/bin/test -- -x "/usr/local/bin/$prog" >/dev/null
  check "runtime: /usr/local/bin/$prog is installed" $?
done

# Mock image.
out=$(run "$mock" --entrypoint /usr/local/bin/mockprovider -- --help)
rc=$?
[ $rc -eq 0 ] && grep -qi usage <<<"$out"
check "mock: mockprovider --help (exit $rc)" $? "$(head -3 <<<"$out")"
found=$(run "$mock" --entrypoint /usr/bin/find -- /usr/local/bin -type f ! -name mockprovider -print)
[ -z "$found" ]
check "mock: only mockprovider in /usr/local/bin" $? "$found"

echo "smoke: $passed passed, $failed failed"
[ $failed -eq 0 ]
