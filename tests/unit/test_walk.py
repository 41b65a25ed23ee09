"""The plan walked as a graph: order, concurrency, failure and the reverse walk of uninstall.

The walk takes one handler per action (its injection point); these tests hand it
handlers that sleep for random or chosen times and record when each step started and
ended, so the properties are checked on recorded times, over many runs.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field, replace

import pytest

from o11yctl.config import default_config
from o11yctl.deploy.walk import LIMIT, NOT_STARTED, StepFailed, apply_plan, dependencies
from o11yctl.errors import O11yError
from o11yctl.model import StepResult
from o11yctl.stack.plan import Plan, Step, build_plan, build_uninstall_plan


@dataclass
class Recorder:
    """Handlers for every action that sleep ``durations[step]`` (or a random time) and record times."""

    durations: dict[str, float] = field(default_factory=dict)
    fail: dict[str, float] = field(default_factory=dict)  # step -> seconds before it fails
    rng: random.Random = field(default_factory=random.Random)
    times: dict[str, tuple[float, float]] = field(default_factory=dict)
    concurrent: int = 0
    most: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, step: Step) -> StepResult:
        with self.lock:
            self.concurrent += 1
            self.most = max(self.most, self.concurrent)
        began = time.monotonic()
        try:
            if step.id in self.fail:
                time.sleep(self.fail[step.id])
                raise O11yError(f"{step.id} broke", hint="a scripted failure")
            time.sleep(self.durations.get(step.id, self.rng.uniform(0, 0.02)))
            return StepResult(step.id, step.component, "created", "done", host=step.host)
        finally:
            with self.lock:
                self.concurrent -= 1
                self.times[step.id] = (began, time.monotonic())

    def handlers(self) -> dict[str, object]:
        return dict.fromkeys(("apply", "delete", "helm-upgrade", "helm-uninstall", "ssh", "wait"), self.handler)


def _check_order(plan: Plan, rec: Recorder) -> None:
    for step_id, deps in dependencies(plan).items():
        if step_id not in rec.times:
            continue
        start = rec.times[step_id][0]
        for dep in deps:
            assert dep in rec.times, f"{step_id} ran although {dep} never did"
            assert rec.times[dep][1] <= start, f"{step_id} started before {dep} had finished"


@pytest.mark.parametrize("delete_data", [False, True])
def test_no_step_starts_before_what_it_depends_on_has_finished(delete_data: bool) -> None:
    cfg = default_config()
    plans = [build_plan(cfg), build_uninstall_plan(cfg, delete_data=delete_data)]
    overlapped = 0
    for seed in range(25):
        for plan in plans:
            rec = Recorder(rng=random.Random(seed))
            report = apply_plan(plan, rec.handlers(), command="test")  # type: ignore[arg-type]
            assert [i.id for i in report.items] == [s.id for s in plan.steps]  # the report in plan order
            assert set(rec.times) == {s.id for s in plan.steps}
            _check_order(plan, rec)
            assert rec.most <= LIMIT
            overlapped += rec.most > 1
    assert overlapped > 0, "independent steps never ran at the same time"


def test_a_slow_step_holds_up_only_what_depends_on_it() -> None:
    # alloy takes long, as its chart's minReadySeconds makes it; Tempo's chain must not wait for it
    plan = build_plan(default_config())
    rec = Recorder(durations={s.id: 0.05 for s in plan.steps} | {"helm.alloy": 0.5})
    apply_plan(plan, rec.handlers())  # type: ignore[arg-type]
    assert rec.times["helm.tempo"][1] < rec.times["helm.alloy"][1]
    assert rec.times["helm.grafana"][0] < rec.times["helm.alloy"][1], "grafana does not need alloy"
    assert rec.times["route"][0] < rec.times["helm.alloy"][1]
    assert rec.times["wait.ready"][0] >= rec.times["helm.alloy"][1], "the final wait needs everything"


def test_a_failure_lets_running_steps_finish_and_starts_nothing_new() -> None:
    plan = build_plan(default_config())
    # helm.loki fails while helm.tempo (independent) is running; helm.tempo must finish
    rec = Recorder(durations={s.id: 0.01 for s in plan.steps} | {"helm.tempo": 0.3}, fail={"helm.loki": 0.1})
    with pytest.raises(StepFailed) as info:
        apply_plan(plan, rec.handlers())  # type: ignore[arg-type]
    error = info.value
    failed_at = rec.times["helm.loki"][1]
    assert all(start <= failed_at for start, _end in rec.times.values()), "a step started after the failure"
    got = {i.id: i for i in error.report.items}
    assert [i.id for i in error.report.items] == [s.id for s in plan.steps]
    assert got["helm.loki"].outcome == "failed" and got["helm.loki"].detail == "helm.loki broke"
    assert got["helm.tempo"].outcome == "created", "a running sibling is waited for, never abandoned"
    assert rec.times["helm.tempo"][1] > failed_at
    for later in ("helm.alloy", "helm.grafana", "route", "wait.ready"):
        assert got[later].outcome == "skipped" and got[later].detail.startswith(NOT_STARTED), got[later]
        assert later not in rec.times
    assert str(error).startswith("step helm.loki failed: helm.loki broke (already done: ")
    assert error.hint == "a scripted failure" and error.exit_code == 1
    assert isinstance(error.__cause__, O11yError)


def test_a_cycle_is_a_bug_named_as_such() -> None:
    plan = build_plan(default_config())
    steps = list(plan.steps)
    steps[0] = replace(steps[0], depends_on=("wait.ready",))
    with pytest.raises(O11yError, match=re.escape("in a circle: namespace -> wait.ready -> namespace")):
        apply_plan(Plan(plan.config, tuple(steps)), Recorder().handlers())  # type: ignore[arg-type]


def test_a_dependency_left_out_by_only_counts_as_done() -> None:
    plan = build_plan(default_config(), only=["loki", "alloy"])
    assert [s.id for s in plan.steps] == ["helm.loki", "helm.alloy", "wait.ready"]
    rec = Recorder()
    apply_plan(plan, rec.handlers())  # type: ignore[arg-type]
    _check_order(plan, rec)
