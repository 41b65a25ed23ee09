"""The README's examples, run: what it promises offline must work as written.

Every `o11yctl ...` line of the README's ``bash`` blocks is parsed by the real CLI (with
``--help`` appended, which makes the parser check every flag and value of the line without
running it). The offline ones (`init`, `render`, `install --dry-run`) run for real, in
order, in an empty directory with an empty home, so the Quickstart holds on a fresh
machine. The configuration-error example is reproduced from the file `init` writes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
_SCRIPT = Path(sys.executable).with_name("o11yctl")
O11YCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "o11yctl"]
OFFLINE = ("init", "render", "--version", "--help")


def _blocks(lang: str) -> list[str]:
    """The fenced blocks whose info string is ``lang`` ("" for plain fences)."""
    blocks: list[str] = []
    current: list[str] | None = None
    info = ""
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, info = [], line[3:].strip()
            else:
                if info == lang:
                    blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _commands(block: str) -> list[list[str]]:
    """The o11yctl command lines of a block, as argv (comments and line continuations handled)."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z0-9_]+=.*", words[0]):  # VAR=value o11yctl ...
            words.pop(0)
        if words and words[0].endswith("o11yctl"):
            out.append(words[1:])
    return out


def _offline(argv: list[str]) -> bool:
    return bool(argv) and (argv[0] in OFFLINE or (argv[0] in ("install", "upgrade") and "--dry-run" in argv))


EXAMPLES = [argv for block in _blocks("bash") for argv in _commands(block)]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("O11YCTL_", "KUBE"))}
    return {**env, "HOME": str(home), "NO_COLOR": "1"}


def test_the_readme_has_examples_of_every_command() -> None:
    assert {argv[0] for argv in EXAMPLES if argv} >= {
        "init", "render", "install", "uninstall", "upgrade", "verify", "status", "fix-vxlan", "doctor"}


@pytest.mark.parametrize("argv", EXAMPLES, ids=[" ".join(a) for a in EXAMPLES])
def test_every_example_parses(argv: list[str], tmp_path: Path) -> None:
    run = subprocess.run([*O11YCTL, *argv, "--help"], cwd=tmp_path, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_the_offline_examples_run_in_order_on_a_fresh_machine(tmp_path: Path) -> None:
    ran = []
    for argv in EXAMPLES:
        if not _offline(argv):
            continue
        run = subprocess.run([*O11YCTL, *argv], cwd=tmp_path, env=_env(tmp_path),
                             capture_output=True, text=True, timeout=60)
        # `init` refuses to overwrite the file an earlier example wrote: exit 2 with that reason
        if argv[0] == "init" and run.returncode == 2 and "exists" in run.stderr:
            continue
        assert run.returncode == 0, f"o11yctl {' '.join(argv)}\n{run.stderr}"
        ran.append(argv[0] if argv[0] != "install" else "install --dry-run")
    assert {"init", "render", "install --dry-run"} <= set(ran)
    assert (tmp_path / "o11yctl.yaml").exists() and (tmp_path / "k8s/logging").is_dir()


def test_the_configuration_error_example_is_what_init_s_file_gives(tmp_path: Path) -> None:
    shown = next(b for b in _blocks("") if b.startswith("error: storage.node"))
    wrong = re.search(r"'(node-\d+)' is not one of", shown)
    assert wrong is not None
    env = _env(tmp_path)
    subprocess.run([*O11YCTL, "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    path = tmp_path / "o11yctl.yaml"
    path.write_text(re.sub(r"(?m)^(  node: )node-2", rf"\g<1>{wrong.group(1)}", path.read_text(), count=1))
    run = subprocess.run([*O11YCTL, "install", "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == shown.strip().splitlines()
