"""`o11yctl install`: preflight what the selected steps need, then walk the plan.

Only the executors the plan needs are opened: `install --only storage` opens SSH
connections and never touches the cluster; a plan without SSH steps never opens one.
The order of a run:

1. render the files (a template error stops here);
2. preflight: kubeconfig and API, helm, nodes, the storage node's label and taint,
   the Gateway, pending releases, local charts (exit 3, nothing changed);
3. connect to the nodes over SSH when the plan has storage steps;
4. read what would change; ``--diff`` stops here and reports it. Changes to objects
   or releases that already exist (made by hand, or by an earlier run with another
   configuration) are shown and need a confirmation (or ``--yes``);
5. with ``--label-nodes``, give the storage node the labels and taints the config names;
6. carry out the steps as a graph (:mod:`o11yctl.deploy.walk`): each step starts once the
   steps it depends on have finished, independent ones at the same time (the namespace
   before anything in it, a claim after its directory and volume, Loki before Alloy and
   Grafana, Tempo before Grafana, the route after Grafana); the first failure stops new
   steps from starting.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from o11yctl.deploy.walk import Callbacks, Handler, StepFailed, apply_plan
from o11yctl.errors import EXIT_FAILED, O11yError, PreflightError
from o11yctl.model import Report, StepResult, count_outcomes
from o11yctl.stack.plan import Action, Plan
from o11yctl.stack.render import render_config

if TYPE_CHECKING:
    from o11yctl.access import Access
    from o11yctl.secrets import Secret

#: Asks the user: (question, lines describing what would change) -> yes?
Confirm = Callable[[str, Sequence[str]], bool]


@dataclass(frozen=True, slots=True)
class InstallOptions:
    """What `install` was asked to do, besides the plan and how to reach the cluster."""

    diff: bool = False
    assume_yes: bool = False
    recover: bool = False
    label_nodes: bool = False
    allow_chart_mismatch: bool = False
    wait_timeout: float | None = None  # default: charts.timeout
    bind_timeout: float = 30.0
    poll_interval: float = 2.0
    #: An external object store's keys from standard input (--s3-keys-stdin), instead of $O11YCTL_S3_*.
    s3_keys: tuple[Secret, Secret] | None = None


class Declined(O11yError):
    """The user did not confirm; nothing was changed."""


def cluster_executors(plan: Plan, access: Access) -> tuple[Any, Any]:
    """The Kubernetes and helm executors the plan needs (None for those it does not).

    Raises:
        PreflightError: no usable kubeconfig (exit 3; nothing was changed).
    """
    kube = helm = None
    if plan.needs("apply") or plan.needs("helm") or plan.needs("wait"):
        try:
            kube = access.kube()
        except PreflightError as exc:
            raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
    if plan.needs("helm"):
        helm = access.helm()
    return kube, helm


def run_install(plan: Plan, access: Access, options: InstallOptions | None = None, *,
                callbacks: Callbacks | None = None, confirm: Confirm | None = None) -> Report:
    """Preflight, then carry out ``plan`` (or, with ``options.diff``, only say what it would change).

    Args:
        plan: the selected steps.
        access: how to reach the cluster, helm and the nodes.
        options: the install flags.
        callbacks: progress events.
        confirm: asks the user before existing objects or releases are changed; without it (and
            without ``assume_yes``) such a change is refused.

    Raises:
        PreflightError: something the selected steps need is missing; nothing was changed (exit 3).
        Declined: changes to existing things were not confirmed; nothing was changed.
        StepFailed: a step failed; its ``report`` says what was already done.
    """
    from o11yctl.deploy import preflight
    from o11yctl.deploy.cluster import Deployer, DeployOptions, change_lines, refusals
    from o11yctl.deploy.credentials import FROM_STDIN, with_keys

    options = options or InstallOptions()
    env = with_keys(os.environ, options.s3_keys)
    files = render_config(plan.config)
    with ExitStack() as stack:
        kube, helm = cluster_executors(plan, access)
        facts = preflight.gather(
            plan, kube, helm, recover=options.recover, label_nodes=options.label_nodes,
            allow_chart_mismatch=options.allow_chart_mismatch,
            desired_namespace_labels=_namespace_labels(plan, files),
            env=env,
        )
        deployer = Deployer(plan, kube, helm, files, DeployOptions(
            recover=options.recover, wait_timeout=options.wait_timeout, poll_interval=options.poll_interval,
            bind_timeout=options.bind_timeout), releases=facts.releases, live=dict(facts.objects), env=env,
            key_origin=FROM_STDIN if options.s3_keys is not None else None)
        stack.callback(deployer.cleanup)
        if options.diff:
            return _diff_report(deployer, facts)
        handlers: dict[Action, Handler] = {}
        if plan.needs("ssh"):
            from o11yctl.deploy.remote import prepare_storage, ssh_handler

            handlers["ssh"] = stack.enter_context(ssh_handler(plan, access, prepare_storage))
        if kube is not None:
            planned = deployer.diff()
            refused = refusals(planned)
            if refused:
                first = refused[0]
                raise O11yError(
                    f"nothing was changed: the cluster would refuse {len(refused)} change(s): {first.target}: "
                    f"{first.refused}", hint=first.lines[0] if first.lines else "see `o11yctl install --diff`")
            to_confirm = change_lines(planned)
            if facts.node_fixes and options.label_nodes:
                to_confirm += [f"node {f.node}: {c}" for f in facts.node_fixes for c in f.commands()]
            if to_confirm and not options.assume_yes and not (confirm and confirm(
                    "These existing objects and releases would change. Go on?", to_confirm)):
                raise Declined(
                    f"nothing was changed: {len(to_confirm)} existing object(s) or release(s) would change "
                    "and that was not confirmed",
                    hint="see them with `o11yctl install --diff`; re-run with --yes to go ahead")
        handlers.update({"apply": deployer.apply_step, "helm-upgrade": deployer.helm_step,
                         "wait": deployer.wait_step, "secret": deployer.secret_step, "orphan": deployer.orphan_step})
        before = _label_nodes(kube, facts.node_fixes) if options.label_nodes and facts.node_fixes else []
        try:
            report = apply_plan(plan, handlers, callbacks=callbacks)
        except StepFailed as exc:
            if before:
                exc.report = Report(exc.report.command, (*before, *exc.report.items), exc.report.exit_code)
            raise
        steps = [i for i in report.items if isinstance(i, StepResult)]
        summary = f"install finished: {count_outcomes(steps)}"
        old = deprecated_charts(plan)
        if old:
            summary += f"; {deprecation_note(old)}"
        return Report("install", items=(*before, *report.items), exit_code=0, summary=summary,
                      extra={"cluster": facts.server_version, "helm": facts.helm_version, "deprecated": old,
                             "walk_seconds": report.extra.get("walk_seconds")})


def deprecated_charts(plan: Plan) -> list[str]:
    """``tempo 1.24.4``: the plan's charts that their repository marks deprecated."""
    from o11yctl.stack.charts import resolve

    out = []
    for step in plan.steps:
        if step.helm is not None:
            chart = resolve(plan.config, step.owner)
            if chart.deprecated:
                out.append(f"{chart.name} {chart.version}")
    return out


