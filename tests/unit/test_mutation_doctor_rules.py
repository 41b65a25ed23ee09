"""doctor's rules, finding by finding: the exact id, cause, evidence, fix and fix action of each branch.

Facts are built by hand in the shapes the gatherers produce (pods, claims, volumes, nodes, events,
logs, ownership, the overlay diagnosis, failed log reads and verify's verdicts); each case names one
situation of the runbook's troubleshooting tree and pins every finding doctor reports for it, as
``--json`` prints it. tests/unit/test_doctor_rules.py checks the causes; these pin the words.
Nothing of o11yctl is monkeypatched.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from o11yctl.config import default_config
from o11yctl.doctor.facts import (
    CheckFacts,
    ClaimFacts,
    ClaimRef,
    ContainerFacts,
    Dial,
    EventFacts,
    Facts,
    LogFailure,
    NetworkFacts,
    NodeFacts,
    Ownership,
    PodFacts,
    TaintFact,
    Toleration,
    VolumeFacts,
    expectations,
)
from o11yctl.doctor.rules import judge

HEAVY = TaintFact("heavy", "true", "NoSchedule")
TOLERATE_HEAVY = Toleration("heavy", "Equal", "true", "NoSchedule")
LOKI_DIR = "/mnt/k8s-storage/loki"
WANT = expectations(default_config())


def node(name: str, **kw: Any) -> NodeFacts:
    labels = {"kubernetes.io/hostname": name, **kw.pop("labels", {})}
    kw.setdefault("allocatable", {"cpu": "4", "memory": "8Gi"})
    return NodeFacts(name=name, labels=labels, **kw)


NODES = (node("node-1", addresses=(("InternalIP", "10.0.0.102"),)),
         node("node-2", labels={"hardware": "heavy"}, taints=(HEAVY,),
              addresses=(("InternalIP", "10.0.0.103"), ("Hostname", "node-2"))))


def loki(**kw: Any) -> PodFacts:
    base: dict[str, Any] = dict(
        name="loki-0", component="loki", phase="Running", node="node-2", node_selector={"hardware": "heavy"},
        tolerations=(TOLERATE_HEAVY,), claims=("loki-pvc",),
        containers=(ContainerFacts("loki", ready=True, state="running"),), ready=True,
        requests={"cpu": "500m", "memory": "1Gi"}, ip="10.42.1.5")
    base.update(kw)
    return PodFacts(**base)


def alloy(name: str, on: str) -> PodFacts:
    return PodFacts(name=name, component="alloy", phase="Running", node=on,
                    containers=(ContainerFacts("alloy", ready=True, state="running"),), ready=True)


def grafana(**kw: Any) -> PodFacts:
    base: dict[str, Any] = dict(name="grafana-0", component="grafana", phase="Running", node="node-1",
                                containers=(ContainerFacts("grafana", ready=True, state="running"),), ready=True,
                                ip="10.42.0.7")
    base.update(kw)
    return PodFacts(**base)


PV = VolumeFacts("loki-pv", "Bound", "local-storage", "200Gi", ("ReadWriteOnce",),
                 ClaimRef("logging", "loki-pvc", "uid-loki"), ("node-2",), LOKI_DIR)
PVC = ClaimFacts("loki-pvc", "logging", "uid-loki", "Bound", "local-storage", "200Gi", ("ReadWriteOnce",), "loki-pv")


def facts(**kw: Any) -> Facts:
    base: dict[str, Any] = dict(expected=WANT, nodes=NODES, volumes=(PV,), claims=(PVC,),
                                pods=(loki(), alloy("alloy-a", "node-1"), alloy("alloy-b", "node-2")))
    base.update(kw)
    return Facts(**base)


def pending_claim(**kw: Any) -> ClaimFacts:
    return replace(PVC, phase="Pending", **kw)


def available_pv(**kw: Any) -> VolumeFacts:
    kw.setdefault("claim_ref", ClaimRef("logging", "loki-pvc"))
    return replace(PV, phase="Available", **kw)


def sched(message: str, name: str = "loki-0") -> EventFacts:
    return EventFacts("Pod", name, "FailedScheduling", message, "Warning", 3, "2025-01-01T10:00:00Z")


def pending_loki(**kw: Any) -> PodFacts:
    kw.setdefault("containers", (ContainerFacts("loki", state="waiting"),))
    return loki(phase="Pending", node=None, ready=False, **kw)


def crashing(log: str, *, last_reason: str = "Error", component: str = "loki", name: str = "", **kw: Any) -> Facts:
    name = name or f"{component}-0"
    c = ContainerFacts(component or "app", state="waiting", reason="CrashLoopBackOff", restarts=5,
                       last_reason=last_reason, last_exit_code=1)
    pod = loki(name=name, component=component, ready=False, containers=(c,), **kw)
    return facts(pods=(pod,), logs={(name, c.name, True): "level=info msg=starting\n" + log + "\n"})


def not_ready(log: str, component: str = "loki", probe: bool = True) -> Facts:
    pod = loki(name=f"{component}-0", component=component, ready=False,
               containers=(ContainerFacts(component, state="running"),))
    events = (EventFacts("Pod", f"{component}-0", "Unhealthy",
                         "Readiness probe failed: HTTP probe failed with statuscode: 503", "Warning", 12),
              EventFacts("Pod", f"{component}-0", "Unhealthy", "Liveness probe failed", "Warning", 1),
              ) if probe else ()
    return facts(pods=(pod,), events=events, logs={(f"{component}-0", component, False): log})


DENIED = 'level=error msg="error running loki" err="mkdir /var/loki/rules: permission denied"'
TIMEOUT = ('level=warn msg="error sending batch, will retry" error="Post \\"http://loki.logging.svc:3100/loki/api/v1/'
           'push\\": context deadline exceeded"')
CONFIG_LINE = "failed parsing config: /etc/loki/config/config.yaml: yaml: unmarshal errors"


def alloy_failing(network: NetworkFacts | None = None, on: str = "node-1", **kw: Any) -> Facts:
    name = "alloy-a" if on == "node-1" else "alloy-b"
    return facts(logs={(name, "alloy", False): "ok\n" + TIMEOUT + "\nlater i/o timeout"}, network=network, **kw)


KUBELET = Dial("10.0.0.103", 10250, "connect: no route to host",
               "dial tcp 10.0.0.103:10250: connect: no route to host")


def kubelet_failure(pod: str = "loki-0", node_name: str | None = "node-2", dial: Dial = KUBELET) -> LogFailure:
    return LogFailure(pod, "loki", False, node_name, f"HTTP 500: Get logs: {dial.text}", dial)


def check(cid: str, status: str = "FAIL", detail: str = "x", **kw: Any) -> CheckFacts:
    return CheckFacts(cid, cid.split(".")[0], status, detail, **kw)


POD_DIAL = Dial("10.42.1.5", 3100, "i/o timeout", "dial tcp 10.42.1.5:3100: i/o timeout")
GRAFANA_DIAL = Dial("10.42.0.7", 3000, "connect: connection refused", "dial tcp 10.42.0.7:3000: connect: refused")
CASES: dict[str, Any] = {
    # the stack itself
    "namespace missing": lambda: facts(namespace_exists=False),
    "nothing installed": lambda: facts(pods=(), claims=(), volumes=()),
    # PVC stays in Pending
    "pv missing, a pod waits": lambda: facts(
        volumes=(), claims=(pending_claim(),), pods=(pending_loki(),),
        events=(EventFacts("PersistentVolumeClaim", "loki-pvc", "FailedBinding", 'volume "loki-pv" not found',
                           "Warning"), sched("0/2 nodes are available: unbound immediate PersistentVolumeClaims"))),
    "pv missing, by the config's name": lambda: facts(volumes=(), claims=(pending_claim(volume_name=""),)),
    "pv released": lambda: facts(
        volumes=(replace(PV, phase="Released", claim_ref=ClaimRef("logging", "loki-pvc", "uid-old")),),
        claims=(pending_claim(uid=""),)),
    "pv taken": lambda: facts(volumes=(replace(PV, claim_ref=ClaimRef("other", "data", "u")),),
                              claims=(pending_claim(),), pods=(pending_loki(), pending_loki(name="loki-1"),
                                                              pending_loki(name="loki-2"))),
    "pv reserved elsewhere but available": lambda: facts(
        volumes=(available_pv(claim_ref=ClaimRef("other", "data")),), claims=(pending_claim(),)),
    "storage classes differ on the pv": lambda: facts(volumes=(available_pv(storage_class=""),),
                                                      claims=(pending_claim(),)),
    "storage classes differ on the claim": lambda: facts(volumes=(available_pv(),),
                                                         claims=(pending_claim(storage_class=None),)),
    "pv too small": lambda: facts(volumes=(available_pv(capacity="100Gi"),), claims=(pending_claim(),)),
    "pv just big enough": lambda: facts(volumes=(available_pv(capacity="200Gi"),), claims=(pending_claim(),),
                                        pods=(alloy("alloy-a", "node-1"),)),
    "access modes differ": lambda: facts(volumes=(available_pv(access_modes=()),),
                                         claims=(pending_claim(access_modes=("ReadWriteOnce", "ReadOnlyMany")),)),
    "claim pending, other events": lambda: facts(
        volumes=(), claims=(ClaimFacts("scratch", "logging", phase="Pending"),),
        events=tuple(EventFacts("PersistentVolumeClaim", "scratch", r, f"{r} happened") for r in
                     ("ProvisioningFailed", "ExternalProvisioning", "Provisioning"))),
    "claim pending, waiting for its consumer": lambda: facts(
        volumes=(), claims=(ClaimFacts("scratch", "logging", phase="Pending"),),
        events=(EventFacts("PersistentVolumeClaim", "scratch", "WaitForFirstConsumer", "waiting"),
                EventFacts("PersistentVolumeClaim", "scratch", "Other", "other"))),
    # Pod stuck in Pending
    "pod claim missing": lambda: facts(claims=(), volumes=(), pods=(pending_loki(),),
                                       events=(sched('persistentvolumeclaim "loki-pvc" not found'),)),
    "pod claim lost": lambda: facts(claims=(replace(PVC, phase="Lost"),), pods=(pending_loki(),)),
    "pod claim pending without a volume": lambda: facts(
        claims=(pending_claim(volume_name=""),), volumes=(PV,), pods=(pending_loki(unschedulable="waiting"),)),
    "pod claim waits for first consumer": lambda: facts(
        claims=(pending_claim(),), volumes=(available_pv(),), pods=(pending_loki(),),
        events=(EventFacts("PersistentVolumeClaim", "loki-pvc", "WaitForFirstConsumer", "waiting"),)),
    "node label missing, config gives it": lambda: facts(
        pods=(pending_loki(),), nodes=(node("node-1"), node("node-2", taints=(HEAVY,))),
        events=(sched("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."),)),
    "node label nobody has": lambda: facts(
        pods=(pending_loki(node_selector={"disk": "ssd", "hardware": "heavy"}, component=""),),
        events=(sched("0/2 nodes are available"),)),
    "taint not tolerated": lambda: facts(pods=(pending_loki(tolerations=(Toleration("gpu", "Exists", "", ""),
                                                                          Toleration("a", "Equal", "b", "NoExecute"),
                                                                          Toleration("x", "Equal", "", ""),
                                                                          Toleration("", "Equal", "", "")),
                                                            node_selector={}),),
                                         nodes=(node("node-2", labels={"hardware": "heavy"}, taints=(HEAVY,)),)),
    "taint of a node not ready": lambda: facts(
        pods=(pending_loki(),), nodes=(node("node-1"), node("node-2", labels={"hardware": "heavy"}, taints=(
            TaintFact("node.kubernetes.io/unreachable", "", "NoExecute"), HEAVY)))),
    "taint differs from the config": lambda: facts(
        pods=(pending_loki(),), nodes=(node("node-1"), node("node-2", labels={"hardware": "heavy"}, taints=(
            TaintFact("heavy", "yes", "NoSchedule"), TaintFact("soft", "", "PreferNoSchedule"))))),
    "taint nobody knows": lambda: facts(
        pods=(pending_loki(),), nodes=(node("node-1"), node("node-2", labels={"hardware": "heavy"}, taints=(
            HEAVY, TaintFact("gpu", "", "NoSchedule"))))),
    "taint on a node the config has none for": lambda: facts(
        pods=(pending_loki(node_selector={}, tolerations=()),),
        nodes=(node("node-1", taints=(TaintFact("gpu", "", "NoSchedule"),)),
               node("node-2", labels={"hardware": "heavy"}, taints=(HEAVY,)))),
    "volume pinned to an unknown node": lambda: facts(volumes=(replace(PV, affinity_hostnames=("node-3",)),),
                                                      pods=(pending_loki(),)),
    "volume pinned to another node": lambda: facts(
        volumes=(replace(PV, affinity_hostnames=("node-1",)),), pods=(pending_loki(),)),
    "volume pinned to nothing, no node may run it": lambda: facts(
        volumes=(replace(PV, affinity_hostnames=()),), pods=(pending_loki(node_selector={"disk": "ssd"}),)),
    "volume not pinned": lambda: facts(volumes=(replace(PV, affinity_hostnames=None),),
                                       pods=(pending_loki(),), events=(sched("0/2 nodes"),)),
    "not enough cpu and memory": lambda: facts(
        pods=(pending_loki(),), events=(sched("0/2 nodes are available: 1 Insufficient cpu, 1 insufficient Memory, "
                                              "1 Insufficient cpu."),)),
    "not enough memory, nothing known": lambda: facts(
        pods=(pending_loki(requests={}, node_selector={"disk": "ssd"}),),
        nodes=(node("node-1", allocatable={}), node("node-2", allocatable={"memory": "1Gi"})),
        events=(sched("0/2 nodes are available: 2 Insufficient memory."),)),
    "unschedulable": lambda: facts(pods=(pending_loki(),), events=(sched("0/2 nodes were unschedulable."),)),
    "unschedulable by condition": lambda: facts(pods=(pending_loki(unschedulable="0/2 nodes are busy"),)),
    "pending, nothing said": lambda: facts(pods=(pending_loki(),)),
    "latest scheduling event": lambda: facts(pods=(pending_loki(),), events=(
        EventFacts("Pod", "loki-0", "FailedScheduling", "old", "Warning", 1, "2025-01-01T09:00:00Z"),
        EventFacts("Pod", "loki-0", "FailedScheduling", "new", "Warning", 2, "2025-01-01T11:00:00Z"),
        EventFacts("Pod", "loki-0", "FailedScheduling", "middle", "Warning", 1, "2025-01-01T10:00:00Z"))),
    # scheduled but not started
    "data directory missing": lambda: facts(pods=(loki(phase="Pending", ready=False),), events=(
        EventFacts("Pod", "loki-0", "FailedMount", f'MountVolume.NewMounter failed: path "{LOKI_DIR}" does not exist',
                   "Warning"),)),
    "another volume missing": lambda: facts(pods=(loki(phase="Pending", ready=False, component=""),), events=(
        EventFacts("Pod", "loki-0", "FailedMount", 'configmap "x" does not exist', "Warning"),)),
    "mount failing otherwise": lambda: facts(pods=(loki(phase="Pending", ready=False),), events=(
        EventFacts("Pod", "loki-0", "FailedMount", "timeout expired", "Warning"),)),
    "image not pulled": lambda: facts(pods=(loki(ready=False, containers=(
        ContainerFacts("loki", state="waiting", reason="ImagePullBackOff", message='Back-off pulling image "x"'),
        ContainerFacts("sidecar", state="waiting", reason="ErrImagePull"),
        ContainerFacts("init", state="waiting", reason="PodInitializing"))),)),
    # Pod CrashLoopBackOff
    "crash out of memory": lambda: crashing("level=info msg=ok", last_reason="OOMKilled"),
    "crash denied, not confirmed": lambda: crashing(DENIED),
    "crash denied, stat failed": lambda: replace(crashing(DENIED), ownership={
        LOKI_DIR: Ownership("node-2", LOKI_DIR, error="sudo: a password is required")}),
    "crash denied, wrong owner": lambda: replace(crashing(DENIED), ownership={
        LOKI_DIR: Ownership("node-2", LOKI_DIR, "0:0", "755")}),
    "crash denied, wrong owner, no mode": lambda: replace(crashing(DENIED), ownership={
        LOKI_DIR: Ownership("node-2", LOKI_DIR, "0:0")}),
    "crash denied, right owner": lambda: replace(crashing(DENIED), ownership={
        LOKI_DIR: Ownership("node-2", LOKI_DIR, "10001:10001", "700")}),
    "crash denied without a volume": lambda: crashing(DENIED, component="grafana"),
    "crash config error": lambda: crashing(CONFIG_LINE),
    "crash config error without a component": lambda: crashing(CONFIG_LINE, component="", name="app-0"),
    "crash unknown": lambda: crashing("a\nlevel=error msg=one\nb\nfatal: two\npanic: three\nerror four\nc"),
    "crash unknown, quiet log": lambda: crashing("one\ntwo\nthree\nfour"),
    "crash unknown, empty log": lambda: facts(pods=(loki(ready=False, containers=(
        ContainerFacts("loki", state="terminated", reason="Error", restarts=1),)),)),
    "terminated once is not a crash loop": lambda: facts(pods=(loki(ready=False, containers=(
        ContainerFacts("loki", state="terminated", reason="Error", restarts=0),)),)),
    "crash with a long line": lambda: crashing("level=error " + "x" * 400),
    # Pod running but /ready fails
    "not ready, denied": lambda: replace(not_ready(DENIED), ownership={
        LOKI_DIR: Ownership("node-2", LOKI_DIR, "1000:1000", "755")}),
    "not ready, disk full": lambda: not_ready("write /var/loki/wal/000: No space left on device"),
    "not ready, read-only": lambda: not_ready("open /var/loki/x: read-only file system"),
    "not ready, disk full without a volume": lambda: not_ready("no space left on device", component="alloy"),
    "not ready, config": lambda: not_ready("level=error msg=x err=\"invalid config\""),
    "not ready, unknown": lambda: not_ready("level=info msg=waiting\nlevel=warn msg=slow"),
    "not ready, no probe event": lambda: not_ready("level=error x", probe=False),
    "not ready, init container": lambda: facts(pods=(loki(ready=False, containers=(
        ContainerFacts("init", state="running", init=True),)),), events=not_ready("").events),
    # Alloy running but no logs in Loki
    "alloy times out on loki's node": lambda: alloy_failing(on="node-2"),
    "alloy times out, overlay works": lambda: alloy_failing(NetworkFacts(ok=True, summary="all pings pass")),
    "alloy times out, overlay blocked, fixable": lambda: alloy_failing(NetworkFacts(
        ok=False, summary="node-1 -> node-2 blocked", details=("node-2 drops UDP 8472", "iptables"), fixable=True)),
    "alloy times out, overlay blocked": lambda: alloy_failing(NetworkFacts(ok=False, summary="blocked")),
    "alloy times out, overlay unknown": lambda: alloy_failing(NetworkFacts(ok=None, summary="not diagnosed")),
    "alloy times out, no loki pod": lambda: alloy_failing(pods=(alloy("alloy-a", "node-1"),)),
    "alloy times out, loki without its claim": lambda: alloy_failing(pods=(
        loki(claims=(), node="node-1"), alloy("alloy-a", "node-1"), alloy("alloy-b", "node-2"))),
    "alloy not running is not judged": lambda: facts(
        pods=(loki(), replace(alloy("alloy-a", "node-1"), phase="Pending")),
        logs={("alloy-a", "alloy", False): TIMEOUT}),
    # the API server cannot reach a kubelet
    "kubelet unreachable from the server": lambda: facts(log_failures=(
        kubelet_failure(), kubelet_failure("loki-1"), kubelet_failure("alloy-b", None),
        kubelet_failure("tempo-0"), kubelet_failure("tempo-1"),
        LogFailure("alloy-a", "alloy", False, "node-1", "HTTP 404"))),
    "kubelet of the server itself": lambda: facts(log_failures=(kubelet_failure("grafana-0", "node-1", Dial(
        "10.0.0.102", 10250, "connect: connection refused", "dial tcp 10.0.0.102:10250: connect: refused")),)),
    "kubelet timeout, from a check": lambda: facts(checks=(
        check("alloy.push-errors", detail="logs could not be read", kubelet=True, dial=Dial(
            "10.0.0.103", 10250, "i/o timeout", "dial tcp 10.0.0.103:10250: i/o timeout")),
        check("loki.ready", "PASS", kubelet=True, dial=KUBELET))),
    "kubelet timed out at an unknown address": lambda: facts(nodes=(), checks=(
        check("alloy.push-errors", detail="x", kubelet=True, dial=Dial(
            "10.9.9.9", 10250, "connect: connection timed out", "dial tcp 10.9.9.9:10250: connection timed out")),)),
    "kubelet failing for another reason": lambda: facts(log_failures=(kubelet_failure(dial=Dial(
        "10.0.0.103", 10250, "tls: bad certificate", "x")),), checks=(
        check("alloy.push-errors", kubelet=True, dial=KUBELET),)),
    # the API server cannot reach a Service's pod
    "service pod gone": lambda: facts(checks=(check("loki.ready", detail="HTTP 503", component="loki",
                                                    dial=Dial("10.42.9.9", 3100, "i/o timeout", "x")),)),
    "service pod on the server's node": lambda: facts(pods=(loki(), grafana()), checks=(
        check("grafana.health", detail="HTTP 503", component="grafana", dial=GRAFANA_DIAL),)),
    "service pod across nodes, overlay unknown": lambda: facts(checks=(
        check("loki.ready", detail="HTTP 503", component="loki", dial=POD_DIAL),)),
    "service pod across nodes, overlay broken": lambda: facts(
        network=NetworkFacts(ok=False, summary="blocked", details=("node-2 drops",), fixable=True),
        checks=(check("loki.ready", detail="HTTP 503", component="loki", dial=POD_DIAL),)),
    "service pod across nodes, overlay broken, not fixable": lambda: facts(
        network=NetworkFacts(ok=False, summary="blocked"),
        checks=(check("loki.ready", detail="HTTP 503", component="loki", dial=POD_DIAL),)),
    "service pod across nodes, overlay fine": lambda: facts(
        network=NetworkFacts(ok=True, summary="fine"),
        checks=(check("loki.ready", detail="HTTP 503", component="loki", dial=POD_DIAL),)),
    "service pod unknown component": lambda: facts(checks=(
        check("store.ready", detail="HTTP 503", component="", dial=POD_DIAL),)),
    "service without endpoints": lambda: facts(pods=(loki(ready=False, phase="Running"), alloy("a", "node-1")),
                                               checks=(check("loki.ready", detail="no endpoints", component="loki",
                                                             no_endpoints=True),)),
    "service without pods": lambda: facts(pods=(alloy("a", "node-1"),), checks=(
        check("tempo.ready", detail="no endpoints", component="tempo", no_endpoints=True),
        check("grafana.health", "PASS", component="grafana", no_endpoints=True))),
    # verify's checks nothing explains
    "checks unexplained": lambda: facts(checks=(
        check("loki.e2e", "WARN", "slow", hint="wait", component="loki"),
        check("cluster.data.loki", "FAIL", "empty", component=""),
        check("tempo.search", "PASS", "fine", component="tempo"),
        check("cluster.route", "SKIP", "skipped"))),
    "checks explained": lambda: alloy_failing(checks=(
        check("alloy.push-errors", component="alloy"), check("loki.cluster-logs", component="loki"),
        check("loki.e2e", component="loki"))),
    "checks explained by a kubelet finding": lambda: facts(
        log_failures=(kubelet_failure(),),
        checks=(check("alloy.push-errors", kubelet=True, dial=KUBELET, component="alloy"),
                check("loki.ready", kubelet=True, component="loki"))),
    "checks explained by a service finding": lambda: facts(checks=(
        check("loki.ready", component="loki", dial=POD_DIAL), check("store.ready", component="", dial=POD_DIAL))),
    "checks of a namespace that is gone": lambda: facts(namespace_exists=False, checks=(check("loki.ready"),)),
    "checks of a stack not installed": lambda: facts(pods=(), claims=(), volumes=(), checks=(
        check("loki.ready", component="loki"),)),
}

EXPECTED: dict[str, list[dict[str, Any]]] = {
    'namespace missing': [
        {
            'id': 'stack.namespace-missing',
            'component': 'namespace',
            'subject': 'namespace/logging',
            'symptom': 'Stack not installed',
            'cause': 'the namespace logging does not exist',
            'evidence': ['namespace logging not found'],
            'fix': 'install the stack: `o11yctl install` (or check cluster.namespace in the config)',
            'fix_action': None,
        },
    ],
    'nothing installed': [
        {
            'id': 'stack.not-installed',
            'component': 'namespace',
            'subject': 'namespace/logging',
            'symptom': 'Stack not installed',
            'cause': 'no pods run in the namespace logging',
            'evidence': ['`kubectl get pods -n logging` lists no pods'],
            'fix': 'install the stack: `o11yctl install`',
            'fix_action': None,
        },
    ],
    'pv missing, a pod waits': [
        {
            'id': 'pvc.pv-missing',
            'component': 'loki',
            'subject': 'pvc/loki-pvc',
            'symptom': 'PVC stays in Pending',
            'cause': 'the PersistentVolume loki-pv does not exist',
            'evidence': [
                            'PVC logging/loki-pvc asks for PV loki-pv (spec.volumeName); `kubectl get pv '
                            'loki-pv`: not found',
                            'event FailedBinding on persistentvolumeclaim/loki-pvc: volume "loki-pv" not found',
                            'pod loki-0 waits for it: 0/2 nodes are available: unbound immediate '
                            'PersistentVolumeClaims',
                        ],
            'fix': 'create it from the config: `o11yctl install --only volumes`',
            'fix_action': None,
        },
    ],
    "pv missing, by the config's name": [
        {
            'id': 'pvc.pv-missing',
            'component': 'loki',
            'subject': 'pvc/loki-pvc',
            'symptom': 'PVC stays in Pending',
            'cause': 'the PersistentVolume loki-pv does not exist',
            'evidence': [
                            'PVC logging/loki-pvc asks for PV loki-pv (spec.volumeName); `kubectl get pv '
                            'loki-pv`: not found',
                        ],
            'fix': 'create it from the config: `o11yctl install --only volumes`',
            'fix_action': None,
        },
    ],
    'pv released': [
        {
            'id': 'pvc.pv-released',
            'component': 'loki',
            'subject': 'pvc/loki-pvc',
            'symptom': 'PVC stays in Pending',
            'cause': 'the PV loki-pv still holds the claim of an earlier install (a deleted PVC); Kubernetes '
                     'does not hand a Released volume to a new claim by itself',
            'evidence': [
                            'PV loki-pv is Released; spec.claimRef: logging/loki-pvc uid uid-old',
                            'PVC logging/loki-pvc now has uid (unknown)',
                        ],
            'fix': 'release the stale claim; the data on disk is kept (reclaim policy Retain): kubectl patch pv '
                   'loki-pv --type merge -p \'{"spec":{"claimRef":{"uid":null,"resourceVersion":null}}}\'',
            'fix_action': None,
        },
    ],
    'pv taken': [
        {
            'id': 'pvc.pv-taken',
            'component': 'loki',
            'subject': 'pvc/loki-pvc',
            'symptom': 'PVC stays in Pending',
            'cause': 'the PV loki-pv belongs to another claim (other/data)',
            'evidence': [
                            'PV loki-pv is Bound; spec.claimRef: other/data',
                            'pod loki-0 waits for it',
                            'pod loki-1 waits for it',
                        ],
            'fix': 'check who uses it (`kubectl get pvc -A | grep loki-pv`); if that claim is gone, `kubectl '
                   'patch pv loki-pv --type json -p \'[{"op":"remove","path":"/spec/claimRef"}]\'` and `o11yctl '
                   'install --only volumes`',
            'fix_action': None,
        },
    ],
    'pv reserved elsewhere but available': [],
    'storage classes differ on the pv': [
        {
            'id': 'pvc.storage-class',
            'component': 'loki',
            'subject': 'pvc/loki-pvc',
            'symptom': 'PVC stays in Pending',
            'cause': 'the storage classes differ: PV loki-pv has (none), PVC loki-pvc has local-storage; a claim '
                     'only binds a volume of its own class',
            'evidence': [
                            'PV loki-pv: storageClassName (none)',
                            'PVC logging/loki-pvc: storageClassName local-storage',
                            'config storage.class_name: local-storage',
                        ],
            'fix': 'both must use storage.class_name (local-storage): `o11yctl install --only volumes`',
            'fix_action': None,
        },
    ],
    'storage classes differ on the claim': [
        {
            'id': 'pvc.storage-class',
            'component': 'loki',
            'subject': 'pvc/loki-pvc',
            'symptom': 'PVC stays in Pending',
            'cause': 'the storage classes differ: PV loki-pv has local-storage, PVC loki-pvc has (the default '
                     'class); a claim only binds a volume of its own class',
            'evidence': [
                            'PV loki-pv: storageClassName local-storage',
                            'PVC logging/loki-pvc: storageClassName (the default class)',
                            'config storage.class_name: local-storage',
                        ],
            'fix': "both must use storage.class_name (local-storage): the PVC's class cannot change: `kubectl "
                   'delete pvc -n logging loki-pvc`, then `o11yctl install --only volumes`',
            'fix_action': None,
        },
    ],
    'pv too small': [
        {
            'id': 'pvc.capacity',
            'component': 'loki',
            'subject': 'pvc/loki-pvc',
            'symptom': 'PVC stays in Pending',
            'cause': 'the PV is smaller than the claim: PV loki-pv offers 100Gi, PVC loki-pvc asks for 200Gi',
            'evidence': [
                            'PV loki-pv: capacity.storage 100Gi',
                            'PVC logging/loki-pvc: resources.requests.storage 200Gi',
                        ],
            'fix': "set the component's size in the config to what the claim asks, then `o11yctl install --only "
                   'volumes` (a claim can only grow: if it asks too much, `kubectl delete pvc -n logging '
                   'loki-pvc` first)',
            'fix_action': None,
        },
    ],
    'pv just big enough': [],
    'access modes differ': [
        {
            'id': 'pvc.access-mode',
            'component': 'loki',
            'subject': 'pvc/loki-pvc',
            'symptom': 'PVC stays in Pending',
            'cause': 'the PV does not offer the access mode the claim asks for (ReadWriteOnce, ReadOnlyMany)',
            'evidence': [
                            'PV loki-pv: accessModes (none)',
                            'PVC logging/loki-pvc: accessModes ReadWriteOnce, ReadOnlyMany',
                        ],
            'fix': 'both use ReadWriteOnce in the runbook: `kubectl delete pvc -n logging loki-pvc`, then '
                   '`o11yctl install --only volumes`',
            'fix_action': None,
        },
    ],
    'claim pending, other events': [
        {
            'id': 'pvc.pending',
            'component': 'storage',
            'subject': 'pvc/scratch',
            'symptom': 'PVC stays in Pending',
            'cause': 'Kubernetes did not bind the claim',
            'evidence': [
                            'event ExternalProvisioning on persistentvolumeclaim/scratch: ExternalProvisioning '
                            'happened',
                            'event Provisioning on persistentvolumeclaim/scratch: Provisioning happened',
                        ],
            'fix': 'see `kubectl describe pvc -n logging scratch`; `o11yctl install --only volumes` re-applies '
                   "o11yctl's PV and PVC",
            'fix_action': None,
        },
    ],
    'claim pending, waiting for its consumer': [],
    'pod claim missing': [
        {
            'id': 'pod.pvc-unbound',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': "the pod's PersistentVolumeClaim loki-pvc does not exist",
            'evidence': [
                            'pod loki-0 mounts PVC loki-pvc; `kubectl get pvc -n logging loki-pvc`: not found',
                            'event FailedScheduling on pod/loki-0 at 2025-01-01T10:00:00Z (x3): '
                            'persistentvolumeclaim "loki-pvc" not found',
                        ],
            'fix': 'create the claim from the config: `o11yctl install --only volumes`',
            'fix_action': None,
        },
    ],
    'pod claim lost': [
        {
            'id': 'pod.pvc-unbound',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': "the pod's PersistentVolumeClaim loki-pvc is Lost, not Bound",
            'evidence': ['PVC logging/loki-pvc: phase Lost, volumeName loki-pv'],
            'fix': 'see `kubectl describe pvc -n logging loki-pvc`; `o11yctl install --only volumes` re-applies '
                   "o11yctl's PV and PVC",
            'fix_action': None,
        },
    ],
    'pod claim pending without a volume': [
        {
            'id': 'pod.pvc-unbound',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': "the pod's PersistentVolumeClaim loki-pvc is Pending, not Bound",
            'evidence': ['PVC logging/loki-pvc: phase Pending', 'condition PodScheduled=False: waiting'],
            'fix': 'see `kubectl describe pvc -n logging loki-pvc`; `o11yctl install --only volumes` re-applies '
                   "o11yctl's PV and PVC",
            'fix_action': None,
        },
    ],
    'pod claim waits for first consumer': [],
    'node label missing, config gives it': [
        {
            'id': 'pod.node-selector',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'no node carries the label hardware=heavy: the config gives it to node-2 (nodes[].labels), '
                     'but the node does not have it',
            'evidence': [
                            'pod loki-0: nodeSelector hardware=heavy',
                            'node node-1: hardware (missing)',
                            'node node-2: hardware (missing)',
                            'event FailedScheduling on pod/loki-0 at 2025-01-01T10:00:00Z (x3): 0/2 nodes are '
                            "available: 2 node(s) didn't match Pod's node affinity/selector.",
                        ],
            'fix': 'label the node: `kubectl label node node-2 hardware=heavy --overwrite` (o11yctl doctor --fix '
                   'does this)',
            'fix_action': {'kind': 'node', 'description': 'kubectl label node node-2 hardware=heavy --overwrite'},
        },
    ],
    'node label nobody has': [
        {
            'id': 'pod.node-selector',
            'component': 'pod',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'no node carries the label disk=ssd hardware=heavy, and the config gives it to no node',
            'evidence': [
                            'pod loki-0: nodeSelector disk=ssd hardware=heavy',
                            'node node-1: disk (missing), hardware (missing)',
                            'node node-2: disk (missing), hardware=heavy',
                            'event FailedScheduling on pod/loki-0 at 2025-01-01T10:00:00Z (x3): 0/2 nodes are '
                            'available',
                        ],
            'fix': "put the storage node's labels in the config (nodes[].labels) and re-install the component "
                   '(`o11yctl install --only loki`), or label the node by hand: `kubectl label node NODE '
                   'disk=ssd hardware=heavy`',
            'fix_action': None,
        },
    ],
    'taint not tolerated': [
        {
            'id': 'pod.toleration',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': "the pod has no toleration for node-2's taint heavy=true:NoSchedule (the values o11yctl "
                     'renders add it: the release was installed with other values)',
            'evidence': [
                            'node node-2: taints heavy=true:NoSchedule not tolerated',
                            'pod loki-0: tolerations gpu (Exists), a=b:NoExecute, x, everything',
                        ],
            'fix': "re-install the component with o11yctl's values: `o11yctl install --only loki`",
            'fix_action': None,
        },
    ],
    'taint of a node not ready': [
        {
            'id': 'pod.toleration',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'node node-2 is not Ready (it carries node.kubernetes.io/unreachable:NoExecute)',
            'evidence': [
                            'node node-2: taints node.kubernetes.io/unreachable:NoExecute not tolerated',
                            'pod loki-0: tolerations heavy=true:NoSchedule',
                        ],
            'fix': 'check the node: `kubectl describe node node-2`, the K3s service on it',
            'fix_action': None,
        },
    ],
    'taint differs from the config': [
        {
            'id': 'pod.toleration',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': "node node-2 carries heavy=yes:NoSchedule, but the config (and so the pod's toleration) "
                     'says heavy=true:NoSchedule',
            'evidence': [
                            'node node-2: taints heavy=yes:NoSchedule not tolerated',
                            'pod loki-0: tolerations heavy=true:NoSchedule',
                        ],
            'fix': "set the node's taint to the config's: `kubectl taint node node-2 heavy:NoSchedule- && "
                   'kubectl taint node node-2 heavy=true:NoSchedule --overwrite` (o11yctl doctor --fix does this)',
            'fix_action': {
                              'kind': 'node',
                              'description': 'kubectl taint node node-2 heavy:NoSchedule- && kubectl taint node '
                                             'node-2 heavy=true:NoSchedule --overwrite',
                          },
        },
    ],
    'taint nobody knows': [
        {
            'id': 'pod.toleration',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'node node-2 carries a taint the config does not know and the pod does not tolerate: '
                     'gpu:NoSchedule',
            'evidence': [
                            'node node-2: taints gpu:NoSchedule not tolerated',
                            'pod loki-0: tolerations heavy=true:NoSchedule',
                        ],
            'fix': 'remove it (`kubectl taint node node-2 gpu:NoSchedule-`) or add it to nodes[].taints for '
                   'node-2 in the config and re-install the component',
            'fix_action': None,
        },
    ],
    'taint on a node the config has none for': [
        {
            'id': 'pod.toleration',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'node node-1 carries a taint the config does not know and the pod does not tolerate: '
                     'gpu:NoSchedule',
            'evidence': [
                            'node node-1: taints gpu:NoSchedule not tolerated',
                            'node node-2: taints heavy=true:NoSchedule not tolerated',
                            'pod loki-0: tolerations none',
                        ],
            'fix': 'remove it (`kubectl taint node node-1 gpu:NoSchedule-`) or add it to nodes[].taints for '
                   'node-1 in the config and re-install the component',
            'fix_action': None,
        },
    ],
    'volume pinned to an unknown node': [
        {
            'id': 'pod.volume-affinity',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'volume node affinity conflict: the PV loki-pv is pinned to node-3, but the pod must run on '
                     'node-2 (storage.node is node-2)',
            'evidence': [
                            'PV loki-pv: nodeAffinity kubernetes.io/hostname in [node-3] (no such node in the '
                            'cluster)',
                            'pod loki-0 may run on: node-2 (nodeSelector hardware=heavy)',
                        ],
            'fix': "a PV's node affinity cannot change; re-create the pair (the data directory on disk is kept): "
                   '`kubectl delete pvc -n logging loki-pvc && kubectl delete pv loki-pv`, then `o11yctl install '
                   '--only volumes,loki`',
            'fix_action': None,
        },
    ],
    'volume pinned to another node': [
        {
            'id': 'pod.volume-affinity',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'volume node affinity conflict: the PV loki-pv is pinned to node-1, but the pod must run on '
                     'node-2 (storage.node is node-2)',
            'evidence': [
                            'PV loki-pv: nodeAffinity kubernetes.io/hostname in [node-1]',
                            'pod loki-0 may run on: node-2 (nodeSelector hardware=heavy)',
                        ],
            'fix': "a PV's node affinity cannot change; re-create the pair (the data directory on disk is kept): "
                   '`kubectl delete pvc -n logging loki-pvc && kubectl delete pv loki-pv`, then `o11yctl install '
                   '--only volumes,loki`',
            'fix_action': None,
        },
    ],
    'volume pinned to nothing, no node may run it': [
        {
            'id': 'pod.node-selector',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'no node carries the label disk=ssd, and the config gives it to no node',
            'evidence': [
                            'pod loki-0: nodeSelector disk=ssd',
                            'node node-1: disk (missing)',
                            'node node-2: disk (missing)',
                        ],
            'fix': "put the storage node's labels in the config (nodes[].labels) and re-install the component "
                   '(`o11yctl install --only loki`), or label the node by hand: `kubectl label node NODE '
                   'disk=ssd`',
            'fix_action': None,
        },
        {
            'id': 'pod.volume-affinity',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'volume node affinity conflict: the PV loki-pv is pinned to (no node), but the pod must run '
                     'on node-2 (storage.node is node-2)',
            'evidence': [
                            'PV loki-pv: nodeAffinity kubernetes.io/hostname in [(no node)] (no such node in the '
                            'cluster)',
                            'pod loki-0 may run on: node-2 (nodeSelector disk=ssd)',
                        ],
            'fix': "a PV's node affinity cannot change; re-create the pair (the data directory on disk is kept): "
                   '`kubectl delete pvc -n logging loki-pvc && kubectl delete pv loki-pv`, then `o11yctl install '
                   '--only volumes,loki`',
            'fix_action': None,
        },
    ],
    'volume not pinned': [
        {
            'id': 'pod.unschedulable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'the scheduler cannot place the pod (see the event)',
            'evidence': ['event FailedScheduling on pod/loki-0 at 2025-01-01T10:00:00Z (x3): 0/2 nodes'],
            'fix': 'see `kubectl describe pod -n logging loki-0`',
            'fix_action': None,
        },
    ],
    'not enough cpu and memory': [
        {
            'id': 'pod.insufficient-resources',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'no node the pod may run on has enough cpu and memory left for its requests',
            'evidence': [
                            'pod loki-0 requests cpu 500m, memory 1Gi',
                            'node-2 allocatable cpu 4, memory 8Gi',
                            'event FailedScheduling on pod/loki-0 at 2025-01-01T10:00:00Z (x3): 0/2 nodes are '
                            'available: 1 Insufficient cpu, 1 insufficient Memory, 1 Insufficient cpu.',
                        ],
            'fix': 'free capacity on the node (`kubectl describe node NODE`, section Allocated resources) or '
                   'lower resources.requests in the loki values, then re-install it',
            'fix_action': None,
        },
    ],
    'not enough memory, nothing known': [
        {
            'id': 'pod.node-selector',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'no node carries the label disk=ssd, and the config gives it to no node',
            'evidence': [
                            'pod loki-0: nodeSelector disk=ssd',
                            'node node-1: disk (missing)',
                            'node node-2: disk (missing)',
                            'event FailedScheduling on pod/loki-0 at 2025-01-01T10:00:00Z (x3): 0/2 nodes are '
                            'available: 2 Insufficient memory.',
                        ],
            'fix': "put the storage node's labels in the config (nodes[].labels) and re-install the component "
                   '(`o11yctl install --only loki`), or label the node by hand: `kubectl label node NODE '
                   'disk=ssd`',
            'fix_action': None,
        },
        {
            'id': 'pod.insufficient-resources',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'no node the pod may run on has enough memory left for its requests',
            'evidence': [
                            'pod loki-0 requests (no requests found)',
                            'node-1 allocatable (unknown); node-2 allocatable memory 1Gi',
                            'event FailedScheduling on pod/loki-0 at 2025-01-01T10:00:00Z (x3): 0/2 nodes are '
                            'available: 2 Insufficient memory.',
                        ],
            'fix': 'free capacity on the node (`kubectl describe node NODE`, section Allocated resources) or '
                   'lower resources.requests in the loki values, then re-install it',
            'fix_action': None,
        },
    ],
    'unschedulable': [
        {
            'id': 'pod.unschedulable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'the scheduler cannot place the pod (see the event)',
            'evidence': [
                            'event FailedScheduling on pod/loki-0 at 2025-01-01T10:00:00Z (x3): 0/2 nodes were '
                            'unschedulable.',
                        ],
            'fix': 'see `kubectl describe pod -n logging loki-0`',
            'fix_action': None,
        },
    ],
    'unschedulable by condition': [
        {
            'id': 'pod.unschedulable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'the scheduler cannot place the pod (see the event)',
            'evidence': ['condition PodScheduled=False: 0/2 nodes are busy'],
            'fix': 'see `kubectl describe pod -n logging loki-0`',
            'fix_action': None,
        },
    ],
    'pending, nothing said': [],
    'latest scheduling event': [
        {
            'id': 'pod.unschedulable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'the scheduler cannot place the pod (see the event)',
            'evidence': ['event FailedScheduling on pod/loki-0 at 2025-01-01T11:00:00Z (x2): new'],
            'fix': 'see `kubectl describe pod -n logging loki-0`',
            'fix_action': None,
        },
    ],
    'data directory missing': [
        {
            'id': 'pod.mount',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'the data directory /mnt/k8s-storage/loki does not exist on node-2',
            'evidence': [
                            'event FailedMount on pod/loki-0: MountVolume.NewMounter failed: path '
                            '"/mnt/k8s-storage/loki" does not exist',
                        ],
            'fix': 'create it for the loki user, on node-2: `sudo mkdir -p /mnt/k8s-storage/loki && sudo chown '
                   '-R 10001:10001 /mnt/k8s-storage/loki` (or `o11yctl install --only storage`; o11yctl doctor '
                   '--fix does this)',
            'fix_action': {
                              'kind': 'chown',
                              'description': 'on node-2: sudo mkdir -p /mnt/k8s-storage/loki && sudo chown -R '
                                             '10001:10001 /mnt/k8s-storage/loki',
                          },
        },
    ],
    'another volume missing': [
        {
            'id': 'pod.mount',
            'component': 'pod',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'a volume of the pod cannot be mounted',
            'evidence': ['event FailedMount on pod/loki-0: configmap "x" does not exist'],
            'fix': 'see `kubectl describe pod -n logging loki-0`',
            'fix_action': None,
        },
    ],
    'mount failing otherwise': [],
    'image not pulled': [
        {
            'id': 'pod.waiting',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod stuck in Pending',
            'cause': 'container loki waits: ImagePullBackOff',
            'evidence': ['container loki: ImagePullBackOff: Back-off pulling image "x"'],
            'fix': "for ImagePullBackOff check the node's access to the registry (or set images.registry to a "
                   'mirror); otherwise see `kubectl describe pod -n logging loki-0`',
            'fix_action': None,
        },
    ],
    'crash out of memory': [
        {
            'id': 'crashloop.oom',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': 'the container runs out of memory (its limit) and is killed',
            'evidence': ['container loki: CrashLoopBackOff, restarted 5 times, last exit OOMKilled 1'],
            'fix': 'raise resources.limits.memory in the loki values or lower the load, then re-install it',
            'fix_action': None,
        },
    ],
    'crash denied, not confirmed': [
        {
            'id': 'crashloop.ownership',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': 'most likely /mnt/k8s-storage/loki on node-2 does not belong to 10001:10001, the user loki '
                     'runs as (it writes there through /var/loki)',
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log of loki-0/loki: level=error msg="error running loki" err="mkdir '
                            '/var/loki/rules: permission denied"',
                            'owner of /mnt/k8s-storage/loki on node-2 not confirmed: the storage node was not '
                            'reached over SSH',
                        ],
            'fix': 'give the directory to the loki user, on node-2: `sudo chown -R 10001:10001 '
                   '/mnt/k8s-storage/loki` (o11yctl doctor --fix does this)',
            'fix_action': {
                              'kind': 'chown',
                              'description': 'on node-2: sudo chown -R 10001:10001 /mnt/k8s-storage/loki',
                          },
        },
    ],
    'crash denied, stat failed': [
        {
            'id': 'crashloop.ownership',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': 'most likely /mnt/k8s-storage/loki on node-2 does not belong to 10001:10001, the user loki '
                     'runs as (it writes there through /var/loki)',
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log of loki-0/loki: level=error msg="error running loki" err="mkdir '
                            '/var/loki/rules: permission denied"',
                            'owner of /mnt/k8s-storage/loki on node-2 not confirmed: sudo: a password is required',
                        ],
            'fix': 'give the directory to the loki user, on node-2: `sudo chown -R 10001:10001 '
                   '/mnt/k8s-storage/loki` (o11yctl doctor --fix does this)',
            'fix_action': {
                              'kind': 'chown',
                              'description': 'on node-2: sudo chown -R 10001:10001 /mnt/k8s-storage/loki',
                          },
        },
    ],
    'crash denied, wrong owner': [
        {
            'id': 'crashloop.ownership',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': '/mnt/k8s-storage/loki on node-2 belongs to 0:0, not to 10001:10001, the user loki runs as '
                     '(it writes there through /var/loki)',
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log of loki-0/loki: level=error msg="error running loki" err="mkdir '
                            '/var/loki/rules: permission denied"',
                            'stat on node-2: /mnt/k8s-storage/loki is owned by 0:0, mode 755 (expected 10001:10001)',
                        ],
            'fix': 'give the directory to the loki user, on node-2: `sudo chown -R 10001:10001 '
                   '/mnt/k8s-storage/loki` (o11yctl doctor --fix does this)',
            'fix_action': {
                              'kind': 'chown',
                              'description': 'on node-2: sudo chown -R 10001:10001 /mnt/k8s-storage/loki',
                          },
        },
    ],
    'crash denied, wrong owner, no mode': [
        {
            'id': 'crashloop.ownership',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': '/mnt/k8s-storage/loki on node-2 belongs to 0:0, not to 10001:10001, the user loki runs as '
                     '(it writes there through /var/loki)',
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log of loki-0/loki: level=error msg="error running loki" err="mkdir '
                            '/var/loki/rules: permission denied"',
                            'stat on node-2: /mnt/k8s-storage/loki is owned by 0:0 (expected 10001:10001)',
                        ],
            'fix': 'give the directory to the loki user, on node-2: `sudo chown -R 10001:10001 '
                   '/mnt/k8s-storage/loki` (o11yctl doctor --fix does this)',
            'fix_action': {
                              'kind': 'chown',
                              'description': 'on node-2: sudo chown -R 10001:10001 /mnt/k8s-storage/loki',
                          },
        },
    ],
    'crash denied, right owner': [
        {
            'id': 'crashloop.permissions',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': '/mnt/k8s-storage/loki on node-2 belongs to 10001:10001, but something inside it (or its '
                     'mode) still denies loki writing: a file or directory below it may belong to another user',
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log of loki-0/loki: level=error msg="error running loki" err="mkdir '
                            '/var/loki/rules: permission denied"',
                            'stat on node-2: /mnt/k8s-storage/loki is owned by 10001:10001, mode 700 (expected '
                            '10001:10001)',
                        ],
            'fix': 'give the directory to the loki user, on node-2: `sudo chown -R 10001:10001 '
                   '/mnt/k8s-storage/loki` (o11yctl doctor --fix does this); check the mode with `ls -ln '
                   '/mnt/k8s-storage/loki`',
            'fix_action': {
                              'kind': 'chown',
                              'description': 'on node-2: sudo chown -R 10001:10001 /mnt/k8s-storage/loki',
                          },
        },
    ],
    'crash denied without a volume': [
        {
            'id': 'crashloop.permission-denied',
            'component': 'grafana',
            'subject': 'pod/grafana-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': 'the container is denied access to a file or directory (see the log line)',
            'evidence': [
                            'container grafana: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log of grafana-0/grafana: level=error msg="error running loki" err="mkdir '
                            '/var/loki/rules: permission denied"',
                        ],
            'fix': 'read the log: `kubectl logs -n logging grafana-0 -c grafana`',
            'fix_action': None,
        },
    ],
    'crash config error': [
        {
            'id': 'crashloop.config',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': "loki's configuration has an error (see the log line)",
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log of loki-0: failed parsing config: /etc/loki/config/config.yaml: yaml: unmarshal '
                            'errors',
                        ],
            'fix': "compare the release's values with o11yctl's (`helm get values loki -n logging`; `o11yctl "
                   'render --out DIR`) and re-install them: `o11yctl install --only loki`',
            'fix_action': None,
        },
    ],
    'crash config error without a component': [
        {
            'id': 'crashloop.config',
            'component': 'pod',
            'subject': 'pod/app-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': "pod's configuration has an error (see the log line)",
            'evidence': [
                            'container app: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log of app-0: failed parsing config: /etc/loki/config/config.yaml: yaml: unmarshal '
                            'errors',
                        ],
            'fix': "compare the release's values with o11yctl's (`helm get values RELEASE -n logging`; `o11yctl "
                   'render --out DIR`) and re-install them: `o11yctl install --only RELEASE`',
            'fix_action': None,
        },
    ],
    'crash unknown': [
        {
            'id': 'crashloop.unknown',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': 'the container exits; its log shows no permission or config error o11yctl recognises',
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log: fatal: two',
                            'log: panic: three',
                            'log: error four',
                        ],
            'fix': 'read the whole log: `kubectl logs -n logging loki-0 -c loki --previous`',
            'fix_action': None,
        },
    ],
    'crash unknown, quiet log': [
        {
            'id': 'crashloop.unknown',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': 'the container exits; its log shows no permission or config error o11yctl recognises',
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log: two',
                            'log: three',
                            'log: four',
                        ],
            'fix': 'read the whole log: `kubectl logs -n logging loki-0 -c loki --previous`',
            'fix_action': None,
        },
    ],
    'crash unknown, empty log': [
        {
            'id': 'crashloop.unknown',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': 'the container exits; its log shows no permission or config error o11yctl recognises',
            'evidence': ['container loki: Error, restarted 1 times', 'the log is empty'],
            'fix': 'read the whole log: `kubectl logs -n logging loki-0 -c loki --previous`',
            'fix_action': None,
        },
    ],
    'terminated once is not a crash loop': [],
    'crash with a long line': [
        {
            'id': 'crashloop.unknown',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod CrashLoopBackOff',
            'cause': 'the container exits; its log shows no permission or config error o11yctl recognises',
            'evidence': [
                            'container loki: CrashLoopBackOff, restarted 5 times, last exit Error 1',
                            'log: level=error xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
                            'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
                            'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
                            'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…',
                        ],
            'fix': 'read the whole log: `kubectl logs -n logging loki-0 -c loki --previous`',
            'fix_action': None,
        },
    ],
    'not ready, denied': [
        {
            'id': 'ready.ownership',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod running but /ready fails',
            'cause': '/mnt/k8s-storage/loki on node-2 belongs to 1000:1000, not to 10001:10001, the user loki '
                     'runs as (it writes there through /var/loki)',
            'evidence': [
                            'event Unhealthy on pod/loki-0 (x12): Readiness probe failed: HTTP probe failed with '
                            'statuscode: 503',
                            'log of loki-0/loki: level=error msg="error running loki" err="mkdir '
                            '/var/loki/rules: permission denied"',
                            'stat on node-2: /mnt/k8s-storage/loki is owned by 1000:1000, mode 755 (expected '
                            '10001:10001)',
                        ],
            'fix': 'give the directory to the loki user, on node-2: `sudo chown -R 10001:10001 '
                   '/mnt/k8s-storage/loki` (o11yctl doctor --fix does this)',
            'fix_action': {
                              'kind': 'chown',
                              'description': 'on node-2: sudo chown -R 10001:10001 /mnt/k8s-storage/loki',
                          },
        },
    ],
    'not ready, disk full': [
        {
            'id': 'ready.storage',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod running but /ready fails',
            'cause': 'loki cannot write to its storage: the disk holding /mnt/k8s-storage/loki on node-2 is full',
            'evidence': [
                            'event Unhealthy on pod/loki-0 (x12): Readiness probe failed: HTTP probe failed with '
                            'statuscode: 503',
                            'log of loki-0/loki: write /var/loki/wal/000: No space left on device',
                        ],
            'fix': 'free space on node-2 (`df -h /mnt/k8s-storage/loki`) or shorten the retention in the config',
            'fix_action': None,
        },
    ],
    'not ready, read-only': [
        {
            'id': 'ready.storage',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod running but /ready fails',
            'cause': 'loki cannot write to its storage: /mnt/k8s-storage/loki on node-2 is mounted read-only',
            'evidence': [
                            'event Unhealthy on pod/loki-0 (x12): Readiness probe failed: HTTP probe failed with '
                            'statuscode: 503',
                            'log of loki-0/loki: open /var/loki/x: read-only file system',
                        ],
            'fix': "check the mount on node-2 (`findmnt -T /mnt/k8s-storage/loki`) and the disk's health",
            'fix_action': None,
        },
    ],
    'not ready, disk full without a volume': [
        {
            'id': 'ready.storage',
            'component': 'alloy',
            'subject': 'pod/alloy-0',
            'symptom': 'Pod running but /ready fails',
            'cause': 'alloy cannot write to its storage: the disk holding its data directory is full',
            'evidence': [
                            'event Unhealthy on pod/alloy-0 (x12): Readiness probe failed: HTTP probe failed '
                            'with statuscode: 503',
                            'log of alloy-0/alloy: no space left on device',
                        ],
            'fix': 'free space on node-2 (`df -h /`) or shorten the retention in the config',
            'fix_action': None,
        },
    ],
    'not ready, config': [
        {
            'id': 'ready.config',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod running but /ready fails',
            'cause': "loki's configuration has an error (see the log line)",
            'evidence': [
                            'event Unhealthy on pod/loki-0 (x12): Readiness probe failed: HTTP probe failed with '
                            'statuscode: 503',
                            'log of loki-0: level=error msg=x err="invalid config"',
                        ],
            'fix': "compare the release's values with o11yctl's (`helm get values loki -n logging`; `o11yctl "
                   'render --out DIR`) and re-install them: `o11yctl install --only loki`',
            'fix_action': None,
        },
    ],
    'not ready, unknown': [
        {
            'id': 'ready.failing',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Pod running but /ready fails',
            'cause': 'the readiness probe fails and the log shows no config or storage error o11yctl recognises '
                     "(Loki's ingester, for one, reports not ready for a while after it starts)",
            'evidence': [
                            'event Unhealthy on pod/loki-0 (x12): Readiness probe failed: HTTP probe failed with '
                            'statuscode: 503',
                            'log: level=warn msg=slow',
                        ],
            'fix': 'wait a minute and run `o11yctl doctor` again; if it stays, follow the log: `kubectl logs -n '
                   'logging loki-0 -c loki -f`',
            'fix_action': None,
        },
    ],
    'not ready, no probe event': [],
    'not ready, init container': [],
    "alloy times out on loki's node": [
        {
            'id': 'alloy.push-timeout',
            'component': 'alloy',
            'subject': 'daemonset/alloy',
            'symptom': 'Alloy running but no logs in Loki',
            'cause': "Alloy's pushes to Loki time out even on Loki's own node, so the overlay is not the cause: "
                     'Loki does not answer in time (is it Ready? see the other findings)',
            'evidence': ['log of alloy-b on node-2: later i/o timeout', 'Loki runs on node-2'],
            'fix': 'check Loki: `kubectl logs -n logging -l app.kubernetes.io/name=loki --tail=50`',
            'fix_action': None,
        },
    ],
    'alloy times out, overlay works': [
        {
            'id': 'alloy.push-timeout',
            'component': 'alloy',
            'subject': 'daemonset/alloy',
            'symptom': 'Alloy running but no logs in Loki',
            'cause': 'Alloy on node-1 times out pushing to Loki, but the overlay between the nodes works: Loki '
                     'answers too slowly or not at all',
            'evidence': [
                            'log of alloy-a on node-1: later i/o timeout',
                            'Loki runs on node-2',
                            'fix-vxlan diagnosis: all pings pass',
                        ],
            'fix': 'check Loki: `kubectl logs -n logging -l app.kubernetes.io/name=loki --tail=50`',
            'fix_action': None,
        },
    ],
    'alloy times out, overlay blocked, fixable': [
        {
            'id': 'alloy.push-timeout',
            'component': 'network',
            'subject': 'daemonset/alloy',
            'symptom': 'Alloy running but no logs in Loki',
            'cause': "cross-node pod traffic is blocked: Flannel's VXLAN (UDP 8472) does not pass between the "
                     'nodes, so Alloy on node-1 cannot reach Loki',
            'evidence': [
                            'log of alloy-a on node-1: later i/o timeout',
                            'Loki runs on node-2',
                            'fix-vxlan diagnosis: node-1 -> node-2 blocked',
                            '  node-2 drops UDP 8472',
                            '  iptables',
                        ],
            'fix': 'open UDP 8472 between the nodes and restart K3s: `o11yctl fix-vxlan` (o11yctl doctor --fix '
                   'does this)',
            'fix_action': {
                              'kind': 'fix-vxlan',
                              'description': 'o11yctl fix-vxlan  (open the VXLAN port between the nodes, restart '
                                             'K3s, check again)',
                          },
        },
    ],
    'alloy times out, overlay blocked': [
        {
            'id': 'alloy.push-timeout',
            'component': 'network',
            'subject': 'daemonset/alloy',
            'symptom': 'Alloy running but no logs in Loki',
            'cause': "cross-node pod traffic is blocked: Flannel's VXLAN (UDP 8472) does not pass between the "
                     'nodes, so Alloy on node-1 cannot reach Loki',
            'evidence': [
                            'log of alloy-a on node-1: later i/o timeout',
                            'Loki runs on node-2',
                            'fix-vxlan diagnosis: blocked',
                        ],
            'fix': 'open UDP 8472 between the nodes and restart K3s: `o11yctl fix-vxlan`',
            'fix_action': None,
        },
    ],
    'alloy times out, overlay unknown': [
        {
            'id': 'alloy.push-timeout',
            'component': 'network',
            'subject': 'daemonset/alloy',
            'symptom': 'Alloy running but no logs in Loki',
            'cause': 'Alloy on node-1 cannot reach Loki on node-2 in time: usually cross-node pod networking '
                     "(Flannel's VXLAN over UDP 8472 blocked between the nodes)",
            'evidence': [
                            'log of alloy-a on node-1: later i/o timeout',
                            'Loki runs on node-2',
                            'fix-vxlan diagnosis: not diagnosed',
                        ],
            'fix': 'diagnose the overlay: `o11yctl fix-vxlan --check`; fix it with `o11yctl fix-vxlan`',
            'fix_action': None,
        },
    ],
    'alloy times out, no loki pod': [
        {
            'id': 'alloy.push-timeout',
            'component': 'alloy',
            'subject': 'daemonset/alloy',
            'symptom': 'Alloy running but no logs in Loki',
            'cause': "Alloy's pushes to Loki time out even on Loki's own node, so the overlay is not the cause: "
                     'Loki does not answer in time (is it Ready? see the other findings)',
            'evidence': ['log of alloy-a on node-1: later i/o timeout'],
            'fix': 'check Loki: `kubectl logs -n logging -l app.kubernetes.io/name=loki --tail=50`',
            'fix_action': None,
        },
    ],
    'alloy times out, loki without its claim': [
        {
            'id': 'alloy.push-timeout',
            'component': 'alloy',
            'subject': 'daemonset/alloy',
            'symptom': 'Alloy running but no logs in Loki',
            'cause': "Alloy's pushes to Loki time out even on Loki's own node, so the overlay is not the cause: "
                     'Loki does not answer in time (is it Ready? see the other findings)',
            'evidence': ['log of alloy-a on node-1: later i/o timeout', 'Loki runs on node-1'],
            'fix': 'check Loki: `kubectl logs -n logging -l app.kubernetes.io/name=loki --tail=50`',
            'fix_action': None,
        },
    ],
    'alloy not running is not judged': [],
    'kubelet unreachable from the server': [
        {
            'id': 'kubelet.unreachable',
            'component': 'network',
            'subject': 'node/node-2',
            'symptom': 'Pod logs, exec and port-forward fail (the API server cannot reach a kubelet)',
            'cause': 'the Kubernetes API server is up but cannot connect to the kubelet of node-2 at '
                     '10.0.0.103:10250: the connection was refused with "no route to host": a firewall on node-2 '
                     "rejecting it (firewalld's default rejects with icmp-host-prohibited, iptables' REJECT can "
                     "too), or 10.0.0.103:10250 is not node-2's address. K3s needs TCP 10250 open from the "
                     'server to every node',
            'evidence': [
                            'log of loki-0/loki: HTTP 500: Get logs: dial tcp 10.0.0.103:10250: connect: no '
                            'route to host',
                            'log of loki-1/loki: HTTP 500: Get logs: dial tcp 10.0.0.103:10250: connect: no '
                            'route to host',
                            'log of alloy-b/loki: HTTP 500: Get logs: dial tcp 10.0.0.103:10250: connect: no '
                            'route to host',
                            "... and 2 more read(s) through node-2's kubelet failed the same way",
                            'node node-2: InternalIP 10.0.0.103, Hostname node-2',
                            'the API server runs on node-1 (10.0.0.102; nodes[].role server in the config)',
                        ],
            'fix': 'on node-2, accept TCP 10250 from the server (10.0.0.102), e.g. `sudo iptables -I INPUT -s '
                   '10.0.0.102/32 -p tcp --dport 10250 -j ACCEPT` (or the ufw or firewalld equivalent where that '
                   'firewall is in charge); check that the kubelet listens there (`sudo ss -tlnp | grep 10250` '
                   "on node-2) and that 10.0.0.103:10250 is node-2's address; `o11yctl doctor --fix` opens it as "
                   'fix-vxlan opens UDP 8472: one rule per server address, tagged o11yctl-kubelet, saved for boot',
            'fix_action': {
                              'kind': 'open-kubelet-port',
                              'description': 'on node-2: accept TCP 10250 from the server (10.0.0.102) only, '
                                             'with the firewall in charge there (sudo iptables -I INPUT -s '
                                             '10.0.0.102/32 -p tcp -m tcp --dport 10250 -m comment --comment '
                                             'o11yctl-kubelet -j ACCEPT, or its ufw, firewalld or nft '
                                             'equivalent), tagged o11yctl-kubelet and saved for boot like '
                                             "fix-vxlan's rules",
                          },
        },
    ],
    'kubelet of the server itself': [
        {
            'id': 'kubelet.unreachable',
            'component': 'network',
            'subject': 'node/node-1',
            'symptom': 'Pod logs, exec and port-forward fail (the API server cannot reach a kubelet)',
            'cause': 'the Kubernetes API server is up but cannot connect to the kubelet of node-1 at '
                     '10.0.0.102:10250: nothing accepted the connection on 10.0.0.102:10250: the kubelet is not '
                     'listening (is K3s running on node-1?) or a firewall answers with a TCP reset. K3s needs '
                     'TCP 10250 open from the server to every node',
            'evidence': [
                            'log of grafana-0/loki: HTTP 500: Get logs: dial tcp 10.0.0.102:10250: connect: refused',
                            'node node-1: InternalIP 10.0.0.102',
                        ],
            'fix': 'on node-1, accept TCP 10250 from the server, e.g. `sudo iptables -I INPUT -s SERVER/32 -p '
                   'tcp --dport 10250 -j ACCEPT` (or the ufw or firewalld equivalent where that firewall is in '
                   'charge); check that the kubelet listens there (`sudo ss -tlnp | grep 10250` on node-1) and '
                   "that 10.0.0.102:10250 is node-1's address; doctor cannot open it itself: no other node has "
                   'role server in the config',
            'fix_action': None,
        },
    ],
    'kubelet timeout, from a check': [
        {
            'id': 'kubelet.unreachable',
            'component': 'network',
            'subject': 'node/node-2',
            'symptom': 'Pod logs, exec and port-forward fail (the API server cannot reach a kubelet)',
            'cause': 'the Kubernetes API server is up but cannot connect to the kubelet of node-2 at '
                     '10.0.0.103:10250: the connection attempt got no answer: a firewall on node-2, or between '
                     'the nodes, drops it, or 10.0.0.103:10250 is not reachable from the server. K3s needs TCP '
                     '10250 open from the server to every node',
            'evidence': [
                            'verify alloy.push-errors: FAIL logs could not be read',
                            'node node-2: InternalIP 10.0.0.103, Hostname node-2',
                            'the API server runs on node-1 (10.0.0.102; nodes[].role server in the config)',
                        ],
            'fix': 'on node-2, accept TCP 10250 from the server (10.0.0.102), e.g. `sudo iptables -I INPUT -s '
                   '10.0.0.102/32 -p tcp --dport 10250 -j ACCEPT` (or the ufw or firewalld equivalent where that '
                   'firewall is in charge); check that the kubelet listens there (`sudo ss -tlnp | grep 10250` '
                   "on node-2) and that 10.0.0.103:10250 is node-2's address; `o11yctl doctor --fix` opens it as "
                   'fix-vxlan opens UDP 8472: one rule per server address, tagged o11yctl-kubelet, saved for boot',
            'fix_action': {
                              'kind': 'open-kubelet-port',
                              'description': 'on node-2: accept TCP 10250 from the server (10.0.0.102) only, '
                                             'with the firewall in charge there (sudo iptables -I INPUT -s '
                                             '10.0.0.102/32 -p tcp -m tcp --dport 10250 -m comment --comment '
                                             'o11yctl-kubelet -j ACCEPT, or its ufw, firewalld or nft '
                                             'equivalent), tagged o11yctl-kubelet and saved for boot like '
                                             "fix-vxlan's rules",
                          },
        },
    ],
    'kubelet timed out at an unknown address': [
        {
            'id': 'kubelet.unreachable',
            'component': 'network',
            'subject': 'node/10.9.9.9',
            'symptom': 'Pod logs, exec and port-forward fail (the API server cannot reach a kubelet)',
            'cause': 'the Kubernetes API server is up but cannot connect to the kubelet of 10.9.9.9 at '
                     '10.9.9.9:10250: the connection attempt got no answer: a firewall on 10.9.9.9, or between '
                     'the nodes, drops it, or 10.9.9.9:10250 is not reachable from the server. K3s needs TCP '
                     '10250 open from the server to every node',
            'evidence': [
                            'verify alloy.push-errors: FAIL x',
                            'the API server runs on node-1 (10.0.0.102; nodes[].role server in the config)',
                        ],
            'fix': 'on 10.9.9.9, accept TCP 10250 from the server (10.0.0.102), e.g. `sudo iptables -I INPUT -s '
                   '10.0.0.102/32 -p tcp --dport 10250 -j ACCEPT` (or the ufw or firewalld equivalent where that '
                   'firewall is in charge); check that the kubelet listens there (`sudo ss -tlnp | grep 10250` '
                   "on 10.9.9.9) and that 10.9.9.9:10250 is 10.9.9.9's address",
            'fix_action': None,
        },
    ],
    'kubelet failing for another reason': [
        {
            'id': 'kubelet.unreachable',
            'component': 'network',
            'subject': 'node/node-2',
            'symptom': 'Pod logs, exec and port-forward fail (the API server cannot reach a kubelet)',
            'cause': 'the Kubernetes API server is up but cannot connect to the kubelet of node-2 at '
                     '10.0.0.103:10250: the connection to 10.0.0.103:10250 failed (tls: bad certificate). K3s '
                     'needs TCP 10250 open from the server to every node',
            'evidence': [
                            'log of loki-0/loki: HTTP 500: Get logs: x',
                            'node node-2: InternalIP 10.0.0.103, Hostname node-2',
                            'the API server runs on node-1 (10.0.0.102; nodes[].role server in the config)',
                        ],
            'fix': 'on node-2, accept TCP 10250 from the server (10.0.0.102), e.g. `sudo iptables -I INPUT -s '
                   '10.0.0.102/32 -p tcp --dport 10250 -j ACCEPT` (or the ufw or firewalld equivalent where that '
                   'firewall is in charge); check that the kubelet listens there (`sudo ss -tlnp | grep 10250` '
                   "on node-2) and that 10.0.0.103:10250 is node-2's address; `o11yctl doctor --fix` opens it as "
                   'fix-vxlan opens UDP 8472: one rule per server address, tagged o11yctl-kubelet, saved for boot',
            'fix_action': {
                              'kind': 'open-kubelet-port',
                              'description': 'on node-2: accept TCP 10250 from the server (10.0.0.102) only, '
                                             'with the firewall in charge there (sudo iptables -I INPUT -s '
                                             '10.0.0.102/32 -p tcp -m tcp --dport 10250 -m comment --comment '
                                             'o11yctl-kubelet -j ACCEPT, or its ufw, firewalld or nft '
                                             'equivalent), tagged o11yctl-kubelet and saved for boot like '
                                             "fix-vxlan's rules",
                          },
        },
    ],
    'service pod gone': [
        {
            'id': 'service.unreachable',
            'component': 'loki',
            'subject': 'svc/loki:3100',
            'symptom': 'Loki cannot be reached through the Kubernetes API',
            'cause': 'the API server could not connect to 10.42.9.9:3100 behind svc/loki:3100 (i/o timeout), and '
                     'no pod of the namespace has that address (any more)',
            'evidence': ['verify loki.ready: FAIL HTTP 503'],
            'fix': '`kubectl get pods,endpointslices -n logging -o wide`; then `o11yctl verify --only loki`',
            'fix_action': None,
        },
    ],
    "service pod on the server's node": [
        {
            'id': 'service.unreachable',
            'component': 'grafana',
            'subject': 'pod/grafana-0',
            'symptom': 'Grafana cannot be reached through the Kubernetes API',
            'cause': "the API server could not connect to Grafana's pod grafana-0 at 10.42.0.7:3000 (connect: "
                     "connection refused); the pod runs on the server's own node, so the overlay between nodes "
                     'is not the cause: the pod does not accept connections on that port',
            'evidence': [
                            'verify grafana.health: FAIL HTTP 503',
                            'pod grafana-0 (10.42.0.7) runs on node-1, where the API server runs too',
                        ],
            'fix': 'check that the container listens on 3000 and is Ready: `kubectl describe pod -n logging '
                   'grafana-0`, its log, and any NetworkPolicy in logging',
            'fix_action': None,
        },
    ],
    'service pod across nodes, overlay unknown': [
        {
            'id': 'service.unreachable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Loki cannot be reached through the Kubernetes API',
            'cause': "the API server could not connect to Loki's pod loki-0 at 10.42.1.5:3100 (i/o timeout) on "
                     "node-2: the server reaches pods on other nodes over Flannel's VXLAN (UDP 8472), which is "
                     'usually blocked',
            'evidence': [
                            'verify loki.ready: FAIL HTTP 503',
                            'pod loki-0 (10.42.1.5) runs on node-2; the API server runs on node-1',
                        ],
            'fix': 'diagnose the overlay: `o11yctl fix-vxlan --check`; fix it with `o11yctl fix-vxlan`',
            'fix_action': None,
        },
    ],
    'service pod across nodes, overlay broken': [
        {
            'id': 'service.unreachable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Loki cannot be reached through the Kubernetes API',
            'cause': "the API server could not connect to Loki's pod loki-0 at 10.42.1.5:3100 (i/o timeout) on "
                     "node-2: the server reaches pods on other nodes over Flannel's VXLAN (UDP 8472), and the "
                     'overlay between the nodes is broken',
            'evidence': [
                            'verify loki.ready: FAIL HTTP 503',
                            'pod loki-0 (10.42.1.5) runs on node-2; the API server runs on node-1',
                            'fix-vxlan diagnosis: blocked',
                            '  node-2 drops',
                        ],
            'fix': 'open UDP 8472 between the nodes: `o11yctl fix-vxlan` (o11yctl doctor --fix does this)',
            'fix_action': {
                              'kind': 'fix-vxlan',
                              'description': 'o11yctl fix-vxlan  (open the VXLAN port between the nodes, restart '
                                             'K3s, check again)',
                          },
        },
    ],
    'service pod across nodes, overlay broken, not fixable': [
        {
            'id': 'service.unreachable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Loki cannot be reached through the Kubernetes API',
            'cause': "the API server could not connect to Loki's pod loki-0 at 10.42.1.5:3100 (i/o timeout) on "
                     "node-2: the server reaches pods on other nodes over Flannel's VXLAN (UDP 8472), and the "
                     'overlay between the nodes is broken',
            'evidence': [
                            'verify loki.ready: FAIL HTTP 503',
                            'pod loki-0 (10.42.1.5) runs on node-2; the API server runs on node-1',
                            'fix-vxlan diagnosis: blocked',
                        ],
            'fix': 'open UDP 8472 between the nodes: `o11yctl fix-vxlan`',
            'fix_action': None,
        },
    ],
    'service pod across nodes, overlay fine': [
        {
            'id': 'service.unreachable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Loki cannot be reached through the Kubernetes API',
            'cause': "the API server could not connect to Loki's pod loki-0 at 10.42.1.5:3100 (i/o timeout) on "
                     "node-2: the server reaches pods on other nodes over Flannel's VXLAN (UDP 8472); the "
                     'overlay works, so the pod itself does not accept connections on that port',
            'evidence': [
                            'verify loki.ready: FAIL HTTP 503',
                            'pod loki-0 (10.42.1.5) runs on node-2; the API server runs on node-1',
                            'fix-vxlan diagnosis: fine',
                        ],
            'fix': 'check that the container listens on 3100 and is Ready: `kubectl describe pod -n logging '
                   'loki-0`; and any NetworkPolicy in logging',
            'fix_action': None,
        },
    ],
    'service pod unknown component': [
        {
            'id': 'service.unreachable',
            'component': 'network',
            'subject': 'pod/loki-0',
            'symptom': ' cannot be reached through the Kubernetes API',
            'cause': "the API server could not connect to 's pod loki-0 at 10.42.1.5:3100 (i/o timeout) on "
                     "node-2: the server reaches pods on other nodes over Flannel's VXLAN (UDP 8472), which is "
                     'usually blocked',
            'evidence': [
                            'verify store.ready: FAIL HTTP 503',
                            'pod loki-0 (10.42.1.5) runs on node-2; the API server runs on node-1',
                        ],
            'fix': 'diagnose the overlay: `o11yctl fix-vxlan --check`; fix it with `o11yctl fix-vxlan`',
            'fix_action': None,
        },
    ],
    'service without endpoints': [
        {
            'id': 'service.no-endpoints',
            'component': 'loki',
            'subject': 'svc/loki:3100',
            'symptom': 'Loki cannot be reached through the Kubernetes API',
            'cause': 'the Service has no Ready pod behind it: no loki pod is Ready (or none matches its selector)',
            'evidence': ['verify loki.ready: FAIL no endpoints', 'pod loki-0: Running, not Ready'],
            'fix': '`kubectl get pods,endpointslices -n logging -o wide`; a pod that is not Ready has its own '
                   'finding when doctor recognises why',
            'fix_action': None,
        },
    ],
    'service without pods': [
        {
            'id': 'service.no-endpoints',
            'component': 'tempo',
            'subject': 'svc/tempo:3200',
            'symptom': 'Tempo cannot be reached through the Kubernetes API',
            'cause': 'the Service has no Ready pod behind it: no tempo pod is Ready (or none matches its selector)',
            'evidence': [
                            'verify tempo.ready: FAIL no endpoints',
                            'no pod labelled app.kubernetes.io/name=tempo in logging',
                        ],
            'fix': '`kubectl get pods,endpointslices -n logging -o wide`; a pod that is not Ready has its own '
                   'finding when doctor recognises why',
            'fix_action': None,
        },
    ],
    'checks unexplained': [
        {
            'id': 'verify.unexplained',
            'component': 'loki',
            'subject': 'check/loki.e2e',
            'symptom': 'verify loki.e2e WARNs',
            'cause': 'doctor cannot tell why: nothing it reads (pods, events, logs, volumes, nodes) explains '
                     'this verdict',
            'evidence': ['verify loki.e2e: WARN slow', "verify's hint: wait"],
            'fix': 'run `o11yctl verify --only loki` and follow its hint; `o11yctl doctor --bundle FILE.tar.gz` '
                   'collects what a maintainer needs to look further',
            'fix_action': None,
        },
        {
            'id': 'verify.unexplained',
            'component': 'cluster',
            'subject': 'check/cluster.data.loki',
            'symptom': 'verify cluster.data.loki FAILs',
            'cause': 'doctor cannot tell why: nothing it reads (pods, events, logs, volumes, nodes) explains '
                     'this verdict',
            'evidence': ['verify cluster.data.loki: FAIL empty'],
            'fix': 'run `o11yctl verify --only cluster` and follow its hint; `o11yctl doctor --bundle '
                   'FILE.tar.gz` collects what a maintainer needs to look further',
            'fix_action': None,
        },
    ],
    'checks explained': [
        {
            'id': 'alloy.push-timeout',
            'component': 'network',
            'subject': 'daemonset/alloy',
            'symptom': 'Alloy running but no logs in Loki',
            'cause': 'Alloy on node-1 cannot reach Loki on node-2 in time: usually cross-node pod networking '
                     "(Flannel's VXLAN over UDP 8472 blocked between the nodes)",
            'evidence': ['log of alloy-a on node-1: later i/o timeout', 'Loki runs on node-2'],
            'fix': 'diagnose the overlay: `o11yctl fix-vxlan --check`; fix it with `o11yctl fix-vxlan`',
            'fix_action': None,
        },
        {
            'id': 'verify.unexplained',
            'component': 'loki',
            'subject': 'check/loki.e2e',
            'symptom': 'verify loki.e2e FAILs',
            'cause': 'doctor cannot tell why: nothing it reads (pods, events, logs, volumes, nodes) explains '
                     'this verdict',
            'evidence': ['verify loki.e2e: FAIL x'],
            'fix': 'run `o11yctl verify --only loki` and follow its hint; `o11yctl doctor --bundle FILE.tar.gz` '
                   'collects what a maintainer needs to look further',
            'fix_action': None,
        },
    ],
    'checks explained by a kubelet finding': [
        {
            'id': 'kubelet.unreachable',
            'component': 'network',
            'subject': 'node/node-2',
            'symptom': 'Pod logs, exec and port-forward fail (the API server cannot reach a kubelet)',
            'cause': 'the Kubernetes API server is up but cannot connect to the kubelet of node-2 at '
                     '10.0.0.103:10250: the connection was refused with "no route to host": a firewall on node-2 '
                     "rejecting it (firewalld's default rejects with icmp-host-prohibited, iptables' REJECT can "
                     "too), or 10.0.0.103:10250 is not node-2's address. K3s needs TCP 10250 open from the "
                     'server to every node',
            'evidence': [
                            'log of loki-0/loki: HTTP 500: Get logs: dial tcp 10.0.0.103:10250: connect: no '
                            'route to host',
                            'node node-2: InternalIP 10.0.0.103, Hostname node-2',
                            'the API server runs on node-1 (10.0.0.102; nodes[].role server in the config)',
                        ],
            'fix': 'on node-2, accept TCP 10250 from the server (10.0.0.102), e.g. `sudo iptables -I INPUT -s '
                   '10.0.0.102/32 -p tcp --dport 10250 -j ACCEPT` (or the ufw or firewalld equivalent where that '
                   'firewall is in charge); check that the kubelet listens there (`sudo ss -tlnp | grep 10250` '
                   "on node-2) and that 10.0.0.103:10250 is node-2's address; `o11yctl doctor --fix` opens it as "
                   'fix-vxlan opens UDP 8472: one rule per server address, tagged o11yctl-kubelet, saved for boot',
            'fix_action': {
                              'kind': 'open-kubelet-port',
                              'description': 'on node-2: accept TCP 10250 from the server (10.0.0.102) only, '
                                             'with the firewall in charge there (sudo iptables -I INPUT -s '
                                             '10.0.0.102/32 -p tcp -m tcp --dport 10250 -m comment --comment '
                                             'o11yctl-kubelet -j ACCEPT, or its ufw, firewalld or nft '
                                             'equivalent), tagged o11yctl-kubelet and saved for boot like '
                                             "fix-vxlan's rules",
                          },
        },
    ],
    'checks explained by a service finding': [
        {
            'id': 'service.unreachable',
            'component': 'loki',
            'subject': 'pod/loki-0',
            'symptom': 'Loki cannot be reached through the Kubernetes API',
            'cause': "the API server could not connect to Loki's pod loki-0 at 10.42.1.5:3100 (i/o timeout) on "
                     "node-2: the server reaches pods on other nodes over Flannel's VXLAN (UDP 8472), which is "
                     'usually blocked',
            'evidence': [
                            'verify loki.ready: FAIL x',
                            'pod loki-0 (10.42.1.5) runs on node-2; the API server runs on node-1',
                        ],
            'fix': 'diagnose the overlay: `o11yctl fix-vxlan --check`; fix it with `o11yctl fix-vxlan`',
            'fix_action': None,
        },
    ],
    'checks of a namespace that is gone': [
        {
            'id': 'stack.namespace-missing',
            'component': 'namespace',
            'subject': 'namespace/logging',
            'symptom': 'Stack not installed',
            'cause': 'the namespace logging does not exist',
            'evidence': ['namespace logging not found'],
            'fix': 'install the stack: `o11yctl install` (or check cluster.namespace in the config)',
            'fix_action': None,
        },
    ],
    'checks of a stack not installed': [
        {
            'id': 'stack.not-installed',
            'component': 'namespace',
            'subject': 'namespace/logging',
            'symptom': 'Stack not installed',
            'cause': 'no pods run in the namespace logging',
            'evidence': ['`kubectl get pods -n logging` lists no pods'],
            'fix': 'install the stack: `o11yctl install`',
            'fix_action': None,
        },
    ],
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_situation_gets_its_findings(case: str) -> None:
    assert [f.to_json() for f in judge(CASES[case]())] == EXPECTED[case]


def test_every_case_has_expected_findings() -> None:
    assert set(CASES) == set(EXPECTED)


# --- profile scalable: judge_object_storage, finding by finding --------------------------------------------------

def _object_storage_findings(logs: dict[tuple[str, str, bool], str]) -> list[dict[str, Any]]:
    from o11yctl.config import parse_config
    from o11yctl.doctor.rules import judge_object_storage

    cfg = parse_config("profile: scalable\ncharts:\n  set: current\ncomponents:\n  loki:\n    replicas: 2\n"
                       "object_storage:\n  store: external\n  endpoint: https://s3.lan:9000\n")
    tempo = loki(name="tempo-0", component="tempo", containers=(ContainerFacts("tempo", ready=True),
                                                                ContainerFacts("sidecar", ready=True)))
    both = loki(containers=(ContainerFacts("loki", ready=True), ContainerFacts("sidecar", ready=True)))
    pods = (alloy("alloy-a", "node-1"), both, tempo)  # Alloy first: it is passed over, not an end
    return [f.to_json() for f in judge_object_storage(facts(expected=expectations(cfg), pods=pods, logs=logs))]


def _s3(fid: str, component: str, pod: str, cause: str, line: str, fix: str,
        symptom: str = "Data not written to the object store") -> dict[str, Any]:
    return {"id": fid, "component": component, "subject": f"pod/{pod}", "symptom": symptom, "cause": cause,
            "evidence": [f"log of {pod}/{component}: {line}"], "fix": fix, "fix_action": None}


BUCKET_FIX = ("create it on the store (the in-cluster store makes its buckets on install: `o11yctl install --only "
              "store`), or fix object_storage.buckets")
UNREACHABLE = 'Put "https://s3.lan:9000/x": dial tcp 198.18.9.9:9000: i/o timeout'
NO_SUCH_HOST = "dial tcp: lookup s3.lan on 10.43.0.10:53: no such host"
UNREACHABLE_FIX = ("check the store's pods (`o11yctl verify --only store`) or object_storage.endpoint, and the network "
                   "between the nodes (`o11yctl fix-vxlan --check`)")
RING_CAUSE = "tempo's replicas have not formed their ring (memberlist): too few are up and joined"
RING_FIX = ("wait for every replica to be Ready (`kubectl get pods -n logging -l app.kubernetes.io/instance=tempo`); "
            "if one stays down, `o11yctl doctor` names why; a network between the nodes that drops traffic keeps "
            "them apart (`o11yctl fix-vxlan --check`)")


def test_each_object_store_problem_is_one_finding_per_container() -> None:
    got = _object_storage_findings({
        # the first kind that matches wins: a missing bucket before refused keys
        ("loki-0", "loki", False): "ok\nerr=NoSuchBucket x\nerr=InvalidAccessKeyId\n",
        # each container on its own: the store's host name without its port is enough
        ("loki-0", "sidecar", False): NO_SUCH_HOST + "\n",
        # refused keys before an unreachable store
        ("tempo-0", "tempo", False): f"err=SignatureDoesNotMatch\n{UNREACHABLE}\n",
        ("tempo-0", "sidecar", False): "empty ring\n",
        # Alloy does not write to the object store: never judged here
        ("alloy-a", "alloy", False): "err=NoSuchBucket\n",
    })
    assert got == [
        _s3("object.bucket-missing", "loki", "loki-0", "a bucket loki writes to does not exist at s3.lan:9000",
            "err=NoSuchBucket x", BUCKET_FIX),
        {**_s3("object.unreachable", "loki", "loki-0", "loki cannot reach the object store at s3.lan:9000",
               NO_SUCH_HOST, UNREACHABLE_FIX), "evidence": [f"log of loki-0/sidecar: {NO_SUCH_HOST}"]},
        _s3("object.credentials-refused", "tempo", "tempo-0", "the object store at s3.lan:9000 refuses tempo's keys",
            "err=SignatureDoesNotMatch",
            "fix the keys in the credentials Secret (object_storage.credentials_secret), then restart: kubectl "
            "rollout restart statefulset -n logging tempo"),
        {**_s3("ring.not-formed", "tempo", "tempo-0", RING_CAUSE, "empty ring", RING_FIX,
               symptom="Pushes or queries refused"), "evidence": ["log of tempo-0/sidecar: empty ring"]},
    ]


def test_an_unreachable_store_and_a_ring_not_formed() -> None:
    got = _object_storage_findings({
        ("loki-0", "loki", False): f"{UNREACHABLE}\nempty ring\n",
        ("tempo-0", "sidecar", False): "err=AccessDenied\n",
        ("tempo-0", "tempo", False): "too many unhealthy instances in the ring\n",
    })
    assert got == [
        _s3("object.unreachable", "loki", "loki-0", "loki cannot reach the object store at s3.lan:9000", UNREACHABLE,
            "check the store's pods (`o11yctl verify --only store`) or object_storage.endpoint, and the network "
            "between the nodes (`o11yctl fix-vxlan --check`)"),
        _s3("ring.not-formed", "tempo", "tempo-0",
            "tempo's replicas have not formed their ring (memberlist): too few are up and joined",
            "too many unhealthy instances in the ring",
            "wait for every replica to be Ready (`kubectl get pods -n logging -l app.kubernetes.io/instance=tempo`); "
            "if one stays down, `o11yctl doctor` names why; a network between the nodes that drops traffic keeps "
            "them apart (`o11yctl fix-vxlan --check`)", symptom="Pushes or queries refused"),
        {**_s3("object.credentials-refused", "tempo", "tempo-0",
               "the object store at s3.lan:9000 refuses tempo's keys", "err=AccessDenied",
               "fix the keys in the credentials Secret (object_storage.credentials_secret), then restart: kubectl "
               "rollout restart statefulset -n logging tempo"),
         "evidence": ["log of tempo-0/sidecar: err=AccessDenied"]},
    ]


def test_a_dial_error_to_another_host_is_not_the_stores() -> None:
    other = 'Put "https://s3-lan:9000/x": dial tcp 198.18.9.9:9000: connect: connection refused'
    assert _object_storage_findings({("loki-0", "loki", False): other + "\n"}) == []


# --- several pods or containers per rule: each judged, in order, with no component name to fall back on ---------

def _waiting(name: str, reason: str, message: str = "", component: str = "") -> PodFacts:
    return PodFacts(name=name, component=component, phase="Pending", node="node-1",
                    containers=(ContainerFacts("app", state="waiting", reason=reason, message=message),))


def _crash(name: str, component: str, last_reason: str, code: int | None = 1) -> PodFacts:
    return loki(name=name, component=component, ready=False,
                containers=(ContainerFacts("app", state="waiting", reason="CrashLoopBackOff", restarts=4,
                                           last_reason=last_reason, last_exit_code=code),))


def _unready(name: str, component: str) -> PodFacts:
    return loki(name=name, component=component, ready=False, containers=(ContainerFacts("app", state="running"),))


PENDING_ON_TWO = sched("0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.", name="x-0")
MORE_CASES: dict[str, Any] = {
    "a bound claim, then two pending ones": lambda: facts(
        claims=(PVC, ClaimFacts("scratch-a", "logging", phase="Pending"),
                ClaimFacts("scratch-b", "logging", phase="Pending", volume_name="gone-pv")),
        events=(EventFacts("PersistentVolumeClaim", "loki-pvc", "ProvisioningFailed", "before it bound"),
                *(EventFacts("PersistentVolumeClaim", "scratch-a", "ProvisioningFailed", f"try {i}")
                  for i in (1, 2, 3)),
                EventFacts("PersistentVolumeClaim", "scratch-b", "ProvisioningFailed", "first"),
                EventFacts("PersistentVolumeClaim", "scratch-b", "ProvisioningFailed", "second"),
                EventFacts("PersistentVolumeClaim", "scratch-b", "WaitForFirstConsumer", "waiting"))),
    "four crash loops without a component": lambda: facts(
        pods=(_crash("a-0", "", "OOMKilled", 137), _crash("b-0", "", "Error"), _crash("c-0", "", "", None),
              _crash("d-0", "", "", 2)),
        logs={("b-0", "app", True): "some error\n"}),
    "three pods not ready without a component": lambda: facts(
        pods=(_unready("a-0", ""), _unready("b-0", ""), _unready("c-0", "")),
        events=tuple(EventFacts("Pod", f"{n}-0", "Unhealthy", "Readiness probe failed: HTTP probe failed with "
                                "statuscode: 503", "Warning", 2) for n in "abc"),
        logs={("a-0", "app", False): "level=error msg=\"write\" err=\"no space left on device\"\n",
              ("b-0", "app", False): "level=error err=\"read-only file system\"\n",
              ("c-0", "app", False): "level=info msg=starting\n"}),
    "two pods waiting, one without a message": lambda: facts(
        pods=(_waiting("a-0", "ContainerCreating"), _waiting("b-0", "ImagePullBackOff", "pull failed"),
              _waiting("c-0", "ErrImagePull", component="tempo"))),
    "one pod, each container its own crash": lambda: facts(
        pods=(loki(name="multi-0", ready=False, containers=(
            ContainerFacts("fine", ready=True, state="running"),
            *(ContainerFacts(n, state="waiting", reason="CrashLoopBackOff", restarts=2, last_reason=r,
                             last_exit_code=code)
              for n, r, code in (("oom", "OOMKilled", 137), ("denied", "Error", 1), ("config", "Error", 1),
                                 ("other", "Error", 2))))),),
        logs={("multi-0", "denied", True): DENIED + "\n", ("multi-0", "config", True): CONFIG_LINE + "\n",
              ("multi-0", "other", True): "level=error msg=bye\n"}),
    "one pod, each container its own readiness failure": lambda: facts(
        pods=(loki(name="multi-0", ready=False, containers=(
            ContainerFacts("fine", ready=True, state="running"),
            *(ContainerFacts(n, state="running") for n in ("full", "config", "other")))),),
        events=(EventFacts("Pod", "multi-0", "Unhealthy", "Readiness probe failed: HTTP probe failed with "
                           "statuscode: 503", "Warning", 2),),
        logs={("multi-0", "full", False): "err=\"no space left on device\"\n",
              ("multi-0", "config", False): CONFIG_LINE + "\n", ("multi-0", "other", False): "level=info\n"}),
    "one pod waiting behind a running container": lambda: facts(
        pods=(PodFacts(name="w-0", component="grafana", phase="Pending", node="node-1", containers=(
            ContainerFacts("fine", ready=True, state="running"),
            ContainerFacts("app", state="waiting", reason="ImagePullBackOff"))),)),
    "a pod that does not fit, without a component": lambda: facts(
        pods=(PodFacts(name="x-0", phase="Pending", requests={"cpu": "9", "memory": "99Gi"},
                       containers=(ContainerFacts("app", state="waiting"),)),),
        events=(PENDING_ON_TWO,)),
}
#: What doctor reports for MORE_CASES, as `--json` prints it; read and checked by hand when it was written.
MORE_EXPECTED = Path(__file__).resolve().parents[1] / "data" / "doctor" / "findings-several-per-rule.json"


@pytest.mark.parametrize("case", list(MORE_CASES))
def test_several_pods_or_claims_are_each_judged(case: str) -> None:
    expected = json.loads(MORE_EXPECTED.read_text(encoding="utf-8"))
    assert set(expected) == set(MORE_CASES)
    assert [f.to_json() for f in judge(MORE_CASES[case]())] == expected[case]
