"""The runbook's stack inside the fake Kubernetes API, healthy or broken one way at a time, for `doctor`.

No control plane can run on this machine (no kubelet, no container runtime, no etcd), so
`doctor` is pointed at :mod:`tests.lab.fake_kube` through a kubeconfig, and the objects a
real cluster would hold are seeded as the kubelet, the scheduler and the PV controller
would have written them: pods with their status and conditions, events with the
scheduler's own messages, PVs and PVCs rendered from o11yctl's templates, nodes, and
what the containers printed (:meth:`tests.lab.fake_kube.FakeKube.set_log`). Doctor also runs
`verify`'s read-only checks, so the healthy stack answers them too: its Services forward to the
fake Loki, Tempo and Grafana servers of :mod:`tests.lab.fake_observability`
(:func:`serving_services`), and its HTTPRoute is accepted.
"""

from __future__ import annotations

import copy
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from o11yctl.config import Config, default_config
from o11yctl.stack.context import build_context
from o11yctl.stack.render import render_files
from tests.lab.fake_kube import FakeKube
from tests.lab.fake_observability import FakeGrafana, FakeLoki, FakeTempo, datasources_from_values, proxy_to, serving

NS = "logging"
#: The pod IPs the healthy stack's pods report (status.podIP), on K3s's default pod network.
POD_IPS = {"loki-0": "10.42.1.10", "tempo-0": "10.42.1.11", "alloy-n1": "10.42.0.20", "alloy-n2": "10.42.1.20",
           "grafana-5d8f7c9b6-x2x4z": "10.42.0.12"}


# --- objects as the cluster's components write them ------------------------------------------------


def pod(name: str, component: str, *, node: str | None = "node-2", phase: str = "Running", ready: bool = True,
        containers: Sequence[str] | None = None, claims: Sequence[str] = (), node_selector: Mapping[str, str] | None
        = None, tolerations: Sequence[Mapping[str, str]] = (), waiting: str | None = None, restarts: int = 0,
        last_reason: str | None = None, requests: Mapping[str, str] | None = None,
        unschedulable: str | None = None, env: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """A Pod with the status the kubelet (or, when unscheduled, the scheduler) reports."""
    names = list(containers or [component])
    spec: dict[str, Any] = {
        "containers": [{"name": c, "image": f"grafana/{component}:latest",
                        "resources": {"requests": dict(requests or {})}, "env": list(env)} for c in names],
        "volumes": [{"name": f"data-{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)],
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if node:
        spec["nodeName"] = node
    statuses = []
    for c in names:
        state: dict[str, Any] = {"running": {"startedAt": "2025-01-01T10:00:00Z"}}
        if waiting:
            state = {"waiting": {"reason": waiting, "message": f"back-off restarting failed container {c}"
                                 if waiting == "CrashLoopBackOff" else ""}}
        status: dict[str, Any] = {"name": c, "ready": ready, "restartCount": restarts, "state": state,
                                  "image": f"grafana/{component}:latest"}
        if last_reason:
            status["lastState"] = {"terminated": {"reason": last_reason, "exitCode": 1,
                                                  "finishedAt": "2025-01-01T10:05:00Z"}}
        statuses.append(status)
    conditions = [{"type": "PodScheduled", "status": "True"},
                  {"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable is not None:
        conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                       "message": unschedulable}]
    status_doc: dict[str, Any] = {"phase": phase, "conditions": conditions}
    if node:
        status_doc["containerStatuses"] = statuses
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app.kubernetes.io/name": component,
                                                               "app.kubernetes.io/instance": component}},
        "spec": spec, "status": status_doc,
    }


def event(kind: str, name: str, reason: str, message: str, *, type: str = "Warning", count: int = 1,
          when: str = "2025-01-01T10:10:00Z") -> dict[str, Any]:
    """An Event (core/v1) about an object in the namespace, as the scheduler or kubelet records it."""
    safe = re.sub(r"[^a-z0-9.-]", "-", f"{name}.{reason.lower()}.{abs(hash(message)) % 10**8}")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": safe, "namespace": NS},
        "involvedObject": {"kind": kind, "name": name, "namespace": NS, "apiVersion": "v1"},
        "reason": reason, "message": message, "type": type, "count": count,
        "firstTimestamp": when, "lastTimestamp": when,
        "source": {"component": "default-scheduler" if reason == "FailedScheduling" else "kubelet"},
    }


LOKI_SELECTOR = {"hardware": "heavy"}
HEAVY_TOLERATION = {"key": "heavy", "operator": "Equal", "value": "true", "effect": "NoSchedule"}


def volumes(cfg: Config | None = None) -> dict[str, dict[str, Any]]:
    """The PVs and PVCs exactly as o11yctl renders them (01- and 06- files), by name."""
    files = render_files(build_context(cfg or default_config()))
    out: dict[str, dict[str, Any]] = {}
    for name in ("01-loki-storage.yaml", "06-tempo-storage.yaml"):
        for doc in yaml.safe_load_all(files[name]):
            if doc:
                out[doc["metadata"]["name"]] = doc
    return out


