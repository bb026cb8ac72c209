# Sourced by bench/notify.sh and bench/outage.sh (not run on its own): builds
# billflow, makes the work directory (removed on exit), the PII key and the
# event stream's CURVE keys, and exports what their steps need: billdata,
# settle, notify, mock (binaries), n, period, work, and the BILLFLOW_*
# settings of the keys. Expects n and period set and the repository root as
# the working directory.
bash scripts/bootstrap >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
export billdata=$PWD/build/tools/billdata/billdata settle=$PWD/build/services/settle/settle
export notify=$PWD/build/services/notify/notify mock=$PWD/build/tools/mockprovider/mockprovider
work=$(mktemp -d /tmp/billflow-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
"$billdata" keygen "$work/pii.key" >/dev/null
export BILLFLOW_PII_KEY_FILE="$work/pii.key" n period work
# The event stream is CURVE only (docs/settle.md): settle serves with its key,
# notify's key is the one service key in the list.
for k in settle notify; do "$PWD/build/services/billctl/billctl" keygen "$k" --dir "$work" >/dev/null; done
pubkey() { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$work/$1.key"; }
echo "notify service $(pubkey notify) notify" >"$work/allowed_keys"
chmod 600 "$work/allowed_keys"   # a file naming keys: owner only (docs/configuration.md)
export BILLFLOW_SETTLE_KEY_FILE="$work/settle.key_secret" BILLFLOW_SETTLE_ALLOWED_KEYS="$work/allowed_keys"
export BILLFLOW_NOTIFY_KEY_FILE="$work/notify.key_secret" BILLFLOW_NOTIFY_SETTLE_SERVER_KEY="$(pubkey settle)"
# The start of a steps script (bash, run by scripts/pgtmp): every process it
# records in pids is ended on exit; settle's stream endpoints are in the work
# directory; the schema is migrated.
steps_begin() {
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
  export BILLFLOW_SETTLE_PUB_ENDPOINT="ipc://$work/pub" BILLFLOW_SETTLE_REPLAY_ENDPOINT="ipc://$work/replay"
  "$billdata" migrate >/dev/null 2>&1
}
export -f steps_begin
