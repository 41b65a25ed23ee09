"""Checks of the cluster's objects and of the storage node's data directories.

Facts are the Kubernetes API's own JSON (dicts, as ``executors.kube`` returns
them) and the output of ``du``/``ls`` over SSH; the judges read them and nothing
else. The hints are the runbook's troubleshooting steps.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from o11yctl.checks import hints
from o11yctl.checks.base import Check, CheckContext, Verdict, failed, passed, warned
from o11yctl.context import PV_NAMES, RELEASES
from o11yctl.errors import SudoPasswordRequired
from o11yctl.model import CommandResult, SshTarget
from o11yctl.secrets import Secret

Obj = dict[str, Any]
GATEWAY_API = "gateway.networking.k8s.io/v1"


class KubeReader(Protocol):
    """The reads the cluster checks make (``executors.kube.Kube`` provides them)."""

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None: ...

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[Obj]: ...

    def pod_log(self, namespace: str, pod: str, *, container: str | None = None, previous: bool = False,
                tail_lines: int | None = None, since_seconds: int | None = None,
                timeout: float | None = None) -> str | None: ...


class SshRunner(Protocol):
    """The one thing the data-directory checks need from ``executors.ssh.SshPool``."""

    def run(self, target: SshTarget, argv: Sequence[str], *, sudo: bool = False, timeout: float | None = None,
            step: str = "") -> CommandResult: ...


def _kube(ctx: CheckContext) -> KubeReader:
    kube = ctx.targets.kube
    assert kube is not None
    return kube  # type: ignore[no-any-return]


def _conditions(obj: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or []}


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


# --- namespace -----------------------------------------------------------------------------------


def judge_namespace(ns: Obj | None, *, namespace: str) -> Verdict:
    """The namespace exists and is Active."""
    if ns is None:
        return failed(f"namespace {namespace} does not exist", "create it: `o11yctl install --only namespace`")
    phase = (ns.get("status") or {}).get("phase", "Active")
    if phase != "Active":
        return failed(f"namespace {namespace} is {phase}",
                      "it is being deleted; wait until it is gone, then `o11yctl install`")
    return passed(f"namespace {namespace} is Active")


def check_namespace(ctx: CheckContext) -> Verdict:
    """cluster.namespace"""
    return judge_namespace(_kube(ctx).get("v1", "Namespace", ctx.namespace), namespace=ctx.namespace)


# --- volumes -------------------------------------------------------------------------------------


def judge_volume(pvc: Obj | None, pv: Obj | None, *, pvc_name: str, pv_name: str, namespace: str,
                 storage_node: str, storage_class: str) -> Verdict:
    """The claim is Bound to its own PV; a claim waiting for its first consumer is not a failure."""
    pending_hint = (f"the runbook's \"PVC stays in Pending\": check PV {pv_name} exists (`kubectl get pv {pv_name}`), "
                    f"that both use storage class {storage_class}, and that the PV's nodeAffinity names "
                    f"{storage_node}'s hostname; `o11yctl doctor` names the cause")
    if pv is None:
        return failed(f"PersistentVolume {pv_name} does not exist", "create it: `o11yctl install --only volumes`")
    pv_phase = (pv.get("status") or {}).get("phase", "")
    claim = (pv.get("spec") or {}).get("claimRef") or {}
    if pv_phase == "Released":
        return failed(
            f"{pv_name} is Released: the claim it was bound to ({claim.get('namespace')}/{claim.get('name')}) "
            "was deleted, and a Released PV never binds again by itself",
            f"the data is still on {storage_node}; free the PV for the new claim: "
            f"`kubectl patch pv {pv_name} --type json -p '[{{\"op\":\"remove\",\"path\":\"/spec/claimRef/uid\"}}]'`",
        )
    if pv_phase == "Failed":
        return failed(f"{pv_name} is Failed: {(pv.get('status') or {}).get('message', '')}", pending_hint)
    if pvc is None:
        return failed(f"PersistentVolumeClaim {namespace}/{pvc_name} does not exist",
                      "create it: `o11yctl install --only volumes`")
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    phase = status.get("phase", "Pending")
    if phase == "Bound":
        if spec.get("volumeName") != pv_name:
            return failed(f"{pvc_name} is Bound to {spec.get('volumeName')}, not to {pv_name}",
                          f"the claim took another volume; delete {pvc_name} and re-run "
                          "`o11yctl install --only volumes`")
        size = (status.get("capacity") or {}).get("storage") or (pv.get("spec") or {}).get("capacity", {}).get(
            "storage", "?")
        return passed(f"{pvc_name} is Bound to {pv_name} ({size})")
    if phase == "Pending" and pv_phase == "Available" and claim.get("name") in (None, pvc_name):
        return warned(f"{pvc_name} is Pending, waiting for its first consumer ({pv_name} is Available)",
                      "it binds when the pod that mounts it is scheduled; if that pod stays Pending, see "
                      "its cluster.pod check")
    return failed(f"{pvc_name} is {phase} ({pv_name} is {pv_phase or 'unknown'})", pending_hint)


def check_volume(component: str) -> Any:
    """cluster.volume.<component>"""
    pv_name, pvc_name = PV_NAMES[component]

    def run(ctx: CheckContext) -> Verdict:
        kube = _kube(ctx)
        return judge_volume(kube.get("v1", "PersistentVolumeClaim", pvc_name, ctx.namespace),
                            kube.get("v1", "PersistentVolume", pv_name), pvc_name=pvc_name, pv_name=pv_name,
                            namespace=ctx.namespace, storage_node=ctx.storage_node,
                            storage_class=ctx.storage_class)

    return run


# --- pods ----------------------------------------------------------------------------------------


def _claims(pod: Obj) -> set[str]:
    return {str((v.get("persistentVolumeClaim") or {}).get("claimName")) for v in
            (pod.get("spec") or {}).get("volumes") or [] if v.get("persistentVolumeClaim")}


def _waiting(pod: Obj) -> list[str]:
    out = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason:
            out.append(str(reason))
    return out


def _restarts(pod: Obj) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])


def is_ready(pod: Obj) -> bool:
    """Running with the Ready condition True."""
    return (pod.get("status") or {}).get("phase") == "Running" and \
        _conditions(pod).get("Ready", {}).get("status") == "True"


def judge_pod(pods: Sequence[Obj], *, component: str, namespace: str, node: str | None,
              pvc: str | None, owner: str) -> Verdict:
    """The component's pod runs and is Ready on its node, mounting its claim.

    Args:
        pods: the candidate pods (by label, or every pod of the namespace when ``pvc`` is set).
        component: the name in messages (Loki, Tempo, Grafana).
        namespace: the stack's namespace.
        node: the node it must run on (None: any).
        pvc: the claim it must mount (None: no claim); pods not mounting it are not the component's.
        owner: the data directories' owner, for the runbook's permission hint.
    """
    mine = [p for p in pods if pvc is None or pvc in _claims(p)]
    if not mine:
        what = f"mounting {pvc}" if pvc else f"labelled app.kubernetes.io/name={component.lower()}"
        return failed(f"no {component} pod {what} in namespace {namespace}",
                      f"install it: `o11yctl install --only {component.lower()}`")
    pod = next((p for p in mine if is_ready(p)), mine[0])
    name, status = _name(pod), pod.get("status") or {}
    on = (pod.get("spec") or {}).get("nodeName") or ""
    phase = status.get("phase", "Unknown")
    logs = f"`kubectl logs -n {namespace} {name} --tail=50`"
    if phase == "Pending":
        why = _conditions(pod).get("PodScheduled", {}).get("message") or ", ".join(_waiting(pod)) or "not scheduled"
        return failed(f"{name} is Pending: {why}",
                      f"the runbook's \"Pod stuck in Pending\": the pod must select {node or 'its node'} (node "
                      f"selector and toleration for its taint) and its claim must be Bound "
                      f"(`kubectl get pvc -n {namespace}`); `o11yctl doctor` names the cause")
    waiting = _waiting(pod)
    if "CrashLoopBackOff" in waiting or "Error" in waiting:
        return failed(f"{name} is in CrashLoopBackOff ({_restarts(pod)} restarts)",
                      f"check {logs}; \"Permission denied\" on the data directory means it does not belong to "
                      f"{owner}: `o11yctl install --only storage` fixes that; `o11yctl doctor` confirms the owner "
                      "and names other causes")
    if waiting:
        return failed(f"{name} is waiting: {', '.join(waiting)}", f"`kubectl describe pod -n {namespace} {name}`")
    if node and on != node:
        return failed(f"{name} runs on {on or 'no node'}, not on {node}",
                      f"its values must select {node} (node selector and toleration); re-apply them with "
                      f"`o11yctl install --only {component.lower()}`")
    if not is_ready(pod):
        return failed(f"{name} is {phase} but not Ready",
                      f"its readiness probe fails: {logs}; `o11yctl doctor` looks for config and storage errors")
    mounts = f", mounts {pvc}" if pvc else ""
    return passed(f"{name} Running and Ready on {on}{mounts} ({_restarts(pod)} restarts)")


def check_pod(component: str) -> Any:
    """cluster.pod.<component>"""

    def run(ctx: CheckContext) -> Verdict:
        kube = _kube(ctx)
        if component in PV_NAMES:
            pods = kube.list("v1", "Pod", ctx.namespace)
            return judge_pod(pods, component=component.capitalize(), namespace=ctx.namespace,
                             node=ctx.storage_node, pvc=PV_NAMES[component][1], owner=ctx.data_owner)
        pods = kube.list("v1", "Pod", ctx.namespace, label_selector=f"app.kubernetes.io/name={component}")
        return judge_pod(pods, component=component.capitalize(), namespace=ctx.namespace,
                         node=ctx.grafana_node, pvc=None, owner=ctx.data_owner)

    return run


# --- Alloy ---------------------------------------------------------------------------------------


def judge_alloy_pods(nodes: Sequence[Obj], pods: Sequence[Obj], *, namespace: str) -> Verdict:
    """One Ready Alloy pod on every node (the storage node's taint included)."""
    node_names = sorted(_name(n) for n in nodes)
    ready_on = {(p.get("spec") or {}).get("nodeName") for p in pods if is_ready(p)}
    missing = [n for n in node_names if n not in ready_on]
    if not missing:
        return passed(f"{len(node_names)}/{len(node_names)} nodes run a Ready Alloy pod")
    tainted = [n for n in nodes if _name(n) in missing and (n.get("spec") or {}).get("taints")]
    hint = f"`kubectl get pods -n {namespace} -l app.kubernetes.io/name=alloy -o wide`"
    if tainted:
        taints = ", ".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                           for t in (tainted[0].get("spec") or {}).get("taints") or [])
        hint = (f"{_name(tainted[0])} carries the taint {taints}: Alloy's DaemonSet needs a toleration for it "
                f"(the Alloy values); re-apply them with `o11yctl install --only alloy`; then {hint}")
    return failed(f"{len(node_names) - len(missing)}/{len(node_names)} nodes run a Ready Alloy pod; "
                  f"none on {', '.join(missing)}", hint)


