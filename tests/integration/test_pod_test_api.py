"""fix-vxlan's pod test through the real kubernetes client against the fake API (no root, no lab).

The CLI's end-to-end tests (test_fix_vxlan_pod_test.py) need the VXLAN lab; these cover the API
side on any machine: several nodes at once, refusals, nodes missing from the cluster, cleanup.
"""

from __future__ import annotations

from tests.lab.fake_kube import FakeKube, KubeLab, KubeletPod

from o11yctl.access import Access, AccessOptions
from o11yctl.config import Config, parse_config
from o11yctl.vxlan.podping import judge, run_pod_test


def _access(cfg: Config, lab: KubeLab) -> Access:
    return Access(cfg, AccessOptions(kubeconfig=str(lab.kubeconfig), request_timeout=10.0))

NODES = """\
nodes:
  - {name: node-1, address: 10.0.0.101, role: server}
  - {name: node-2, address: 10.0.0.102, role: agent}
  - {name: node-3, address: 10.0.0.103, role: agent}
  - {name: node-4, address: 10.0.0.104, role: agent}
storage: {node: node-2}
"""
BUSYBOX_OK = """\
PING 10.42.1.7 (10.42.1.7): 56 data bytes
64 bytes from 10.42.1.7: seq=0 ttl=62 time=0.612 ms
64 bytes from 10.42.1.7: seq=1 ttl=62 time=0.533 ms
64 bytes from 10.42.1.7: seq=2 ttl=62 time=0.540 ms

--- 10.42.1.7 ping statistics ---
3 packets transmitted, 3 packets received, 0% packet loss
round-trip min/avg/max = 0.533/0.561/0.612 ms
"""


def seed_cluster(api: FakeKube, *, loki: bool = True) -> None:
    for i in (1, 2, 3):  # node-4 is configured but not in the cluster
        api.add_node(f"node-{i}", address=f"10.0.0.10{i}")
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    labels = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/component": "single-binary"}
    api.add_pod("logging", "loki-canary-x", labels={"app.kubernetes.io/name": "loki-canary"}, node="node-1")
    if loki:
        api.add_pod("logging", "loki-0", labels=labels, node="node-2")
        found = api.obj("v1", "Pod", "loki-0", "logging")
        assert found is not None
        api.update_status("v1", "Pod", "loki-0", "logging", {**found["status"], "podIP": "10.42.1.7"})


def test_one_pod_per_other_node_each_judged_and_all_deleted(fake_kube: KubeLab) -> None:
    api = fake_kube.api
    seed_cluster(api)
    api.fail("POST", r"/api/v1/namespaces/logging/pods", status=403, reason="Forbidden",
             message='pods "o11yctl-ping-node-1-x" is forbidden: violates PodSecurity "restricted:latest": '
                     "runAsNonRoot != true")
    started: list[str] = []

    def kubelet(pod: KubeletPod) -> None:
        started.append(f"{pod.node} {pod.pod['spec']['containers'][0]['command'][-1]}")
        pod.running(pod_ip="10.42.2.5")
        pod.terminated(0, log=BUSYBOX_OK)

    api.on_pod_created(kubelet)
    cfg = parse_config(NODES)
    events: list[str] = []

    test = run_pod_test(cfg, _access(cfg, fake_kube), timeout=20, say=events.append)
    rows = {r.id: r for r in judge(test, lambda a, b: True)}

    assert test.loki is not None and (test.loki.name, test.loki.ip, test.loki.node) == ("loki-0", "10.42.1.7",
                                                                                         "node-2")
    assert started == ["node-3 10.42.1.7"]
    assert list(rows) == ["pod-ping node-1", "pod-ping node-3", "pod-ping node-4"]
    assert rows["pod-ping node-1"].status == "WARN" and "violates PodSecurity" in rows["pod-ping node-1"].detail
    assert "Pod Security" in (rows["pod-ping node-1"].hint or "")
    assert rows["pod-ping node-3"].status == "PASS"
    assert rows["pod-ping node-3"].detail == "pod on node-3 → Loki pod 10.42.1.7 on node-2: 3/3 replies"
    assert rows["pod-ping node-4"].status == "SKIP" and "not a node of this cluster" in rows["pod-ping node-4"].detail
    assert events == ["pod test: a busybox:latest pod on node-1, node-3 pings Loki's pod 10.42.1.7 on node-2"]
    assert sorted(p["metadata"]["name"] for p in api.objects("Pod")) == ["loki-0", "loki-canary-x"]
    deletes = [path for method, path in api.mutations if method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].startswith("v1/pods/logging/o11yctl-ping-node-3-")
    assert test.to_json()["runs"] == [
        {"node": "node-1", "pod": None, "result": "?", "phase": None, "reason": None, "exit_code": None,
         "transmitted": None, "received": None, "timed_out": False, "deleted": None, "delete_error": None},
        {"node": "node-3", "pod": deletes[0].rsplit("/", 1)[1], "result": "ok", "phase": "Succeeded",
         "reason": "Completed", "exit_code": 0, "transmitted": 3, "received": 3, "timed_out": False,
         "deleted": True, "delete_error": None},
        {"node": "node-4", "pod": None, "result": "?", "phase": None, "reason": None, "exit_code": None,
         "transmitted": None, "received": None, "timed_out": False, "deleted": None, "delete_error": None},
    ]


def test_a_pod_that_cannot_be_deleted_is_named_with_the_command(fake_kube: KubeLab) -> None:
    api = fake_kube.api
    seed_cluster(api)

    def kubelet(pod: KubeletPod) -> None:
        pod.terminated(0, log=BUSYBOX_OK)

    api.on_pod_created(kubelet)
    api.fail("DELETE", r"/api/v1/namespaces/logging/pods/o11yctl-ping-.*", status=500)

    cfg = parse_config(NODES.replace("  - {name: node-3, address: 10.0.0.103, role: agent}\n", ""))
    test = run_pod_test(cfg, _access(cfg, fake_kube), timeout=20)
    rows = {r.id: r for r in judge(test, lambda a, b: True)}

    cleanup = rows["pod-ping node-1 cleanup"]
    [left] = [p["metadata"]["name"] for p in api.objects("Pod") if p["metadata"]["name"].startswith("o11yctl")]
    assert cleanup.status == "WARN" and f"logging/{left} could not be deleted" in cleanup.detail
    assert cleanup.hint is not None and cleanup.hint.startswith(f"delete it: kubectl delete pod -n logging {left}")
    assert rows["pod-ping node-1"].status == "PASS"


def test_no_loki_pod_is_one_skip_row(fake_kube: KubeLab) -> None:
    seed_cluster(fake_kube.api, loki=False)

    cfg = parse_config(NODES)
    test = run_pod_test(cfg, _access(cfg, fake_kube), timeout=20)

    [row] = judge(test, lambda a, b: None)
    assert row.id == "pod-ping" and row.status == "SKIP"
    assert row.detail.startswith("no running Loki pod with an IP in namespace logging")
    assert not [m for m in fake_kube.api.mutations if m[0] == "POST"]
