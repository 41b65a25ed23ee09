"""The helm command line: the only module that knows helm's flags.

Every call is an explicit argument list run by :mod:`o11yctl.executors.process`
(never a shell string), with a timeout, and a failure carries helm's own stderr.
Only flags that Helm 3 and Helm 4 share are used: no ``--atomic`` or ``--force``
(Helm 4 renamed them), no ``helm repo add`` (charts come with ``--repo URL``, so
the user's own repository list is left alone), and ``list`` filters by state
(``--deployed --failed --pending``) because Helm 4 has no ``--all``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from o11yctl.errors import HelmError, PreflightError
from o11yctl.executors import process
from o11yctl.model import CommandResult

SUPPORTED_MAJORS = (3, 4)
PENDING_STATES = ("pending-install", "pending-upgrade", "pending-rollback")
#: Seconds a read-only helm command (list, status, get values, history) may take.
READ_TIMEOUT = 60.0
#: Extra seconds granted beyond helm's own --timeout before the process is stopped.
GRACE = 60.0


@dataclass(frozen=True, slots=True)
class HelmVersion:
    """Which helm was found: ``v3.17.2`` -> major 3."""

    version: str
    major: int
    path: str

    def describe(self) -> str:
        return f"Helm {self.version} ({self.path})"


@dataclass(frozen=True, slots=True)
class Release:
    """One release as ``helm list -o json`` reports it."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str  # "<chart name>-<chart version>", e.g. "loki-6.21.0"
    app_version: str = ""
    updated: str = ""

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATES


@dataclass(frozen=True, slots=True)
class Revision:
    """One entry of ``helm history -o json``."""

    revision: int
    status: str
    chart: str
    description: str = ""
    updated: str = ""


@dataclass(frozen=True, slots=True)
class ChartMeta:
    """A chart's own name and version, from its Chart.yaml."""

    name: str
    version: str