def check_alloy_pods(ctx: CheckContext) -> Verdict:
    """alloy.pods"""
    kube = _kube(ctx)
    return judge_alloy_pods(kube.list("v1", "Node"),
                            kube.list("v1", "Pod", ctx.namespace, label_selector="app.kubernetes.io/name=alloy"),
                            namespace=ctx.namespace)


PUSH_ERROR = re.compile(r"context deadline exceeded", re.IGNORECASE)


def judge_alloy_logs(logs: Mapping[str, str], *, namespace: str) -> Verdict:
    """Recent Alloy logs mentioning "context deadline exceeded" mean pushes to Loki time out."""
    if not logs:
        return failed(f"no running Alloy pod in namespace {namespace}", "see alloy.pods; install it with "
                      "`o11yctl install --only alloy`")
    bad = {pod: [line for line in text.splitlines() if PUSH_ERROR.search(line)] for pod, text in logs.items()}
    bad = {pod: lines for pod, lines in bad.items() if lines}
    if not bad:
        return passed(f"no \"context deadline exceeded\" in the last 15 minutes of {len(logs)} Alloy pod(s)")
    counts = ", ".join(f"{pod}: {len(lines)}" for pod, lines in sorted(bad.items()))
    return failed(f"\"context deadline exceeded\" in Alloy's logs ({counts})", hints.alloy_not_shipping(namespace))


