"""The helm stand-in's ``list`` state filters and the flags real helm refuses.

The stand-in (tests/lab/fake_helm.py) plays helm where real helm cannot run against
the fake API server. These tests run the stand-in script itself (a subprocess, no
cluster) and hold it to what helm's source says (pkg/action/list.go at v3.17.2 and
v4.1.4) and to what the real v3.17.2 and v4.1.4 binaries printed for the same
releases read from tests/lab/fake_kube.py. Each test names the old stand-in
behaviour it catches: it accepted ``--deployed``/``--failed``/``--pending`` and
ignored them, listed the same states for Helm 3 and Helm 4, and refused ``--all``
with its own exit code 2. The last test pins what o11yctl's own ``helm list`` call
sees; the old stand-in agreed with it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.lab.fake_helm import FakeHelm

from o11yctl.executors.helm import Helm

NS = "logging"
#: One release per state helm knows; each list is the release's revisions, oldest first.
RELEASES = {
    "a-deployed": ["superseded", "deployed"],
    "b-failed": ["superseded", "failed"],
    "c-pending-install": ["pending-install"],
    "d-pending-upgrade": ["superseded", "pending-upgrade"],
    "e-pending-rollback": ["superseded", "superseded", "pending-rollback"],
    "f-uninstalled": ["uninstalled"],
    "g-uninstalling": ["deployed", "uninstalling"],
    "h-superseded": ["superseded", "superseded"],
}
PENDING = ["c-pending-install", "d-pending-upgrade", "e-pending-rollback"]


def stand_in(tmp_path: Path, major: int) -> FakeHelm:
    fake = FakeHelm(tmp_path / f"helm{major}", version={3: "v3.17.2", 4: "v4.1.4"}[major])
    for name, statuses in RELEASES.items():
        fake.seed_release(name, NS, [{"status": s, "chart": "loki-6.21.0"} for s in statuses])
    return fake


def run(fake: FakeHelm, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"FAKE_HELM_STATE": str(fake.state_file), "PATH": os.environ.get("PATH", "")}
    return subprocess.run([str(fake.path), *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def listed(fake: FakeHelm, *flags: str) -> list[tuple[str, str, str]]:
    proc = run(fake, "list", "--namespace", NS, *flags, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    items: list[dict[str, Any]] = json.loads(proc.stdout)
    return [(i["name"], i["revision"], i["status"]) for i in items]


def names(fake: FakeHelm, *flags: str) -> list[str]:
    return [name for name, _rev, _status in listed(fake, *flags)]


@pytest.mark.parametrize("major", [3, 4])
def test_each_state_flag_lists_only_its_state(tmp_path: Path, major: int) -> None:
    """Old stand-in: ``--deployed`` alone still listed failed and pending releases."""
    fake = stand_in(tmp_path, major)
    assert names(fake, "--deployed") == ["a-deployed"]
    assert names(fake, "--failed") == ["b-failed"]
    assert names(fake, "--pending") == PENDING
    assert names(fake, "--uninstalled") == ["f-uninstalled"]
    assert names(fake, "--uninstalling") == ["g-uninstalling"]
    fake.check_clean()


@pytest.mark.parametrize("major", [3, 4])
def test_state_flags_combine_with_or(tmp_path: Path, major: int) -> None:
    """What o11yctl asks (``--deployed --failed --pending``); old stand-in: the flags were ignored, so
    ``--deployed --failed`` still listed pending releases."""
    fake = stand_in(tmp_path, major)
    assert names(fake, "--deployed", "--failed") == ["a-deployed", "b-failed"]
    assert names(fake, "--deployed", "--failed", "--pending") == ["a-deployed", "b-failed", *PENDING]


@pytest.mark.parametrize("major", [3, 4])
def test_the_filter_looks_at_the_latest_revision_only(tmp_path: Path, major: int) -> None:
    """A release whose last revision failed is not ``--deployed``, though an older one was; a superseded
    revision under a deployed one is not listed by ``--superseded --deployed``. Old stand-in: listed the
    failed release under ``--deployed``."""
    fake = stand_in(tmp_path, major)
    fake.seed_release("loki", NS, [{"status": "deployed", "chart": "loki-6.20.0"},
                                   {"status": "failed", "chart": "loki-6.21.0"}])
    assert "loki" not in names(fake, "--deployed")
    assert ("loki", "2", "failed") in listed(fake, "--failed")
    assert listed(fake, "--superseded", "--deployed") == [("a-deployed", "2", "deployed"),
                                                          ("h-superseded", "2", "superseded")]


@pytest.mark.parametrize("major", [3, 4])
def test_superseded_alone_lists_every_superseded_revision(tmp_path: Path, major: int) -> None:
    """helm skips filterLatestReleases when only superseded releases are asked for. Old stand-in: listed
    the latest revisions of deployed, failed and pending releases instead."""
    fake = stand_in(tmp_path, major)
    assert listed(fake, "--superseded") == [
        ("a-deployed", "1", "superseded"), ("b-failed", "1", "superseded"), ("d-pending-upgrade", "1", "superseded"),
        ("e-pending-rollback", "1", "superseded"), ("e-pending-rollback", "2", "superseded"),
        ("h-superseded", "1", "superseded"), ("h-superseded", "2", "superseded"),
    ]


def test_helm3_lists_deployed_and_failed_by_default(tmp_path: Path) -> None:
    """Helm 3's default state mask is deployed|failed. Old stand-in: listed pending releases too."""
    assert names(stand_in(tmp_path, 3)) == ["a-deployed", "b-failed"]


