"""The CLI contract shared by every command: init, render, install --dry-run, exit codes, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from o11yctl import __version__
from o11yctl.cli import app
from o11yctl.config import default_config, load_config
from o11yctl.stack.render import FILES

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"o11yctl {__version__}"


def test_help_teaches() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("init", "render", "install", "uninstall", "verify", "fix-vxlan", "status", "doctor",
                 "install --dry-run", "Exit codes"):
        assert word in result.output


@pytest.mark.parametrize("command", ["init", "render", "install", "uninstall", "verify", "fix-vxlan", "status",
                                     "doctor"])
def test_every_command_takes_config_after_its_name(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--config" in result.output and "-c" in result.output


def test_init_writes_commented_default_and_refuses_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    written = tmp_path / "o11yctl.yaml"
    text = written.read_text()
    assert "# ssh_port: 22" in text
    assert load_config(written)[0].model_dump() == default_config().model_dump()
    written.write_text(text + "# my edit\n")
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 2
    assert "already exists" in again.output and "--force" in again.output
    assert written.read_text().endswith("# my edit\n")
    forced = runner.invoke(app, ["init", "--force"])
    assert forced.exit_code == 0
    assert written.read_text() == text


def test_init_out_path(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "cluster.yaml"
    result = runner.invoke(app, ["init", "--out", str(target), "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["items"][0]["outcome"] == "created"
    assert target.is_file()


def test_init_never_writes_through_a_link_planted_at_a_temporary_name(tmp_path: Path) -> None:
    """A shared directory (--out /tmp/...) may hold links another user planted at names o11yctl could pick."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "o11yctl.yaml"
    for name in (f".o11yctl.yaml.tmp{os.getpid()}", ".o11yctl.yaml.tmp"):
        (tmp_path / name).symlink_to(victim)
    result = runner.invoke(app, ["init", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert target.is_file() and not target.is_symlink() and "cluster:" in target.read_text()


def test_render_writes_the_eight_files(tmp_path: Path) -> None:
    out = tmp_path / "k8s" / "logging"
    result = runner.invoke(app, ["render", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for name in FILES:
        docs = [d for d in yaml.safe_load_all((out / name).read_text()) if d is not None]
        assert docs, name
    again = runner.invoke(app, ["render", "--out", str(out), "--json"])
    doc = json.loads(again.stdout)
    assert {i["outcome"] for i in doc["items"]} == {"unchanged"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temp files left behind"


def test_render_reports_changed_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner.invoke(app, ["render", "--out", str(out)])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("components: {loki: {size: 100Gi}}\n")
    result = runner.invoke(app, ["render", "--out", str(out), "-c", str(cfg), "--json"])
    outcomes = {i["id"]: i["outcome"] for i in json.loads(result.stdout)["items"]}
    assert outcomes["01-loki-storage.yaml"] == "changed"
    assert outcomes["00-namespace.yaml"] == "unchanged"


def test_dry_run_on_the_default_needs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["install", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "sudo -n -- mkdir -p /mnt/k8s-storage/loki" in out
    assert "sudo -n -- chown -R 10001:10001 /mnt/k8s-storage/tempo" in out
    assert "--repo https://grafana.github.io/helm-charts --version 6.21.0" in out
    assert "PersistentVolume loki-pv" in out
    # the runbook's order
    order = ["namespace logging", "/mnt/k8s-storage/loki", "loki-pv", "helm release loki", "helm release alloy",
             "/mnt/k8s-storage/tempo", "tempo-pv", "helm release tempo", "helm release grafana", "HTTPRoute",
             "wait until"]
    positions = [out.index(word) for word in order]
    assert positions == sorted(positions)


def test_dry_run_json_is_the_whole_plan() -> None:
    result = runner.invoke(app, ["install", "--dry-run", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["command"] == "install" and doc["ok"] and doc["error"] is None and doc["dry_run"]
    ids = [s["id"] for s in doc["plan"]]
    assert ids == ["namespace", "storage.loki", "volumes.loki", "helm.loki", "helm.alloy", "storage.tempo",
                   "volumes.tempo", "helm.tempo", "helm.grafana", "route", "wait.ready"]
    helm = {s["id"]: s["helm_argv"] for s in doc["plan"] if s["helm_argv"]}
    assert helm["helm.tempo"][:5] == ["helm", "upgrade", "--install", "tempo", "tempo"]
    assert "--version" in helm["helm.tempo"] and "1.24.4" in helm["helm.tempo"]
    assert all(item["outcome"] == "skipped" for item in doc["items"])
    for item in doc["items"]:
        assert set(item) == {"id", "component", "host", "outcome", "detail", "seconds"}


def test_only_and_skip(tmp_path: Path) -> None:
    result = runner.invoke(app, ["install", "--dry-run", "--json", "--only", "storage", "--only", "loki,volumes"])
    ids = [s["id"] for s in json.loads(result.stdout)["plan"]]
    assert ids == ["storage.loki", "volumes.loki", "helm.loki", "storage.tempo", "volumes.tempo", "wait.ready"]
    result = runner.invoke(app, ["install", "--dry-run", "--json", "--skip", "grafana,route,tempo,alloy"])
    ids = [s["id"] for s in json.loads(result.stdout)["plan"]]
    assert "helm.grafana" not in ids and "route" not in ids and "helm.loki" in ids


@pytest.mark.parametrize("args", [["--only", "lokki"], ["--skip", "everything"], ["--only", "loki", "--skip", "loki"]])
def test_bad_component_names_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, ["install", "--dry-run", *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_unknown_flag_is_a_usage_error() -> None:
    result = runner.invoke(app, ["install", "--dry-rnu"])
    assert result.exit_code == 2


def test_python_dash_m_and_no_color(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm-256color"}
    proc = subprocess.run([sys.executable, "-m", "o11yctl", "install", "--dry-run"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout
