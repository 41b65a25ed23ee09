"""The runbook's troubleshooting tree as pure rules: :class:`~o11yctl.doctor.facts.Facts` in,
one :class:`Finding` per problem out. No I/O here.

Each finding names the symptom the runbook uses ("PVC stays in Pending", "Pod stuck in
Pending", "Pod CrashLoopBackOff", "Pod running but /ready fails", "Alloy running but no
logs in Loki"), the cause, the evidence (the event, log line or ``stat`` output that shows
it) and the fix; where o11yctl can apply the fix safely itself, the finding carries a
:data:`FixAction` (a chown over SSH, a node's label or taint, fix-vxlan, opening the kubelet's
port for the server).

Two more causes come from what the API server said while doctor read: a node whose kubelet it
cannot reach (logs, exec and port-forward fail: :func:`judge_kubelet`), and a Service whose pod it
cannot reach through its proxy (:func:`judge_services`). Last, every `verify` check doctor ran
that FAILs or WARNs and that no finding explains becomes a finding of its own that says so
(:func:`judge_checks`): doctor never calls a stack healthy that `verify` would fail.

Two rules need more than the Kubernetes API: :func:`ownership_probes` says which data
directories to ``stat`` on the storage node, and :func:`needs_network_diagnosis` whether
to ask fix-vxlan about the overlay. The gatherers ask, then :func:`judge` runs again on
the richer facts.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from o11yctl.doctor.facts import (
    CheckFacts,
    ClaimFacts,
    ContainerFacts,
    Dial,
    EventFacts,
    Facts,
    LogFailure,
    NodeFacts,
    Ownership,
    PodFacts,
    TaintFact,
)
from o11yctl.doctor.kubelet import KUBELET_TAG, OpenKubeletPort
from o11yctl.stack.nodes import NodeChange, node_change
from o11yctl.stack.quantity import parse_quantity

_PERMISSION = re.compile(r"permission denied", re.IGNORECASE)
_STORAGE = re.compile(r"permission denied|read-only file system|no space left on device", re.IGNORECASE)
_CONFIG = re.compile(
    r"failed parsing config|error parsing config|error loading config|failed to load config|invalid config"
    r"|configuration (?:is )?invalid|yaml: (?:line \d+|unmarshal)|field \S+ not found in type|unknown field"
    r"|cannot unmarshal|could not perform the initial load|unrecognized attribute",
    re.IGNORECASE,
)
_PUSH_TIMEOUT = re.compile(r"context deadline exceeded|i/o timeout", re.IGNORECASE)
_ERROR_LINE = re.compile(r"level=(?:error|fatal|warn)|\berror\b|\bfatal\b|panic", re.IGNORECASE)
_INSUFFICIENT = re.compile(r"Insufficient (cpu|memory)", re.IGNORECASE)
# Profile scalable. S3's error codes (the S3 API Reference's list of error codes, kept in tests/data/s3/
# errors.json) appear in Loki's and Tempo's log lines whatever SDK builds them; the ring errors are
# dskit's (ErrEmptyRing, ErrTooManyUnhealthyInstances: grafana/loki v3.7.6
# vendor/github.com/grafana/dskit/ring/ring.go:180,188).
_S3_NO_BUCKET = re.compile(r"\bNoSuchBucket\b")
_S3_KEYS = re.compile(r"\b(InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied)\b")
_RING = re.compile(r"empty ring|too many unhealthy instances in the ring")
_BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
_NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
#: Waiting reasons that are a normal part of starting (or judged by another rule).
_NORMAL_WAITING = ("", "ContainerCreating", "PodInitializing", "CrashLoopBackOff")
_LINE_LIMIT = 300

# --- fix actions (data) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChownDir:
    """Give a data directory on a node to the user the component runs as (``sudo chown -R``)."""

    node: str
    path: str
    owner: str  # "uid:gid"
    create: bool = False  # mkdir -p first (the directory is missing)

    kind: ClassVar[str] = "chown"

    def commands(self) -> list[tuple[str, ...]]:
        """The commands, each run with sudo on the node."""
        out: list[tuple[str, ...]] = [("mkdir", "-p", self.path)] if self.create else []
        return [*out, ("chown", "-R", self.owner, self.path)]

    def command_line(self) -> str:
        """The commands as one line to type on the node."""
        return " && ".join("sudo " + shlex.join(c) for c in self.commands())

    def describe(self) -> str:
        return f"on {self.node}: {self.command_line()}"


@dataclass(frozen=True, slots=True)
class RunFixVxlan:
    """Open UDP 8472 between the nodes and restart K3s, as `o11yctl fix-vxlan` does."""

    kind: ClassVar[str] = "fix-vxlan"

    def describe(self) -> str:
        return "o11yctl fix-vxlan  (open the VXLAN port between the nodes, restart K3s, check again)"


FixAction = ChownDir | NodeChange | RunFixVxlan | OpenKubeletPort


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: what is seen, why, the proof, and what to do."""

    id: str
    component: str
    subject: str
    symptom: str
    cause: str
    evidence: tuple[str, ...]
    fix: str
    action: FixAction | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "component": self.component,
            "subject": self.subject,
            "symptom": self.symptom,
            "cause": self.cause,
            "evidence": list(self.evidence),
            "fix": self.fix,
            "fix_action": None if self.action is None else {"kind": self.action.kind,
                                                            "description": self.action.describe()},
        }


# --- entry points -----------------------------------------------------------------------------


def judge(facts: Facts) -> list[Finding]:
    """Every finding the facts show, ordered: volumes, scheduling, crashes, readiness, log shipping."""
    ns = facts.expected.namespace
    if not facts.namespace_exists:
        return [Finding(
            "stack.namespace-missing", "namespace", f"namespace/{ns}", "Stack not installed",
            f"the namespace {ns} does not exist", (f"namespace {ns} not found",),
            "install the stack: `o11yctl install` (or check cluster.namespace in the config)",
        )]
    findings: list[Finding] = []
    findings += judge_claims(facts)
    handled_claims = {f.subject for f in findings}
    for pod in facts.pods:
        findings += judge_pending_pod(facts, pod, handled_claims)
    for pod in facts.pods:
        findings += judge_waiting(facts, pod)
    for pod in facts.pods:
        findings += judge_crashing(facts, pod)
    for pod in facts.pods:
        findings += judge_not_ready(facts, pod)
    findings += judge_alloy(facts)
    findings += judge_object_storage(facts)
    findings += judge_kubelet(facts)
    findings += judge_services(facts)
    if not facts.pods and not findings:
        findings.append(Finding(
            "stack.not-installed", "namespace", f"namespace/{ns}", "Stack not installed",
            f"no pods run in the namespace {ns}", (f"`kubectl get pods -n {ns}` lists no pods",),
            "install the stack: `o11yctl install`",
        ))
    findings += judge_checks(facts, findings)
    return _unique(findings)


