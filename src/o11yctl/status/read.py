"""`o11yctl status`: the stack on one screen.

Helm releases, pods, volumes, the data directories' size and their filesystem's free
space (over SSH), the configured retention and, when Loki's own metrics give its
ingestion rate, how many days of logs its volume holds at that rate (the runbook's
storage-sizing arithmetic, done live). Profile scalable keeps no data on the storage node:
no volumes or directories are read there; the object store's buckets are, where the store
reports their usage (the in-cluster store's master, :mod:`o11yctl.status.buckets`). Each part
is read on its own, at the same time as the others; a part that cannot be read says why and
the rest still shows. Grafana's admin password is never read: the report says how to read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from o11yctl.config import Config, parse_duration
from o11yctl.errors import EXIT_FAILED, EXIT_OK, O11yError
from o11yctl.model import Report
from o11yctl.parallel import map_threads
from o11yctl.stack.components import Component
from o11yctl.stack.context import stack_of
from o11yctl.stack.quantity import human_bytes, quantity_bytes

if TYPE_CHECKING:
    from o11yctl.access import Access

SECTIONS: tuple[str, ...] = ("releases", "pods", "volumes", "storage", "buckets", "ingestion")
#: Loki's counter of bytes received by its distributor (log lines, uncompressed).
INGEST_METRIC = "loki_distributor_bytes_received_total"
#: Below these, a rate says nothing about how long the volume lasts: Loki has run for too short a
#: time, or received too little, for the average to mean anything.
MIN_RATE_SECONDS = 3600.0
MIN_RATE_BYTES = 1024**2
#: Beyond this many years, "days at this rate" is not a number worth printing.
MAX_YEARS = 5


# --- pure derivations ---------------------------------------------------------------------------


def human_age(seconds: float) -> str:
    """kubectl's AGE column: 45s, 12m, 5h, 3d."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _since(timestamp: str | None, now: float) -> float | None:
    if not timestamp:
        return None
    try:
        return now - datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def pod_row(pod: Mapping[str, Any], now: float) -> dict[str, Any]:
    """One pod as `kubectl get pods -o wide` shows it: node, phase, ready, restarts, age."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    waiting = [((c.get("state") or {}).get("waiting") or {}).get("reason") for c in containers]
    phase = next((w for w in waiting if w), None) or status.get("phase", "Unknown")
    age = _since(meta.get("creationTimestamp"), now)
    return {
        "name": meta.get("name", "?"),
        "node": spec.get("nodeName") or "-",
        "status": phase,
        "ready": f"{sum(1 for c in containers if c.get('ready'))}/{len(containers or spec.get('containers') or [])}",
        "restarts": sum(int(c.get("restartCount") or 0) for c in containers),
        "age": human_age(age) if age is not None else "-",
    }


def volume_row(component: Component, pv: Mapping[str, Any] | None, pvc: Mapping[str, Any] | None
               ) -> dict[str, Any]:
    """A data component's PV and PVC: capacity, phases and what the claim is bound to."""
    assert component.volume is not None
    pv_name, pvc_name = component.volume.pv, component.volume.pvc
    pv_spec, pvc_spec = (pv or {}).get("spec") or {}, (pvc or {}).get("spec") or {}
    capacity = ((pvc or {}).get("status") or {}).get("capacity", {}).get("storage") or \
        (pv_spec.get("capacity") or {}).get("storage")
    return {
        "component": component.name,
        "pv": pv_name if pv else None,
        "pv_status": ((pv or {}).get("status") or {}).get("phase") if pv else "missing",
        "pvc": pvc_name if pvc else None,
        "pvc_status": ((pvc or {}).get("status") or {}).get("phase") if pvc else "missing",
        "bound_to": pvc_spec.get("volumeName") if ((pvc or {}).get("status") or {}).get("phase") == "Bound" else None,
        "capacity": capacity,
        "capacity_bytes": quantity_bytes(capacity),
        "path": ((pv_spec.get("local") or {}).get("path")) or ((pv_spec.get("hostPath") or {}).get("path")),
    }