def check_alloy_logs(ctx: CheckContext) -> Verdict:
    """alloy.push-errors: the last 15 minutes of each Alloy pod's log."""
    kube = _kube(ctx)
    pods = kube.list("v1", "Pod", ctx.namespace, label_selector="app.kubernetes.io/name=alloy")
    logs: dict[str, str] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") not in ("Running", "Succeeded", "Failed"):
            continue  # never started: no log yet (alloy.pods reports it)
        name = _name(pod)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        text = kube.pod_log(ctx.namespace, name, container="alloy" if "alloy" in containers else None,
                            since_seconds=900, tail_lines=2000, timeout=ctx.deadline.timeout(ctx.request_timeout))
        if text is None:
            continue  # gone, or its container has not started yet (alloy.pods reports it)
        logs[name] = text
    return judge_alloy_logs(logs, namespace=ctx.namespace)


# --- the HTTPRoute -------------------------------------------------------------------------------


def judge_httproute(route: Obj | None, *, namespace: str, name: str, gateway: str, gateway_ns: str) -> Verdict:
    """The Gateway accepted the route (and resolved its backend)."""
    if route is None:
        return failed(f"HTTPRoute {namespace}/{name} does not exist", "create it: `o11yctl install --only route`")
    parents = (route.get("status") or {}).get("parents") or []
    mine = [p for p in parents if (p.get("parentRef") or {}).get("name") == gateway
            and (p.get("parentRef") or {}).get("namespace", namespace) == gateway_ns]
    if not mine:
        return failed(f"Gateway {gateway_ns}/{gateway} has not reported on HTTPRoute {namespace}/{name}",
                      f"is the gateway controller (Envoy Gateway) running, and does Gateway {gateway_ns}/{gateway} "
                      "exist? `kubectl get gateway -A`")
    conditions = {c.get("type"): c for c in mine[0].get("conditions") or []}
    accepted = conditions.get("Accepted") or {}
    if accepted.get("status") != "True":
        return failed(f"not Accepted by {gateway_ns}/{gateway}: {accepted.get('reason', '?')}: "
                      f"{accepted.get('message', '')}".rstrip(": "),
                      f"the listener must allow routes from namespace {namespace}; "
                      f"`kubectl describe httproute -n {namespace} {name}`")
    resolved = conditions.get("ResolvedRefs") or {}
    if resolved and resolved.get("status") != "True":
        return failed(f"Accepted, but its backend is not resolved: {resolved.get('reason', '?')}: "
                      f"{resolved.get('message', '')}", "does Service grafana exist on port 80? "
                      f"`kubectl get svc -n {namespace}`")
    return passed(f"Accepted by Gateway {gateway_ns}/{gateway}")


