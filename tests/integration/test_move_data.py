"""`o11yctl move-data` end to end: the data directories move to a new storage.root on the storage node.

No cluster, Loki or Tempo can run here: the Kubernetes API is the fake API server of
tests/lab/fake_kube.py (its apps/v1 StatefulSets, their scale subresource and the statefulset
controller follow the real registry and controller, see tests/data/kube/README.md), Loki and Tempo
are the fakes of tests/lab/fake_observability.py, and a pod hook of the fake plays the kubelet of the
pods the statefulset controller creates again. The storage node is a real sshd on 127.0.0.1 whose
disk holds the data: the copies, owners, modes and the room checks are real (``cp``, ``du``,
``df``), and the cases that need a small or read-only disk mount a real tmpfs. The CLI runs
unchanged against them; nothing of o11yctl is replaced.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.lab.ci import skip_or_fail
from tests.lab.fake_kube import FakeKube, KubeLab, KubeletPod
from tests.lab.observability_lab import NS, StackLab, labels, open_directory, running_stack
from tests.lab.sshd import Sshd, TestUsers
from typer.testing import CliRunner

from o11yctl.cli import app

pytestmark = pytest.mark.sshd

runner = CliRunner()
#: The data components as the lab's stack has them: (release = StatefulSet, claim, pod management policy).
DATA = {"loki": ("loki-pvc", "Parallel"), "tempo": ("tempo-pvc", "OrderedReady")}
OWNER = 10001


def statefulset(release: str, claim: str, policy: str) -> dict[str, Any]:
    """The StatefulSet of a release as the charts render it, trimmed to what the move touches: named after the
    release, selecting its pods by the chart's labels, on the storage node, mounting the claim."""
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": release, "namespace": NS},
        "spec": {
            "replicas": 1, "podManagementPolicy": policy, "serviceName": f"{release}-headless",
            "selector": {"matchLabels": labels(release)},
            "template": {
                "metadata": {"labels": labels(release)},
                "spec": {"nodeSelector": {"hardware": "heavy"},
                         "tolerations": [{"key": "heavy", "operator": "Equal", "value": "true",
                                          "effect": "NoSchedule"}],
                         "containers": [{"name": release, "image": "example"}],
                         "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]},
            },
        },
    }


def kubelet(pod: KubeletPod) -> None:
    """The node's kubelet: the pod's container starts and passes its readiness probe."""
    pod.running(pod_ip="10.42.1.20")


def owned_tree(root: Path) -> None:
    """Data as Loki and Tempo leave it: owned by 10001, with modes of their own, a symlink and a hard link."""
    for component in DATA:
        base = root / component
        (base / "wal" / "00000002").write_bytes(b"y" * 10000)
        (base / "wal" / "link").symlink_to("00000002")
        os.link(base / "wal" / "00000002", base / "wal" / "hard")
        (base / "private.json").write_text("{}")
        os.chmod(base / "private.json", 0o600)
        subprocess.run(["chown", "-hR", f"{OWNER}:{OWNER}", str(base)], check=True)
        os.chmod(base, 0o750)
        os.chmod(base / "wal", 0o700)