class Helm:
    """One helm binary, pointed at one cluster (kubeconfig and context)."""

    def __init__(self, binary: str = "helm", *, kubeconfig: str | None = None, context: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.context = context
        self.env = dict(env or {})

    # --- plumbing ------------------------------------------------------------------------------

    def _global_flags(self) -> list[str]:
        flags: list[str] = []
        if self.kubeconfig:
            flags += ["--kubeconfig", self.kubeconfig]
        if self.context:
            flags += ["--kube-context", self.context]
        return flags

    def command(self, args: Sequence[str]) -> list[str]:
        """The full argument list for helm ``args`` (the binary, the args, the cluster flags)."""
        return [self.binary, *args, *self._global_flags()]

    def run(self, args: Sequence[str], *, timeout: float = READ_TIMEOUT) -> CommandResult:
        """Run helm with ``args``; the result whatever the exit code."""
        try:
            # Its own session: a Ctrl-C at the terminal never stops helm half-way through a release.
            return process.run(self.command(args), timeout=timeout, env=self.env, own_session=True)
        except process.CommandNotFound as exc:
            raise PreflightError(f"helm not found ({self.binary})",
                                 hint="install Helm 3 or 4 (https://helm.sh/docs/intro/install/) and put it on PATH"
                                 ) from exc
        except process.CommandTimeout as exc:
            raise HelmError(exc.message, hint=exc.hint) from exc

    def _ok(self, args: Sequence[str], what: str, *, hint: str | None = None,
            timeout: float = READ_TIMEOUT) -> CommandResult:
        return process.require_ok(self.run(args, timeout=timeout), HelmError, what=what, hint=hint)

    # --- reads ---------------------------------------------------------------------------------

    def version(self) -> HelmVersion:
        """Which helm this is.

        Raises:
            PreflightError: helm is missing, or is not Helm 3 or 4.
        """
        result = self.run(["version", "--template", "{{.Version}}"])
        path = shutil.which(self.binary) or self.binary
        text = result.stdout.strip()
        match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text)
        if not result.ok or not match:
            raise PreflightError(f"cannot tell which helm {path} is: {process.tail(result.stderr or text, 3)}",
                                 hint="install Helm 3 or 4 and put it on PATH")
        major = int(match.group(1))
        if major not in SUPPORTED_MAJORS:
            raise PreflightError(f"helm {text} at {path} is not supported",
                                 hint="o11yctl works with Helm 3.x and 4.x")
        return HelmVersion(version=text if text.startswith("v") else "v" + text, major=major, path=path)

    def list_releases(self, namespace: str) -> dict[str, Release]:
        """Every deployed, failed or pending release in ``namespace``, by name."""
        result = self._ok(["list", "--namespace", namespace, "--deployed", "--failed", "--pending",
                           "--output", "json"], f"helm list in namespace {namespace}")
        out: dict[str, Release] = {}
        for item in _json(result, "helm list") or []:
            rel = Release(
                name=str(item.get("name", "")), namespace=str(item.get("namespace", namespace)),
                revision=int(item.get("revision") or 0), status=str(item.get("status", "")),
                chart=str(item.get("chart", "")), app_version=str(item.get("app_version", "")),
                updated=str(item.get("updated", "")),
            )
            out[rel.name] = rel
        return out

    def get_values(self, release: str, namespace: str) -> dict[str, Any]:
        """The values the release was installed with (its user-supplied values; ``{}`` for none)."""
        result = self._ok(["get", "values", release, "--namespace", namespace, "--output", "json"],
                          f"helm get values {release}")
        values = _json(result, "helm get values")
        return dict(values) if isinstance(values, dict) else {}

    def history(self, release: str, namespace: str) -> list[Revision]:
        """The release's revisions, oldest first."""
        result = self._ok(["history", release, "--namespace", namespace, "--output", "json"],
                          f"helm history {release}")
        return [Revision(revision=int(i.get("revision") or 0), status=str(i.get("status", "")),
                         chart=str(i.get("chart", "")), description=str(i.get("description", "")),
                         updated=str(i.get("updated", "")))
                for i in _json(result, "helm history") or []]

    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        """``helm status -o json`` of a release, or None when there is no such release."""
        result = self.run(["status", release, "--namespace", namespace, "--output", "json"])
        if not result.ok and "not found" in result.stderr:
            return None
        process.require_ok(result, HelmError, what=f"helm status {release}")
        doc = _json(result, "helm status")
        return dict(doc) if isinstance(doc, dict) else None

    # --- changes -------------------------------------------------------------------------------

    def upgrade_install(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        """Run one ``helm upgrade --install`` argument list (as the plan built it).

        Args:
            argv: the argument list, starting with ``helm`` (which is replaced by this binary).
            timeout: seconds helm was told it may wait (``--timeout``); the process gets a little more.

        Raises:
            HelmError: helm failed; the message carries its stderr.
        """
        args = list(argv[1:] if argv and argv[0] == "helm" else argv)
        release = args[2] if len(args) > 2 else "?"
        return self._ok(args, f"helm upgrade --install {release}", timeout=timeout + GRACE,
                        hint=f"see why: kubectl get pods -n {_flag(args, '--namespace')} ; "
                             f"helm status {release} -n {_flag(args, '--namespace')}")

    def rollback(self, release: str, namespace: str, revision: int, *, timeout: str) -> CommandResult:
        """Roll ``release`` back to ``revision`` and wait for it."""
        return self._ok(["rollback", release, str(revision), "--namespace", namespace, "--wait",
                         "--timeout", timeout], f"helm rollback {release} {revision}",
                        timeout=_seconds(timeout) + GRACE)

    def uninstall(self, release: str, namespace: str, *, timeout: str) -> bool:
        """Remove ``release``; False when it did not exist."""
        result = self.run(["uninstall", release, "--namespace", namespace, "--wait", "--timeout", timeout],
                          timeout=_seconds(timeout) + GRACE)
        if not result.ok and "not found" in result.stderr:
            return False
        process.require_ok(result, HelmError, what=f"helm uninstall {release}")
        return True


def chart_meta(path: str | os.PathLike[str]) -> ChartMeta:
    """Name and version from a local chart: a directory with Chart.yaml, or a packaged ``.tgz``.

    Raises:
        PreflightError: the path is not a readable chart.
    """
    p = Path(path)
    text: str | None = None
    try:
        if p.is_dir():
            chart_file = p / "Chart.yaml"
            if chart_file.is_file():
                text = chart_file.read_text(encoding="utf-8")
        elif p.is_file():
            with tarfile.open(p, "r:*") as tgz:
                for member in tgz.getmembers():
                    parts = member.name.split("/")
                    if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                        fh = tgz.extractfile(member)
                        text = fh.read().decode("utf-8") if fh else None
                        break
    except (OSError, tarfile.TarError, UnicodeDecodeError) as exc:
        raise PreflightError(f"cannot read the chart at {p}: {exc}", hint="point chart.path at a chart directory "
                             "or a .tgz made by `helm package`/`helm pull`") from exc
    if text is None:
        raise PreflightError(f"no chart at {p} (no Chart.yaml)", hint="point chart.path at a chart directory "
                             "or a .tgz made by `helm package`/`helm pull`")
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PreflightError(f"{p}: Chart.yaml is not valid YAML", hint="re-download the chart") from exc
    return ChartMeta(name=str(doc.get("name", "")), version=str(doc.get("version", "")))


def _json(result: CommandResult, what: str) -> Any:
    try:
        return json.loads(result.stdout or "null")
    except ValueError as exc:
        raise HelmError(f"{what} printed something that is not JSON: {process.tail(result.stdout, 3)}",
                        hint="is this really helm 3 or 4?") from exc


def _flag(args: Sequence[str], name: str) -> str:
    for i, arg in enumerate(args[:-1]):
        if arg == name:
            return args[i + 1]
    return "?"


def _seconds(duration: str) -> float:
    """Seconds of a Go duration as helm takes it (``10m``, ``1h30m``, ``90s``)."""
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", duration):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total or 300.0
