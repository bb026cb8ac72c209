#!/usr/bin/python3
"""validate.py — checks rendered Kubernetes manifests without a cluster.

    validate.py --types DIR [--restricted] [--wiring] [--complete] FILE...

Every object of every FILE (multi-document YAML, as `kubectl kustomize`
prints it) is checked against the Kubernetes API types that the npm package
kubernetes-types ships as TypeScript declarations (DIR is its unpacked
package directory; the types are generated from the API's OpenAPI schema):

- apiVersion and kind must name a type of the API (an unknown or removed
  version, e.g. batch/v1beta1 CronJob, is an error);
- every field must be one the type declares: an unknown field, such as a
  misspelt `readinesProbe`, is an error (as `kubectl apply
  --validate=strict` would say);
- required fields must be present, and values must have the declared type
  (string, number, boolean, list, map, object).

With --restricted, every pod template (Deployment, StatefulSet, Job,
CronJob, Pod, ...) must also pass Pod Security "restricted" and the
project's rules (deploy/README.md, "What the CI proof covers").

With --wiring, the objects of all FILEs must fit together: every Service
selects a pod template and targets ports it declares; every Ingress sends
to a Service of the render, by one of its ports; every NetworkPolicy
selects some pod; the console's pods carry the label control's policy
admits its clients by and may reach control. With --complete (an overlay
that brings its own Secrets, such as demo), every Secret and ConfigMap a
pod or Ingress refers to is in the render, the Ingress's TLS Secrets are
of type kubernetes.io/tls, and every CURVE secret key whose name appears
in control's allowed_keys has its public half there (the console's with
role `console`).

Prints one line per problem and exits 1 when there is any, 2 on a usage
or setup error, 0 otherwise.
"""

import os
import re
import sys

import yaml

# --- the types ---------------------------------------------------------------

FIELD = re.compile(r'^    (?:readonly )?("?[A-Za-z_$][\w$-]*"?)(\?)?: (.*)$')
MAP_ENTRY = re.compile(r'^        \[name: string\]: (.*);$')
IMPORT = re.compile(r'^import \{ ([^}]*) \} from "([^"]+)";$')
ALIAS = re.compile(r'^export type (\w+) = (.*);$')
INTERFACE = re.compile(r'^export interface (\w+) \{$')


class Types:
    """Interfaces and aliases of every module, by (module, name)."""

    def __init__(self, root):
        self.interfaces = {}  # (module, name) -> {field: (required, type)}
        self.aliases = {}  # (module, name) -> type expression
        self.imports = {}  # module -> {name: module}
        self.kinds = {}  # (apiVersion, kind) -> (module, name)
        for dirpath, _, files in os.walk(root):
            for file in files:
                if file.endswith('.d.ts') and file != 'index.d.ts':
                    path = os.path.join(dirpath, file)
                    module = os.path.relpath(path, root)[: -len('.d.ts')]
                    self._read(module, path)
        for key, fields in self.interfaces.items():
            api, kind = fields.get('apiVersion'), fields.get('kind')
            if api and kind and api[1].startswith('"') and kind[1].startswith('"'):
                self.kinds[(api[1].strip('"'), kind[1].strip('"'))] = key
        if not self.kinds:
            raise SystemExit(f'validate.py: no API types found under {root}')

    def _read(self, module, path):
        imports = self.imports.setdefault(module, {})
        current = None
        pending = None  # a field whose type is a map: { [name: string]: T }
        with open(path, encoding='utf-8') as stream:
            for line in stream:
                line = line.rstrip('\n')
                match = IMPORT.match(line)
                if match:
                    target = os.path.normpath(os.path.join(os.path.dirname(module), match.group(2)))
                    for name in match.group(1).split(','):
                        imports[name.strip()] = target
                    continue
                match = ALIAS.match(line)
                if match:
                    self.aliases[(module, match.group(1))] = match.group(2)
                    continue
                match = INTERFACE.match(line)
                if match:
                    current = self.interfaces.setdefault((module, match.group(1)), {})
                    continue
                if current is None:
                    continue
                if line == '}':
                    current = None
                    continue
                if pending:
                    match = MAP_ENTRY.match(line)
                    if match:
                        name, required = pending
                        current[name] = (required, 'Map<' + match.group(1) + '>')
                        pending = None
                    continue
                match = FIELD.match(line)
                if match:
                    name, optional, type_ = match.group(1).strip('"'), match.group(2), match.group(3)
                    if type_ == '{':
                        pending = (name, not optional)
                    else:
                        current[name] = (not optional, type_.rstrip(';'))

    def resolve(self, module, name):
        """The (module, name) a type name used in module refers to."""
        if (module, name) in self.interfaces or (module, name) in self.aliases:
            return (module, name)
        target = self.imports.get(module, {}).get(name)
        if target and ((target, name) in self.interfaces or (target, name) in self.aliases):
            return (target, name)
        raise SystemExit(f'validate.py: type {name} used in {module} is not declared')


