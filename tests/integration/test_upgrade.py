"""`o11yctl upgrade --to current` end to end, from a stack installed on the runbook's set.

No cluster, helm release store, Loki, Tempo or Grafana can run here: the Kubernetes API is the
fake API server of tests/lab/fake_kube.py, helm is the stand-in of tests/lab/fake_helm.py (its
output captured from real helm), Loki, Tempo and Grafana are the fakes of
tests/lab/fake_observability.py (built from captured responses), and the storage node is a real
sshd on 127.0.0.1 whose disk holds the data directories. The CLI and the upgrade run unchanged
against them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.lab.fake_helm import FakeHelm
from tests.lab.fake_kube import KubeLab
from tests.lab.observability_lab import NS, StackLab, labels, open_directory, pod, running_stack
from tests.lab.sshd import Sshd, TestUsers
from typer.testing import CliRunner

from o11yctl.cli import app
from o11yctl.config import parse_config
from o11yctl.stack.catalog import CURRENT, RUNBOOK
from o11yctl.stack.render import render_config

pytestmark = pytest.mark.sshd

runner = CliRunner()
RELEASES = ("loki", "tempo", "alloy", "grafana")
VALUES = {"loki": "02-loki-values.yaml", "tempo": "07-tempo-values.yaml", "alloy": "03-alloy-values.yaml",
          "grafana": "04-grafana-values.yaml"}


@pytest.fixture
def lab(kube_cluster: KubeLab, sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> Iterator[StackLab]:
    with open_directory() as root, running_stack(kube_cluster, sshd, lab_users.nopasswd, root, tmp_path) as stack:
        yield stack


@pytest.fixture
def helm(lab: StackLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHelm]:
    """The releases as `o11yctl install` left them on the runbook's set: revision 1, its values."""
    fake = FakeHelm(tmp_path / "helm").first_on_path(monkeypatch)
    files = render_config(parse_config(lab.config.read_text()))
    for name in RELEASES:
        pin = RUNBOOK.pin(name)
        fake.seed_release(name, NS, [{"status": "deployed", "chart": f"{pin.chart}-{pin.version}",
                                      "values": yaml.safe_load(files[VALUES[name]])}])
    yield fake
    fake.check_clean()


def upgrade(lab: StackLab, *extra: str) -> Any:
    return runner.invoke(app, ["upgrade", "--to", "current", "-c", str(lab.config), "--kubeconfig",
                               str(lab.kubeconfig), "--json", *extra])


def charts(helm: FakeHelm) -> dict[str, tuple[str, int]]:
    """Each release's chart and revision number, as helm holds them."""
    return {name: (revs[-1]["chart"], len(revs)) for name, revs in helm.releases(NS).items()}


def volumes(lab: StackLab) -> dict[str, Any]:
    out = {}
    for kind, name, ns in (("PersistentVolume", "loki-pv", None), ("PersistentVolume", "tempo-pv", None),
                           ("PersistentVolumeClaim", "loki-pvc", NS), ("PersistentVolumeClaim", "tempo-pvc", NS)):
        obj = lab.api.obj("v1", kind, name, ns)
        assert obj is not None
        out[f"{kind}/{name}"] = (obj["metadata"]["uid"], obj["spec"])
    return out


def test_runbook_to_current_keeps_the_volumes_and_verifies_each_release(lab: StackLab, helm: FakeHelm) -> None:
    before = volumes(lab)
    files_before = sorted(p.relative_to(lab.storage_root) for p in lab.storage_root.rglob("*"))
    result = upgrade(lab, "--yes")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    steps = {i["id"]: i for i in doc["items"]}
    assert [i["id"] for i in doc["items"]] == [f"{kind}.{n}" for n in RELEASES for kind in ("upgrade", "ready")]
    assert {n: steps[f"upgrade.{n}"]["outcome"] for n in RELEASES} == {
        "loki": "changed", "tempo": "changed", "alloy": "unchanged", "grafana": "changed"}
    for n in RELEASES:
        assert "verify --only " + n in steps[f"ready.{n}"]["detail"]
    assert charts(helm) == {"loki": ("loki-18.11.0", 2), "tempo": ("tempo-2.2.4", 2), "alloy": ("alloy-1.11.1", 1),
                            "grafana": ("grafana-12.11.1", 2)}
    # the same PersistentVolumes and claims (same objects, same specs), the same files on disk
    assert volumes(lab) == before
    assert sorted(p.relative_to(lab.storage_root) for p in lab.storage_root.rglob("*")) == files_before
    # the new Loki values hand the same claim to the chart's own /var/loki volume
    loki_values = helm.releases(NS)["loki"][-1]["values"]
    assert loki_values["deploymentMode"] == "Monolithic"
    assert loki_values["singleBinary"]["persistence"]["dataVolumeParameters"] == {
        "persistentVolumeClaim": {"claimName": "loki-pvc"}}
    # one release at a time: each upgrade only after the previous release was verified
    upgrades = [c for c in helm.calls if c[:1] == ["upgrade"]]
    assert [c[2] for c in upgrades] == ["loki", "tempo", "grafana"]

    again = upgrade(lab, "--yes")
    assert again.exit_code == 0, again.output
    assert {i["outcome"] for i in json.loads(again.stdout)["items"] if i["id"].startswith("upgrade.")} == {
        "unchanged"}
    assert charts(helm) == {"loki": ("loki-18.11.0", 2), "tempo": ("tempo-2.2.4", 2), "alloy": ("alloy-1.11.1", 1),
                            "grafana": ("grafana-12.11.1", 2)}, "a re-run adds no helm revision"


