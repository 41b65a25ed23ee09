"""The layout's rules, read from the source: imports point down the flow, no circles, one list of components."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from o11yctl.stack.catalog import SETS
from o11yctl.stack.components import PROFILES

SRC = Path(__file__).resolve().parents[2] / "src" / "o11yctl"


def _imports(path: Path) -> set[str]:
    """Modules imported at run time (imports under ``if TYPE_CHECKING:`` are for annotations only)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return names


@cache
def _modules() -> dict[str, set[str]]:
    return {str(p.relative_to(SRC)): _imports(p) for p in SRC.rglob("*.py")}


def _module_name(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["o11yctl", *parts])


def test_only_the_cli_imports_ui() -> None:
    offenders = [m for m, names in _modules().items() if "o11yctl.ui" in names and m != "cli.py"]
    assert offenders == []


def test_each_heavy_library_lives_in_its_one_executor() -> None:
    homes = {"paramiko": "executors/ssh.py", "kubernetes": "executors/kube.py", "httpx": "executors/http.py"}
    for library, home in homes.items():
        users = sorted(m for m, names in _modules().items() if any(n.split(".")[0] == library for n in names))
        assert users == [home], (library, users)


def test_executors_import_only_shared_values() -> None:
    allowed = ("o11yctl.errors", "o11yctl.model", "o11yctl.secrets", "o11yctl.parallel", "o11yctl.executors")
    for module, names in _modules().items():
        if not module.startswith("executors/"):
            continue
        ours = {n for n in names if n.startswith("o11yctl")}
        assert all(n.startswith(allowed) for n in ours), (module, sorted(ours))


PURE = ("config.py", "model.py", "errors.py", "vxlan/diagnose.py", "vxlan/fix.py", "vxlan/firewall.py",
        "doctor/rules.py", "doctor/scrub.py")


def test_pure_layers_never_reach_the_world() -> None:
    """What is deployed (stack/) and the judges are pure: no executor, no access object, no command package."""
    pure = [m for m in _modules() if m.startswith("stack/")] + list(PURE)
    assert "stack/plan.py" in pure and "stack/components.py" in pure
    forbidden = ("o11yctl.executors", "o11yctl.access", "o11yctl.deploy", "o11yctl.status", "o11yctl.verify",
                 "o11yctl.doctor.run", "o11yctl.cli")
    for module in pure:
        names = _modules()[module]
        assert not [n for n in names if n.startswith(forbidden)], module


def test_no_import_circles() -> None:
    """No two modules import each other, directly or around a loop (lazy imports inside functions count)."""
    graph: dict[str, set[str]] = {}
    known = {_module_name(m) for m in _modules()}
    for rel, names in _modules().items():
        me = _module_name(rel)
        graph[me] = set()
        for name in names:
            target = name
            while target and target not in known:  # `from o11yctl.x import y` names o11yctl.x.y
                target = target.rpartition(".")[0]
            if target and target != me and target != "o11yctl" and not me.startswith(target + "."):
                graph[me].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                circles.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    assert circles == []


# --- the list of components is written out in one place --------------------------------------------

#: Where the components are listed: their spec and the chart catalog. config.py declares each component's
#: settings section of the file format, one class per component.
LISTS_ALLOWED = {"stack/components.py", "stack/catalog.py", "config.py"}


def _component_strings() -> tuple[set[str], set[str]]:
    """The components' names, and the names only a component's spec may write: PVs, claims, files."""
    names: set[str] = set()
    owned: set[str] = set()
    for profile in PROFILES.values():
        for c in profile:
            if c.release:
                names.add(c.name)
            owned |= {f for f in c.files}
            if c.volume:
                owned |= {c.volume.pv, c.volume.pvc}
    for chart_set in SETS.values():
        names |= set(chart_set.pins)
    return names, owned


def test_the_components_are_listed_only_in_their_spec_and_the_catalog() -> None:
    names, owned = _component_strings()
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        if rel in LISTS_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                items = node.elts
            elif isinstance(node, ast.Dict):
                items = [k for k in node.keys if k is not None]
            else:
                items = []
            listed = {e.value for e in items if isinstance(e, ast.Constant) and e.value in names}
            if len(listed) >= 2:
                offenders.append(f"{rel}:{node.lineno}: lists {sorted(listed)}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in owned:
                offenders.append(f"{rel}:{node.lineno}: names {node.value!r}")
    assert offenders == []


def test_a_component_is_one_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test-only component added to the spec (with its template) appears in the plan, the render,
    uninstall's order and verify's registry, with no other change."""
    from o11yctl.config import default_config
    from o11yctl.stack.components import SINGLE_NODE, Component, Endpoint
    from o11yctl.stack.context import stack_of
    from o11yctl.stack.plan import build_plan, build_uninstall_plan
    from o11yctl.stack.render import render_config
    from o11yctl.verify.run import verify_checks

    template = tmp_path / "08-echo.yaml.j2"
    template.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: echo\n  namespace: {{ namespace }}\n")
    echo = Component("echo", "Echo", manifest="08-echo.yaml", endpoint=Endpoint("echo", 8080, "/healthz"),
                     after=("grafana",), placement="grafana", pod_label="echo", template=str(template))
    monkeypatch.setitem(PROFILES, "single-node", (*SINGLE_NODE, echo))
    cfg = default_config()

    assert stack_of(cfg).selectable[-1] == "echo"
    plan = build_plan(cfg)
    step = plan.step("echo")
    assert (step.action, step.manifest, step.depends_on) == ("apply", "08-echo.yaml", ("namespace", "helm.grafana"))
    assert [s.id for s in plan.steps][-2:] == ["echo", "wait.ready"]
    assert "Echo answers /healthz (svc/echo:8080)" in plan.step("wait.ready").waits_for
    assert build_plan(cfg, only=["echo"]).steps[0].id == "echo"
    assert "name: echo\n  namespace: logging" in render_config(cfg)["08-echo.yaml"]
    removal = build_uninstall_plan(cfg)
    assert removal.steps[0].id == "echo" and removal.steps[0].action == "delete", "removed first, in reverse"
    checks = {c.id: c for c in verify_checks(cfg)}
    assert checks["echo.ready"].group == "echo" and checks["cluster.pod.echo"].group == "cluster"