def ownership_probes(facts: Facts) -> list[tuple[str, str]]:
    """Data directories whose owner a rule wants to see: (node, path) for each, once.

    A Loki or Tempo container that crashes or is not ready with ``permission denied`` in
    its log points at the owner of its data directory on the storage node.
    """
    out: list[tuple[str, str]] = []
    for pod in facts.pods:
        volume = facts.expected.volume_for(pod.component)
        if volume is None:
            continue
        for container in pod.containers:
            if not (_crashing(container) or _not_ready(facts, pod, container)):
                continue
            if _first(_logs(facts, pod, container), _PERMISSION):
                item = (facts.expected.storage_node, volume.host_path)
                if item not in out:
                    out.append(item)
    return out


def needs_network_diagnosis(facts: Facts) -> bool:
    """True when Alloy's pushes to Loki time out from a node Loki does not run on, or when the API server
    cannot connect to a pod (behind a Service) on another node than its own."""
    if any(cross for _, _, _, cross in _alloy_timeouts(facts)):
        return True
    return any(_cross_node(facts, pod) for _check, _dial, pod in _unreachable_pods(facts))


# --- PVC stays in Pending ---------------------------------------------------------------------


def judge_claims(facts: Facts) -> list[Finding]:
    """PVCs that stay Pending: the PV missing, taken by an old claim, or not matching the claim."""
    out: list[Finding] = []
    expected_pv = {v.pvc: v.pv for v in facts.expected.volumes}
    for claim in facts.claims:
        if claim.phase == "Bound":
            continue
        events = facts.events_for("PersistentVolumeClaim", claim.name)
        waiting = any(e.reason == "WaitForFirstConsumer" for e in events)
        pv_name = claim.volume_name or expected_pv.get(claim.name, "")
        found = _claim_findings(facts, claim, pv_name, events)
        if not found and not waiting and events:  # (none of the events is WaitForFirstConsumer then)
            found.append(_claim_finding(
                facts, claim, "pvc.pending", "Kubernetes did not bind the claim",
                [e.describe() for e in events[-2:]],
                f"see `kubectl describe pvc -n {claim.namespace} {claim.name}`; "
                "`o11yctl install --only volumes` re-applies o11yctl's PV and PVC",
            ))
        out += found
    return out


def _claim_findings(facts: Facts, claim: ClaimFacts, pv_name: str, events: Sequence[EventFacts]) -> list[Finding]:
    ns = claim.namespace
    ev = [e.describe() for e in events if e.reason != "WaitForFirstConsumer"][-1:]
    if not pv_name:
        return []
    pv = facts.volume(pv_name)
    if pv is None:
        return [_claim_finding(
            facts, claim, "pvc.pv-missing", f"the PersistentVolume {pv_name} does not exist",
            [f"PVC {ns}/{claim.name} asks for PV {pv_name} (spec.volumeName); `kubectl get pv {pv_name}`: not found",
             *ev],
            "create it from the config: `o11yctl install --only volumes`",
        )]
    found: list[Finding] = []
    ref = pv.claim_ref
    if ref is not None and (ref.namespace, ref.name) == (ns, claim.name) and ref.uid and ref.uid != claim.uid:
        found.append(_claim_finding(
            facts, claim, "pvc.pv-released",
            f"the PV {pv.name} still holds the claim of an earlier install (a deleted PVC); Kubernetes does not "
            "hand a Released volume to a new claim by itself",
            [f"PV {pv.name} is {pv.phase}; spec.claimRef: {ref.namespace}/{ref.name} uid {ref.uid}",
             f"PVC {ns}/{claim.name} now has uid {claim.uid or '(unknown)'}", *ev],
            "release the stale claim; the data on disk is kept (reclaim policy Retain): "
            + shlex.join(["kubectl", "patch", "pv", pv.name, "--type", "merge", "-p",
                          '{"spec":{"claimRef":{"uid":null,"resourceVersion":null}}}']),
        ))
        return found
    if ref is not None and (ref.namespace, ref.name) != (ns, claim.name) and pv.phase in ("Bound", "Released"):
        found.append(_claim_finding(
            facts, claim, "pvc.pv-taken", f"the PV {pv.name} belongs to another claim ({ref.namespace}/{ref.name})",
            [f"PV {pv.name} is {pv.phase}; spec.claimRef: {ref.namespace}/{ref.name}", *ev],
            f"check who uses it (`kubectl get pvc -A | grep {pv.name}`); if that claim is gone, "
            f"`kubectl patch pv {pv.name} --type json -p '[{{\"op\":\"remove\",\"path\":\"/spec/claimRef\"}}]'` "
            "and `o11yctl install --only volumes`",
        ))
        return found
    want = facts.expected.storage_class
    claim_class = claim.storage_class if claim.storage_class is not None else "(the default class)"
    if pv.storage_class != (claim.storage_class or ""):
        wrong = [what for what, value in (("PV", pv.storage_class), ("PVC", claim.storage_class)) if value != want]
        fix = (f"both must use storage.class_name ({want}): "
               + ("the PVC's class cannot change: "
                  f"`kubectl delete pvc -n {ns} {claim.name}`, then " if "PVC" in wrong else "")
               + "`o11yctl install --only volumes`")
        found.append(_claim_finding(
            facts, claim, "pvc.storage-class",
            f"the storage classes differ: PV {pv.name} has {pv.storage_class or '(none)'}, PVC {claim.name} has "
            f"{claim_class}; a claim only binds a volume of its own class",
            [f"PV {pv.name}: storageClassName {pv.storage_class or '(none)'}",
             f"PVC {ns}/{claim.name}: storageClassName {claim_class}",
             f"config storage.class_name: {want}", *ev],
            fix,
        ))
    have, need = parse_quantity(pv.capacity), parse_quantity(claim.request)
    if have is not None and need is not None and have < need:
        found.append(_claim_finding(
            facts, claim, "pvc.capacity",
            f"the PV is smaller than the claim: PV {pv.name} offers {pv.capacity}, PVC {claim.name} asks for "
            f"{claim.request}",
            [f"PV {pv.name}: capacity.storage {pv.capacity}",
             f"PVC {ns}/{claim.name}: resources.requests.storage {claim.request}", *ev],
            "set the component's size in the config to what the claim asks, then `o11yctl install --only volumes` "
            f"(a claim can only grow: if it asks too much, `kubectl delete pvc -n {ns} {claim.name}` first)",
        ))
    missing = [m for m in claim.access_modes if m not in pv.access_modes]
    if missing:
        found.append(_claim_finding(
            facts, claim, "pvc.access-mode",
            f"the PV does not offer the access mode the claim asks for ({', '.join(missing)})",
            [f"PV {pv.name}: accessModes {', '.join(pv.access_modes) or '(none)'}",
             f"PVC {ns}/{claim.name}: accessModes {', '.join(claim.access_modes)}", *ev],
            f"both use ReadWriteOnce in the runbook: `kubectl delete pvc -n {ns} {claim.name}`, then "
            "`o11yctl install --only volumes`",
        ))
    return found


