"""`verify` and `doctor` on one body of evidence: a cluster whose API server answers but cannot reach a kubelet or
a Service's pod, and every `verify` failure the fakes can produce.

No cluster can run here, so the Kubernetes API is the fake server of tests/lab/fake_kube.py (on
127.0.0.1), answering as a real API server does when it cannot dial a node's kubelet (a 500 Status
carrying the dial error) or a Service's pod (the proxy's 503): the shapes are kept, with their
sources, in tests/data/kube/kubelet-unreachable.json. Its service proxy forwards to the fake Loki,
Tempo and Grafana servers of tests/lab/fake_observability.py (tests/lab/doctor_lab.py seeds the
stack). SSH goes to a closed port: the checks that need it are skipped, and doctor's overlay
diagnosis says it could not run. The CLI runs in-process and unchanged.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.lab import doctor_lab
from tests.lab.doctor_lab import NS, event, pod, read_bundle, seed_stack
from tests.lab.fake_kube import FakeKube, KubeLab
from tests.lab.fake_observability import FakeGrafana, FakeLoki, FakeTempo, Reply
from tests.lab.sshd import free_port
from typer.testing import CliRunner

from o11yctl.cli import app

runner = CliRunner()
NODE2_DIAL = "dial tcp 10.0.0.103:10250: connect: no route to host"
GRAFANA_DIAL = "dial tcp 10.42.0.12:3000: connect: no route to host"


@dataclass
class Lab:
    kube: KubeLab
    loki: FakeLoki
    tempo: FakeTempo
    grafana: FakeGrafana
    config: Path

    @property
    def api(self) -> FakeKube:
        return self.kube.api

    def cli(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = runner.invoke(app, [args[0], "-c", str(self.config), "--kubeconfig", str(self.kube.kubeconfig),
                                     "--json", *args[1:]])
        try:
            return result.exit_code, json.loads(result.stdout)
        except ValueError:
            pytest.fail(f"not JSON (exit {result.exit_code}): {result.output}")

    def verify(self, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
        code, doc = self.cli("verify", "--timeout", "6", *args)
        return code, {c["id"]: c for c in doc["checks"]}


@pytest.fixture
def lab(fake_kube: KubeLab, tmp_path: Path) -> Iterator[Lab]:
    closed = f"    ssh_host: 127.0.0.1\n    ssh_port: {free_port()}\n    ssh_user: nobody\n"
    config = tmp_path / "o11yctl.yaml"
    config.write_text(
        "nodes:\n"
        f"  - name: node-1\n    address: 10.0.0.102\n    role: server\n{closed}"
        f"  - name: node-2\n    address: 10.0.0.103\n    role: agent\n{closed}"
        "    labels:\n      hardware: heavy\n    taints:\n      - key: heavy\n        value: 'true'\n"
        "        effect: NoSchedule\n"
        f"ssh:\n  known_hosts: {tmp_path / 'known_hosts'}\n  connect_timeout: 3\n"
    )
    seed_stack(fake_kube.api)
    with doctor_lab.serving_services(fake_kube.api) as (loki, tempo, grafana):
        yield Lab(fake_kube, loki, tempo, grafana, config)


def ids(doc: dict[str, Any]) -> list[str]:
    return [f["id"] for f in doc["findings"]]


def the(doc: dict[str, Any], fid: str, subject: str | None = None) -> dict[str, Any]:
    found = [f for f in doc["findings"] if f["id"] == fid and (subject is None or f["subject"] == subject)]
    assert len(found) == 1, json.dumps(doc["findings"], indent=1)
    return found[0]


# --- the issue's cluster ------------------------------------------------------------------------------


def break_like_the_issue(lab: Lab) -> None:
    """node-2's kubelet out of the API server's reach; Grafana's pod too (its proxy answers 503)."""
    lab.api.unreachable_kubelet("node-2")
    lab.api.unreachable_endpoint(NS, "grafana", 80, "10.42.0.12:3000")


