"""The layout's import rules, read from the source: imports point down the flow."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

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


def test_only_the_cli_imports_ui() -> None:
    offenders = [m for m, names in _modules().items() if "o11yctl.ui" in names and m != "cli.py"]
    assert offenders == []


def test_each_heavy_library_lives_in_its_one_executor() -> None:
    homes = {"paramiko": "executors/ssh.py", "kubernetes": "executors/kube.py", "httpx": "executors/http.py"}
    for library, home in homes.items():
        users = sorted(m for m, names in _modules().items() if any(n.split(".")[0] == library for n in names))
        assert users == [home], (library, users)


def test_executors_import_only_shared_values() -> None:
    allowed = ("o11yctl.errors", "o11yctl.model", "o11yctl.secrets", "o11yctl.executors")
    for module, names in _modules().items():
        if not module.startswith("executors/"):
            continue
        ours = {n for n in names if n.startswith("o11yctl")}
        assert all(n.startswith(allowed) for n in ours), (module, sorted(ours))


def test_pure_layers_never_import_executors() -> None:
    pure = ("plan.py", "context.py", "config.py", "templating.py", "render.py", "model.py", "errors.py",
            "vxlan/diagnose.py", "vxlan/fix.py", "vxlan/firewall.py", "doctor/rules.py")
    for module in pure:
        names = _modules()[module]
        assert not [n for n in names if n.startswith("o11yctl.executors")], module
