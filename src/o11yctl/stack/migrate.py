"""Moving a single-node install to profile scalable, as data. Pure: no I/O.

Neither Loki's nor Tempo's chart has a migration mode for this move: Loki's chart's migration
modes (``SingleBinary<->SimpleScalable``, ``SimpleScalable<->Distributed``) move between
deployment modes on the same object store, and both profiles run Loki monolithic. What Loki
documents for a new store is a new schema period: from a future day on, it writes to the new
store and keeps reading each older day from the store of its period. So the move has two stages,
one retention apart:

1. **bridge**: the single-node install stays where it is (its pods on the storage node, its claims,
   its data) and gets the object store beside it (the in-cluster store, or the external one's keys):
   Loki with a second schema period, ``object_store: s3`` from the next UTC day (:func:`bridge_day`),
   Tempo with its blocks in the bucket (the traces on the volume are no longer shown: Tempo reads one
   backend). A ConfigMap (:data:`RECORD`, the stage's component ``migration``) records the day before Loki
   and Tempo are upgraded, so a re-run keeps it. Its plan is the install plan of ``Config.bridged``.
2. **finish**, once the retention has passed since that day (:func:`finish_after`), or earlier when the
   user accepts that older logs are no longer shown: Loki's and Tempo's StatefulSets are deleted with
   propagation ``Orphan`` (their volume claim templates change, a field the API server refuses to
   update; the pods keep serving until the new ones replace them), then the profile scalable install
   runs as always. The record says ``finishing`` before anything changes (a re-run after an
   interruption goes on finishing, whatever the time) and ``finished`` at the end.

The old claims, volumes and directories are never deleted: the summary names them and how to delete
them once the user is satisfied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from o11yctl.config import Config, parse_duration
from o11yctl.stack.components import MIGRATION_RECORD, stack_for
from o11yctl.stack.plan import Plan, Step, build_plan

#: The ConfigMap that records a migration in the stack's namespace.
RECORD = MIGRATION_RECORD
#: The day Loki's bucket period starts must be at least this far ahead (Loki's ingesters cut their
#: chunks at the period's start; a period starting in minutes could begin before every pod runs the
#: new config).
MIN_LEAD = timedelta(hours=1)
#: What moves: the single-node data components (Loki, Tempo), whose StatefulSets (named after their releases)
#: change their claims between the profiles.
MOVED = tuple(c.name for c in stack_for("single-node").data)
#: The single-node claims the move keeps.
CLAIMS = tuple(c.volume.pvc for c in stack_for("single-node").data if c.volume is not None)

Stage = Literal["bridge", "waiting", "finish", "finished"]


@dataclass(frozen=True, slots=True)
class Record:
    """What the ConfigMap :data:`RECORD` holds."""

    stage: Literal["bridged", "finishing", "finished"]
    s3_from: str  # YYYY-MM-DD (UTC)
    claims: tuple[str, ...] = ()
    finished: str | None = None  # when the finish stage ended (ISO 8601, UTC)

    @classmethod
    def of(cls, obj: Mapping[str, Any] | None) -> Record | None:
        """The record of a ConfigMap as the API returns it; None without one (or when it is not ours)."""
        data = (obj or {}).get("data") or {}
        stage, day = data.get("stage"), data.get("s3-from")
        if stage not in ("bridged", "finishing", "finished") or not isinstance(day, str):
            return None
        try:
            date.fromisoformat(day)
        except ValueError:
            return None
        claims = tuple(c for c in str(data.get("claims") or "").split(",") if c)
        return cls(stage, day, claims, data.get("finished") or None)

    def manifest(self, namespace: str) -> dict[str, Any]:
        """The ConfigMap that holds this record."""
        data = {"stage": self.stage, "s3-from": self.s3_from, "claims": ",".join(self.claims)}
        if self.finished:
            data["finished"] = self.finished
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": RECORD, "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": "o11yctl"}},
                "data": data}


def bridge_day(now: datetime) -> str:
    """The first UTC day Loki writes to the bucket: tomorrow, or the day after when tomorrow starts in
    less than :data:`MIN_LEAD`."""
    now = now.astimezone(UTC)
    day = now.date() + timedelta(days=1)
    if datetime.combine(day, time(), UTC) - now < MIN_LEAD:
        day += timedelta(days=1)
    return day.isoformat()


def finish_after(cfg: Config, s3_from: str) -> datetime:
    """When no log is read from the volume any more: the bucket period's start plus Loki's retention."""
    start = datetime.combine(date.fromisoformat(s3_from), time(), UTC)
    return start + timedelta(seconds=parse_duration(cfg.components.loki.retention))


def stage_of(cfg: Config, record: Record | None, now: datetime, *, early: bool = False) -> Stage:
    """Where the move of this namespace stands.

    Args:
        cfg: the (profile scalable) configuration.
        record: the migration record, if any.
        now: the time.
        early: finish before the retention has passed.
    """
    if record is None:
        return "bridge"
    if record.stage == "finished":
        return "finished"
    if record.stage == "finishing" or early or now >= finish_after(cfg, record.s3_from):
        return "finish"
    return "waiting"


def finish_plan(cfg: Config, day: str) -> Plan:
    """The second stage: the record says finishing (so a re-run after an interruption goes on finishing),
    Loki's and Tempo's StatefulSets are released (propagation Orphan), then the profile scalable install as
    always."""
    plan = build_plan(cfg.finishing(day))
    ns = cfg.cluster.namespace
    orphans = {name: Step(f"migration.release.{name}", name, "orphan",
                          f"delete StatefulSet {ns}/{name}, its pods and claims kept (propagation Orphan): its "
                          "volume claim templates change, which the API server does not update",
                          target=f"StatefulSet {ns}/{name}", depends_on=("namespace", "migration"), owner=name)
               for name in MOVED}
    steps: list[Step] = []
    for s in plan.steps:
        if s.action == "helm-upgrade" and s.owner in orphans:
            steps.append(orphans[s.owner])
            s = dataclasses.replace(s, depends_on=(*s.depends_on, orphans[s.owner].id))
        steps.append(s)
    return dataclasses.replace(plan, steps=tuple(steps))


def leftovers(cfg: Config, claims: Sequence[str]) -> list[str]:
    """What the move keeps of the single-node install, and how to delete it once satisfied."""
    ns = cfg.cluster.namespace
    out = []
    for c in stack_for("single-node").data:
        if c.volume is None or c.volume.pvc not in claims:
            continue
        path = f"{cfg.storage.root}/{c.volume.directory}"  # the config keeps the root without a final "/"
        out.append(f"{c.title}'s old data: claim {ns}/{c.volume.pvc}, volume {c.volume.pv}, {path} on "
                   f"{cfg.storage.node}; once satisfied: kubectl delete pvc -n {ns} {c.volume.pvc} && kubectl "
                   f"delete pv {c.volume.pv}, then remove the directory on the node")
    return out


def stage_lines(cfg: Config, stage: Stage, *, day: str, now: datetime) -> list[str]:
    """What a stage does, in the words the plan and the confirmation show."""
    retention = cfg.components.loki.retention
    after = finish_after(cfg, day)
    if stage == "bridge":
        return [
            f"Loki keeps its volume and writes to the bucket from {day} (UTC); logs before that day are read "
            "from the volume as before",
            "Tempo writes its blocks to the bucket from now on; the traces on its volume are no longer shown "
            "(they stay on the volume)",
            f"after {after:%Y-%m-%d %H:%M} UTC (that day plus the retention, {retention}) `o11yctl migrate` "
            "finishes the move",
        ]
    if stage in ("finish", "waiting"):
        lines = [f"Loki and Tempo move to profile scalable: {cfg.components.loki.replicas} Loki replica(s) on the "
                 "bucket, Tempo on the bucket; their StatefulSets are replaced (pods and claims kept until then)"]
        if now < after:
            lines.append(f"finishing before {after:%Y-%m-%d %H:%M} UTC: logs from before {day} stay on the "
                         "volume and are no longer shown")
        return lines
    return []


def bridged_releases(values: Mapping[str, Mapping[str, Any]], day: str) -> list[str]:
    """Which releases already run the bridge stage's values (``helm get values``, by release): Loki with the
    bucket period from ``day``, Tempo with its blocks on S3."""
    out = []
    configs = (((values.get("loki") or {}).get("loki") or {}).get("schemaConfig") or {}).get("configs") or []
    if any(str(c.get("from")) == day and c.get("object_store") == "s3" for c in configs if isinstance(c, Mapping)):
        out.append("loki")
    trace = ((((values.get("tempo") or {}).get("tempo") or {}).get("storage") or {}).get("trace") or {})
    if trace.get("backend") == "s3":
        out.append("tempo")
    return out


def next_day(record: Record | None, bridged: Sequence[str], now: datetime) -> str:
    """The day the bridge stage gives Loki's bucket period: the recorded one while Loki has not started on it
    and it is still ahead (or once Loki runs with it: it is then fixed); else a new one."""
    first = bridge_day(now)
    if record is not None and ("loki" in bridged or record.s3_from >= first):  # ISO days sort as days
        return record.s3_from
    return first


def running(cfg: Config, record: Record | None) -> Config:
    """The configuration a namespace runs: while a move's bridge stage lasts, the profile scalable one as
    ``migrate`` bridged it (the single-node pods beside the object store), so status, verify and doctor
    judge what runs instead of the replicas still to come."""
    if cfg.profile == "scalable" and cfg.bridge_from is None and record is not None and record.stage == "bridged":
        return cfg.bridged(record.s3_from)
    return cfg