def test_verify_reads_the_api_servers_answers_and_points_at_the_kubelet_and_the_pod(lab: Lab) -> None:
    break_like_the_issue(lab)
    code, checks = lab.verify("--only", "alloy,grafana")
    assert code == 1
    push = checks["alloy.push-errors"]
    assert push["status"] == "FAIL"
    assert push["detail"].startswith("the logs of alloy-n2 could not be read: the API server could not reach the "
                                     "kubelet of node-2: HTTP 500: Get \"https://10.0.0.103:10250/containerLogs/"
                                     "logging/alloy-n2/alloy?sinceSeconds=900&tailLines=2000\": " + NODE2_DIAL)
    assert "TCP 10250" in push["hint"] and "node-2" in push["hint"] and "o11yctl doctor" in push["hint"]
    assert "/readyz" not in push["hint"] and "the API server failed" not in push["hint"]
    health = checks["grafana.health"]
    assert health["status"] == "FAIL"
    assert health["detail"] == ("the Kubernetes API server could not connect to Grafana's pod at 10.42.0.12:3000 "
                                "behind svc/grafana:80: HTTP 503 ServiceUnavailable: error trying to reach service: "
                                + GRAFANA_DIAL)
    assert "{" not in health["detail"]  # the Status is read, not pasted
    assert "fix-vxlan" in health["hint"] and "o11yctl doctor" in health["hint"] and "Ready" in health["hint"]


def test_doctor_right_after_exits_1_naming_the_node_the_port_and_the_pod(lab: Lab) -> None:
    break_like_the_issue(lab)
    code, doc = lab.cli("doctor")
    assert code == 1 and doc["healthy"] is False
    assert sorted(ids(doc)) == ["kubelet.unreachable", "service.unreachable"]
    kubelet = the(doc, "kubelet.unreachable")
    assert kubelet["subject"] == "node/node-2"
    assert "cannot connect to the kubelet of node-2 at 10.0.0.103:10250" in kubelet["cause"]
    assert "K3s needs TCP 10250 open from the server to every node" in kubelet["cause"]
    assert any(NODE2_DIAL in e for e in kubelet["evidence"])
    assert "-s 10.0.0.102/32 -p tcp --dport 10250 -j ACCEPT" in kubelet["fix"]
    assert kubelet["fix_action"]["kind"] == "open-kubelet-port"
    service = the(doc, "service.unreachable")
    assert service["subject"] == "pod/grafana-5d8f7c9b6-x2x4z" and "10.42.0.12:3000" in service["cause"]
    assert any("error trying to reach service: " + GRAFANA_DIAL in e for e in service["evidence"])
    assert lab.api.mutations == []