def tree(path: Path) -> dict[str, tuple[int, int, str, int | str]]:
    """Every entry under ``path``: owner, group, mode, and its size (or a link's target)."""
    out: dict[str, tuple[int, int, str, int | str]] = {}
    for p in sorted([path, *path.rglob("*")]):
        st = p.lstat()
        what: int | str = os.readlink(p) if p.is_symlink() else (st.st_size if p.is_file() else 0)
        out[str(p.relative_to(path))] = (st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode)), what)
    return out


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real, small filesystem at ``path`` (root only), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "o11yctl-lab", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_or_fail(f"the move-data lab mounts a tmpfs (needs root and CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def lab(kube_cluster: KubeLab, sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> Iterator[StackLab]:
    with open_directory() as root, running_stack(kube_cluster, sshd, lab_users.nopasswd, root, tmp_path) as stack:
        owned_tree(root)
        for release, (claim, policy) in DATA.items():
            stack.api.add_statefulset(statefulset(release, claim, policy))
        stack.api.settle()  # the statefulset controller adopts loki-0 and tempo-0
        yield stack


@pytest.fixture
def new_root() -> Iterator[Path]:
    with open_directory() as path:
        yield path


def point_at(lab: StackLab, root: Path) -> None:
    """The user's edit: storage.root changed in the config file."""
    text = lab.config.read_text()
    assert f"root: {lab.storage_root}\n" in text
    lab.config.write_text(text.replace(f"root: {lab.storage_root}\n", f"root: {root}\n"))


def move(lab: StackLab, *extra: str) -> Any:
    return runner.invoke(app, ["move-data", "-c", str(lab.config), "--kubeconfig", str(lab.kubeconfig), "--json",
                               *extra])


def volume(api: FakeKube, component: str) -> tuple[str, str, str, str]:
    """(the PV's uid, its path, its phase, the phase of its claim)."""
    pv = api.obj("v1", "PersistentVolume", f"{component}-pv")
    pvc = api.obj("v1", "PersistentVolumeClaim", DATA[component][0], NS)
    assert pv is not None and pvc is not None
    assert pvc["spec"]["volumeName"] == f"{component}-pv"
    return pv["metadata"]["uid"], pv["spec"]["local"]["path"], pv["status"]["phase"], pvc["status"]["phase"]


def running(api: FakeKube, release: str) -> list[tuple[str, str, str]]:
    """The release's pods: (name, node, phase), as the StatefulSet's replicas say."""
    sts = api.obj("apps/v1", "StatefulSet", release, NS)
    assert sts is not None
    pods = [p for p in api.objects("Pod") if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/instance")
            == release]
    assert len(pods) == sts["spec"]["replicas"]
    return [(p["metadata"]["name"], p["spec"].get("nodeName", ""), p["status"]["phase"]) for p in pods]


def test_a_root_move_copies_on_the_node_keeps_owner_and_modes_and_keeps_the_old_directories(
        lab: StackLab, new_root: Path) -> None:
    for release in DATA:
        lab.api.on_pod_created(kubelet, label_selector=f"app.kubernetes.io/instance={release}")
    before = {c: tree(lab.storage_root / c) for c in DATA}
    uids = {c: volume(lab.api, c)[0] for c in DATA}
    target = new_root / "store"  # does not exist yet: df measures its nearest existing parent
    point_at(lab, target)

    result = move(lab, "--yes")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    ids = [i["id"] for i in doc["items"]]
    assert ids == ["room", *(f"{k}.{c}" for c in DATA for k in ("stop", "copy", "unbind", "volume", "start",
                                                                      "verify"))]
    steps = {i["id"]: i for i in doc["items"]}
    for c in DATA:
        # copied on the node: every entry with its owner, group and mode; the old directory untouched
        assert tree(target / c) == before[c]
        assert tree(lab.storage_root / c) == before[c]
        assert (target / c / "wal" / "hard").stat().st_ino == (target / c / "wal" / "00000002").stat().st_ino
        assert "owner 10001:10001 mode 750 kept" in steps[f"copy.{c}"]["detail"]
        # the volume re-created at the new path (a new object), its claim Bound to it again
        uid, path, phase, claim = volume(lab.api, c)
        assert (path, phase, claim) == (str(target / c), "Bound", "Bound") and uid != uids[c]
        # stopped, then started again: the same replicas, a new pod on the storage node
        assert "from 1 to 0" in steps[f"stop.{c}"]["detail"] and f"{c}-0" in steps[f"stop.{c}"]["detail"]
        assert running(lab.api, c) == [(f"{c}-0", "node-2", "Running")]
        sts = lab.api.obj("apps/v1", "StatefulSet", c, NS)
        assert sts is not None and "o11yctl/replicas-before-move" not in (sts["metadata"].get("annotations") or {})
        assert steps[f"verify.{c}"]["outcome"] == "unchanged"
        assert f"cluster.data.{c}" in steps[f"verify.{c}"]["detail"]
    assert doc["old_directories"] == [str(lab.storage_root / c) for c in DATA]
    assert doc["delete_old"].endswith(f"sudo rm -rf --one-file-system -- {lab.storage_root}/loki "
                                      f"{lab.storage_root}/tempo")

    again = move(lab, "--yes")
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["items"] == [] and {m["state"] for m in second["moves"]} == {"done"}, "a re-run changes nothing"


def test_not_enough_room_is_refused_before_anything_changes(lab: StackLab, new_root: Path) -> None:
    before = {c: volume(lab.api, c) for c in DATA}
    with tmpfs(new_root / "small", "1m") as small:
        point_at(lab, small)
        result = move(lab, "--yes")
        assert result.exit_code == 3, result.output
        error = json.loads(result.stdout)["error"]
        assert "not enough room on node-2" in error["message"] and "nothing was changed" in error["message"]
        assert sorted(p.name for p in small.iterdir()) == []
    assert {c: volume(lab.api, c) for c in DATA} == before
    for release in DATA:
        assert running(lab.api, release) == [(f"{release}-0", "node-2", "Running")]


def test_a_failing_copy_keeps_the_source_and_starts_the_component_again(lab: StackLab, new_root: Path) -> None:
    lab.api.on_pod_created(kubelet, label_selector="app.kubernetes.io/instance=loki")
    before = tree(lab.storage_root / "loki")
    volumes = {c: volume(lab.api, c) for c in DATA}
    with tmpfs(new_root / "disk", "2g") as disk:
        for c in DATA:
            (disk / c).mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)  # cp fails: a read-only filesystem
        point_at(lab, disk)
        result = move(lab, "--yes")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    got = {i["id"]: i for i in doc["items"]}
    assert got["room"]["outcome"] == "unchanged" and got["stop.loki"]["outcome"] == "changed"
    assert got["copy.loki"]["outcome"] == "failed" and "Read-only file system" in got["copy.loki"]["detail"]
    assert got["restart.loki"]["outcome"] == "changed" and "back to 1" in got["restart.loki"]["detail"]
    for untouched in ("unbind.loki", "volume.loki", "stop.tempo", "copy.tempo"):
        assert got[untouched]["outcome"] == "skipped"
    assert "old directories are kept" in doc["error"]["hint"]
    assert tree(lab.storage_root / "loki") == before
    assert {c: volume(lab.api, c) for c in DATA} == volumes
    for release in DATA:
        assert running(lab.api, release) == [(f"{release}-0", "node-2", "Running")]


