"""`o11yctl doctor` end to end: the CLI against a fake Kubernetes API, and a real sshd for the storage node.

No cluster can run here (no kubelet, container runtime or etcd), so the Kubernetes API is
the fake server of tests/lab/fake_kube.py, seeded (tests/lab/doctor_lab.py) with the
objects a real cluster holds in each broken state: pods with the status the kubelet
writes and what their containers printed, the scheduler's events with its own messages,
PVs and PVCs rendered by o11yctl's templates, nodes; its service proxy forwards to the fake Loki,
Tempo and Grafana of tests/lab/fake_observability.py, for the checks of `verify` that doctor runs
itself. The ownership checks and ``--fix`` run ``stat`` and ``chown`` for real over SSH,
against a real sshd on 127.0.0.1 whose "storage node" is a temporary directory on this machine.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from tests.lab import doctor_lab
from tests.lab.doctor_lab import NS, event, pod, read_bundle, seed_stack
from tests.lab.fake_helm import FakeHelm
from tests.lab.fake_kube import KubeLab
from tests.lab.helm_lab import helm_binary, helm_env, release_secret
from tests.lab.sshd import Sshd, TestUsers, free_port, write_known_hosts
from typer.testing import CliRunner

from o11yctl.cli import app

runner = CliRunner()
LOKI_SELECTOR = doctor_lab.LOKI_SELECTOR
HEAVY = doctor_lab.HEAVY_TOLERATION
DENIED = ('level=error ts=2025-01-01T10:05:00Z caller=log.go:216 msg="error running loki" '
          'err="mkdir /var/loki/rules: permission denied"')


@pytest.fixture
def lab(fake_kube: KubeLab) -> Iterator[KubeLab]:
    """The fake API with the healthy stack seeded, its services answering (tests break one thing each)."""
    seed_stack(fake_kube.api)
    with doctor_lab.serving_services(fake_kube.api):
        yield fake_kube


def _config(tmp_path: Path, *, storage_root: str = "/mnt/k8s-storage", node2: dict[str, Any] | None = None) -> Path:
    """The runbook's two nodes; SSH goes to 127.0.0.1 (a closed port unless ``node2`` says otherwise)."""
    closed = {"ssh_host": "127.0.0.1", "ssh_port": free_port(), "ssh_user": "nobody"}
    fields2 = "".join(f"\n    {k}: {v}" for k, v in (node2 or closed).items())
    fields1 = "".join(f"\n    {k}: {v}" for k, v in closed.items())
    path = tmp_path / "o11yctl.yaml"
    path.write_text(
        "nodes:\n"
        f"  - name: node-1\n    address: 10.0.0.102\n    role: server{fields1}\n"
        f"  - name: node-2\n    address: 10.0.0.103\n    role: agent{fields2}\n"
        "    labels:\n      hardware: heavy\n    taints:\n      - key: heavy\n        value: 'true'\n"
        "        effect: NoSchedule\n"
        f"ssh:\n  known_hosts: {tmp_path / 'known_hosts'}\n  connect_timeout: 3\n"
        f"storage:\n  node: node-2\n  root: {storage_root}\n"
    )
    return path


def doctor(lab: KubeLab, tmp_path: Path, *args: str, config: Path | None = None,
           input: str | None = None) -> tuple[int, dict[str, Any]]:
    """Run `o11yctl doctor --json` and return the exit code and the document."""
    cfg = config or _config(tmp_path)
    result = runner.invoke(app, ["doctor", "-c", str(cfg), "--kubeconfig", str(lab.kubeconfig), "--json", *args],
                           input=input)
    assert result.stdout.strip(), result.output
    return result.exit_code, json.loads(result.stdout)


def finding(doc: dict[str, Any], fid: str) -> dict[str, Any]:
    """The one finding of the report, which must be ``fid``."""
    ids = [f["id"] for f in doc["findings"]]
    assert ids == [fid], json.dumps(doc["findings"], indent=1)
    found: dict[str, Any] = doc["findings"][0]
    return found


def evidence(f: dict[str, Any]) -> str:
    return "\n".join(f["evidence"])


