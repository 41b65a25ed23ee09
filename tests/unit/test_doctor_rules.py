"""doctor's rules on hand-built facts: one test per cause of the runbook's troubleshooting tree."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from o11yctl.config import default_config
from o11yctl.doctor.facts import (
    ClaimFacts,
    ClaimRef,
    ContainerFacts,
    EventFacts,
    Facts,
    NetworkFacts,
    NodeFacts,
    Ownership,
    PodFacts,
    TaintFact,
    Toleration,
    VolumeFacts,
    expectations,
    parse_claim,
    parse_event,
    parse_node,
    parse_pod,
    parse_volume,
)
from o11yctl.doctor.rules import (
    ChownDir,
    Finding,
    RunFixVxlan,
    judge,
    needs_network_diagnosis,
    ownership_probes,
)
from o11yctl.stack.nodes import NodeChange
from o11yctl.stack.quantity import format_quantity, parse_quantity

HEAVY = TaintFact("heavy", "true", "NoSchedule")
TOLERATE_HEAVY = Toleration("heavy", "Equal", "true", "NoSchedule")
LOKI_DIR = "/mnt/k8s-storage/loki"


def _node(name: str, **kw: Any) -> NodeFacts:
    labels = {"kubernetes.io/hostname": name, **kw.pop("labels", {})}
    return NodeFacts(name=name, labels=labels, allocatable={"cpu": "4", "memory": "8Gi"}, **kw)


def _loki(**kw: Any) -> PodFacts:
    base = dict(name="loki-0", component="loki", phase="Running", node="node-2",
                node_selector={"hardware": "heavy"}, tolerations=(TOLERATE_HEAVY,), claims=("loki-pvc",),
                containers=(ContainerFacts("loki", ready=True, state="running"),), ready=True,
                requests={"cpu": "500m", "memory": "1Gi"})
    base.update(kw)
    return PodFacts(**base)


def _alloy(name: str, node: str) -> PodFacts:
    return PodFacts(name=name, component="alloy", phase="Running", node=node,
                    containers=(ContainerFacts("alloy", ready=True, state="running"),), ready=True)


def healthy(**kw: Any) -> Facts:
    """The runbook's cluster, working."""
    base: dict[str, Any] = dict(
        expected=expectations(default_config()),
        nodes=(_node("node-1"), _node("node-2", labels={"hardware": "heavy"}, taints=(HEAVY,))),
        volumes=(VolumeFacts("loki-pv", "Bound", "local-storage", "200Gi", ("ReadWriteOnce",),
                             ClaimRef("logging", "loki-pvc", "uid-loki"), ("node-2",), LOKI_DIR),),
        claims=(ClaimFacts("loki-pvc", "logging", "uid-loki", "Bound", "local-storage", "200Gi", ("ReadWriteOnce",),
                           "loki-pv"),),
        pods=(_loki(), _alloy("alloy-a", "node-1"), _alloy("alloy-b", "node-2")),
    )
    base.update(kw)
    return Facts(**base)


def _pending_claim(**kw: Any) -> ClaimFacts:
    return replace(healthy().claims[0], phase="Pending", **kw)


def _pv(**kw: Any) -> VolumeFacts:
    kw.setdefault("claim_ref", ClaimRef("logging", "loki-pvc"))
    return replace(healthy().volumes[0], phase="Available", **kw)


def _only(findings: list[Finding], fid: str) -> Finding:
    assert [f.id for f in findings] == [fid], [f"{f.id}: {f.cause}" for f in findings]
    return findings[0]


def _text(f: Finding) -> str:
    return " | ".join(f.evidence)


def test_a_healthy_cluster_has_no_findings() -> None:
    facts = healthy()
    assert judge(facts) == []
    assert ownership_probes(facts) == []
    assert not needs_network_diagnosis(facts)


# --- PVC stays in Pending -----------------------------------------------------------------------