def test_helm4_lists_every_state_by_default(tmp_path: Path) -> None:
    """Helm 4's default state mask is every state. Old stand-in: left out uninstalled, uninstalling and
    superseded releases, as for Helm 3."""
    assert names(stand_in(tmp_path, 4)) == list(RELEASES)


@pytest.mark.parametrize("flag", ["--all", "-a"])
def test_helm3_all_lists_every_state(tmp_path: Path, flag: str) -> None:
    """Old stand-in: ``--all`` and ``-a`` were unknown flags (exit 2)."""
    fake = stand_in(tmp_path, 3)
    assert names(fake, flag) == list(RELEASES)
    fake.check_clean()


@pytest.mark.parametrize(("flag", "error"), [("--all", "Error: unknown flag: --all"),
                                             ("-a", "Error: unknown shorthand flag: 'a' in -a")])
def test_helm4_has_no_all_flag(tmp_path: Path, flag: str, error: str) -> None:
    """Real Helm 4 exits 1 with cobra's line. Old stand-in: exit 2, and ``-a`` got a different message."""
    fake = stand_in(tmp_path, 4)
    proc = run(fake, "list", "--namespace", NS, flag, "--output", "json")
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (1, error, "")
    with pytest.raises(AssertionError, match="unexpected helm call"):
        fake.check_clean()


@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize(("args", "error"), [
    (["status", "a-deployed", "--deployed"], "Error: unknown flag: --deployed"),
    (["status", "a-deployed", "--pending"], "Error: unknown flag: --pending"),
    (["status", "a-deployed", "-a"], "Error: unknown shorthand flag: 'a' in -a"),
    (["history", "a-deployed", "--failed"], "Error: unknown flag: --failed"),
])
def test_state_flags_belong_to_list_only(tmp_path: Path, major: int, args: list[str], error: str) -> None:
    """``helm status`` has no state filters: real helm refuses them. Old stand-in: accepted and ignored them,
    printing the release's status."""
    fake = stand_in(tmp_path, major)
    proc = run(fake, *args, "--namespace", NS, "--output", "json")
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (1, error, "")
    with pytest.raises(AssertionError, match="unexpected helm call"):
        fake.check_clean()


@pytest.mark.parametrize("major", [3, 4])
def test_o11yctls_release_list_sees_deployed_failed_and_pending_only(tmp_path: Path, major: int) -> None:
    """The executor's ``helm list --deployed --failed --pending``, through the stand-in: the same releases on
    Helm 3 and Helm 4, none uninstalled, uninstalling or only superseded."""
    fake = stand_in(tmp_path, major)
    helm = Helm(str(fake.path), env={"FAKE_HELM_STATE": str(fake.state_file)})
    found = helm.list_releases(NS)
    assert {name: rel.status for name, rel in found.items()} == {
        "a-deployed": "deployed", "b-failed": "failed", "c-pending-install": "pending-install",
        "d-pending-upgrade": "pending-upgrade", "e-pending-rollback": "pending-rollback",
    }
    assert all(rel.pending == (name in PENDING) for name, rel in found.items())
    fake.check_clean()
