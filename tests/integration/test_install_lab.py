"""The whole `install` and `uninstall --delete-data` against a real sshd (the storage node) and the fake API.

Helm is the stand-in (tests/lab/fake_helm.py); the storage steps run over SSH for
real, as root through sudo, in a temporary directory standing in for /mnt/k8s-storage.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.lab.fake_helm import FakeHelm
from tests.lab.fake_kube import KubeLab
from tests.lab.sshd import Sshd, TestUsers, write_known_hosts
from typer.testing import CliRunner

from o11yctl.cli import app

pytestmark = pytest.mark.sshd
NS = "logging"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temp dir every lab user may enter (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="o11yctl-install-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(*argv: str) -> Any:
    result = CliRunner().invoke(app, list(argv), catch_exceptions=False)
    result.doc = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result


def test_install_uninstall_delete_data_and_install_again(
        kube_cluster: KubeLab, sshd: Sshd, lab_users: TestUsers, open_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    helm = FakeHelm(tmp_path / "helm").first_on_path(monkeypatch)
    api = kube_cluster.api
    for pod in ("loki-0", "tempo-0", "grafana-0"):
        api.add_pod(NS, pod)
    api.add_service(NS, "loki", 3100, (200, "text/plain", b"ready\n"))
    api.add_service(NS, "tempo", 3200, (200, "text/plain", b"ready\n"))
    user = lab_users.nopasswd
    root = open_dir / "k8s-storage"
    config = tmp_path / "o11yctl.yaml"
    config.write_text(
        "nodes:\n"
        "  - name: node-1\n    address: 10.0.0.102\n    role: server\n"
        "  - name: node-2\n    address: 10.0.0.103\n    role: agent\n"
        f"    ssh_host: {sshd.address}\n    ssh_port: {sshd.port}\n    ssh_user: {user.name}\n"
        f"    ssh_key: {user.key}\n"
        "    labels: {hardware: heavy}\n    taints: [{key: heavy, value: 'true', effect: NoSchedule}]\n"
        f"ssh:\n  known_hosts: {tmp_path / 'known_hosts'}\n  connect_timeout: 5\n"
        f"storage:\n  node: node-2\n  root: {root}\n")
    write_known_hosts(tmp_path / "known_hosts", sshd)
    common = ["-c", str(config), "--kubeconfig", str(kube_cluster.kubeconfig), "--json"]

    first = _run("install", *common)
    assert first.exit_code == 0, first.output
    got = {i["id"]: i["outcome"] for i in first.doc["items"]}
    assert got["storage.loki"] == "created" and got["storage.tempo"] == "created"
    assert set(got.values()) <= {"created", "unchanged"}
    assert (root / "loki").stat().st_uid == 10001
    pv = api.obj("v1", "PersistentVolume", "loki-pv")
    assert pv is not None and pv["spec"]["local"]["path"] == f"{root}/loki"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"

    second = _run("install", *common)
    assert second.exit_code == 0, second.output
    assert {i["outcome"] for i in second.doc["items"]} == {"unchanged"}

    kept = _run("uninstall", *common)
    assert kept.exit_code == 0, kept.output
    assert (root / "loki").is_dir() and api.obj("v1", "PersistentVolume", "loki-pv") is not None

    gone = _run("uninstall", *common, "--delete-data", "--yes")
    assert gone.exit_code == 0, gone.output
    got = {i["id"]: i["outcome"] for i in gone.doc["items"]}
    assert got["storage.loki"] == "changed" and got["volumes.loki"] == "changed" and got["namespace"] == "changed"
    assert got["helm.loki"] == "unchanged", "already removed by the first uninstall"
    assert not (root / "loki").exists() and not (root / "tempo").exists()
    assert api.obj("v1", "PersistentVolume", "loki-pv") is None
    assert api.obj("v1", "Namespace", NS) is None

    for pod in ("loki-0", "tempo-0", "grafana-0"):  # the namespace went, and its pods with it
        api.add_pod(NS, pod)
    api.add_service(NS, "loki", 3100, (200, "text/plain", b"ready\n"))
    api.add_service(NS, "tempo", 3200, (200, "text/plain", b"ready\n"))
    third = _run("install", *common)
    assert third.exit_code == 0, third.output
    assert {i["id"]: i["outcome"] for i in third.doc["items"]}["storage.loki"] == "created"
    helm.check_clean()