def _claim_finding(facts: Facts, claim: ClaimFacts, fid: str, cause: str, evidence: list[str],
                   fix: str) -> Finding:
    waiting = [p for p in facts.pods if claim.name in p.claims and p.phase == "Pending"]
    for pod in waiting[:2]:
        event = _latest(facts.events_for("Pod", pod.name), "FailedScheduling")
        evidence.append(f"pod {pod.name} waits for it" + (f": {event.message}" if event else ""))
    component = _component_of_claim(facts, claim.name) or "storage"
    return Finding(fid, component, f"pvc/{claim.name}", "PVC stays in Pending", cause, tuple(evidence), fix)


def _component_of_claim(facts: Facts, claim: str) -> str:
    vol = next((v for v in facts.expected.volumes if v.pvc == claim), None)
    return vol.component if vol else ""


# --- Pod stuck in Pending ---------------------------------------------------------------------


def judge_pending_pod(facts: Facts, pod: PodFacts, handled_claims: Iterable[str] = ()) -> list[Finding]:
    """Why the scheduler cannot place a pod: selector, taint, volume affinity, claim, resources."""
    if pod.phase != "Pending" or pod.node:
        return judge_mount(facts, pod)
    event = _latest(facts.events_for("Pod", pod.name), "FailedScheduling")
    message = event.message if event else pod.unschedulable
    said = event.describe() if event else (f"condition PodScheduled=False: {message}" if message else "")
    shown = [said] if said else []
    handled = set(handled_claims)
    out: list[Finding] = []

    def finding(fid: str, cause: str, evidence: Sequence[str], fix: str, action: FixAction | None = None) -> None:
        out.append(Finding(fid, pod.component or "pod", pod.subject, "Pod stuck in Pending", cause,
                           tuple([*evidence, *shown]), fix, action))

    # A claim that is not bound (its own finding, if any, already says why).
    explained = False
    for name in pod.claims:
        claim = facts.claim(name)
        if f"pvc/{name}" in handled:
            explained = True
            continue
        if claim is None:
            finding("pod.pvc-unbound", f"the pod's PersistentVolumeClaim {name} does not exist",
                    [f"pod {pod.name} mounts PVC {name}; `kubectl get pvc -n {facts.expected.namespace} {name}`: "
                     "not found"],
                    "create the claim from the config: `o11yctl install --only volumes`")
        elif claim.phase != "Bound" and not any(
                e.reason == "WaitForFirstConsumer" for e in facts.events_for("PersistentVolumeClaim", name)):
            finding("pod.pvc-unbound", f"the pod's PersistentVolumeClaim {name} is {claim.phase}, not Bound",
                    [f"PVC {claim.namespace}/{name}: phase {claim.phase}"
                     + (f", volumeName {claim.volume_name}" if claim.volume_name else "")],
                    f"see `kubectl describe pvc -n {claim.namespace} {name}`; `o11yctl install --only volumes` "
                    "re-applies o11yctl's PV and PVC")

    candidates = [n for n in facts.nodes if _selected(n, pod.node_selector)]
    if pod.node_selector and not candidates:
        finding(*_selector_finding(facts, pod))
    blocked = {n.name: _untolerated(pod, n) for n in candidates}
    if candidates and all(blocked.values()):
        finding(*_taint_finding(facts, pod, candidates, blocked))
    conflict = _volume_conflict(facts, pod, candidates)
    if conflict is not None:
        finding(*conflict)
    short = sorted({m.group(1).lower() for m in _INSUFFICIENT.finditer(message or "")})
    if short:
        wants = ", ".join(f"{k} {v}" for k, v in sorted(pod.requests.items())) or "(no requests found)"
        nodes = candidates or facts.nodes
        have = "; ".join(f"{n.name} allocatable " + (", ".join(f"{k} {v}" for k, v in sorted(n.allocatable.items()))
                                                      or "(unknown)") for n in nodes)
        finding("pod.insufficient-resources",
                f"no node the pod may run on has enough {' and '.join(short)} left for its requests",
                [f"pod {pod.name} requests {wants}", have],
                "free capacity on the node (`kubectl describe node NODE`, section Allocated resources) or lower "
                f"resources.requests in the {pod.component or 'chart'} values, then re-install it")
    if not out and message and not explained:
        finding("pod.unschedulable", "the scheduler cannot place the pod (see the event)", [],
                f"see `kubectl describe pod -n {facts.expected.namespace} {pod.name}`")
    return out


def _selected(node: NodeFacts, selector: Mapping[str, str]) -> bool:
    return all(node.labels.get(k) == v for k, v in selector.items())


def _selector_finding(facts: Facts, pod: PodFacts) -> tuple[str, str, list[str], str, FixAction | None]:
    selector = dict(pod.node_selector)
    wanted = " ".join(f"{k}={v}" for k, v in selector.items())
    owner = next((name for name, labels in facts.expected.node_labels.items()
                  if all(labels.get(k) == v for k, v in selector.items())), None)
    evidence = [f"pod {pod.name}: nodeSelector {wanted}"]
    for node in facts.nodes:
        relevant = {k: node.labels.get(k) for k in selector}
        shown = ", ".join(f"{k}={v}" if v is not None else f"{k} (missing)" for k, v in relevant.items())
        evidence.append(f"node {node.name}: {shown}")
    target = facts.node(owner) if owner is not None else None
    action = _node_change(facts, target) if target is not None else None
    if action is not None:
        return ("pod.node-selector",
                f"no node carries the label {wanted}: the config gives it to {owner} (nodes[].labels), but the "
                "node does not have it",
                evidence, f"label the node: `{action.describe()}` (o11yctl doctor --fix does this)", action)
    return ("pod.node-selector",
            f"no node carries the label {wanted}, and the config gives it to no node",
            evidence,
            "put the storage node's labels in the config (nodes[].labels) and re-install the component "
            f"(`o11yctl install --only {pod.component or 'loki'}`), or label the node by hand: "
            f"`kubectl label node NODE {wanted}`", None)