def check_httproute(gateway: str, gateway_ns: str) -> Any:
    """grafana.httproute"""

    def run(ctx: CheckContext) -> Verdict:
        name = RELEASES["grafana"]
        route = _kube(ctx).get(GATEWAY_API, "HTTPRoute", name, ctx.namespace)
        return judge_httproute(route, namespace=ctx.namespace, name=name, gateway=gateway, gateway_ns=gateway_ns)

    return run


# --- data directories over SSH ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataDirFacts:
    """``du -sh`` and ``ls -A`` of one data directory on the storage node."""

    path: str
    node: str
    du: CommandResult
    ls: CommandResult


_EXPECTED = {"loki": ("wal", "tsdb-"), "tempo": ("wal",)}


def judge_data_dir(facts: DataDirFacts, *, component: str, owner: str) -> Verdict:
    """The directory exists and holds what the component writes first (Loki: wal/ and tsdb-*; Tempo: wal/)."""
    where = f"{facts.node}:{facts.path}"
    if not facts.ls.ok:
        err = facts.ls.stderr.strip().splitlines()[-1] if facts.ls.stderr.strip() else f"exit {facts.ls.exit_code}"
        if "No such file" in err:
            return failed(f"{where} does not exist", "create it: `o11yctl install --only storage`")
        if "Permission denied" in err:
            return warned(f"cannot list {where}: {err}", f"the SSH user cannot read it (it belongs to {owner})")
        return failed(f"ls {where}: {err}", None)
    entries = sorted(e for e in facts.ls.stdout.split("\n") if e.strip())
    size = facts.du.stdout.split()[0] if facts.du.stdout.split() else "?"
    if not entries:
        return failed(f"{where} is empty: {component.capitalize()} is not writing there",
                      f"its pod must mount {component}-pvc and the directory must belong to {owner} "
                      "(`o11yctl install --only storage`); see the cluster.pod check")
    shown = ", ".join(e + "/" for e in entries[:6]) + (", …" if len(entries) > 6 else "")
    expected = _EXPECTED[component]
    if not any(e == x or (x.endswith("-") and e.startswith(x)) for e in entries for x in expected):
        wanted = " or ".join(x + "*" if x.endswith("-") else x + "/" for x in expected)
        return warned(f"{size} in {where} ({shown}), but no {wanted}",
                      f"is this {component.capitalize()}'s data? check the pod's volume mount")
    note = "; chunks/ appears after the first flush" if component == "loki" and "chunks" not in entries else ""
    return passed(f"{size} in {where} ({shown}){note}")