# --- healthy, and unreachable -----------------------------------------------------------------------


def test_a_healthy_cluster_has_no_findings(lab: KubeLab, tmp_path: Path) -> None:
    code, doc = doctor(lab, tmp_path)
    assert code == 0 and doc["ok"] and doc["findings"] == [] and doc["healthy"] is True
    assert doc["items"] == []
    # Read-only: nothing in the cluster changed.
    assert lab.api.mutations == []


def test_the_text_report_names_symptom_cause_evidence_and_fix(lab: KubeLab, tmp_path: Path) -> None:
    api = lab.api
    api.seed(pod("loki-0", "loki", ready=False, claims=["loki-pvc"], node_selector=LOKI_SELECTOR,
                 tolerations=[HEAVY], waiting="CrashLoopBackOff", restarts=4, last_reason="Error"))
    api.set_log(NS, "loki-0", DENIED + "\n", container="loki", previous=True)
    result = runner.invoke(app, ["doctor", "-c", str(_config(tmp_path)), "--kubeconfig", str(lab.kubeconfig)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.stdout.split())
    assert "Pod CrashLoopBackOff pod/loki-0 (crashloop.ownership)" in text
    assert "cause: most likely /mnt/k8s-storage/loki on node-2 does not belong to 10001:10001" in text
    assert "evidence:" in text and "permission denied" in text
    assert "fix: give the directory to the loki user, on node-2: `sudo chown -R 10001:10001 " in text
    assert "1 problem(s) found; `o11yctl doctor --fix` applies 1 of the fixes itself" in text


def test_an_unreachable_cluster_exits_3_with_a_clear_message(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        f"clusters: [{{name: gone, cluster: {{server: 'https://127.0.0.1:{free_port()}'}}}}]\n"
        "users: [{name: gone, user: {token: t}}]\ncontexts: [{name: gone, context: {cluster: gone, user: gone}}]\n")
    result = runner.invoke(app, ["doctor", "-c", str(_config(tmp_path)), "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert "error: cannot reach the Kubernetes API at https://127.0.0.1:" in text
    assert "hint: is the cluster up?" in text
    as_json = runner.invoke(app, ["doctor", "-c", str(_config(tmp_path)), "--kubeconfig", str(kubeconfig), "--json"])
    assert as_json.exit_code == 3 and "cannot reach the Kubernetes API" in json.loads(as_json.stdout)["error"][
        "message"]


def test_no_kubeconfig_exits_3(tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "-c", str(_config(tmp_path)), "--kubeconfig", str(tmp_path / "none")])
    assert result.exit_code == 3 and "no kubeconfig at" in result.output


# --- PVC stays in Pending ---------------------------------------------------------------------------


def _pvc_event(message: str, reason: str = "FailedBinding") -> dict[str, Any]:
    return event("PersistentVolumeClaim", "loki-pvc", reason, message)


def _rebuild_volumes(lab: KubeLab, pv_changes: dict[str, Any] | None, pvc: dict[str, Any] | None = None, *,
                     prebound: bool = True) -> None:
    """Replace loki-pv and loki-pvc with changed copies (the PV dropped when ``pv_changes`` is None).

    The rendered PV is pre-bound to its claim (``claimRef``), and the volume controller binds a
    pre-bound pair without comparing them (pv_controller.go, syncUnboundClaim: "volume already
    bound, finishing the binding"). A mismatch leaves the claim Pending only for a PV that is
    not pre-bound (``prebound=False``, a PV made by hand): then the controller checks the pair
    (``checkVolumeSatisfyClaim``) and records a ``VolumeMismatch`` event.
    """
    api = lab.api
    docs = doctor_lab.volumes()
    with api.lock:
        for key in [k for k in api.store if k[4] in ("loki-pv", "loki-pvc") and k[2] in ("persistentvolumes",
                                                                                          "persistentvolumeclaims")]:
            del api.store[key]
    if pv_changes is not None:
        pv = docs["loki-pv"]
        pv["spec"].update(pv_changes)
        if not prebound:
            pv["spec"].pop("claimRef")
        api.seed(pv)
    api.seed(pvc or docs["loki-pvc"])


def test_pvc_pending_because_the_pv_is_missing(lab: KubeLab, tmp_path: Path) -> None:
    _rebuild_volumes(lab, None)
    lab.api.seed(_pvc_event('volume "loki-pv" not found'))
    code, doc = doctor(lab, tmp_path)
    f = finding(doc, "pvc.pv-missing")
    assert code == 1 and f["symptom"] == "PVC stays in Pending" and f["subject"] == "pvc/loki-pvc"
    assert "`kubectl get pv loki-pv`: not found" in evidence(f)
    assert 'FailedBinding on persistentvolumeclaim/loki-pvc' in evidence(f)
    assert 'volume "loki-pv" not found' in evidence(f)


def test_pvc_pending_because_the_storage_classes_differ(lab: KubeLab, tmp_path: Path) -> None:
    _rebuild_volumes(lab, {"storageClassName": "local-path"}, prebound=False)
    f = finding(doctor(lab, tmp_path)[1], "pvc.storage-class")
    assert "PV loki-pv: storageClassName local-path" in f["evidence"]
    assert "PVC logging/loki-pvc: storageClassName local-storage" in f["evidence"]
    assert "storageClassName does not match" in evidence(f)


def test_pvc_pending_because_the_pv_is_too_small(lab: KubeLab, tmp_path: Path) -> None:
    _rebuild_volumes(lab, {"capacity": {"storage": "100Gi"}}, prebound=False)
    f = finding(doctor(lab, tmp_path)[1], "pvc.capacity")
    assert "PV loki-pv: capacity.storage 100Gi" in f["evidence"]
    assert "PVC logging/loki-pvc: resources.requests.storage 200Gi" in f["evidence"]


def test_pvc_pending_because_the_access_modes_differ(lab: KubeLab, tmp_path: Path) -> None:
    _rebuild_volumes(lab, {"accessModes": ["ReadOnlyMany"]}, prebound=False)
    f = finding(doctor(lab, tmp_path)[1], "pvc.access-mode")
    assert "PV loki-pv: accessModes ReadOnlyMany" in f["evidence"]
    assert "PVC logging/loki-pvc: accessModes ReadWriteOnce" in f["evidence"]
    assert "incompatible accessMode" in evidence(f)


def test_pvc_pending_because_the_pv_holds_the_claim_of_an_earlier_install(lab: KubeLab, tmp_path: Path) -> None:
    api = lab.api
    old_uid = api.obj("v1", "PersistentVolumeClaim", "loki-pvc", NS)["metadata"]["uid"]  # type: ignore[index]
    # Uninstall removed the claim; a new install created it again: the PV stays Released.
    with api.lock:
        del api.store[("", "v1", "persistentvolumeclaims", NS, "loki-pvc")]
        api._reconcile()
    api.seed(doctor_lab.volumes()["loki-pvc"])
    assert api.obj("v1", "PersistentVolume", "loki-pv")["status"]["phase"] == "Released"  # type: ignore[index]
    f = finding(doctor(lab, tmp_path)[1], "pvc.pv-released")
    assert f"PV loki-pv is Released; spec.claimRef: logging/loki-pvc uid {old_uid}" in f["evidence"]
    assert "kubectl patch pv loki-pv --type merge" in f["fix"]


def test_a_claim_waiting_for_its_first_consumer_is_not_a_finding(lab: KubeLab, tmp_path: Path) -> None:
    api = lab.api
    api.seed({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
              "metadata": {"name": "scratch", "namespace": NS},
              "spec": {"storageClassName": "local-path", "accessModes": ["ReadWriteOnce"],
                       "resources": {"requests": {"storage": "1Gi"}}}})
    api.seed(event("PersistentVolumeClaim", "scratch", "WaitForFirstConsumer",
                   "waiting for first consumer to be created before binding", type="Normal", count=8))
    code, doc = doctor(lab, tmp_path)
    assert code == 0 and doc["findings"] == []


# --- Pod stuck in Pending ---------------------------------------------------------------------------


def _pending_loki(lab: KubeLab, message: str, **kw: Any) -> None:
    api = lab.api
    fields: dict[str, Any] = dict(claims=["loki-pvc"], node_selector=LOKI_SELECTOR, tolerations=[HEAVY])
    fields.update(kw)
    api.seed(pod("loki-0", "loki", node=None, phase="Pending", ready=False, unschedulable=message, **fields))
    api.seed(event("Pod", "loki-0", "FailedScheduling", message, count=6))


def test_pod_pending_because_the_storage_node_lacks_its_label_and_fix_labels_it(lab: KubeLab, tmp_path: Path) -> None:
    api = lab.api
    node = api.obj("v1", "Node", "node-2")
    assert node is not None
    del node["metadata"]["labels"]["hardware"]
    api.seed(node, manager="k3s")
    message = ("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 "
               "nodes are available: 2 Preemption is not helpful for scheduling.")
    _pending_loki(lab, message)
    code, doc = doctor(lab, tmp_path)
    f = finding(doc, "pod.node-selector")
    assert code == 1 and f["symptom"] == "Pod stuck in Pending"
    assert "node node-2: hardware (missing)" in f["evidence"] and message in evidence(f)
    assert f["fix_action"]["description"] == "kubectl label node node-2 hardware=heavy --overwrite"
    assert api.mutations == []

    code, doc = doctor(lab, tmp_path, "--fix", "--yes")
    assert code == 0, doc
    assert doc["findings"][0]["status"] == "fixed"
    assert doc["items"][0]["outcome"] == "changed"
    assert doc["items"][0]["detail"] == "node node-2: kubectl label node node-2 hardware=heavy --overwrite"
    labels = api.obj("v1", "Node", "node-2")["metadata"]["labels"]  # type: ignore[index]
    assert labels["hardware"] == "heavy" and labels["kubernetes.io/hostname"] == "node-2"


def test_fix_without_yes_and_without_a_terminal_changes_nothing(lab: KubeLab, tmp_path: Path) -> None:
    api = lab.api
    node = api.obj("v1", "Node", "node-2")
    assert node is not None
    del node["metadata"]["labels"]["hardware"]
    api.seed(node, manager="k3s")
    _pending_loki(lab, "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.")
    code, doc = doctor(lab, tmp_path, "--fix")
    assert code == 1 and doc["items"][0]["outcome"] == "skipped"
    assert "not confirmed" in doc["items"][0]["detail"] and api.mutations == []


def test_pod_pending_because_it_does_not_tolerate_the_taint(lab: KubeLab, tmp_path: Path) -> None:
    message = ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had "
               "untolerated taint {heavy: true}. preemption: 0/2 nodes are available: 2 Preemption is not helpful "
               "for scheduling.")
    _pending_loki(lab, message, tolerations=[])
    f = finding(doctor(lab, tmp_path)[1], "pod.toleration")
    assert "node node-2: taints heavy=true:NoSchedule not tolerated" in f["evidence"]
    assert "pod loki-0: tolerations none" in f["evidence"] and "untolerated taint {heavy: true}" in evidence(f)
    assert "o11yctl install --only loki" in f["fix"]


def test_a_changed_node_taint_is_set_back_by_fix(lab: KubeLab, tmp_path: Path) -> None:
    api = lab.api
    node = api.obj("v1", "Node", "node-2")
    assert node is not None
    node["spec"]["taints"] = [{"key": "heavy", "value": "yes", "effect": "NoSchedule"}]
    api.seed(node, manager="k3s")
    _pending_loki(lab, "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) "
                       "had untolerated taint {heavy: yes}.")
    f = finding(doctor(lab, tmp_path)[1], "pod.toleration")
    assert "carries heavy=yes:NoSchedule, but the config" in f["cause"]
    code, doc = doctor(lab, tmp_path, "--fix", "--yes")
    assert code == 0 and doc["items"][0]["outcome"] == "changed"
    assert api.obj("v1", "Node", "node-2")["spec"]["taints"] == [  # type: ignore[index]
        {"key": "heavy", "value": "true", "effect": "NoSchedule"}]


def test_pod_pending_because_the_pv_is_pinned_to_another_node(lab: KubeLab, tmp_path: Path) -> None:
    affinity = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}]}}
    _rebuild_volumes(lab, {"nodeAffinity": affinity})
    message = ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume "
               "node affinity conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for "
               "scheduling.")
    _pending_loki(lab, message)
    f = finding(doctor(lab, tmp_path)[1], "pod.volume-affinity")
    assert "PV loki-pv: nodeAffinity kubernetes.io/hostname in [node-1]" in f["evidence"]
    assert "pod loki-0 may run on: node-2 (nodeSelector hardware=heavy)" in f["evidence"]
    assert "had volume node affinity conflict" in evidence(f)


