"""fix-vxlan's pod test end to end: the real CLI in a VXLAN lab, a fake Kubernetes API beside it.

The lab (tests/lab/vxlan_lab.py) gives the SSH diagnosis a real overlay; the fake API
(tests/lab/fake_kube.py) runs in the lab's controller namespace, where the CLI runs, and
plays the kubelet for the test pods the CLI creates. Where a test pod really pings, the fake's
kubelet runs ``ping`` inside the pod's node (its network namespace) at the Loki pod's IP, an
address on node-1 reached over ``flannel.1``: the pod test then sees exactly what the overlay
carries. Without root these tests skip; under CI=true they fail instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.lab.ci import skip_or_fail
from tests.lab.fake_kube import FakeKube, KubeLab, KubeletPod
from tests.lab.vxlan_lab import VxlanLab, unavailable_reason, vxlan_lab

pytestmark = [pytest.mark.root, pytest.mark.sshd, pytest.mark.slow]

NAMESPACE = "logging"
LOKI_IP = "10.42.0.5"  # on node-1's loopback, so node-2 reaches it only over the overlay
LOKI_LABELS = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki",
               "app.kubernetes.io/component": "single-binary"}
BUSYBOX_NO_REPLY = ("PING 10.42.0.5 (10.42.0.5): 56 data bytes\n\n--- 10.42.0.5 ping statistics ---\n"
                    "3 packets transmitted, 0 packets received, 100% packet loss\n")


def _lab_with_loki(workdir: Path) -> Iterator[VxlanLab]:
    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    with vxlan_lab(2, workdir) as lab:
        lab.sh("node-1", ["ip", "addr", "add", f"{LOKI_IP}/32", "dev", "lo"])
        yield lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VxlanLab]:
    """One 2-node lab for the tests that leave its nodes as they found them."""
    yield from _lab_with_loki(tmp_path_factory.mktemp("pod-test-lab"))


@pytest.fixture
def own_lab(tmp_path: Path) -> Iterator[VxlanLab]:
    """A 2-node lab of the test's own, for a test that changes the nodes' firewalls."""
    yield from _lab_with_loki(tmp_path / "lab")


def start_cluster(lab: VxlanLab, tmp_path: Path) -> KubeLab:
    """A fake API in the lab's controller namespace: the lab's nodes, and Loki's pod on node-1."""
    api = FakeKube()
    with lab.in_controller():
        api.start()
    for node in lab.nodes:
        api.add_node(node.name, address=node.address)
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    api.seed({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "loki-0", "namespace": NAMESPACE, "labels": LOKI_LABELS},
        "spec": {"nodeName": "node-1", "containers": [{"name": "loki", "image": "grafana/loki:3.3.2"}]},
        "status": {"phase": "Running", "podIP": LOKI_IP, "hostIP": lab.node("node-1").address,
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "loki", "ready": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}]},
    }, manager="kubelet")
    return KubeLab(api, api.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
def cluster(lab: VxlanLab, tmp_path: Path) -> Iterator[KubeLab]:
    kube = start_cluster(lab, tmp_path)
    try:
        yield kube
    finally:
        kube.api.stop()
    kube.api.check_clean()


@pytest.fixture
def own_cluster(own_lab: VxlanLab, tmp_path: Path) -> Iterator[KubeLab]:
    kube = start_cluster(own_lab, tmp_path)
    try:
        yield kube
    finally:
        kube.api.stop()
    kube.api.check_clean()


def real_ping(lab: VxlanLab, created: list[dict[str, Any]]) -> Callable[[KubeletPod], None]:
    """A kubelet that runs the pod's ping inside its node, from the node's overlay address."""

    def kubelet(pod: KubeletPod) -> None:
        created.append(pod.pod)
        node = lab.node(pod.node or "")
        target = pod.pod["spec"]["containers"][0]["command"][-1]
        pod.waiting("ContainerCreating")
        pod.running(pod_ip=f"10.42.{node.index}.9")
        done = lab.sh(node, ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", node.overlay, target],
                      check=False)
        pod.terminated(done.returncode, log=done.stdout + done.stderr)

    return kubelet


def fix_vxlan(lab: VxlanLab, config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = lab.run_cli(["fix-vxlan", "-c", str(config), "--json", *args])
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON on stdout (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.returncode, doc


def pod_rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in doc["items"] if i.get("group") == "pod-ping"}


def pods_left(api: FakeKube) -> list[str]:
    """The o11yctl test pods still in the cluster."""
    return [p["metadata"]["name"] for p in api.objects("Pod") if p["metadata"]["name"].startswith("o11yctl-ping-")]


def deleted_pods(api: FakeKube) -> list[str]:
    """The test pods deleted through the API, in order."""
    out = []
    for method, path in api.mutations:  # ("DELETE", "v1/pods/<namespace>/<name>")
        parts = path.split("/")
        if method == "DELETE" and parts[:2] == ["v1", "pods"] and parts[-1].startswith("o11yctl-ping-"):
            out.append(parts[-1])
    return out


def stay_pending(pod: KubeletPod) -> None:
    """A kubelet that never gets the container started."""
    pod.waiting("ContainerCreating")


def test_pod_ping_passes_over_the_working_overlay(lab: VxlanLab, cluster: KubeLab, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    created: list[dict[str, Any]] = []
    cluster.api.on_pod_created(real_ping(lab, created))
    monkeypatch.setenv("O11YCTL_KUBECONFIG", str(cluster.kubeconfig))

    code, doc = fix_vxlan(lab, config, "--check")

    assert code == 0, doc
    assert doc["overlay_ok"] is True
    rows = pod_rows(doc)
    assert list(rows) == ["pod-ping node-2"]
    assert rows["pod-ping node-2"]["status"] == "PASS"
    assert rows["pod-ping node-2"]["detail"] == f"pod on node-2 → Loki pod {LOKI_IP} on node-1: 3/3 replies"
    assert doc["pod_test"]["loki"] == {"pod": "loki-0", "ip": LOKI_IP, "node": "node-1"}
    [run] = doc["pod_test"]["runs"]
    assert (run["node"], run["result"], run["deleted"]) == ("node-2", "ok", True)
    # the runbook's test, pinned to the node: what the CLI asked the cluster for
    [pod] = created
    assert pod["metadata"]["name"].startswith("o11yctl-ping-node-2-") and pod["metadata"]["name"] == run["pod"]
    assert pod["metadata"]["namespace"] == NAMESPACE
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "o11yctl"
    spec = pod["spec"]
    assert spec["nodeName"] == "node-2" and spec["restartPolicy"] == "Never"
    assert {"operator": "Exists"} in spec["tolerations"]
    [container] = spec["containers"]
    assert container["image"] == "busybox:latest"
    assert container["command"] == ["ping", "-c", "3", "-W", "2", LOKI_IP]
    assert pods_left(cluster.api) == [] and deleted_pods(cluster.api) == [run["pod"]]

    human = lab.run_cli(["fix-vxlan", "-c", str(config), "--check"])
    assert human.returncode == 0, human.stdout + human.stderr
    assert f"pods pinging Loki's pod {LOKI_IP} on node-1 (busybox:latest):" in human.stdout
    assert "node-2  ok" in human.stdout
    assert pods_left(cluster.api) == []

    posts = len([m for m in cluster.api.mutations if m[0] == "POST"])
    for args in (["--check", "--no-pod-test"], ["--dry-run"]):
        code, doc = fix_vxlan(lab, config, *args)
        assert code == 0 and not pod_rows(doc) and "pod_test" not in doc, args
    assert len([m for m in cluster.api.mutations if m[0] == "POST"]) == posts


def test_no_reply_while_the_overlay_works_is_a_warning(lab: VxlanLab, cluster: KubeLab, tmp_path: Path) -> None:
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    cluster.api.on_pod_created(real_ping(lab, []))
    drop = ["INPUT", "-d", f"{LOKI_IP}/32", "-p", "icmp", "-j", "DROP"]  # e.g. a rule for the pod network
    lab.iptables("node-1", "-I", *drop)
    try:
        code, doc = fix_vxlan(lab, config, "--check", "--kubeconfig", str(cluster.kubeconfig))
    finally:
        lab.iptables("node-1", "-D", *drop)

    assert code == 0, doc  # the overlay works: the pod test does not change the exit code
    assert doc["overlay_ok"] is True and doc["ok"] is True
    row = pod_rows(doc)["pod-ping node-2"]
    assert row["status"] == "WARN"
    assert row["detail"] == (f"pod on node-2 → Loki pod {LOKI_IP} on node-1: no reply (3 sent, 100% packet loss), "
                             "although the overlay between node-2 and node-1 works")
    assert "NetworkPolicy" in row["hint"]
    assert doc["pod_test"]["runs"][0]["result"] == "fail"
    assert pods_left(cluster.api) == []


def test_blocked_pod_ping_fails_with_the_overlay_and_passes_after_the_fix(own_lab: VxlanLab, own_cluster: KubeLab,
                                                                          tmp_path: Path) -> None:
    lab = own_lab
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    own_cluster.api.on_pod_created(real_ping(lab, []))
    lab.block("node-1", target="DROP")  # node-1 (Loki's node) drops UDP 8472 from everyone
    kube = ["--kubeconfig", str(own_cluster.kubeconfig)]

    code, doc = fix_vxlan(lab, config, "--check", *kube)
    assert code == 1
    row = pod_rows(doc)["pod-ping node-2"]
    assert row["status"] == "FAIL"
    assert "no reply (3 sent, 100% packet loss), as the overlay test between the nodes found" in row["detail"]

    code, doc = fix_vxlan(lab, config, *kube)
    assert code == 0, doc
    assert doc["mode"] == "fix" and doc["overlay_ok"] is True
    assert any(i.get("id") == "allow node-2" and i.get("outcome") == "created" for i in doc["items"])
    row = pod_rows(doc)["pod-ping node-2"]
    assert row["status"] == "PASS" and "3/3 replies" in row["detail"]
    assert pods_left(own_cluster.api) == [] and len(deleted_pods(own_cluster.api)) == 2


def test_image_that_cannot_be_pulled_is_a_warning_with_a_hint(lab: VxlanLab, cluster: KubeLab,
                                                              tmp_path: Path) -> None:
    image = "registry.lan:5000/library/busybox:1.36"
    config = lab.write_config(tmp_path / "o11yctl.yaml", extra=f"images:\n  test_image: {image}\n")
    images: list[str] = []

    def no_pull(pod: KubeletPod) -> None:
        images.append(pod.pod["spec"]["containers"][0]["image"])
        pod.waiting("ContainerCreating")
        pod.waiting("ErrImagePull", f'failed to pull and unpack image "{image}": dial tcp: i/o timeout')
        if pod.wait_deleted(5):
            return
        pod.waiting("ImagePullBackOff", f'Back-off pulling image "{image}"')

    cluster.api.on_pod_created(no_pull)
    code, doc = fix_vxlan(lab, config, "--check", "--kubeconfig", str(cluster.kubeconfig))

    assert code == 0, doc
    assert images == [image]
    row = pod_rows(doc)["pod-ping node-2"]
    assert row["status"] == "WARN"
    assert f"node-2 cannot pull {image} (ErrImagePull" in row["detail"]
    assert "set images.test_image" in row["hint"] and "mirror" in row["hint"]
    assert doc["pod_test"]["runs"][0]["result"] == "?"
    assert pods_left(cluster.api) == [] and len(deleted_pods(cluster.api)) == 1


def test_timeout_still_deletes_the_pod(lab: VxlanLab, cluster: KubeLab, tmp_path: Path) -> None:
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    cluster.api.on_pod_created(stay_pending)

    started = time.monotonic()
    code, doc = fix_vxlan(lab, config, "--check", "--kubeconfig", str(cluster.kubeconfig), "--pod-test-timeout", "2")

    assert code == 0, doc
    assert time.monotonic() - started < 30
    row = pod_rows(doc)["pod-ping node-2"]
    assert row["status"] == "WARN"
    assert "did not finish within 2s (last seen: Pending, ContainerCreating)" in row["detail"]
    assert "--pod-test-timeout" in row["hint"]
    assert doc["pod_test"]["runs"][0]["timed_out"] is True
    assert pods_left(cluster.api) == [] and len(deleted_pods(cluster.api)) == 1


def test_ctrl_c_while_waiting_still_deletes_the_pod(lab: VxlanLab, cluster: KubeLab, tmp_path: Path) -> None:
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    cluster.api.on_pod_created(stay_pending)
    argv = lab.cli_argv(["fix-vxlan", "-c", str(config), "--check", "--kubeconfig", str(cluster.kubeconfig)])
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        deadline = time.monotonic() + 60
        while not pods_left(cluster.api) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert pods_left(cluster.api), "the CLI never created its test pod"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 130, out + err
    assert "interrupted" in err
    assert pods_left(cluster.api) == [] and len(deleted_pods(cluster.api)) == 1


def test_no_cluster_is_one_line_and_the_diagnosis_still_runs(lab: VxlanLab, tmp_path: Path) -> None:
    config = lab.write_config(tmp_path / "o11yctl.yaml")  # $KUBECONFIG names a file that does not exist

    code, doc = fix_vxlan(lab, config, "--check")

    assert code == 0, doc
    assert doc["overlay_ok"] is True and doc["matrix"] == {"node-1": {"node-2": "ok"}, "node-2": {"node-1": "ok"}}
    rows = pod_rows(doc)
    assert list(rows) == ["pod-ping"] and rows["pod-ping"]["status"] == "SKIP"
    assert rows["pod-ping"]["detail"].startswith("no cluster reachable (no kubeconfig at ")
    assert doc["pod_test"]["ran"] is False

    human = lab.run_cli(["fix-vxlan", "-c", str(config), "--check"])
    assert human.returncode == 0, human.stdout + human.stderr
    lines = [line for line in (human.stdout + human.stderr).splitlines() if "no cluster reachable" in line]
    assert len(lines) == 1 and "SKIP" in lines[0]
    assert "overlay works: 2 of 2 pings" in human.stdout


def test_named_cluster_that_does_not_answer_is_a_warning_not_an_error(lab: VxlanLab, tmp_path: Path) -> None:
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    gone = start_cluster(lab, tmp_path)
    gone.api.stop()  # its kubeconfig now points at a closed port

    code, doc = fix_vxlan(lab, config, "--check", "--kubeconfig", str(gone.kubeconfig))

    assert code == 0, doc
    row = pod_rows(doc)["pod-ping"]
    assert row["status"] == "WARN" and row["detail"].startswith("no cluster reachable (cannot reach the Kubernetes API")
    assert doc["overlay_ok"] is True
