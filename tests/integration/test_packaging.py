"""The wheel carries the package, its templates and the console script; `--help` stays light."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

HEAVY = ("kubernetes", "paramiko", "httpx", "requests", "urllib3")


@pytest.mark.slow
def test_wheel_installs_and_renders(tmp_path: Path, repo_root: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(repo_root)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("o11yctl-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies come from the test environment (a plain path entry: its .pth files, such as
    # an editable install of o11yctl itself, are not processed); o11yctl only from the wheel.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", site, str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    where = subprocess.run([str(py), "-c", "import o11yctl, sys; print(o11yctl.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert where.startswith(site), where

    out = tmp_path / "rendered"
    script = Path(site).parent.parent.parent / "bin" / "o11yctl"
    argv = [str(script)] if script.exists() else [str(py), "-m", "o11yctl"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([*argv, "render", "--out", str(out)], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(list(out.glob("*.yaml"))) == 8
    assert "grafana" in (out / "04-grafana-values.yaml").read_text()


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["install", "--help"], ["verify", "--help"]])
def test_help_does_not_import_heavy_libraries(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from o11yctl._entry import main\n"
        f"sys.argv = ['o11yctl', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_completion_does_not_import_heavy_libraries() -> None:
    env = {**os.environ, "_O11YCTL_COMPLETE": "complete_bash", "COMP_WORDS": "o11yctl ins", "COMP_CWORD": "1"}
    code = (
        "import sys\nfrom o11yctl._entry import main\nsys.argv=['o11yctl']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "install" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "[]"