def parse_metric(text: str, name: str) -> float | None:
    """The sum of every sample of ``name`` in Prometheus text exposition; None when absent."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest and rest[0] not in " {":
            continue  # a longer metric name
        try:
            total += float(line.rsplit("}", 1)[-1].split()[0] if "}" in line else rest.split()[0])
            found = True
        except (ValueError, IndexError):
            continue
    return total if found else None


def ingestion(metrics: str, now: float, *, capacity_bytes: int | None, retention_days: float,
              no_capacity: str = "the size of Loki's volume is not known") -> dict[str, Any]:
    """Loki's average ingestion rate since it started, and how many days of logs its volume holds at that rate.

    The rate counts log lines as received (uncompressed); Loki stores them compressed,
    so the days the volume holds are a lower bound. ``days_held`` is a number only when it
    means something; otherwise it is None and ``days_held_reason`` says why: not enough data yet
    (Loki has run less than :data:`MIN_RATE_SECONDS`, or received less than
    :data:`MIN_RATE_BYTES`: which one is said), or more than :data:`MAX_YEARS` years
    (``days_held_over`` then holds that many days), or no ``capacity_bytes`` (``no_capacity`` says why).
    """
    received = parse_metric(metrics, INGEST_METRIC)
    started = parse_metric(metrics, "process_start_time_seconds")
    base = {"bytes_per_day": None, "since_seconds": None, "bytes_received": received, "days_held": None,
            "days_held_reason": None, "days_held_over": None, "retention_days": retention_days}
    if received is None or started is None:
        reason = "Loki's metrics do not give an ingestion rate"
        return {**base, "days_held_reason": reason, "note": reason}
    since = max(0.0, now - started)
    if since < MIN_RATE_SECONDS:
        reason = (f"not enough data yet: Loki started {human_age(since)} ago, and a rate needs at least "
                  f"{MIN_RATE_SECONDS / 3600:g} hour of it")
        return {**base, "since_seconds": since, "days_held_reason": reason, "note": reason}
    per_day = received / since * 86400
    out = {**base, "bytes_per_day": per_day, "since_seconds": since}
    if received < MIN_RATE_BYTES:
        reason = (f"not enough data yet: Loki has received {human_bytes(int(received))} in {human_age(since)}, and a "
                  f"rate needs at least {human_bytes(MIN_RATE_BYTES)}")
        return {**out, "days_held_reason": reason, "note": reason}
    if not capacity_bytes:
        reason = no_capacity
        return {**out, "days_held_reason": reason, "note": reason}
    days = capacity_bytes / per_day
    if days > MAX_YEARS * 365:
        reason = f"more than {MAX_YEARS} years at this rate"
        return {**out, "days_held_reason": reason, "days_held_over": MAX_YEARS * 365,
                "note": f"holds {reason}, retention is {retention_days:g} days"}
    note = (f"holds ~{days:.0f} days at this rate, retention is {retention_days:g} days"
            + ("" if days >= retention_days else ": the volume fills up before retention deletes"))
    return {**out, "days_held": days, "note": note}


def metrics_error(status: int, body: bytes, *, namespace: str, service: str) -> O11yError:
    """Why Loki's /metrics could not be read: the API server's own answer, read (its proxy's 503), or Loki's."""
    from o11yctl.executors.kube import read_status
    from o11yctl.verify import hints

    answer = read_status(status, body)
    if answer is None:
        return O11yError(f"Loki's /metrics answered HTTP {status}", hint="is Loki running?")
    if answer.message.startswith("no endpoints available for service"):
        hint = hints.no_endpoints("Loki", namespace)
    elif answer.message.startswith("error trying to reach service"):
        hint = hints.pod_unreachable("Loki", namespace, None)
    else:
        hint = hints.api_server_answer("Loki", namespace)
    return O11yError(f"the Kubernetes API server answered for {service}: {answer.describe()}", hint=hint)


def master_error(status: int, body: bytes, *, namespace: str, service: str) -> O11yError:
    """Why the store's master's /vol/status could not be read: the API server's own answer, read (its proxy's
    503, a missing Service), or the master's (its JSON ``{"error": ...}`` when it gives one)."""
    import json

    from o11yctl.executors.kube import read_status
    from o11yctl.verify import hints

    answer = read_status(status, body)
    if answer is None:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = None
        said = f": {doc['error']}" if isinstance(doc, dict) and isinstance(doc.get("error"), str) else ""
        return O11yError(f"the store's master answered HTTP {status} for /vol/status{said}",
                         hint=hints.store_master_answer(namespace))
    title = "the object store's master"
    if answer.message.startswith("no endpoints available for service"):
        hint = hints.store_master_no_endpoints(namespace)
    elif answer.message.startswith("error trying to reach service"):
        hint = hints.pod_unreachable(title, namespace, None)
    elif answer.reason == "NotFound":
        hint = "is the object store installed? `o11yctl install` (or `--only store`) installs it"
    else:
        hint = hints.api_server_answer(title, namespace)
    return O11yError(f"the Kubernetes API server answered for {service}: {answer.describe()}", hint=hint)


