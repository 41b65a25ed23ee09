"""Checks of the cluster's objects and of the storage node's data directories.

Facts are the Kubernetes API's own JSON (dicts, as ``executors.kube`` returns
them) and the output of ``du``/``ls`` over SSH; the judges read them and nothing
else. The hints are the runbook's troubleshooting steps.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from o11yctl.config import Config
from o11yctl.errors import SudoPasswordRequired
from o11yctl.model import CommandResult, SshTarget
from o11yctl.secrets import Secret
from o11yctl.stack.components import Component, Stack
from o11yctl.verify.base import Check, CheckContext, Verdict, failed, passed, warned

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


def kube_of(ctx: CheckContext) -> KubeReader:
    kube = ctx.targets.kube
    assert kube is not None
    return kube  # type: ignore[no-any-return]


def _conditions(obj: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or []}


def name_of(obj: Obj) -> str:
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
    return judge_namespace(kube_of(ctx).get("v1", "Namespace", ctx.namespace), namespace=ctx.namespace)


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


def check_volume(component: Component) -> Any:
    """cluster.volume.<component>"""
    assert component.volume is not None
    pv_name, pvc_name = component.volume.pv, component.volume.pvc

    def run(ctx: CheckContext) -> Verdict:
        kube = kube_of(ctx)
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
    name, status = name_of(pod), pod.get("status") or {}
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


def check_pod(component: Component, node: str | None) -> Any:
    """cluster.pod.<component>: a data component's pod is the one mounting its claim; others go by label."""

    def run(ctx: CheckContext) -> Verdict:
        kube = kube_of(ctx)
        if component.volume is not None:
            pods = kube.list("v1", "Pod", ctx.namespace)
            return judge_pod(pods, component=component.title, namespace=ctx.namespace, node=node,
                             pvc=component.volume.pvc, owner=ctx.data_owner)
        pods = kube.list("v1", "Pod", ctx.namespace, label_selector=f"app.kubernetes.io/name={component.pod_label}")
        return judge_pod(pods, component=component.title, namespace=ctx.namespace, node=node, pvc=None,
                         owner=ctx.data_owner)

    return run


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


def check_httproute(name: str, gateway: str, gateway_ns: str) -> Any:
    """grafana.httproute: the HTTPRoute ``name`` of the stack's namespace."""

    def run(ctx: CheckContext) -> Verdict:
        route = kube_of(ctx).get(GATEWAY_API, "HTTPRoute", name, ctx.namespace)
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


def judge_data_dir(facts: DataDirFacts, *, component: str, owner: str, expected: tuple[str, ...] = ()) -> Verdict:
    """The directory exists and holds what the component writes first (Loki: wal/ and tsdb-*; Tempo: wal/).

    Args:
        facts: ``ls`` and ``du`` of the directory.
        component: the component's name (``loki``).
        owner: the directories' owner, for the hints.
        expected: entries the component writes (``wal``; a name ending in ``-`` is a prefix).
    """
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
    if expected and not any(e == x or (x.endswith("-") and e.startswith(x)) for e in entries for x in expected):
        wanted = " or ".join(x + "*" if x.endswith("-") else x + "/" for x in expected)
        return warned(f"{size} in {where} ({shown}), but no {wanted}",
                      f"is this {component.capitalize()}'s data? check the pod's volume mount")
    note = "; chunks/ appears after the first flush" if component == "loki" and "chunks" not in entries else ""
    return passed(f"{size} in {where} ({shown}){note}")


def check_data_dir(c: Component) -> Any:
    """cluster.data.<component>: the runbook's ``du -sh`` over SSH."""
    assert c.volume is not None
    component, expected = c.name, c.volume.writes

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
        return judge_data_dir(DataDirFacts(path, target.name, du, ls), component=component, owner=ctx.data_owner,
                              expected=expected)

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


def cluster_checks(cfg: Config, stack: Stack) -> tuple[Check, ...]:
    """The checks of group ``cluster``: the namespace, each data component's claim, each placed pod, each data
    directory."""
    ns = cfg.cluster.namespace
    storage_node = cfg.storage.node
    nodes = {"storage": storage_node, "grafana": cfg.components.grafana.node}
    out = [Check("cluster.namespace", "cluster", f"namespace {ns} exists", ("kube",), check_namespace)]
    out += [Check(f"cluster.volume.{c.name}", "cluster", f"{c.volume.pvc} is Bound to {c.volume.pv}", ("kube",),
                  check_volume(c)) for c in stack.data if c.volume is not None]
    for c in stack:
        if c.placement == "storage":
            out.append(Check(f"cluster.pod.{c.name}", "cluster", f"{c.title} runs and is Ready on {storage_node}",
                             ("kube",), check_pod(c, storage_node)))
        elif c.placement == "grafana":
            out.append(Check(f"cluster.pod.{c.name}", "cluster", f"{c.title} is Ready", ("kube",),
                             check_pod(c, nodes["grafana"])))
    out += [Check(f"cluster.data.{c.name}", "cluster", f"{c.title} writes to its data directory on {storage_node}",
                  ("ssh",), check_data_dir(c)) for c in stack.data]
    out += _scalable_checks(cfg, stack)
    return tuple(out)


def _scalable_checks(cfg: Config, stack: Stack) -> list[Check]:
    """Profile scalable: each spread release's pods, the store's, and an external store's buckets."""
    from o11yctl.stack.context import store_nodes, store_servers
    from o11yctl.verify.store import bucket_check, release_pods_check, store_ca_check

    everyone = [n.name for n in cfg.nodes]
    out = []
    for c in stack:
        settings = getattr(cfg.components, c.name, None)
        if c.placement == "spread":
            want = int(getattr(settings, "replicas", 1))
            allowed = list(getattr(settings, "nodes", []) or everyone)
            out.append(release_pods_check(cfg, c, want, allowed, one_per_node=want > 1))
        elif c.placement == "store-nodes":
            nodes = store_nodes(cfg)
            # masters and filers, and one volume server per node
            out.append(release_pods_check(cfg, c, 2 * store_servers(nodes) + len(nodes), nodes, one_per_node=False))
    if any(c.object_storage for c in stack) and not cfg.object_storage.in_cluster:
        out.append(bucket_check(cfg))
    if stack.has("store-ca"):
        out.append(store_ca_check(cfg))
    return out