def test_dry_run_reads_only_the_volumes_and_shows_every_command(lab: StackLab, new_root: Path) -> None:
    point_at(lab, new_root)
    requests = len(lab.api.mutations)
    result = move(lab, "--dry-run")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["mode"] == "dry-run" and doc["offline"] is False
    assert [m["source"] for m in doc["moves"]] == [str(lab.storage_root / c) for c in DATA]
    copy = next(s for s in doc["plan"] if s["id"] == "copy.loki")
    assert (f"node-2$ sudo -n -- cp -a --one-file-system -- {lab.storage_root}/loki/. {new_root}/loki/"
            in copy["commands"])
    assert len(lab.api.mutations) == requests, "a dry run changes nothing"
    assert sorted(new_root.iterdir()) == []


def test_install_with_a_changed_root_refuses_and_names_move_data(lab: StackLab, new_root: Path) -> None:
    point_at(lab, new_root)
    result = runner.invoke(app, ["install", "--only", "volumes", "--yes", "-c", str(lab.config), "--kubeconfig",
                                 str(lab.kubeconfig), "--json"])
    assert result.exit_code != 0, result.output
    error = json.loads(result.stdout)["error"]
    assert "spec.persistentvolumesource" in error["message"]
    assert "o11yctl move-data" in error["hint"]


def test_dry_run_with_from_is_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))  # nothing to reach, nothing reached
    config = tmp_path / "o11yctl.yaml"
    config.write_text("storage:\n  root: /srv/o11y\n")
    result = runner.invoke(app, ["move-data", "-c", str(config), "--from", "/mnt/k8s-storage", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["offline"] is True
    assert [(m["source"], m["target"]) for m in doc["moves"]] == [
        ("/mnt/k8s-storage/loki", "/srv/o11y/loki"), ("/mnt/k8s-storage/tempo", "/srv/o11y/tempo")]
    room = doc["plan"][0]
    assert room["id"] == "room" and "node-2$ sudo -n -- df -Pk -- /srv/o11y" in room["commands"]


def test_without_a_cluster_it_is_exit_3(tmp_path: Path) -> None:
    from tests.lab.sshd import free_port

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": f"https://127.0.0.1:{free_port()}",
                                                 "insecure-skip-tls-verify": True}}],
        "users": [{"name": "lab", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}]}))
    result = runner.invoke(app, ["move-data", "--yes", "--kubeconfig", str(kubeconfig), "--json"])
    assert result.exit_code == 3, result.output
    assert "nothing was changed" in json.loads(result.stdout)["error"]["message"]
