"""`o11yctl verify` the default way: services through the Kubernetes API's service proxy, the cluster's
objects from the API, the data directories over SSH.

No cluster and no Loki, Tempo or Grafana can run here. The Kubernetes API is the
fake API server of tests/lab/fake_kube.py (seeded with the objects our own manifests
render), its service proxy forwards to the fake Loki, Tempo and Grafana servers of
tests/lab/fake_observability.py (shaped after captured Loki 3.3 / Tempo 2.9 answers and
Grafana's documented API), and SSH goes to a real sshd on 127.0.0.1 whose "storage node"
is a temporary directory. The CLI runs unchanged against them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from tests.lab.fake_kube import KubeLab
from tests.lab.observability_lab import NS, QUIET_ALLOY_LOG, StackLab, open_directory, pod, running_stack
from tests.lab.sshd import Sshd, TestUsers
from typer.testing import CliRunner

from o11yctl.cli import app

pytestmark = pytest.mark.sshd

runner = CliRunner()
ALL_CHECKS = [
    "cluster.namespace", "cluster.volume.loki", "cluster.volume.tempo", "cluster.pod.loki", "cluster.pod.tempo",
    "cluster.pod.grafana", "cluster.data.loki", "cluster.data.tempo",
    "loki.ready", "loki.e2e", "loki.cluster-logs", "tempo.ready", "tempo.e2e", "tempo.search",
    "alloy.pods", "alloy.push-errors",
    "grafana.health", "grafana.datasources", "grafana.correlation", "grafana.route", "grafana.httproute",
]
PUSH_TIMEOUT = ('ts=2025-01-01T10:02:00Z level=warn msg="error sending batch, will retry" component=loki.write.default '
                'error="Post \\"http://loki.logging.svc.cluster.local:3100/loki/api/v1/push\\": '
                'context deadline exceeded"\n')


@dataclass
class Lab(StackLab):
    def args(self, *extra: str, timeout: float = 8.0) -> list[str]:
        return ["verify", "-c", str(self.config), "--kubeconfig", str(self.kubeconfig), "--timeout", str(timeout),
                *extra]

    def run(self, *extra: str, timeout: float = 8.0) -> tuple[int, dict[str, dict[str, Any]]]:
        result = runner.invoke(app, [*self.args(*extra, timeout=timeout), "--json"])
        try:
            doc = json.loads(result.stdout)
        except ValueError:
            pytest.fail(f"not JSON (exit {result.exit_code}): {result.output}")
        assert "checks" in doc, doc["error"]
        return result.exit_code, {c["id"]: c for c in doc["checks"]}


@pytest.fixture
def lab(kube_cluster: KubeLab, sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> Iterator[Lab]:
    with open_directory() as root, running_stack(kube_cluster, sshd, lab_users.nopasswd, root, tmp_path) as stack:
        yield Lab(**{f.name: getattr(stack, f.name) for f in fields(StackLab)})


def test_everything_passes_through_the_api_and_ssh(lab: Lab) -> None:
    code, checks = lab.run()
    assert {i: c["status"] for i, c in checks.items()} == dict.fromkeys(ALL_CHECKS, "PASS"), checks
    assert code == 0
    assert checks["cluster.volume.loki"]["detail"] == "loki-pvc is Bound to loki-pv (200Gi)"
    assert checks["cluster.pod.loki"]["detail"].startswith("loki-0 Running and Ready on node-2, mounts loki-pvc")
    assert "wal/" in checks["cluster.data.loki"]["detail"] and "chunks/ appears after" in checks[
        "cluster.data.loki"]["detail"]
    assert checks["alloy.pods"]["detail"] == "2/2 nodes run a Ready Alloy pod"
    # Loki, Tempo and Grafana's health were reached through the service proxy only.
    proxied = [p for _m, p, _q in lab.api.requests if "/proxy/" in p]
    assert any(p.endswith("/services/loki:3100/proxy/ready") for p in proxied)
    assert any(p.endswith("/services/tempo:4318/proxy/v1/traces") for p in proxied)
    assert any(p.endswith("/services/grafana:80/proxy/grafana/api/health") for p in proxied)
    # The data source API went through the gateway, logged in with the admin password from the Secret.
    (first, *_rest) = lab.grafana.hits("GET", "/grafana/api/datasources/uid/loki")
    assert first.headers["authorization"].startswith("Basic ")
    assert lab.gateway.hits("GET", "/grafana/api/datasources/uid/loki")


def test_a_released_volume_and_a_missing_claim(lab: Lab) -> None:
    from o11yctl.executors.kube import connect

    with connect(lab.kubeconfig) as kube:
        assert kube.delete("v1", "PersistentVolumeClaim", "tempo-pvc", NS)
    code, checks = lab.run("--only", "cluster")
    volume = checks["cluster.volume.tempo"]
    assert code == 1 and volume["status"] == "FAIL"
    assert "tempo-pv is Released" in volume["detail"]
    assert "kubectl patch pv tempo-pv" in volume["hint"]
    assert checks["cluster.volume.loki"]["status"] == "PASS"


def test_pods_pending_and_crashlooping_get_the_runbooks_hints(lab: Lab) -> None:
    lab.api.seed(pod("loki-0", "node-2", {"app.kubernetes.io/name": "loki"}, claim="loki-pvc", ready=False,
                     phase="Pending"), manager="kubelet")
    lab.api.seed(pod("tempo-0", "node-2", {"app.kubernetes.io/name": "tempo"}, claim="tempo-pvc", ready=False,
                     waiting="CrashLoopBackOff"), manager="kubelet")
    code, checks = lab.run("--only", "cluster")
    loki, tempo = checks["cluster.pod.loki"], checks["cluster.pod.tempo"]
    assert code == 1
    assert loki["status"] == "FAIL" and "Pending" in loki["detail"] and "untolerated taint" in loki["detail"]
    assert "Pod stuck in Pending" in loki["hint"] and "toleration" in loki["hint"]
    assert tempo["status"] == "FAIL" and "CrashLoopBackOff (3 restarts)" in tempo["detail"]
    assert "Permission denied" in tempo["hint"] and "o11yctl install --only storage" in tempo["hint"]


def test_alloy_missing_on_the_tainted_node(lab: Lab) -> None:
    lab.api.seed(pod("alloy-b2", "node-2", {"app.kubernetes.io/name": "alloy"}, ready=False, phase="Pending",
                     containers=("alloy", "config-reloader")), manager="kubelet")
    code, checks = lab.run("--only", "alloy")
    alloy = checks["alloy.pods"]
    assert code == 1 and alloy["status"] == "FAIL"
    assert alloy["detail"] == "1/2 nodes run a Ready Alloy pod; none on node-2"
    assert "heavy=true:NoSchedule" in alloy["hint"] and "toleration" in alloy["hint"]


def test_alloy_push_errors_point_at_fix_vxlan(lab: Lab) -> None:
    lab.api.set_log(NS, "alloy-a1", PUSH_TIMEOUT * 2, container="alloy", append=True)
    code, checks = lab.run("--only", "alloy")
    errors = checks["alloy.push-errors"]
    assert code == 1 and errors["status"] == "FAIL"
    assert errors["detail"] == '"context deadline exceeded" in Alloy\'s logs (alloy-a1: 2)'
    assert "o11yctl fix-vxlan" in errors["hint"] and "8472" in errors["hint"]


def test_alloy_push_errors_older_than_15_minutes_do_not_count(lab: Lab) -> None:
    lab.api.set_log(NS, "alloy-b2", PUSH_TIMEOUT, container="alloy", age=16 * 60)
    lab.api.set_log(NS, "alloy-b2", QUIET_ALLOY_LOG, container="alloy", append=True)
    code, checks = lab.run("--only", "alloy")
    assert code == 0, checks
    assert checks["alloy.push-errors"]["detail"] == ('no "context deadline exceeded" in the last 15 minutes of 2 '
                                                     'Alloy pod(s)')


def test_route_not_accepted(lab: Lab) -> None:
    lab.api.update_status("gateway.networking.k8s.io/v1", "HTTPRoute", "grafana", NS, {"parents": [{
        "parentRef": {"name": "eg", "namespace": "default"}, "controllerName": "x",
        "conditions": [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners",
                        "message": "No listeners included by this parent ref allowed this attachment."}]}]})
    code, checks = lab.run("--only", "grafana")
    route = checks["grafana.httproute"]
    assert code == 1 and route["status"] == "FAIL"
    assert "NotAllowedByListeners" in route["detail"]


def test_a_hung_service_behind_the_proxy_times_out_without_stalling_the_others(lab: Lab) -> None:
    lab.tempo.hang("GET", "/api/search")
    started = time.monotonic()
    code, checks = lab.run("--only", "loki,tempo,grafana", timeout=3)
    elapsed = time.monotonic() - started
    assert code == 1
    search = checks["tempo.search"]
    assert search["status"] == "FAIL" and "timed out" in search["detail"]
    assert 1.5 <= search["seconds"] <= 3.5
    # The other requests through the same API server were answered while that one waited.
    others = [c for i, c in checks.items() if i != "tempo.search"]
    assert all(c["status"] == "PASS" for c in others), others
    assert max(c["seconds"] for c in others) < 1.5
    assert elapsed < 4.5


def test_a_service_without_endpoints(lab: Lab) -> None:
    lab.api.set_backend(NS, "loki", 3100, None)
    code, checks = lab.run("--only", "loki", timeout=3)
    assert code == 1
    ready = checks["loki.ready"]
    assert ready["status"] == "FAIL"
    assert ready["detail"].startswith("no Ready pod behind the Service after ")
    assert "no endpoints available for service" in ready["detail"]
    assert "cluster.pod.loki" in ready["hint"]


def test_an_empty_data_directory(lab: Lab) -> None:
    shutil.rmtree(lab.storage_root / "tempo")
    (lab.storage_root / "tempo").mkdir()
    code, checks = lab.run("--only", "cluster")
    data = checks["cluster.data.tempo"]
    assert code == 1 and data["status"] == "FAIL"
    assert "is empty: Tempo is not writing there" in data["detail"]


def test_the_api_server_down_is_exit_3_with_the_cluster_checks_skipped(lab: Lab) -> None:
    lab.api.stop()
    code, checks = lab.run("--only", "cluster,alloy", timeout=5)
    assert code == 3, {k: (v["status"], v["detail"]) for k, v in checks.items()}
    # what SSH can still see is still checked: the data directories on the storage node
    assert checks["cluster.data.loki"]["status"] == "PASS"
    for check_id in ("cluster.namespace", "cluster.volume.loki", "cluster.pod.loki", "alloy.pods"):
        assert checks[check_id]["status"] == "SKIP", checks[check_id]
        assert "cannot reach the Kubernetes API" in checks[check_id]["detail"]
    assert checks["cluster.data.loki"]["status"] == "PASS"


def test_a_named_kubeconfig_that_does_not_exist_exits_3(lab: Lab, tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", "-c", str(lab.config), "--kubeconfig", str(tmp_path / "nope"),
                                 "--only", "cluster"])
    assert result.exit_code == 3
    assert "no kubeconfig at" in result.output
