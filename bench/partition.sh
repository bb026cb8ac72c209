#!/usr/bin/env bash
# The partition and full-disk tests at full size (issue 16): the scenarios of
# tests/partition (network namespaces, one veth pair per pair of nodes that
# talk, PostgreSQL in its own namespace; as root) with SUBSCRIBERS, notify at
# its default send rates (no limit) instead of the CI's 40 a second, and, for
# full-disk and full-wal, a tmpfs sized for the data. First the same stack's
# run without a fault (scenario "clean"), to compare each run's time with.
#
#   bash bench/partition.sh [SUBSCRIBERS] [SCENARIO...]
#
# SUBSCRIBERS: default 100000. SCENARIO: notify-db notify-db-drop relay-db control-db
# notify-settle provider-loss chaos full-disk full-wal (default: all). Every
# scenario ends with the chaos test's checks (bills' checksum equal to a
# clean settle --once run's, every notice final, one message per delivered
# notice at the mock provider, which is strict). Prints the test's lines
# ("# partition ...") as it goes, then a table per scenario: when a service
# noticed the fault (the standby's takeover after the cut; "-" where no
# service gets an error: a silent cut or a link down only stalls), when work
# resumed and when every notice was final after the heal (or the space came
# back), the run's time from run.start to every notice final against the
# clean run's, and whether the checks passed.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(notify-db notify-db-drop relay-db control-db notify-settle provider-loss chaos full-disk full-wal)
[ "$(id -u)" -eq 0 ] || { echo "partition.sh: needs root (network namespaces, tmpfs)"; exit 1; }

. bench/fullsize.sh
fullsize_build
export BF_PARTITION_SUBSCRIBERS=$n BF_PARTITION_RATE=${BF_PARTITION_RATE:-0}
# The disk scenarios' tmpfs: PostgreSQL's data directory with two databases
# of n subscribers (the clean reference and the stack's) and their WAL.
export BF_DISK_MB=${BF_DISK_MB:-$(( 192 + n * 3 / 100 ))}
log=partition-$$
echo "partition: $n subscribers, notify rate ${BF_PARTITION_RATE} (0: no limit), disk ${BF_DISK_MB} MB; scenarios: clean ${scenarios[*]}"
start=$(date +%s)
status=0
meson test -C build --suite partition partition --timeout-multiplier 0 --logbase "$log" \
  --test-args "clean ${scenarios[*]}" -v 2>&1 | grep -E '^# |^(ok|not ok) |^partition: ' || true
grep -q '^not ok ' "build/meson-logs/$log.txt" && status=1
grep -qE '^ok [0-9]+ - clean' "build/meson-logs/$log.txt" || status=1
echo "partition: $( [ $status -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s;" \
  "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# One row per scenario from its lines, which end with its TAP line.
awk '
  function num(text, re,   at) {
    if (!match(text, re)) return "-"
    at = substr(text, RSTART, RLENGTH); gsub(/[^0-9.]/, " ", at); split(at, f, " "); return f[1] " s"
  }
  /stack up in the namespaces/ { buf = "" }
  /^# / { buf = buf "\n" $0 }
  /^(ok|not ok) [0-9]+ - / {
    name = $NF; run = num(buf, "run [0-9.]+ s from run.start")
    runs[name] = run; order[++k] = name
    detect[name] = num(buf, "takeover [0-9.]+ s after the cut")
    resumed[name] = num(buf, "resumed [0-9.]+ s after the fault ended")
    done_[name] = num(buf, "done [0-9.]+ s after (the heal|the link was clean again|the last fault|space returned)")
    sums[name] = (match(buf, "checksum [0-9a-f:]+ \\(clean run [0-9a-f:]+\\)") ? substr(buf, RSTART, RLENGTH) : "")
    split(sums[name], c, /[ ()]+/)
    check[name] = ($1 == "ok" ? "passed" : "FAILED") (c[2] != "" && c[2] == c[5] ? ", checksum = clean" : "")
    if (match(buf, "delivered email [0-9]+ sms [0-9]+ push [0-9]+; provider accepted [0-9]+ / [0-9]+ / [0-9]+")) {
      split(substr(buf, RSTART, RLENGTH), d, /[^0-9]+/)
      check[name] = check[name] ((d[2] == d[5] && d[3] == d[6] && d[4] == d[7]) ? ", accepted = delivered (" d[2] + d[3] + d[4] ")" : ", accepted != delivered")
    }
    if (match(buf, "email: [0-9]+ second copies"))
      check[name] = check[name] ", " substr(buf, RSTART + 7, RLENGTH - 7)
  }
  END {
    printf "| scenario | detected | resumed after the heal | every notice final after the heal | run (clean run) | checks |\n"
    printf "|---|---|---|---|---|---|\n"
    for (i = 1; i <= k; i++) {
      s = order[i]
      printf "| %s | %s | %s | %s | %s (%s) | %s |\n", s, detect[s], resumed[s], done_[s], runs[s], runs["clean"], check[s]
    }
  }' "build/meson-logs/$log.txt"
echo
echo "full log: build/meson-logs/$log.txt"
exit $status
