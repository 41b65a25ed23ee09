"""Walk a plan as a graph: a step starts once every step it depends on has finished.

Dependencies come from the plan's data (``Step.depends_on``), never from the order of
the list; a dependency outside the plan (left out by --only/--skip) counts as done.
Independent steps run at the same time, at most :data:`LIMIT` at once, each on its
own thread; the main thread only schedules and waits, so a Ctrl-C reaches it at once.

When a step fails, or on Ctrl-C, no new step starts; the steps already running are
waited for (a helm release is never abandoned half-way; helm runs in its own process
group, so a terminal's Ctrl-C does not reach it). A second Ctrl-C stops the waiting:
the steps still running are reported as stopped. The report lists every step in plan
order: its outcome, or failed, stopped, or not started.

How a step is carried out lives in the handler for its action (apply, delete,
helm-upgrade, helm-uninstall, ssh, wait), which the caller supplies. Progress is
reported through callbacks (called from worker threads), never printed from here.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from o11yctl.errors import EXIT_INTERRUPTED, O11yError
from o11yctl.model import Report, StepResult
from o11yctl.stack.plan import Action, Plan, Step

#: Carries out one step (probe, then act only where the state differs) and says what happened.
Handler = Callable[[Step], StepResult]

#: Steps running at once. Four covers the widest point of the stack's graph (the data
#: components' storage and volumes, or Alloy and Tempo once Loki is up) while keeping
#: the load on the API server and on the storage node's SSH server small.
LIMIT = 4

NOT_STARTED = "not started"
STOPPED = "stopped"


class StepFailed(O11yError):
    """A step failed or the walk was interrupted. ``report`` holds every step's outcome."""

    def __init__(self, message: str, *, hint: str | None, report: Report, exit_code: int = 1) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.report = report


@dataclass(frozen=True, slots=True)
class Callbacks:
    """Progress events: a step starts; a step has a result; the walk is stopping (running steps left)."""

    on_start: Callable[[Step], None] = lambda step: None
    on_done: Callable[[StepResult], None] = lambda result: None
    on_stopping: Callable[[str, int], None] = lambda why, running: None