def test_pod_pending_because_its_claim_is_not_bound(lab: KubeLab, tmp_path: Path) -> None:
    api = lab.api
    with api.lock:
        del api.store[("", "v1", "persistentvolumeclaims", NS, "loki-pvc")]
    message = ('0/2 nodes are available: persistentvolumeclaim "loki-pvc" not found. preemption: 0/2 nodes are '
               'available: 2 Preemption is not helpful for scheduling.')
    _pending_loki(lab, message)
    f = finding(doctor(lab, tmp_path)[1], "pod.pvc-unbound")
    assert "PersistentVolumeClaim loki-pvc does not exist" in f["cause"]
    assert 'persistentvolumeclaim "loki-pvc" not found' in evidence(f)


def test_pod_pending_because_the_node_lacks_memory(lab: KubeLab, tmp_path: Path) -> None:
    message = ("0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node "
               "affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming "
               "pod, 1 Preemption is not helpful for scheduling.")
    _pending_loki(lab, message, requests={"cpu": "1", "memory": "16Gi"})
    f = finding(doctor(lab, tmp_path)[1], "pod.insufficient-resources")
    assert "enough memory" in f["cause"]
    assert "pod loki-0 requests cpu 1, memory 16Gi" in f["evidence"]
    assert "node-2 allocatable cpu 4, memory 8Gi" in f["evidence"] and "1 Insufficient memory" in evidence(f)


