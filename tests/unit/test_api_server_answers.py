"""Messages from the API server are read, not pasted: Status bodies, dial errors, and the verdicts built on them.

Pure functions on the forms kept in tests/data/kube/kubelet-unreachable.json (from the Kubernetes
source, and from answers captured on real clusters).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from o11yctl.executors.http import HttpResponse
from o11yctl.executors.kube import (
    KubeletUnreachable,
    Response,
    dial_error,
    kubelet_dial,
    read_status,
    stream_error,
)
from o11yctl.verify.alloy import UnreadableLog, judge_alloy_logs
from o11yctl.verify.base import Polled
from o11yctl.verify.grafana import judge_health
from o11yctl.verify.proxied import judge_proxy
from o11yctl.verify.ready import ReadyFacts, judge_ready

DATA = json.loads((Path(__file__).resolve().parents[1] / "data" / "kube" / "kubelet-unreachable.json").read_text())
ISSUE_LOG = ('Get "https://10.0.0.103:10250/containerLogs/logging/alloy-n2/alloy?sinceSeconds=900&tailLines=2000": '
             "dial tcp 10.0.0.103:10250: connect: no route to host")


def body(name: str, **values: str) -> bytes:
    doc = json.loads(json.dumps(DATA["answers"][name]["body"]))
    doc["message"] = doc["message"].format(**values)
    return json.dumps(doc).encode()


def test_a_status_is_parsed_whole_and_anything_else_is_not_a_status() -> None:
    status = read_status(503, body("service_proxy_unreachable", pod_address="10.42.0.12:3000",
                                   why="connect: no route to host"))
    assert status is not None
    assert (status.code, status.reason) == (503, "ServiceUnavailable")
    assert status.describe() == ("HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp "
                                 "10.42.0.12:3000: connect: no route to host")
    log = read_status(500, body("pod_log", address="10.0.0.103", namespace="logging", pod="alloy-n2",
                                container="alloy", why="connect: no route to host"))
    assert log is not None and log.reason == "" and log.describe() == f"HTTP 500: {ISSUE_LOG}"
    for other in (b'{"status": "success"}', b"Ingester not ready", b"", b'{"kind": "Pod", "apiVersion": "v1"}'):
        assert read_status(503, other) is None


@pytest.mark.parametrize("message", DATA["captured"])
def test_every_captured_dial_error_is_read(message: str) -> None:
    dial = dial_error(message)
    assert dial is not None, message
    assert dial.text in message and dial.why in ("i/o timeout", "connect: no route to host",
                                                 "getsockopt: no route to host", "connect: connection refused")
    assert message.endswith(dial.text)


def test_a_dial_error_followed_by_more_text_stops_at_the_reason() -> None:
    dial = dial_error(f"read the log: {ISSUE_LOG} (HTTP 500); 2 more")
    assert dial is not None and (dial.host, dial.port, dial.why) == ("10.0.0.103", 10250, "connect: no route to host")
    ipv6 = dial_error("error dialing backend: dial tcp [fd00::3]:10250: connect: network is unreachable")
    assert ipv6 is not None and (ipv6.host, ipv6.address) == ("fd00::3", "fd00::3:10250")
    assert dial_error("the server could not find the requested resource") is None


def test_a_kubelet_dial_is_told_from_a_pods() -> None:
    for name, values in (("pod_log", {"address": "10.0.0.103", "namespace": "logging", "pod": "p", "container": "c"}),
                         ("exec", {"address": "10.0.0.103"}), ("portforward", {"address": "10.0.0.103"})):
        status = read_status(500, body(name, why="i/o timeout", **values))
        assert status is not None and kubelet_dial(status) is not None, name
    proxied = read_status(503, body("service_proxy_unreachable", pod_address="10.42.0.12:3000", why="i/o timeout"))
    assert proxied is not None and kubelet_dial(proxied) is None
    # A kubelet on another port is still one when the message names a kubelet path.
    other = read_status(500, b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":500,'
                             b'"message":"Get \\"https://n2:10255/containerLogs/a/b/c\\": dial tcp 10.0.0.5:10255: '
                             b'i/o timeout"}')
    assert other is not None and kubelet_dial(other) is not None


def test_a_failed_log_read_names_the_kubelet_not_the_api_servers_health() -> None:
    resp = Response(500, {"Content-Type": "application/json"},
                    body("pod_log", address="10.0.0.103", namespace="logging", pod="alloy-n2", container="alloy",
                         why="connect: no route to host"))
    error = stream_error(resp, "read the log of pod logging/alloy-n2, container alloy")
    assert isinstance(error, KubeletUnreachable)
    assert error.message == f"read the log of pod logging/alloy-n2, container alloy: {ISSUE_LOG} (HTTP 500)"
    assert error.dial.address == "10.0.0.103:10250" and error.exit_code == 1
    assert error.hint is not None and "TCP 10250" in error.hint and "/readyz" not in error.hint
    # Any other 500 is the API server's own failure, as before.
    plain = stream_error(Response(500, {}, b'{"kind":"Status","apiVersion":"v1","message":"etcdserver: timeout",'
                                           b'"reason":"InternalError","code":500}'), "read the log")
    assert not isinstance(plain, KubeletUnreachable) and plain.hint and "/readyz" in plain.hint


# --- verify's verdicts on them -----------------------------------------------------------------------


def proxied(status: int, raw: bytes) -> HttpResponse:
    return HttpResponse("GET", "svc/grafana:80 in logging (through the Kubernetes API)/grafana/api/health", status,
                        body=raw)


def test_grafana_health_behind_an_unreachable_pod_says_so_whole() -> None:
    raw = body("service_proxy_unreachable", pod_address="10.42.0.12:3000", why="connect: no route to host")
    verdict = judge_health(proxied(503, raw), where="svc/grafana:80", hint="check the Grafana pod")
    assert verdict.status == "FAIL"
    assert verdict.detail == ("the Kubernetes API server could not connect to Grafana's pod at 10.42.0.12:3000 behind "
                              "svc/grafana:80: HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp "
                              "10.42.0.12:3000: connect: no route to host")
    assert verdict.hint is not None and "fix-vxlan" in verdict.hint and "o11yctl doctor" in verdict.hint
    assert "Ready" in verdict.hint


def test_a_service_without_endpoints_and_a_missing_service_are_named() -> None:
    empty = judge_proxy(proxied(503, body("service_proxy_no_endpoints", service="grafana")), component="Grafana",
                        namespace="logging", service="grafana", port=80)
    assert empty is not None and empty.detail == ('svc/grafana:80 has no Ready pod behind it: HTTP 503 '
                                                  'ServiceUnavailable: no endpoints available for service "grafana"')
    assert empty.hint is not None and "cluster.pod.grafana" in empty.hint
    missing = judge_proxy(proxied(404, b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":'
                                       b'"services \\"grafana\\" not found","reason":"NotFound","code":404}'),
                          component="Grafana", namespace="logging", service="grafana", port=80)
    assert missing is not None and "o11yctl install --only grafana" in (missing.hint or "")
    # The service's own answer is not the API server's.
    assert judge_proxy(proxied(503, b"Ingester not ready"), component="Loki", namespace="logging", service="loki",
                       port=3100) is None


def test_ready_does_not_wait_out_a_pod_the_api_server_cannot_reach() -> None:
    raw = body("service_proxy_unreachable", pod_address="10.42.1.10:3100", why="i/o timeout")
    resp = HttpResponse("GET", "svc/loki:3100/ready", 503, body=raw)
    verdict = judge_ready(ReadyFacts("Loki", "svc/loki:3100", Polled((resp,), 0.1, False)), namespace="logging",
                          not_ready_hint="loki hint", service="loki", port=3100)
    assert verdict.status == "FAIL" and "warming up" not in verdict.detail
    assert "could not connect to Loki's pod at 10.42.1.10:3100" in verdict.detail


def test_alloy_logs_the_api_server_could_not_read_name_the_node_and_the_port() -> None:
    unread = [UnreadableLog("alloy-n2", "node-2", "10.0.0.103:10250", f"HTTP 500: {ISSUE_LOG}")]
    verdict = judge_alloy_logs({"alloy-n1": "level=info msg=ok\n"}, namespace="logging", unreadable=unread)
    assert verdict.status == "FAIL"
    assert verdict.detail.startswith("the logs of alloy-n2 could not be read: the API server could not reach the "
                                     f"kubelet of node-2: HTTP 500: {ISSUE_LOG}")
    assert verdict.hint is not None and "TCP 10250" in verdict.hint and "node-2" in verdict.hint
    assert "/readyz" not in verdict.hint and "o11yctl doctor --fix" in verdict.hint
    only = judge_alloy_logs({}, namespace="logging", unreadable=unread)
    assert only.status == "FAIL" and "no running Alloy pod" not in only.detail