def check_data_dir(component: str) -> Any:
    """cluster.data.<component>: the runbook's ``du -sh`` over SSH."""

    def run(ctx: CheckContext) -> Verdict:
        ssh: SshRunner | None = ctx.targets.ssh
        assert ssh is not None
        target = ctx.storage_target
        assert target is not None
        path = dict(ctx.data_dirs)[component]
        step = f"cluster.data.{component}"

        def run_argv(argv: list[str]) -> CommandResult:
            # As the login user first; the data directories belong to the services' user, so
            # where that cannot read them, again through sudo if sudo needs no password.
            result = ssh.run(target, argv, timeout=ctx.deadline.timeout(ctx.request_timeout), step=step)
            if result.ok or "Permission denied" not in result.stderr:
                return result
            try:
                as_root = ssh.run(target, argv, sudo=True, timeout=ctx.deadline.timeout(ctx.request_timeout),
                                  step=step)
            except SudoPasswordRequired:
                return result
            return as_root if as_root.ok else result

        ls = run_argv(["ls", "-A1", "--", path])
        du = run_argv(["du", "-sh", "--", path]) if ls.ok else ls
        return judge_data_dir(DataDirFacts(path, target.name, du, ls), component=component, owner=ctx.data_owner)

    return run


# --- Grafana's admin Secret ----------------------------------------------------------------------


def grafana_basic_auth(secret: Obj | None) -> dict[str, str | Secret] | None:
    """An Authorization header from the chart's Secret (keys ``admin-user``, ``admin-password``), or None."""
    if secret is None:
        return None
    data = secret.get("data") or {}
    try:
        user = base64.b64decode(data.get("admin-user", "")).decode()
        password = base64.b64decode(data.get("admin-password", "")).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not user or not password:
        return None
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": Secret(f"Basic {token}")}


# --- the definitions -----------------------------------------------------------------------------


def cluster_checks(*, storage_node: str, namespace: str) -> tuple[Check, ...]:
    """The checks of group ``cluster``."""
    return (
        Check("cluster.namespace", "cluster", f"namespace {namespace} exists", ("kube",), check_namespace),
        Check("cluster.volume.loki", "cluster", "loki-pvc is Bound to loki-pv", ("kube",), check_volume("loki")),
        Check("cluster.volume.tempo", "cluster", "tempo-pvc is Bound to tempo-pv", ("kube",),
              check_volume("tempo")),
        Check("cluster.pod.loki", "cluster", f"Loki runs and is Ready on {storage_node}", ("kube",),
              check_pod("loki")),
        Check("cluster.pod.tempo", "cluster", f"Tempo runs and is Ready on {storage_node}", ("kube",),
              check_pod("tempo")),
        Check("cluster.pod.grafana", "cluster", "Grafana is Ready", ("kube",), check_pod("grafana")),
        Check("cluster.data.loki", "cluster", f"Loki writes to its data directory on {storage_node}", ("ssh",),
              check_data_dir("loki")),
        Check("cluster.data.tempo", "cluster", f"Tempo writes to its data directory on {storage_node}", ("ssh",),
              check_data_dir("tempo")),
    )


def alloy_checks() -> tuple[Check, ...]:
    """The checks of group ``alloy``."""
    return (
        Check("alloy.pods", "alloy", "one Ready Alloy pod per node", ("kube",), check_alloy_pods),
        Check("alloy.push-errors", "alloy", "Alloy's logs show no failed pushes to Loki", ("kube",),
              check_alloy_logs),
    )


def httproute_check(namespace: str, *, gateway: str, gateway_ns: str) -> Check:
    """grafana.httproute: the Gateway accepted Grafana's HTTPRoute."""
    return Check("grafana.httproute", "grafana", f"HTTPRoute {namespace}/grafana is Accepted", ("kube",),
                 check_httproute(gateway, gateway_ns))