def dependencies(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Each step's dependencies within the plan (those outside it count as done).

    Raises:
        O11yError: the dependencies form a cycle (a bug in the plan).
    """
    ids = {s.id for s in plan.steps}
    deps = {s.id: tuple(d for d in s.depends_on if d in ids and d != s.id) for s in plan.steps}
    state: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise O11yError(f"the plan's steps depend on each other in a circle: {' -> '.join((*path, node))}",
                            hint="this is a bug in o11yctl's plan")
        state[node] = 1
        for dep in deps[node]:
            visit(dep, (*path, node))
        state[node] = 2

    for step in plan.steps:
        visit(step.id, ())
    return deps


def apply_plan(plan: Plan, handlers: Mapping[Action, Handler], *, callbacks: Callbacks | None = None,
               command: str = "install", limit: int = LIMIT) -> Report:
    """Run the steps of ``plan``, each once its dependencies have finished, at most ``limit`` at once.

    Args:
        plan: the plan to carry out.
        handlers: one handler per action the plan uses.
        callbacks: progress events (called from the threads that run the steps).
        command: the command name for the report.
        limit: how many steps may run at the same time.

    Returns:
        A report with one item per step in plan order, all succeeded.

    Raises:
        StepFailed: a step failed, or the walk was interrupted (exit 130); no step started
            after that, and the error's ``report`` says what every step did.
    """
    cb = callbacks or Callbacks()
    began = time.monotonic()
    for step in plan.steps:
        if step.action not in handlers:
            raise O11yError(f"no executor for {step.action} steps (step {step.id})")
    deps = dependencies(plan)
    by_id = {s.id: s for s in plan.steps}
    results: dict[str, StepResult] = {}
    started_at: dict[str, float] = {}
    running: set[str] = set()
    finished: queue.Queue[tuple[str, StepResult | None, O11yError | None, BaseException | None]] = queue.Queue()
    failure: tuple[Step, O11yError] | None = None
    interrupted = False

    def work(step: Step) -> None:
        began = time.monotonic()
        try:
            result = handlers[step.action](step)
        except O11yError as exc:
            finished.put((step.id, StepResult(step.id, step.component, "failed", exc.message, host=step.host,
                                              seconds=time.monotonic() - began), exc, None))
            return
        except BaseException as exc:  # a bug: handed to the main thread, raised there
            finished.put((step.id, None, None, exc))
            return
        if not result.seconds:
            result = StepResult(result.id, result.component, result.outcome, result.detail, result.host,
                                time.monotonic() - began)
        finished.put((step.id, result, None, None))

    def ready() -> list[Step]:
        return [s for s in plan.steps if s.id not in results and s.id not in running
                and all(d in results and results[d].outcome != "failed" for d in deps[s.id])]

    def start(step: Step) -> None:
        with _interrupts_held():  # a step is either started and in `running`, or neither
            running.add(step.id)
            started_at[step.id] = time.monotonic()
            threading.Thread(target=work, args=(step,), name=f"o11yctl-step-{step.id}", daemon=True).start()
        cb.on_start(step)

    def collect() -> None:
        nonlocal failure
        with _interrupts_held():  # a result taken from the queue is always recorded
            step_id, result, error, bug = finished.get(timeout=0.1)
            running.discard(step_id)
            if result is not None:
                results[step_id] = result
                if error is not None and failure is None:
                    failure = (by_id[step_id], error)
        if bug is not None:
            raise bug
        assert result is not None
        cb.on_done(result)

    try:
        while True:
            if failure is None:
                for step in ready()[: max(0, limit - len(running))]:
                    start(step)
            if not running:
                break
            try:
                collect()
            except queue.Empty:
                continue
            if failure is not None and running:
                cb.on_stopping(f"step {failure[0].id} failed", len(running))
    except KeyboardInterrupt:
        interrupted = True
        if running:
            cb.on_stopping("interrupted", len(running))
        try:
            while running:
                try:
                    collect()
                except queue.Empty:
                    continue
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting; what still runs is reported as stopped
    if failure is None and not interrupted:
        return Report(command, items=tuple(results[s.id] for s in plan.steps), exit_code=0,
                      extra={"walk_seconds": round(time.monotonic() - began, 3)})
    raise _stopped(plan, command, results, running, started_at, failure, interrupted) from (
        failure[1] if failure is not None else None)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT back for a few bookkeeping statements; it is delivered right after."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _stopped(plan: Plan, command: str, results: Mapping[str, StepResult], running: set[str],
             started_at: Mapping[str, float], failure: tuple[Step, O11yError] | None,
             interrupted: bool) -> StepFailed:
    why = "interrupted" if interrupted else f"step {failure[0].id} failed" if failure else "stopped"
    items: list[StepResult] = []
    for step in plan.steps:
        if step.id in results:
            items.append(results[step.id])
        elif step.id in running:
            items.append(StepResult(step.id, step.component, "failed",
                                    f"{STOPPED}: still running when o11yctl stopped waiting ({why}); it may have "
                                    "finished on its own", host=step.host,
                                    seconds=time.monotonic() - started_at[step.id]))
        else:
            items.append(StepResult(step.id, step.component, "skipped", f"{NOT_STARTED}: {why}", host=step.host))
    changed = [r.id for r in items if r.outcome in {"created", "changed"}]
    already = f"already done: {', '.join(changed)}" if changed else "nothing was changed"
    if failure is not None and not interrupted:
        step, error = failure
        exit_code = error.exit_code if error.exit_code != 2 else 1
        report = Report(command, items=tuple(items), exit_code=exit_code)
        return StepFailed(f"step {step.id} failed: {error.message} ({already})",
                          hint=error.hint or "run `o11yctl status` to see the stack, then re-run; finished steps "
                                             "are skipped", report=report, exit_code=exit_code)
    report = Report(command, items=tuple(items), exit_code=EXIT_INTERRUPTED)
    return StepFailed(f"interrupted ({already})", hint="re-run the same command: finished steps are skipped",
                      report=report, exit_code=EXIT_INTERRUPTED)
