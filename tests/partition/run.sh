#!/usr/bin/env bash
# run.sh: the partition and full-disk tests (issue 16). Builds a small
# network of its own out of network namespaces, starts PostgreSQL inside it
# and runs itest_partition, which starts the mock provider, control, settle
# and notify each in its own namespace and cuts and heals their links.
#
#   tests/partition/run.sh ITEST_PARTITION [SCENARIO...]
#
# SCENARIO: notify-db notify-db-drop relay-db control-db notify-settle provider-loss
# chaos full-disk full-wal clean (default: all but clean, the run without
# a fault that bench/partition.sh compares with). Needs root (ip netns, mount) and iproute2;
# as another user it exits 77 (skipped). Every namespace, link, mount and
# cluster it makes is removed at the end, also on failure or Ctrl-C.
#
# The network (tests/partition/README.md): namespaces PREFIX-pg, -ctl1,
# -ctl2, -set1, -set2, -ntf, -mock and -ops (the test driver). Each node has
# the address 10.77.0.N/32 on its loopback; each pair of nodes that talk
# has its own veth pair "to-PEER" with a 10.77.K.0/30 network and routes to
# the peer's 10.77.0.N over it, so one pair's link is cut without touching
# any other. Nothing is added to the host's own interfaces.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ITEST=${1:?usage: run.sh ITEST_PARTITION [SCENARIO...]}
shift
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(notify-db notify-db-drop relay-db control-db notify-settle provider-loss chaos full-disk full-wal)

say() { echo "partition: $*"; }
if [ "$(id -u)" -ne 0 ]; then say "needs root (network namespaces, tmpfs): skipped"; exit 77; fi
command -v ip >/dev/null || { say "ip (iproute2) is missing: run scripts/bootstrap"; exit 1; }
command -v tc >/dev/null || { say "tc (iproute2) is missing: run scripts/bootstrap"; exit 1; }
command -v iptables >/dev/null || { say "iptables is missing: run scripts/bootstrap"; exit 1; }

PREFIX=bfp$$
BASE=$(mktemp -d /tmp/billflow-partition.XXXXXX)
chmod 755 "$BASE"
NODES=(pg ctl1 ctl2 set1 set2 ntf mock ops)
declare -A ID=([pg]=1 [ctl1]=11 [ctl2]=12 [set1]=21 [set2]=22 [ntf]=31 [mock]=41 [ops]=51)
LINKS=("pg ctl1" "pg ctl2" "pg set1" "pg set2" "pg ntf" "pg ops"
       "ctl1 set1" "ctl1 set2" "ctl1 ntf" "ctl2 set1" "ctl2 set2" "ctl2 ntf"
       "set1 ntf" "set2 ntf" "ntf mock" "ops ctl1" "ops ctl2" "ops mock")
MOUNTED=""
PG_DIRS=()

cleanup() {
  local rc=$?
  trap '' INT TERM
  local d
  for d in "${PG_DIRS[@]}"; do bash "$ROOT/scripts/pgtmp" stop "$d" >/dev/null 2>&1 || true; done
  [ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true
  local n
  for n in "${NODES[@]}"; do ip netns del "$PREFIX-$n" 2>/dev/null || true; done
  rm -rf "$BASE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

net_up() {
  local n k=1 a b
  for n in "${NODES[@]}"; do
    ip netns add "$PREFIX-$n"
    ip -n "$PREFIX-$n" link set lo up
    ip -n "$PREFIX-$n" addr add "10.77.0.${ID[$n]}/32" dev lo
  done
  for pair in "${LINKS[@]}"; do
    read -r a b <<<"$pair"
    ip -n "$PREFIX-$a" link add "to-$b" type veth peer name "to-$a" netns "$PREFIX-$b"
    ip -n "$PREFIX-$a" addr add "10.77.$k.1/30" dev "to-$b"
    ip -n "$PREFIX-$b" addr add "10.77.$k.2/30" dev "to-$a"
    ip -n "$PREFIX-$a" link set "to-$b" up
    ip -n "$PREFIX-$b" link set "to-$a" up
    ip -n "$PREFIX-$a" route add "10.77.0.${ID[$b]}/32" via "10.77.$k.2" dev "to-$b"
    ip -n "$PREFIX-$b" route add "10.77.0.${ID[$a]}/32" via "10.77.$k.1" dev "to-$a"
    k=$((k + 1))
  done
}

# PostgreSQL in PREFIX-pg, listening on 10.77.0.1 too; trust for the
# namespaces' network only (the cluster is throwaway, as pgtmp's).
pg_up() {   # DIR -> exports PGHOST PGPORT PGUSER PGDATABASE
  local dir=$1
  eval "$(ip netns exec "$PREFIX-pg" bash "$ROOT/scripts/pgtmp" start --fast "$dir")"
  PG_DIRS+=("$dir")
  echo "listen_addresses = '127.0.0.1,10.77.0.1'" >>"$dir/data/postgresql.conf"
  echo "host all all 10.77.0.0/16 trust" >>"$dir/data/pg_hba.conf"
  ip netns exec "$PREFIX-pg" bash "$ROOT/scripts/pgtmp" restart "$dir"
}

start=$(date +%s)
net_up
say "network of ${#NODES[@]} namespaces and ${#LINKS[@]} links up ($PREFIX-*)"

NET=()
DISK=()
for s in "${SCENARIOS[@]}"; do
  case "$s" in
    full-disk|full-wal) DISK+=("$s") ;;
    notify-db|notify-db-drop|relay-db|control-db|notify-settle|provider-loss|chaos|clean) NET+=("$s") ;;
    *) say "unknown scenario '$s'"; exit 2 ;;
  esac
done

status=0
export BF_NETNS=$PREFIX
# provider-loss's delay without netem (bf_delayproxy.c), built beside the test.
export BF_DELAYPROXY=${BF_DELAYPROXY:-$(dirname "$ITEST")/bf_delayproxy}
if [ ${#NET[@]} -gt 0 ]; then
  pg_up "$BASE/pg"
  ip netns exec "$PREFIX-ops" "$ITEST" "${NET[@]}" || status=1
fi
if [ ${#DISK[@]} -gt 0 ]; then
  # PostgreSQL's data directory, WAL included, on a small tmpfs that the
  # test fills with a pad file and empties again.
  mkdir "$BASE/disk"
  mount -t tmpfs -o "size=${BF_DISK_MB:-192}m,mode=755" tmpfs "$BASE/disk"
  MOUNTED=$BASE/disk
  pg_up "$BASE/disk/pg"
  BF_DISK_DIR=$BASE/disk BF_PG_DIR=$BASE/disk/pg ip netns exec "$PREFIX-ops" "$ITEST" "${DISK[@]}" || status=1
fi
say "all scenarios took $(( $(date +%s) - start )) s"
exit $status