def _node_change(facts: Facts, node: NodeFacts) -> NodeChange | None:
    """What gives ``node`` the labels and taints the config names for it (o11yctl.stack.nodes's one rule)."""
    return node_change(node.name, want_labels=facts.expected.node_labels.get(node.name, {}),
                       want_taints=facts.expected.node_taints.get(node.name, ()), have_labels=node.labels,
                       have_taints=node.taints)


def _untolerated(pod: PodFacts, node: NodeFacts) -> list[TaintFact]:
    return [t for t in node.taints
            if t.effect in _BLOCKING_EFFECTS and not any(tol.tolerates(t) for tol in pod.tolerations)]


def _taint_finding(facts: Facts, pod: PodFacts, candidates: Sequence[NodeFacts],
                   blocked: Mapping[str, list[TaintFact]]) -> tuple[str, str, list[str], str, FixAction | None]:
    tolerations = ", ".join(
        (f"{t.key}" + (f"={t.value}" if t.value else "") + (f":{t.effect}" if t.effect else "") +
         (" (Exists)" if t.operator == "Exists" else "")) or "everything"
        for t in pod.tolerations) or "none"
    evidence = [f"node {n.name}: taints {', '.join(str(t) for t in blocked[n.name])} not tolerated"
                for n in candidates]
    evidence.append(f"pod {pod.name}: tolerations {tolerations}")
    node = candidates[0]
    taints = blocked[node.name]
    configured = facts.expected.node_taints.get(node.name, ())
    if any(t.key in _NOT_READY_TAINTS for t in taints):
        return ("pod.toleration", f"node {node.name} is not Ready (it carries {taints[0]})", evidence,
                f"check the node: `kubectl describe node {node.name}`, the K3s service on it", None)
    if all(t in configured for t in taints):
        return ("pod.toleration",
                f"the pod has no toleration for {node.name}'s taint {', '.join(str(t) for t in taints)} (the values "
                "o11yctl renders add it: the release was installed with other values)",
                evidence, f"re-install the component with o11yctl's values: `o11yctl install --only "
                          f"{pod.component or 'loki'}`", None)
    keys = {t.key for t in configured}
    action = _node_change(facts, node) if configured and all(t.key in keys for t in taints) else None
    if action is not None:
        return ("pod.toleration",
                f"node {node.name} carries {', '.join(str(t) for t in taints)}, but the config (and so the pod's "
                f"toleration) says {', '.join(str(t) for t in configured)}",
                evidence, f"set the node's taint to the config's: `{action.describe()}` (o11yctl doctor --fix "
                          "does this)", action)
    unknown = ", ".join(str(t) for t in taints)
    return ("pod.toleration",
            f"node {node.name} carries a taint the config does not know and the pod does not tolerate: {unknown}",
            evidence,
            f"remove it (`kubectl taint node {node.name} {taints[0].key}:{taints[0].effect}-`) or add it to "
            f"nodes[].taints for {node.name} in the config and re-install the component", None)


def _volume_conflict(facts: Facts, pod: PodFacts,
                     candidates: Sequence[NodeFacts]) -> tuple[str, str, list[str], str, FixAction | None] | None:
    allowed = list(candidates) or [n for n in facts.nodes if n.name == facts.expected.storage_node]
    for name in pod.claims:
        claim = facts.claim(name)
        volume = facts.volume(claim.volume_name) if claim is not None and claim.volume_name else None
        if volume is None or volume.affinity_hostnames is None:
            continue
        if any(n.hostname in volume.affinity_hostnames for n in allowed):
            continue
        pinned = ", ".join(volume.affinity_hostnames) or "(no node)"
        known = {n.hostname for n in facts.nodes}
        evidence = [f"PV {volume.name}: nodeAffinity kubernetes.io/hostname in [{pinned}]"
                    + ("" if set(volume.affinity_hostnames) & known else " (no such node in the cluster)"),
                    f"pod {pod.name} may run on: {', '.join(n.name for n in allowed) or 'no node'}"
                    + (f" (nodeSelector {' '.join(f'{k}={v}' for k, v in pod.node_selector.items())})"
                       if pod.node_selector else "")]
        ns = facts.expected.namespace
        return ("pod.volume-affinity",
                f"volume node affinity conflict: the PV {volume.name} is pinned to {pinned}, but the pod must run on "
                f"{', '.join(n.name for n in allowed) or 'another node'} (storage.node is "
                f"{facts.expected.storage_node})",
                evidence,
                "a PV's node affinity cannot change; re-create the pair (the data directory on disk is kept): "
                f"`kubectl delete pvc -n {ns} {name} && kubectl delete pv {volume.name}`, then "
                f"`o11yctl install --only volumes,{pod.component or 'loki'}`", None)
    return None


def judge_mount(facts: Facts, pod: PodFacts) -> list[Finding]:
    """A scheduled pod that cannot start because its data directory is missing on the node."""
    if pod.phase != "Pending" or not pod.node:
        return []
    event = _latest(facts.events_for("Pod", pod.name), "FailedMount")
    if event is None or "does not exist" not in event.message:
        return []
    volume = facts.expected.volume_for(pod.component)
    if volume is None or volume.host_path not in event.message:
        return [Finding("pod.mount", pod.component or "pod", pod.subject, "Pod stuck in Pending",
                        "a volume of the pod cannot be mounted", (event.describe(),),
                        f"see `kubectl describe pod -n {facts.expected.namespace} {pod.name}`")]
    action = ChownDir(facts.expected.storage_node, volume.host_path, facts.expected.owner, create=True)
    return [Finding("pod.mount", pod.component, pod.subject, "Pod stuck in Pending",
                    f"the data directory {volume.host_path} does not exist on {facts.expected.storage_node}",
                    (event.describe(),),
                    f"create it for the {pod.component} user, on {action.node}: `{action.command_line()}` (or "
                    "`o11yctl install --only storage`; o11yctl doctor --fix does this)", action)]


def judge_waiting(facts: Facts, pod: PodFacts) -> list[Finding]:
    """A container that waits for a reason other than starting or crashing (an image it cannot pull...)."""
    out = []
    for c in pod.containers:
        if c.state != "waiting" or c.reason in _NORMAL_WAITING:
            continue
        out.append(Finding(
            "pod.waiting", pod.component or "pod", pod.subject, "Pod stuck in Pending",
            f"container {c.name} waits: {c.reason}", (f"container {c.name}: {c.reason}: {c.message}".rstrip(": "),),
            "for ImagePullBackOff check the node's access to the registry (or set images.registry to a mirror); "
            f"otherwise see `kubectl describe pod -n {facts.expected.namespace} {pod.name}`",
        ))
    return out