def split_union(expr):
    """Alternatives of a | b at the top level (not inside <...>)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(expr):
        if char == '<':
            depth += 1
        elif char == '>':
            depth -= 1
        elif char == '|' and depth == 0:
            parts.append(expr[start:i].strip())
            start = i + 1
    parts.append(expr[start:].strip())
    return parts


def describe(value):
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, list):
        return 'a list'
    if isinstance(value, dict):
        return 'an object'
    return 'null' if value is None else type(value).__name__


def check(types, module, expr, value, path, errors):
    """Appends to errors what is wrong with value as a expr (in module)."""
    alternatives = split_union(expr)
    if len(alternatives) > 1:
        best = None
        for alt in alternatives:
            found = []
            check(types, module, alt, value, path, found)
            if not found:
                return
            if best is None or len(found) < len(best):
                best = found
        errors.extend(best)
        return
    if expr == 'string':
        if not isinstance(value, str):
            errors.append(f'{path}: expected a string, got {describe(value)}')
    elif expr == 'number':
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f'{path}: expected a number, got {describe(value)}')
    elif expr == 'boolean':
        if not isinstance(value, bool):
            errors.append(f'{path}: expected a boolean, got {describe(value)}')
    elif expr.startswith('"'):
        if value != expr.strip('"'):
            errors.append(f'{path}: must be {expr}, not {value!r}')
    elif expr.startswith('Array<') or expr.endswith('[]'):
        inner = expr[6:-1] if expr.startswith('Array<') else expr[:-2]
        if not isinstance(value, list):
            errors.append(f'{path}: expected a list, got {describe(value)}')
            return
        for i, item in enumerate(value):
            check(types, module, inner, item, f'{path}[{i}]', errors)
    elif expr.startswith('Map<'):
        if not isinstance(value, dict):
            errors.append(f'{path}: expected a map, got {describe(value)}')
            return
        for key, item in value.items():
            check(types, module, expr[4:-1], item, f'{path}.{key}', errors)
    else:
        key = types.resolve(module, expr)
        if key in types.aliases:
            check(types, key[0], types.aliases[key], value, path, errors)
            return
        fields = types.interfaces[key]
        if not fields:  # RawExtension and the like: any object
            return
        if not isinstance(value, dict):
            errors.append(f'{path}: expected an object ({expr}), got {describe(value)}')
            return
        for name, item in value.items():
            if name not in fields:
                errors.append(f'{path}: unknown field "{name}" in {expr}')
                continue
            check(types, key[0], fields[name][1], item, f'{path}.{name}', errors)
        for name, (required, _) in fields.items():
            if required and name not in value:
                errors.append(f'{path}: missing required field "{name}" of {expr}')


def validate(types, doc, where):
    errors = []
    if not isinstance(doc, dict):
        return [f'{where}: not an object']
    api, kind = doc.get('apiVersion'), doc.get('kind')
    key = types.kinds.get((api, kind))
    if not key:
        return [f'{where}: no type {kind} in {api} in the Kubernetes API']
    check(types, key[0], key[1], doc, kind, errors)
    return [f'{where}: {error}' for error in errors]


# --- Pod Security "restricted" and the project's rules ------------------------

RESTRICTED_VOLUMES = {'configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral',
                      'persistentVolumeClaim', 'projected', 'secret'}
LONG_RUNNING = {'Deployment', 'StatefulSet', 'DaemonSet'}


def pod_templates(doc):
    """(pod spec, template metadata) of every pod the object makes."""
    kind, spec = doc.get('kind'), doc.get('spec') or {}
    if kind == 'Pod':
        return [(spec, doc.get('metadata') or {})]
    if kind == 'CronJob':
        spec = (spec.get('jobTemplate') or {}).get('spec') or {}
    template = spec.get('template')
    if kind in LONG_RUNNING | {'Job', 'CronJob', 'ReplicaSet'} and template:
        return [(template.get('spec') or {}, template.get('metadata') or {})]
    return []


def restricted(doc, where):
    """What keeps the object's pods from Pod Security "restricted" and the
    project's rules: non-root (numeric 10001 for billflow's images), no
    privilege escalation, a read-only root filesystem, every capability
    dropped, RuntimeDefault seccomp, no host namespaces or host paths, no
    service account token, no service links, resources, and probes on
    long-running pods."""
    problems = []
    kind = doc.get('kind')
    for spec, meta in pod_templates(doc):
        pod_sc = spec.get('securityContext') or {}
        say = lambda text: problems.append(f'{where}: {text}')  # noqa: E731
        for host in ('hostNetwork', 'hostPID', 'hostIPC'):
            if spec.get(host):
                say(f'{host} is set')
        for volume in spec.get('volumes') or []:
            types_ = set(volume) - {'name'}
            if not types_ <= RESTRICTED_VOLUMES:
                say(f'volume {volume.get("name")} is of a kind restricted forbids ({", ".join(sorted(types_))})')
        if spec.get('automountServiceAccountToken') is not False:
            say('automountServiceAccountToken is not false')
        if spec.get('enableServiceLinks') is not False:
            say('enableServiceLinks is not false')
        containers = (spec.get('containers') or []) + (spec.get('initContainers') or [])
        if not containers:
            say('no containers')
        for container in containers:
            name = container.get('name')
            sc = container.get('securityContext') or {}
            run_as_non_root = sc.get('runAsNonRoot', pod_sc.get('runAsNonRoot'))
            if run_as_non_root is not True:
                say(f'container {name}: runAsNonRoot is not true')
            for field in ('runAsUser', 'runAsGroup'):
                value = sc.get(field, pod_sc.get(field))
                if not isinstance(value, int) or isinstance(value, bool) or value == 0:
                    say(f'container {name}: {field} is not a numeric non-root id')
                elif str(container.get('image', '')).startswith('billflow') and value != 10001:
                    say(f'container {name}: {field} is {value}, billflow images run as 10001')
            if sc.get('allowPrivilegeEscalation') is not False:
                say(f'container {name}: allowPrivilegeEscalation is not false')
            if sc.get('privileged'):
                say(f'container {name}: privileged')
            if sc.get('readOnlyRootFilesystem') is not True:
                say(f'container {name}: readOnlyRootFilesystem is not true')
            caps = sc.get('capabilities') or {}
            if 'ALL' not in (caps.get('drop') or []):
                say(f'container {name}: capabilities do not drop ALL')
            if set(caps.get('add') or []) - {'NET_BIND_SERVICE'}:
                say(f'container {name}: capabilities add {caps.get("add")}')
            seccomp = (sc.get('seccompProfile') or pod_sc.get('seccompProfile') or {}).get('type')
            if seccomp not in ('RuntimeDefault', 'Localhost'):
                say(f'container {name}: seccompProfile is not RuntimeDefault')
            if container.get('imagePullPolicy') != 'IfNotPresent':
                say(f'container {name}: imagePullPolicy is not IfNotPresent')
            resources = container.get('resources') or {}
            for part in ('requests', 'limits'):
                for resource in ('cpu', 'memory'):
                    if resource not in (resources.get(part) or {}):
                        say(f'container {name}: no {part}.{resource}')
            if kind in LONG_RUNNING:
                for probe in ('startupProbe', 'livenessProbe', 'readinessProbe'):
                    if probe not in container:
                        say(f'container {name}: no {probe}')
                # A billflow service is ready when its /readyz says so
                # (the console's: control answers it), not when a page does.
                ready = (container.get('readinessProbe') or {}).get('httpGet') or {}
                if (name in ('settle', 'notify', 'control', 'console') and 'readinessProbe' in container
                        and ready.get('path') != '/readyz'):
                    say(f'container {name}: readinessProbe is not GET /readyz')
        annotations = meta.get('annotations') or {}
        if annotations.get('prometheus.io/scrape') == 'true':
            port = annotations.get('prometheus.io/port', '')
            ports = {str(p.get('containerPort')) for c in containers for p in c.get('ports') or []}
            if port not in ports:
                say(f'prometheus.io/port "{port}" is not a port of the pod')
    return problems


# --- the objects fit together ---------------------------------------------------

def labels_match(selector, labels):
    """Whether a matchLabels/matchExpressions selector (or a plain
    Service selector) selects these labels."""
    if not selector:
        return True
    plain = {k: v for k, v in selector.items() if k not in ('matchLabels', 'matchExpressions')}
    match = dict(plain, **(selector.get('matchLabels') or {}))
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in selector.get('matchExpressions') or []:
        key, op, values = expr.get('key'), expr.get('operator'), expr.get('values') or []
        if op == 'In' and labels.get(key) not in values:
            return False
        if op == 'NotIn' and labels.get(key) in values:
            return False
        if op == 'Exists' and key not in labels:
            return False
        if op == 'DoesNotExist' and key in labels:
            return False
    return True


def wiring(docs):
    """What does not fit together between the rendered objects."""
    problems = []
    say = problems.append
    pods = []  # (owner kind/name, labels, spec)
    for doc in docs:
        for spec, meta in pod_templates(doc):
            pods.append((f'{doc["kind"]}/{doc["metadata"]["name"]}', meta.get('labels') or {}, spec))
    services = {d['metadata']['name']: d for d in docs if d.get('kind') == 'Service'}
    for name, svc in services.items():
        selector = (svc.get('spec') or {}).get('selector')
        chosen = [p for p in pods if selector and labels_match(selector, p[1])]
        if not chosen:
            say(f'Service/{name}: selects no pod template')
            continue
        for port in (svc.get('spec') or {}).get('ports') or []:
            target = port.get('targetPort', port.get('port'))
            declared = {q.get('name') if isinstance(target, str) else q.get('containerPort')
                        for _, _, spec in chosen for c in spec.get('containers') or []
                        for q in c.get('ports') or []}
            if target not in declared:
                say(f'Service/{name}: port {port.get("name")} targets {target!r}, '
                    f'which no pod it selects declares')
    for ing in (d for d in docs if d.get('kind') == 'Ingress'):
        name = ing['metadata']['name']
        backends = [p.get('backend') or {} for r in (ing.get('spec') or {}).get('rules') or []
                    for p in (r.get('http') or {}).get('paths') or []]
        default = (ing.get('spec') or {}).get('defaultBackend')
        if default:
            backends.append(default)
        if not backends:
            say(f'Ingress/{name}: no backend')
        for backend in backends:
            ref = backend.get('service') or {}
            svc = services.get(ref.get('name'))
            if not svc:
                say(f'Ingress/{name}: sends to Service {ref.get("name")!r}, not in the render')
                continue
            port = ref.get('port') or {}
            ports = (svc.get('spec') or {}).get('ports') or []
            if not any(port.get('name') == p.get('name') if 'name' in port
                       else port.get('number') == p.get('port') for p in ports):
                say(f'Ingress/{name}: port {port} is not a port of Service/{ref.get("name")}')
        if not (ing.get('spec') or {}).get('tls'):
            say(f'Ingress/{name}: no tls')
    for pol in (d for d in docs if d.get('kind') == 'NetworkPolicy'):
        selector = (pol.get('spec') or {}).get('podSelector') or {}
        if not any(labels_match(selector, p[1]) for p in pods):
            say(f'NetworkPolicy/{pol["metadata"]["name"]}: selects no pod')
    # The console reaches control: control admits it (ingress) and a policy
    # lets it out (egress) on control's port.
    policies = [d for d in docs if d.get('kind') == 'NetworkPolicy']
    control = [p for p in pods if p[1].get('app.kubernetes.io/name') == 'control']
    for owner, labels, _ in pods:
        if labels.get('app.kubernetes.io/name') != 'console' or not control:
            continue
        admitted = any(
            labels_match((pol['spec'].get('podSelector') or {}), control[0][1])
            and any(labels_match(peer.get('podSelector') or {}, labels)
                    for rule in pol['spec'].get('ingress') or []
                    if any(p.get('port') == 7100 for p in rule.get('ports') or [])
                    for peer in rule.get('from') or [] if 'namespaceSelector' not in peer)
            for pol in policies)
        let_out = any(
            labels_match((pol['spec'].get('podSelector') or {}), labels)
            and any(labels_match(peer.get('podSelector') or {}, control[0][1])
                    for rule in pol['spec'].get('egress') or []
                    if any(p.get('port') == 7100 for p in rule.get('ports') or [])
                    for peer in rule.get('to') or [])
            for pol in policies)
        if not admitted:
            say(f'{owner}: no NetworkPolicy admits it to control\'s 7100')
        if not let_out:
            say(f'{owner}: no NetworkPolicy lets it out to control\'s 7100')
    return problems


def references(docs):
    """Secrets and ConfigMaps referred to but not rendered; CURVE keys
    whose public half is missing from control's allowed_keys."""
    problems = []
    say = problems.append
    have = {(d['kind'], d['metadata']['name']): d for d in docs
            if d.get('kind') in ('Secret', 'ConfigMap')}

    def need(kind, name, who):
        if (kind, name) not in have:
            say(f'{who}: refers to {kind} {name!r}, not in the render')
    for doc in docs:
        who = f'{doc["kind"]}/{doc["metadata"]["name"]}'
        for spec, _ in pod_templates(doc):
            for volume in spec.get('volumes') or []:
                if 'secret' in volume:
                    need('Secret', volume['secret'].get('secretName'), who)
                if 'configMap' in volume:
                    need('ConfigMap', volume['configMap'].get('name'), who)
            for c in (spec.get('containers') or []) + (spec.get('initContainers') or []):
                for src in c.get('envFrom') or []:
                    if 'configMapRef' in src:
                        need('ConfigMap', src['configMapRef'].get('name'), who)
                    if 'secretRef' in src:
                        need('Secret', src['secretRef'].get('name'), who)
                for env in c.get('env') or []:
                    ref = env.get('valueFrom') or {}
                    if 'secretKeyRef' in ref:
                        need('Secret', ref['secretKeyRef'].get('name'), who)
                    if 'configMapKeyRef' in ref:
                        need('ConfigMap', ref['configMapKeyRef'].get('name'), who)
        if doc.get('kind') == 'Ingress':
            for tls in (doc.get('spec') or {}).get('tls') or []:
                secret = have.get(('Secret', tls.get('secretName')))
                if not secret:
                    need('Secret', tls.get('secretName'), who)
                elif secret.get('type') != 'kubernetes.io/tls':
                    say(f'{who}: TLS Secret {tls.get("secretName")!r} is not of type kubernetes.io/tls')
    allowed = {}
    for d in docs:
        if d.get('kind') == 'ConfigMap' and 'allowed_keys' in (d.get('data') or {}):
            for line in d['data']['allowed_keys'].splitlines():
                fields = line.split()  # Z85 keys may hold '#': only whole lines are comments
                if len(fields) >= 3 and not fields[0].startswith('#'):
                    allowed[fields[2]] = (fields[0], fields[1])
    public = re.compile(r'^\s*public-key = "(.{40})"$', re.M)
    name_re = re.compile(r'^\s*name = "([^"]*)"$', re.M)
    for (kind, name), d in have.items():
        for key, text in ((d.get('stringData') or {}).items() if kind == 'Secret' else []):
            if not key.endswith('.key_secret'):
                continue
            found, owner = public.search(text), name_re.search(text)
            if not found:
                say(f'Secret/{name}: {key} holds no public key')
                continue
            entry = allowed.get(found.group(1))
            who = owner.group(1) if owner else key
            if who == 'control':
                continue
            if not entry:
                say(f'Secret/{name}: the public half of {key} is not in allowed_keys')
            elif who == 'console' and entry[1] != 'console':
                say(f'Secret/{name}: the console\'s key has role {entry[1]!r} in allowed_keys, not console')
    return problems