def test_pvc_pending_because_the_pv_is_missing() -> None:
    facts = healthy(volumes=(), claims=(_pending_claim(),),
                    events=(EventFacts("PersistentVolumeClaim", "loki-pvc", "FailedBinding",
                                       'volume "loki-pv" not found', "Warning"),))
    f = _only(judge(facts), "pvc.pv-missing")
    assert f.symptom == "PVC stays in Pending" and f.subject == "pvc/loki-pvc" and f.component == "loki"
    assert "loki-pv" in f.cause and "not found" in _text(f) and 'volume "loki-pv" not found' in _text(f)
    assert "o11yctl install --only volumes" in f.fix and f.action is None


def test_pvc_pending_because_the_storage_classes_differ() -> None:
    facts = healthy(volumes=(_pv(storage_class="local-path"),), claims=(_pending_claim(),))
    f = _only(judge(facts), "pvc.storage-class")
    assert "PV loki-pv: storageClassName local-path" in f.evidence
    assert "PVC logging/loki-pvc: storageClassName local-storage" in f.evidence
    assert "kubectl delete pvc" not in f.fix  # only the PV is off: re-applying it is enough


def test_pvc_class_mismatch_on_the_claim_says_to_recreate_the_claim() -> None:
    facts = healthy(volumes=(_pv(),), claims=(_pending_claim(storage_class="local-path"),))
    f = _only(judge(facts), "pvc.storage-class")
    assert "kubectl delete pvc -n logging loki-pvc" in f.fix


def test_pvc_pending_because_the_pv_is_too_small() -> None:
    facts = healthy(volumes=(_pv(capacity="100Gi"),), claims=(_pending_claim(),))
    f = _only(judge(facts), "pvc.capacity")
    assert "capacity.storage 100Gi" in _text(f) and "requests.storage 200Gi" in _text(f)


def test_pvc_pending_because_the_access_modes_differ() -> None:
    facts = healthy(volumes=(_pv(access_modes=("ReadOnlyMany",)),), claims=(_pending_claim(),))
    f = _only(judge(facts), "pvc.access-mode")
    assert "ReadWriteOnce" in f.cause and "accessModes ReadOnlyMany" in _text(f)


def test_pvc_pending_because_the_pv_holds_an_old_claim() -> None:
    pv = _pv(claim_ref=ClaimRef("logging", "loki-pvc", "uid-old"))
    facts = healthy(volumes=(replace(pv, phase="Released"),), claims=(_pending_claim(uid="uid-new"),))
    f = _only(judge(facts), "pvc.pv-released")
    assert "PV loki-pv is Released" in _text(f) and "uid-old" in _text(f) and "uid-new" in _text(f)
    assert "kubectl patch pv loki-pv" in f.fix and '"uid":null' in f.fix


def test_pvc_waiting_for_its_first_consumer_is_not_a_finding() -> None:
    facts = healthy(volumes=(_pv(),), claims=(_pending_claim(),), pods=(),
                    events=(EventFacts("PersistentVolumeClaim", "loki-pvc", "WaitForFirstConsumer",
                                       "waiting for first consumer to be created before binding"),))
    assert [f.id for f in judge(facts)] == ["stack.not-installed"]
    facts = replace(facts, pods=(_alloy("alloy-a", "node-1"),))
    assert judge(facts) == []


def test_a_pending_pod_waiting_on_a_broken_claim_is_one_finding_with_the_pod_as_evidence() -> None:
    event = EventFacts("Pod", "loki-0", "FailedScheduling",
                       "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.", "Warning")
    facts = healthy(volumes=(), claims=(_pending_claim(),), pods=(_loki(phase="Pending", node=None),),
                    events=(event,))
    f = _only(judge(facts), "pvc.pv-missing")
    assert "pod loki-0 waits for it: 0/2 nodes are available: pod has unbound" in _text(f)


# --- Pod stuck in Pending -----------------------------------------------------------------------


def _pending_loki(message: str, **kw: Any) -> tuple[PodFacts, EventFacts]:
    return (_loki(phase="Pending", node=None, ready=False,
                  containers=(ContainerFacts("loki", state="waiting"),), **kw),
            EventFacts("Pod", "loki-0", "FailedScheduling", message, "Warning", 3, "2025-01-01T10:00:00Z"))


