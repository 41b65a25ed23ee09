"""The helm executor with the real Helm 3 and Helm 4 binaries, wherever no real cluster is needed.

Charts come from a chart repository on 127.0.0.1 (built with ``helm package`` and
``helm repo index``). Reading releases (``list``, ``status``, ``get values``,
``history``) and ``uninstall`` run against the fake API server, which holds release
records the way helm stores them. The exact argument lists the plan builds are run
with ``--dry-run=client``. Installing for real needs a real cluster; that part of
the lifecycle is played by the stand-in in tests/lab/fake_helm.py, and the last
tests here check that the stand-in prints what the real binaries print.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.lab.fake_helm import SCRIPT
from tests.lab.fake_kube import KubeLab
from tests.lab.helm_lab import VERSIONS, ChartRepo, helm_binary, helm_env, release_secret, write_chart

from o11yctl.config import parse_config
from o11yctl.deploy.preflight import judge_local_chart
from o11yctl.errors import HelmError, PreflightError
from o11yctl.executors.helm import Helm, chart_meta
from o11yctl.stack.plan import build_plan

pytestmark = [pytest.mark.helm]
NS = "logging"


@pytest.fixture(params=[3, 4], ids=["helm3", "helm4"])
def major(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def henv(tmp_path: Path) -> dict[str, str]:
    return helm_env(tmp_path / "helm-home")


@pytest.fixture
def repo(major: int, tmp_path: Path, henv: dict[str, str]) -> Iterator[ChartRepo]:
    served = ChartRepo.start(tmp_path / "repo", helm_binary(major),
                             [("loki", "6.20.0"), ("loki", "6.21.0"), ("tempo", "1.24.4")], henv)
    yield served
    served.stop()


@pytest.fixture
def helm(major: int, fake_kube: KubeLab, henv: dict[str, str]) -> Helm:
    return Helm(helm_binary(major), kubeconfig=str(fake_kube.kubeconfig), env=henv)


def _client_dry_run(major: int) -> list[str]:
    """``--dry-run=client``; Helm 3 also validates against the server's OpenAPI document, which the fake
    API does not serve, so it is told not to."""
    return ["--dry-run=client", *(["--disable-openapi-validation"] if major == 3 else [])]


def _config(repo_url: str, **loki_chart: str) -> str:
    chart = {"name": "loki", "version": "6.21.0", **loki_chart}
    return yaml.safe_dump({"charts": {"repository": repo_url, "timeout": "2m"},
                           "components": {"loki": {"chart": chart}}})


def test_version_says_which_helm(helm: Helm, major: int) -> None:
    found = helm.version()
    assert found.major == major
    assert found.version == VERSIONS[major]
    assert found.describe().startswith(f"Helm {VERSIONS[major]} (")


def test_missing_helm_is_a_preflight_error(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match="helm not found"):
        Helm(str(tmp_path / "no-helm")).version()


def test_plan_argv_runs_with_real_helm(helm: Helm, repo: ChartRepo, tmp_path: Path, fake_kube: KubeLab,
                                       major: int) -> None:
    fake_kube.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    plan = build_plan(parse_config(_config(repo.url)), only=("loki",))
    step = next(s for s in plan.steps if s.kind == "helm")
    assert step.helm is not None
    values_dir = tmp_path / "values"
    values_dir.mkdir()
    (values_dir / step.helm.values_file).write_text("deploymentMode: SingleBinary\nloki:\n  auth_enabled: false\n")
    argv = step.helm.argv(str(values_dir))
    assert argv == ("helm", "upgrade", "--install", "loki", "loki", "--repo", repo.url, "--version", "6.21.0",
                    "--namespace", NS, "--values", f"{values_dir}/02-loki-values.yaml", "--wait", "--timeout", "2m")
    result = helm.run([*argv[1:], *_client_dry_run(major)])
    assert result.ok, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout.split("MANIFEST:", 1)[1].split("NOTES:")[0]) if d]
    (cm,) = docs
    assert cm["data"]["chart"] == "6.21.0", "the pinned version, not the newest"
    values = json.loads(cm["data"]["values.json"])
    assert values["deploymentMode"] == "SingleBinary" and values["loki"] == {"auth_enabled": False}
    assert fake_kube.api.mutations == [], "a client dry run writes nothing"


def test_a_version_the_repository_lacks_fails_with_helms_message(helm: Helm, repo: ChartRepo,
                                                                 tmp_path: Path, fake_kube: KubeLab) -> None:
    fake_kube.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    values = tmp_path / "values.yaml"
    values.write_text("{}\n")
    argv = ["helm", "upgrade", "--install", "loki", "loki", "--repo", repo.url, "--version", "9.9.9",
            "--namespace", NS, "--values", str(values), "--dry-run=client"]
    with pytest.raises(HelmError) as info:
        helm.upgrade_install(argv, timeout=60)
    assert 'chart "loki" version "9.9.9" not found' in info.value.message
    assert "helm upgrade --install loki failed (exit 1)" in info.value.message


def test_pull_show_and_template_from_the_repository(helm: Helm, repo: ChartRepo, tmp_path: Path) -> None:
    shown = helm.run(["show", "chart", "loki", "--repo", repo.url, "--version", "6.20.0"])
    assert shown.ok, shown.stderr
    assert yaml.safe_load(shown.stdout)["version"] == "6.20.0"
    pulled = helm.run(["pull", "loki", "--repo", repo.url, "--version", "6.21.0", "--destination", str(tmp_path)])
    assert pulled.ok, pulled.stderr
    tgz = tmp_path / "loki-6.21.0.tgz"
    assert chart_meta(tgz).version == "6.21.0"
    rendered = helm.run(["template", "tempo", "tempo", "--repo", repo.url, "--version", "1.24.4",
                         "--namespace", NS, "--set", "greeting=hi"])
    assert rendered.ok, rendered.stderr
    (cm,) = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert json.loads(cm["data"]["values.json"])["greeting"] == "hi"


def test_local_chart_dir_and_tgz_versions_are_checked(helm: Helm, tmp_path: Path, major: int,
                                                      henv: dict[str, str], fake_kube: KubeLab) -> None:
    chart_dir = write_chart(tmp_path / "src", "loki", "6.20.0")
    packaged = helm.run(["package", str(chart_dir), "--destination", str(tmp_path)])
    assert packaged.ok, packaged.stderr
    for path in (chart_dir, tmp_path / "loki-6.20.0.tgz"):
        meta = chart_meta(path)
        assert (meta.name, meta.version) == ("loki", "6.20.0")
        problems = judge_local_chart("loki", str(path), "6.21.0", meta.name, meta.version, allow_mismatch=False)
        assert len(problems) == 1 and "is loki 6.20.0, but the config pins 6.21.0" in problems[0].message
        assert "--allow-chart-mismatch" in (problems[0].hint or "")
        assert judge_local_chart("loki", str(path), "6.21.0", meta.name, meta.version, allow_mismatch=True) == []
    # A local chart's argv has neither --repo nor --version (helm would ignore the pin), and helm takes it.
    fake_kube.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    plan = build_plan(parse_config(_config("https://charts.invalid", path=str(chart_dir), version="6.20.0")),
                      only=("loki",))
    step = next(s for s in plan.steps if s.kind == "helm")
    assert step.helm is not None
    (tmp_path / step.helm.values_file).write_text("{}\n")
    argv = step.helm.argv(str(tmp_path))
    assert "--repo" not in argv and "--version" not in argv and argv[4] == str(chart_dir)
    result = helm.run([*argv[1:], *_client_dry_run(major)])
    assert result.ok, result.stderr


def test_not_a_chart_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match="no chart at"):
        chart_meta(tmp_path)
    bad = tmp_path / "bad.tgz"
    with tarfile.open(bad, "w:gz"):
        pass
    with pytest.raises(PreflightError, match="no chart at"):
        chart_meta(bad)


def test_reads_releases_from_the_cluster(helm: Helm, fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed(release_secret("loki", NS, 1, "superseded", "loki", "6.20.0", {"a": 1}))
    api.seed(release_secret("loki", NS, 2, "pending-upgrade", "loki", "6.21.0", {"a": 2, "b": {"c": [1, 2]}},
                            description="Preparing upgrade"))
    api.seed(release_secret("alloy", NS, 1, "deployed", "alloy", "1.11.1"))
    releases = helm.list_releases(NS)
    assert set(releases) == {"loki", "alloy"}
    loki = releases["loki"]
    assert (loki.revision, loki.status, loki.chart, loki.pending) == (2, "pending-upgrade", "loki-6.21.0", True)
    assert not releases["alloy"].pending
    assert helm.get_values("loki", NS) == {"a": 2, "b": {"c": [1, 2]}}
    assert helm.get_values("alloy", NS) == {}
    history = helm.history("loki", NS)
    assert [(h.revision, h.status, h.chart) for h in history] == [(1, "superseded", "loki-6.20.0"),
                                                                  (2, "pending-upgrade", "loki-6.21.0")]
    assert history[1].description == "Preparing upgrade"
    status = helm.status("loki", NS)
    assert status is not None and status["info"]["status"] == "pending-upgrade"
    assert helm.status("nope", NS) is None


def test_uninstall_removes_the_release_records(helm: Helm, fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed(release_secret("tempo", NS, 1, "pending-install", "tempo", "1.24.4"))
    assert helm.uninstall("tempo", NS, timeout="1m") is True
    assert api.objects("Secret") == []
    assert helm.uninstall("tempo", NS, timeout="1m") is False


def test_unreachable_cluster_is_reported_with_helms_words(major: int, tmp_path: Path, henv: dict[str, str],
                                                          fake_kube: KubeLab) -> None:
    doc = yaml.safe_load(fake_kube.kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    broken = tmp_path / "broken-kubeconfig"
    broken.write_text(yaml.safe_dump(doc))
    helm = Helm(helm_binary(major), kubeconfig=str(broken), env=henv)
    with pytest.raises(HelmError) as info:
        helm.list_releases(NS)
    assert "cluster unreachable" in info.value.message.lower()
    assert "stderr:" in info.value.message


# --- the stand-in prints what the real binaries print ---------------------------------------------


def test_stand_in_errors_match_real_helm(major: int, tmp_path: Path, henv: dict[str, str],
                                         fake_kube: KubeLab) -> None:
    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed(release_secret("loki", NS, 1, "deployed", "loki", "6.20.0"))
    api.seed(release_secret("loki", NS, 2, "pending-upgrade", "loki", "6.21.0"))
    chart = write_chart(tmp_path / "src", "loki", "6.21.0")
    env = {**henv, "KUBECONFIG": str(fake_kube.kubeconfig)}
    real = helm_binary(major)

    def stderr(*args: str) -> str:
        proc = subprocess.run([real, *args], capture_output=True, text=True, timeout=60,
                              env={**dict(__import__("os").environ), **env})
        assert proc.returncode != 0
        return proc.stderr.strip()

    pending = stderr("upgrade", "--install", "loki", str(chart), "--namespace", NS, "--wait", "--timeout", "1m")
    assert pending == "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress"
    assert pending in SCRIPT
    missing = stderr("status", "nope", "--namespace", NS)
    assert missing == "Error: release: not found" and missing in SCRIPT
    not_loaded = stderr("uninstall", "nope", "--namespace", NS)
    assert not_loaded == "Error: uninstall: Release not loaded: nope: release: not found"
    assert "Error: uninstall: Release not loaded: %s: release: not found" in SCRIPT


def test_stand_in_json_matches_real_helm(helm: Helm, tmp_path: Path, fake_kube: KubeLab) -> None:
    from tests.lab.fake_helm import FakeHelm

    api = fake_kube.api
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed(release_secret("loki", NS, 1, "deployed", "loki", "6.21.0", {"a": 1}))
    stand_in = FakeHelm(tmp_path / "stand-in")
    stand_in.seed_release("loki", NS, [{"status": "deployed", "chart": "loki-6.21.0", "values": {"a": 1}}])
    fake = Helm(str(stand_in.path), env={"FAKE_HELM_STATE": str(stand_in.state_file)})
    for method in ("list_releases",):
        real_rel, fake_rel = getattr(helm, method)(NS)["loki"], getattr(fake, method)(NS)["loki"]
        assert (real_rel.revision, real_rel.status, real_rel.chart) == (fake_rel.revision, fake_rel.status,
                                                                         fake_rel.chart)
        assert real_rel.updated.endswith("+0000 UTC") and fake_rel.updated.endswith("+0000 UTC")
    assert helm.get_values("loki", NS) == fake.get_values("loki", NS)
    real_hist, fake_hist = helm.history("loki", NS), fake.history("loki", NS)
    assert [(h.revision, h.status, h.chart) for h in real_hist] == [(h.revision, h.status, h.chart)
                                                                    for h in fake_hist]
    real_status, fake_status = helm.status("loki", NS), fake.status("loki", NS)
    assert real_status is not None and fake_status is not None
    assert set(fake_status) <= set(real_status) | {"config"}
    assert set(fake_status["info"]) >= {"status", "description", "last_deployed"}
    stand_in.check_clean()
    assert shutil.which("helm") != str(stand_in.path)
