#!/usr/bin/python3
"""topods.py RENDERED.yaml OUTDIR SUBNET_PREFIX: the rendered demo overlay as
what podman kube play (4.3) can play (tests/k8s/play.sh).

podman plays Pods, Deployments (one pod, whatever the replica count),
ConfigMaps and PersistentVolumeClaims; it cannot play StatefulSets, Jobs or
CronJobs, and it knows no Services. So every workload becomes its Pods, as
Kubernetes would make them, each in its own file, from its pod template
unchanged but for:
  - the pod's name: StatefulSet pods NAME-0, NAME-1; Deployment pods
    NAME-a, NAME-b; the Job's pod NAME; the CronJob's pods NAME-1, NAME-2,
    NAME-3 (the job run three times); spec.hostname is the pod's name;
  - a StatefulSet's volumeClaimTemplates become PersistentVolumeClaims
    CLAIM-POD (Kubernetes' names), emitted to pvc.yaml;
  - Services do not exist: each pod gets hostAliases (its /etc/hosts) for
    every Service name, pointing at the static address of the first pod the
    Service selects (POD.SERVICE too for a StatefulSet's headless Service).
    That is the gap with Kubernetes: a Service here is one fixed pod.
Ports: podman 4.3 publishes each containerPort on the host, so the ports
are dropped (pods reach each other on the network by address) and the
probes' named ports are replaced by their numbers.
Secrets go to secrets/NAME.json, the data map alone, which is what podman
4.3 reads for an env secretKeyRef (podman secret create); ConfigMaps to
configmaps/NAME.yaml (podman kube play --configmap, which reads one
ConfigMap a file), for env.
Secret and ConfigMap volumes: podman 4.3 crashes on a secret volume without
`optional`, writes the files base64-encoded and world-readable, and ignores
defaultMode and fsGroup; billflow refuses such key files. So each becomes a
hostPath directory volumes/POD/VOLUME written here as the kubelet writes it:
the files under ..data/ with defaultMode, group fsGroup with group-read
added (0400 -> 0440 root:10001), KEY -> ..data/KEY links. An emptyDir is
an anonymous root 0755 volume in podman 4.3 (PostgreSQL, user 999, cannot
write its socket directory); here it is a hostPath directory with the
kubelet's 0777 (root:fsGroup, setgid, with an fsGroup); medium: Memory is
not emulated (a directory on disk). Writes pods.tsv: one line
per pod "NAME<TAB>ADDRESS<TAB>FILE<TAB>KIND<TAB>APP" in start order.
NetworkPolicies, PodDisruptionBudgets, the ServiceAccount and the Ingress have no podman
counterpart and are left out (listed on stderr)."""
import base64
import copy
import json
import os
import sys

import yaml


def unpublish(container):
    """podman 4.3 publishes every containerPort on the host (Kubernetes never
    does): two replicas clash, and the host's own ports with them. The ports
    go; the probes' named ports become their numbers."""
    ports = {p["name"]: p["containerPort"] for p in container.pop("ports", []) if "name" in p}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        for handler in ("httpGet", "tcpSocket"):
            h = (container.get(probe) or {}).get(handler)
            if h and isinstance(h.get("port"), str):
                if h["port"] not in ports:
                    sys.exit(f"topods: {container['name']}: {probe} names port {h['port']}, not declared")
                h["port"] = ports[h["port"]]


