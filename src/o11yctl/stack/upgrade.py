"""Moving an installed stack from one chart set to another: the order, the plan and the data rules. Pure.

One release at a time, each followed by a readiness wait and its verify checks, in an
order where a release is upgraded only after the releases it depends on: Loki and Tempo
(they hold the data; a failure there stops the run before anything that reads them
changed), then Alloy (which ships to Loki), then Grafana (which queries both). Releases
whose chart and values already match are left alone, so a re-run changes nothing.

Whether the target versions can read the data already written is decided from facts
kept with their sources in the catalog (:data:`o11yctl.stack.catalog.DATA_FORMATS`), against what the cluster and the
storage node show: Loki's schema periods (from the live release's values) and Tempo's
block versions (from the blocks' ``meta.json`` on the storage node).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from o11yctl.config import Config
from o11yctl.errors import UsageError
from o11yctl.stack.catalog import DATA_FORMATS, ORDER, SETS, ChartPin
from o11yctl.stack.components import Component, Stack
from o11yctl.stack.context import stack_of
from o11yctl.stack.plan import Plan, ReadyCheck, Step, helm_release


@dataclass(frozen=True, slots=True)
class ReleaseMove:
    """One release's move: its chart and app version before and after."""

    component: str
    release: str
    before: ChartPin | None  # None: the release is not installed from a known pin
    after: ChartPin

    @property
    def changes_chart(self) -> bool:
        return self.before is None or (self.before.chart, self.before.version) != (self.after.chart, self.after.version)

    def describe(self) -> str:
        if self.before is None:
            return f"{self.release}: to chart {self.after.chart} {self.after.version} (app {self.after.app_version})"
        if not self.changes_chart:
            return f"{self.release}: chart {self.after.chart} {self.after.version} stays"
        return (f"{self.release}: chart {self.before.chart} {self.before.version} (app {self.before.app_version}) "
                f"-> {self.after.chart} {self.after.version} (app {self.after.app_version})")


def target_config(cfg: Config, to_set: str) -> Config:
    """``cfg`` with its chart set replaced by ``to_set`` (per-component overrides kept).

    Raises:
        UsageError: no such set.
    """
    if to_set not in SETS:
        raise UsageError(f"--to: unknown chart set {to_set!r}", hint=f"choose from: {', '.join(SETS)}")
    return cfg.model_copy(update={"charts": cfg.charts.model_copy(update={"set": to_set})})


def upgrade_order(stack: Stack) -> list[Component]:
    """The releases, each after every release it depends on; data components first among equals."""
    releases = [c for c in stack if c.release]
    names = {c.name for c in releases}
    done: list[Component] = []
    while len(done) < len(releases):
        ready = [c for c in releases if c not in done
                 and all(a in {d.name for d in done} for a in c.after if a in names)]
        ready.sort(key=lambda c: (c.volume is None, releases.index(c)))
        done.append(ready[0])
    return done


def moves(cfg: Config, to_set: str, installed: Mapping[str, tuple[str, str]] | None = None) -> list[ReleaseMove]:
    """Each release's move to ``to_set``, in upgrade order.

    Args:
        cfg: the configuration (its ``charts.set`` is where the stack is assumed to be now).
        to_set: the target set.
        installed: release -> (chart, version) as the cluster has it; without it, the
            config's own set is assumed (what ``--dry-run`` shows offline).
    """
    target = SETS[to_set]
    here = SETS[cfg.charts.set]
    out = []
    for c in upgrade_order(stack_of(cfg)):
        assert c.release is not None
        after = target.pin(c.name)
        before: ChartPin | None = here.pin(c.name)
        if installed is not None:
            chart = installed.get(c.release)
            before = _known_pin(c.name, chart) if chart else None
        out.append(ReleaseMove(c.name, c.release, before, after))
    return out


def _known_pin(component: str, chart: tuple[str, str]) -> ChartPin | None:
    for s in SETS.values():
        pin = s.pins.get(component)
        if pin is not None and (pin.chart, pin.version) == chart:
            return pin
    return None


def data_refusals(move: ReleaseMove, found: Sequence[str] = ()) -> list[str]:
    """Why ``move`` would leave data the new version cannot read (empty: none).

    Args:
        move: one release's move.
        found: the formats the data on disk or the live config shows (``schema v13``,
            ``block vParquet4``); what the old version writes is assumed present too.
    """
    formats = DATA_FORMATS.get(move.component)
    if not formats or move.before is None or not move.changes_chart:
        return []
    new = formats.get(move.after.app_version)
    old = formats.get(move.before.app_version)
    if new is None or old is None:
        return [f"{move.release}: o11yctl has no record of what {move.component} {move.after.app_version} reads "
                f"or {move.before.app_version} writes, so it cannot vouch for the data"]
    present = sorted(set(found) | old.writes)
    unreadable = [f for f in present if f not in new.reads]
    if not unreadable:
        return []
    return [f"{move.release}: {move.component} {move.after.app_version} cannot read {', '.join(unreadable)} "
            f"(written by the installed version or found on disk; {new.source})"]


def data_notes(move: ReleaseMove) -> list[str]:
    """What the move means for stored data, in words (for --dry-run and --diff)."""
    formats = DATA_FORMATS.get(move.component)
    if not formats or move.before is None or not move.changes_chart:
        return []
    new = formats.get(move.after.app_version)
    old = formats.get(move.before.app_version)
    if new is None or old is None:
        return []
    written = ", ".join(sorted(old.writes))
    going_back = set(new.writes) <= old.reads
    return [f"{move.release}: {move.component} {move.after.app_version} reads what {move.before.app_version} wrote "
            f"({written}) in place; no data is converted, nothing is one-way"
            + ("" if going_back else f" except: {move.component} {move.before.app_version} cannot read "
               f"{', '.join(sorted(new.writes - old.reads))}, which the new version writes")]


def is_downgrade(from_set: str, to_set: str) -> bool:
    return ORDER.index(to_set) < ORDER.index(from_set)


def build_upgrade_plan(cfg: Config, to_set: str) -> Plan:
    """The upgrade as steps: per release, ``upgrade.<name>`` then ``ready.<name>``, one after another.

    The plan is built on the target configuration (its values files, its pins); the wait
    steps carry the release's readiness path, and the executor runs the release's verify
    checks after it.
    """
    target = target_config(cfg, to_set)
    stack = stack_of(target)
    steps: list[Step] = []
    previous: tuple[str, ...] = ()
    for move, c in zip(moves(cfg, to_set), upgrade_order(stack), strict=True):
        ready: tuple[ReadyCheck, ...] = ()
        if c.endpoint is not None and c.endpoint.ready_path:
            ready = (ReadyCheck(c.title, c.endpoint.service, c.endpoint.port, c.endpoint.ready_path),)
        steps.append(Step(f"upgrade.{c.name}", c.name, "helm-upgrade", move.describe(), helm=helm_release(target, c),
                          depends_on=previous, owner=c.name))
        waits = [f"pods of release {c.release} Running and Ready", *(r.describe() for r in ready),
                 f"`o11yctl verify --only {c.name}` passes"]
        steps.append(Step(f"ready.{c.name}", c.name, "wait", f"{c.title} ready and verified after the upgrade",
                          waits_for=tuple(waits), ready=ready, depends_on=(f"upgrade.{c.name}",), owner=c.name))
        previous = (f"ready.{c.name}",)
    return Plan(config=target, steps=tuple(steps), selected=tuple(c.name for c in upgrade_order(stack)))
