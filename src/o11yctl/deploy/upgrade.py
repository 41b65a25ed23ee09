"""`o11yctl upgrade --to SET`: move the installed releases to another chart set, data kept.

1. ``--dry-run`` (offline): per release, the chart and app versions before and after
   (the config's set is taken as installed), the rendered values that change, what the
   move means for stored data, and the steps.
2. preflight (exit 3, nothing changed): the API and helm answer; every release is
   installed, deployed and not pending; each data claim is Bound; Loki's schema periods
   in the live release are kept by the new values and readable by the new Loki; over SSH,
   Tempo's blocks are in formats the new Tempo reads, and the storage node's disk has
   room (:data:`MIN_FREE_BYTES` and :data:`MIN_FREE_SHARE` of the volumes).
3. ``--diff`` stops here and reports, with the live values against the new ones.
4. one release at a time (:func:`o11yctl.stack.upgrade.upgrade_order`): ``helm upgrade``
   with the same PersistentVolumes and claims (they are not part of any release), then
   the release's pods Ready, its ``/ready`` and its verify checks. A release that fails
   is rolled back to the revision it had, and nothing after it is touched.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from o11yctl.config import Config
from o11yctl.deploy.walk import Callbacks, Handler, StepFailed, apply_plan
from o11yctl.errors import EXIT_FAILED, HelmError, O11yError, PreflightError
from o11yctl.model import Report, StepResult
from o11yctl.stack.catalog import SETS
from o11yctl.stack.context import data_dir, stack_of
from o11yctl.stack.plan import Action, Plan, Step
from o11yctl.stack.render import render_config
from o11yctl.stack.upgrade import ReleaseMove, build_upgrade_plan, data_notes, data_refusals, moves, target_config

if TYPE_CHECKING:
    from o11yctl.access import Access

#: The storage node's disk must keep this much room for the first start of the new
#: versions (WAL replay, compaction, index uploads)...
MIN_FREE_BYTES = 1 << 30
#: ...and at least this share of the data volumes' sizes.
MIN_FREE_SHARE = 0.05

Confirm = Callable[[str, Sequence[str]], bool]


@dataclass(frozen=True, slots=True)
class UpgradeOptions:
    to_set: str
    diff: bool = False
    assume_yes: bool = False
    wait_timeout: float | None = None
    poll_interval: float = 2.0
    verify_timeout: float = 120.0


# --- what changes (pure) -----------------------------------------------------------------------------


def values_diff(name: str, before: str, after: str) -> list[str]:
    """A unified diff of two values texts, comments and key order aside."""
    def norm(text: str) -> list[str]:
        doc = yaml.safe_load(text) or {}
        return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False).splitlines()

    return list(difflib.unified_diff(norm(before), norm(after), f"{name} (installed)", f"{name} (after)",
                                     lineterm="", n=1))


def _move_doc(move: ReleaseMove, diff: Sequence[str], refusals: Sequence[str]) -> dict[str, Any]:
    def pin(p: Any) -> dict[str, str] | None:
        return None if p is None else {"chart": p.chart, "version": p.version, "app_version": p.app_version,
                                       "repository": p.repository}
    return {"release": move.release, "component": move.component, "before": pin(move.before),
            "after": pin(move.after), "changes_chart": move.changes_chart, "values_diff": list(diff),
            "data": data_notes(move), "refused": list(refusals)}


def dry_run_report(cfg: Config, to_set: str) -> Report:
    """The whole upgrade, offline: the config's set is taken as what is installed."""
    target = target_config(cfg, to_set)
    before, after = render_config(cfg), render_config(target)
    plan = build_upgrade_plan(cfg, to_set)
    docs = []
    for move in moves(cfg, to_set):
        values = stack_of(cfg).get(move.component).values
        assert values is not None
        docs.append(_move_doc(move, values_diff(values, before[values], after[values]), data_refusals(move)))
    items = tuple(StepResult(s.id, s.component, "skipped", s.description) for s in plan.steps)
    return Report("upgrade", items=items,
                  summary=f"dry run: {cfg.charts.set} -> {to_set}, {len(plan.steps)} steps planned; nothing was "
                          "contacted or changed",
                  extra={"dry_run": True, "from": cfg.charts.set, "to": to_set, "releases": docs,
                         "plan": _plan_doc(plan)})


