"""doctor's evidence beyond the runbook's tree, on hand-built facts: a kubelet the API server cannot reach, a
Service's pod it cannot reach, and `verify` verdicts nothing explains; and the plan that opens TCP 10250
with fix-vxlan's firewall code."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from o11yctl.config import Vxlan, default_config
from o11yctl.doctor.facts import (
    CheckFacts,
    ContainerFacts,
    Dial,
    Facts,
    LogFailure,
    NetworkFacts,
    NodeFacts,
    PodFacts,
    check_facts,
    expectations,
)
from o11yctl.doctor.kubelet import (
    KUBELET_SCRIPT,
    KUBELET_TAG,
    KUBELET_UNIT,
    OpenKubeletPort,
    persistence,
    plan_open,
    probe,
    still_blocked,
)
from o11yctl.doctor.rules import Finding, RunFixVxlan, judge, needs_network_diagnosis
from o11yctl.model import CheckResult
from o11yctl.vxlan.facts import Device, Firewalld, FirewallFacts
from o11yctl.vxlan.facts import NodeFacts as VxlanNode
from o11yctl.vxlan.fix import persist_script

DIAL = Dial("10.0.0.103", 10250, "connect: no route to host", "dial tcp 10.0.0.103:10250: connect: no route to host")
ANSWER = ('HTTP 500: Get "https://10.0.0.103:10250/containerLogs/logging/alloy-b/alloy?tailLines=200": '
          f"{DIAL.text}")


def _pod(name: str, component: str, node: str, ip: str) -> PodFacts:
    return PodFacts(name=name, component=component, phase="Running", node=node, ready=True, ip=ip,
                    containers=(ContainerFacts(component, ready=True, state="running"),))


def healthy(**kw: Any) -> Facts:
    base: dict[str, Any] = dict(
        expected=expectations(default_config()),
        nodes=(NodeFacts("node-1", addresses=(("InternalIP", "10.0.0.102"),)),
               NodeFacts("node-2", addresses=(("InternalIP", "10.0.0.103"), ("Hostname", "node-2")))),
        pods=(_pod("alloy-a", "alloy", "node-1", "10.42.0.20"), _pod("alloy-b", "alloy", "node-2", "10.42.1.20"),
              _pod("grafana-x", "grafana", "node-1", "10.42.0.12"), _pod("loki-0", "loki", "node-2", "10.42.1.10")),
    )
    base.update(kw)
    return Facts(**base)


def _ids(findings: list[Finding]) -> list[str]:
    return [f.id for f in findings]


def check(check_id: str, group: str, status: str, detail: str, hint: str | None = "a hint") -> CheckFacts:
    return check_facts(CheckResult(check_id, group, status, detail, hint))  # type: ignore[arg-type]


# --- the kubelet ---------------------------------------------------------------------------------


def test_a_kubelet_out_of_the_api_servers_reach_is_a_finding_per_node_with_the_fix() -> None:
    failures = tuple(LogFailure("alloy-b", c, False, "node-2", ANSWER, kubelet=DIAL)
                     for c in ("alloy", "config-reloader"))
    findings = judge(healthy(log_failures=failures))
    assert _ids(findings) == ["kubelet.unreachable"]
    f = findings[0]
    assert f.subject == "node/node-2" and f.component == "network"
    assert "cannot connect to the kubelet of node-2 at 10.0.0.103:10250" in f.cause
    assert "K3s needs TCP 10250 open from the server to every node" in f.cause
    assert "a firewall on node-2 rejecting it" in f.cause  # what "no route to host" usually means
    assert f"log of alloy-b/alloy: {ANSWER}" in f.evidence
    assert "node node-2: InternalIP 10.0.0.103, Hostname node-2" in f.evidence
    assert "`sudo iptables -I INPUT -s 10.0.0.102/32 -p tcp --dport 10250 -j ACCEPT`" in f.fix
    assert f.action == OpenKubeletPort(node="node-2", address="10.0.0.103", sources=("10.0.0.102",))
    assert "o11yctl-kubelet" in f.action.describe() and "--dport 10250" in f.action.describe()


def test_the_causes_of_each_dial_error() -> None:
    timeout = replace(DIAL, why="i/o timeout", text="dial tcp 10.0.0.103:10250: i/o timeout")
    refused = replace(DIAL, why="connect: connection refused")
    for dial, words in ((timeout, "got no answer"), (refused, "the kubelet is not listening")):
        f = judge(healthy(log_failures=(LogFailure("alloy-b", "alloy", False, "node-2", "x", kubelet=dial),)))[0]
        assert words in f.cause, f.cause


def test_a_kubelet_on_the_only_server_cannot_be_opened_by_doctor() -> None:
    dial = replace(DIAL, host="10.0.0.102", text="dial tcp 10.0.0.102:10250: connect: connection refused",
                   why="connect: connection refused")
    f = judge(healthy(log_failures=(LogFailure("alloy-a", "alloy", False, "node-1", "x", kubelet=dial),)))[0]
    assert f.subject == "node/node-1" and f.action is None
    assert "no other node has role server" in f.fix


def test_verifys_unreadable_logs_are_the_kubelet_finding_not_an_unexplained_one() -> None:
    detail = f"the logs of alloy-b could not be read: the API server could not reach the kubelet of node-2: {ANSWER}"
    c = check("alloy.push-errors", "alloy", "FAIL", detail)
    assert c.kubelet and c.dial == DIAL
    assert _ids(judge(healthy(checks=(c,)))) == ["kubelet.unreachable"]
    failures = (LogFailure("alloy-b", "alloy", False, "node-2", ANSWER, kubelet=DIAL),)
    assert _ids(judge(healthy(checks=(c,), log_failures=failures))) == ["kubelet.unreachable"]


# --- a Service's pod ------------------------------------------------------------------------------

PROXY = ("the Kubernetes API server could not connect to Grafana's pod at {ip}:3000 behind svc/grafana:80: HTTP 503 "
         "ServiceUnavailable: error trying to reach service: dial tcp {ip}:3000: connect: no route to host")


def test_a_pod_on_the_servers_own_node_is_not_an_overlay_problem() -> None:
    c = check("grafana.health", "grafana", "FAIL", PROXY.format(ip="10.42.0.12"))
    facts = healthy(checks=(c,))
    assert not needs_network_diagnosis(facts)
    f = judge(facts)[0]
    assert (f.id, f.subject, f.component) == ("service.unreachable", "pod/grafana-x", "grafana")
    assert "the overlay between nodes is not the cause" in f.cause and f.action is None


def test_a_pod_on_another_node_asks_the_overlay_and_fixes_it_when_broken() -> None:
    moved = _pod("grafana-x", "grafana", "node-2", "10.42.1.12")
    c = check("grafana.health", "grafana", "FAIL", PROXY.format(ip="10.42.1.12"))
    facts = healthy(checks=(c,), pods=(*healthy().pods[:2], moved))
    assert needs_network_diagnosis(facts)
    broken = replace(facts, network=NetworkFacts(ok=False, summary="overlay broken: node-1 → node-2",
                                                 details=("node-1 → node-2: blocked",), fixable=True))
    f = judge(broken)[0]
    assert "Flannel's VXLAN (UDP 8472)" in f.cause and "the overlay between the nodes is broken" in f.cause
    assert f.action == RunFixVxlan() and "fix-vxlan diagnosis: overlay broken: node-1 → node-2" in f.evidence
    unknown = judge(replace(facts, network=NetworkFacts(ok=None, summary="not diagnosed")))[0]
    assert "o11yctl fix-vxlan --check" in unknown.fix


def test_no_endpoints_without_a_pod_finding_says_the_service_has_no_ready_pod() -> None:
    c = check("loki.ready", "loki", "FAIL", 'no Ready pod behind the Service after 15s: HTTP 503 ServiceUnavailable: '
                                           'no endpoints available for service "loki"')
    f = judge(healthy(checks=(c,)))
    assert _ids(f) == ["service.no-endpoints"] and "pod loki-0: Running, Ready" in f[0].evidence


# --- verify's verdicts -----------------------------------------------------------------------------


def test_a_failing_check_nothing_explains_is_an_explicit_unexplained_finding() -> None:
    c = check("tempo.search", "tempo", "FAIL", "/api/search answered HTTP 500: rpc error", "check Tempo's logs")
    f = judge(healthy(checks=(c,)))
    assert _ids(f) == ["verify.unexplained"]
    assert f[0].subject == "check/tempo.search" and f[0].symptom == "verify tempo.search FAILs"
    assert f[0].cause.startswith("doctor cannot tell why")
    assert "verify tempo.search: FAIL /api/search answered HTTP 500: rpc error" in f[0].evidence
    assert "verify's hint: check Tempo's logs" in f[0].evidence
    assert "o11yctl verify --only tempo" in f[0].fix


def test_a_failing_check_a_finding_explains_adds_nothing() -> None:
    crashing = replace(healthy().pods[3], ready=False, containers=(
        ContainerFacts("loki", state="waiting", reason="CrashLoopBackOff", restarts=4, last_reason="Error",
                       last_exit_code=1),))
    pods = (*healthy().pods[:3], crashing)
    c = check("cluster.pod.loki", "cluster", "FAIL", "loki-0 is in CrashLoopBackOff (4 restarts)")
    assert _ids(judge(healthy(pods=pods, checks=(c,)))) == ["crashloop.unknown"]
    warn = check("cluster.volume.loki", "cluster", "WARN", "loki-pvc is Pending, waiting for its first consumer")
    assert _ids(judge(healthy(checks=(warn,)))) == ["verify.unexplained"]  # a WARN nothing explains is said too
    passing = check("loki.ready", "loki", "PASS", "ready")
    assert judge(healthy(checks=(passing,))) == []


# --- opening TCP 10250 with fix-vxlan's firewall code ----------------------------------------------

ACTION = OpenKubeletPort(node="node-2", address="198.18.0.2", sources=("198.18.0.1",))
REJECT = ["-P INPUT ACCEPT", "-A INPUT -p tcp -m tcp --dport 10250 -j REJECT --reject-with icmp-host-unreachable"]


def node(**firewall: Any) -> VxlanNode:
    return VxlanNode(name="node-2", device=Device(name="flannel.1", present=True), firewall=FirewallFacts(**firewall),
                     systemd=True)


def test_one_tagged_tcp_rule_for_the_server_and_only_it_saved_for_boot() -> None:
    facts = node(iptables="nf_tables", iptables_rules=tuple(REJECT))
    plan = plan_open(ACTION, facts, Vxlan())
    rule, script, unit, enable = plan.steps
    assert rule.argv == ("iptables", "-w", "5", "-I", "INPUT", "-s", "198.18.0.1/32", "-p", "tcp", "-m", "tcp",
                         "--dport", "10250", "-m", "comment", "--comment", KUBELET_TAG, "-j", "ACCEPT")
    assert rule.check is not None and rule.check[3] == "-C"
    assert script.path == f"/etc/o11yctl/{KUBELET_SCRIPT}" and unit.path == f"/etc/systemd/system/{KUBELET_UNIT}"
    assert "iptables -w 5 -C INPUT -s 198.18.0.1/32 -p tcp -m tcp --dport 10250 -m comment --comment " \
           "o11yctl-kubelet -j ACCEPT" in (script.content or "")
    assert "8472" not in (script.content or "") and "kubelet" in (unit.content or "")
    assert enable.argv[-1] == KUBELET_UNIT
    assert still_blocked(facts, ACTION) == [
        "198.18.0.1: iptables reject by -A INPUT -p tcp -m tcp --dport 10250 -j REJECT --reject-with "
        "icmp-host-unreachable"]


def test_a_second_run_adds_nothing() -> None:
    rule = ("-A INPUT -s 198.18.0.1/32 -p tcp -m tcp --dport 10250 -m comment --comment o11yctl-kubelet -j ACCEPT")
    ipt = (REJECT[0], rule, REJECT[1])
    saved = persist_script([rule.split()[2:]], [], 10250, proto="tcp", tag=KUBELET_TAG,
                           header=persistence().header) + "\n"
    facts = replace(node(iptables="nf_tables", iptables_rules=ipt), persisted=saved)
    assert still_blocked(facts, ACTION) == []
    assert plan_open(ACTION, facts, Vxlan()).empty


def test_the_tool_in_charge_opens_it_and_fix_vxlan_rules_are_not_touched() -> None:
    ufw = plan_open(ACTION, node(iptables="nf_tables", ufw_active=True, ufw_has_rules=True,
                                 iptables_rules=("-P INPUT DROP",)), Vxlan())
    assert ufw.steps[0].argv == ("ufw", "insert", "1", "allow", "from", "198.18.0.1", "to", "any", "port", "10250",
                                 "proto", "tcp", "comment", KUBELET_TAG)
    fwd = plan_open(ACTION, node(firewalld=Firewalld(running=True, zone="public")), Vxlan())
    assert fwd.steps[0].argv[-1] == ('--add-rich-rule=rule family="ipv4" source address="198.18.0.1/32" port '
                                     'port="10250" protocol="tcp" accept')
    open_for_udp = Firewalld(running=True, zone="public", rich_rules=(
        'rule family="ipv4" source address="198.18.0.1/32" port port="10250" protocol="udp" accept',))
    assert not plan_open(ACTION, node(firewalld=open_for_udp), Vxlan()).empty  # UDP is not TCP
    vxlan_rule = "-A INPUT -s 198.18.0.1/32 -p udp -m udp --dport 8472 -m comment --comment o11yctl-vxlan -j ACCEPT"
    plan = plan_open(ACTION, node(iptables="nf_tables", iptables_rules=(*REJECT, vxlan_rule)), Vxlan())
    assert "8472" not in (next(s for s in plan.steps if s.id == "persist script").content or "")


def test_the_probe_reads_doctors_own_script_and_unit() -> None:
    argvs = [c.argv for c in probe(Vxlan())]
    assert ("cat", f"/etc/o11yctl/{KUBELET_SCRIPT}") in argvs
    assert ("systemctl", "is-enabled", "--quiet", KUBELET_UNIT) in argvs
