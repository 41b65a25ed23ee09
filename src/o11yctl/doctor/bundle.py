"""`o11yctl doctor --bundle FILE.tar.gz`: what a maintainer asks for, in one file, without secrets.

The bundle holds pod logs and previous logs, events, helm status and values (when helm
is available), PV, PVC, node, pod, service and ConfigMap descriptions, doctor's findings,
and o11yctl's config and version. It never holds a Secret object or a Helm release record
(Secrets of type ``helm.sh/release.v1``: they carry the values, gzip- and base64-encoded).

Before anything is written, every known secret value is collected in memory: the data of
every Secret in the namespace (Grafana's admin password among them), secret-looking values
inside Helm's release records and ``helm get values`` (``adminPassword``, ``token``...),
secret-looking environment values of the pods, and the values the caller knows (the sudo
password, ``O11YCTL_GRAFANA_TOKEN``). Documents (objects, values, the config) are
redacted as data before they are written as YAML or JSON (values under secret-like keys
of Helm values and the config, and every known value inside any string), so quoting,
folding and escaping cannot hide a secret; then every file is scrubbed of all of them in
plain, base64 and URL-encoded forms (see :mod:`o11yctl.doctor.scrub`). ``MANIFEST.txt``
says what is in the bundle and, under "Left out", every item that could not be collected and
why: a log the API server could not give (grouped by the nodes whose kubelet it could not
reach, with the dial error), a list it refused, helm's status and values.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import os
import platform
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from o11yctl import __version__
from o11yctl.config import Config
from o11yctl.doctor.facts import KubeReader, LogFailure, PodFacts, fetch_log
from o11yctl.doctor.rules import Finding
from o11yctl.doctor.scrub import NOT_SECRET_KEYS, SECRET_KEYS, Scrubber, redact, secret_like_values
from o11yctl.errors import EXIT_UNREACHABLE, O11yError, PathError, UsageError
from o11yctl.stack.context import stack_of

#: Secrets of this type are Helm's release records.
HELM_RELEASE_TYPE = "helm.sh/release.v1"
#: Log lines per container (and per previous run) in the bundle.
BUNDLE_LOG_LINES = 2000
_DROPPED_METADATA = ("managedFields",)


class HelmReader(Protocol):
    """What the bundle needs of :class:`o11yctl.executors.helm.Helm`."""

    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        """``helm status -o json``, or None."""
        ...

    def get_values(self, release: str, namespace: str) -> dict[str, Any]:
        """``helm get values -o json``."""
        ...


@dataclass(frozen=True, slots=True)
class BundleResult:
    """What was written: the file, its members, how many secret values were scrubbed, and what was left out."""

    path: Path
    members: tuple[str, ...]
    secret_values: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Doc:
    """A document to write once every secret is known: redacted as data, then dumped."""

    data: Any
    fmt: str = "yaml"  # "yaml", "yaml-list" (one document per item) or "json"
    by_key: bool = False  # also redact values under secret-like keys (values, config)
    drop_status: tuple[str, ...] = ()
    header: str = ""  # a comment above the document

    def render(self, scrubber: Scrubber) -> str:
        data = redact(self.data, scrubber, by_key=self.by_key)
        if self.fmt == "json":
            return json.dumps(data, indent=2) + "\n"
        if self.fmt == "yaml-list":
            return _yaml_list(data, self.drop_status)  # type: ignore[arg-type]
        return self.header + _yaml(data)


@dataclass
class _Collected:
    files: dict[str, str | _Doc] = field(default_factory=dict)
    secrets: list[str | bytes] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_bundle(path: Path, *, cfg: Config, kube: KubeReader, helm: HelmReader | None, findings: Sequence[Finding],
                 known_secrets: Iterable[str] = (), config_source: str = "", helm_problem: str | None = None,
                 server_version: str = "") -> BundleResult:
    """Collect the bundle from the cluster and write it, scrubbed, as a tar.gz.

    Args:
        path: the file to write (``.tar.gz``); written atomically, mode 0600.
        cfg: the configuration (written into the bundle).
        kube: the Kubernetes API.
        helm: helm, or None when it is not available (``helm_problem`` says why).
        findings: doctor's findings (written into the bundle).
        known_secrets: values to scrub besides the ones found in the cluster (sudo password, tokens).
        config_source: where the config came from, for the record.
        helm_problem: why helm is not available.
        server_version: the API server's version.

    Returns:
        What was written.

    Raises:
        UsageError: the path is not a writable ``.tar.gz`` file name.
        KubeError: the cluster cannot be reached.
    """
    if not (path.name.endswith(".tar.gz") or path.name.endswith(".tgz")):
        raise UsageError(f"--bundle {path}: expected a file name ending in .tar.gz",
                         hint="for example --bundle o11yctl-doctor.tar.gz")
    if path.parent and not path.parent.is_dir():
        raise UsageError(f"--bundle {path}: the directory {path.parent} does not exist",
                         hint="create it first, or write the bundle elsewhere")
    got = _Collected()
    got.secrets += [s for s in known_secrets if s]
    ns = cfg.cluster.namespace
    _collect_secret_values(kube, ns, got)
    _collect_o11yctl(cfg, config_source, server_version, findings, got)
    _collect_cluster(kube, ns, got)
    _collect_helm(helm, helm_problem, cfg, got)
    scrubber = Scrubber(got.secrets)
    members = sorted(got.files)
    files = {name: f.render(scrubber) if isinstance(f, _Doc) else f for name, f in got.files.items()}
    files["MANIFEST.txt"] = _manifest(members, got.notes, len(scrubber))
    return _write(path, files, scrubber, got.notes)


# --- collecting -------------------------------------------------------------------------------


def _collect_secret_values(kube: KubeReader, namespace: str, got: _Collected) -> None:
    """Learn every Secret value in the namespace (kept in memory only; never written)."""
    try:
        secrets = kube.list("v1", "Secret", namespace)
    except O11yError as exc:  # e.g. not allowed to read Secrets: values under secret-like keys are still scrubbed
        got.notes.append(f"could not read the Secrets of {namespace} to scrub their values: {exc.message}")
        return
    for secret in secrets:
        got.secrets += secret_values(secret)


def secret_values(secret: Mapping[str, Any]) -> list[str | bytes]:
    """The values a Secret holds (``data`` decoded, ``stringData``), and for a Helm release record also
    the secret-looking values inside the release's config.

    Args:
        secret: a Secret object as the API returns it.

    Returns:
        The values, as text where they are UTF-8, else as bytes.
    """
    out: list[str | bytes] = []
    for key, value in (secret.get("stringData") or {}).items():
        if not NOT_SECRET_KEYS.search(str(key)) and value:
            out.append(str(value))
    for key, value in (secret.get("data") or {}).items():
        if NOT_SECRET_KEYS.search(str(key)) or not value:
            continue
        try:
            raw = base64.b64decode(str(value), validate=False)
        except (binascii.Error, ValueError):
            continue
        out.append(_text_or_bytes(raw))
        if secret.get("type") == HELM_RELEASE_TYPE and key == "release":
            out += release_secret_values(raw)
    return out


def release_secret_values(record: bytes) -> list[str | bytes]:
    """Secret-looking values in a Helm release record (``base64(gzip(JSON))``), from its config.

    Args:
        record: the Secret's ``release`` value, already decoded once from the Secret's base64.

    Returns:
        The values under keys like ``adminPassword``, ``token`` or ``secret``; empty when undecodable.
    """
    try:
        data = base64.b64decode(record, validate=False)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        release = json.loads(data)
    except (binascii.Error, ValueError, OSError, EOFError):
        return []
    if not isinstance(release, dict):
        return []
    return list(secret_like_values(release.get("config") or {}))


def _text_or_bytes(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _collect_o11yctl(cfg: Config, source: str, server_version: str, findings: Sequence[Finding],
                     got: _Collected) -> None:
    got.files["o11yctl/version.txt"] = (
        f"o11yctl {__version__}\npython {platform.python_version()}\nplatform {platform.platform()}\n"
        f"kubernetes {server_version or 'unknown'}\ncollected {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
    )
    header = f"# o11yctl's configuration, from {source}\n" if source else ""
    got.files["o11yctl/config.yaml"] = _Doc(cfg.model_dump(mode="json"), by_key=True, header=header)
    got.files["doctor/findings.json"] = _Doc([f.to_json() for f in findings], "json")


def _listed(kube: KubeReader, got: _Collected, file: str, kind: str, namespace: str | None = None,
            ) -> list[dict[str, Any]] | None:
    """Every object of a kind, or None with a note saying why it could not be read (the API down: raised)."""
    try:
        return kube.list("v1", kind, namespace)
    except O11yError as exc:
        if exc.exit_code == EXIT_UNREACHABLE:
            raise
        got.notes.append(f"{file}: not collected: {exc.message}")
        return None


def _collect_cluster(kube: KubeReader, ns: str, got: _Collected) -> None:
    nodes = _listed(kube, got, "cluster/nodes.yaml", "Node")
    if nodes is not None:
        got.files["cluster/nodes.yaml"] = _Doc(nodes, "yaml-list", drop_status=("images",))
    volumes = _listed(kube, got, "cluster/persistentvolumes.yaml", "PersistentVolume")
    if volumes is not None:
        got.files["cluster/persistentvolumes.yaml"] = _Doc(volumes, "yaml-list")
    if kube.get("v1", "Namespace", ns) is None:
        got.notes.append(f"the namespace {ns} does not exist: no pods, events or logs to collect")
        return
    pods = _listed(kube, got, f"{ns}/pods.yaml", "Pod", ns)
    for pod in pods or []:
        got.secrets += _env_secrets(pod)
    if pods is not None:
        got.files[f"{ns}/pods.yaml"] = _Doc(pods, "yaml-list")
    else:
        got.notes.append(f"{ns}/logs: no pod logs collected: the pods could not be listed")
    for file, kind in (("persistentvolumeclaims.yaml", "PersistentVolumeClaim"), ("services.yaml", "Service"),
                       ("configmaps.yaml", "ConfigMap")):
        listed = _listed(kube, got, f"{ns}/{file}", kind, ns)
        if listed is not None:
            got.files[f"{ns}/{file}"] = _Doc(listed, "yaml-list")
    events = _listed(kube, got, f"{ns}/events.yaml", "Event", ns)
    if events is not None:
        events = sorted(events, key=_event_time)
        got.files[f"{ns}/events.yaml"] = _Doc(events, "yaml-list")
        got.files[f"{ns}/events.txt"] = "".join(_event_line(e) + "\n" for e in events) or "(no events)\n"
    failures: list[LogFailure] = []
    for pod in pods or []:
        name = str((pod.get("metadata") or {}).get("name", ""))
        status = pod.get("status") or {}
        statuses = {str(s.get("name")): s for s in [*(status.get("initContainerStatuses") or []),
                                                    *(status.get("containerStatuses") or [])]}
        spec = pod.get("spec") or {}
        facts = PodFacts(name=name, node=spec.get("nodeName") or None)
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            cname = str(container.get("name", ""))
            restarts = int((statuses.get(cname) or {}).get("restartCount") or 0)
            for previous in (False, True) if restarts else (False,):
                text = fetch_log(kube, ns, facts, cname, previous=previous, tail_lines=BUNDLE_LOG_LINES)
                if isinstance(text, LogFailure):
                    failures.append(text)
                elif text is not None:
                    suffix = ".previous.log" if previous else ".log"
                    got.files[f"{ns}/logs/{name}/{cname}{suffix}"] = text
    got.notes += missing_logs(failures)


def missing_logs(failures: Sequence[LogFailure]) -> list[str]:
    """The MANIFEST's lines for logs the API server did not give: the kubelets it could not reach, grouped, and
    every other refusal with its message."""
    out: list[str] = []
    unreached = [f for f in failures if f.kubelet is not None]
    if unreached:
        pods = sorted({f.pod for f in unreached})
        nodes = sorted({f.node or (f.kubelet.host if f.kubelet else "?") for f in unreached})
        dials = sorted({f.kubelet.text for f in unreached if f.kubelet})
        out.append(f"logs of {len(pods)} pod{'s' if len(pods) > 1 else ''} ({', '.join(pods)}): the API server could "
                   f"not reach the kubelet{'s' if len(nodes) > 1 else ''} on {', '.join(nodes)} ({'; '.join(dials)}); "
                   "see doctor's kubelet.unreachable finding")
    out += [f"log of {f.what}: {f.message}" for f in failures if f.kubelet is None]
    return out


def _collect_helm(helm: HelmReader | None, problem: str | None, cfg: Config, got: _Collected) -> None:
    ns = cfg.cluster.namespace
    if helm is None:
        got.notes.append(f"helm status and values not collected: {problem or 'helm is not available'}")
        return
    for release in (c.release for c in stack_of(cfg).releases if c.release):
        try:
            status = helm.status(release, ns)
            if status is None:
                got.notes.append(f"helm release {release} not found in {ns}")
                continue
            values = helm.get_values(release, ns)
        except O11yError as exc:
            got.notes.append(f"helm status/values of {release} not collected: {exc.message}")
            continue
        got.secrets += secret_like_values(status.get("config") or {})
        got.secrets += secret_like_values(values)
        got.files[f"helm/{release}/status.json"] = _Doc(_release_summary(status), "json")
        got.files[f"helm/{release}/values.yaml"] = _Doc(values, by_key=True)


def _release_summary(status: Mapping[str, Any]) -> dict[str, Any]:
    """``helm status -o json`` without the rendered manifest, hooks and chart files (the manifest holds
    rendered Secrets)."""
    chart = status.get("chart") or {}
    return {
        "name": status.get("name"),
        "namespace": status.get("namespace"),
        "version": status.get("version"),
        "info": {k: v for k, v in (status.get("info") or {}).items() if k != "resources"},
        "chart": {"metadata": chart.get("metadata")} if chart else None,
    }


def _env_secrets(pod: Mapping[str, Any]) -> list[str | bytes]:
    out: list[str | bytes] = []
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for env in container.get("env") or []:
            if SECRET_KEYS.search(str(env.get("name", ""))) and env.get("value"):
                out.append(str(env["value"]))
    return out


def _clean(obj: Mapping[str, Any], drop_status: Sequence[str] = ()) -> dict[str, Any]:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    for key in _DROPPED_METADATA:
        meta.pop(key, None)
    out["metadata"] = meta
    if drop_status and isinstance(out.get("status"), dict):
        out["status"] = {k: v for k, v in out["status"].items() if k not in drop_status}
    return out


def _yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, width=1_000_000, allow_unicode=True)


def _yaml_list(items: Sequence[Mapping[str, Any]], drop_status: Sequence[str] = ()) -> str:
    if not items:
        return "[]\n"
    return "".join("---\n" + _yaml(_clean(i, drop_status)) for i in items)


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or
               (event.get("metadata") or {}).get("creationTimestamp") or "")


def _event_line(event: Mapping[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    return (f"{_event_time(event)}  {event.get('type', '')}  {event.get('reason', '')}  "
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}  x{event.get('count') or 1}  "
            f"{event.get('message', '')}")


def _manifest(members: Sequence[str], notes: Sequence[str], scrubbed: int) -> str:
    lines = [
        f"o11yctl doctor support bundle (o11yctl {__version__})",
        "",
        "Never included: Secret objects and Helm release records (Secrets of type helm.sh/release.v1).",
        f"Known secret values were replaced by [REDACTED] in every file ({scrubbed} plain, base64 and URL-encoded "
        "forms).",
        "",
        "Files:",
        *(f"  {m}" for m in members),
    ]
    if notes:
        lines += ["", "Left out:", *(f"  {n}" for n in notes)]
    return "\n".join(lines) + "\n"


# --- writing ----------------------------------------------------------------------------------


def check_target(path: Path) -> None:
    """Refuse a ``--bundle`` path that cannot be written, before anything is collected.

    Raises:
        PathError: the path is a directory, its parent is missing or not a directory, or
            the parent is not writable (exit 2).
    """
    import errno

    parent = path.resolve().parent
    problem: OSError | None = None
    if path.is_dir():
        problem = IsADirectoryError(errno.EISDIR, "is a directory")
    elif not parent.exists():
        problem = FileNotFoundError(errno.ENOENT, f"directory {parent.name} does not exist")
    elif not parent.is_dir():
        problem = NotADirectoryError(errno.ENOTDIR, f"{parent.name} is not a directory")
    else:
        try:  # the one honest test: read-only mounts and ACLs answer only to a real attempt
            fd, probe = tempfile.mkstemp(prefix=".o11yctl-bundle-", suffix=".probe", dir=parent)
        except OSError as exc:
            problem = exc
        else:
            os.close(fd)
            os.unlink(probe)
    if problem is not None:
        raise PathError.of("--bundle", path, problem)


def _write(path: Path, files: Mapping[str, str], scrubber: Scrubber, notes: Sequence[str]) -> BundleResult:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    root = f"o11yctl-doctor-{stamp}"
    now = time.time()
    target = path.resolve()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".o11yctl-bundle-", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise PathError.of("--bundle", path, exc) from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in sorted(files):
                text = files[name]
                for _ in range(3):  # a replacement can only shrink the text; stop once nothing is left
                    if not scrubber.contains_secret(text):
                        break
                    text = scrubber.text(text)
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"{root}/{name}")
                info.size = len(data)
                info.mtime = int(now)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return BundleResult(path=target, members=tuple(f"{root}/{n}" for n in sorted(files)),
                        secret_values=len(scrubber), notes=tuple(notes))