# --- Pod CrashLoopBackOff ---------------------------------------------------------------------


def _crashing(c: ContainerFacts) -> bool:
    return c.reason == "CrashLoopBackOff" or (c.state == "terminated" and c.reason in ("Error", "OOMKilled")
                                              and c.restarts > 0)


def judge_crashing(facts: Facts, pod: PodFacts) -> list[Finding]:
    """A container that keeps crashing: out of memory, its data directory's owner, its config, or else."""
    out: list[Finding] = []
    ns = facts.expected.namespace
    for c in pod.containers:
        if not _crashing(c):
            continue
        logs_cmd = f"`kubectl logs -n {ns} {pod.name} -c {c.name} --previous`"
        exit_text = (f"container {c.name}: {c.reason}, restarted {c.restarts} times"
                     + (f", last exit {c.last_reason or 'code'} {c.last_exit_code}" if c.last_exit_code is not None
                        else ""))
        lines = _logs(facts, pod, c)
        symptom = "Pod CrashLoopBackOff"
        if c.last_reason == "OOMKilled":
            out.append(Finding("crashloop.oom", pod.component or "pod", pod.subject, symptom,
                               "the container runs out of memory (its limit) and is killed",
                               (exit_text,), f"raise resources.limits.memory in the {pod.component or 'chart'} "
                                             "values or lower the load, then re-install it"))
            continue
        denied = _first(lines, _PERMISSION)
        if denied is not None:
            out.append(_permission_finding(facts, pod, c, denied, symptom, "crashloop", [exit_text]))
            continue
        config = _first(lines, _CONFIG)
        if config is not None:
            out.append(_config_finding(facts, pod, config, symptom, "crashloop", [exit_text]))
            continue
        tail = _error_lines(lines) or [_clip(line) for line in lines[-3:]]
        out.append(Finding(
            "crashloop.unknown", pod.component or "pod", pod.subject, symptom,
            "the container exits; its log shows no permission or config error o11yctl recognises",
            (exit_text, *(f"log: {line}" for line in tail)) if tail else (exit_text, "the log is empty"),
            f"read the whole log: {logs_cmd}",
        ))
    return out


def _permission_finding(facts: Facts, pod: PodFacts, c: ContainerFacts, line: str, symptom: str, prefix: str,
                        extra: list[str]) -> Finding:
    expected = facts.expected
    volume = expected.volume_for(pod.component)
    evidence = [*extra, f"log of {pod.name}/{c.name}: {_clip(line)}"]
    if volume is None:
        return Finding(f"{prefix}.permission-denied", pod.component or "pod", pod.subject, symptom,
                       "the container is denied access to a file or directory (see the log line)",
                       tuple(evidence), f"read the log: `kubectl logs -n {expected.namespace} {pod.name} -c {c.name}`")
    own = expected.owner
    action = ChownDir(expected.storage_node, volume.host_path, own)
    seen: Ownership | None = facts.ownership.get(volume.host_path)
    fix = (f"give the directory to the {pod.component} user, on {action.node}: `{action.command_line()}` "
           "(o11yctl doctor --fix does this)")
    where = f"{volume.host_path} on {expected.storage_node}"
    if seen is not None and seen.owner is not None:
        evidence.append(f"stat on {seen.node}: {seen.path} is owned by {seen.owner}"
                        + (f", mode {seen.mode}" if seen.mode else "") + f" (expected {own})")
        if seen.owner != own:
            return Finding(f"{prefix}.ownership", pod.component, pod.subject, symptom,
                           f"{where} belongs to {seen.owner}, not to {own}, the user {pod.component} runs as "
                           f"(it writes there through {volume.mount_path})", tuple(evidence), fix, action)
        return Finding(f"{prefix}.permissions", pod.component, pod.subject, symptom,
                       f"{where} belongs to {own}, but something inside it (or its mode) still denies "
                       f"{pod.component} writing: a file or directory below it may belong to another user",
                       tuple(evidence), fix + f"; check the mode with `ls -ln {volume.host_path}`", action)
    why = seen.error if seen is not None and seen.error else "the storage node was not reached over SSH"
    evidence.append(f"owner of {where} not confirmed: {why}")
    return Finding(f"{prefix}.ownership", pod.component, pod.subject, symptom,
                   f"most likely {where} does not belong to {own}, the user {pod.component} runs as (it writes "
                   f"there through {volume.mount_path})", tuple(evidence), fix, action)


def _config_finding(facts: Facts, pod: PodFacts, line: str, symptom: str, prefix: str,
                    extra: list[str]) -> Finding:
    component = pod.component or "pod"
    release = pod.component or "RELEASE"
    return Finding(
        f"{prefix}.config", component, pod.subject, symptom,
        f"{component}'s configuration has an error (see the log line)",
        (*extra, f"log of {pod.name}: {_clip(line)}"),
        f"compare the release's values with o11yctl's (`helm get values {release} -n {facts.expected.namespace}`; "
        f"`o11yctl render --out DIR`) and re-install them: `o11yctl install --only {release}`",
    )


# --- Pod running but /ready fails -------------------------------------------------------------


def _not_ready(facts: Facts, pod: PodFacts, c: ContainerFacts) -> bool:
    if pod.phase != "Running" or c.init or c.ready or c.state != "running":
        return False
    return any(e.reason == "Unhealthy" and "eadiness probe failed" in e.message
               for e in facts.events_for("Pod", pod.name))