def test_pod_pending_because_the_storage_node_lacks_its_label() -> None:
    pod, event = _pending_loki("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.")
    facts = healthy(pods=(pod,), events=(event,), nodes=(_node("node-1"), _node("node-2", taints=(HEAVY,))))
    f = _only(judge(facts), "pod.node-selector")
    assert f.symptom == "Pod stuck in Pending"
    assert "hardware=heavy" in f.cause and "node-2" in f.cause
    assert "node node-2: hardware (missing)" in f.evidence
    assert "didn't match Pod's node affinity/selector" in _text(f)
    assert f.action == NodeChange("node-2", {"hardware": "heavy"})
    assert f.action.describe() == "kubectl label node node-2 hardware=heavy --overwrite"


def test_pod_pending_because_it_does_not_tolerate_the_taint() -> None:
    pod, event = _pending_loki("0/2 nodes are available: 1 node(s) had untolerated taint {heavy: true}, "
                               "1 node(s) didn't match Pod's node affinity/selector.", tolerations=())
    facts = healthy(pods=(pod,), events=(event,))
    f = _only(judge(facts), "pod.toleration")
    assert "no toleration" in f.cause and "heavy=true:NoSchedule" in f.cause
    assert "node node-2: taints heavy=true:NoSchedule not tolerated" in f.evidence
    assert "pod loki-0: tolerations none" in f.evidence
    assert "untolerated taint {heavy: true}" in _text(f)
    assert "o11yctl install --only loki" in f.fix and f.action is None


def test_a_node_taint_that_differs_from_the_config_is_set_back() -> None:
    pod, event = _pending_loki("0/2 nodes are available: 1 node(s) had untolerated taint {heavy: yes}.")
    odd = TaintFact("heavy", "yes", "NoSchedule")
    other = TaintFact("gpu", "", "PreferNoSchedule")
    facts = healthy(pods=(pod,), events=(event,),
                    nodes=(_node("node-1"), _node("node-2", labels={"hardware": "heavy"}, taints=(odd, other))))
    f = _only(judge(facts), "pod.toleration")
    assert isinstance(f.action, NodeChange)
    assert f.action.taints == (other, HEAVY)  # the config's keys replaced, others kept
    assert f.action.patch() == {"spec": {"taints": [{"key": "gpu", "effect": "PreferNoSchedule"},
                                                    {"key": "heavy", "value": "true", "effect": "NoSchedule"}]}}
    assert "heavy:NoSchedule-" in f.action.describe() and "heavy=true:NoSchedule" in f.action.describe()


def test_pod_pending_because_the_pv_is_pinned_to_another_node() -> None:
    pod, event = _pending_loki("0/2 nodes are available: 1 node(s) had volume node affinity conflict, "
                               "1 node(s) didn't match Pod's node affinity/selector.")
    volume = replace(healthy().volumes[0], affinity_hostnames=("node-3",))
    facts = healthy(pods=(pod,), events=(event,), volumes=(volume,))
    f = _only(judge(facts), "pod.volume-affinity")
    assert "volume node affinity conflict" in f.cause
    assert "PV loki-pv: nodeAffinity kubernetes.io/hostname in [node-3] (no such node in the cluster)" in f.evidence
    assert "kubectl delete pv loki-pv" in f.fix


def test_pod_pending_because_its_claim_does_not_exist() -> None:
    pod, event = _pending_loki('0/2 nodes are available: persistentvolumeclaim "loki-pvc" not found.')
    facts = healthy(pods=(pod,), events=(event,), claims=(), volumes=())
    f = _only(judge(facts), "pod.pvc-unbound")
    assert "loki-pvc does not exist" in f.cause and 'persistentvolumeclaim "loki-pvc" not found' in _text(f)


def test_pod_pending_because_the_node_has_too_little_memory() -> None:
    pod, event = _pending_loki("0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's "
                               "node affinity/selector. preemption: 0/2 nodes are available.")
    facts = healthy(pods=(pod,), events=(event,))
    f = _only(judge(facts), "pod.insufficient-resources")
    assert "memory" in f.cause and "cpu" not in f.cause
    assert "pod loki-0 requests cpu 500m, memory 1Gi" in f.evidence
    assert "node-2 allocatable cpu 4, memory 8Gi" in f.evidence
    assert "1 Insufficient memory" in _text(f)