def test_a_release_that_does_not_become_ready_is_rolled_back_and_the_run_stops(
        lab: StackLab, helm: FakeHelm) -> None:
    from o11yctl.access import Access, AccessOptions
    from o11yctl.deploy.upgrade import UpgradeOptions, run_upgrade
    from o11yctl.deploy.walk import StepFailed

    lab.api.seed(pod("tempo-0", "node-2", labels("tempo"), claim="tempo-pvc", ready=False), manager="kubelet")
    cfg = parse_config(lab.config.read_text())
    with Access(cfg, AccessOptions(kubeconfig=str(lab.kubeconfig))) as access, pytest.raises(StepFailed) as info:
        run_upgrade(cfg, access, UpgradeOptions(to_set="current", assume_yes=True, wait_timeout=1.0,
                                                poll_interval=0.05))
    error = info.value
    got = {i.id: i for i in error.report.items}
    assert got["upgrade.loki"].outcome == "changed" and got["ready.loki"].outcome == "unchanged"
    assert got["upgrade.tempo"].outcome == "changed"
    assert got["ready.tempo"].outcome == "failed"
    assert "tempo did not become ready" in got["ready.tempo"].detail
    assert "rolled back to revision 1" in got["ready.tempo"].detail
    for untouched in ("upgrade.alloy", "ready.alloy", "upgrade.grafana", "ready.grafana"):
        assert got[untouched].outcome == "skipped" and got[untouched].detail.startswith("not started")
    # loki stays upgraded (it was verified); tempo is back on its revision's chart; grafana untouched
    history = helm.releases(NS)
    assert history["loki"][-1]["chart"] == "loki-18.11.0"
    assert history["tempo"][-1]["chart"] == "tempo-1.24.4" and len(history["tempo"]) == 3
    assert [r["chart"] for r in history["grafana"]] == ["grafana-10.5.15"]
    assert "step ready.tempo failed" in str(error)


def test_a_pending_release_is_refused_before_anything_changes(lab: StackLab, helm: FakeHelm) -> None:
    pin = RUNBOOK.pin("grafana")
    helm.seed_release("grafana", NS, [{"status": "deployed", "chart": f"{pin.chart}-{pin.version}"},
                                      {"status": "pending-upgrade", "chart": f"{pin.chart}-{pin.version}"}])
    result = upgrade(lab, "--yes")
    assert result.exit_code == 3, result.output
    doc = json.loads(result.stdout)
    assert "release logging/grafana is pending-upgrade" in doc["error"]["message"]
    assert "nothing was changed" in doc["error"]["message"]
    assert not [c for c in helm.calls if c[:1] in (["upgrade"], ["rollback"])]


def test_tempo_blocks_the_new_version_cannot_read_are_refused(lab: StackLab, helm: FakeHelm) -> None:
    block = lab.storage_root / "tempo" / "traces" / "single-tenant" / "2f1c0a6e-0000-4000-8000-000000000001"
    block.mkdir(parents=True)
    # Tempo writes "format" for the block's version (tempodb/backend BlockMeta, json:"format")
    (block / "meta.json").write_text(json.dumps({"format": "vParquet2", "blockID": block.name,
                                                 "tenantID": "single-tenant"}))
    result = upgrade(lab, "--diff")
    assert result.exit_code == 3, result.output
    message = json.loads(result.stdout)["error"]["message"]
    assert "tempo 2.10.8 cannot read block vParquet2" in message
    assert not [c for c in helm.calls if c[:1] == ["upgrade"]]


def test_diff_shows_the_live_values_against_the_new_ones(lab: StackLab, helm: FakeHelm) -> None:
    result = upgrade(lab, "--diff")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    loki = next(r for r in doc["releases"] if r["release"] == "loki")
    assert "-deploymentMode: SingleBinary" in loki["values_diff"]
    assert "+deploymentMode: Monolithic" in loki["values_diff"]
    assert doc["found"]["loki"] == ["schema v13"]
    assert not [c for c in helm.calls if c[:1] == ["upgrade"]]


def test_back_to_the_runbook_set_is_allowed_because_the_formats_are_readable(lab: StackLab, helm: FakeHelm) -> None:
    for name in RELEASES:
        pin = CURRENT.pin(name)
        helm.seed_release(name, NS, [{"status": "deployed", "chart": f"{pin.chart}-{pin.version}"}])
    result = runner.invoke(app, ["upgrade", "--to", "runbook", "-c", str(lab.config), "--kubeconfig",
                                 str(lab.kubeconfig), "--json", "--diff"])
    assert result.exit_code == 0, result.output
    notes = [n for r in json.loads(result.stdout)["releases"] for n in r["data"]]
    assert any("loki 3.3.0 reads what 3.7.6 wrote" in n for n in notes), notes


def test_dry_run_on_the_default_is_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))  # nothing to reach, nothing reached
    monkeypatch.setenv("PATH", str(tmp_path))  # no helm either
    result = runner.invoke(app, ["upgrade", "--to", "current", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["from"] == "runbook" and doc["to"] == "current"
    assert [s["id"] for s in doc["plan"]][:2] == ["upgrade.loki", "ready.loki"]


def test_an_unknown_set_is_a_usage_error() -> None:
    result = runner.invoke(app, ["upgrade", "--to", "newest", "--dry-run"])
    assert result.exit_code == 2
    assert "unknown chart set 'newest'" in result.output