def main(argv):
    args = argv[1:]
    types_dir, strict_pods, files = None, False, []
    fit, complete = False, False
    while args:
        arg = args.pop(0)
        if arg == '--types' and args:
            types_dir = args.pop(0)
        elif arg == '--restricted':
            strict_pods = True
        elif arg == '--wiring':
            fit = True
        elif arg == '--complete':
            complete = True
        elif arg.startswith('-'):
            print(f'validate.py: unknown option {arg}', file=sys.stderr)
            return 2
        else:
            files.append(arg)
    if not types_dir or not files:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    types = Types(types_dir)
    problems, count, everything = [], 0, []
    for file in files:
        with open(file, encoding='utf-8') as stream:
            docs = [doc for doc in yaml.safe_load_all(stream) if doc is not None]
        everything += [doc for doc in docs if isinstance(doc, dict) and 'metadata' in doc
                       and 'name' in (doc['metadata'] or {})]
        for i, doc in enumerate(docs):
            meta = doc.get('metadata') or {} if isinstance(doc, dict) else {}
            where = f'{file}: {doc.get("kind") if isinstance(doc, dict) else "?"}/{meta.get("name", i)}'
            problems += validate(types, doc, where)
            if strict_pods:
                problems += restricted(doc, where)
            count += 1
    where = ', '.join(files)
    if fit:
        problems += [f'{where}: {p}' for p in wiring(everything)]
    if complete:
        problems += [f'{where}: {p}' for p in references(everything)]
    for problem in problems:
        print(problem)
    print(f'validate.py: {count} objects, {len(problems)} problems', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