def test_an_unrecognised_scheduling_failure_still_shows_the_event() -> None:
    pod, event = _pending_loki("0/2 nodes are available: 2 node(s) were unschedulable.")
    f = _only(judge(healthy(pods=(pod,), events=(event,))), "pod.unschedulable")
    assert "2 node(s) were unschedulable" in _text(f)


def test_a_missing_data_directory_is_created_by_the_fix() -> None:
    pod = _loki(phase="Pending", ready=False, containers=(ContainerFacts("loki", state="waiting",
                                                                         reason="ContainerCreating"),))
    event = EventFacts("Pod", "loki-0", "FailedMount", 'MountVolume.NewMounter initialization failed for volume '
                       f'"loki-pv" : path "{LOKI_DIR}" does not exist', "Warning")
    f = _only(judge(healthy(pods=(pod,), events=(event,))), "pod.mount")
    assert f.action == ChownDir("node-2", LOKI_DIR, "10001:10001", create=True)
    assert f.action.describe() == f"on node-2: sudo mkdir -p {LOKI_DIR} && sudo chown -R 10001:10001 {LOKI_DIR}"


def test_an_image_that_cannot_be_pulled_is_named() -> None:
    pod = _loki(phase="Pending", ready=False, containers=(
        ContainerFacts("loki", state="waiting", reason="ImagePullBackOff", message='Back-off pulling image "x"'),))
    f = _only(judge(healthy(pods=(pod,))), "pod.waiting")
    assert "ImagePullBackOff" in f.cause and 'Back-off pulling image "x"' in _text(f)


# --- Pod CrashLoopBackOff -----------------------------------------------------------------------

DENIED = ('level=error ts=2025-01-01T10:00:00Z caller=log.go:216 msg="error running loki" '
          'err="mkdir /var/loki/rules: permission denied"')


def _crashing(log: str, *, last_reason: str = "Error") -> Facts:
    pod = _loki(ready=False, containers=(ContainerFacts("loki", state="waiting", reason="CrashLoopBackOff",
                                                        restarts=5, last_reason=last_reason, last_exit_code=1),))
    return healthy(pods=(pod,), logs={("loki-0", "loki", True): "level=info msg=starting\n" + log + "\n"})


def test_crashloop_with_permission_denied_asks_for_the_owner() -> None:
    facts = _crashing(DENIED)
    assert ownership_probes(facts) == [("node-2", LOKI_DIR)]
    f = _only(judge(facts), "crashloop.ownership")
    assert "not confirmed" in _text(f) and DENIED in _text(f)
    assert f.action == ChownDir("node-2", LOKI_DIR, "10001:10001")


def test_crashloop_with_the_wrong_owner_is_confirmed_by_stat() -> None:
    facts = replace(_crashing(DENIED), ownership={LOKI_DIR: Ownership("node-2", LOKI_DIR, "0:0", "755")})
    f = _only(judge(facts), "crashloop.ownership")
    assert f.symptom == "Pod CrashLoopBackOff"
    assert f"{LOKI_DIR} on node-2 belongs to 0:0, not to 10001:10001" in f.cause
    assert f"stat on node-2: {LOKI_DIR} is owned by 0:0, mode 755 (expected 10001:10001)" in f.evidence
    assert f"log of loki-0/loki: {DENIED}" in f.evidence
    assert f.action == ChownDir("node-2", LOKI_DIR, "10001:10001")
    assert f.action.describe() == f"on node-2: sudo chown -R 10001:10001 {LOKI_DIR}"


def test_crashloop_with_the_right_owner_still_offers_a_recursive_chown() -> None:
    facts = replace(_crashing(DENIED), ownership={LOKI_DIR: Ownership("node-2", LOKI_DIR, "10001:10001", "700")})
    f = _only(judge(facts), "crashloop.permissions")
    assert isinstance(f.action, ChownDir)


def test_crashloop_from_a_config_error() -> None:
    line = ("failed parsing config: /etc/loki/config/config.yaml: yaml: unmarshal errors: line 12: field "
            "retention_perod not found in type compactor.Config")
    f = _only(judge(_crashing(line)), "crashloop.config")
    assert f"log of loki-0: {line}" in f.evidence and "helm get values loki -n logging" in f.fix


