"""`helm template` with the real upstream charts at the pinned versions.

These tests need the chart sources, which CI does not have (it reaches no chart
repository), so they carry the `charts` marker and run only when asked:

    O11YCTL_CHART_DIR=/path/to/charts pytest -m charts

O11YCTL_CHART_DIR holds one directory per chart set (runbook, current), each with one
directory per chart, named loki, tempo, alloy and grafana, at the versions that set
pins (see README, "Checking the values against the real charts"). Every test runs once
per set, with the built-in default configuration on that set. The helm binary is
O11YCTL_HELM, else `helm` on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.charts


CHART_SETS = ("runbook", "current")


def chart_dir(chart_set: str) -> Path:
    """Where the charts of one set are: ``$O11YCTL_CHART_DIR/<set>``."""
    raw = os.environ.get("O11YCTL_CHART_DIR")
    if not raw:
        pytest.fail("the charts tests need O11YCTL_CHART_DIR (see tests/charts/conftest.py)")
    return Path(raw) / chart_set


@pytest.fixture(params=CHART_SETS)
def chart_set(request: pytest.FixtureRequest) -> str:
    """Each test runs against every chart set."""
    return str(request.param)


@pytest.fixture
def context(chart_set: str) -> dict[str, Any]:
    """The template context for the built-in default configuration on ``chart_set``."""
    from o11yctl.config import parse_config
    from o11yctl.stack.context import build_context

    return build_context(parse_config(f"charts:\n  set: {chart_set}\n"))


def _helm() -> str:
    helm = os.environ.get("O11YCTL_HELM") or shutil.which("helm")
    if not helm:
        pytest.fail("the charts tests need helm: set O11YCTL_HELM or put helm on PATH")
    return helm


def _prepared_chart(name: str, tmp: Path, chart_set: str) -> Path:
    """Copy the chart, dropping dependencies that are absent from charts/.

    The loki chart lists minio, grafana-agent-operator and rollout-operator as
    optional dependencies; o11yctl's values disable all three, but helm refuses to
    template a chart whose listed dependencies are missing, and the chart sources
    do not vendor them.
    """
    src = chart_dir(chart_set) / name
    if not (src / "Chart.yaml").exists():
        pytest.fail(f"no chart at {src}")
    dst = tmp / name
    shutil.copytree(src, dst)
    chart = yaml.safe_load((dst / "Chart.yaml").read_text())
    present = {p.name for p in (dst / "charts").iterdir()} if (dst / "charts").is_dir() else set()
    deps = chart.get("dependencies") or []
    kept = [d for d in deps if d["name"] in present or d.get("alias") in present]
    if len(kept) != len(deps):
        chart["dependencies"] = kept
        (dst / "Chart.yaml").write_text(yaml.safe_dump(chart))
        (dst / "Chart.lock").unlink(missing_ok=True)
    return dst


@pytest.fixture
def helm_template(tmp_path: Path, chart_set: str) -> Callable[..., list[dict[str, Any]]]:
    """Run `helm template <release> <chart> -n <ns> -f values` and parse the documents."""

    def run(chart: str, values_text: str, *, release: str | None = None, namespace: str = "logging",
            extra: list[str] | None = None) -> list[dict[str, Any]]:
        calls = len(list(tmp_path.glob("call-*")))
        workdir = tmp_path / f"call-{calls}"
        workdir.mkdir()
        chart_path = _prepared_chart(chart, workdir, chart_set)
        values = workdir / f"{chart}-values.yaml"
        values.write_text(values_text)
        argv = [_helm(), "template", release or chart, str(chart_path), "--namespace", namespace,
                "--values", str(values), *(extra or [])]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"helm template {chart} failed:\n{proc.stderr}"
        return [d for d in yaml.safe_load_all(proc.stdout) if d]

    return run


def unknown_keys(ours: Any, theirs: Any, free_form: set[tuple[str, ...]], path: tuple[str, ...] = ()) -> list[str]:
    """Dotted paths of keys in our values that the chart's own values.yaml does not define.

    A map the chart leaves empty, or one named in ``free_form`` (passed through verbatim by
    toYaml or as an ini file), may hold any key.
    """
    if not isinstance(ours, dict) or path in free_form:
        return []
    if not isinstance(theirs, dict) or not theirs:
        return []
    unknown = []
    for key, value in ours.items():
        if key not in theirs:
            unknown.append(".".join((*path, key)))
        else:
            unknown += unknown_keys(value, theirs[key], free_form, (*path, key))
    return unknown
