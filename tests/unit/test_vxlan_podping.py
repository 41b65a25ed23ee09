"""fix-vxlan's pod test, pure parts: ping output, the pod, reading its state, and the judge."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from o11yctl.errors import KubeError
from o11yctl.vxlan.podping import (
    LokiPod,
    PingStats,
    PodRun,
    PodState,
    PodTest,
    find_loki,
    gather,
    judge,
    parse_ping_stats,
    ping_pod,
    pod_name,
    pod_state,
)

BUSYBOX_OK = """\
PING 10.42.1.7 (10.42.1.7): 56 data bytes
64 bytes from 10.42.1.7: seq=0 ttl=62 time=0.612 ms

--- 10.42.1.7 ping statistics ---
3 packets transmitted, 3 packets received, 0% packet loss
round-trip min/avg/max = 0.533/0.561/0.612 ms
"""
BUSYBOX_LOST = """\
PING 10.42.1.7 (10.42.1.7): 56 data bytes

--- 10.42.1.7 ping statistics ---
3 packets transmitted, 0 packets received, 100% packet loss
"""
IPUTILS_ERRORS = """\
PING 10.42.1.7 (10.42.1.7) 56(84) bytes of data.
From 10.42.0.0 icmp_seq=1 Destination Host Unreachable

--- 10.42.1.7 ping statistics ---
3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms
"""
IPUTILS_PARTIAL = "3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms\n"

LOKI = LokiPod("loki-0", "10.42.1.7", "node-1")


def test_ping_stats_of_busybox_and_iputils() -> None:
    assert parse_ping_stats(BUSYBOX_OK) == PingStats(3, 3, 0.0)
    assert parse_ping_stats(BUSYBOX_LOST) == PingStats(3, 0, 100.0)
    assert parse_ping_stats(IPUTILS_ERRORS) == PingStats(3, 0, 100.0)
    assert parse_ping_stats(IPUTILS_PARTIAL) == PingStats(3, 2, 33.3333)
    assert parse_ping_stats("ping: permission denied (are you root?)\n") is None


@pytest.mark.parametrize("node", ["node-2", "Worker.Lab.Example", "n" * 80])
def test_pod_name_is_a_dns_label(node: str) -> None:
    name = pod_name(node, "a1b2c3")
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert name.startswith("o11yctl-ping-") and name.endswith("-a1b2c3")
    assert pod_name("node-2", "a1b2c3") == "o11yctl-ping-node-2-a1b2c3"


def test_the_test_pod_is_pinned_to_its_node_and_never_restarted() -> None:
    pod = ping_pod("o11yctl-ping-node-2-x", namespace="logging", node="node-2", image="busybox:1.36",
                   target="10.42.1.7", timeout=60)
    spec = pod["spec"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "o11yctl"
    assert (spec["nodeName"], spec["restartPolicy"]) == ("node-2", "Never")
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["containers"] == [{"name": "ping", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
                                   "command": ["ping", "-c", "3", "-W", "2", "10.42.1.7"]}]
    assert spec["activeDeadlineSeconds"] > 60 and spec["automountServiceAccountToken"] is False


def _pod(name: str, *, phase: str = "Running", ip: str | None = "10.42.1.7", node: str | None = "node-1",
         ready: bool = True, deleting: bool = False, container: Mapping[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}
    if ip:
        status["podIP"] = ip
    if container is not None:
        status["containerStatuses"] = [{"name": "ping", "state": dict(container)}]
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def test_find_loki_takes_a_running_pod_with_an_ip_ready_first() -> None:
    assert find_loki([]) is None
    assert find_loki([_pod("a", phase="Pending"), _pod("b", ip=None), _pod("c", node=None),
                      _pod("d", deleting=True)]) is None
    assert find_loki([_pod("a", ready=False, ip="10.42.0.9"), _pod("b", ip="10.42.1.3", node="node-2")]) == \
        LokiPod("b", "10.42.1.3", "node-2")


def test_pod_state_is_done_when_it_ended_or_cannot_start() -> None:
    assert pod_state(None).done
    ended = pod_state(_pod("p", phase="Failed", container={"terminated": {"exitCode": 1, "reason": "Error"}}))
    assert ended == PodState("Failed", "Error", "", 1, True)
    pulling = pod_state(_pod("p", phase="Pending", container={"waiting": {"reason": "ErrImagePull",
                                                                           "message": "not found"}}))
    assert pulling == PodState("Pending", "ErrImagePull", "not found", None, True)
    assert not pod_state(_pod("p", phase="Pending", container={"waiting": {"reason": "ContainerCreating"}})).done
    assert not pod_state(_pod("p", phase="Pending")).done
    assert not pod_state(_pod("p", phase="Running", container={"running": {}})).done


def _test(*runs: PodRun, **kwargs: Any) -> PodTest:
    return PodTest(namespace="logging", image="busybox:latest", timeout=60, loki=LOKI, runs=runs, **kwargs)


def _ended(node: str, phase: str, log: str, code: int, reason: str | None = None) -> PodRun:
    return PodRun(node, pod=f"o11yctl-ping-{node}-x", state=PodState(phase, reason, "", code, True), log=log,
                  deleted=True, seconds=2.5)


def _one(test: PodTest, overlay: Mapping[tuple[str, str], bool | None] | None = None) -> tuple[str, str, str | None]:
    [row] = judge(test, lambda a, b: (overlay or {}).get((a, b)))
    assert row.group == "pod-ping"
    return row.status, row.detail, row.hint


def test_a_pod_that_gets_replies_passes() -> None:
    status, detail, hint = _one(_test(_ended("node-2", "Succeeded", BUSYBOX_OK, 0)))
    assert (status, detail, hint) == ("PASS", "pod on node-2 → Loki pod 10.42.1.7 on node-1: 3/3 replies", None)
    assert _one(_test(_ended("node-2", "Succeeded", IPUTILS_PARTIAL, 0)))[1].endswith("2/3 replies")


def test_no_reply_fails_with_the_overlay_and_warns_when_the_overlay_works() -> None:
    lost = _test(_ended("node-2", "Failed", BUSYBOX_LOST, 1))
    status, detail, hint = _one(lost, {("node-2", "node-1"): False, ("node-1", "node-2"): False})
    assert status == "FAIL" and detail.endswith("no reply (3 sent, 100% packet loss), as the overlay test between "
                                                 "the nodes found")
    assert hint is not None and "overlay between the nodes is broken" in hint
    status, detail, hint = _one(lost, {("node-2", "node-1"): False, ("node-1", "node-2"): True})
    assert status == "WARN" and "although the overlay between node-2 and node-1 works" in detail
    assert hint is not None and "NetworkPolicy" in hint and "10.42.0.0/16" in hint
    status, _detail, hint = _one(lost, {})
    assert status == "FAIL" and hint is not None and "not tested over SSH" in hint


def test_a_pod_that_failed_without_a_ping_result_is_a_warning() -> None:
    status, detail, hint = _one(_test(_ended("node-2", "Failed", 'exec: "ping": executable file not found\n', 127,
                                             reason="StartError")), {("node-2", "node-1"): True})
    assert status == "WARN" and "(StartError, exit 127) without a ping result" in detail
    assert hint is not None and "images.test_image" in hint


@pytest.mark.parametrize(("run", "words", "hint_words"), [
    (PodRun("node-2", pod="p", state=PodState("Pending", "ImagePullBackOff", "Back-off pulling image", None, True)),
     "node-2 cannot pull busybox:latest (ImagePullBackOff: Back-off pulling image)", "set images.test_image"),
    (PodRun("node-2", pod="p", state=PodState("Pending", "ContainerCreating"), timed_out=True),
     "did not finish within 60s (last seen: Pending, ContainerCreating)", "--pod-test-timeout"),
    (PodRun("node-2", pod="p", state=PodState("Pending", "CreateContainerConfigError", "bad", None, True)),
     "could not start (CreateContainerConfigError: bad)", "--no-pod-test"),
    (PodRun("node-2", error="the API refused the test pod: forbidden", hint="use a cluster-admin context"),
     "the test did not run: the API refused the test pod: forbidden", "cluster-admin"),
])
def test_a_test_that_could_not_run_is_a_warning_with_a_hint(run: PodRun, words: str, hint_words: str) -> None:
    status, detail, hint = _one(_test(run), {("node-2", "node-1"): False})
    assert status == "WARN" and words in detail
    assert hint is not None and hint_words in hint


def test_not_run_and_skipped_nodes_and_leftover_pods() -> None:
    absent = PodTest(namespace="logging", image="busybox:latest", timeout=60, not_run="no cluster reachable (x)",
                     not_run_hint="pass --kubeconfig")
    [row] = judge(absent, lambda a, b: True)
    assert (row.id, row.status, row.detail, row.hint) == ("pod-ping", "SKIP", "no cluster reachable (x)",
                                                          "pass --kubeconfig")
    rows = judge(_test(PodRun("node-3", skipped="node-3 is not a node of this cluster"),
                       PodRun("node-2", pod="o11yctl-ping-node-2-x", state=PodState("Succeeded", None, "", 0, True),
                              log=BUSYBOX_OK, delete_error="HTTP 500")), lambda a, b: True)
    assert [(r.id, r.status) for r in rows] == [("pod-ping node-3", "SKIP"), ("pod-ping node-2", "PASS"),
                                                ("pod-ping node-2 cleanup", "WARN")]
    assert rows[2].hint is not None and rows[2].hint.startswith("delete it: kubectl delete pod -n logging "
                                                                "o11yctl-ping-node-2-x")


class _Api:
    """An in-memory API: one Loki pod on node-1; ``interrupt`` raises Ctrl-C at that call."""

    def __init__(self, interrupt: str) -> None:
        self.interrupt = interrupt
        self.pods: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []

    def _maybe_interrupt(self, call: str) -> None:
        if call == self.interrupt:
            raise KeyboardInterrupt

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        if kind == "Node":
            return [{"metadata": {"name": n}} for n in ("node-1", "node-2", "node-3")]
        return [_pod("loki-0")]

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self._maybe_interrupt("get")
        return self.pods.get(name)

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        if "node-3" in name:
            raise KubeError("create Pod: forbidden (HTTP 403)")
        self.pods[name] = dict(manifest)
        self._maybe_interrupt("create")
        return dict(manifest)

    def pod_log(self, namespace: str, pod: str, *, container: str | None = None, previous: bool = False,
                tail_lines: int | None = None, since_seconds: int | None = None,
                timeout: float | None = None) -> str | None:
        return None

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        self.deleted.append(name)
        return self.pods.pop(name, None) is not None


@pytest.mark.parametrize("interrupt", ["create", "get"])
def test_ctrl_c_deletes_every_pod_made_and_goes_on_up(interrupt: str) -> None:
    api = _Api(interrupt)
    with pytest.raises(KeyboardInterrupt):
        gather(api, namespace="logging", image="busybox:latest", nodes=["node-1", "node-2", "node-3"], timeout=60,
               suffix="x")
    assert api.pods == {}
    assert api.deleted == ["o11yctl-ping-node-2-x"]  # node-3's pod was refused, so never made
