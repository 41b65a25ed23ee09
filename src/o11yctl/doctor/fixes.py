"""The fixes doctor applies itself, each shown before it runs and confirmed (or ``--yes``).

Only fixes that are safe to repeat and touch nothing but what the finding names:

- :class:`~o11yctl.doctor.rules.ChownDir`: ``sudo chown -R UID:GID DIR`` (after ``mkdir -p``
  when the directory is missing) on the storage node over SSH, then ``stat`` to confirm;
- :class:`~o11yctl.stack.nodes.NodeChange`: a merge patch of one node's labels and taints through
  the Kubernetes API (the one rule install's ``--label-nodes`` follows too), then a check of
  what the API returned;
- :class:`~o11yctl.doctor.rules.RunFixVxlan`: `o11yctl fix-vxlan` (open UDP 8472 between the
  nodes, and restart K3s only if the overlay still fails and that is confirmed);
- :class:`~o11yctl.doctor.kubelet.OpenKubeletPort`: on one node, accept TCP 10250 from the K3s
  server's address only, with fix-vxlan's firewall code, then read the firewall again to confirm.

Every fix ends as a :class:`~o11yctl.model.StepResult`: ``changed`` when it was applied and
confirmed, ``skipped`` when it was declined, ``failed`` with the reason otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from o11yctl.doctor.facts import CommandRunner
from o11yctl.doctor.kubelet import OpenKubeletPort
from o11yctl.doctor.rules import ChownDir, Finding, FixAction, RunFixVxlan
from o11yctl.errors import O11yError
from o11yctl.model import SshTarget, StepResult
from o11yctl.stack.nodes import NodeChange, NodePatcher, apply_node_change

#: Shows one line to the user (the UI's stderr).
Show = Callable[[str], None]
#: Asks a yes/no question; False without a terminal unless --yes.
Confirm = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class FixTools:
    """The executors fixes may use; a missing one makes its fixes fail with the reason."""

    kube: NodePatcher | None = None
    ssh: CommandRunner | None = None
    ssh_target: Callable[[str], SshTarget] | None = None  # node name -> how to reach it
    fix_vxlan: Callable[[], StepResult] | None = None
    open_kubelet_port: Callable[[OpenKubeletPort], tuple[str, str]] | None = None  # -> (outcome, detail)
    no_ssh_reason: str = "no SSH access to the nodes"


def apply_fixes(findings: Sequence[Finding], tools: FixTools, *, confirm: Confirm, show: Show,
                assume_yes: bool = False) -> dict[str, StepResult]:
    """Apply the fix of every finding that has one, once per distinct fix.

    Args:
        findings: the findings, in report order.
        tools: the executors.
        confirm: asks before each fix (not called with ``assume_yes``).
        show: shows each fix before it runs.
        assume_yes: apply without asking.

    Returns:
        The result of each finding's fix, by ``"<id> <subject>"`` (see :func:`finding_key`).
    """
    done: dict[str, StepResult] = {}
    out: dict[str, StepResult] = {}
    for finding in findings:
        action = finding.action
        if action is None:
            continue
        text = action.describe()
        if text not in done:
            show(f"fix for {finding.subject} ({finding.id}): {text}")
            if assume_yes or confirm("Apply this fix?"):
                done[text] = apply_fix(finding, action, tools)
            else:
                done[text] = _result(finding, "skipped", "not applied: not confirmed (pass --yes to apply without "
                                                         "asking)", action)
        out[finding_key(finding)] = done[text]
    return out


def finding_key(finding: Finding) -> str:
    """How :func:`apply_fixes` names a finding's result."""
    return f"{finding.id} {finding.subject}"


def apply_fix(finding: Finding, action: FixAction, tools: FixTools) -> StepResult:
    """Carry out one fix and confirm it; errors become a ``failed`` result, never an exception."""
    started = time.monotonic()
    try:
        if isinstance(action, ChownDir):
            outcome, detail = _chown(action, tools)
        elif isinstance(action, NodeChange):
            outcome, detail = _patch_node(action, tools)
        elif isinstance(action, OpenKubeletPort):
            if tools.open_kubelet_port is None:
                outcome, detail = "failed", f"cannot open the port: {tools.no_ssh_reason}"
            else:
                outcome, detail = tools.open_kubelet_port(action)
        else:
            outcome, detail = _vxlan(action, tools)
    except O11yError as exc:
        outcome, detail = "failed", exc.message + (f" ({exc.hint})" if exc.hint else "")
    return _result(finding, outcome, detail, action, time.monotonic() - started)


def _result(finding: Finding, outcome: Any, detail: str, action: FixAction, seconds: float = 0.0) -> StepResult:
    host = action.node if isinstance(action, ChownDir | NodeChange | OpenKubeletPort) else None
    return StepResult(f"fix.{finding.id}", finding.component, outcome, detail, host=host, seconds=seconds)


def _chown(action: ChownDir, tools: FixTools) -> tuple[str, str]:
    if tools.ssh is None or tools.ssh_target is None:
        return "failed", f"cannot run it: {tools.no_ssh_reason}"
    target = tools.ssh_target(action.node)
    for argv in action.commands():
        result = tools.ssh.run(target, list(argv), sudo=True, step="doctor.fix")
        if not result.ok:
            problem = (result.stderr or result.stdout).strip().splitlines()
            return "failed", f"`{' '.join(argv)}` failed (exit {result.exit_code})" + (
                f": {problem[-1]}" if problem else "")
    check = tools.ssh.run(target, ["stat", "-c", "%u:%g", action.path], sudo=True, step="doctor.fix")
    owner = check.stdout.strip()
    if not check.ok or owner != action.owner:
        return "failed", f"after the chown, {action.path} is owned by {owner or '?'}, not {action.owner}"
    return "changed", f"{action.path} on {action.node} is now owned by {owner}"


def _patch_node(action: NodeChange, tools: FixTools) -> tuple[str, str]:
    if tools.kube is None:
        return "failed", "cannot run it: no connection to the Kubernetes API"
    result = apply_node_change(tools.kube, action, step="fix", component="nodes")
    return result.outcome, result.detail


def _vxlan(action: RunFixVxlan, tools: FixTools) -> tuple[str, str]:
    if tools.fix_vxlan is None:
        return "failed", f"cannot run fix-vxlan: {tools.no_ssh_reason}"
    result = tools.fix_vxlan()
    return result.outcome, result.detail
