"""Ctrl-C in the middle of a real `o11yctl install` process walking its graph.

The cluster is the fake API server of tests/lab/fake_kube.py and helm is the stand-in of
tests/lab/fake_helm.py (no control plane or release store can run here); the stand-in's
``helm upgrade`` keeps its revision pending while it "waits", as real helm does, so an
abandoned release would show. SIGINT goes to o11yctl's whole process group, as a terminal's
Ctrl-C does; helm runs in a session of its own and does not get it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.lab.fake_helm import FakeHelm
from tests.lab.fake_kube import KubeLab

NS = "logging"
READY = (200, "text/plain; charset=utf-8", b"ready\n")
_SCRIPT = Path(sys.executable).with_name("o11yctl")
O11YCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "o11yctl"]


@pytest.fixture
def cluster(kube_cluster: KubeLab) -> KubeLab:
    api = kube_cluster.api
    for name, node, release in (("loki-0", "node-2", "loki"), ("tempo-0", "node-2", "tempo"),
                                ("alloy-abcde", "node-1", "alloy"), ("grafana-5f7d9c-xk2lp", "node-1", "grafana")):
        api.add_pod(NS, name, node=node, labels={"app.kubernetes.io/name": release,
                                                  "app.kubernetes.io/instance": release})
    api.add_service(NS, "loki", 3100, READY)
    api.add_service(NS, "tempo", 3200, READY)
    return kube_cluster


def _status(helm: FakeHelm, release: str) -> str | None:
    revs = helm.releases(NS).get(release)
    return revs[-1]["status"] if revs else None


def _start(cluster: KubeLab, helm: FakeHelm, tmp_path: Path) -> subprocess.Popen[str]:
    config = tmp_path / "o11yctl.yaml"
    config.write_text("route:\n  url: http://127.0.0.1:9/grafana\n")
    env = {**os.environ, **helm.env(), "HOME": str(tmp_path), "NO_COLOR": "1"}
    env.pop("O11YCTL_HELM", None)
    return subprocess.Popen([*O11YCTL, "install", "-c", str(config), "--kubeconfig", str(cluster.kubeconfig),
                             "--skip", "storage", "--yes", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(what: str, predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_ctrl_c_mid_walk_finishes_running_steps_and_starts_nothing_new(
        cluster: KubeLab, tmp_path: Path) -> None:
    helm = FakeHelm(tmp_path / "helm")
    helm.set_duration("loki", 2.0)
    helm.set_duration("tempo", 2.0)
    proc = _start(cluster, helm, tmp_path)
    _wait_for("helm to start installing loki", lambda: _status(helm, "loki") == "pending-install")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "stopping (interrupted): waiting for" in err
    doc = json.loads(out)
    assert doc["exit_code"] == 130 and doc["error"]["message"].startswith("interrupted")
    items = {i["id"]: i for i in doc["items"]}
    # the release that was running was waited for: done, never abandoned pending
    assert items["helm.loki"]["outcome"] == "created"
    assert _status(helm, "loki") == "deployed"
    # nothing that depends on it started; every step is either done or not started
    for later in ("helm.alloy", "helm.grafana", "route", "wait.ready"):
        assert items[later]["outcome"] == "skipped" and items[later]["detail"].startswith("not started"), items
    assert _status(helm, "alloy") is None and _status(helm, "grafana") is None
    assert {i["outcome"] for i in doc["items"]} <= {"created", "changed", "unchanged", "skipped"}
    helm.check_clean()


def test_a_second_ctrl_c_stops_waiting_and_says_what_was_left_running(cluster: KubeLab, tmp_path: Path) -> None:
    helm = FakeHelm(tmp_path / "helm")
    helm.set_duration("loki", 3.0)
    proc = _start(cluster, helm, tmp_path)
    _wait_for("helm to start installing loki", lambda: _status(helm, "loki") == "pending-install")
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)  # the first Ctrl-C has been taken: o11yctl waits for helm.loki
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    items = {i["id"]: i for i in json.loads(out)["items"]}
    assert items["helm.loki"]["outcome"] == "failed"
    assert items["helm.loki"]["detail"].startswith("stopped: still running when o11yctl stopped waiting")
    # helm was not killed with o11yctl: it finishes the release on its own
    _wait_for("helm to finish loki by itself", lambda: _status(helm, "loki") == "deployed", timeout=10)