# --- Pod CrashLoopBackOff (ownership over a real sshd) ---------------------------------------------


@pytest.fixture
def storage_root() -> Iterator[Path]:
    """The storage node's root: a temp dir every lab user may enter (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="o11yctl-doctor-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _crashing_loki(lab: KubeLab, log: str) -> None:
    api = lab.api
    api.seed(pod("loki-0", "loki", ready=False, claims=["loki-pvc"], node_selector=LOKI_SELECTOR,
                 tolerations=[HEAVY], waiting="CrashLoopBackOff", restarts=5, last_reason="Error"))
    # Waiting to restart, the container's log is that of the run that crashed, with or without --previous.
    api.set_log(NS, "loki-0", 'level=info msg="Starting Loki"\n' + log + "\n", container="loki", previous=True)
    api.seed(event("Pod", "loki-0", "BackOff", "Back-off restarting failed container loki in pod loki-0",
                   count=20))


@pytest.mark.sshd
def test_crashloop_permission_denied_is_confirmed_by_stat_and_fixed_by_chown(
        lab: KubeLab, tmp_path: Path, sshd: Sshd, lab_users: TestUsers, storage_root: Path) -> None:
    loki_dir = storage_root / "loki"
    (loki_dir / "rules").mkdir(parents=True)
    os.chown(loki_dir, 0, 0)
    user = lab_users.nopasswd
    config = _config(tmp_path, storage_root=str(storage_root),
                     node2={"ssh_host": sshd.address, "ssh_port": sshd.port, "ssh_user": user.name,
                            "ssh_key": str(user.key)})
    write_known_hosts(tmp_path / "known_hosts", sshd)
    _crashing_loki(lab, DENIED)

    code, doc = doctor(lab, tmp_path, config=config)
    f = finding(doc, "crashloop.ownership")
    assert code == 1 and f["symptom"] == "Pod CrashLoopBackOff"
    assert f"{loki_dir} on node-2 belongs to 0:0, not to 10001:10001" in f["cause"]
    assert f"stat on node-2: {loki_dir} is owned by 0:0, mode 755 (expected 10001:10001)" in f["evidence"]
    assert f"log of loki-0/loki: {DENIED}" in f["evidence"]
    assert (loki_dir.stat().st_uid, loki_dir.stat().st_gid) == (0, 0)  # doctor alone changes nothing

    code, doc = doctor(lab, tmp_path, "--fix", "--yes", config=config)
    assert code == 0, doc
    assert doc["items"] == [{"id": "fix.crashloop.ownership", "component": "loki", "host": "node-2",
                             "outcome": "changed", "detail": f"{loki_dir} on node-2 is now owned by 10001:10001",
                             "seconds": doc["items"][0]["seconds"]}]
    assert doc["findings"][0]["status"] == "fixed"
    for path in (loki_dir, loki_dir / "rules"):
        assert (path.stat().st_uid, path.stat().st_gid) == (10001, 10001)


def test_crashloop_without_ssh_still_names_the_likely_owner_problem(lab: KubeLab, tmp_path: Path) -> None:
    _crashing_loki(lab, DENIED)
    f = finding(doctor(lab, tmp_path)[1], "crashloop.ownership")
    assert "owner of /mnt/k8s-storage/loki on node-2 not confirmed: " in evidence(f)
    assert "connection refused" in evidence(f)


def test_crashloop_from_a_config_error(lab: KubeLab, tmp_path: Path) -> None:
    line = ("failed parsing config: /etc/loki/config/config.yaml: yaml: unmarshal errors:  line 34: field "
            "retention_perod not found in type compactor.Config")
    _crashing_loki(lab, line)
    f = finding(doctor(lab, tmp_path)[1], "crashloop.config")
    assert f"log of loki-0: {line}" in f["evidence"]
    assert "container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1" in f["evidence"]


# --- Pod running but /ready fails ---------------------------------------------------------------------


def _not_ready_loki(lab: KubeLab, log: str) -> None:
    api = lab.api
    api.seed(pod("loki-0", "loki", ready=False, claims=["loki-pvc"], node_selector=LOKI_SELECTOR,
                 tolerations=[HEAVY]))
    api.set_log(NS, "loki-0", 'level=info msg="Starting Loki"\n' + log + "\n", container="loki")
    api.seed(event("Pod", "loki-0", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                   count=40))


def test_ready_fails_from_a_config_error(lab: KubeLab, tmp_path: Path) -> None:
    line = 'level=error ts=2025-01-01T10:01:00Z msg="error loading config" err="invalid schema config: unknown field"'
    _not_ready_loki(lab, line)
    f = finding(doctor(lab, tmp_path)[1], "ready.config")
    assert f["symptom"] == "Pod running but /ready fails"
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in evidence(f)
    assert f"log of loki-0: {line}" in f["evidence"]


def test_ready_fails_because_storage_is_not_writable(lab: KubeLab, tmp_path: Path) -> None:
    line = 'level=error msg="failed to flush chunks" err="write /var/loki/wal/00000012: no space left on device"'
    _not_ready_loki(lab, line)
    f = finding(doctor(lab, tmp_path)[1], "ready.storage")
    assert "cannot write to its storage: the disk holding /mnt/k8s-storage/loki on node-2 is full" in f["cause"]
    assert f"log of loki-0/loki: {line}" in f["evidence"]


# --- Alloy running but no logs in Loki --------------------------------------------------------------


def test_alloy_timeouts_point_at_cross_node_networking(lab: KubeLab, tmp_path: Path) -> None:
    line = ('ts=2025-01-01T10:02:00Z level=warn msg="error sending batch, will retry" component_path=/ '
            'component_id=loki.write.default component=client host=loki.logging.svc.cluster.local:3100 status=-1 '
            'error="Post \\"http://loki.logging.svc.cluster.local:3100/loki/api/v1/push\\": context deadline '
            'exceeded"')
    lab.api.set_log(NS, "alloy-n1", 'level=info msg="configuration loaded successfully"\n' + line + "\n",
                      container="alloy")
    code, doc = doctor(lab, tmp_path)
    f = finding(doc, "alloy.push-timeout")
    assert code == 1 and f["symptom"] == "Alloy running but no logs in Loki"
    assert f"log of alloy-n1 on node-1: {line}" in f["evidence"] and "Loki runs on node-2" in f["evidence"]
    assert "UDP 8472" in f["cause"]
    # The overlay diagnosis ran (as fix-vxlan --check would) and says why it has no verdict.
    assert "fix-vxlan diagnosis: overlay broken: not reached: node-1, node-2" in f["evidence"]
    assert "o11yctl fix-vxlan --check" in f["fix"]


# --- the support bundle ------------------------------------------------------------------------------

KNOWN = "Pa55+w/rd:s3cret&more"


def _forms(value: str) -> dict[str, str]:
    raw = value.encode()
    return {"plain": value, "base64": base64.b64encode(raw).decode(),
            "base64-urlsafe": base64.urlsafe_b64encode(raw).decode(), "url": quote(value, safe=""),
            "url-plus": quote_plus(value), "url-lower": quote(value, safe="").lower()}


def _seed_secrets(lab: KubeLab) -> None:
    api = lab.api
    b64 = base64.b64encode
    api.seed({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "grafana", "namespace": NS},
              "data": {"admin-user": b64(b"admin").decode(), "admin-password": b64(KNOWN.encode()).decode()}})
    api.seed(release_secret("grafana", NS, 1, "deployed", "grafana", "10.5.15",
                            {"adminPassword": KNOWN, "grafana.ini": {"server": {"root_url": "x"}}}))
    # The secret also leaks into a log line, plain and URL-encoded.
    api.set_log(NS, "grafana-5d8f7c9b6-x2x4z",
                f'level=info msg="login" password={KNOWN} url=/login?p={quote(KNOWN, safe="")}\n'
                f'level=info msg="token" t={os.environ.get("O11YCTL_GRAFANA_TOKEN", "")}\n')


def _assert_clean(files: dict[str, str], *values: str) -> None:
    for name, text in files.items():
        for value in values:
            for form_name, form in _forms(value).items():
                assert form not in text, f"{form_name} form of a secret in {name}"
            # Nothing that decodes back to the value either (a base64 blob embedding it at any offset).
            for word in text.replace('"', " ").replace("'", " ").split():
                if len(word) >= 16:
                    try:
                        decoded = base64.b64decode(word + "=" * (-len(word) % 4), validate=True)
                    except ValueError:
                        continue
                    assert value.encode() not in decoded, f"base64 blob holding a secret in {name}"
                    if decoded[:2] == b"\x1f\x8b":
                        assert value.encode() not in gzip.decompress(decoded), f"gzip blob with a secret in {name}"


def test_bundle_holds_what_a_maintainer_needs_and_no_secret(lab: KubeLab, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    token = "glsa_0123456789abcdefABCDEF_99aa"
    sudo = "sudo-pw-Zz9!x"
    monkeypatch.setenv("O11YCTL_GRAFANA_TOKEN", token)
    helm = FakeHelm(tmp_path / "helm")
    for name, value in helm.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("O11YCTL_HELM", str(helm.path))
    helm.seed_release("grafana", NS, [{"status": "deployed", "chart": "grafana-10.5.15",
                                       "values": {"adminPassword": KNOWN, "persistence": {"enabled": False}}}])
    helm.seed_release("loki", NS, [{"status": "deployed", "chart": "loki-6.21.0", "values": {"deploymentMode":
                                                                                             "SingleBinary"}}])
    _seed_secrets(lab)
    api = lab.api
    api.seed(pod("loki-0", "loki", ready=False, claims=["loki-pvc"], node_selector=LOKI_SELECTOR,
                 tolerations=[HEAVY], waiting="CrashLoopBackOff", restarts=2, last_reason="Error",
                 env=[{"name": "S3_SECRET_KEY", "value": "s3-secret-value-123"}]))
    api.set_log(NS, "loki-0", DENIED + f" sudo={sudo}\n", container="loki", previous=True)
    out = tmp_path / "support.tar.gz"

    code, doc = doctor(lab, tmp_path, "--bundle", str(out), "--sudo-password-stdin", input=sudo + "\n")
    assert code == 1 and doc["bundle"]["path"] == str(out.resolve())
    assert [f["id"] for f in doc["findings"]] == ["crashloop.ownership"]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    files = read_bundle(out)
    for expected in ("MANIFEST.txt", "o11yctl/version.txt", "o11yctl/config.yaml", "doctor/findings.json",
                     "cluster/nodes.yaml", "cluster/persistentvolumes.yaml", f"{NS}/persistentvolumeclaims.yaml",
                     f"{NS}/pods.yaml", f"{NS}/events.yaml", f"{NS}/events.txt", f"{NS}/services.yaml",
                     f"{NS}/configmaps.yaml", f"{NS}/logs/loki-0/loki.log", f"{NS}/logs/loki-0/loki.previous.log",
                     f"{NS}/logs/grafana-5d8f7c9b6-x2x4z/grafana.log", f"{NS}/logs/alloy-n1/alloy.log",
                     "helm/grafana/status.json", "helm/grafana/values.yaml", "helm/loki/status.json",
                     "helm/loki/values.yaml"):
        assert expected in files, sorted(files)
    assert not any("secret" in name.lower() for name in files)
    assert "kind: Secret" not in "".join(files.values()) and "helm.sh/release.v1" not in "".join(
        f for n, f in files.items() if n != "MANIFEST.txt")
    assert "permission denied" in files[f"{NS}/logs/loki-0/loki.previous.log"]
    assert "[REDACTED]" in files[f"{NS}/logs/grafana-5d8f7c9b6-x2x4z/grafana.log"]
    assert "[REDACTED]" in files["helm/grafana/values.yaml"] and "SingleBinary" in files["helm/loki/values.yaml"]
    assert "o11yctl 0." in files["o11yctl/version.txt"] and "v1.31.4+k3s1" in files["o11yctl/version.txt"]
    assert "storage:" in files["o11yctl/config.yaml"]
    assert "helm status and values not collected" not in files["MANIFEST.txt"]
    assert "helm release tempo not found in logging" in files["MANIFEST.txt"]
    _assert_clean(files, KNOWN, token, sudo, "s3-secret-value-123")
    helm.check_clean()


def test_bundle_without_helm_says_so(lab: KubeLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O11YCTL_HELM", str(tmp_path / "no-helm-here"))
    _seed_secrets(lab)
    out = tmp_path / "b.tar.gz"
    code, doc = doctor(lab, tmp_path, "--bundle", str(out))
    assert code == 0 and doc["findings"] == []
    files = read_bundle(out)
    assert "helm status and values not collected: " in files["MANIFEST.txt"]
    assert not any(name.startswith("helm/") for name in files)
    _assert_clean(files, KNOWN)


def test_bundle_path_must_be_a_tar_gz(lab: KubeLab, tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "-c", str(_config(tmp_path)), "--kubeconfig", str(lab.kubeconfig),
                                 "--bundle", str(tmp_path / "bundle.zip")])
    assert result.exit_code == 2 and "expected a file name ending in .tar.gz" in result.output


@pytest.mark.helm
def test_bundle_with_the_real_helm_reading_release_records(lab: KubeLab, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in helm_env(tmp_path / "helm-home").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("O11YCTL_HELM", helm_binary(3))
    _seed_secrets(lab)
    out = tmp_path / "real.tar.gz"
    code, doc = doctor(lab, tmp_path, "--bundle", str(out))
    assert code == 0, doc
    files = read_bundle(out)
    assert "helm/grafana/status.json" in files and "[REDACTED]" in files["helm/grafana/values.yaml"]
    assert json.loads(files["helm/grafana/status.json"])["info"]["status"] == "deployed"
    _assert_clean(files, KNOWN)