def password_command(namespace: str, secret: str) -> str:
    """How to read Grafana's admin password (the command, never the password)."""
    return (f"kubectl get secret -n {namespace} {secret} -o jsonpath='{{.data.admin-password}}' "
            "| base64 -d; echo")


# --- gathering ------------------------------------------------------------------------------------


def _section(fn: Callable[[], Any]) -> tuple[Any, str | None]:
    try:
        return fn(), None
    except O11yError as exc:
        return None, exc.message + (f" ({exc.hint})" if exc.hint else "")


def release_set(component: str, chart: str) -> dict[str, Any]:
    """Which chart set a release's chart belongs to, and the newer pin the catalog knows, if any."""
    from o11yctl.stack.catalog import SETS, newer, set_of

    name, _, version = chart.rpartition("-")
    found = set_of(component, name, version)
    pin = newer(component, name, version)
    deprecated = found is not None and SETS[found].pins[component].deprecated
    return {"set": found, "deprecated": deprecated,
            "newer": None if pin is None else {"chart": pin.chart, "version": pin.version,
                                               "app_version": pin.app_version, "repository": pin.repository}}


def read_status(cfg: Config, access: Access, *, now: Callable[[], float] = time.time) -> Report:
    """Read every part of the status at once and build the report.

    Args:
        cfg: the configuration.
        access: how to reach the cluster, helm and the storage node.
        now: the clock (for ages and rates).

    Returns:
        The report; its ``status`` extra holds every part, ``problems`` what could not be read.

    Raises:
        PreflightError: no usable kubeconfig (exit 3).
        KubeError: the cluster's API does not answer (exit 3).
    """
    from o11yctl.deploy.migrate import read_record, record_view
    from o11yctl.stack.migrate import running
    from o11yctl.status.usage import read_usage

    ns = cfg.cluster.namespace
    kube = access.kube()
    kube.server_version()  # nothing can be read when the API does not answer: that is exit 3, not a part missing
    record = read_record(cfg, kube)
    cfg = running(cfg, record)  # during a move to profile scalable: what runs now
    stack = stack_of(cfg)
    helm = access.helm()
    timeout = access.options.request_timeout
    t = now()
    releases_of_stack = {c.release for c in stack.releases}

    component_of = {c.release: c.name for c in stack.releases}

    def releases() -> list[dict[str, Any]]:
        found = helm.list_releases(ns)
        return [{"name": name, "chart": r.chart, "app_version": r.app_version, "revision": r.revision,
                 "status": r.status, "updated": r.updated[:19], **release_set(component_of[name], r.chart)}
                for name, r in sorted(found.items()) if name in releases_of_stack]

    def pods() -> list[dict[str, Any]]:
        return [pod_row(p, t) for p in sorted(kube.list("v1", "Pod", ns), key=lambda p: p["metadata"]["name"])]

    def volumes() -> list[dict[str, Any]]:
        return [volume_row(c, kube.get("v1", "PersistentVolume", c.volume.pv),
                           kube.get("v1", "PersistentVolumeClaim", c.volume.pvc, ns))
                for c in stack.data if c.volume is not None]

    def storage() -> list[dict[str, Any]]:
        return [{**u.to_json(), "used": human_bytes(u.used_bytes), "fs_size": human_bytes(u.fs_size_bytes),
                 "fs_free": human_bytes(u.fs_free_bytes)} for u in read_usage(cfg, access.ssh(), step="status")]

    loki = stack.get("loki").endpoint
    assert loki is not None

    def loki_metrics() -> str:
        status, body = kube.proxy_request(ns, loki.service, loki.port, "GET", "/metrics", timeout=timeout)
        if status != 200:
            raise metrics_error(status, bytes(body), namespace=ns, service=f"svc/{loki.service}:{loki.port}")
        return bytes(body).decode("utf-8", "replace")

    store = cfg.object_storage
    bucket_names = list(store.buckets.model_dump().values())

    def buckets() -> dict[str, Any]:
        import json

        from o11yctl.status.buckets import MASTER_PORT, MASTER_SERVICE, VOL_STATUS_PATH, external_part, in_cluster_part

        if not store.in_cluster:
            return external_part(store.endpoint, bucket_names)
        service = f"svc/{MASTER_SERVICE}:{MASTER_PORT}"
        status, body = kube.proxy_request(ns, MASTER_SERVICE, MASTER_PORT, "GET", VOL_STATUS_PATH, timeout=timeout)
        if status != 200:
            raise master_error(status, bytes(body), namespace=ns, service=service)
        try:
            doc = json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError):
            raise O11yError(f"the store's master did not answer JSON for {VOL_STATUS_PATH}",
                            hint=f"is {service} the SeaweedFS master?") from None
        return in_cluster_part(doc, bucket_names, source=f"{service}{VOL_STATUS_PATH}")

    # Profile scalable keeps nothing on the storage node: no volumes to read, no SSH to open.
    parts_to_read = {"releases": releases, "pods": pods, "volumes": volumes if stack.data else None,
                     "storage": storage if stack.data else None,
                     "buckets": buckets if cfg.profile == "scalable" else None, "ingestion": loki_metrics}
    sections = tuple((name, fn) for name, fn in parts_to_read.items() if fn is not None)
    read = map_threads(sections, lambda section: _section(section[1]), name="o11yctl-status")
    parts: dict[str, tuple[Any, str | None]] = {"volumes": ([], None), "storage": ([], None)}
    for (name, _fn), got in zip(sections, read, strict=True):
        if isinstance(got, BaseException):
            raise got
        parts[name] = got
    problems = {name: err for name, (_value, err) in parts.items() if err}
    retention = {c.name: getattr(cfg.components, c.name).retention for c in stack if c.volume or c.object_storage}
    rate = None
    if parts["ingestion"][0] is not None:
        if stack.get("loki").volume is not None and cfg.bridge_from is None:
            loki_capacity = next((v["capacity_bytes"] for v in parts["volumes"][0] or [] if v["component"] == "loki"),
                                 None) or quantity_bytes(cfg.components.loki.size)
            no_capacity = "the size of Loki's volume is not known"
        else:
            loki_capacity = None
            since = f" since {cfg.bridge_from}" if cfg.bridge_from else ""
            no_capacity = (f"Loki keeps its chunks in the object store's bucket {store.buckets.loki_chunks}{since}, "
                           "not on a volume" + (": see the buckets' usage" if store.in_cluster else ""))
        rate = ingestion(parts["ingestion"][0], now(), capacity_bytes=loki_capacity, no_capacity=no_capacity,
                         retention_days=parse_duration(cfg.components.loki.retention) / 86400)
    grafana = stack.get("grafana").endpoint
    doc = {
        "namespace": ns,
        "releases": parts["releases"][0],
        "pods": parts["pods"][0],
        "volumes": parts["volumes"][0],
        "storage": parts["storage"][0],
        **({"buckets": parts["buckets"][0]} if "buckets" in parts else {}),
        **({"migration": record_view(cfg, record)} if record is not None else {}),
        "retention": retention,
        "ingestion": rate,
        "grafana": {"url": cfg.route.url, "admin_user": "admin",
                    "password_command": password_command(ns, grafana.service if grafana else "grafana")},
        "problems": problems,
    }
    summary = "every part read" if not problems else f"could not read: {', '.join(problems)}"
    return Report("status", exit_code=EXIT_FAILED if problems else EXIT_OK, summary=summary,
                  extra={"status": doc})