def test_crashloop_from_running_out_of_memory() -> None:
    f = _only(judge(_crashing("level=info msg=ok", last_reason="OOMKilled")), "crashloop.oom")
    assert "last exit OOMKilled 1" in _text(f)


def test_crashloop_with_an_unknown_cause_shows_the_error_lines() -> None:
    f = _only(judge(_crashing('level=error msg="something odd"')), "crashloop.unknown")
    assert 'log: level=error msg="something odd"' in f.evidence


# --- Pod running but /ready fails ---------------------------------------------------------------


def _not_ready(log: str) -> Facts:
    pod = _loki(ready=False, containers=(ContainerFacts("loki", state="running"),))
    probe = EventFacts("Pod", "loki-0", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                       "Warning", 12)
    return healthy(pods=(pod,), events=(probe,), logs={("loki-0", "loki", False): log})


def test_ready_fails_from_a_config_error() -> None:
    line = 'level=error msg="error loading config" err="invalid schema config"'
    f = _only(judge(_not_ready(line)), "ready.config")
    assert f.symptom == "Pod running but /ready fails"
    assert any("Readiness probe failed" in e for e in f.evidence) and f"log of loki-0: {line}" in f.evidence


def test_ready_fails_because_storage_is_not_writable() -> None:
    line = 'level=error msg="failed to flush" err="open /var/loki/chunks/x: permission denied"'
    facts = _not_ready(line)
    assert ownership_probes(facts) == [("node-2", LOKI_DIR)]
    facts = replace(facts, ownership={LOKI_DIR: Ownership("node-2", LOKI_DIR, "1000:1000", "755")})
    f = _only(judge(facts), "ready.ownership")
    assert "belongs to 1000:1000" in f.cause and isinstance(f.action, ChownDir)


def test_ready_fails_because_the_disk_is_full() -> None:
    f = _only(judge(_not_ready("write /var/loki/wal/000: no space left on device")), "ready.storage")
    assert "full" in f.cause and "df -h /mnt/k8s-storage/loki" in f.fix


def test_ready_fails_without_a_known_cause() -> None:
    f = _only(judge(_not_ready("level=info msg=waiting")), "ready.failing")
    assert any("statuscode: 503" in e for e in f.evidence)


def test_a_pod_that_is_just_starting_is_not_a_finding() -> None:
    pod = _loki(ready=False, containers=(ContainerFacts("loki", state="running"),))
    assert judge(healthy(pods=(pod,))) == []


# --- Alloy running but no logs in Loki ----------------------------------------------------------

TIMEOUT = ('level=warn msg="error sending batch, will retry" component_id=loki.write.default status=-1 '
           'error="Post \\"http://loki.logging.svc.cluster.local:3100/loki/api/v1/push\\": context deadline exceeded"')


def _alloy_failing(network: NetworkFacts | None = None, node: str = "node-1") -> Facts:
    return healthy(logs={("alloy-a" if node == "node-1" else "alloy-b", "alloy", False): "ok\n" + TIMEOUT},
                   network=network)


def test_alloy_timeouts_across_nodes_point_at_the_overlay() -> None:
    facts = _alloy_failing()
    assert needs_network_diagnosis(facts)
    f = _only(judge(facts), "alloy.push-timeout")
    assert f.symptom == "Alloy running but no logs in Loki"
    assert f"log of alloy-a on node-1: {TIMEOUT}" in f.evidence and "Loki runs on node-2" in f.evidence
    assert "UDP 8472" in f.cause and "o11yctl fix-vxlan --check" in f.fix and f.action is None


def test_alloy_timeouts_with_a_blocked_overlay_offer_fix_vxlan() -> None:
    net = NetworkFacts(ok=False, summary="node-1 -> node-2 blocked", details=("node-2 drops UDP 8472",),
                       fixable=True)
    f = _only(judge(_alloy_failing(net)), "alloy.push-timeout")
    assert isinstance(f.action, RunFixVxlan)
    assert "fix-vxlan diagnosis: node-1 -> node-2 blocked" in f.evidence