def judge_not_ready(facts: Facts, pod: PodFacts) -> list[Finding]:
    """A running container whose readiness probe (/ready) fails: config errors, storage not writable."""
    out: list[Finding] = []
    symptom = "Pod running but /ready fails"
    for c in pod.containers:
        if not _not_ready(facts, pod, c):
            continue
        probe = _latest(facts.events_for("Pod", pod.name), "Unhealthy")
        shown = [probe.describe()] if probe else []
        lines = _logs(facts, pod, c)
        storage = _first(lines, _STORAGE)
        if storage is not None and _PERMISSION.search(storage):
            out.append(_permission_finding(facts, pod, c, storage, symptom, "ready", shown))
            continue
        if storage is not None:
            volume = facts.expected.volume_for(pod.component)
            where = f"{volume.host_path} on {facts.expected.storage_node}" if volume else "its data directory"
            full = "no space left" in storage.lower()
            out.append(Finding(
                "ready.storage", pod.component or "pod", pod.subject, symptom,
                f"{pod.component or 'the container'} cannot write to its storage: "
                + (f"the disk holding {where} is full" if full else f"{where} is mounted read-only"),
                (*shown, f"log of {pod.name}/{c.name}: {_clip(storage)}"),
                (f"free space on {facts.expected.storage_node} (`df -h {volume.host_path if volume else '/'}`) or "
                 "shorten the retention in the config" if full else
                 f"check the mount on {facts.expected.storage_node} (`findmnt -T "
                 f"{volume.host_path if volume else '/'}`) and the disk's health"),
            ))
            continue
        config = _first(lines, _CONFIG)
        if config is not None:
            out.append(_config_finding(facts, pod, config, symptom, "ready", shown))
            continue
        tail = _error_lines(lines)
        out.append(Finding(
            "ready.failing", pod.component or "pod", pod.subject, symptom,
            "the readiness probe fails and the log shows no config or storage error o11yctl recognises "
            "(Loki's ingester, for one, reports not ready for a while after it starts)",
            (*shown, *(f"log: {line}" for line in tail)),
            "wait a minute and run `o11yctl doctor` again; if it stays, follow the log: `kubectl logs -n "
            f"{facts.expected.namespace} {pod.name} -c {c.name} -f`",
        ))
    return out


# --- profile scalable: the object store and the ring -------------------------------------------------


def judge_object_storage(facts: Facts) -> list[Finding]:
    """Loki's or Tempo's log names a missing bucket, refused keys, an unreachable store, or a ring not formed."""
    store = facts.expected.object_store
    ns = facts.expected.namespace
    if not facts.expected.object_storage:
        return []
    host = store.rsplit(":", 1)[0]
    # the request's URL names the store; the dial after it says why it failed
    unreachable = re.compile(rf"{re.escape(host)}.*(dial tcp|no such host|i/o timeout|connection refused)")
    written = "Data not written to the object store"
    # (what the log says, finding id, symptom, cause, fix): the first that matches names a container's problem
    kinds = (
        (_S3_NO_BUCKET, "object.bucket-missing", written, "a bucket {c} writes to does not exist at {store}",
         "create it on the store (the in-cluster store makes its buckets on install: `o11yctl install --only "
         "store`), or fix object_storage.buckets"),
        (_S3_KEYS, "object.credentials-refused", written, "the object store at {store} refuses {c}'s keys",
         "fix the keys in the credentials Secret (object_storage.credentials_secret), then restart: kubectl "
         "rollout restart statefulset -n {ns} {c}"),
        (unreachable, "object.unreachable", written, "{c} cannot reach the object store at {store}",
         "check the store's pods (`o11yctl verify --only store`) or object_storage.endpoint, and the network "
         "between the nodes (`o11yctl fix-vxlan --check`)"),
        (_RING, "ring.not-formed", "Pushes or queries refused",
         "{c}'s replicas have not formed their ring (memberlist): too few are up and joined",
         "wait for every replica to be Ready (`kubectl get pods -n {ns} -l app.kubernetes.io/instance={c}`); if "
         "one stays down, `o11yctl doctor` names why; a network between the nodes that drops traffic keeps them "
         "apart (`o11yctl fix-vxlan --check`)"),
    )
    out: list[Finding] = []
    for pod in facts.pods:
        if pod.component not in facts.expected.object_storage:
            continue
        words = {"c": pod.component, "store": store, "ns": ns}
        for c in pod.containers:
            lines = _logs(facts, pod, c)
            for pattern, fid, symptom, cause, fix in kinds:
                line = _first(lines, pattern)
                if line is not None:
                    out.append(Finding(fid, pod.component, pod.subject, symptom, cause.format(**words),
                                       (f"log of {pod.name}/{c.name}: {_clip(line)}",), fix.format(**words)))
                    break
    return out


# --- Alloy running but no logs in Loki ---------------------------------------------------------


def _loki_nodes(facts: Facts) -> set[str]:
    """Where Loki's server runs: the pods mounting its claim (a chart's canary or gateway pods run elsewhere)."""
    volume = facts.expected.volume_for("loki")
    loki = [p for p in facts.pods if p.component == "loki" and p.node]
    servers = [p for p in loki if volume is not None and volume.pvc in p.claims] or loki
    return {p.node for p in servers if p.node}


def _alloy_timeouts(facts: Facts) -> list[tuple[PodFacts, str, str, bool]]:
    """(Alloy pod, container, log line, from a node Loki does not run on) for each Alloy pod that times out."""
    loki_nodes = _loki_nodes(facts)
    out = []
    for pod in facts.pods:
        if pod.component != "alloy" or pod.phase != "Running":
            continue
        for c in pod.containers:
            line = _first(list(reversed(_logs(facts, pod, c, previous_first=False))), _PUSH_TIMEOUT)
            if line is not None:
                out.append((pod, c.name, line, bool(loki_nodes) and pod.node not in loki_nodes))
                break
    return out


def judge_alloy(facts: Facts) -> list[Finding]:
    """Alloy runs but its pushes to Loki time out: cross-node networking (Flannel VXLAN, UDP 8472)."""
    timeouts = _alloy_timeouts(facts)
    if not timeouts:
        return []
    loki_nodes = sorted(_loki_nodes(facts))
    evidence = [f"log of {pod.name} on {pod.node or '?'}: {_clip(line)}" for pod, _, line, _ in timeouts]
    if loki_nodes:
        evidence.append(f"Loki runs on {', '.join(loki_nodes)}")
    cross = [pod.node or "?" for pod, _, _, is_cross in timeouts if is_cross]
    net = facts.network
    if net is not None:
        evidence.append(f"fix-vxlan diagnosis: {net.summary}")
        evidence += [f"  {d}" for d in net.details]
    symptom = "Alloy running but no logs in Loki"
    subject = "daemonset/alloy"
    if not cross:
        return [Finding(
            "alloy.push-timeout", "alloy", subject, symptom,
            "Alloy's pushes to Loki time out even on Loki's own node, so the overlay is not the cause: Loki "
            "does not answer in time (is it Ready? see the other findings)",
            tuple(evidence),
            f"check Loki: `kubectl logs -n {facts.expected.namespace} -l app.kubernetes.io/name=loki --tail=50`",
        )]
    if net is not None and net.ok is True:
        return [Finding(
            "alloy.push-timeout", "alloy", subject, symptom,
            f"Alloy on {', '.join(cross)} times out pushing to Loki, but the overlay between the nodes works: "
            "Loki answers too slowly or not at all",
            tuple(evidence),
            f"check Loki: `kubectl logs -n {facts.expected.namespace} -l app.kubernetes.io/name=loki --tail=50`",
        )]
    if net is not None and net.ok is False:
        action = RunFixVxlan() if net.fixable else None
        return [Finding(
            "alloy.push-timeout", "network", subject, symptom,
            f"cross-node pod traffic is blocked: Flannel's VXLAN (UDP 8472) does not pass between the nodes, so "
            f"Alloy on {', '.join(cross)} cannot reach Loki",
            tuple(evidence),
            "open UDP 8472 between the nodes and restart K3s: `o11yctl fix-vxlan`"
            + (" (o11yctl doctor --fix does this)" if action else ""),
            action,
        )]
    return [Finding(
        "alloy.push-timeout", "network", subject, symptom,
        f"Alloy on {', '.join(cross)} cannot reach Loki on {', '.join(loki_nodes)} in time: usually cross-node pod "
        "networking (Flannel's VXLAN over UDP 8472 blocked between the nodes)",
        tuple(evidence),
        "diagnose the overlay: `o11yctl fix-vxlan --check`; fix it with `o11yctl fix-vxlan`",
    )]


