"""The plan and the rendered files, byte for byte, against copies kept under tests/data/golden.

For each config under tests/data/golden/configs/, ``install --dry-run`` (text and --json)
and ``render`` must print and write exactly what is kept in tests/data/golden/<config>/; the
files of ``migrate``'s bridge stage for the scalable config are kept in scalable-bridge/.
A change to what o11yctl deploys shows up here as a diff to read, not as a surprise on a
cluster. After a deliberate change, regenerate the copies with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/integration/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o11yctl.cli import app

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
CONFIGS = sorted(p.stem for p in (GOLDEN / "configs").glob("*.yaml"))
runner = CliRunner()


def _outputs(config: Path, out_dir: Path) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for name, extra in (("plan.txt", []), ("plan.json", ["--json"])):
        result = runner.invoke(app, ["install", "--dry-run", "-c", str(config), *extra], env={"COLUMNS": "160"})
        assert result.exit_code == 0, result.output
        outputs[name] = result.stdout
    result = runner.invoke(app, ["render", "--out", str(out_dir), "-c", str(config)])
    assert result.exit_code == 0, result.output
    for path in sorted(out_dir.iterdir()):
        outputs[f"files/{path.name}"] = path.read_text(encoding="utf-8")
    return outputs


@pytest.mark.parametrize("name", CONFIGS)
def test_plan_and_files_are_unchanged(name: str, tmp_path: Path) -> None:
    _same_as_kept(_outputs(GOLDEN / "configs" / f"{name}.yaml", tmp_path / "out"), name)


def _same_as_kept(got: dict[str, str], name: str) -> None:
    """``got`` (relative path -> text) is what tests/data/golden/<name>/ keeps (rewritten with UPDATE_GOLDEN)."""
    kept = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        for rel, text in got.items():
            (kept / rel).parent.mkdir(parents=True, exist_ok=True)
            (kept / rel).write_text(text, encoding="utf-8")
    expected = {str(p.relative_to(kept)): p.read_text(encoding="utf-8") for p in sorted(kept.rglob("*"))
                if p.is_file()}
    assert sorted(got) == sorted(expected)
    for rel, text in expected.items():
        assert got[rel] == text, f"{name}/{rel} differs from the kept copy"


def test_the_moves_bridge_files_are_unchanged() -> None:
    """`o11yctl migrate`'s bridge stage for the scalable config, its day fixed (the command takes the next UTC
    day): the single-node values with the bucket beside them, and the record."""
    from o11yctl.config import parse_config
    from o11yctl.stack.render import render_config

    config = GOLDEN / "configs" / "scalable.yaml"
    got = {f"files/{name}": text for name, text in render_config(
        parse_config(config.read_text(encoding="utf-8"), str(config)).bridged("2026-12-06")).items()}
    _same_as_kept(got, "scalable-bridge")
