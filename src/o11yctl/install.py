"""`o11yctl install`: preflight what the selected steps need, then walk the plan.

Only the executors the plan needs are created: `install --only storage` opens
SSH connections and never touches the cluster; a plan without SSH steps never
opens one.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from o11yctl.apply import Callbacks, Handler, apply_plan
from o11yctl.errors import NotAvailable
from o11yctl.model import Report
from o11yctl.plan import Plan, StepKind


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


def run_install(plan: Plan, options: InstallOptions, *, callbacks: Callbacks | None = None) -> Report:
    """Preflight, then carry out ``plan``.

    Raises:
        PreflightError: something the selected steps need is missing; nothing was changed (exit 3).
        StepFailed: a step failed; its ``report`` says what was already done.
    """
    kinds = {s.kind for s in plan.steps}
    missing = sorted(kinds - {"ssh"})
    if missing:
        names = sorted({s.component for s in plan.steps if s.kind in missing})
        raise NotAvailable(
            f"installing {', '.join(names)} is not available in this version yet",
            hint="`o11yctl install --only storage` prepares the data directories; "
                 "`o11yctl render` writes the files to apply by hand",
        )
    with ExitStack() as stack:
        handlers: dict[StepKind, Handler] = {}
        if "ssh" in kinds:
            from o11yctl.storage import storage_handler

            handlers["ssh"] = stack.enter_context(storage_handler(plan, options))
        return apply_plan(plan, handlers, callbacks=callbacks)