def _plan_doc(plan: Plan) -> list[dict[str, Any]]:
    return [{"n": n, "id": s.id, "component": s.component, "description": s.description,
             "commands": s.display_lines(), "depends_on": list(s.depends_on)} for n, s in enumerate(plan.steps, 1)]


# --- preflight ----------------------------------------------------------------------------------------


@dataclass
class Found:
    """What the cluster and the storage node show before the upgrade."""

    releases: dict[str, Any]
    live_values: dict[str, dict[str, Any]]
    formats: dict[str, list[str]]  # component -> formats found (schema v13, block vParquet4)
    problems: list[tuple[str, str]]


def _installed(releases: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    out = {}
    for name, rel in releases.items():
        chart, _, version = str(rel.chart).rpartition("-")
        out[name] = (chart, version)
    return out


def loki_schemas(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The schema periods in a Loki release's values (``loki.schemaConfig.configs``)."""
    configs = (((values.get("loki") or {}).get("schemaConfig") or {}).get("configs")) or []
    return [dict(c) for c in configs if isinstance(c, Mapping)]


def judge_schemas(live: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> str | None:
    """A period already in use must stay as it is: Loki reads old data by the period it was written in."""
    by_start = {str(p.get("from")): p for p in new}
    for period in live:
        start = str(period.get("from"))
        if by_start.get(start) != period:
            return (f"the new values change Loki's schema period from {start} ({period.get('store')}, "
                    f"{period.get('schema')}); data written under it would no longer be found")
    return None


def _gather(cfg: Config, target: Config, plan: Plan, kube: Any, helm: Any, pool: Any,
            files: Mapping[str, str]) -> Found:
    from o11yctl.executors.ssh import ssh_target
    from o11yctl.stack.quantity import quantity_bytes
    from o11yctl.status.usage import read_usage

    ns = cfg.cluster.namespace
    stack = stack_of(cfg)
    problems: list[tuple[str, str]] = []
    releases = helm.list_releases(ns)
    live_values: dict[str, dict[str, Any]] = {}
    for c in stack.releases:
        assert c.release is not None
        rel = releases.get(c.release)
        if rel is None:
            problems.append((f"release {ns}/{c.release} is not installed: there is nothing to upgrade",
                             "install it first: o11yctl install"))
        elif rel.pending:
            problems.append((f"release {ns}/{c.release} is {rel.status}: an earlier helm run was interrupted",
                             "roll it back first: o11yctl install --recover (or helm rollback)"))
        elif rel.status != "deployed":
            problems.append((f"release {ns}/{c.release} is {rel.status}, not deployed",
                             f"see why: helm history {c.release} -n {ns}; fix it, then upgrade"))
        else:
            live_values[c.release] = helm.get_values(c.release, ns)
    for c in stack.data:
        assert c.volume is not None
        pvc = kube.get("v1", "PersistentVolumeClaim", c.volume.pvc, ns)
        phase = ((pvc or {}).get("status") or {}).get("phase", "missing")
        if phase != "Bound":
            problems.append((f"PersistentVolumeClaim {ns}/{c.volume.pvc} is {phase}, not Bound",
                             "`o11yctl doctor` names the cause; the upgrade keeps the same claims and needs them "
                             "bound"))
    formats: dict[str, list[str]] = {}
    if stack.has("loki") and "loki" in live_values:
        live = loki_schemas(live_values["loki"])
        new = loki_schemas(yaml.safe_load(files[stack.get("loki").values or ""]) or {})
        formats["loki"] = sorted({f"schema {p.get('schema')}" for p in live})
        changed = judge_schemas(live, new)
        if changed:
            problems.append((changed, "keep the live schemaConfig in the values; add a new period starting in "
                                      "the future for any schema change"))
    target_ssh = ssh_target(cfg.storage_node)
    if stack.has("tempo"):
        formats["tempo"] = tempo_block_formats(pool, target_ssh, data_dir(cfg, "tempo"))
    usage = read_usage(cfg, pool, step="upgrade preflight")
    sizes = sum(quantity_bytes(getattr(cfg.components, c.name).size) or 0 for c in stack.data)
    frees = [u.fs_free_bytes for u in usage if u.fs_free_bytes is not None]
    free = min(frees) if frees else None
    need = max(MIN_FREE_BYTES, int(sizes * MIN_FREE_SHARE))
    if free is None:
        problems.append((f"could not read the free space under {cfg.storage.root} on {cfg.storage.node}",
                         "check that df works there over SSH"))
    elif free < need:
        problems.append((f"{cfg.storage.node} has {free >> 20} MiB free under {cfg.storage.root}; the upgrade wants "
                         f"at least {need >> 20} MiB for the new versions' first start",
                         "make room on that disk (o11yctl status shows what the data uses), then upgrade"))
    return Found(releases, live_values, formats, problems)


def tempo_block_formats(pool: Any, target: Any, path: str) -> list[str]:
    """The block formats of Tempo's blocks on disk (``"format"`` in each block's meta.json)."""
    import json

    argv = ("find", f"{path}/traces", "-mindepth", "3", "-maxdepth", "3", "-name", "meta.json", "-type", "f",
            "-exec", "cat", "--", "{}", "+")
    result = pool.run(target, argv, step="upgrade preflight")
    if not result.ok and "Permission denied" in result.stderr:
        result = pool.run(target, argv, sudo=True, step="upgrade preflight")
    if not result.ok and "No such file or directory" in result.stderr:
        return []
    if not result.ok:
        raise O11yError(f"could not read Tempo's block list under {path} on {target.name}: "
                        f"{(result.stderr.strip().splitlines() or ['exit ' + str(result.exit_code)])[-1]}",
                        hint="check sudo on the storage node", exit_code=3)
    found: set[str] = set()
    decoder = json.JSONDecoder()
    text, index = result.stdout, 0
    while True:  # the files, one after the other: a stream of JSON objects
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            break
        try:
            doc, index = decoder.raw_decode(text, index)
        except ValueError:
            break
        if isinstance(doc, dict) and doc.get("format"):
            found.add(f"block {doc['format']}")
    return sorted(found)


# --- the run ------------------------------------------------------------------------------------------


def run_upgrade(cfg: Config, access: Access, options: UpgradeOptions, *, callbacks: Callbacks | None = None,
                confirm: Confirm | None = None) -> Report:
    """Preflight, then upgrade release by release (or, with ``diff``, only say what would change).

    Raises:
        PreflightError: something is missing or unsafe; nothing was changed (exit 3).
        StepFailed: a release failed and was rolled back; the report says what was done.
    """
    from o11yctl.deploy.cluster import Deployer, DeployOptions
    from o11yctl.deploy.install import cluster_executors

    target = target_config(cfg, options.to_set)
    plan = build_upgrade_plan(cfg, options.to_set)
    files = render_config(target)
    with ExitStack() as stack:
        kube, helm = cluster_executors(plan, access)
        try:
            kube.server_version()
        except O11yError as exc:
            raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
        helm.version()
        from o11yctl.deploy.remote import connect_all
        from o11yctl.executors.ssh import ssh_target

        pool = access.ssh()
        connect_all(pool, [ssh_target(cfg.storage_node)])
        found = _gather(cfg, target, plan, kube, helm, pool, files)
        installed = _installed(found.releases)
        all_moves = moves(cfg, options.to_set, installed)
        refusals = [r for m in all_moves for r in data_refusals(m, found.formats.get(m.component, ()))]
        problems = found.problems + [(r, "stay on the installed set, or move the data away first") for r in refusals]
        docs = []
        for move in all_moves:
            comp = stack_of(cfg).get(move.component)
            assert comp.values is not None
            live = yaml.safe_dump(found.live_values.get(move.release, {}))
            docs.append(_move_doc(move, values_diff(comp.values, live, files[comp.values]),
                                  data_refusals(move, found.formats.get(move.component, ()))))
        extra: dict[str, Any] = {"from": sorted({s for m in all_moves if m.before for s in _sets_of(m)}),
                                 "to": options.to_set, "releases": docs, "found": found.formats}
        if problems:
            message = "; ".join(p for p, _ in problems)
            raise PreflightError(f"preflight: {message}; nothing was changed", hint=problems[0][1])
        if options.diff:
            changing = [m for m in all_moves if m.changes_chart]
            return Report("upgrade", items=(), summary=f"upgrade --to {options.to_set} would change "
                          f"{len(changing)} release(s): {', '.join(m.release for m in changing) or 'none'}",
                          extra={**extra, "diff": True})
        lines = [m.describe() for m in all_moves if m.changes_chart]
        if lines and not options.assume_yes and not (confirm and confirm(
                f"Upgrade {len(lines)} release(s) to the {options.to_set} set?", lines)):
            raise O11yError("nothing was changed: the upgrade was not confirmed",
                            hint="see it first with `o11yctl upgrade --to SET --diff`; --yes skips the question")
        deployer = Deployer(plan, kube, helm, files, DeployOptions(
            wait_timeout=options.wait_timeout, poll_interval=options.poll_interval), releases=found.releases)
        stack.callback(deployer.cleanup)
        previous = {name: rel.revision for name, rel in found.releases.items()}
        handlers: dict[Action, Handler] = {
            "helm-upgrade": lambda step: _upgrade_step(deployer, helm, step, previous),
            "wait": lambda step: _ready_step(deployer, access, target, helm, step, previous, options),
        }
        report = apply_plan(plan, handlers, callbacks=callbacks, command="upgrade")
    changed = [i.id.split(".", 1)[1] for i in report.items
               if isinstance(i, StepResult) and i.id.startswith("upgrade.") and i.outcome != "unchanged"]
    summary = (f"upgraded to the {options.to_set} set: {', '.join(changed)}" if changed
               else f"already on the {options.to_set} set: nothing to change")
    return Report("upgrade", items=report.items, summary=summary, extra=extra)


def _sets_of(move: ReleaseMove) -> list[str]:
    assert move.before is not None
    return [s.name for s in SETS.values() if s.pins.get(move.component) == move.before]


def _rollback(helm: Any, step: Step, previous: Mapping[str, int], why: str) -> str:
    assert step.helm is not None
    release = step.helm
    revision = previous.get(release.release)
    if not revision:
        return f"{why}; no earlier revision to roll back to"
    try:
        helm.rollback(release.release, release.namespace, revision, timeout=release.timeout)
    except HelmError as exc:
        return f"{why}; the rollback to revision {revision} failed too: {exc.message}"
    return f"{why}; rolled back to revision {revision}"


def _upgrade_step(deployer: Any, helm: Any, step: Step, previous: Mapping[str, int]) -> StepResult:
    try:
        return deployer.helm_step(step)  # type: ignore[no-any-return]
    except HelmError as exc:
        raise HelmError(_rollback(helm, step, previous, exc.message), hint=exc.hint) from exc


def _ready_step(deployer: Any, access: Access, target: Config, helm: Any, step: Step, previous: Mapping[str, int],
                options: UpgradeOptions) -> StepResult:
    """The release's pods Ready, its readiness path, then its verify group; a failure rolls the release back."""
    from o11yctl.verify.run import VerifyOptions, run_verify

    upgraded = step.owner
    component = stack_of(target).get(upgraded)
    release = component.release or upgraded
    upgrade_step = deployer.plan.step(f"upgrade.{upgraded}")
    try:
        detail = deployer.wait_release(release, step)
        report = run_verify(target, access, VerifyOptions(only=[upgraded], timeout=options.verify_timeout))
    except O11yError as exc:
        raise O11yError(_rollback(helm, upgrade_step, previous, f"{release} did not become ready: {exc.message}"),
                        hint=exc.hint, exit_code=EXIT_FAILED) from exc
    failed = [i for i in report.items if getattr(i, "status", "") == "FAIL"]
    if failed:
        first = failed[0]
        why = f"{release} is up but `verify --only {upgraded}` fails: {first.id}: {first.detail}"
        raise O11yError(_rollback(helm, upgrade_step, previous, why), hint=getattr(first, "hint", None),
                        exit_code=EXIT_FAILED)
    passed = sum(1 for i in report.items if getattr(i, "status", "") == "PASS")
    return StepResult(step.id, step.component, "unchanged", f"{detail}; verify --only {upgraded}: {passed} passed")


__all__ = ["StepFailed", "UpgradeOptions", "dry_run_report", "run_upgrade"]
