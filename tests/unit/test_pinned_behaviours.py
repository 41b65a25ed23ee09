"""Behaviours that were not pinned by any test: each test here fails when its behaviour is taken out.

- the configuration refuses two nodes with one name, or two nodes with one address;
- the support bundle's scrubber finds a secret in URL-safe base64, also inside a longer
  URL-safe blob (a JWT payload);
- a helm release already at the wanted chart with the wanted values is left alone, and
  a changed chart or values, a failed or a pending release, is acted on;
- a storage step's decision (create, re-own, leave) and its confirmation afterwards.

Everything goes through public functions of o11yctl; helm is the stand-in of
tests/lab/fake_helm.py (a script on disk, run by the real executor); nothing of
o11yctl is patched.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.lab.fake_helm import FakeHelm

from o11yctl.config import default_config, parse_config
from o11yctl.deploy.cluster import Deployer, ReleaseState
from o11yctl.doctor.scrub import REDACTED, Scrubber
from o11yctl.errors import ConfigError, HelmError
from o11yctl.executors.helm import Helm, Release
from o11yctl.model import CommandResult
from o11yctl.stack.datadir import PathState, confirmed, decide
from o11yctl.stack.plan import HelmRelease, Plan, Step

# --- the configuration: duplicate nodes ---------------------------------------------------------------


def _nodes_yaml(*nodes: tuple[str, str, str]) -> str:
    return yaml.safe_dump({"nodes": [{"name": n, "address": a, "role": r} for n, a, r in nodes]})


def test_two_nodes_with_one_name_are_refused() -> None:
    text = _nodes_yaml(("node-1", "10.0.0.102", "server"), ("node-2", "10.0.0.103", "agent"),
                       ("node-1", "10.0.0.104", "agent"))
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "o11yctl.yaml")
    assert caught.value.problems == [str(caught.value)]
    assert re.fullmatch(r"nodes: node name 'node-1' appears more than once \(o11yctl\.yaml:1\)", str(caught.value))


def test_two_nodes_with_one_address_are_refused() -> None:
    text = _nodes_yaml(("node-1", "10.0.0.102", "server"), ("node-2", "10.0.0.102", "agent"))
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "o11yctl.yaml")
    assert re.fullmatch(r"nodes: address 10\.0\.0\.102 appears more than once \(o11yctl\.yaml:1\)", str(caught.value))


def test_distinct_nodes_are_accepted() -> None:
    cfg = parse_config(_nodes_yaml(("node-1", "10.0.0.102", "server"), ("node-2", "10.0.0.103", "agent")))
    assert [(n.name, n.address) for n in cfg.nodes] == [("node-1", "10.0.0.102"), ("node-2", "10.0.0.103")]


# --- the scrubber: URL-safe base64 ----------------------------------------------------------------------

#: A token whose standard base64 has '+' and '/' at every byte offset, so its URL-safe forms all differ.
TOKEN = "k8s>>??tok~~en>?"


def test_the_url_safe_form_of_a_secret_is_scrubbed() -> None:
    standard = base64.b64encode(TOKEN.encode()).decode()
    urlsafe = base64.urlsafe_b64encode(TOKEN.encode()).decode()
    assert "+" in standard and "/" in standard and urlsafe != standard
    scrubber = Scrubber([TOKEN])
    for form in (urlsafe, urlsafe.rstrip("=")):
        assert scrubber.text(f"Authorization: Bearer {form}\n") == f"Authorization: Bearer {REDACTED}\n"
        assert scrubber.contains_secret(form)


@pytest.mark.parametrize("prefix", ['{"a":"', '{"ab":"', '{"abc":"'], ids=["offset-0", "offset-1", "offset-2"])
def test_a_secret_inside_a_url_safe_blob_is_scrubbed(prefix: str) -> None:
    """A JWT-like payload: the secret sits at any byte offset of unpadded URL-safe base64."""
    payload = base64.urlsafe_b64encode(f'{prefix}{TOKEN}","exp":1}}'.encode()).decode().rstrip("=")
    standard = base64.b64encode(f'{prefix}{TOKEN}","exp":1}}'.encode()).decode().rstrip("=")
    assert payload != standard
    out = Scrubber([TOKEN]).text(f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln")
    assert REDACTED in out
    assert payload not in out
    for piece in re.split(r"[.]|\[REDACTED\]", out):
        decoded = base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)) if piece else b""
        assert TOKEN.encode() not in decoded


# --- helm: act only when the release differs ------------------------------------------------------------

NS = "logging"
CHART = "loki-6.21.0"
VALUES = {"deploymentMode": "SingleBinary", "loki": {"auth_enabled": False, "limits_config": {"retention": "7d"}}}


def _release(status: str = "deployed", chart: str = CHART, revision: int = 3) -> Release:
    return Release(name="loki", namespace=NS, revision=revision, status=status, chart=chart)


def test_release_state_same_chart_and_values_has_nothing_to_do() -> None:
    state = ReleaseState("loki", CHART, VALUES, _release(), json.loads(json.dumps(VALUES)))
    assert state.lines() == []


def test_release_state_missing_release_is_installed() -> None:
    assert ReleaseState("loki", CHART, VALUES).lines() == [f"install chart {CHART}"]


def test_release_state_changed_values_are_named() -> None:
    current = json.loads(json.dumps(VALUES))
    current["loki"]["limits_config"]["retention"] = "1d"
    lines = ReleaseState("loki", CHART, VALUES, _release(), current).lines()
    assert lines and all(line.startswith("values.") for line in lines)
    assert any("retention" in line for line in lines)


def test_release_state_changed_chart_is_named() -> None:
    lines = ReleaseState("loki", CHART, VALUES, _release(chart="loki-6.20.0"), VALUES).lines()
    assert lines == ["chart loki-6.20.0 -> loki-6.21.0"]


@pytest.mark.parametrize("status", ["failed", "superseded", "uninstalling"])
def test_release_state_not_deployed_is_upgraded_again(status: str) -> None:
    lines = ReleaseState("loki", CHART, VALUES, _release(status), VALUES).lines()
    assert lines == [f"release is {status} (revision 3); upgrade again"]


@pytest.mark.parametrize("status", ["pending-install", "pending-upgrade", "pending-rollback"])
def test_release_state_pending_asks_for_recovery(status: str) -> None:
    (line,) = ReleaseState("loki", CHART, VALUES, _release(status), VALUES).lines()
    assert line.startswith(f"release is {status} (revision 3): an interrupted helm run; --recover")


def _deployer(tmp_path: Path, *, status: str, chart: str = CHART, current: dict[str, Any] | None = None,
              want: str | None = None) -> tuple[Deployer, FakeHelm, Step]:
    """A Deployer for one helm step, with a stand-in helm holding the release as found."""
    fake = FakeHelm(tmp_path / "helm")
    found = VALUES if current is None else current
    fake.seed_release("loki", NS, [{"status": status, "chart": chart, "values": found}])
    release = HelmRelease("loki", "loki", "6.21.0", "https://grafana.github.io/helm-charts", "02-loki-values.yaml",
                          NS, "5m")
    step = Step("loki", "loki", "helm-upgrade", "install the loki release", helm=release)
    helm = Helm(str(fake.path), env={"FAKE_HELM_STATE": str(fake.state_file)})
    files = {"02-loki-values.yaml": yaml.safe_dump(VALUES) if want is None else want}
    return Deployer(Plan(default_config(), (step,)), kube=None, helm=helm, files=files), fake, step


def test_helm_step_leaves_an_identical_release_alone(tmp_path: Path) -> None:
    deployer, fake, step = _deployer(tmp_path, status="deployed")
    try:
        result = deployer.helm_step(step)
    finally:
        deployer.cleanup()
    assert result.outcome == "unchanged"
    assert "already at chart loki-6.21.0 with the same values (revision 1)" in result.detail
    assert "upgrade" not in fake.commands()
    assert len(fake.releases(NS)["loki"]) == 1
    fake.check_clean()


def test_helm_step_compares_values_as_helm_returns_them(tmp_path: Path) -> None:
    """A YAML date in the values file comes back from ``helm get values -o json`` as a string: same value."""
    current = {**VALUES, "since": "2025-01-01"}
    deployer, fake, step = _deployer(tmp_path, status="deployed", current=current,
                                     want=yaml.safe_dump(VALUES) + "since: 2025-01-01\n")
    try:
        assert deployer.helm_step(step).outcome == "unchanged"
    finally:
        deployer.cleanup()
    assert "upgrade" not in fake.commands()


@pytest.mark.parametrize(("status", "chart", "current"), [
    ("deployed", CHART, {**VALUES, "deploymentMode": "SimpleScalable"}),
    ("deployed", "loki-6.20.0", VALUES),
    ("failed", CHART, VALUES),
], ids=["values", "chart", "failed"])
def test_helm_step_upgrades_a_release_that_differs(tmp_path: Path, status: str, chart: str,
                                                   current: dict[str, Any]) -> None:
    deployer, fake, step = _deployer(tmp_path, status=status, chart=chart, current=current)
    try:
        result = deployer.helm_step(step)
    finally:
        deployer.cleanup()
    assert result.outcome == "changed" and result.detail.startswith("upgraded (revision 2): ")
    assert fake.commands().count("upgrade") == 1
    assert fake.releases(NS)["loki"][-1]["values"] == VALUES
    fake.check_clean()


def test_helm_step_refuses_a_pending_release_without_recover(tmp_path: Path) -> None:
    deployer, fake, step = _deployer(tmp_path, status="pending-upgrade")
    try:
        with pytest.raises(HelmError, match="is pending-upgrade: an earlier helm run was interrupted"):
            deployer.helm_step(step)
    finally:
        deployer.cleanup()
    assert "upgrade" not in fake.commands()


# --- storage: create, re-own, leave, confirm ------------------------------------------------------------

OWNER = "10001:10001"


def _stat(stdout: str = "", stderr: str = "", code: int = 0) -> PathState | None:
    return PathState.parse(CommandResult(("stat", "-c", "%u:%g %a %F", "/srv/o11y/loki"), code, stdout, stderr, 0.01))


def test_storage_missing_directory_is_created() -> None:
    before = _stat(stderr="stat: cannot statx '/srv/o11y/loki': No such file or directory\n", code=1)
    assert before == PathState(exists=False)
    assert decide(before, OWNER) == "create"


def test_storage_directory_of_another_owner_is_re_owned() -> None:
    before = _stat("0:0 755 directory\n")
    assert before == PathState(exists=True, owner="0:0", mode="755", kind="directory")
    assert decide(before, OWNER) == "chown"


def test_storage_directory_already_owned_is_left_alone() -> None:
    before = _stat(f"{OWNER} 755 directory\n")
    assert before is not None and decide(before, OWNER) == "nothing"


def test_storage_file_in_the_way_is_refused() -> None:
    before = _stat(f"{OWNER} 644 regular file\n")
    assert before is not None and decide(before, OWNER) == "not-a-directory"


def test_storage_stat_failing_otherwise_is_not_a_state() -> None:
    assert _stat(stderr="stat: cannot statx '/srv/o11y/loki': Permission denied\n", code=1) is None


def test_storage_confirmation_after_chown() -> None:
    assert confirmed(PathState(True, OWNER, "755", "directory"), OWNER) is None
    assert confirmed(PathState(True, "0:0", "755", "directory"), OWNER) == "owned by 0:0"
    assert confirmed(PathState(False), OWNER) == "missing"
    assert confirmed(PathState(True, OWNER, "644", "regular file"), OWNER) == "a regular file"
