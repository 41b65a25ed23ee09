"""Walk a plan: each step's handler probes, then acts or records why not.

Ordering and stop-on-failure live here; how a step is carried out lives in the
handler for its action (apply, delete, helm-upgrade, helm-uninstall, ssh, wait), which
the caller supplies. Progress is reported through callbacks, never printed from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from o11yctl.errors import EXIT_INTERRUPTED, O11yError
from o11yctl.model import Report, StepResult
from o11yctl.stack.plan import Action, Plan, Step

#: Carries out one step (probe, then act only where the state differs) and says what happened.
Handler = Callable[[Step], StepResult]


class StepFailed(O11yError):
    """A step failed; the run stopped. ``report`` holds every step's outcome so far."""

    def __init__(self, message: str, *, hint: str | None, report: Report, exit_code: int = 1) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.report = report


@dataclass(frozen=True, slots=True)
class Callbacks:
    """Progress events: a step starts; a step has a result."""

    on_start: Callable[[Step], None] = lambda step: None
    on_done: Callable[[StepResult], None] = lambda result: None


def apply_plan(plan: Plan, handlers: Mapping[Action, Handler], *, callbacks: Callbacks | None = None,
               command: str = "install") -> Report:
    """Run every step of ``plan`` in order with the handler for its kind.

    Args:
        plan: the plan to carry out.
        handlers: one handler per action the plan uses.
        callbacks: progress events (the UI's spinner or plain lines).
        command: the command name for the report.

    Returns:
        A report with one item per step, all succeeded.

    Raises:
        StepFailed: a step failed or the run was interrupted; the steps after it did not run,
            and the error's ``report`` says what was already done.
    """
    cb = callbacks or Callbacks()
    results: list[StepResult] = []

    def stop(index: int, failed: StepResult, error: O11yError, exit_code: int) -> StepFailed:
        results.append(failed)
        cb.on_done(failed)
        done = index + 1
        for later in plan.steps[done:]:
            results.append(StepResult(later.id, later.component, "skipped", "not run: an earlier step failed",
                                      host=later.host))
        changed = [r.id for r in results if r.outcome in {"created", "changed"}]
        already = f"already done: {', '.join(changed)}" if changed else "nothing was changed before it"
        report = Report(command, items=tuple(results), exit_code=exit_code)
        return StepFailed(
            f"step {failed.id} failed: {error.message} ({already})",
            hint=error.hint or "run `o11yctl status` to see the stack, then re-run; finished steps are skipped",
            report=report, exit_code=exit_code,
        )

    for index, step in enumerate(plan.steps):
        handler = handlers.get(step.action)
        if handler is None:
            raise O11yError(f"no executor for {step.action} steps (step {step.id})")
        cb.on_start(step)
        started = time.monotonic()
        try:
            result = handler(step)
        except O11yError as exc:
            failed = StepResult(step.id, step.component, "failed", exc.message, host=step.host,
                                seconds=time.monotonic() - started)
            raise stop(index, failed, exc, exc.exit_code if exc.exit_code != 2 else 1) from exc
        except KeyboardInterrupt as exc:
            failed = StepResult(step.id, step.component, "failed", "interrupted", host=step.host,
                                seconds=time.monotonic() - started)
            err = O11yError("interrupted", hint="re-run the same command: finished steps are skipped")
            raise stop(index, failed, err, EXIT_INTERRUPTED) from exc
        if not result.seconds:
            result = StepResult(result.id, result.component, result.outcome, result.detail, result.host,
                                time.monotonic() - started)
        results.append(result)
        cb.on_done(result)
    return Report(command, items=tuple(results), exit_code=0)
