"""Run checks at once, each in its own thread, within one global deadline.

Every check's requests carry timeouts that end at the check's deadline, so a hung
endpoint costs at most that long and never holds up the other checks. A check that
has not answered when the global wait is over is reported as a FAIL; its thread is
a daemon and is left to finish its last request in the background.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from o11yctl.errors import O11yError
from o11yctl.model import CheckResult
from o11yctl.verify.base import Check, CheckContext, Verdict, failed, skipped

OnResult = Callable[[CheckResult], None]


def run_checks(
    checks: Sequence[Check],
    ctx: CheckContext,
    *,
    wait: float,
    on_result: OnResult | None = None,
) -> tuple[CheckResult, ...]:
    """Run ``checks`` concurrently and return their results in the order given.

    A check whose needs are not available is skipped with the reason from
    ``ctx.targets.unavailable``. An :class:`O11yError` raised by a check becomes its
    FAIL; any other exception is a bug and is raised again here, after the rest have
    finished or the wait is over.

    Args:
        checks: the checks to run.
        ctx: targets, deadline and names shared by all checks.
        wait: seconds to wait for all of them, from now.
        on_result: called (from the check's thread) as each result is ready.

    Returns:
        One result per check.
    """
    started = time.monotonic()
    results: dict[str, CheckResult] = {}
    bugs: list[BaseException] = []
    cond = threading.Condition()

    def record(result: CheckResult) -> None:
        with cond:
            results[result.id] = result
            cond.notify_all()
        if on_result is not None:
            on_result(result)

    def run_one(check: Check) -> None:
        t0 = time.monotonic()
        try:
            verdict = check.run(ctx)
        except O11yError as exc:
            verdict = failed(exc.message, exc.hint)
        except BaseException as exc:  # a bug in a check: re-raised in the caller's thread
            with cond:
                bugs.append(exc)
            verdict = failed(f"internal error: {type(exc).__name__}: {exc}", None)
        record(_result(check, verdict, time.monotonic() - t0))

    threads = []
    for check in checks:
        missing = [need for need in check.needs if not ctx.targets.has(need)]
        if missing:
            detail, hint = ctx.targets.unavailable.get(missing[0], (f"needs {missing[0]}", None))
            record(_result(check, skipped(detail, hint), 0.0))
            continue
        thread = threading.Thread(target=run_one, args=(check,), name=f"check {check.id}", daemon=True)
        threads.append(thread)
        thread.start()

    end = started + wait
    with cond:
        while len(results) < len(checks) and not bugs:
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            cond.wait(remaining)
        if bugs:
            raise bugs[0]
        for check in checks:
            if check.id not in results:
                results[check.id] = _result(
                    check,
                    failed(f"no verdict within the --timeout of {wait:g}s",
                           f"something in \"{check.title}\" hangs; raise --timeout, or run it alone with "
                           f"--only {check.group}"),
                    time.monotonic() - started,
                )
    return tuple(results[c.id] for c in checks)


def _result(check: Check, verdict: Verdict, seconds: float) -> CheckResult:
    return CheckResult(id=check.id, group=check.group, status=verdict.status, detail=verdict.detail,
                       hint=None if verdict.status == "PASS" else verdict.hint, seconds=seconds)
