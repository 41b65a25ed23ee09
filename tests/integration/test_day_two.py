"""Day-two changes of a volume's size and path, and the API server's refusals, end to end through the CLI.

The cluster is the fake API server of tests/lab/fake_kube.py (no control plane runs here),
which refuses what the real one refuses: a larger request on a claim no storage class
provisioned (admission plugin PersistentVolumeClaimResize, 403), a changed volume source on a
PersistentVolume (422), as recorded in tests/data/kube/. Scripted 403s use the message forms
kept in tests/data/kube/admission-403.json (authorization's and admission's own words).
helm is the stand-in of tests/lab/fake_helm.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.lab.fake_helm import FakeHelm
from tests.lab.fake_kube import KubeLab
from typer.testing import CliRunner

from o11yctl.cli import app

NS = "logging"
FORBIDDEN = json.loads((Path(__file__).resolve().parents[1] / "data" / "kube" / "admission-403.json").read_text())


@pytest.fixture
def lab(kube_cluster: KubeLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeLab]:
    helm = FakeHelm(tmp_path / "helm").first_on_path(monkeypatch)
    yield kube_cluster
    helm.check_clean()


def install(lab: KubeLab, config: Path, *args: str) -> Any:
    """The data volumes only: the namespace and each PV and claim (the directories are another test's)."""
    result = CliRunner().invoke(app, ["install", "-c", str(config), "--only", "namespace,volumes",
                                      "--kubeconfig", str(lab.kubeconfig), "--json", *args])
    result.doc = json.loads(result.stdout)
    return result


def write(config: Path, size: str = "200Gi", root: str = "/mnt/k8s-storage") -> Path:
    config.write_text(f"storage:\n  root: {root}\ncomponents:\n  loki:\n    size: {size}\n")
    return config


def loki(lab: KubeLab) -> tuple[dict[str, Any], dict[str, Any]]:
    pv = lab.api.obj("v1", "PersistentVolume", "loki-pv")
    pvc = lab.api.obj("v1", "PersistentVolumeClaim", "loki-pvc", NS)
    assert pv is not None and pvc is not None
    return pv, pvc


def test_a_bigger_size_goes_on_the_volume_and_the_claim_keeps_its_request(lab: KubeLab, tmp_path: Path) -> None:
    config = write(tmp_path / "o11yctl.yaml")
    assert install(lab, config, "--yes").exit_code == 0
    pv_uid = loki(lab)[0]["metadata"]["uid"]

    write(config, size="300Gi")
    diff = install(lab, config, "--diff")
    assert diff.exit_code == 0, diff.output
    changes = {c["target"]: c for c in diff.doc["changes"]}
    assert changes["PersistentVolume loki-pv"]["outcome"] == "changed"
    assert any("200Gi" in line and "300Gi" in line for line in changes["PersistentVolume loki-pv"]["lines"]), changes
    assert changes[f"PersistentVolumeClaim {NS}/loki-pvc"]["outcome"] == "unchanged"

    done = install(lab, config, "--yes")
    assert done.exit_code == 0, done.output
    pv, pvc = loki(lab)
    assert pv["spec"]["capacity"]["storage"] == "300Gi" and pv["metadata"]["uid"] == pv_uid
    assert pvc["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"] == "loki-pv"
    detail = next(i["detail"] for i in done.doc["items"] if i["id"] == "volumes.loki")
    assert "claim loki-pvc keeps its request of 200Gi" in detail

    again = install(lab, config, "--yes")
    assert {i["outcome"] for i in again.doc["items"]} == {"unchanged"}


def test_a_smaller_size_than_the_claim_is_refused_before_anything_changes(lab: KubeLab, tmp_path: Path) -> None:
    config = write(tmp_path / "o11yctl.yaml")
    assert install(lab, config, "--yes").exit_code == 0
    write(config, size="100Gi")
    diff = install(lab, config, "--diff")
    assert diff.exit_code == 1, diff.output
    assert diff.doc["error"]["message"].startswith("the cluster would refuse 1 change(s)")
    refused = [c for c in diff.doc["changes"] if c["refused"]]
    assert [c["target"] for c in refused] == [f"PersistentVolumeClaim {NS}/loki-pvc"]
    assert "a claim cannot shrink" in refused[0]["refused"]

    run = install(lab, config, "--yes")
    assert run.exit_code == 1
    assert run.doc["error"]["message"].startswith("nothing was changed: the cluster would refuse")
    assert loki(lab)[0]["spec"]["capacity"]["storage"] == "200Gi"


def test_a_new_storage_root_is_a_refusal_the_diff_reports(lab: KubeLab, tmp_path: Path) -> None:
    config = write(tmp_path / "o11yctl.yaml")
    assert install(lab, config, "--yes").exit_code == 0
    write(config, root="/srv/bigger-disk")
    diff = install(lab, config, "--diff")
    assert diff.exit_code == 1, diff.output
    refused = {c["target"]: c for c in diff.doc["changes"] if c["refused"]}
    assert "PersistentVolume loki-pv" in refused
    assert "spec.persistentvolumesource" in refused["PersistentVolume loki-pv"]["refused"]
    assert loki(lab)[0]["spec"]["local"]["path"] == "/mnt/k8s-storage/loki"


def test_the_fake_refuses_a_claim_growth_as_the_admission_plugin_words_it(lab: KubeLab, tmp_path: Path) -> None:
    from o11yctl.access import Access, AccessOptions
    from o11yctl.config import parse_config
    from o11yctl.errors import KubeError

    config = write(tmp_path / "o11yctl.yaml")
    assert install(lab, config, "--yes").exit_code == 0
    claim = loki(lab)[1]
    grown = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "loki-pvc", "namespace": NS},
             "spec": {**claim["spec"], "resources": {"requests": {"storage": "300Gi"}}}}
    with Access(parse_config(config.read_text()), AccessOptions(kubeconfig=str(lab.kubeconfig))) as access, \
            pytest.raises(KubeError) as info:
        access.kube().apply_manifest(grown)
    error = info.value
    assert error.status == 403 and error.refused and error.exit_code == 1
    assert FORBIDDEN["pvc_resize_static"]["message"] in error.message
    assert "a claim on a local volume cannot grow" in (error.hint or "")


@pytest.mark.parametrize(("case", "exit_code", "hint"), [
    ("rbac_namespaced", 3, "the kubeconfig's user is not allowed to do this"),
    ("quota", 1, "a ResourceQuota in the namespace limits it"),
    ("pvc_resize_static", 1, "a claim on a local volume cannot grow"),
])
def test_a_403_is_a_permission_problem_only_when_authorization_says_so(
        lab: KubeLab, tmp_path: Path, case: str, exit_code: int, hint: str) -> None:
    config = write(tmp_path / "o11yctl.yaml")
    status = FORBIDDEN[case]
    lab.api.fail("PATCH", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/loki-pvc", status=403,
                 reason="Forbidden", message=status["message"])
    run = install(lab, config, "--yes")
    assert run.exit_code == exit_code, run.output
    assert status["message"] in run.doc["error"]["message"]
    assert run.doc["error"]["hint"].startswith(hint)
