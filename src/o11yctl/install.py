"""`o11yctl install`: preflight what the selected steps need, then walk the plan.

Only the executors the plan needs are created: `install --only storage` opens
SSH connections and never touches the cluster; a plan without SSH steps never
opens one. The order of a run:

1. render the files (a template error stops here);
2. preflight: kubeconfig and API, helm, nodes, the storage node's label and taint,
   the Gateway, pending releases, local charts (exit 3, nothing changed);
3. connect to the nodes over SSH when the plan has storage steps;
4. read what would change; ``--diff`` stops here and reports it. Changes to objects
   or releases that already exist (made by hand, or by an earlier run with another
   configuration) are shown and need a confirmation (or ``--yes``);
5. with ``--label-nodes``, add the storage node's missing label and taint;
6. carry out the steps in order, stopping at the first failure.

Steps run one after another, never concurrently: each depends on the one before
(the PVC needs the namespace, Loki its PVC, Alloy and Grafana Loki's service), and
helm's ``--wait`` already waits for the slow part.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from o11yctl.apply import Callbacks, Handler, StepFailed, apply_plan
from o11yctl.errors import O11yError, PreflightError
from o11yctl.model import Report, StepResult, count_outcomes
from o11yctl.plan import MANIFEST_FILES, Plan, StepKind

#: Asks the user: (question, lines describing what would change) -> yes?
Confirm = Callable[[str, Sequence[str]], bool]


@dataclass(frozen=True, slots=True)
class InstallOptions:
    """Everything `install` takes besides the plan."""

    diff: bool = False
    assume_yes: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    accept_new_host_keys: bool = False
    sudo_password: Any = None
    recover: bool = False
    label_nodes: bool = False
    allow_chart_mismatch: bool = False
    json_output: bool = False
    helm_binary: str | None = None  # default: $O11YCTL_HELM, else `helm` on PATH
    wait_timeout: float | None = None  # default: charts.timeout
    bind_timeout: float = 30.0
    poll_interval: float = 2.0
    request_timeout: float = 30.0


class Declined(O11yError):
    """The user did not confirm; nothing was changed."""


def helm_binary(options: InstallOptions) -> str:
    """The helm to run: the option, else ``$O11YCTL_HELM``, else ``helm`` from PATH."""
    return options.helm_binary or os.environ.get("O11YCTL_HELM") or "helm"


def connect_cluster(plan: Plan, options: InstallOptions, stack: ExitStack) -> tuple[Any, Any]:
    """The Kubernetes and helm executors the plan needs (None for those it does not)."""
    kinds = {s.kind for s in plan.steps}
    kube = helm = None
    if kinds & {"apply", "helm", "wait"}:
        from o11yctl.executors.kube import connect

        try:
            kube = connect(options.kubeconfig, options.context, timeout=options.request_timeout)
        except PreflightError as exc:
            raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
        stack.callback(kube.close)
    if "helm" in kinds:
        from o11yctl.executors.helm import Helm

        helm = Helm(helm_binary(options), kubeconfig=str(options.kubeconfig) if options.kubeconfig else None,
                    context=options.context)
    return kube, helm


def run_install(plan: Plan, options: InstallOptions, *, callbacks: Callbacks | None = None,
                confirm: Confirm | None = None) -> Report:
    """Preflight, then carry out ``plan`` (or, with ``options.diff``, only say what it would change).

    Args:
        plan: the selected steps.
        options: the install flags.
        callbacks: progress events.
        confirm: asks the user before existing objects or releases are changed; without it (and
            without ``assume_yes``) such a change is refused.

    Raises:
        PreflightError: something the selected steps need is missing; nothing was changed (exit 3).
        Declined: changes to existing things were not confirmed; nothing was changed.
        StepFailed: a step failed; its ``report`` says what was already done.
    """
    from o11yctl import preflight
    from o11yctl.deploy import Deployer, DeployOptions, change_lines
    from o11yctl.render import render_config

    files = render_config(plan.config)
    kinds = {s.kind for s in plan.steps}
    with ExitStack() as stack:
        kube, helm = connect_cluster(plan, options, stack)
        facts = preflight.gather(
            plan, kube, helm, recover=options.recover, label_nodes=options.label_nodes,
            allow_chart_mismatch=options.allow_chart_mismatch,
            desired_namespace_labels=_namespace_labels(files),
        )
        deployer = Deployer(plan, kube, helm, files, DeployOptions(
            recover=options.recover, wait_timeout=options.wait_timeout, poll_interval=options.poll_interval,
            bind_timeout=options.bind_timeout), releases=facts.releases, live=dict(facts.objects))
        stack.callback(deployer.cleanup)
        if options.diff:
            return _diff_report(deployer, facts)
        handlers: dict[StepKind, Handler] = {}
        if "ssh" in kinds:
            from o11yctl.storage import storage_handler

            handlers["ssh"] = stack.enter_context(storage_handler(plan, options))
        if kube is not None:
            to_confirm = change_lines(deployer.diff())
            if facts.node_fixes and options.label_nodes:
                to_confirm += [f"node {f.node}: {c}" for f in facts.node_fixes for c in f.commands()]
            if to_confirm and not options.assume_yes and not (confirm and confirm(
                    "These existing objects and releases would change. Go on?", to_confirm)):
                raise Declined(
                    f"nothing was changed: {len(to_confirm)} existing object(s) or release(s) would change "
                    "and that was not confirmed",
                    hint="see them with `o11yctl install --diff`; re-run with --yes to go ahead")
        handlers.update({"apply": deployer.apply_step, "helm": deployer.helm_step, "wait": deployer.wait_step})
        before = _label_nodes(kube, facts.node_fixes) if options.label_nodes and facts.node_fixes else []
        try:
            report = apply_plan(plan, handlers, callbacks=callbacks)
        except StepFailed as exc:
            if before:
                exc.report = Report(exc.report.command, (*before, *exc.report.items), exc.report.exit_code)
            raise
        steps = [i for i in report.items if isinstance(i, StepResult)]
        summary = f"install finished: {count_outcomes(steps)}"
        return Report("install", items=(*before, *report.items), exit_code=0, summary=summary,
                      extra={"cluster": facts.server_version, "helm": facts.helm_version})


def _namespace_labels(files: dict[str, str]) -> dict[str, str]:
    docs = [d for d in yaml.safe_load_all(files[MANIFEST_FILES["namespace"]]) if d]
    return dict(((docs[0] if docs else {}).get("metadata") or {}).get("labels") or {})


def _label_nodes(kube: Any, fixes: Sequence[Any]) -> list[StepResult]:
    from o11yctl.nodes import apply_node_change

    return [apply_node_change(kube, fix, step=f"label-nodes.{fix.node}", component="storage") for fix in fixes]


def _diff_report(deployer: Any, facts: Any) -> Report:
    changes = deployer.diff()
    items = tuple(c.as_result() for c in changes)
    counts = {k: sum(1 for c in changes if c.outcome == k) for k in ("created", "changed", "unchanged")}
    extra_lines = [f"node {f.node}: {c}" for f in facts.node_fixes for c in f.commands()]
    summary = (f"diff: {counts['created']} to create, {counts['changed']} to change, {counts['unchanged']} unchanged"
               f"{'; nodes: ' + '; '.join(extra_lines) if extra_lines else ''}; nothing was changed")
    return Report("install", items=items, summary=summary,
                  extra={"diff": True, "changes": [
                      {"step": c.step_id, "target": c.target, "outcome": c.outcome, "lines": list(c.lines),
                       "exists": c.exists, "adopted": c.adopted} for c in changes]})
