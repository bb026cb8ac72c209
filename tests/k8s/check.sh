#!/usr/bin/env bash
# tests/k8s/check.sh BUILD_DIR — the manifests of deploy/k8s proven without
# a cluster (meson test `k8s`, suite k8s; deploy/README.md, "What the CI
# proof covers"):
#   1. every overlay renders with `kubectl kustomize` (Debian's
#      kubernetes-client is installed when no kubectl is present), and, when
#      Debian's kubectl 1.20 (kustomize v2.0) can be had, renders the same
#      objects with it too;
#   2. every rendered object, and the production example Secrets, validate
#      against the Kubernetes API types with unknown fields as errors
#      (tests/k8s/validate.py over the npm package kubernetes-types, pinned
#      below and kept in BUILD_DIR/k8s-cache);
#   3. every pod template passes Pod Security "restricted" and the project's
#      rules (validate.py --restricted); the objects fit together (Services,
#      the console's Ingress and NetworkPolicies; validate.py --wiring) and
#      the demo brings every Secret, ConfigMap and allowed key it names
#      (--complete);
#   4. the checks are shown to bite: a misspelt readinesProbe, a removed API
#      version and a pod allowed to escalate privileges must each fail;
#   5. yamllint passes on deploy/ with deploy/.yamllint.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
mkdir -p "$build"
build=$(cd "$build" && pwd)
cache="$build/k8s-cache"
out="$build/k8s-check"
rm -rf "$out"
mkdir -p "$cache" "$out"

# kubernetes-types (TypeScript declarations generated from the API's OpenAPI
# schema, Kubernetes 1.30), pinned by version and checksum.
types_pkg=kubernetes-types
types_version=1.30.0
types_sha512='Dew1okvhM/SQcIa2rcgujNndZwU8VnSapDgdxlYoB84ZlpAD43U6KLAFqYo17ykSFGHNPrg0qry0bP+GJd9v7Q=='

passed=0
failed=0
pass() { echo "k8s: ok: $*"; passed=$((passed + 1)); }
fail() { echo "k8s: FAILED: $*"; failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}
apt_install() {  # PACKAGE: installs a Debian package (CI runs as root)
  echo "k8s: installing Debian's $1"
  if [ "$(id -u)" -ne 0 ]; then
    echo "k8s: $1 is missing and this is not root: install it (apt-get install $1)"
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >"$out/apt-$1.log" 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >"$out/apt-$1.log" 2>&1; } \
    || { tail -5 "$out/apt-$1.log"; return 1; }
}

# Debian's python3 (with python3-yaml, which yamllint depends on).
python=/usr/bin/python3
command -v yamllint >/dev/null || apt_install yamllint || { fail "yamllint unavailable"; finish; }
"$python" -c 'import yaml' 2>/dev/null || apt_install python3-yaml || { fail "python3-yaml unavailable"; finish; }
command -v kubectl >/dev/null || apt_install kubernetes-client || { fail "kubectl unavailable"; finish; }