def write_volume(path, data, items, mode, fs_group):
    """Writes a Secret's or ConfigMap's volume as the kubelet does; returns
    the directory's absolute path."""
    path = os.path.abspath(path)
    os.makedirs(os.path.join(path, "..data"), exist_ok=True)
    os.chmod(path, 0o755)
    os.chmod(os.path.join(path, "..data"), 0o755)
    if fs_group is not None:
        mode |= 0o440
    files = [(i["key"], i["path"], i.get("mode", mode)) for i in items] if items \
        else [(k, k, mode) for k in data]
    for key, rel, m in files:
        if key not in data:
            sys.exit(f"topods: key {key} missing from a volume's source")
        target = os.path.join(path, "..data", rel)
        with open(target, "wb") as f:
            f.write(data[key])
        os.chown(target, 0, fs_group if fs_group is not None else 0)
        os.chmod(target, m)
        os.symlink(os.path.join("..data", rel), os.path.join(path, rel))
    return path


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: topods.py RENDERED.yaml OUTDIR SUBNET_PREFIX (e.g. 10.89.3.)")
    rendered, out, prefix = sys.argv[1:]
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    os.makedirs(os.path.join(out, "secrets"), exist_ok=True)
    secret_data = {}
    configmap_data = {}
    os.makedirs(os.path.join(out, "pods"), exist_ok=True)

    pods = []       # (name, kind, template, extra docs)
    services = []
    skipped = []
    configmaps = []
    pvcs = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind == "Secret":
            data = {k: base64.b64decode(v) for k, v in (d.get("data") or {}).items()}
            for k, v in (d.get("stringData") or {}).items():
                data[k] = v.encode()
            secret_data[name] = data
            with open(os.path.join(out, "secrets", name + ".json"), "w") as f:
                json.dump({k: base64.b64encode(v).decode() for k, v in data.items()}, f)
        elif kind == "ConfigMap":
            configmaps.append(d)
            configmap_data[name] = {k: v.encode() for k, v in (d.get("data") or {}).items()}
        elif kind == "Service":
            services.append(d)
        elif kind == "Deployment":
            n = d["spec"].get("replicas", 1)
            for i in range(n):
                pods.append((f"{name}-{chr(ord('a') + i)}", kind, d["spec"]["template"], None))
        elif kind == "StatefulSet":
            for i in range(d["spec"].get("replicas", 1)):
                pod = f"{name}-{i}"
                t = copy.deepcopy(d["spec"]["template"])
                for vct in d["spec"].get("volumeClaimTemplates", []):
                    claim = f"{vct['metadata']['name']}-{pod}"
                    pvcs.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                 "metadata": {"name": claim}, "spec": vct["spec"]})
                    t["spec"].setdefault("volumes", []).append(
                        {"name": vct["metadata"]["name"],
                         "persistentVolumeClaim": {"claimName": claim}})
                t["spec"]["subdomain"] = d["spec"].get("serviceName")
                pods.append((pod, kind, t, None))
        elif kind == "Job":
            pods.append((name, kind, d["spec"]["template"], None))
        elif kind == "CronJob":
            t = d["spec"]["jobTemplate"]["spec"]["template"]
            for i in (1, 2, 3):
                pods.append((f"{name}-{i}", kind, t, None))
        else:
            skipped.append(f"{kind}/{name}")

    # Start order: PostgreSQL, the migrate Job, control, the mock, settle, notify,
    # the CronJob last.
    def order(p):
        app = p[2]["metadata"]["labels"].get("app.kubernetes.io/name", "")
        if p[1] == "CronJob":
            return 9
        return {"postgres": 0, "migrate": 1, "control": 2, "mock": 3, "settle": 4}.get(app, 5)
    pods.sort(key=order)
    addr = {p[0]: f"{prefix}{10 + i}" for i, p in enumerate(pods)}

    aliases = {}
    for svc in services:
        sel = svc["spec"].get("selector") or {}
        chosen = [p for p in pods if sel and p[1] != "CronJob" and p[1] != "Job"
                  and all(p[2]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        if not chosen:
            sys.exit(f"topods: Service {svc['metadata']['name']} selects no pod")
        sname = svc["metadata"]["name"]
        aliases.setdefault(addr[chosen[0][0]], []).append(sname)
        for p in chosen:
            if p[1] == "StatefulSet" and p[2]["spec"].get("subdomain") == sname:
                aliases.setdefault(addr[p[0]], []).append(f"{p[0]}.{sname}")
    host_aliases = [{"ip": ip, "hostnames": sorted(names)} for ip, names in sorted(aliases.items())]

    os.makedirs(os.path.join(out, "configmaps"), exist_ok=True)
    for cm in configmaps:
        with open(os.path.join(out, "configmaps", cm["metadata"]["name"] + ".yaml"), "w") as f:
            yaml.safe_dump(cm, f)
    with open(os.path.join(out, "pvc.yaml"), "w") as f:
        yaml.safe_dump_all(pvcs, f)
    with open(os.path.join(out, "pods.tsv"), "w") as tsv:
        for name, kind, t, _ in pods:
            spec = copy.deepcopy(t["spec"])
            for c in spec["containers"]:
                unpublish(c)
            fs_group = (spec.get("securityContext") or {}).get("fsGroup")
            for v in spec.get("volumes", []):
                if "emptyDir" in v:
                    # podman 4.3: an anonymous volume, root 0755; the kubelet
                    # makes an emptyDir 0777 (group fsGroup, setgid).
                    path = os.path.abspath(os.path.join(out, "volumes", name, v["name"]))
                    os.makedirs(path, exist_ok=True)
                    if fs_group is not None:
                        os.chown(path, 0, fs_group)
                    os.chmod(path, 0o2777 if fs_group is not None else 0o777)
                    v.pop("emptyDir")
                    v["hostPath"] = {"path": path, "type": "Directory"}
                    continue
                if "secret" in v:
                    src, store = v["secret"], secret_data
                    ref = src["secretName"]
                elif "configMap" in v:
                    src, store = v["configMap"], configmap_data
                    ref = src["name"]
                else:
                    continue
                if ref not in store:
                    sys.exit(f"topods: pod {name}: volume {v['name']} refers to {ref}, not rendered")
                path = write_volume(os.path.join(out, "volumes", name, v["name"]), store[ref],
                                    src.get("items"), src.get("defaultMode", 0o644), fs_group)
                for k in ("secret", "configMap"):
                    v.pop(k, None)
                v["hostPath"] = {"path": path, "type": "Directory"}
            spec["hostname"] = name
            spec.pop("subdomain", None)
            spec["hostAliases"] = host_aliases
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "labels": t["metadata"].get("labels", {}),
                                "annotations": t["metadata"].get("annotations", {})},
                   "spec": spec}
            path = os.path.join(out, "pods", name + ".yaml")
            with open(path, "w") as f:
                yaml.safe_dump(pod, f)
            app = t["metadata"]["labels"].get("app.kubernetes.io/name", "")
            tsv.write(f"{name}\t{addr[name]}\t{path}\t{kind}\t{app}\n")
    print("topods: not played (no podman counterpart): " + ", ".join(skipped), file=sys.stderr)


if __name__ == "__main__":
    main()