def seed_stack(api: FakeKube, *, skip: Sequence[str] = (), cfg: Config | None = None) -> None:
    """The runbook's stack, healthy: nodes, bound volumes, Loki, Tempo, Alloy on each node, Grafana, logs.

    Args:
        api: the fake API.
        skip: names of objects to leave out (``loki-pv``, ``loki-0``, ``node-2``...), to seed a broken one instead.
        cfg: the configuration the volumes are rendered from.
    """
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for name, labels, taints, address in (
            ("node-1", {"node-role.kubernetes.io/control-plane": "true"}, [], "10.0.0.102"),
            ("node-2", {"hardware": "heavy"}, [dict(key="heavy", value="true", effect="NoSchedule")], "10.0.0.103")):
        if name not in skip:
            node = api.add_node(name, labels=labels, taints=taints, address=address)
            api.update_status("v1", "Node", name, "", {**node["status"],
                                                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}})
    for name, doc in volumes(cfg).items():
        if name not in skip:
            api.seed(doc)
    heavy = dict(node_selector=LOKI_SELECTOR, tolerations=[HEAVY_TOLERATION])
    pods = [
        pod("loki-0", "loki", claims=["loki-pvc"], **heavy),
        pod("tempo-0", "tempo", claims=["tempo-pvc"], **heavy),
        pod("alloy-n1", "alloy", node="node-1", containers=["alloy", "config-reloader"],
            tolerations=[{"operator": "Exists"}]),
        pod("alloy-n2", "alloy", node="node-2", containers=["alloy", "config-reloader"],
            tolerations=[{"operator": "Exists"}]),
        pod("grafana-5d8f7c9b6-x2x4z", "grafana", node="node-1"),
    ]
    logs = {
        ("loki-0", "loki"): 'level=info ts=2025-01-01T10:00:00Z caller=main.go:108 msg="Starting Loki"\n'
                            'level=info ts=2025-01-01T10:00:16Z caller=ingester.go:400 msg="ingester ready"\n',
        ("tempo-0", "tempo"): 'level=info ts=2025-01-01T10:00:00Z caller=main.go:121 msg="Starting Tempo"\n',
        ("alloy-n1", "alloy"): 'ts=2025-01-01T10:00:00Z level=info msg="configuration loaded successfully"\n',
        ("alloy-n2", "alloy"): 'ts=2025-01-01T10:00:00Z level=info msg="configuration loaded successfully"\n',
        ("grafana-5d8f7c9b6-x2x4z", "grafana"): 'logger=server t=2025-01-01T10:00:00Z level=info msg="HTTP Server '
                                                'Listen"\n',
    }
    for p in pods:
        if p["metadata"]["name"] in POD_IPS:
            p["status"]["podIP"] = POD_IPS[p["metadata"]["name"]]
        if p["metadata"]["name"] not in skip:
            api.seed(p, manager="kubelet")
    for (p_name, container), text in logs.items():
        api.set_log(NS, p_name, text, container)
    if "route" not in skip:
        seed_route(api, cfg)


def seed_route(api: FakeKube, cfg: Config | None = None) -> None:
    """The Gateway API, Gateway default/eg, and o11yctl's HTTPRoute as the gateway accepted it."""
    api.install_gateway_api()
    api.add_gateway("eg", "default", listeners=[
        {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}}])
    for doc in yaml.safe_load_all(render_files(build_context(cfg or default_config()))["05-grafana-httproute.yaml"]):
        if doc:
            api.seed(doc, manager="o11yctl")
    accept_grafana_route(api)


@contextmanager
def serving_services(api: FakeKube, cfg: Config | None = None) -> Iterator[tuple[FakeLoki, FakeTempo, FakeGrafana]]:
    """Services loki, tempo and grafana whose proxy forwards to healthy fake servers (stopped and checked after).

    Loki holds a recent line of the namespace (Alloy ships), Tempo answers search, Grafana its health.
    """
    values = yaml.safe_load(render_files(build_context(cfg or default_config()))["04-grafana-values.yaml"])
    loki, tempo, grafana = FakeLoki(), FakeTempo(), FakeGrafana(datasources_from_values(values))
    with serving(loki, tempo, grafana):
        loki.add_lines({"namespace": NS, "pod": "alloy-n1", "container": "alloy"}, ["level=info msg=started"])
        api.add_service(NS, "loki", 3100, proxy_to(loki.url))
        api.add_service(NS, "tempo", 3200, proxy_to(tempo.url))
        api.add_service(NS, "grafana", 80, proxy_to(grafana.url))
        yield loki, tempo, grafana


def replace(api: FakeKube, obj: Mapping[str, Any], *, manager: str = "kubelet") -> dict[str, Any]:
    """Store ``obj`` in place of the object of the same kind and name (as a controller's write would)."""
    return api.seed(copy.deepcopy(dict(obj)), manager=manager)


def accept_grafana_route(api: FakeKube, namespace: str = NS) -> None:
    """The status the Gateway's controller writes on the HTTPRoute ``grafana`` it accepted (Gateway default/eg)."""
    api.update_status("gateway.networking.k8s.io/v1", "HTTPRoute", "grafana", namespace, {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "eg", "namespace": "default",
                      "sectionName": "http"},
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Route is accepted"},
                       {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs",
                        "message": "Resolved all the Object references for the Route"}]}]})


def read_bundle(path: Path) -> dict[str, str]:
    """A support bundle's files by their path inside its top directory."""
    with tarfile.open(path, "r:gz") as tar:
        out = {}
        for member in tar.getmembers():
            fh = tar.extractfile(member)
            assert fh is not None
            out[member.name.split("/", 1)[1]] = fh.read().decode()
        return out