def test_alloy_timeouts_with_a_working_overlay_blame_loki() -> None:
    f = _only(judge(_alloy_failing(NetworkFacts(ok=True, summary="all pings pass"))), "alloy.push-timeout")
    assert "overlay between the nodes works" in f.cause and f.action is None


def test_alloy_timeouts_on_lokis_own_node_are_not_the_overlay() -> None:
    facts = _alloy_failing(node="node-2")
    assert not needs_network_diagnosis(facts)
    assert "not the cause" in _only(judge(facts), "alloy.push-timeout").cause


# --- the stack itself ---------------------------------------------------------------------------


def test_a_missing_namespace_is_one_finding() -> None:
    f = _only(judge(replace(healthy(), namespace_exists=False)), "stack.namespace-missing")
    assert "o11yctl install" in f.fix


def test_findings_serialise_to_json() -> None:
    facts = replace(_crashing(DENIED), ownership={LOKI_DIR: Ownership("node-2", LOKI_DIR, "0:0", "755")})
    doc = judge(facts)[0].to_json()
    assert doc["fix_action"] == {"kind": "chown", "description": f"on node-2: sudo chown -R 10001:10001 {LOKI_DIR}"}
    assert set(doc) == {"id", "component", "subject", "symptom", "cause", "evidence", "fix", "fix_action"}


# --- parsers ------------------------------------------------------------------------------------


