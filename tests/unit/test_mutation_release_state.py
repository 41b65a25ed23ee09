"""helm's change decision (``ReleaseState.lines``): what makes o11yctl upgrade a release, line by line.

tests/unit/test_pinned_behaviours.py covers each reason on its own; these tests pin the cases where
reasons combine or a fact is missing. Releases are built by hand as ``helm list -o json`` reports them;
nothing of o11yctl is monkeypatched.
"""

from __future__ import annotations

from o11yctl.deploy.cluster import ReleaseState
from o11yctl.executors.helm import Release

CHART = "loki-6.21.0"
VALUES = {"deploymentMode": "SingleBinary", "loki": {"limits_config": {"retention_period": "7d"}}}


def _release(status: str = "deployed", chart: str = CHART) -> Release:
    return Release(name="loki", namespace="logging", revision=4, status=status, chart=chart)


def test_values_that_could_not_be_read_are_not_a_change() -> None:
    assert ReleaseState("loki", CHART, VALUES, _release(), None).lines() == []


def test_every_reason_is_listed_in_order() -> None:
    current = {"deploymentMode": "SingleBinary", "loki": {"limits_config": {"retention_period": "3d"}}}
    lines = ReleaseState("loki", CHART, VALUES, _release("pending-upgrade", "loki-6.20.0"), current).lines()
    assert lines == [
        "release is pending-upgrade (revision 4): an interrupted helm run; --recover rolls it back first "
        "(or removes it if it never deployed)",
        f"chart loki-6.20.0 -> {CHART}",
        'values.loki.limits_config.retention_period: "3d" -> "7d"',
    ]


def test_a_failed_release_with_new_values_names_both() -> None:
    lines = ReleaseState("loki", CHART, VALUES, _release("failed"), {**VALUES, "extra": 1}).lines()
    assert lines == ["release is failed (revision 4); upgrade again", "values.extra: 1 -> (removed)"]


def test_values_compare_as_json() -> None:
    # helm returns values as JSON: keys are strings and tuples are lists; the rendered YAML may differ in type only
    want = {"ports": {3100: "http"}, "args": ("-a", "-b")}
    current = {"ports": {"3100": "http"}, "args": ["-a", "-b"]}
    assert ReleaseState("loki", CHART, want, _release(), current).lines() == []


def test_changed_values_are_listed_by_key_and_values_compare_after_str() -> None:
    import datetime

    want = {"z": 1, "a": {"when": datetime.date(2025, 1, 1), "n": 2}}
    current = {"z": 2, "a": {"when": "2025-01-01", "n": 3}}
    assert ReleaseState("loki", CHART, want, _release(), current).lines() == ["values.a.n: 3 -> 2", "values.z: 2 -> 1"]
