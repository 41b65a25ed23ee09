"""The Kubernetes executor with the real kubernetes client against the fake API server."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from tests.lab.fake_kube import FakeKube, KubeLab, KubeletPod

from o11yctl.errors import KubeError, PreflightError
from o11yctl.executors.kube import FIELD_MANAGER, Kube, connect

PV = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "loki-pv"},
      "spec": {"capacity": {"storage": "200Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local-storage",
               "persistentVolumeReclaimPolicy": "Retain", "local": {"path": "/mnt/k8s-storage/loki"}}}


@pytest.fixture
def kube(fake_kube: KubeLab) -> Kube:
    return connect(fake_kube.kubeconfig, timeout=10)


def test_apply_reports_created_changed_unchanged(kube: Kube, fake_kube: KubeLab) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging", "labels": {"a": "1"}}}
    assert kube.apply_manifest(ns).outcome == "created"
    assert kube.apply_manifest(ns).outcome == "unchanged"
    changed = {**ns, "metadata": {"name": "logging", "labels": {"a": "2"}}}
    diff = kube.diff(changed)
    assert (diff.outcome, diff.changes) == ("changed", ('metadata.labels.a: "1" -> "2"',))
    assert fake_kube.api.obj("v1", "Namespace", "logging")["metadata"]["labels"]["a"] == "1"  # type: ignore[index]
    assert kube.apply_manifest(changed).outcome == "changed"
    live = kube.get("v1", "Namespace", "logging")
    assert live is not None and any(m["manager"] == FIELD_MANAGER for m in live["metadata"]["managedFields"])


def test_custom_resources_by_discovery(kube: Kube, fake_kube: KubeLab) -> None:
    fake_kube.api.install_gateway_api()
    fake_kube.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "grafana", "namespace": "logging"}, "spec": {"parentRefs": [{"name": "eg"}]}}
    assert kube.apply_manifest(route).outcome == "created"
    assert kube.resource("gateway.networking.k8s.io/v1", "GRPCRoute") == ("grpcroutes", True)
    assert kube.discover("example.com/v1") is None
    with pytest.raises(KubeError, match="does not serve"):
        kube.resource("example.com/v1", "Widget")


def test_refusals_name_the_object_and_the_next_step(kube: Kube, fake_kube: KubeLab) -> None:
    kube.apply_manifest(PV)
    moved = {**PV, "spec": {**PV["spec"], "local": {"path": "/elsewhere"}}}
    with pytest.raises(KubeError) as invalid:
        kube.apply_manifest(moved)
    assert "apply PersistentVolume loki-pv" in invalid.value.message
    assert "spec.persistentvolumesource is immutable" in invalid.value.message and "(HTTP 422)" in invalid.value.message
    assert "cannot change after creation" in (invalid.value.hint or "")
    with pytest.raises(KubeError) as missing_ns:
        kube.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "loki-pvc", "namespace": "logging"}, "spec": {}})
    assert 'namespaces "logging" not found (HTTP 404)' in missing_ns.value.message
    fake_kube.api.fail("PATCH", "/api/v1/persistentvolumes/loki-pv", status=409, reason="Conflict",
                       message='Operation cannot be fulfilled on persistentvolumes "loki-pv": the object has been '
                               "modified; please apply your changes to the latest version and try again")
    with pytest.raises(KubeError) as conflict:
        kube.apply(PV)
    assert "(HTTP 409)" in conflict.value.message and "re-run" in (conflict.value.hint or "")
    fake_kube.api.fail("GET", "/api/v1/nodes", status=403, reason="Forbidden",
                       message='nodes is forbidden: User "bob" cannot list resource "nodes"')
    with pytest.raises(KubeError) as forbidden:
        kube.list("v1", "Node")
    assert forbidden.value.exit_code == 3 and "cluster-admin" in (forbidden.value.hint or "")


def test_apply_without_force_conflicts_with_a_hand_made_object(kube: Kube, fake_kube: KubeLab) -> None:
    fake_kube.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging",
                                                                           "labels": {"team": "a"}}})
    mine = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging", "labels": {"team": "b"}}}
    with pytest.raises(KubeError, match="conflict"):
        kube.apply(mine, force=False)
    assert kube.diff(mine).adopted
    assert kube.apply_manifest(mine).outcome == "changed"


def test_service_proxy(kube: Kube, fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    seen: list[tuple[str, str, dict[str, list[str]], bytes, dict[str, str]]] = []

    def loki(method: str, path: str, query: dict[str, list[str]], body: bytes,
             headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        seen.append((method, path, query, body, {k.lower(): v for k, v in headers.items()}))
        return 200, "application/json", b'{"status":"success"}'

    api.add_service("logging", "loki", 3100, loki)
    status, body = kube.proxy_request("logging", "loki", 3100, "POST", "/loki/api/v1/push", {"a": "b"}, b"{}")
    assert (status, body) == (200, b'{"status":"success"}')
    [(method, path, query, sent, headers)] = seen
    assert (method, path, query, sent) == ("POST", "/loki/api/v1/push", {"a": ["b"]}, b"{}")
    # The API server keeps its own credentials and says where the request came from.
    assert "authorization" not in headers
    assert headers["content-type"] == "application/json" and headers["accept"] == "application/json"
    assert headers["x-forwarded-uri"] == "/api/v1/namespaces/logging/services/loki:3100/proxy/loki/api/v1/push"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    api.add_service("logging", "tempo", 3200)
    status, body = kube.proxy_request("logging", "tempo", 3200, "GET", "/ready")
    assert status == 503 and b"no endpoints available" in body
    status, _ = kube.proxy_request("logging", "grafana", 80, "GET", "/api/health")
    assert status == 404


def test_a_hung_backend_holds_up_only_its_own_requests(kube: Kube, fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    release = threading.Event()

    def hung(method: str, path: str, query: dict[str, list[str]], body: bytes,
             headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        release.wait(30)
        return 200, "text/plain", b"late\n"

    api.add_service("logging", "tempo", 3200, hung)
    api.add_service("logging", "loki", 3100, (200, "text/plain", b"ready\n"))
    outcome: list[str] = []

    def ask_tempo() -> None:
        try:
            kube.proxy_request("logging", "tempo", 3200, "GET", "/ready", timeout=3)
            outcome.append("answered")
        except KubeError as exc:
            outcome.append(exc.message)

    waiting = threading.Thread(target=ask_tempo)
    waiting.start()
    try:
        time.sleep(0.3)  # the request to tempo is now waiting on its backend
        started = time.monotonic()
        assert kube.proxy_request("logging", "loki", 3100, "GET", "/ready", timeout=3) == (200, b"ready\n")
        assert kube.get("v1", "Namespace", "logging") is not None
        assert time.monotonic() - started < 1.0
        waiting.join(10)
        assert outcome and "timed out" in outcome[0]
    finally:
        release.set()
        waiting.join(10)


def test_pod_log(kube: Kube, fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    api.add_pod("logging", "loki-0")
    api.set_log("logging", "loki-0", "old line\n", age=3600)
    api.set_log("logging", "loki-0", "one\ntwo\nthree\n", append=True)
    assert kube.pod_log("logging", "loki-0") == "old line\none\ntwo\nthree\n"
    assert kube.pod_log("logging", "loki-0", container="main", tail_lines=2) == "two\nthree\n"
    assert kube.pod_log("logging", "loki-0", since_seconds=60) == "one\ntwo\nthree\n"
    assert kube.pod_log("logging", "loki-0", tail_lines=4, since_seconds=60) == "one\ntwo\nthree\n"
    # No previous run, no such pod, no such container: the API server's 400 and 404 are "no log".
    assert kube.pod_log("logging", "loki-0", previous=True) is None
    assert kube.pod_log("logging", "loki-1") is None
    assert kube.pod_log("logging", "loki-0", container="loki") is None
    raw = kube.request("GET", "/api/v1/namespaces/logging/pods/loki-0/log", query={"previous": "true"})
    assert raw.status == 400
    assert raw.json()["message"] == 'previous terminated container "main" in pod "loki-0" not found'


def test_pod_log_follows_the_container_status(kube: Kube, fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    alloy = api.add_pod("logging", "alloy-a1")
    alloy["spec"]["containers"] = [{"name": "alloy", "image": "x"}, {"name": "config-reloader", "image": "y"}]
    alloy["status"]["containerStatuses"] = [
        {"name": "alloy", "ready": False, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}},
        {"name": "config-reloader", "ready": False, "restartCount": 0,
         "state": {"waiting": {"reason": "ContainerCreating"}}},
    ]
    api.seed(alloy, manager="kubelet")
    api.set_log("logging", "alloy-a1", "crashed\n", container="alloy", previous=True)
    # Several containers: one must be named.
    raw = kube.request("GET", "/api/v1/namespaces/logging/pods/alloy-a1/log")
    assert raw.status == 400
    assert raw.json()["message"] == ("a container name must be specified for pod alloy-a1, choose one of: "
                                     "[alloy config-reloader]")
    assert kube.pod_log("logging", "alloy-a1") is None
    # Waiting to restart, the container shows the run that crashed, with or without previous.
    assert kube.pod_log("logging", "alloy-a1", container="alloy") == "crashed\n"
    assert kube.pod_log("logging", "alloy-a1", container="alloy", previous=True) == "crashed\n"
    raw = kube.request("GET", "/api/v1/namespaces/logging/pods/alloy-a1/log", query={"container": "config-reloader"})
    assert raw.status == 400
    assert raw.json()["message"] == ('container "config-reloader" in pod "alloy-a1" is waiting to start: '
                                     "ContainerCreating")
    # Not scheduled yet: an empty log, not an error.
    api.add_pod("logging", "loki-0", phase="Pending", node="")
    assert kube.pod_log("logging", "loki-0") == ""
    # Invalid options are the API server's 422.
    raw = kube.request("GET", "/api/v1/namespaces/logging/pods/loki-0/log", query={"tailLines": "-1"})
    assert raw.status == 422 and "tailLines: Invalid value: -1" in raw.json()["message"]


def test_pod_log_refused_or_failed_is_an_error(kube: Kube, fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    api.add_pod("logging", "loki-0")
    path = "/api/v1/namespaces/logging/pods/loki-0/log"
    api.fail("GET", path, status=403, reason="Forbidden",
             message='pods "loki-0" is forbidden: User "dev" cannot get resource "pods/log" in API group "" in '
                     'the namespace "logging"')
    with pytest.raises(KubeError, match="cannot get resource") as refused:
        kube.pod_log("logging", "loki-0")
    assert refused.value.exit_code == 3
    api.fail("GET", path, message="Get \"https://10.0.0.103:10250/containerLogs/logging/loki-0/main\": dial tcp "
                                  "10.0.0.103:10250: connect: no route to host")
    with pytest.raises(KubeError, match="no route to host") as failed:
        kube.pod_log("logging", "loki-0")
    assert failed.value.exit_code != 3


def test_kubeconfig_problems_are_preflight_errors(fake_kube: KubeLab, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PreflightError, match="no kubeconfig at"):
        connect(tmp_path / "missing")
    with pytest.raises(PreflightError, match="has no context 'prod'") as info:
        connect(fake_kube.kubeconfig, "prod")
    assert "fake" in (info.value.hint or "")
    monkeypatch.setenv("KUBECONFIG", str(fake_kube.kubeconfig))
    assert connect().server_version().startswith("v1.31")
    token = yaml.safe_load(fake_kube.kubeconfig.read_text())
    token["users"][0]["user"]["token"] = "wrong"
    wrong = tmp_path / "wrong"
    wrong.write_text(yaml.safe_dump(token))
    with pytest.raises(KubeError, match="Unauthorized") as unauthorized:
        connect(wrong).server_version()
    assert unauthorized.value.exit_code == 3


def test_unknown_paths_are_recorded_by_the_fake(kube: Kube, fake_kube: KubeLab) -> None:
    resp = kube.request("GET", "/apis/apps/v1/namespaces/x/deployments")
    assert resp.status == 404
    recorded = list(fake_kube.api.unexpected)
    fake_kube.api.unexpected.clear()  # the fixture would fail the test for it at teardown
    assert recorded == ["GET /apis/apps/v1/namespaces/x/deployments (unknown resource)"]


def test_created_pods_start_pending_and_a_hook_plays_their_kubelet(kube: Kube, fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    api.add_node("node-2", address="10.0.0.103")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ping", "namespace": "logging"},
           "spec": {"nodeName": "node-2", "restartPolicy": "Never",
                    "containers": [{"name": "ping", "image": "busybox:latest"}]},
           "status": {"phase": "Succeeded"}}  # a posted status is ignored, as the API server does

    made = kube.create(pod)
    assert made["status"]["phase"] == "Pending" and made["metadata"]["uid"]
    with pytest.raises(KubeError, match="already exists"):
        kube.create(pod)
    ran = threading.Event()

    def kubelet(started: KubeletPod) -> None:
        assert started.node == "node-2" and started.containers == ["ping"]
        started.waiting("ContainerCreating")
        started.running(pod_ip="10.42.1.9")
        started.terminated(1, log="3 packets transmitted, 0 packets received, 100% packet loss\n")
        ran.set()

    hook = api.on_pod_created(kubelet, label_selector="app=ping")
    assert kube.delete("v1", "Pod", "ping", "logging") is True
    kube.create({**pod, "metadata": {**pod["metadata"], "labels": {"app": "ping"}}})
    assert ran.wait(10) and hook.calls == ["logging/ping"]
    status = kube.get("v1", "Pod", "ping", "logging")["status"]  # type: ignore[index]
    assert (status["phase"], status["podIP"], status["hostIP"]) == ("Failed", "10.42.1.9", "10.0.0.103")
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert kube.pod_log("logging", "ping") == "3 packets transmitted, 0 packets received, 100% packet loss\n"

    assert kube.delete("v1", "Pod", "ping", "logging") is True
    assert kube.get("v1", "Pod", "ping", "logging") is None and kube.pod_log("logging", "ping") is None
    assert kube.delete("v1", "Pod", "ping", "logging") is False
    with pytest.raises(KubeError, match=r"spec.containers\[0\].image: Required value"):
        kube.create({**pod, "spec": {"containers": [{"name": "ping"}]}})


def test_pod_hooks_fail_closed(tmp_path: Path) -> None:
    api = FakeKube().start()
    try:
        api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
        api.on_pod_created(lambda pod: None, label_selector="app=never")

        def broken(pod: KubeletPod) -> None:
            pod.terminated(0)  # restartPolicy Always: the fake kubelet would have to restart it

        api.on_pod_created(broken)
        kube = connect(api.write_kubeconfig(tmp_path / "kubeconfig"), timeout=10)
        kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "logging"},
                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
    finally:
        api.stop()
    with pytest.raises(AssertionError) as problems:
        api.check_clean()
    assert "pod hook <lambda> never ran" in str(problems.value)
    assert "pod hook for logging/web raised" in str(problems.value) and "restartPolicy Always" in str(problems.value)
