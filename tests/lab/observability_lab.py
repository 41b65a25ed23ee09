"""The runbook's stack as the lab can stand it up: a fake Kubernetes API seeded with what our own
manifests render, whose service proxy forwards to fake Loki, Tempo and Grafana servers, and a
real sshd whose "storage node" is a temporary directory.

Used by the `verify` and `status` tests. None of the real servers can run here; see
:mod:`tests.lab.fake_kube` and :mod:`tests.lab.fake_observability` for what the fakes follow.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from o11yctl.config import parse_config
from o11yctl.stack.context import build_context
from o11yctl.stack.render import render_files
from tests.lab.doctor_lab import accept_grafana_route
from tests.lab.fake_kube import FakeKube, KubeLab
from tests.lab.fake_observability import (
    FakeGateway,
    FakeGrafana,
    FakeLoki,
    FakeServer,
    FakeTempo,
    datasources_from_values,
    proxy_to,
)
from tests.lab.sshd import Sshd, TestUser, write_known_hosts

NS = "logging"
#: The Alloy pods, one per node.
ALLOY_PODS = {"alloy-a1": "node-1", "alloy-b2": "node-2"}
#: What each Alloy pod's ``alloy`` container has printed in the healthy stack.
QUIET_ALLOY_LOG = ('ts=2025-01-01T10:00:00Z level=info msg="finished node evaluation" controller_path=/ '
                   'trace_id=""\n')


def pod(name: str, node: str, labels: dict[str, str], *, claim: str | None = None, ready: bool = True,
        phase: str = "Running", waiting: str | None = None, containers: tuple[str, ...] = ("main",)) -> dict[str, Any]:
    """A pod as the kubelet reports it."""
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}] if claim else []
    state: dict[str, Any] = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    scheduled: dict[str, Any] = {"type": "PodScheduled", "status": "True"}
    if phase == "Pending":
        scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": "0/2 nodes are available: 1 node(s) had untolerated taint {heavy: true}, 1 node(s) "
                                "didn't match Pod's node affinity/selector."}
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"nodeName": node if phase != "Pending" else None, "volumes": volumes,
                 "containers": [{"name": c, "image": "example"} for c in containers]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}, scheduled],
            "containerStatuses": [{"name": c, "ready": ready, "restartCount": 3 if waiting else 0, "state": state}
                                  for c in containers],
        },
    }


@dataclass
class StackLab:
    """Everything a test may script or inspect."""

    api: FakeKube
    kubeconfig: Path
    config: Path
    loki: FakeLoki
    tempo: FakeTempo
    grafana: FakeGrafana
    gateway: FakeGateway
    storage_root: Path

    @property
    def servers(self) -> tuple[FakeServer, ...]:
        return (self.loki, self.tempo, self.grafana, self.gateway)


@contextmanager
def open_directory() -> Iterator[Path]:
    """A directory the lab's SSH user may read (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="o11yctl-lab-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def labels(release: str) -> dict[str, str]:
    """The labels the runbook's charts give their pods (the release is named after its chart)."""
    return {"app.kubernetes.io/name": release, "app.kubernetes.io/instance": release}


@contextmanager
def running_stack(kube: KubeLab, sshd: Sshd, user: TestUser, storage_root: Path, tmp_path: Path) -> Iterator[StackLab]:
    """The whole stack, healthy: every object in place, every pod Ready, every service answering.

    The fake servers are stopped afterwards and must have seen no unscripted request.
    """
    api = kube.api
    for component, entries in (("loki", ("wal", "tsdb-shipper-active", "compactor")), ("tempo", ("wal", "traces"))):
        for entry in entries:
            (storage_root / component / entry).mkdir(parents=True)
        (storage_root / component / "wal" / "00000001").write_bytes(b"x" * 4096)
    config_text = (
        "nodes:\n"
        "  - name: node-1\n    address: 10.0.0.102\n    role: server\n"
        "  - name: node-2\n    address: 10.0.0.103\n    role: agent\n    labels: {hardware: heavy}\n"
        "    taints: [{key: heavy, value: 'true', effect: NoSchedule}]\n"
        f"    ssh_host: {sshd.address}\n    ssh_port: {sshd.port}\n    ssh_user: {user.name}\n"
        f"    ssh_key: {user.key}\n"
        f"ssh:\n  known_hosts: {tmp_path / 'known_hosts'}\n  connect_timeout: 5\n"
        f"storage:\n  root: {storage_root}\n"
    )
    write_known_hosts(tmp_path / "known_hosts", sshd)

    loki, tempo = FakeLoki().start(), FakeTempo().start()
    rendered = render_files(build_context(parse_config(config_text)))
    grafana = FakeGrafana(datasources_from_values(yaml.safe_load(rendered["04-grafana-values.yaml"]))).start()
    gateway = FakeGateway(grafana.url).start()
    config = tmp_path / "o11yctl.yaml"
    config.write_text(config_text + f"route:\n  url: {gateway.url}/grafana\n")
    loki.add_lines({"namespace": NS, "pod": "alloy-a1", "container": "alloy"}, ["level=info msg=started"])

    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    rendered = render_files(build_context(parse_config(config.read_text())))
    for name in ("01-loki-storage.yaml", "06-tempo-storage.yaml", "05-grafana-httproute.yaml"):
        for doc in yaml.safe_load_all(rendered[name]):
            if doc:
                api.seed(doc, manager="o11yctl")
    accept_grafana_route(api)
    # The charts label every pod with its chart's name and its release (app.kubernetes.io/instance).
    api.seed(pod("loki-0", "node-2", labels("loki"), claim="loki-pvc"), manager="kubelet")
    api.seed(pod("tempo-0", "node-2", labels("tempo"), claim="tempo-pvc"), manager="kubelet")
    api.seed(pod("grafana-6d9f7c-x2x4k", "node-1", labels("grafana")), manager="kubelet")
    for name, node in ALLOY_PODS.items():
        api.seed(pod(name, node, labels("alloy"), containers=("alloy", "config-reloader")), manager="kubelet")
        api.set_log(NS, name, QUIET_ALLOY_LOG, container="alloy")
    admin_user, admin_password = grafana.admin
    api.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "grafana", "namespace": NS}, "type": "Opaque",
              "data": {"admin-user": base64.b64encode(admin_user.encode()).decode(),
                       "admin-password": base64.b64encode(admin_password.encode()).decode()}})
    api.add_service(NS, "loki", 3100, proxy_to(loki.url))
    api.add_service(NS, "tempo", 3200, proxy_to(tempo.url))
    api.set_backend(NS, "tempo", 4318, proxy_to(tempo.otlp_url))
    api.add_service(NS, "grafana", 80, proxy_to(grafana.url))

    lab = StackLab(api, kube.kubeconfig, config, loki, tempo, grafana, gateway, storage_root)
    try:
        yield lab
    finally:
        for server in lab.servers:
            server.stop()
    for server in lab.servers:
        server.assert_clean()
