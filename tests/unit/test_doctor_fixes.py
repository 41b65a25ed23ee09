"""doctor's fix executor and report, with small stand-ins passed in for the SSH pool and the Kubernetes API
(they record what was asked; the real ones are exercised in tests/integration/test_doctor.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from o11yctl.doctor.facts import NetworkFacts, network_facts
from o11yctl.doctor.fixes import FixTools, apply_fixes, finding_key
from o11yctl.doctor.rules import ChownDir, Finding, RunFixVxlan
from o11yctl.doctor.run import doctor_report
from o11yctl.errors import SudoPasswordRequired
from o11yctl.model import CommandResult, SshTarget, StepResult
from o11yctl.stack.nodes import NodeChange
from o11yctl.vxlan.diagnose import Diagnosis, Direction
from o11yctl.vxlan.facts import PingFacts
from o11yctl.vxlan.firewall import Verdict

DIR = "/mnt/k8s-storage/loki"
CHOWN = ChownDir("node-2", DIR, "10001:10001")


class Node:
    """Stands in for one storage node: runs chown/stat against an owner it keeps."""

    def __init__(self, owner: str = "0:0", *, fail_sudo: bool = False) -> None:
        self.owner = owner
        self.fail_sudo = fail_sudo
        self.calls: list[tuple[str, tuple[str, ...], bool]] = []

    def run(self, target: SshTarget, argv: Sequence[str], *, sudo: bool = False, timeout: float | None = None,
            step: str = "") -> CommandResult:
        self.calls.append((target.name, tuple(argv), sudo))
        if self.fail_sudo and sudo:
            raise SudoPasswordRequired("node-2: sudo needs a password", hint="--ask-sudo-password")
        if argv[0] == "chown":
            self.owner = argv[2]
        out = self.owner + "\n" if argv[0] == "stat" else ""
        return CommandResult(tuple(argv), 0, out, "", 0.01, host=target.name)


def _target(name: str) -> SshTarget:
    return SshTarget(name=name, host="127.0.0.1")


def _finding(fid: str, subject: str, action: Any) -> Finding:
    return Finding(fid, "loki", subject, "Pod CrashLoopBackOff", "cause", ("evidence",), "fix", action)


def test_one_fix_shared_by_two_findings_runs_once() -> None:
    node = Node()
    shown: list[str] = []
    a = _finding("crashloop.ownership", "pod/loki-0", CHOWN)
    b = _finding("ready.ownership", "pod/loki-1", CHOWN)
    results = apply_fixes([a, b], FixTools(ssh=node, ssh_target=_target), confirm=lambda q: True, show=shown.append)
    assert results[finding_key(a)] is results[finding_key(b)]
    assert results[finding_key(a)].outcome == "changed" and results[finding_key(a)].host == "node-2"
    assert [c[1][0] for c in node.calls] == ["chown", "stat"] and all(c[2] for c in node.calls)
    assert shown == [f"fix for pod/loki-0 (crashloop.ownership): on node-2: sudo chown -R 10001:10001 {DIR}"]
    report = doctor_report([a, b], results, fix_requested=True)
    assert report.exit_code == 0 and len(report.items) == 1
    assert [f["status"] for f in report.extra["findings"]] == ["fixed", "fixed"]  # type: ignore[union-attr]


def test_a_declined_fix_changes_nothing_and_the_finding_stays() -> None:
    node = Node()
    f = _finding("crashloop.ownership", "pod/loki-0", CHOWN)
    results = apply_fixes([f], FixTools(ssh=node, ssh_target=_target), confirm=lambda q: False, show=lambda s: None)
    assert results[finding_key(f)].outcome == "skipped" and node.calls == []
    report = doctor_report([f], results, fix_requested=True)
    assert report.exit_code == 1 and report.extra["findings"][0]["status"] == "open"  # type: ignore[index]


def test_a_fix_that_cannot_run_fails_with_the_reason() -> None:
    f = _finding("crashloop.ownership", "pod/loki-0", CHOWN)
    no_ssh = apply_fixes([f], FixTools(no_ssh_reason="no route"), confirm=lambda q: True, show=lambda s: None,
                         assume_yes=True)
    assert (no_ssh[finding_key(f)].outcome, no_ssh[finding_key(f)].detail) == ("failed", "cannot run it: no route")
    sudo = apply_fixes([f], FixTools(ssh=Node(fail_sudo=True), ssh_target=_target), confirm=lambda q: True,
                       show=lambda s: None)
    assert sudo[finding_key(f)].detail == "node-2: sudo needs a password (--ask-sudo-password)"
    vx = _finding("alloy.push-timeout", "daemonset/alloy", RunFixVxlan())
    assert apply_fixes([vx], FixTools(), confirm=lambda q: True, show=lambda s: None)[finding_key(vx)].outcome == \
        "failed"


def test_a_chown_that_does_not_stick_is_a_failure() -> None:
    class Stubborn(Node):
        def run(self, target: SshTarget, argv: Sequence[str], **kw: Any) -> CommandResult:
            result = super().run(target, argv, **kw)
            self.owner = "0:0"
            return result

    f = _finding("crashloop.ownership", "pod/loki-0", CHOWN)
    got = apply_fixes([f], FixTools(ssh=Stubborn(), ssh_target=_target), confirm=lambda q: True, show=lambda s: None)
    assert got[finding_key(f)].outcome == "failed" and "is owned by 0:0, not 10001:10001" in got[finding_key(f)].detail


def test_node_label_fix_checks_what_the_api_returned() -> None:
    class Api:
        def __init__(self, labels: dict[str, str]) -> None:
            self.labels = labels
            self.patches: list[Any] = []

        def merge_patch(self, api_version: str, kind: str, name: str, namespace: str | None,
                        patch: Any) -> dict[str, Any]:
            self.patches.append((kind, name, patch))
            return {"metadata": {"name": name, "labels": self.labels}}

    f = _finding("pod.node-selector", "pod/loki-0", NodeChange("node-2", {"hardware": "heavy"}))
    ok = Api({"hardware": "heavy"})
    assert apply_fixes([f], FixTools(kube=ok), confirm=lambda q: True, show=lambda s: None)[
        finding_key(f)].outcome == "changed"
    assert ok.patches == [("Node", "node-2", {"metadata": {"labels": {"hardware": "heavy"}}})]
    ignored = apply_fixes([f], FixTools(kube=Api({})), confirm=lambda q: True, show=lambda s: None)
    assert ignored[finding_key(f)].detail == "node node-2 still lacks label hardware=heavy"


def test_fix_vxlan_reports_its_own_outcome() -> None:
    f = _finding("alloy.push-timeout", "daemonset/alloy", RunFixVxlan())
    tools = FixTools(fix_vxlan=lambda: StepResult("fix-vxlan", "network", "changed", "overlay works"))
    got = apply_fixes([f], tools, confirm=lambda q: True, show=lambda s: None)[finding_key(f)]
    assert (got.id, got.outcome, got.detail, got.host) == ("fix.alloy.push-timeout", "changed", "overlay works", None)


def test_report_summary_and_exit_codes() -> None:
    healthy = doctor_report([], {})
    assert healthy.exit_code == 0 and healthy.extra["healthy"] is True and "no problems found" in healthy.summary
    f = _finding("crashloop.ownership", "pod/loki-0", CHOWN)
    open_ = doctor_report([f], {})
    assert open_.exit_code == 1 and "`o11yctl doctor --fix` applies 1 of the fixes itself" in open_.summary


def test_network_facts_from_fix_vxlans_diagnosis() -> None:
    blocked = Direction("node-1", "node-2", "blocked", source="10.0.0.102",
                        by=(Verdict("iptables", "drop", "-A INPUT -p udp --dport 8472 -j DROP", "INPUT"),))
    diag = Diagnosis(nodes=("node-1", "node-2"), interface="flannel.1", port=8472, facts={},
                     pings={"node-1": PingFacts("node-1", {"node-2": False}),
                            "node-2": PingFacts("node-2", {"node-1": False})},
                     errors={}, endpoints={}, directions=(blocked, Direction("node-2", "node-1", "ok")), checks=())
    net = network_facts(diag)
    assert net.ok is False and net.fixable
    assert "UDP 8472 blocked node-1 → node-2" in net.summary
    assert net.details == ("node-1 → node-2: blocked (by -A INPUT -p udp --dport 8472 -j DROP)",)
    assert network_facts(Diagnosis(nodes=("a", "b"), interface="flannel.1", port=8472, facts={},
                                   pings={"a": PingFacts("a", {"b": True}), "b": PingFacts("b", {"a": True})},
                                   errors={}, endpoints={}, directions=(), checks=())) == NetworkFacts(
        ok=True, summary="overlay works: 2 of 2 pings between 2 nodes over flannel.1 pass", details=(),
        fixable=False)
