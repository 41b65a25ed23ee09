"""`o11yctl migrate`: move a single-node install to profile scalable, in two stages one retention apart.

What each stage does, and why, is in :mod:`o11yctl.stack.migrate`. This module reads where the move
stands (the single-node claims, the record ConfigMap, the releases' values) and runs the stage due
through the install machinery (:func:`o11yctl.deploy.install.run_install`: preflight, diff,
confirmation, the step graph):

- no record, or a bridge not yet complete (Loki or Tempo not yet on its bridge values): the bridge
  stage, with the recorded day while it is still usable;
- bridged, the retention not yet passed since that day: nothing is changed (exit 1), the report says
  when the move can finish, and ``--early`` finishes it now;
- bridged and due (or ``--early``): the finish stage, then the record says ``finished``;
- finished: nothing to do; the report names what was kept.

Nothing of the single-node install's data is deleted by either stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from o11yctl.config import Config
from o11yctl.deploy.preflight import record_in
from o11yctl.errors import EXIT_FAILED, HelmError, O11yError, PreflightError, UsageError
from o11yctl.model import Report, StepResult
from o11yctl.stack.migrate import (
    CLAIMS,
    MOVED,
    RECORD,
    Record,
    Stage,
    bridged_releases,
    finish_after,
    finish_plan,
    leftovers,
    next_day,
    stage_lines,
    stage_of,
)
from o11yctl.stack.plan import Plan, build_plan

if TYPE_CHECKING:
    from o11yctl.access import Access
    from o11yctl.deploy.walk import Callbacks
    from o11yctl.secrets import Secret

Confirm = Callable[[str, Sequence[str]], bool]


@dataclass(frozen=True, slots=True)
class MigrateOptions:
    """What ``migrate`` was asked to do."""

    early: bool = False  # --early: finish before the retention has passed
    assume_yes: bool = False
    recover: bool = False
    wait_timeout: float | None = None
    poll_interval: float = 2.0
    s3_keys: tuple[Secret, Secret] | None = None  # --s3-keys-stdin


@dataclass(frozen=True, slots=True)
class Position:
    """Where the move of a namespace stands, as read from the cluster."""

    stage: Stage
    day: str
    claims: tuple[str, ...]
    bridged: tuple[str, ...] = ()


def check_profile(cfg: Config) -> None:
    """``migrate`` takes the configuration of where the stack goes: profile scalable."""
    if cfg.profile != "scalable":
        raise UsageError("migrate moves a single-node install to profile scalable: give it the profile scalable "
                         "configuration (profile: scalable, charts.set: current, object_storage), same namespace "
                         "and storage node as the installed stack",
                         hint="`o11yctl init --out scalable.yaml` documents the keys; examples/scalable.yaml is one; "
                              "then `o11yctl migrate -c scalable.yaml --dry-run`")


def read_position(cfg: Config, kube: Any, helm: Any, now: datetime, *, early: bool = False) -> Position:
    """Read the claims, the record and the releases' values; say which stage is due.

    Raises:
        PreflightError: nothing to move (no single-node install and no record), or the install runs
            charts of another set (exit 3, nothing changed).
    """
    from o11yctl.stack.catalog import set_of

    ns = cfg.cluster.namespace
    claims = tuple(c for c in CLAIMS if kube.get("v1", "PersistentVolumeClaim", c, ns) is not None)
    record = record_in(kube, ns)
    if record is None and not claims:
        raise PreflightError(f"nothing to move: namespace {ns} holds no single-node install (no claim "
                             f"{' or '.join(CLAIMS)}) "
                             "and no record of a move; nothing was changed",
                             hint="is cluster.namespace the installed stack's? A new stack needs no move: "
                                  "`o11yctl install` with this configuration")
    if record is not None and record.stage == "finished":
        return Position("finished", record.s3_from, claims or record.claims)
    if record is not None and record.stage == "finishing":  # interrupted: go on finishing
        return Position("finish", record.s3_from, claims or record.claims)
    releases = helm.list_releases(ns)
    wrong = {name: r.chart for name, r in releases.items() if name in MOVED
             and set_of(name, *r.chart.rpartition("-")[::2]) != "current"}
    if wrong and record is None:
        raise PreflightError(
            f"the single-node install runs {', '.join(f'{n} {c}' for n, c in sorted(wrong.items()))}, not the "
            "chart set current the move is made on; nothing was changed",
            hint="first `o11yctl upgrade --to current` with the single-node configuration (charts.set: current), "
                 "then `o11yctl migrate`")
    values = {name: helm.get_values(name, ns) for name in MOVED if name in releases}
    day = record.s3_from if record is not None else ""
    bridged = tuple(bridged_releases(values, day)) if day else ()
    if record is None or set(bridged) != set(MOVED):
        return Position("bridge", next_day(record, bridged, now), claims, bridged)
    return Position(stage_of(cfg, record, now, early=early), record.s3_from, claims, bridged)


def stage_plan(cfg: Config, position: Position) -> Plan:
    """The plan of the stage due (the finish stage's when waiting: what `--early` would do)."""
    if position.stage == "bridge":
        return build_plan(cfg.bridged(position.day))
    return finish_plan(cfg, position.day)


def describe(cfg: Config, position: Position, now: datetime) -> dict[str, Any]:
    """The move's position for the report (``extra.migration``)."""
    after = finish_after(cfg, position.day)
    stage = position.stage
    return {
        "stage": stage,
        "s3_from": position.day,
        "finish_after": after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "claims": list(position.claims),
        "bridged": list(position.bridged),
        "lines": stage_lines(cfg, stage, day=position.day, now=now),
        "kept": leftovers(cfg, position.claims),
    }


def dry_run(cfg: Config, access: Access | None, *, stage: str | None, early: bool,
            now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Report:
    """The plan of the stage due (read from the cluster), or of ``stage`` offline."""
    from o11yctl.deploy.install import dry_run_report
    from o11yctl.stack.migrate import bridge_day

    check_profile(cfg)
    t = now()
    if stage is not None:
        claims = CLAIMS
        position = Position("bridge" if stage == "bridge" else "finish", bridge_day(t), claims)
    else:
        assert access is not None
        position = read_position(cfg, access.kube(), access.helm(), t, early=early)
    info = describe(cfg, position, t)
    if position.stage == "finished":
        return Report("migrate", summary=f"namespace {cfg.cluster.namespace} was moved to profile scalable (Loki "
                                         f"on the bucket since {position.day}); nothing to do",
                      extra={"dry_run": False, "migration": info})
    report = dry_run_report(stage_plan(cfg, position))
    summary = {"bridge": "stage 1 of 2 (bridge)", "waiting": "not yet due: stage 2 of 2 (finish) after "
               f"{info['finish_after']}; with --early", "finish": "stage 2 of 2 (finish)"}[position.stage]
    return Report("migrate", items=report.items, summary=f"{summary}: {report.summary}",
                  extra={**report.extra, "migration": info})


def run_migrate(cfg: Config, access: Access, options: MigrateOptions | None = None, *,
                callbacks: Callbacks | None = None, confirm: Confirm | None = None,
                now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Report:
    """Run the stage due.

    Raises:
        UsageError: the configuration is not profile scalable (exit 2).
        PreflightError: nothing to move, or something the stage needs is missing (exit 3).
        Declined: not confirmed; nothing was changed.
        StepFailed: a step failed; its report says what was done. A re-run goes on from there.
    """
    from o11yctl.deploy.install import InstallOptions, run_install

    options = options or MigrateOptions()
    check_profile(cfg)
    t = now()
    kube = access.kube()
    try:
        position = read_position(cfg, kube, access.helm(), t, early=options.early)
    except HelmError as exc:
        raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
    info = describe(cfg, position, t)
    ns = cfg.cluster.namespace
    if position.stage == "finished":
        return Report("migrate", summary=f"namespace {ns} was moved to profile scalable (Loki on the bucket since "
                                         f"{position.day}); nothing to do", extra={"migration": info})
    if position.stage == "waiting":
        return Report("migrate", exit_code=EXIT_FAILED, extra={"migration": info},
                      summary=f"not yet: Loki still reads logs from before {position.day} from the single-node volume "
                              f"until {info['finish_after']}; nothing was changed",
                      error=O11yError(f"the move can finish after {info['finish_after']} (the bucket period's start, "
                                      f"{position.day}, plus Loki's retention, {cfg.components.loki.retention})",
                                      hint="re-run `o11yctl migrate` then; `--early` finishes now, and logs from "
                                           f"before {position.day} stay on the volume but are no longer shown"))
    title = "stage 1 of 2 (bridge)" if position.stage == "bridge" else "stage 2 of 2 (finish)"

    def ask(question: str, lines: Sequence[str]) -> bool:
        return confirm is not None and confirm(f"Move namespace {ns} to profile scalable, {title}: "
                                               f"{question}", [*info["lines"], *lines])

    plan = stage_plan(cfg, position)
    report = run_install(plan, access, InstallOptions(
        assume_yes=options.assume_yes, recover=options.recover, wait_timeout=options.wait_timeout,
        poll_interval=options.poll_interval, s3_keys=options.s3_keys),
        callbacks=callbacks, confirm=ask)
    items = list(report.items)
    if position.stage == "bridge":
        summary = (f"{title} done: Loki writes to the bucket from {position.day} (UTC), Tempo now; "
                   f"`o11yctl migrate` finishes the move after {info['finish_after']}")
    else:
        done = Record("finished", position.day, position.claims, t.strftime("%Y-%m-%dT%H:%M:%SZ"))
        result = kube.apply_manifest(done.manifest(ns))
        items.append(StepResult("migration.record", "migration",
                                "created" if result.outcome == "created" else "changed",
                                f"ConfigMap {ns}/{RECORD}: finished"))
        summary = (f"{title} done: profile scalable installed; the single-node data is kept: "
                   + "; ".join(info["kept"]))
    return Report("migrate", items=tuple(items), summary=summary,
                  extra={**{k: v for k, v in report.extra.items() if k in ("cluster", "helm", "walk_seconds")},
                         "migration": {**info, "stage": "bridged" if position.stage == "bridge" else "finished"}})


def read_record(cfg: Config, kube: Any) -> Record | None:
    """The namespace's migration record, for a profile scalable config (None without one, or when it cannot
    be read: the caller's own reads say why)."""
    if cfg.profile != "scalable" or kube is None:
        return None
    try:
        return record_in(kube, cfg.cluster.namespace)
    except O11yError:
        return None


def record_view(cfg: Config, record: Record | None) -> dict[str, Any] | None:
    """A migration record as status shows it."""
    if record is None:
        return None
    return {"stage": record.stage, "s3_from": record.s3_from,
            "finish_after": finish_after(cfg, record.s3_from).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "claims": list(record.claims), "finished": record.finished}
