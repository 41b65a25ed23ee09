"""Frozen values shared by every layer: results of commands, steps, checks and outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from o11yctl.errors import O11yError

Outcome = Literal["created", "changed", "unchanged", "skipped", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("created", "changed", "unchanged", "skipped", "failed")

Status = Literal["PASS", "WARN", "FAIL", "SKIP"]
STATUSES: tuple[Status, ...] = ("PASS", "WARN", "FAIL", "SKIP")



@dataclass(frozen=True, slots=True)
class SshTarget:
    """How to reach one node over SSH; unset fields fall through to ~/.ssh/config."""

    name: str
    host: str
    port: int | None = None
    user: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command did: argv (as a list), exit code, output and duration."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    host: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of one step of a plan, as reported (also the JSON item shape)."""

    id: str
    component: str
    outcome: Outcome
    detail: str = ""
    host: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "component": self.component,
            "host": self.host,
            "outcome": self.outcome,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


def count_outcomes(steps: Sequence[StepResult]) -> str:
    """``"2 created, 3 unchanged"``: how many steps ended in each outcome, in order of first appearance."""
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.outcome] = counts.get(step.outcome, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing to do"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict of one check (also the JSON item shape)."""

    id: str
    group: str
    status: Status
    detail: str = ""
    hint: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "group": self.group,
            "status": self.status,
            "detail": self.detail,
            "hint": self.hint,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """What a command hands to the UI: items, whether it succeeded, and its exit code."""

    command: str
    items: tuple[StepResult | CheckResult, ...] = ()
    exit_code: int = 0
    summary: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    #: Why the command could not do its job (exit 3: nothing could be read), said as `error:` and `hint:`.
    error: O11yError | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0
