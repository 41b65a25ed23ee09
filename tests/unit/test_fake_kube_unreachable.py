"""The fake API server's answers when a kubelet or a pod cannot be reached, held to the real server's.

These run against the fake Kubernetes API server of tests/lab/fake_kube.py (a real HTTPS server on
127.0.0.1), because no API server can run here; the tests of `verify` and `doctor` rely on the fake
answering like one. The shapes come from the Kubernetes source and from answers captured on real
clusters, kept in tests/data/kube/kubelet-unreachable.json (sources under tests/data/kube/sources/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.lab.fake_kube import KubeLab

from o11yctl.executors.kube import Kube, connect

DATA = json.loads((Path(__file__).resolve().parents[1] / "data" / "kube" / "kubelet-unreachable.json").read_text())
NS = "logging"


def expected(name: str, **values: str) -> tuple[int, dict[str, Any]]:
    """The status and body of one answer of the data file, its placeholders filled."""
    answer = DATA["answers"][name]
    body = json.loads(json.dumps(answer["body"]))
    body["message"] = body["message"].format(**values)
    return answer["status"], body


@pytest.fixture
def cluster(fake_kube: KubeLab) -> Iterator[tuple[KubeLab, Kube]]:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.add_node("node-2", address="10.0.0.103")
    api.seed({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "alloy-b2", "namespace": NS},
              "spec": {"nodeName": "node-2", "containers": [{"name": "alloy", "image": "grafana/alloy"},
                                                            {"name": "config-reloader", "image": "x"}]},
              "status": {"phase": "Running", "podIP": "10.42.1.20", "containerStatuses": [
                  {"name": n, "ready": True, "restartCount": 0, "state": {"running": {}}}
                  for n in ("alloy", "config-reloader")]}}, manager="kubelet")
    api.set_log(NS, "alloy-b2", "level=info msg=started\n", container="alloy")
    with connect(fake_kube.kubeconfig) as kube:
        yield fake_kube, kube


def answer(kube: Kube, method: str, path: str, query: list[tuple[str, str]] | None = None) -> tuple[int, str, Any]:
    resp = kube.request(method, path, query=query)
    return resp.status, resp.headers.get("Content-Type", ""), json.loads(resp.body)


def test_a_log_whose_kubelet_cannot_be_reached_is_the_api_servers_500(cluster: tuple[KubeLab, Kube]) -> None:
    lab, kube = cluster
    lab.api.unreachable_kubelet("node-2")
    status, content_type, body = answer(kube, "GET", f"/api/v1/namespaces/{NS}/pods/alloy-b2/log",
                                        [("container", "alloy"), ("sinceSeconds", "900"), ("tailLines", "2000")])
    want_status, want = expected("pod_log", address="10.0.0.103", namespace=NS, pod="alloy-b2", container="alloy",
                                 why="connect: no route to host")
    assert (status, content_type, body) == (want_status, DATA["answers"]["pod_log"]["content_type"], want)
    assert "reason" not in body  # ErrorToAPIStatus gives a plain error StatusReasonUnknown, which is omitempty


def test_exec_and_port_forward_fail_at_the_dial_to_the_kubelet(cluster: tuple[KubeLab, Kube]) -> None:
    lab, kube = cluster
    lab.api.unreachable_kubelet("node-2", "i/o timeout")
    for name, sub, query in (("exec", "exec", [("command", "ls"), ("stdout", "true"), ("container", "alloy")]),
                             ("portforward", "portforward", [("ports", "3100")])):
        status, _ct, body = answer(kube, "POST", f"/api/v1/namespaces/{NS}/pods/alloy-b2/{sub}", query)
        assert (status, body) == expected(name, address="10.0.0.103", why="i/o timeout"), name


def test_a_service_whose_pod_cannot_be_reached_is_the_proxys_503(cluster: tuple[KubeLab, Kube]) -> None:
    lab, kube = cluster
    lab.api.add_service(NS, "grafana", 80)
    lab.api.unreachable_endpoint(NS, "grafana", 80, "10.42.0.12:3000", "connect: connection refused")
    status, _ct, body = answer(kube, "GET", f"/api/v1/namespaces/{NS}/services/grafana:80/proxy/grafana/api/health")
    assert (status, body) == expected("service_proxy_unreachable", pod_address="10.42.0.12:3000",
                                      why="connect: connection refused")


def test_a_service_without_a_ready_pod_is_the_proxys_503(cluster: tuple[KubeLab, Kube]) -> None:
    lab, kube = cluster
    lab.api.add_service(NS, "loki", 3100)
    status, _ct, body = answer(kube, "GET", f"/api/v1/namespaces/{NS}/services/loki:3100/proxy/ready")
    assert (status, body) == expected("service_proxy_no_endpoints", service="loki")


def test_the_kubelet_reachable_again_gives_the_log(cluster: tuple[KubeLab, Kube]) -> None:
    lab, kube = cluster
    lab.api.unreachable_kubelet("node-2")
    lab.api.unreachable_kubelet("node-2", None)
    assert kube.pod_log(NS, "alloy-b2", container="alloy") == "level=info msg=started\n"


def test_the_kubelet_address_is_the_nodes_internal_ip_first_then_external_then_hostname(
        cluster: tuple[KubeLab, Kube]) -> None:
    lab, kube = cluster
    node = lab.api.obj("v1", "Node", "node-2")
    assert node is not None
    node["status"]["addresses"] = [{"type": "Hostname", "address": "node-2"},
                                   {"type": "ExternalIP", "address": "203.0.113.7"}]
    lab.api.seed(node, manager="k3s")
    lab.api.unreachable_kubelet("node-2")
    _status, _ct, body = answer(kube, "GET", f"/api/v1/namespaces/{NS}/pods/alloy-b2/log", [("container", "alloy")])
    assert body["message"] == ('Get "https://203.0.113.7:10250/containerLogs/logging/alloy-b2/alloy": '
                               "dial tcp 203.0.113.7:10250: connect: no route to host")


def test_exec_to_a_reachable_kubelet_is_not_modelled_and_fails_the_test(cluster: tuple[KubeLab, Kube]) -> None:
    lab, kube = cluster
    status, _ct, body = answer(kube, "POST", f"/api/v1/namespaces/{NS}/pods/alloy-b2/exec", [("command", "ls")])
    assert (status, body["message"]) == (400, "a container name must be specified for pod alloy-b2, choose one of: "
                                              "[alloy config-reloader]")  # streamLocation's validateContainer
    status, _ct, body = answer(kube, "POST", f"/api/v1/namespaces/{NS}/pods/alloy-b2/exec",
                               [("command", "ls"), ("container", "alloy")])
    assert status == 501 and body["reason"] == "NotImplemented"
    assert lab.api.unexpected and "exec to a reachable kubelet" in lab.api.unexpected[-1]
    lab.api.unexpected.clear()  # recorded as it should be; this test is the one place that expects it