def deprecation_note(charts: Sequence[str]) -> str:
    """The one line install says about deprecated charts, with the way out."""
    return (f"the chart repository marks {', '.join(charts)} deprecated (no more fixes from that chart); "
            "`o11yctl upgrade --to current --dry-run` shows the move to the maintained charts, data kept")


def _namespace_labels(plan: Plan, files: dict[str, str]) -> dict[str, str]:
    step = next((s for s in plan.steps if s.id == "namespace"), None)
    manifest = step.manifest if step is not None else None
    if manifest is None:
        from o11yctl.stack.context import stack_of

        manifest = stack_of(plan.config).get("namespace").manifest
    docs = [d for d in yaml.safe_load_all(files[manifest or ""]) if d]
    return dict(((docs[0] if docs else {}).get("metadata") or {}).get("labels") or {})


def _label_nodes(kube: Any, fixes: Sequence[Any]) -> list[StepResult]:
    from o11yctl.stack.nodes import apply_node_change

    return [apply_node_change(kube, fix, step=f"label-nodes.{fix.node}", component="storage") for fix in fixes]


def _diff_report(deployer: Any, facts: Any) -> Report:
    changes = deployer.diff()
    items = tuple(c.as_result() for c in changes)
    counts = {k: sum(1 for c in changes if c.outcome == k) for k in ("created", "changed", "unchanged")}
    extra_lines = [f"node {f.node}: {c}" for f in facts.node_fixes for c in f.commands()]
    refused = [c for c in changes if c.refused]
    counts["changed"] -= len(refused)
    summary = (f"diff: {counts['created']} to create, {counts['changed']} to change, {counts['unchanged']} unchanged"
               f"{f', {len(refused)} the cluster would refuse' if refused else ''}"
               f"{'; nodes: ' + '; '.join(extra_lines) if extra_lines else ''}; nothing was changed")
    error = None
    if refused:
        first = refused[0]
        error = O11yError(f"the cluster would refuse {len(refused)} change(s): {first.target}: {first.refused}",
                          hint=first.lines[0] if first.lines else None)
    return Report("install", items=items, summary=summary, exit_code=EXIT_FAILED if refused else 0, error=error,
                  extra={"diff": True, "changes": [
                      {"step": c.step_id, "target": c.target, "outcome": c.outcome, "lines": list(c.lines),
                       "exists": c.exists, "adopted": c.adopted, "refused": c.refused} for c in changes]})


# --- the dry run ---------------------------------------------------------------------------------


def _objects(text: str) -> list[str]:
    out = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        meta = doc.get("metadata", {})
        name = meta.get("name", "?")
        if meta.get("namespace"):
            name = f"{meta['namespace']}/{name}"
        out.append(f"{doc.get('kind', '?')} {name}")
    return out


def dry_run_report(plan: Plan) -> Report:
    """The plan as a report for `install --dry-run`: every step `skipped` (nothing runs).

    The manifests are rendered (offline) so the plan can name every object it would apply.
    """
    files = render_config(plan.config)
    steps = []
    for n, s in enumerate(plan.steps, 1):
        lines = s.display_lines()
        objects = _objects(files[s.manifest]) if s.manifest else []
        if objects:
            lines = [*lines, *(f"  {o}" for o in objects)]
        steps.append({
            "n": n, "id": s.id, "component": s.component, "kind": s.kind, "description": s.description,
            "host": s.host, "commands": lines, "manifest": s.manifest, "objects": objects,
            "helm_argv": list(s.helm.argv()) if s.helm else None, "depends_on": list(s.depends_on),
        })
    items = tuple(
        StepResult(id=s.id, component=s.component, outcome="skipped", host=s.host, detail=s.description)
        for s in plan.steps
    )
    from o11yctl.deploy.walk import LIMIT

    old = deprecated_charts(plan)
    note = f"; {deprecation_note(old)}" if old else ""
    return Report("install", items=items,
                  summary=f"dry run: {len(plan.steps)} steps planned; nothing was contacted or changed{note}",
                  extra={"dry_run": True, "namespace": plan.config.cluster.namespace, "plan": steps,
                         "parallel": LIMIT, "deprecated": old})