# --- the API server cannot reach a kubelet ------------------------------------------------------

#: What Go's dial error says, and what usually makes it so.
_DIAL_CAUSES = (
    ("no route to host", "the connection was refused with \"no route to host\": a firewall on {node} rejecting it "
                         "(firewalld's default rejects with icmp-host-prohibited, iptables' REJECT can too), or "
                         "{address} is not {node}'s address"),
    ("connection refused", "nothing accepted the connection on {address}: the kubelet is not listening (is K3s "
                           "running on {node}?) or a firewall answers with a TCP reset"),
    ("i/o timeout", "the connection attempt got no answer: a firewall on {node}, or between the nodes, drops it, or "
                    "{address} is not reachable from the server"),
    ("connection timed out", "the connection attempt got no answer: a firewall on {node}, or between the nodes, "
                             "drops it, or {address} is not reachable from the server"),
)


def _dial_cause(dial: Dial, node: str) -> str:
    for words, text in _DIAL_CAUSES:
        if words in dial.why:
            return text.format(node=node, address=dial.address)
    return f"the connection to {dial.address} failed ({dial.why})"


def judge_kubelet(facts: Facts) -> list[Finding]:
    """A node whose kubelet the API server cannot reach: its pods' logs (exec, port-forward) fail.

    Grouped by node, from the logs doctor read and from `verify`'s checks that read logs.
    """
    by_node: dict[str, list[tuple[Dial, str]]] = {}
    for failure in facts.log_failures:
        if failure.kubelet is not None:
            node = failure.node or facts.node_at(failure.kubelet.host) or failure.kubelet.host
            by_node.setdefault(node, []).append((failure.kubelet, f"log of {failure.what}: {failure.message}"))
    for check in facts.checks:
        if check.failing and check.kubelet and check.dial is not None:
            node = facts.node_at(check.dial.host) or check.dial.host
            if node not in by_node:
                by_node.setdefault(node, []).append((check.dial, f"verify {check.id}: {check.status} {check.detail}"))
    out: list[Finding] = []
    for node, seen in sorted(by_node.items()):
        dial = seen[0][0]
        shown = [_clip(text) for _d, text in seen[:3]]
        if len(seen) > 3:
            shown.append(f"... and {len(seen) - 3} more read(s) through {node}'s kubelet failed the same way")
        known = facts.node(node)
        if known is not None and known.addresses:
            shown.append(f"node {node}: " + ", ".join(f"{kind} {address}" for kind, address in known.addresses))
        sources = tuple(dict.fromkeys(facts.expected.node_addresses[s] for s in facts.expected.servers
                                      if s != node and s in facts.expected.node_addresses))
        if sources:
            shown.append(f"the API server runs on {', '.join(s for s in facts.expected.servers if s != node)} "
                         f"({', '.join(sources)}; nodes[].role server in the config)")
        action = None
        address = facts.expected.node_addresses.get(node)
        if sources and address is not None:
            action = OpenKubeletPort(node=node, address=address, sources=sources, port=dial.port)
        server_text = f"the server ({', '.join(sources)})" if sources else "the server"
        fix = (f"on {node}, accept TCP {dial.port} from {server_text}, e.g. `sudo iptables -I INPUT -s "
               f"{sources[0] if sources else 'SERVER'}/32 -p tcp --dport {dial.port} -j ACCEPT` (or the ufw or "
               f"firewalld equivalent where that firewall is in charge); check that the kubelet listens there "
               f"(`sudo ss -tlnp | grep {dial.port}` on {node}) and that {dial.address} is {node}'s address")
        if action is not None:
            fix += (f"; `o11yctl doctor --fix` opens it as fix-vxlan opens UDP 8472: one rule per server address, "
                    f"tagged {KUBELET_TAG}, saved for boot")
        elif not sources:
            fix += "; doctor cannot open it itself: no other node has role server in the config"
        out.append(Finding(
            "kubelet.unreachable", "network", f"node/{node}",
            "Pod logs, exec and port-forward fail (the API server cannot reach a kubelet)",
            f"the Kubernetes API server is up but cannot connect to the kubelet of {node} at {dial.address}: "
            f"{_dial_cause(dial, node)}. K3s needs TCP {dial.port} open from the server to every node",
            tuple(shown), fix, action,
        ))
    return out


# --- the API server cannot reach a Service's pod -------------------------------------------------


def _unreachable_pods(facts: Facts) -> list[tuple[CheckFacts, Dial, PodFacts | None]]:
    """Checks through the service proxy whose pod the API server could not connect to, with that pod."""
    out = []
    for check in facts.checks:
        if check.failing and check.dial is not None and not check.kubelet:
            pod = next((p for p in facts.pods if p.ip and p.ip == check.dial.host), None)
            out.append((check, check.dial, pod))
    return out


def _cross_node(facts: Facts, pod: PodFacts | None) -> bool:
    return pod is not None and pod.node is not None and bool(facts.expected.servers) \
        and pod.node not in facts.expected.servers


