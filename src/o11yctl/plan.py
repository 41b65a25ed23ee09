"""Config -> an ordered plan of small steps. Pure: no SSH, no HTTP, no subprocess.

The order is the runbook's: namespace, Loki storage, Loki PV/PVC, Loki, Alloy,
Tempo storage, Tempo PV/PVC, Tempo, Grafana, HTTPRoute, then the waits. Each
step names the component it belongs to (for --only/--skip), what it will do,
and exactly how (the SSH commands, the manifest, the helm argument list).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from o11yctl.config import Config, go_duration, parse_duration
from o11yctl.context import RELEASES, data_dir
from o11yctl.errors import UsageError
from o11yctl.model import COMPONENTS

StepKind = Literal["ssh", "apply", "helm", "wait"]

#: Where --dry-run and install put the rendered values files (relative to the work dir).
VALUES_FILES = {
    "loki": "02-loki-values.yaml",
    "alloy": "03-alloy-values.yaml",
    "grafana": "04-grafana-values.yaml",
    "tempo": "07-tempo-values.yaml",
}
MANIFEST_FILES = {
    "namespace": "00-namespace.yaml",
    "loki-volumes": "01-loki-storage.yaml",
    "route": "05-grafana-httproute.yaml",
    "tempo-volumes": "06-tempo-storage.yaml",
}


@dataclass(frozen=True, slots=True)
class RemoteCommand:
    """One command for a node: argv, and whether it runs through `sudo -n`."""

    argv: tuple[str, ...]
    sudo: bool = False
    purpose: str = ""  # "probe" (read-only) or "change"

    def display(self) -> str:
        """The command as the SSH executor sends it (``sudo -n -- argv`` when privileged)."""
        line = shlex.join(self.argv)
        return f"sudo -n -- {line}" if self.sudo else line


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
class Step:
    """One small, idempotent unit of work of a plan."""

    id: str
    component: str
    kind: StepKind
    description: str
    host: str | None = None
    commands: tuple[RemoteCommand, ...] = ()
    manifest: str | None = None
    helm: HelmRelease | None = None
    depends_on: tuple[str, ...] = ()
    waits_for: tuple[str, ...] = ()

    def display_lines(self) -> list[str]:
        """What --dry-run prints under the step: exact commands, files, argv."""
        if self.kind == "ssh":
            return [f"{self.host}$ {c.display()}" for c in self.commands]
        if self.kind == "apply" and self.manifest:
            return [f"server-side apply {self.manifest} (field manager o11yctl)"]
        if self.kind == "helm" and self.helm:
            return [shlex.join(self.helm.argv())]
        return list(self.waits_for)


@dataclass(frozen=True, slots=True)
class Plan:
    """An ordered tuple of steps for one config, and what was selected."""

    config: Config
    steps: tuple[Step, ...]
    selected: tuple[str, ...] = field(default=COMPONENTS)

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.component for s in self.steps))

    def needs(self, kind: StepKind) -> bool:
        return any(s.kind == kind for s in self.steps)


def parse_components(values: Iterable[str] | None, *, flag: str, allowed: Sequence[str] = COMPONENTS) -> list[str]:
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


def select(only: Sequence[str], skip: Sequence[str], allowed: Sequence[str] = COMPONENTS) -> tuple[str, ...]:
    """The names --only/--skip leave selected, in canonical order."""
    if only and skip and set(only) & set(skip):
        both = sorted(set(only) & set(skip))
        raise UsageError(f"{', '.join(both)} given to both --only and --skip", hint="name each component once")
    chosen = [c for c in allowed if (not only or c in only) and c not in skip]
    if not chosen:
        raise UsageError("--only/--skip leave nothing to do", hint=f"components: {', '.join(allowed)}")
    return tuple(chosen)


def storage_commands(path: str, uid: int, gid: int) -> tuple[RemoteCommand, ...]:
    """Create a data directory and give it to uid:gid, as the runbook does with mkdir/chown."""
    return (
        RemoteCommand(("stat", "-c", "%u:%g %a %F", path), purpose="probe"),
        RemoteCommand(("mkdir", "-p", path), sudo=True, purpose="change"),
        RemoteCommand(("chown", "-R", f"{uid}:{gid}", path), sudo=True, purpose="change"),
        RemoteCommand(("stat", "-c", "%u:%g %a %F", path), purpose="probe"),
    )


def _helm_release(cfg: Config, component: str) -> HelmRelease:
    comp = getattr(cfg.components, component)
    chart = comp.chart
    return HelmRelease(
        release=RELEASES[component],
        chart=chart.path or chart.name,
        version=chart.version,
        repository=None if chart.path else (chart.repository or cfg.charts.repository),
        values_file=VALUES_FILES[component],
        namespace=cfg.cluster.namespace,
        timeout=go_duration(parse_duration(cfg.charts.timeout)),
        local=chart.path is not None,
    )


def build_plan(cfg: Config, *, only: Sequence[str] = (), skip: Sequence[str] = ()) -> Plan:
    """The ordered install plan for ``cfg``, limited by --only/--skip.

    Args:
        cfg: the validated configuration.
        only: component names to keep (empty: all).
        skip: component names to leave out.

    Returns:
        The plan; every step is data, nothing has run.
    """
    selected = select(only, skip)
    ns = cfg.cluster.namespace
    storage_host = cfg.storage.node
    uid, gid = cfg.storage.owner_uid, cfg.storage.owner_gid
    steps: list[Step] = []

    def add(step: Step) -> None:
        if step.component in selected:
            steps.append(step)

    add(Step("namespace", "namespace", "apply", f"namespace {ns}", manifest=MANIFEST_FILES["namespace"]))
    for comp, volumes_file in (("loki", MANIFEST_FILES["loki-volumes"]), ("tempo", MANIFEST_FILES["tempo-volumes"])):
        path = data_dir(cfg, comp)
        add(Step(
            f"storage.{comp}", "storage", "ssh",
            f"create {path} on {storage_host}, owned by {uid}:{gid}",
            host=storage_host, commands=storage_commands(path, uid, gid),
        ))
        add(Step(
            f"volumes.{comp}", "volumes", "apply",
            f"PersistentVolume {comp}-pv and PersistentVolumeClaim {ns}/{comp}-pvc",
            manifest=volumes_file, depends_on=("namespace", f"storage.{comp}"),
        ))
        add(Step(
            f"helm.{comp}", comp, "helm",
            f"helm release {comp} (chart {getattr(cfg.components, comp).chart.name} "
            f"{getattr(cfg.components, comp).chart.version})",
            helm=_helm_release(cfg, comp), depends_on=(f"volumes.{comp}",),
        ))
        if comp == "loki":
            add(Step(
                "helm.alloy", "alloy", "helm",
                f"helm release alloy (chart {cfg.components.alloy.chart.name} {cfg.components.alloy.chart.version})",
                helm=_helm_release(cfg, "alloy"), depends_on=("helm.loki",),
            ))
    add(Step(
        "helm.grafana", "grafana", "helm",
        f"helm release grafana (chart {cfg.components.grafana.chart.name} {cfg.components.grafana.chart.version})",
        helm=_helm_release(cfg, "grafana"), depends_on=("helm.loki", "helm.tempo"),
    ))
    add(Step(
        "route", "route", "apply", f"HTTPRoute {ns}/grafana on Gateway "
        f"{cfg.route.gateway.namespace}/{cfg.route.gateway.name} at {cfg.route.url}",
        manifest=MANIFEST_FILES["route"], depends_on=("helm.grafana",),
    ))
    waits = []
    if any(c in selected for c in ("loki", "alloy", "tempo", "grafana")):
        waits.append(f"every pod in namespace {ns} Running and Ready")
    if "loki" in selected:
        waits.append(f"Loki answers /ready (svc/{RELEASES['loki']}:3100)")
    if "tempo" in selected:
        waits.append(f"Tempo answers /ready (svc/{RELEASES['tempo']}:3200)")
    if waits:
        steps.append(Step("wait.ready", "wait", "wait", "wait until the stack is ready", waits_for=tuple(waits)))
    return Plan(config=cfg, steps=tuple(steps), selected=selected)
