"""`o11yctl doctor --fix` opens TCP 10250 for the K3s server, end to end: the real CLI, over real SSH, in a
network-namespace lab whose "server" really dials the "kubelet" of the other node.

The lab (tests/lab/vxlan_lab.py) builds two nodes (198.18.0.1 is the server, 198.18.0.2 the
agent), each with its own sshd; the CLI runs in the lab's controller namespace. No kubelet or API
server can run here, so a fake Kubernetes API server (tests/lab/fake_kube.py) runs in the
controller namespace and answers as a real one does when it cannot reach a kubelet (the shapes, with
their sources, are in tests/data/kube/kubelet-unreachable.json); whether it can is decided by a real
TCP connection from node-1's namespace to a listener on 198.18.0.2:10250, so node-2's real firewall
decides. Its service proxy forwards to the fake Loki, Tempo and Grafana of
tests/lab/fake_observability.py. Traffic stays inside 198.18.0.0/15 and the lab's namespaces.
Without root these tests skip; under CI=true they fail instead.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.lab import doctor_lab
from tests.lab.ci import skip_or_fail
from tests.lab.fake_kube import FakeKube
from tests.lab.vxlan_lab import VxlanLab, in_netns, unavailable_reason, vxlan_lab

from o11yctl.config import parse_config

pytestmark = [pytest.mark.root, pytest.mark.sshd, pytest.mark.slow]

KUBELET_PORT = 10250
TAG = "o11yctl-kubelet"
#: What Go's dial says for these errors: syscall's errors table
#: (tests/data/kube/sources/golang__syscall_errors_linux.txt).
GO_ERRNO = {errno.EHOSTUNREACH: "no route to host", errno.ECONNREFUSED: "connection refused",
            errno.ETIMEDOUT: "connection timed out", errno.ENETUNREACH: "network is unreachable"}


def go_dial(exc: OSError) -> str:
    """An OSError of connect() as Go's net package words it after ``dial tcp ADDR:PORT: ``."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "i/o timeout"
    return "connect: " + GO_ERRNO.get(exc.errno or 0, os.strerror(exc.errno or 0).lower())


def dial_from(lab: VxlanLab, server: str) -> Callable[[str, str, int], str | None]:
    """The fake API server's kubelet dial, made for real from ``server``'s namespace."""
    netns = lab.node(server).netns

    def dial(_node: str, address: str, port: int) -> str | None:
        with in_netns(netns):
            try:
                socket.create_connection((address, port), timeout=2).close()
            except OSError as exc:
                return go_dial(exc)
        return None

    return dial


@contextlib.contextmanager
def kubelet_listening(lab: VxlanLab, node: str) -> Iterator[None]:
    """A TCP listener on the node's address, port 10250, standing for its kubelet (it accepts and hangs up)."""
    n = lab.node(node)
    with in_netns(n.netns):
        server = socket.create_server((n.address, KUBELET_PORT))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _peer = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, name=f"kubelet {node}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[VxlanLab]:
    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    with vxlan_lab(2, tmp_path / "lab") as built:
        yield built


@pytest.fixture
def cluster(lab: VxlanLab, tmp_path: Path) -> Iterator[tuple[FakeKube, Path, Path]]:
    """The runbook's stack in a fake API in the controller's namespace, on the lab's two nodes; and a config."""
    doc: dict[str, Any] = yaml.safe_load(lab.config_yaml())
    doc["storage"]["node"] = "node-2"
    doc["nodes"][1].update(labels={"hardware": "heavy"},
                           taints=[{"key": "heavy", "value": "true", "effect": "NoSchedule"}])
    config = tmp_path / "o11yctl.yaml"
    config.write_text(yaml.safe_dump(doc))
    cfg = parse_config(config.read_text())
    api = FakeKube()
    with contextlib.ExitStack() as stack:
        with lab.in_controller():  # the API server and the services' pods listen where the CLI runs
            api.start()
            stack.callback(api.stop)
            stack.enter_context(doctor_lab.serving_services(api, cfg))
        doctor_lab.seed_stack(api, skip=("node-1", "node-2"), cfg=cfg)
        api.add_node("node-1", address=lab.node("node-1").address,
                     labels={"node-role.kubernetes.io/control-plane": "true"})
        api.add_node("node-2", address=lab.node("node-2").address, labels={"hardware": "heavy"},
                     taints=[{"key": "heavy", "value": "true", "effect": "NoSchedule"}])
        api.kubelet_dialer = dial_from(lab, "node-1")  # the API server runs on node-1, the K3s server
        for node in lab.nodes:
            stack.enter_context(kubelet_listening(lab, node.name))
        yield api, api.write_kubeconfig(tmp_path / "kubeconfig"), config
    api.check_clean()