def judge_services(facts: Facts) -> list[Finding]:
    """The API server answered in a Service's place: it could not connect to the pod, or the Service has no
    Ready pod (and no other finding says why)."""
    out: list[Finding] = []
    ns = facts.expected.namespace
    for check, dial, pod in _unreachable_pods(facts):
        component = check.component
        title = component.capitalize()
        where = facts.expected.services.get(component, f"the {component} Service")
        evidence = [f"verify {check.id}: {check.status} {check.detail}"]
        subject = f"pod/{pod.name}" if pod else where
        action: FixAction | None = None
        if pod is None:
            cause = (f"the API server could not connect to {dial.address} behind {where} ({dial.why}), and no pod of "
                     f"the namespace has that address (any more)")
            fix = f"`kubectl get pods,endpointslices -n {ns} -o wide`; then `o11yctl verify --only {check.group}`"
        elif not _cross_node(facts, pod):
            evidence.append(f"pod {pod.name} ({pod.ip}) runs on {pod.node or '?'}, where the API server runs too")
            cause = (f"the API server could not connect to {title}'s pod {pod.name} at {dial.address} "
                     f"({dial.why}); the pod runs on the server's own node, so the overlay between nodes is not the "
                     "cause: the pod does not accept connections on that port")
            fix = (f"check that the container listens on {dial.port} and is Ready: `kubectl describe pod -n {ns} "
                   f"{pod.name}`, its log, and any NetworkPolicy in {ns}")
        else:
            evidence.append(f"pod {pod.name} ({pod.ip}) runs on {pod.node}; the API server runs on "
                            f"{', '.join(facts.expected.servers)}")
            net = facts.network
            if net is not None:
                evidence.append(f"fix-vxlan diagnosis: {net.summary}")
                evidence += [f"  {d}" for d in net.details]
            base = (f"the API server could not connect to {title}'s pod {pod.name} at {dial.address} "
                    f"({dial.why}) on {pod.node}: the server reaches pods on other nodes over Flannel's VXLAN "
                    "(UDP 8472)")
            if net is not None and net.ok is False:
                action = RunFixVxlan() if net.fixable else None
                cause = base + ", and the overlay between the nodes is broken"
                fix = "open UDP 8472 between the nodes: `o11yctl fix-vxlan`" + (
                    " (o11yctl doctor --fix does this)" if action else "")
            elif net is not None and net.ok is True:
                cause = base + "; the overlay works, so the pod itself does not accept connections on that port"
                fix = (f"check that the container listens on {dial.port} and is Ready: `kubectl describe pod -n "
                       f"{ns} {pod.name}`; and any NetworkPolicy in {ns}")
            else:
                cause = base + ", which is usually blocked"
                fix = "diagnose the overlay: `o11yctl fix-vxlan --check`; fix it with `o11yctl fix-vxlan`"
        out.append(Finding("service.unreachable", component or "network", subject,
                           f"{title} cannot be reached through the Kubernetes API", cause,
                           tuple(evidence), fix, action))
    for check in facts.checks:
        if not (check.failing and check.no_endpoints):
            continue
        pods = [p for p in facts.pods if p.component == check.component]
        states = [f"pod {p.name}: {p.phase}, {'Ready' if p.ready else 'not Ready'}" for p in pods] or [
            f"no pod labelled app.kubernetes.io/name={check.component} in {ns}"]
        out.append(Finding(
            "service.no-endpoints", check.component, facts.expected.services.get(check.component, check.component),
            f"{check.component.capitalize()} cannot be reached through the Kubernetes API",
            f"the Service has no Ready pod behind it: no {check.component} pod is Ready (or none matches its "
            "selector)", (f"verify {check.id}: {check.status} {check.detail}", *states),
            f"`kubectl get pods,endpointslices -n {ns} -o wide`; a pod that is not Ready has its own finding when "
            "doctor recognises why",
        ))
    return out


# --- verify's verdicts that nothing above explains ----------------------------------------------

#: Findings that account for checks of other components too.
_EXPLAINS: Mapping[str, tuple[str, ...]] = {
    "alloy.push-timeout": ("alloy.push-errors", "loki.cluster-logs"),
}


def _explains(finding: Finding, check: CheckFacts) -> bool:
    if finding.id in ("stack.namespace-missing", "stack.not-installed"):
        return True
    if check.kubelet:
        return finding.id == "kubelet.unreachable"
    if check.id in _EXPLAINS.get(finding.id, ()):
        return True
    if finding.id == "service.unreachable" and check.dial is not None:
        return finding.component == (check.component or "network")
    return bool(check.component) and finding.component == check.component


def judge_checks(facts: Facts, findings: Sequence[Finding]) -> list[Finding]:
    """A finding for each of `verify`'s checks that FAILs or WARNs and that no other finding explains.

    Doctor cannot always tell why; then it says so, with the check's own words and the next step.
    """
    out: list[Finding] = []
    for check in facts.checks:
        if not check.failing or any(_explains(f, check) for f in findings):
            continue
        evidence = [f"verify {check.id}: {check.status} {check.detail}"]
        if check.hint:
            evidence.append(f"verify's hint: {check.hint}")
        out.append(Finding(
            "verify.unexplained", check.component or check.group, f"check/{check.id}",
            f"verify {check.id} {'FAILs' if check.status == 'FAIL' else 'WARNs'}",
            "doctor cannot tell why: nothing it reads (pods, events, logs, volumes, nodes) explains this verdict",
            tuple(evidence),
            f"run `o11yctl verify --only {check.group}` and follow its hint; `o11yctl doctor --bundle FILE.tar.gz` "
            "collects what a maintainer needs to look further",
        ))
    return out


# --- helpers ----------------------------------------------------------------------------------


def _logs(facts: Facts, pod: PodFacts, c: ContainerFacts, *, previous_first: bool = True) -> list[str]:
    """The container's log lines: the crashed run's first (it explains the crash), then the current run's."""
    runs = (True, False) if previous_first else (False,)
    lines: list[str] = []
    for previous in runs:
        lines += [line for line in facts.log(pod.name, c.name, previous=previous).splitlines() if line.strip()]
    return lines


def _first(lines: Sequence[str], pattern: re.Pattern[str]) -> str | None:
    return next((line for line in lines if pattern.search(line)), None)


def _error_lines(lines: Sequence[str], limit: int = 3) -> list[str]:
    return [_clip(line) for line in lines if _ERROR_LINE.search(line)][-limit:]


def _latest(events: Iterable[EventFacts], reason: str) -> EventFacts | None:
    chosen = [e for e in events if e.reason == reason]
    return max(chosen, key=lambda e: e.last_seen) if chosen else None


def _clip(line: str) -> str:
    line = line.strip()
    return line if len(line) <= _LINE_LIMIT else line[: _LINE_LIMIT - 1] + "…"


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.id, f.subject)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


__all__ = [
    "ChownDir",
    "Finding",
    "FixAction",
    "LogFailure",
    "OpenKubeletPort",
    "RunFixVxlan",
    "judge",
    "needs_network_diagnosis",
    "ownership_probes",
]
