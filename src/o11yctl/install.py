"""`o11yctl install`: preflight, then walk the plan with the executors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from o11yctl.errors import NotAvailable
from o11yctl.model import Report
from o11yctl.plan import Plan


@dataclass(frozen=True, slots=True)
class InstallOptions:
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


def run_install(plan: Plan, options: InstallOptions) -> Report:
    """Execute ``plan``. Raises an O11yError subclass on failure."""
    raise NotAvailable("`o11yctl install` without --dry-run is not available in this version yet",
                       hint="run `o11yctl install --dry-run` to see the plan")