def test_parse_pod_reads_what_the_rules_use() -> None:
    pod = parse_pod({
        "metadata": {"name": "loki-0", "labels": {"app.kubernetes.io/name": "loki"}},
        "spec": {"nodeSelector": {"hardware": "heavy"},
                 "tolerations": [{"key": "heavy", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
                 "volumes": [{"name": "storage", "persistentVolumeClaim": {"claimName": "loki-pvc"}},
                             {"name": "config", "configMap": {"name": "loki"}}],
                 "containers": [{"name": "loki", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
                                {"name": "sidecar", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"},
                                                      {"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": [{"name": "loki", "ready": False, "restartCount": 4,
                                          "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                                          "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]},
    })
    assert pod.component == "loki" and pod.claims == ("loki-pvc",) and pod.tolerations == (TOLERATE_HEAVY,)
    assert pod.requests == {"cpu": "500m", "memory": "1Gi"}
    assert pod.containers[0] == ContainerFacts("loki", False, 4, "waiting", "CrashLoopBackOff", "back-off",
                                               "Error", 1)
    assert not pod.ready and pod.unschedulable == ""


def test_parse_volume_claim_node_and_event() -> None:
    pv = parse_volume({"metadata": {"name": "loki-pv"},
                       "spec": {"storageClassName": "local-storage", "capacity": {"storage": "200Gi"},
                                "accessModes": ["ReadWriteOnce"], "local": {"path": LOKI_DIR},
                                "claimRef": {"namespace": "logging", "name": "loki-pvc", "uid": "u1"},
                                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]}]}]}}},
                       "status": {"phase": "Released"}})
    assert pv == VolumeFacts("loki-pv", "Released", "local-storage", "200Gi", ("ReadWriteOnce",),
                             ClaimRef("logging", "loki-pvc", "u1"), ("node-2",), LOKI_DIR)
    claim = parse_claim({"metadata": {"name": "c", "namespace": "logging", "uid": "u2"}, "spec": {}})
    assert claim.storage_class is None and claim.phase == "Pending"
    node = parse_node({"metadata": {"name": "node-2", "labels": {"hardware": "heavy"}},
                       "spec": {"taints": [{"key": "heavy", "value": "true", "effect": "NoSchedule"}]},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                  "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})
    assert node.taints == (HEAVY,) and node.ready and node.allocatable == {"cpu": "4", "memory": "8Gi"}
    event = parse_event({"involvedObject": {"kind": "Pod", "name": "loki-0"}, "reason": "FailedScheduling",
                         "message": "0/2 nodes", "type": "Warning", "count": 3,
                         "lastTimestamp": "2025-01-01T00:00:00Z"})
    assert event.describe() == "event FailedScheduling on pod/loki-0 at 2025-01-01T00:00:00Z (x3): 0/2 nodes"


@pytest.mark.parametrize(("text", "value"), [("200Gi", 200 * 2**30), ("500m", 0.5), ("1.5G", 1.5e9), ("2", 2.0),
                                             ("bogus", None), ("", None)])
def test_parse_quantity(text: str, value: float | None) -> None:
    assert parse_quantity(text) == value


def test_format_quantity() -> None:
    assert format_quantity(0.5, "cpu") == "500m" and format_quantity(2, "cpu") == "2"
    assert format_quantity(2**30, "memory") == "1Gi" and format_quantity(1536 * 2**20, "memory") == "1536Mi"


@pytest.mark.parametrize(("toleration", "tolerated"), [
    (Toleration("heavy", "Equal", "true", "NoSchedule"), True),
    (Toleration("heavy", "Equal", "false", "NoSchedule"), False),
    (Toleration("heavy", "Exists", "", ""), True),
    (Toleration("", "Exists", "", ""), True),
    (Toleration("heavy", "Equal", "true", "NoExecute"), False),
    (Toleration("other", "Exists", "", "NoSchedule"), False),
])
def test_toleration_matching_follows_the_scheduler(toleration: Toleration, tolerated: bool) -> None:
    assert toleration.tolerates(HEAVY) is tolerated


def test_a_loki_pod_without_the_claim_does_not_hide_a_cross_node_timeout() -> None:
    canary = PodFacts(name="loki-canary-x", component="loki", phase="Running", node="node-1", ready=True,
                      containers=(ContainerFacts("loki-canary", ready=True, state="running"),))
    facts = replace(_alloy_failing(), pods=(*healthy().pods, canary))
    assert needs_network_diagnosis(facts)
    assert "Loki runs on node-2" in _only(judge(facts), "alloy.push-timeout").evidence


# --- profile scalable: the object store and the ring ---------------------------------------------------------

SCALABLE = ("profile: scalable\ncharts:\n  set: current\ncomponents:\n  loki:\n    replicas: 2\n"
            "object_storage:\n  store: external\n  endpoint: https://s3.lan:9000\n")


@pytest.mark.parametrize(("line", "fid", "cause"), [
    ('level=error msg="failed to flush chunks" err="store put chunk: NoSuchBucket: The specified bucket does not '
     'exist"', "object.bucket-missing", "a bucket loki writes to does not exist at s3.lan:9000"),
    ('level=error msg="failed to flush" err="InvalidAccessKeyId: The AWS access key Id you provided does not exist '
     'in our records."', "object.credentials-refused", "the object store at s3.lan:9000 refuses loki's keys"),
    ('level=error msg="flush" err="Put \\"https://s3.lan:9000/loki-chunks/x\\": dial tcp 198.18.9.9:9000: connect: '
     'connection refused"', "object.unreachable", "loki cannot reach the object store at s3.lan:9000"),
    ('level=error msg="flush" err="Put \\"https://s3.lan:9000/loki-chunks/x\\": dial tcp: lookup s3.lan on '
     '10.43.0.10:53: no such host"', "object.unreachable", "loki cannot reach the object store at s3.lan:9000"),
    ('level=warn msg="error contacting distributor" err="empty ring"', "ring.not-formed", None),
    ('level=error msg="push" err="at least 2 live replicas required, could only find 1 - unhealthy instances: '
     'x; too many unhealthy instances in the ring"', "ring.not-formed", None),
])
def test_object_storage_and_ring_errors_in_the_log_are_named(line: str, fid: str, cause: str | None) -> None:
    from o11yctl.config import parse_config
    from o11yctl.doctor.rules import judge_object_storage

    facts = healthy(expected=expectations(parse_config(SCALABLE)), logs={("loki-0", "loki", False): line + "\n"})
    findings = judge_object_storage(facts)
    (finding,) = findings
    assert finding.id == fid and finding.component == "loki"
    assert finding.evidence[0].startswith("log of loki-0/loki: ")
    if cause:
        assert finding.cause == cause


def test_object_storage_rules_stay_quiet_on_the_single_node_profile() -> None:
    from o11yctl.doctor.rules import judge_object_storage

    facts = healthy(logs={("loki-0", "loki", False): "err=NoSuchBucket\n"})
    assert judge_object_storage(facts) == []