def test_the_bundle_says_which_logs_are_missing_and_why(lab: Lab, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O11YCTL_HELM", str(tmp_path / "no-helm-here"))
    lab.api.unreachable_kubelet("node-1")
    lab.api.unreachable_kubelet("node-2")
    out = tmp_path / "support.tar.gz"
    code, doc = lab.cli("doctor", "--bundle", str(out))
    assert code == 1
    assert [f["subject"] for f in doc["findings"] if f["id"] == "kubelet.unreachable"] == ["node/node-1", "node/node-2"]
    files = read_bundle(out)
    manifest = files["MANIFEST.txt"]
    assert ("logs of 5 pods (alloy-n1, alloy-n2, grafana-5d8f7c9b6-x2x4z, loki-0, tempo-0): the API server could not "
            "reach the kubelets on node-1, node-2 (dial tcp 10.0.0.102:10250: connect: no route to host; "
            f"{NODE2_DIAL})") in manifest
    assert not any(name.startswith(f"{NS}/logs/") for name in files)
    in_bundle = json.loads(files["doctor/findings.json"])
    assert [f["id"] for f in in_bundle].count("kubelet.unreachable") == 2
    assert doc["bundle"]["notes"] and any("logs of 5 pods" in n for n in doc["bundle"]["notes"])


def test_a_bundle_of_a_healthy_cluster_leaves_no_log_out(lab: Lab, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O11YCTL_HELM", str(tmp_path / "no-helm-here"))
    out = tmp_path / "support.tar.gz"
    code, doc = lab.cli("doctor", "--bundle", str(out))
    assert code == 0 and doc["findings"] == []
    manifest = read_bundle(out)["MANIFEST.txt"]
    assert "logs of" not in manifest and "helm status and values not collected" in manifest


# --- every verify failure the fakes can produce: doctor names a cause or says it cannot tell ----------


def _delete(api: FakeKube, plural: str, name: str, namespace: str = "") -> None:
    with api.lock:
        del api.store[("", "v1", plural, namespace, name)]


def _replace_pod(api: FakeKube, name: str, component: str, **kw: Any) -> None:
    seeded = copy.deepcopy(api.obj("v1", "Pod", name, NS))
    assert seeded is not None
    fresh = pod(name, component, **kw)
    fresh["status"]["podIP"] = seeded["status"].get("podIP", "")
    api.seed(fresh, manager="kubelet")


PUSH_TIMEOUT = ('ts=2025-01-01T10:02:00Z level=warn msg="error sending batch, will retry" component=loki.write.default '
                'error="Post \\"http://loki.logging.svc.cluster.local:3100/loki/api/v1/push\\": context deadline '
                'exceeded"\n')

#: name -> (how to break the stack, the verify check that then FAILs, the finding doctor gives for it).
BREAKS: dict[str, tuple[Callable[[Lab], None], str, str]] = {
    "the namespace is gone": (lambda lab: _delete(lab.api, "namespaces", NS), "cluster.namespace",
                              "stack.namespace-missing"),
    "a PV deleted under its bound claim": (lambda lab: _delete(lab.api, "persistentvolumes", "loki-pv"),
                                           "cluster.volume.loki", "verify.unexplained"),
    "Loki crash-loops": (lambda lab: _replace_pod(lab.api, "loki-0", "loki", claims=["loki-pvc"], ready=False,
                                                  node_selector=doctor_lab.LOKI_SELECTOR,
                                                  tolerations=[doctor_lab.HEAVY_TOLERATION],
                                                  waiting="CrashLoopBackOff", restarts=3, last_reason="Error"),
                         "cluster.pod.loki", "crashloop.unknown"),
    "Grafana not Ready, no event says why": (lambda lab: _replace_pod(lab.api, "grafana-5d8f7c9b6-x2x4z", "grafana",
                                                                      node="node-1", ready=False),
                                             "cluster.pod.grafana", "verify.unexplained"),
    "no Alloy pod on node-2": (lambda lab: _delete(lab.api, "pods", "alloy-n2", NS), "alloy.pods",
                               "verify.unexplained"),
    "Alloy's pushes time out": (lambda lab: lab.api.set_log(NS, "alloy-n1", PUSH_TIMEOUT, "alloy", append=True),
                                "alloy.push-errors", "alloy.push-timeout"),
    "node-2's kubelet out of reach": (lambda lab: lab.api.unreachable_kubelet("node-2"), "alloy.push-errors",
                                      "kubelet.unreachable"),
    "Loki's /ready fails": (lambda lab: lab.loki.script("GET", "/ready", Reply(500, "config error"),
                                                       repeat_last=True), "loki.ready", "verify.unexplained"),
    "no logs of the namespace in Loki": (lambda lab: lab.loki.script(
        "GET", "/loki/api/v1/query_range", Reply(200, {"status": "success", "data": {
            "resultType": "streams", "result": [], "stats": {}}}), repeat_last=True),
        "loki.cluster-logs", "verify.unexplained"),
    "Loki's Service without a Ready pod": (lambda lab: lab.api.set_backend(NS, "loki", 3100, None), "loki.ready",
                                           "service.no-endpoints"),
    "Tempo's search fails": (lambda lab: lab.tempo.script("GET", "/api/search", Reply(
        500, "rpc error: code = Unavailable desc = no healthy queriers"), repeat_last=True), "tempo.search",
        "verify.unexplained"),
    "Grafana's database fails": (lambda lab: setattr(lab.grafana, "database_failing", True), "grafana.health",
                                 "verify.unexplained"),
    "Grafana's pod out of the API server's reach": (
        lambda lab: lab.api.unreachable_endpoint(NS, "grafana", 80, "10.42.0.12:3000", "i/o timeout"),
        "grafana.health", "service.unreachable"),
    "the route not accepted": (lambda lab: lab.api.update_status(
        "gateway.networking.k8s.io/v1", "HTTPRoute", "grafana", NS, {"parents": [{
            "parentRef": {"name": "eg", "namespace": "default"}, "controllerName": "x",
            "conditions": [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners",
                            "message": "No listeners included by this parent ref allowed this attachment."}]}]}),
        "grafana.httproute", "verify.unexplained"),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_each_verify_failure_has_a_doctor_finding(lab: Lab, case: str) -> None:
    breakage, check_id, finding_id = BREAKS[case]
    breakage(lab)
    group = check_id.split(".")[0]
    _code, checks = lab.verify("--only", group, "--skip", "cluster" if group != "cluster" else "loki")
    assert checks[check_id]["status"] == "FAIL", checks[check_id]
    code, doc = lab.cli("doctor")
    assert code == 1, doc
    assert finding_id in ids(doc), json.dumps(doc["findings"], indent=1)
    if finding_id == "verify.unexplained":
        f = the(doc, "verify.unexplained", f"check/{check_id}")
        assert f["cause"].startswith("doctor cannot tell why") and f"o11yctl verify --only {group}" in f["fix"]
        assert any(checks[check_id]["detail"] in e for e in f["evidence"])


def test_no_verify_failure_leaves_doctor_saying_no_problems(lab: Lab) -> None:
    """The other way round: a cluster doctor calls healthy passes every check doctor could run."""
    lab.api.seed(event("Pod", "loki-0", "Pulled", "Container image already present on machine", type="Normal"))
    code, doc = lab.cli("doctor")
    assert code == 0 and doc["findings"] == []
    text = runner.invoke(app, ["doctor", "-c", str(lab.config), "--kubeconfig", str(lab.kube.kubeconfig)])
    said = " ".join(text.stdout.split())
    assert "no problems found" in said and "of verify's read-only checks pass" in said
    assert "not checked here: the data directories over SSH" in said and "`o11yctl verify`" in said
    _code, checks = lab.verify()
    could_run = [c for i, c in checks.items() if not i.startswith(("cluster.data", "loki.e2e", "tempo.e2e",
                                                                   "grafana.datasources", "grafana.correlation",
                                                                   "grafana.route"))]
    assert all(c["status"] == "PASS" for c in could_run), could_run


def test_check_timeout_bounds_the_checks_doctor_runs_first(lab: Lab) -> None:
    """A slow Grafana (3 s per answer) within the default 15 s passes; with --check-timeout 0.5 it fails in time."""
    import time

    lab.grafana.delay = 3.0
    start = time.monotonic()
    code, doc = lab.cli("doctor", "--check-timeout", "0.5")
    assert time.monotonic() - start < 2.5
    assert code == 1
    finding = the(doc, "verify.unexplained", "check/grafana.health")
    assert "timed out" in finding["evidence"][0]

    code, doc = lab.cli("doctor")
    assert "check/grafana.health" not in [f["subject"] for f in doc["findings"]], doc["findings"]


def test_check_timeout_must_be_positive(lab: Lab) -> None:
    result = runner.invoke(app, ["doctor", "-c", str(lab.config), "--check-timeout", "0", "--json"])
    assert result.exit_code == 2
    assert "--check-timeout" in json.loads(result.stdout)["error"]["message"]
