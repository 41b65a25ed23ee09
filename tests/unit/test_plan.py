"""The plans, pinned from case files under tests/data/plan: steps, order, actions and dependencies.

Each case file holds a config (laid over the default), optional ``only``/``skip``, and the
expected steps of the install plan and, where given, of the uninstall plans, each as
``[id, component, action, depends_on]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from o11yctl.config import parse_config
from o11yctl.errors import UsageError
from o11yctl.stack.plan import Plan, build_plan, build_uninstall_plan

CASES = Path(__file__).resolve().parents[1] / "data" / "plan"


def _rows(plan: Plan) -> list[list[Any]]:
    return [[s.id, s.component, s.action, list(s.depends_on)] for s in plan.steps]


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.yaml")))
def test_plan_case(case: str) -> None:
    data = yaml.safe_load((CASES / f"{case}.yaml").read_text())
    cfg = parse_config(data.get("config") or "")
    plan = build_plan(cfg, only=data.get("only", ()), skip=data.get("skip", ()))
    assert _rows(plan) == data["install"]
    if "uninstall" in data:
        assert _rows(build_uninstall_plan(cfg)) == data["uninstall"]
    if "uninstall_delete_data" in data:
        assert _rows(build_uninstall_plan(cfg, delete_data=True)) == data["uninstall_delete_data"]


def test_every_step_names_what_it_does() -> None:
    plan = build_plan(parse_config(""))
    by_id = {s.id: s for s in plan.steps}
    assert [c.argv[0] for c in by_id["storage.loki"].commands] == ["stat", "mkdir", "chown", "stat", "df"]
    assert by_id["volumes.tempo"].manifest == "06-tempo-storage.yaml"
    helm = by_id["helm.grafana"].helm
    assert helm is not None and helm.argv()[:5] == ("helm", "upgrade", "--install", "grafana", "grafana")
    assert by_id["wait.ready"].waits_for == ("every pod in namespace logging Running and Ready",
                                             "Loki answers /ready (svc/loki:3100)",
                                             "Tempo answers /ready (svc/tempo:3200)")
    removal = {s.id: s for s in build_uninstall_plan(parse_config(""), delete_data=True).steps}
    assert removal["storage.loki"].commands[0].argv == ("rm", "-rf", "--one-file-system", "/mnt/k8s-storage/loki")


@pytest.mark.parametrize(("only", "skip", "message"), [
    (["bogus"], [], "unknown name 'bogus'"),
    (["loki"], ["loki"], "given to both --only and --skip"),
    ([], ["namespace", "storage", "volumes", "loki", "alloy", "tempo", "grafana", "route"], "leave nothing to do"),
])
def test_selection_errors(only: list[str], skip: list[str], message: str) -> None:
    from o11yctl.stack.context import stack_of
    from o11yctl.stack.plan import parse_components

    cfg = parse_config("")
    allowed = stack_of(cfg).selectable
    with pytest.raises(UsageError, match=message):
        build_plan(cfg, only=parse_components(only, flag="--only", allowed=allowed),
                   skip=parse_components(skip, flag="--skip", allowed=allowed))
