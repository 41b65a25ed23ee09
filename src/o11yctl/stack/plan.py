"""Config -> an ordered plan of small steps, each with an explicit action. Pure: no SSH, no HTTP, no subprocess.

The install plan walks the stack's components in order (the runbook's: namespace, Loki
storage, Loki PV/PVC, Loki, Alloy, Tempo storage, Tempo PV/PVC, Tempo, Grafana,
HTTPRoute) and ends with a wait. Every step names its component (for --only/--skip),
what it will do and exactly how (the SSH commands, the manifest, the helm argument
list), and the steps it must come after. The uninstall plan is the install plan's
removable steps, reversed, with their delete actions.

Actions: ``apply`` and ``delete`` (manifests through the Kubernetes API), ``helm-upgrade``
and ``helm-uninstall`` (releases), ``ssh`` (commands on a node), ``wait`` (readiness),
``scale`` (a StatefulSet's replicas, for ``move-data``: :mod:`o11yctl.stack.move`), ``secret``
(the object store's credentials, profile scalable: made from the environment or generated, never
rendered or printed), ``orphan`` (a StatefulSet deleted with its pods kept, for ``migrate``:
:mod:`o11yctl.stack.migrate`).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from o11yctl.config import Config, go_duration, parse_duration
from o11yctl.errors import UsageError
from o11yctl.stack.charts import resolve
from o11yctl.stack.components import Component, Stack
from o11yctl.stack.context import data_dir, stack_of, store_nodes
from o11yctl.stack.datadir import RemoteCommand, prepare_commands, remove_commands

Action = Literal["apply", "delete", "helm-upgrade", "helm-uninstall", "ssh", "wait", "secret", "scale", "orphan"]
#: The executor each action needs (also the ``kind`` --dry-run --json prints).
KINDS: dict[str, str] = {"apply": "apply", "delete": "apply", "helm-upgrade": "helm", "helm-uninstall": "helm",
                         "ssh": "ssh", "wait": "wait", "scale": "apply", "secret": "apply", "orphan": "apply"}

__all__ = ["Action", "HelmRelease", "Plan", "ReadyCheck", "RemoteCommand", "Step", "build_plan",
           "build_uninstall_plan", "parse_components", "select"]


@dataclass(frozen=True, slots=True)
class HelmRelease:
    """One helm release to install or upgrade, with its pinned chart."""

    release: str
    chart: str  # chart name, or the local path when ``local`` is set
    version: str
    repository: str | None
    values_file: str
    namespace: str
    timeout: str
    local: bool = False

    def argv(self, values_dir: str = ".") -> tuple[str, ...]:
        """The `helm upgrade --install` argument list (flags Helm 3 and Helm 4 share)."""
        values_path = f"{values_dir.rstrip('/')}/{self.values_file}" if values_dir != "." else self.values_file
        args = ["helm", "upgrade", "--install", self.release, self.chart]
        if not self.local and self.repository:
            args += ["--repo", self.repository]
        if not self.local:
            args += ["--version", self.version]
        args += [
            "--namespace", self.namespace,
            "--values", values_path,
            "--wait",
            "--timeout", self.timeout,
        ]
        return tuple(args)


@dataclass(frozen=True, slots=True)
class ReadyCheck:
    """A Service whose readiness path the wait step asks until it answers."""

    title: str
    service: str
    port: int
    path: str

    def describe(self) -> str:
        return f"{self.title} answers {self.path} (svc/{self.service}:{self.port})"


@dataclass(frozen=True, slots=True)
class Step:
    """One small, idempotent unit of work of a plan."""

    id: str
    component: str  # the --only/--skip name it belongs to (storage, volumes, loki, ...)
    action: Action
    description: str
    host: str | None = None
    commands: tuple[RemoteCommand, ...] = ()
    manifest: str | None = None
    helm: HelmRelease | None = None
    depends_on: tuple[str, ...] = ()
    waits_for: tuple[str, ...] = ()
    ready: tuple[ReadyCheck, ...] = ()
    owner: str = ""  # the stack component the step is for (loki for storage.loki)
    room: str | None = None  # a storage step: the volume's size, compared with the filesystem's
    target: str | None = None  # an orphan step: the object, "Kind namespace/name"

    @property
    def kind(self) -> str:
        """The executor the step needs: apply, helm, ssh or wait."""
        return KINDS[self.action]

    def display_lines(self) -> list[str]:
        """What --dry-run prints under the step: exact commands, files, argv."""
        if self.action == "ssh":
            return [f"{self.host}$ {c.display()}" for c in self.commands]
        if self.action == "apply" and self.manifest:
            return [f"server-side apply {self.manifest} (field manager o11yctl)"]
        if self.action == "delete" and self.manifest:
            return [f"delete the objects of {self.manifest}"]
        if self.action == "helm-upgrade" and self.helm:
            return [shlex.join(self.helm.argv())]
        if self.action == "helm-uninstall" and self.helm:
            return [shlex.join(["helm", "uninstall", self.helm.release, "--namespace", self.helm.namespace,
                                "--wait", "--timeout", self.helm.timeout])]
        if self.action == "orphan" and self.target:
            return [f"delete {self.target} with propagationPolicy Orphan (kubectl delete --cascade=orphan)"]
        if self.action == "secret":
            return ["create the Secret through the API when it is missing (its values are never printed)"]
        return list(self.waits_for)


@dataclass(frozen=True, slots=True)
class Plan:
    """An ordered tuple of steps for one config, and what was selected."""

    config: Config
    steps: tuple[Step, ...]
    selected: tuple[str, ...] = field(default=())

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.component for s in self.steps))

    def needs(self, kind: str) -> bool:
        """Whether a step needs this executor (apply, helm, ssh, wait)."""
        return any(s.kind == kind for s in self.steps)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


def parse_components(values: Iterable[str] | None, *, flag: str, allowed: Sequence[str]) -> list[str]:
    """Split comma-separated, repeatable --only/--skip values and check each name."""
    out: list[str] = []
    for raw in values or ():
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            if name not in allowed:
                raise UsageError(
                    f"{flag}: unknown name {name!r}",
                    hint=f"choose from: {', '.join(allowed)}",
                )
            if name not in out:
                out.append(name)
    return out


def select(only: Sequence[str], skip: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """The names --only/--skip leave selected, in canonical order."""
    if only and skip and set(only) & set(skip):
        both = sorted(set(only) & set(skip))
        raise UsageError(f"{', '.join(both)} given to both --only and --skip", hint="name each component once")
    chosen = [c for c in allowed if (not only or c in only) and c not in skip]
    if not chosen:
        raise UsageError("--only/--skip leave nothing to do", hint=f"components: {', '.join(allowed)}")
    return tuple(chosen)


def helm_release(cfg: Config, component: Component) -> HelmRelease:
    """The release of one component, with its chart resolved from the set and the config."""
    assert component.release is not None and component.values is not None
    chart = resolve(cfg, component.name)
    return HelmRelease(
        release=component.release,
        chart=chart.path or chart.name,
        version=chart.version,
        repository=chart.repository,
        values_file=component.values,
        namespace=cfg.cluster.namespace,
        timeout=go_duration(parse_duration(cfg.charts.timeout)),
        local=chart.local,
    )


def _steps(cfg: Config, stack: Stack) -> list[Step]:
    """Every install step of the stack, in order, before selection."""
    ns = cfg.cluster.namespace
    storage_host = cfg.storage.node
    uid, gid = cfg.storage.owner_uid, cfg.storage.owner_gid
    names = {c.name for c in stack}
    in_namespace = ("namespace",) if "namespace" in names else ()  # what lives in it comes after it
    steps: list[Step] = []
    for c in stack:
        if c.manifest and c.name == "namespace":
            steps.append(Step("namespace", "namespace", "apply", f"namespace {ns}", manifest=c.manifest, owner=c.name))
        elif c.manifest:
            steps.append(_manifest_step(cfg, stack, c, in_namespace))
        if c.credentials:
            store = cfg.object_storage
            source = ("generated keys" if store.in_cluster else
                      "$O11YCTL_S3_ACCESS_KEY_ID and $O11YCTL_S3_SECRET_ACCESS_KEY")
            steps.append(Step(
                c.name, c.name, "secret",
                f"Secret {ns}/{store.credentials_secret} with the object store's keys: kept when present, else "
                f"created from {source}; never shown", depends_on=in_namespace, owner=c.name))
        node_steps = _node_dir_steps(cfg, c)
        steps += node_steps
        if c.volume:
            path = data_dir(cfg, c)
            steps.append(Step(
                f"storage.{c.name}", "storage", "ssh", f"create {path} on {storage_host}, owned by {uid}:{gid}",
                host=storage_host, commands=prepare_commands(path, uid, gid), owner=c.name,
                room=getattr(cfg.components, c.name).size,
            ))
            steps.append(Step(
                f"volumes.{c.name}", "volumes", "apply",
                f"PersistentVolume {c.volume.pv} and PersistentVolumeClaim {ns}/{c.volume.pvc}",
                manifest=c.volume.manifest, depends_on=(*in_namespace, f"storage.{c.name}"), owner=c.name,
            ))
        if c.release:
            chart = resolve(cfg, c.name)
            after = (*in_namespace, *((f"volumes.{c.name}",) if c.volume else ()),
                     *(s.id for s in node_steps), *(_step_of(stack, a) for a in c.after))
            steps.append(Step(
                f"helm.{c.name}", c.name, "helm-upgrade",
                f"helm release {c.release} (chart {chart.name} {chart.version})",
                helm=helm_release(cfg, c), depends_on=after, owner=c.name,
            ))
    return steps


def _node_dir_steps(cfg: Config, c: Component) -> list[Step]:
    """The directories a component keeps on each of its nodes (the object store's), made over SSH."""
    if not c.node_dirs or c.node_owner is None:
        return []
    uid, gid = c.node_owner
    root = cfg.object_storage.root  # the config keeps it without a final "/"
    steps = []
    for node in store_nodes(cfg):
        for i, directory in enumerate(c.node_dirs):
            path = f"{root}/{directory}"
            steps.append(Step(
                f"storage.{c.name}.{node}.{directory}", "storage", "ssh",
                f"create {path} on {node}, owned by {uid}:{gid}", host=node,
                commands=prepare_commands(path, uid, gid), owner=c.name,
                room=cfg.object_storage.size if i == 0 else None))
    return steps


def _step_of(stack: Stack, name: str) -> str:
    """The id of the step that finishes a component (what others wait for)."""
    c = stack.get(name)
    return f"helm.{name}" if c.release else name


def _manifest_step(cfg: Config, stack: Stack, c: Component, in_namespace: tuple[str, ...]) -> Step:
    ns = cfg.cluster.namespace
    after = tuple(dict.fromkeys((*in_namespace, *(_step_of(stack, a) for a in c.after))))
    if c.name == "route":
        gw = cfg.route.gateway
        description = f"HTTPRoute {ns}/grafana on Gateway {gw.namespace}/{gw.name} at {cfg.route.url}"
    else:
        description = f"{c.title} ({c.manifest})"
    return Step(c.name, c.name, "apply", description, manifest=c.manifest, depends_on=after, owner=c.name)


def _wait(cfg: Config, stack: Stack, selected: Sequence[str], before: Sequence[Step]) -> Step | None:
    ns = cfg.cluster.namespace
    waits: list[str] = []
    ready: list[ReadyCheck] = []
    if any(c.release and c.name in selected for c in stack):
        waits.append(f"every pod in namespace {ns} Running and Ready")
    for c in stack:
        if c.name in selected and c.endpoint and c.endpoint.ready_path:
            check = ReadyCheck(c.title, c.endpoint.service, c.endpoint.port, c.endpoint.ready_path)
            ready.append(check)
            waits.append(check.describe())
    if not waits:
        return None
    return Step("wait.ready", "wait", "wait", "wait until the stack is ready", waits_for=tuple(waits),
                ready=tuple(ready), depends_on=tuple(s.id for s in before))


def build_plan(cfg: Config, *, only: Sequence[str] = (), skip: Sequence[str] = ()) -> Plan:
    """The ordered install plan for ``cfg``, limited by --only/--skip.

    Args:
        cfg: the validated configuration.
        only: component names to keep (empty: all).
        skip: component names to leave out.

    Returns:
        The plan; every step is data, nothing has run.
    """
    stack = stack_of(cfg)
    selected = select(only, skip, stack.selectable)
    steps = [s for s in _steps(cfg, stack) if s.component in selected]
    wait = _wait(cfg, stack, selected, steps)
    if wait is not None:
        steps.append(wait)
    return Plan(config=cfg, steps=tuple(steps), selected=selected)


def build_uninstall_plan(cfg: Config, *, delete_data: bool = False) -> Plan:
    """The install plan's removable steps, reversed, with their delete actions. Pure.

    Releases and the components' own manifests (the route) always go; the claims, volumes,
    namespace and data directories only with ``delete_data``.

    Args:
        cfg: the validated configuration.
        delete_data: also remove the PVCs, PVs, namespace and data directories.
    """
    install = build_plan(cfg)
    stack = stack_of(cfg)
    ns = cfg.cluster.namespace
    steps: list[Step] = []
    for step in reversed(install.steps):
        if step.action == "helm-upgrade" and step.helm is not None:
            steps.append(Step(step.id, step.component, "helm-uninstall", f"remove helm release {step.helm.release}",
                              helm=step.helm, owner=step.owner))
        elif step.id == "namespace":
            if delete_data:
                steps.append(Step(step.id, step.component, "delete", f"delete namespace {ns}",
                                  manifest=step.manifest, owner=step.owner))
        elif step.component == "volumes":
            volume = stack.get(step.owner).volume
            if delete_data and volume is not None:
                steps.append(Step(step.id, step.component, "delete",
                                  f"delete PersistentVolumeClaim {ns}/{volume.pvc} and PersistentVolume {volume.pv}",
                                  manifest=step.manifest, owner=step.owner))
        elif step.component == "storage":
            if delete_data:
                path = next(c.argv[-1] for c in step.commands if c.argv[0] == "mkdir")
                steps.append(Step(step.id, step.component, "ssh", f"delete {path} on {step.host}", host=step.host,
                                  commands=remove_commands(path), owner=step.owner))
        elif step.action == "apply" and step.manifest:
            steps.append(Step(step.id, step.component, "delete", _delete_text(cfg, stack.get(step.owner)),
                              manifest=step.manifest, owner=step.owner))
    # The install graph reversed: a thing goes only after everything that was built on it.
    built_on = _dependents(install.steps)
    kept = {s.id for s in steps}
    steps = [dataclasses.replace(s, depends_on=tuple(d for d in built_on[s.id] if d in kept)) for s in steps]
    return Plan(config=cfg, steps=tuple(steps), selected=install.selected)


def _dependents(steps: Sequence[Step]) -> dict[str, tuple[str, ...]]:
    """For each step, every step that depends on it directly or through others, in plan order."""
    direct: dict[str, set[str]] = {s.id: set() for s in steps}
    for s in steps:
        for dep in s.depends_on:
            if dep in direct:
                direct[dep].add(s.id)
    order = [s.id for s in steps]
    out: dict[str, tuple[str, ...]] = {}
    for sid in order:
        seen: set[str] = set()
        todo = list(direct[sid])
        while todo:
            nxt = todo.pop()
            if nxt not in seen:
                seen.add(nxt)
                todo.extend(direct[nxt])
        out[sid] = tuple(x for x in order if x in seen)
    return out


def _delete_text(cfg: Config, c: Component) -> str:
    if c.name == "route":
        grafana = stack_of(cfg).get("grafana")
        name = grafana.endpoint.service if grafana.endpoint else "grafana"
        return f"delete HTTPRoute {cfg.cluster.namespace}/{name}"
    return f"delete {c.title} ({c.manifest})"
