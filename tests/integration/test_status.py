"""`o11yctl status` end to end: releases from helm, objects from the Kubernetes API, Loki's metrics
through the service proxy, the data directories over SSH.

No cluster, helm release store, Loki or Grafana can run here: the Kubernetes API is the fake API
server of tests/lab/fake_kube.py, helm is the stand-in of tests/lab/fake_helm.py (its output was
captured from real helm), Loki is the fake of tests/lab/fake_observability.py (its /metrics in Loki's
exposition format), and SSH goes to a real sshd on 127.0.0.1. The CLI runs unchanged against them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.lab.fake_helm import FakeHelm
from tests.lab.fake_kube import KubeLab
from tests.lab.observability_lab import NS, StackLab, open_directory, running_stack
from tests.lab.sshd import Sshd, TestUsers
from typer.testing import CliRunner

from o11yctl.cli import app

pytestmark = pytest.mark.sshd

runner = CliRunner()
CHARTS = {"loki": "loki-6.21.0", "tempo": "tempo-1.24.4", "alloy": "alloy-1.11.1", "grafana": "grafana-10.5.15"}


@pytest.fixture
def helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHelm]:
    fake = FakeHelm(tmp_path / "helm").first_on_path(monkeypatch)
    for name, chart in CHARTS.items():
        fake.seed_release(name, NS, [{"status": "deployed", "chart": chart}])
    yield fake
    fake.check_clean()


@pytest.fixture
def lab(kube_cluster: KubeLab, sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> Iterator[StackLab]:
    with open_directory() as root, running_stack(kube_cluster, sshd, lab_users.nopasswd, root, tmp_path) as stack:
        stack.loki.started_at = time.time() - 2 * 86400
        stack.loki.bytes_received = 4 * 1024**3  # 2 GiB/day over two days
        yield stack


def status(lab: StackLab, *extra: str) -> Any:
    return runner.invoke(app, ["status", "-c", str(lab.config), "--kubeconfig", str(lab.kubeconfig), *extra])


def test_status_shows_every_part(lab: StackLab, helm: FakeHelm) -> None:
    result = status(lab, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "status" and doc["ok"] is True
    st = doc["status"]
    assert st["problems"] == {}
    assert [(r["name"], r["chart"], r["status"], r["revision"]) for r in st["releases"]] == [
        (name, CHARTS[name], "deployed", 1) for name in sorted(CHARTS)]
    # which chart set each release is on, and what the catalog knows of newer maintained charts
    by_name = {r["name"]: r for r in st["releases"]}
    assert {r["set"] for r in st["releases"]} == {"runbook"}
    assert by_name["tempo"]["deprecated"] and by_name["grafana"]["deprecated"] and not by_name["loki"]["deprecated"]
    assert by_name["loki"]["newer"]["version"] == "18.11.0" and by_name["alloy"]["newer"] is None
    pods = {p["name"]: p for p in st["pods"]}
    assert pods["loki-0"]["node"] == "node-2" and pods["loki-0"]["ready"] == "1/1"
    assert pods["loki-0"]["status"] == "Running" and pods["loki-0"]["restarts"] == 0
    volumes = {v["component"]: v for v in st["volumes"]}
    assert volumes["loki"]["pvc_status"] == "Bound" and volumes["loki"]["bound_to"] == "loki-pv"
    assert volumes["loki"]["capacity"] == "200Gi" and volumes["tempo"]["capacity"] == "50Gi"
    storage = {u["component"]: u for u in st["storage"]}
    assert storage["loki"]["exists"] and storage["loki"]["used_bytes"] >= 4096
    assert storage["loki"]["path"] == f"{lab.storage_root}/loki"
    assert storage["loki"]["fs_free_bytes"] > 0
    assert st["retention"] == {"loki": "7d", "tempo": "168h"}
    assert "buckets" not in st  # profile single-node has no object store
    rate = st["ingestion"]
    assert rate["bytes_per_day"] == pytest.approx(2 * 1024**3, rel=0.01)
    assert rate["days_held"] == pytest.approx(100, rel=0.01)
    assert "holds ~100 days at this rate, retention is 7 days" in rate["note"]
    assert st["grafana"]["url"] == f"{lab.gateway.url}/grafana"
    assert st["grafana"]["password_command"].startswith("kubectl get secret -n logging grafana")
    assert lab.grafana.admin[1] not in result.stdout


def test_status_table(lab: StackLab, helm: FakeHelm) -> None:
    result = status(lab)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    for words in ("helm releases", "loki-6.21.0", "loki-0 node-2 Running 1/1 0", "loki-pvc Bound loki-pv Bound 200Gi",
                  "data directories", "retention: loki 7d, tempo 168h", "2.00 GiB/day",
                  "holds ~100 days at this rate", "base64 -d"):
        assert words in text, words
    assert "object store" not in text
    assert lab.grafana.admin[1] not in result.output


def test_a_part_that_cannot_be_read_is_named_and_the_rest_still_shows(lab: StackLab, helm: FakeHelm) -> None:
    lab.api.set_backend(NS, "loki", 3100, None)
    result = status(lab, "--json")
    assert result.exit_code == 1
    st = json.loads(result.stdout)["status"]
    assert set(st["problems"]) == {"ingestion"}
    assert st["ingestion"] is None and st["pods"] and st["releases"]


def test_near_zero_ingestion_says_not_enough_data_in_the_table_and_null_with_the_reason_in_json(
        lab: StackLab, helm: FakeHelm) -> None:
    lab.loki.started_at = time.time() - 3 * 86400
    lab.loki.bytes_received = 12 * 1024  # the cluster: days up, next to nothing received
    rate = json.loads(status(lab, "--json").stdout)["status"]["ingestion"]
    assert rate["days_held"] is None
    assert rate["days_held_reason"].startswith("not enough data yet: Loki has received 12K in 3d")
    text = " ".join(status(lab).stdout.split())
    assert "not enough data yet: Loki has received 12K in 3d" in text and "days at this rate" not in text


def test_lokis_metrics_the_api_server_cannot_reach_are_said_as_it_said_them(lab: StackLab, helm: FakeHelm) -> None:
    lab.api.unreachable_endpoint(NS, "loki", 3100, "10.42.1.10:3100")
    st = json.loads(status(lab, "--json").stdout)["status"]
    assert st["problems"]["ingestion"].startswith(
        "the Kubernetes API server answered for svc/loki:3100: HTTP 503 ServiceUnavailable: error trying to reach "
        "service: dial tcp 10.42.1.10:3100: connect: no route to host (")
    assert "fix-vxlan" in st["problems"]["ingestion"]


def test_without_a_kubeconfig_status_says_where_it_looked(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--kubeconfig", str(tmp_path / "missing")])
    assert result.exit_code == 3
    assert "no kubeconfig at" in result.output


def test_watch_prints_one_document_per_reading_until_interrupted(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from o11yctl import ui
    from o11yctl.model import Report

    readings = iter([Report("status", extra={"status": {"n": 1}}), Report("status", extra={"status": {"n": 2}})])

    def read() -> Report:
        try:
            return next(readings)
        except StopIteration:
            raise KeyboardInterrupt from None

    monkeypatch.setattr(ui, "_json_lines", [])  # the JSON Lines mode the watch switches on stays in this test
    with pytest.raises(KeyboardInterrupt):  # the CLI turns it into exit 130 (tests/integration/test_cli_contract.py)
        ui.watch_status(read, 0.01, json_output=True)
    assert ui._json_lines, "the interrupted envelope printed after the watch must be one line too"
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["status"]["n"] for line in lines] == [1, 2]
