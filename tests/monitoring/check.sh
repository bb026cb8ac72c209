#!/usr/bin/env bash
# Checks deploy/monitoring with promtool (Debian's prometheus package):
# the scrape configuration (every program's example port a static target),
# the alert rules, rule unit tests, and the
# Grafana dashboard's JSON and queries.
#
# Debian builds Prometheus without Kubernetes service discovery, so its
# promtool rejects `kubernetes_sd_configs`. Then the configuration is
# checked once more with that block swapped for a static target list:
# everything else (relabel rules, regexes, jobs, rule files) is still
# checked; an upstream promtool on PATH checks the file as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=deploy/monitoring
command -v promtool >/dev/null || { echo "check.sh: promtool not found (scripts/bootstrap installs prometheus)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== promtool check rules $dir/alerts.yml"
promtool check rules "$dir/alerts.yml"

echo "== promtool test rules tests/monitoring/alerts_test.yml"
promtool test rules tests/monitoring/alerts_test.yml

echo "== promtool check config $dir/prometheus.yml"
cp "$dir/prometheus.yml" "$dir/alerts.yml" "$work/"
if ! promtool check config "$work/prometheus.yml" >"$work/out" 2>&1; then
  if grep -q 'field kubernetes_sd_configs not found' "$work/out"; then
    echo "  this promtool has no Kubernetes discovery (Debian build): checking with a static target instead"
    python3 - "$work/prometheus.yml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
swapped, n = re.subn(r"kubernetes_sd_configs:\n(\s+)- role: pod\n",
                     r"static_configs:\n\1- targets: ['127.0.0.1:1']\n", text)
if n == 0:
    sys.exit("check.sh: no kubernetes_sd_configs block to swap")
open(path, "w").write(swapped)
PY
    promtool check config "$work/prometheus.yml"
  else
    cat "$work/out" >&2
    exit 1
  fi
else
  cat "$work/out"
fi

echo "== every program's example port (docs/observability.md) is a static target"
python3 - "$dir/prometheus.yml" docs/observability.md <<'PY'
import re, sys
config, doc = open(sys.argv[1]).read(), open(sys.argv[2]).read()
targets = dict(re.findall(r'- targets: \["([0-9.]+:\d+)"\]\n\s+labels: \{service: (\w+)\}', config))
ports = re.findall(r"^\| `(\w+)\.http` \| `BILLFLOW_\w+` \| `([0-9.]+:\d+)`", doc, re.M)
assert ports, "no example ports found in docs/observability.md"
missing = [f"{program} ({address})" for program, address in ports if targets.get(address) != program]
if missing:
    sys.exit("check.sh: no static target for " + ", ".join(missing))
print(f"  {len(ports)} programs, each a static target")
PY

echo "== dashboard $dir/grafana-dashboard.json: JSON, and every query parses"
python3 - "$dir/grafana-dashboard.json" >"$work/queries" <<'PY'
import json, sys
board = json.load(open(sys.argv[1]))
assert board.get("title"), "dashboard without a title"
n = 0
for panel in board["panels"]:
    for target in panel.get("targets", []):
        print(target["expr"].replace("$__rate_interval", "5m").replace("\n", " "))
        n += 1
assert n > 0, "no queries"
PY
# A rule file holding every query as a recording rule: promtool parses them.
{
  echo "groups:"
  echo "  - name: dashboard"
  echo "    rules:"
  i=0
  while IFS= read -r q; do
    i=$((i + 1))
    printf '      - record: dashboard:query%d\n        expr: %s\n' "$i" "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$q")"
  done <"$work/queries"
} >"$work/dashboard_rules.yml"
promtool check rules "$work/dashboard_rules.yml" | grep SUCCESS
echo "check.sh: deploy/monitoring OK"