# --- 1. render ---------------------------------------------------------------
overlays=()
for dir in deploy/k8s/overlays/*/; do
  overlays+=("$(basename "$dir")")
done
[ "${#overlays[@]}" -ge 2 ] || fail "expected the demo and production overlays, found: ${overlays[*]}"
for overlay in "${overlays[@]}"; do
  if kubectl kustomize "deploy/k8s/overlays/$overlay" >"$out/$overlay.yaml" 2>"$out/$overlay.err"; then
    pass "kubectl kustomize renders $overlay ($(grep -c '^kind:' "$out/$overlay.yaml") objects)"
  else
    cat "$out/$overlay.err"
    fail "kubectl kustomize $overlay"
  fi
done

# The same with kustomize v2.0 (Debian 12's kubectl 1.20), unpacked into the
# cache, not installed: the manifests avoid what v2.0 lacks.
old_kubectl="$cache/kubectl-1.20/usr/bin/kubectl"
if [ ! -x "$old_kubectl" ]; then
  (cd "$cache" && rm -f kubernetes-client_*.deb \
     && apt-get download kubernetes-client >/dev/null 2>&1 \
     && dpkg -x kubernetes-client_*.deb kubectl-1.20 && rm -f kubernetes-client_*.deb) || true
fi
if [ -x "$old_kubectl" ] && "$old_kubectl" version --client 2>/dev/null | grep -q 'Minor:"20"'; then
  for overlay in "${overlays[@]}"; do
    if "$old_kubectl" kustomize "deploy/k8s/overlays/$overlay" >"$out/$overlay.v2.yaml" 2>"$out/$overlay.v2.err" \
       && "$python" - "$out/$overlay.yaml" "$out/$overlay.v2.yaml" <<'EOF'
import sys, yaml
def objects(path):
    return {(d['kind'], d['metadata']['name']): d for d in yaml.safe_load_all(open(path)) if d}
new, old = objects(sys.argv[1]), objects(sys.argv[2])
diff = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
for kind, name in diff:
    print(f'differs between kustomize versions: {kind}/{name}')
sys.exit(1 if diff else 0)
EOF
    then
      pass "kubectl 1.20 (kustomize v2.0) renders $overlay to the same objects"
    else
      cat "$out/$overlay.v2.err"
      fail "kubectl 1.20 kustomize $overlay"
    fi
  done
else
  echo "k8s: note: Debian's kubectl 1.20 could not be fetched; kustomize v2.0 not checked"
fi

# --- 2, 3. validate ------------------------------------------------------------
types_dir="$cache/$types_pkg-$types_version"
if [ ! -f "$types_dir/package.json" ]; then
  rm -rf "$types_dir" "$cache/$types_pkg-$types_version.tgz"
  if (cd "$cache" && npm pack --silent "$types_pkg@$types_version" >/dev/null 2>"$out/npm.err"); then
    sum=$("$python" -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' \
      "$cache/$types_pkg-$types_version.tgz")
    if [ "$sum" != "$types_sha512" ]; then
      fail "$types_pkg-$types_version.tgz has checksum $sum, not the pinned one"
      finish
    fi
    mkdir -p "$types_dir"
    tar -xzf "$cache/$types_pkg-$types_version.tgz" -C "$types_dir" --strip-components=1
    rm -f "$cache/$types_pkg-$types_version.tgz"
  else
    cat "$out/npm.err"
    fail "cannot fetch $types_pkg@$types_version from npm"
    finish
  fi
fi
validate() { "$python" tests/k8s/validate.py --types "$types_dir" "$@"; }
for overlay in "${overlays[@]}"; do
  [ -s "$out/$overlay.yaml" ] || continue
  # The demo brings every Secret and ConfigMap it uses; production expects
  # the operator's (secrets.example.yaml).
  complete=()
  [ "$overlay" != demo ] || complete=(--complete)
  if validate --restricted --wiring "${complete[@]}" "$out/$overlay.yaml" >"$out/$overlay.problems" 2>&1; then
    pass "$overlay: every object validates strictly; every pod passes restricted; the objects fit together${complete:+, and every Secret, ConfigMap and key they name is there} ($(tail -1 "$out/$overlay.problems"))"
  else
    cat "$out/$overlay.problems"
    fail "$overlay does not validate"
  fi
done
if validate deploy/k8s/overlays/production/secrets.example.yaml >"$out/example.problems" 2>&1; then
  pass "production/secrets.example.yaml validates"
else
  cat "$out/example.problems"
  fail "production/secrets.example.yaml does not validate"
fi

# --- 4. the checks bite ----------------------------------------------------------
expect_caught() {  # NAME SED-EXPRESSION NEEDLE [validate options]: the mutant must fail
  local name=$1 expr=$2 needle=$3
  shift 3
  sed "$expr" "$out/demo.yaml" >"$out/mutant-$name.yaml"
  if cmp -s "$out/demo.yaml" "$out/mutant-$name.yaml"; then
    fail "mutant $name: the edit changed nothing"
  elif validate "$@" "$out/mutant-$name.yaml" >"$out/mutant-$name.problems" 2>&1; then
    fail "mutant $name was accepted"
  elif grep -q -- "$needle" "$out/mutant-$name.problems"; then
    pass "mutant $name caught: $(grep -m1 -- "$needle" "$out/mutant-$name.problems" | sed 's/^[^:]*: //')"
  else
    cat "$out/mutant-$name.problems"
    fail "mutant $name failed without naming '$needle'"
  fi
}
if [ -s "$out/demo.yaml" ]; then
  expect_caught readinesProbe '0,/readinessProbe:/s//readinesProbe:/' 'unknown field "readinesProbe"'
  expect_caught cronjob-v1beta1 '0,/^apiVersion: batch\/v1$/s//apiVersion: batch\/v1beta1/' 'no type'
  expect_caught escalation '0,/allowPrivilegeEscalation: false/s//allowPrivilegeEscalation: true/' \
    'allowPrivilegeEscalation is not false' --restricted
  expect_caught readiness-path '/readinessProbe:/,/path:/s/path: \/readyz$/path: \//' \
    'readinessProbe is not GET /readyz' --restricted
  # The console's objects: an Ingress to a Service that is not there, a
  # console pod without the label control admits, its key missing from
  # allowed_keys, its certificate as an Opaque Secret.
  expect_caught ingress-backend '/^kind: Ingress$/,/^---$/{/service:$/{n;s/name: billflow-console$/name: billflow-consol/}}' \
    "sends to Service 'billflow-consol'" --wiring
  expect_caught console-label '/^kind: Deployment$/,/^---$/{/name: console$/,/control-client/s/billflow.io\/control-client: "true"/billflow.io\/control-client: "no"/}' \
    "no NetworkPolicy admits it to control" --wiring
  expect_caught console-key '/^    console  *console  /d' \
    "not in allowed_keys" --complete
  expect_caught console-tls '/^  name: billflow-console-tls$/,/^---$/s/^type: kubernetes.io\/tls$/type: Opaque/' \
    "not of type kubernetes.io/tls" --complete
fi

# --- 5. yamllint -----------------------------------------------------------------
if yamllint --strict -c deploy/.yamllint deploy/ >"$out/yamllint.log" 2>&1; then
  pass "yamllint deploy/"
else
  cat "$out/yamllint.log"
  fail "yamllint deploy/"
fi
finish