def doctor(lab: VxlanLab, config: Path, kubeconfig: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = lab.run_cli(["doctor", "-c", str(config), "--kubeconfig", str(kubeconfig), "--json", *args])
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON on stdout (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def snapshot(lab: VxlanLab) -> dict[str, Any]:
    return {n.name: (lab.iptables_rules(n), sorted(p.name for p in n.etc_dir.iterdir())) for n in lab.nodes}


def test_doctor_fix_opens_10250_for_the_server_only_and_a_second_run_adds_nothing(
        lab: VxlanLab, cluster: tuple[FakeKube, Path, Path]) -> None:
    api, kubeconfig, config = cluster
    server = lab.node("node-1").address
    # node-2 answers the server's connections to its kubelet with "host unreachable", as firewalld's
    # default reject does; UDP 8472 and SSH stay open.
    lab.iptables("node-2", "-A", "INPUT", "-p", "tcp", "--dport", str(KUBELET_PORT), "-j", "REJECT",
                 "--reject-with", "icmp-host-unreachable")
    before = {n.name: lab.iptables_rules(n) for n in lab.nodes}

    code, doc = doctor(lab, config, kubeconfig)
    assert code == 1
    assert [f["id"] for f in doc["findings"]] == ["kubelet.unreachable"], doc["findings"]
    finding = doc["findings"][0]
    assert finding["subject"] == "node/node-2"
    assert "dial tcp 198.18.0.2:10250: connect: no route to host" in "\n".join(finding["evidence"])
    assert f"-s {server}/32 -p tcp --dport 10250 -j ACCEPT" in finding["fix"]
    assert {n.name: lab.iptables_rules(n) for n in lab.nodes} == before  # doctor alone changes nothing

    code, doc = doctor(lab, config, kubeconfig, "--fix", "--yes")
    assert code == 0, doc
    assert doc["findings"][0]["status"] == "fixed"
    (item,) = doc["items"]
    assert (item["id"], item["host"], item["outcome"]) == ("fix.kubelet.unreachable", "node-2", "changed"), item
    assert f"node-2 accepts TCP 10250 from {server} now" in item["detail"]
    rule = f"-A INPUT -s {server}/32 -p tcp -m tcp --dport 10250 -m comment --comment {TAG} -j ACCEPT"
    after = lab.iptables_rules("node-2")
    assert [r for r in after if r not in before["node-2"]] == [rule]
    assert next(r for r in after if r.startswith("-A INPUT")) == rule  # at the top, before the REJECT
    assert [r for r in after if r != rule] == before["node-2"]  # nothing else touched
    assert lab.iptables_rules("node-1") == before["node-1"]
    script = lab.node("node-2").etc_dir / "kubelet-firewall.sh"
    saved = [line for line in script.read_text().splitlines() if line.startswith("iptables")]
    assert saved == [f"iptables -w 5 -C INPUT {rule[len('-A INPUT '):]} 2>/dev/null || "
                     f"iptables -w 5 -I INPUT {rule[len('-A INPUT '):]} || rc=1"]
    assert not (lab.node("node-2").etc_dir / "vxlan-firewall.sh").exists()

    # The saved script puts the rule back after a reboot (here: after the rule is gone).
    lab.iptables("node-2", "-D", "INPUT", *rule.split()[2:])
    lab.sh("node-2", ["sh", str(Path("/etc") / lab.etc_name / "kubelet-firewall.sh")])
    assert rule in lab.iptables_rules("node-2")

    fixed = snapshot(lab)
    code, doc = doctor(lab, config, kubeconfig, "--fix", "--yes")
    assert code == 0, doc
    assert doc["findings"] == [] and doc["items"] == []
    assert snapshot(lab) == fixed
    assert api.kubelet_dialer("node-2", lab.node("node-2").address, KUBELET_PORT) is None
