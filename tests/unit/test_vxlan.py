"""fix-vxlan's pure parts on captured command output: parsers, firewall walks, judgement, fix plan."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from o11yctl.config import Node, Vxlan, default_config, parse_config
from o11yctl.errors import ConfigError
from o11yctl.vxlan.diagnose import Diagnosis, judge
from o11yctl.vxlan.facts import (
    Firewalld,
    FirewallFacts,
    NodeFacts,
    Output,
    PingFacts,
    parse_device,
    parse_iptables_version,
    parse_offload,
    parse_udp_csum_errors,
    parse_ufw,
)
from o11yctl.vxlan.firewall import Packet, evaluate, parse_iptables, walk_firewalld, walk_iptables, walk_nft
from o11yctl.vxlan.fix import persist_script, plan_fix, restart_steps
from o11yctl.vxlan.remote import (
    BatchCommand,
    batch_script,
    parse_batch,
    parse_ping,
    parse_probe,
    ping_argv,
    probe_commands,
)

# --- captured output (Debian 12, iproute2 6.1, iptables 1.8.9, nftables 1.0.6) ---------------------

IP_ADDR_FLANNEL = json.dumps([{
    "ifindex": 3, "ifname": "flannel.1", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "mtu": 1450,
    "operstate": "UNKNOWN", "link_type": "ether", "address": "0e:42:00:00:00:00",
    "linkinfo": {"info_kind": "vxlan", "info_data": {
        "id": 1, "local": "198.18.0.1", "link": "eth0", "port_range": {"low": 0, "high": 0}, "port": 8472,
        "learning": False, "ttl": 0, "udp_csum": True}},
    "addr_info": [
        {"family": "inet", "local": "10.42.0.0", "prefixlen": 32, "scope": "global", "label": "flannel.1"},
        {"family": "inet6", "local": "fe80::c42:ff:fe00:0", "prefixlen": 64, "scope": "link"}],
}])

SNMP = """\
Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 120
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 55 0 0 56 0 0 {csum} 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
"""

UFW_CHAINS = [
    "-P INPUT DROP", "-P FORWARD DROP", "-P OUTPUT ACCEPT",
    "-N ufw-before-input", "-N ufw-user-input", "-N ufw-after-input", "-N ufw-reject-input",
    "-A INPUT -j ufw-before-input", "-A INPUT -j ufw-after-input", "-A INPUT -j ufw-reject-input",
    "-A ufw-before-input -i lo -j ACCEPT",
    "-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A ufw-before-input -m conntrack --ctstate INVALID -j DROP",
    "-A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT",
    "-A ufw-before-input -j ufw-user-input",
    "-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT",
    "-A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input",
]

K3S_CHAINS = [
    "-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT",
    "-N KUBE-FIREWALL", "-N KUBE-ROUTER-INPUT", "-N KUBE-NODEPORTS",
    "-A INPUT -m comment --comment \"kube-router netpol - 4IA2OSFRMVNDXBVV\" -j KUBE-ROUTER-INPUT",
    "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
    "-A INPUT -j KUBE-FIREWALL",
    "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" "
    "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
    "-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked packets\" "
    "-m mark --mark 0x8000/0x8000 -j DROP",
    "-A KUBE-ROUTER-INPUT -d 10.43.0.0/16 -m comment --comment \"allow traffic to cluster IP\" -j RETURN",
    "-A KUBE-ROUTER-INPUT -p tcp -m addrtype --dst-type LOCAL -m multiport --dports 30000:32767 -j RETURN",
]

NFT_HOMELAB = {"nftables": [
    {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
    {"table": {"family": "ip", "name": "filter", "handle": 1}},
    {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter", "hook": "input",
               "prio": 0, "policy": "accept"}},
    {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 2, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 8472}},
        {"counter": {"packets": 2, "bytes": 268}}, {"drop": None}]}},
    {"table": {"family": "inet", "name": "homelab", "handle": 2}},
    {"chain": {"family": "inet", "table": "homelab", "name": "input", "handle": 1, "type": "filter",
               "hook": "input", "prio": 10, "policy": "drop"}},
    {"chain": {"family": "inet", "table": "homelab", "name": "allowed", "handle": 5}},
    {"rule": {"family": "inet", "table": "homelab", "chain": "input", "handle": 3, "expr": [
        {"vmap": {"key": {"ct": {"key": "state"}}, "data": {"set": [
            ["established", {"accept": None}], ["related", {"accept": None}], ["invalid", {"drop": None}]]}}}]}},
    {"rule": {"family": "inet", "table": "homelab", "chain": "input", "handle": 4, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": None}]}},
    {"rule": {"family": "inet", "table": "homelab", "chain": "input", "handle": 6, "expr": [
        {"jump": {"target": "allowed"}}]}},
    {"rule": {"family": "inet", "table": "homelab", "chain": "allowed", "handle": 7, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": {"set": [{"prefix": {"addr": "198.18.0.0", "len": 30}}, "198.18.0.9"]}}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
        {"accept": None}]}},
]}


def udp_from(src: str, dst: str = "198.18.0.1", iface: str | None = "eth0") -> Packet:
    return Packet(src=src, dst=dst, proto="udp", dport=8472, iface=iface)


# --- parsers ------------------------------------------------------------------------------------


def test_parse_device_reads_endpoint_vni_port_and_overlay() -> None:
    d = parse_device("flannel.1", Output(0, IP_ADDR_FLANNEL))
    assert (d.present, d.up, d.kind, d.vni, d.local, d.port, d.link, d.overlay) == (
        True, True, "vxlan", 1, "198.18.0.1", 8472, "eth0", "10.42.0.0")


def test_an_overlay_address_that_is_not_an_address_never_reaches_ping() -> None:
    hostile = IP_ADDR_FLANNEL.replace('"local": "10.42.0.0"', '"local": "-f"')
    assert hostile != IP_ADDR_FLANNEL
    assert parse_device("flannel.1", Output(0, hostile)).overlay is None
    with pytest.raises(ValueError):
        ping_argv("@@t", "10.42.0.0", ["-c", "10.42.1.0"], count=1, wait=1)
    assert ping_argv("@@t", "10.42.0.0", ["10.42.1.0"], count=1, wait=1)[-1] == "10.42.1.0"


def test_parse_device_missing() -> None:
    d = parse_device("flannel.1", Output(1, "", 'Device "flannel.1" does not exist.\n'))
    assert not d.present and "does not exist" in (d.error or "")


def test_small_parsers() -> None:
    assert parse_iptables_version(Output(0, "iptables v1.8.9 (nf_tables)\n")) == "nf_tables"
    assert parse_iptables_version(Output(0, "iptables v1.8.7 (legacy)\n")) == "legacy"
    assert parse_iptables_version(Output(127, "", "iptables: command not found")) is None
    assert parse_udp_csum_errors(SNMP.format(csum=7)) == 7
    assert parse_udp_csum_errors("nothing") is None
    assert parse_offload(Output(0, "Features for flannel.1:\n\ttx-checksum-ip-generic: on\n")) == "on"
    assert parse_ufw(Output(0, "Status: active\n\nTo  Action  From\n--  ------  ----\n22  ALLOW  Anywhere\n")) == (
        True, True)
    assert parse_ufw(Output(0, "Status: inactive\n")) == (False, False)


def test_batch_script_runs_and_parses_back() -> None:
    token = "@@o11y-test"
    script = batch_script([
        BatchCommand("hello", ("printf", "a b\nno newline")),
        BatchCommand("fails", ("sh", "-c", "echo out; echo err >&2; exit 3")),
        BatchCommand("absent", ("no-such-command-o11y", "x")),
        BatchCommand("after_fail", ("echo", "skipped"), only_if="fails"),
        BatchCommand("after_ok", ("echo", "ran"), only_if="hello"),
        BatchCommand("ensure", ("echo", "applied"), check=("true",)),
        BatchCommand("ensure2", ("echo", "applied"), check=("false",)),
        BatchCommand("quoting", ("printf", "%s|", "it's", "$HOME", "a;b")),
    ], token)
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    batch = parse_batch(done.stdout, token)
    assert batch.complete
    assert batch.get("hello") == Output(0, "a b\nno newline", "")
    assert batch.get("fails") == Output(3, "out\n", "err\n")
    assert batch.get("absent").missing
    assert batch.get("after_fail").exit_code == -1
    assert batch.get("after_ok").stdout == "ran\n"
    assert "ensure" in batch.present and "ensure2" not in batch.present
    assert batch.get("ensure2").stdout == "applied\n"
    assert batch.get("quoting").stdout == "it's|$HOME|a;b|"


def test_batch_names_must_be_identifiers() -> None:
    with pytest.raises(ValueError):
        batch_script([BatchCommand("bad name", ("true",))], "@@t")


def test_parse_probe_from_a_real_batch() -> None:
    token = "@@t1"
    out = "\n".join([
        f"{token} device 0", IP_ADDR_FLANNEL, f"{token} device stderr", "",
        f"{token} iptables_version 0", "iptables v1.8.9 (nf_tables)", f"{token} iptables_version stderr", "",
        f"{token} iptables 0", "-P INPUT ACCEPT\n-A INPUT -p udp -m udp --dport 8472 -j DROP",
        f"{token} iptables stderr", "",
        f"{token} nft 127", f"{token} nft stderr", "nft: command not found",
        f"{token} firewalld 127", f"{token} firewalld stderr", "",
        f"{token} ufw 127", f"{token} ufw stderr", "",
        f"{token} systemd 1", f"{token} systemd stderr", "",
        f"{token} persisted 1", f"{token} persisted stderr", "cat: x: No such file",
        f"{token} end", "",
    ])
    facts = parse_probe("node-1", "flannel.1", parse_batch(out, token))
    assert facts.device.local == "198.18.0.1"
    assert facts.firewall.tool == "iptables-nft" and facts.firewall.nft is None and not facts.firewall.nft_installed
    assert facts.firewall.iptables_rules == ("-P INPUT ACCEPT", "-A INPUT -p udp -m udp --dport 8472 -j DROP")
    assert not facts.systemd and facts.persisted is None


def test_probe_commands_are_read_only() -> None:
    argvs = [c.argv for c in probe_commands("flannel.1", "/etc/o11yctl", "/etc/systemd/system")]
    flat = [" ".join(a) for a in argvs]
    assert not any(w in f for f in flat for w in (" -I ", " -A ", " -D ", " -F ", "insert", "add-", " -K "))


def test_parse_ping() -> None:
    t = "@@p"
    text = "\n".join([f"{t} snmp-before", SNMP.format(csum=1), f"{t} ping 10.42.1.0 0", f"{t} ping 10.42.2.0 1",
                      f"{t} snmp-after", SNMP.format(csum=4), f"{t} end"])
    p = parse_ping("node-1", text, t, {"10.42.1.0": "node-2", "10.42.2.0": "node-3", "10.42.3.0": "node-4"})
    assert p.results == {"node-2": True, "node-3": False, "node-4": False}
    assert p.csum_delta == 3


# --- firewall walks -----------------------------------------------------------------------------


@pytest.mark.parametrize(("rules", "src", "action", "by"), [
    (["-P INPUT ACCEPT"], "198.18.0.2", "accept", "policy ACCEPT of chain INPUT"),
    (["-P INPUT ACCEPT", "-A INPUT -p udp -m udp --dport 8472 -j DROP"], "198.18.0.2", "drop",
     "-A INPUT -p udp -m udp --dport 8472 -j DROP"),
    (["-P INPUT ACCEPT", "-A INPUT -s 198.18.0.3/32 -p udp -m udp --dport 8472 -j REJECT --reject-with "
      "icmp-port-unreachable"], "198.18.0.2", "accept", "policy ACCEPT of chain INPUT"),
    (["-P INPUT ACCEPT", "-A INPUT -s 198.18.0.3/32 -p udp -m udp --dport 8472 -j REJECT --reject-with "
      "icmp-port-unreachable"], "198.18.0.3", "reject", None),
    (["-P INPUT ACCEPT", "-A INPUT ! -s 198.18.0.0/24 -p udp -j DROP"], "198.18.0.3", "accept", None),
    (["-P INPUT ACCEPT", "-A INPUT -p udp -m multiport --dports 53,8000:9000 -j DROP"], "198.18.0.3", "drop", None),
    (["-P INPUT ACCEPT", "-A INPUT -p tcp -m tcp --dport 8472 -j DROP"], "198.18.0.3", "accept", None),
    (["-P INPUT DROP", "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"], "198.18.0.2", "drop", "policy DROP of chain INPUT"),
    (["-P INPUT DROP", "-A INPUT -s 198.18.0.2/32 -p udp -m udp --dport 8472 -m comment --comment o11yctl-vxlan "
      "-j ACCEPT"], "198.18.0.2", "accept", None),
    (["-P INPUT ACCEPT", "-A INPUT -i eth1 -j DROP", "-A INPUT -i eth+ -p udp -j LOG",
      "-A INPUT -i eth+ -p udp -j REJECT"], "198.18.0.2", "reject", "-A INPUT -i eth+ -p udp -j REJECT"),
])
def test_iptables_walk(rules: list[str], src: str, action: str, by: str | None) -> None:
    v = walk_iptables(parse_iptables(rules), udp_from(src))
    assert v.action == action
    if by is not None:
        assert v.by == by


def test_iptables_walk_follows_jumps_returns_and_k3s_chains() -> None:
    assert walk_iptables(parse_iptables(K3S_CHAINS), udp_from("198.18.0.2")).action == "accept"
    user_chain = ["-P INPUT ACCEPT", "-N HOMELAB", "-A INPUT -j HOMELAB", "-A INPUT -p udp -j DROP",
                  "-A HOMELAB -s 198.18.0.2/32 -j RETURN", "-A HOMELAB -p udp -j ACCEPT"]
    v = walk_iptables(parse_iptables(user_chain), udp_from("198.18.0.2"))
    assert (v.action, v.by) == ("drop", "-A INPUT -p udp -j DROP")
    assert walk_iptables(parse_iptables(user_chain), udp_from("198.18.0.3")).action == "accept"


def test_iptables_walk_through_ufw_chains() -> None:
    v = walk_iptables(parse_iptables(UFW_CHAINS), udp_from("198.18.0.2"))
    assert v.action == "drop" and v.policy
    icmp = walk_iptables(parse_iptables(UFW_CHAINS), Packet(src="10.42.1.0", dst="10.42.0.0", proto="icmp",
                                                            iface="flannel.1"))
    assert icmp.action == "accept"


def test_iptables_rule_it_cannot_evaluate_is_reported_as_maybe() -> None:
    rules = ["-P INPUT ACCEPT", "-A INPUT -m recent --rcheck --seconds 60 --name bad -j DROP"]
    v = walk_iptables(parse_iptables(rules), udp_from("198.18.0.2"))
    assert v.action == "accept" and v.maybe == ("-A INPUT -m recent --rcheck --seconds 60 --name bad -j DROP",)


def test_nft_walk_skips_iptables_tables_and_follows_vmap_and_jumps() -> None:
    skip = {("ip", "filter")}
    [v] = walk_nft(NFT_HOMELAB, udp_from("198.18.0.2"), skip_tables=skip)
    assert (v.action, v.table, v.chain, v.policy) == ("drop", ("inet", "homelab"), "input", True)
    ssh = Packet(src="198.18.0.2", dst="198.18.0.1", proto="tcp", dport=22, iface="eth0")
    assert [x.action for x in walk_nft(NFT_HOMELAB, ssh, skip_tables=skip)] == ["accept"]
    far = Packet(src="198.18.0.7", dst="198.18.0.1", proto="tcp", dport=22, iface="eth0")
    assert [x.action for x in walk_nft(NFT_HOMELAB, far, skip_tables=skip)] == ["drop"]
    both = walk_nft(NFT_HOMELAB, udp_from("198.18.0.2"))
    assert [(x.table, x.action) for x in both] == [(("ip", "filter"), "drop"), (("inet", "homelab"), "drop")]
    assert "udp dport 8472 drop" in both[0].by


def test_nft_named_set_is_maybe() -> None:
    doc = {"nftables": [
        {"chain": {"family": "inet", "table": "t", "name": "in", "type": "filter", "hook": "input", "prio": 0,
                   "policy": "accept"}},
        {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 3, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@blocked"}},
            {"drop": None}]}},
    ]}
    [v] = walk_nft(doc, udp_from("198.18.0.2"))
    assert v.action == "accept" and v.maybe and "@blocked" in v.maybe[0]


def test_firewalld() -> None:
    closed = FirewallFacts(firewalld=Firewalld(running=True, zone="public", ports=("22/tcp",)))
    v = walk_firewalld(closed, udp_from("198.18.0.2"))
    assert v is not None and v.action == "reject" and "public" in v.by
    rich = FirewallFacts(firewalld=Firewalld(running=True, rich_rules=(
        'rule family="ipv4" source address="198.18.0.2/32" port port="8472" protocol="udp" accept',)))
    assert walk_firewalld(rich, udp_from("198.18.0.2")).action == "accept"  # type: ignore[union-attr]
    assert walk_firewalld(rich, udp_from("198.18.0.3")).action == "reject"  # type: ignore[union-attr]
    opened = FirewallFacts(firewalld=Firewalld(running=True, ports=("8472/udp",)))
    assert walk_firewalld(opened, udp_from("198.18.0.3")).action == "accept"  # type: ignore[union-attr]
    assert walk_firewalld(FirewallFacts(), udp_from("198.18.0.3")) is None


def test_evaluate_combines_layers() -> None:
    fw = FirewallFacts(iptables="nf_tables", iptables_rules=("-P INPUT ACCEPT",), nft=NFT_HOMELAB, nft_installed=True)
    verdicts = evaluate(fw, udp_from("198.18.0.2"))
    assert [(v.layer, v.action) for v in verdicts] == [("iptables", "accept"), ("nft", "drop")]


# --- judging --------------------------------------------------------------------------------------


def nodes(n: int) -> list[Node]:
    return [Node(name=f"node-{i + 1}", address=f"198.18.0.{i + 1}", role="server" if i == 0 else "agent")
            for i in range(n)]


def facts_for(node: Node, i: int, rules: list[str] | None = None, **kw: Any) -> NodeFacts:
    device = parse_device("flannel.1", Output(0, IP_ADDR_FLANNEL.replace("198.18.0.1", node.address)
                                               .replace("10.42.0.0", f"10.42.{i}.0")))
    fw = FirewallFacts(iptables="nf_tables", iptables_rules=tuple(rules or ["-P INPUT ACCEPT"]))
    return NodeFacts(name=node.name, device=device, firewall=fw, **kw)


def diagnosis(rules: dict[str, list[str]], ok_pairs: set[frozenset[str]], n: int = 3,
              csum: dict[str, int] | None = None, vx: Vxlan | None = None) -> Diagnosis:
    ns = nodes(n)
    facts = {node.name: facts_for(node, i, rules.get(node.name)) for i, node in enumerate(ns)}
    pings = {a.name: PingFacts(name=a.name, results={b.name: frozenset((a.name, b.name)) in ok_pairs
                                                      for b in ns if b is not a},
                               csum_before=0, csum_after=(csum or {}).get(a.name, 0)) for a in ns}
    return judge(ns, vx or Vxlan(), facts, pings, {})


def test_judge_names_the_blocked_direction_and_masks_the_reverse() -> None:
    drop_from_1 = ["-P INPUT ACCEPT", "-A INPUT -s 198.18.0.1/32 -p udp -m udp --dport 8472 -j DROP"]
    d = diagnosis({"node-2": drop_from_1}, ok_pairs={frozenset({"node-1", "node-3"}), frozenset({"node-2", "node-3"})})
    assert [(x.src, x.dst) for x in d.blocked] == [("node-1", "node-2")]
    reverse = next(x for x in d.directions if (x.src, x.dst) == ("node-2", "node-1"))
    assert reverse.status == "masked"
    assert not d.overlay_ok
    assert d.matrix()["node-1"] == {"node-2": "fail", "node-3": "ok"}
    assert "UDP 8472 blocked node-1 → node-2" in d.verdict()
    fw2 = next(c for c in d.checks if c.id == "firewall node-2")
    assert fw2.status == "FAIL" and "198.18.0.1" in fw2.detail and "fix-vxlan" in (fw2.hint or "")
    assert json.dumps(d.to_json())


def test_judge_all_ok() -> None:
    d = diagnosis({}, ok_pairs={frozenset({"node-1", "node-2"}), frozenset({"node-1", "node-3"}),
                                frozenset({"node-2", "node-3"})})
    assert d.overlay_ok and not d.blocked
    assert d.verdict().startswith("overlay works: 6 of 6")
    assert all(c.status == "PASS" for c in d.checks)


def test_judge_failure_without_firewall_cause_is_unexplained() -> None:
    d = diagnosis({}, ok_pairs=set(), n=2)
    assert {x.status for x in d.directions} == {"unexplained"}
    fw = next(c for c in d.checks if c.id == "firewall node-1")
    assert fw.status == "FAIL" and "restart" in (fw.hint or "")


def test_judge_pod_traffic_dropped_under_drop_policy() -> None:
    rules = ["-P INPUT DROP", "-A INPUT -p udp -m udp --dport 8472 -j ACCEPT"]
    d = diagnosis({"node-2": rules}, ok_pairs=set(), n=2)
    into2 = next(x for x in d.directions if x.dst == "node-2")
    assert into2.status == "pod-blocked"
    fw = next(c for c in d.checks if c.id == "firewall node-2")
    assert "default drop" in fw.detail and "10.42.0.0/16" in (fw.hint or "")


def test_judge_warns_on_endpoint_port_and_checksum_errors() -> None:
    ns = nodes(2)
    f1 = facts_for(ns[0], 0)
    f1 = NodeFacts(name=f1.name, device=parse_device("flannel.1", Output(0, IP_ADDR_FLANNEL.replace(
        '"local": "198.18.0.1"', '"local": "192.0.2.10"'))), firewall=f1.firewall, offload="on")
    f2 = facts_for(ns[1], 1)
    pings = {"node-1": PingFacts("node-1", {"node-2": True}, 0, 5), "node-2": PingFacts("node-2", {"node-1": True})}
    d = judge(ns, Vxlan(), {"node-1": f1, "node-2": f2}, pings, {})
    dev = next(c for c in d.checks if c.id == "device node-1")
    assert dev.status == "WARN" and "192.0.2.10" in dev.detail
    assert d.endpoints["node-1"] == "192.0.2.10"
    csum = next(c for c in d.checks if c.id == "checksum node-1")
    assert csum.status == "WARN" and "tx-checksum-ip-generic off" in (csum.hint or "")
    d2 = judge(ns, Vxlan(port=4789), {"node-1": f2, "node-2": f2}, pings, {})
    assert any(c.status == "WARN" and "4789" in c.detail for c in d2.checks)


# --- the fix plan -----------------------------------------------------------------------------------


def test_plan_opens_exactly_the_blocked_directions_and_saves_only_its_rules() -> None:
    drop_all = ["-P INPUT ACCEPT", "-A INPUT -s 198.18.1.200/32 -p tcp -m tcp --dport 9100 -j ACCEPT",
                "-A INPUT -p udp -m udp --dport 8472 -j DROP"]
    d = diagnosis({"node-3": drop_all}, ok_pairs={frozenset({"node-1", "node-2"})})
    plan = plan_fix(d, nodes(3), Vxlan())
    rules = [s for s in plan.steps if s.kind == "rule"]
    assert [(s.node, s.argv[5:7]) for s in rules] == [("node-3", ("-s", "198.18.0.1/32")),
                                                        ("node-3", ("-s", "198.18.0.2/32"))]
    assert all(s.check is not None and s.check[3] == "-C" and s.argv[3] == "-I" for s in rules)
    assert all("o11yctl-vxlan" in s.argv for s in rules)
    persist = [s for s in plan.steps if s.kind == "persist"]
    assert [s.id for s in persist] == ["persist script"]  # no systemd in these facts
    assert persist[0].content is not None and "9100" not in persist[0].content
    assert persist[0].content.count("iptables -w 5 -C INPUT -s 198.18.0.") == 2
    assert plan.notes and "no systemd" in plan.notes[0][1]
    lines = rules[0].display_lines()
    assert lines == [f"sudo {' '.join(rules[0].check or ())} || sudo {' '.join(rules[0].argv)}"]


def test_plan_on_a_fixed_node_is_empty() -> None:
    ns = nodes(2)
    tagged = "-A INPUT -s 198.18.0.1/32 -p udp -m udp --dport 8472 -m comment --comment o11yctl-vxlan -j ACCEPT"
    content = persist_script([tagged.split()[2:]], [], 8472) + "\n"
    f2 = facts_for(ns[1], 1, ["-P INPUT ACCEPT", tagged, "-A INPUT -p udp -m udp --dport 8472 -j DROP"],
                   persisted=content)
    f1 = facts_for(ns[0], 0)
    pings = {"node-1": PingFacts("node-1", {"node-2": True}), "node-2": PingFacts("node-2", {"node-1": True})}
    d = judge(ns, Vxlan(), {"node-1": f1, "node-2": f2}, pings, {})
    assert d.overlay_ok
    assert plan_fix(d, ns, Vxlan()).empty


def test_plan_with_systemd_writes_a_unit_and_enables_it() -> None:
    ns = nodes(2)
    f1 = facts_for(ns[0], 0, systemd=True)
    f2 = facts_for(ns[1], 1, ["-P INPUT ACCEPT", "-A INPUT -p udp -j DROP"], systemd=True)
    pings = {"node-1": PingFacts("node-1", {"node-2": False}), "node-2": PingFacts("node-2", {"node-1": False})}
    d = judge(ns, Vxlan(), {"node-1": f1, "node-2": f2}, pings, {})
    plan = plan_fix(d, ns, Vxlan())
    assert [s.id for s in plan.steps] == ["allow node-1", "persist script", "persist unit", "persist enable"]
    unit = plan.steps[2]
    assert unit.path == "/etc/systemd/system/o11yctl-vxlan.service"
    assert "ExecStart=/bin/sh /etc/o11yctl/vxlan-firewall.sh" in (unit.content or "")
    assert "Before=k3s.service k3s-agent.service" in (unit.content or "")
    assert not plan.notes
    none = plan_fix(d, ns, Vxlan(boot="none"))
    assert [s.id for s in none.steps] == ["allow node-1", "persist script"] and "vxlan.boot" in none.notes[0][1]


def test_plan_uses_the_tool_in_charge() -> None:
    ns = nodes(2)
    pings = {"node-1": PingFacts("node-1", {"node-2": False}), "node-2": PingFacts("node-2", {"node-1": False})}
    f1 = facts_for(ns[0], 0)

    ufw = facts_for(ns[1], 1, UFW_CHAINS)
    ufw = NodeFacts(name="node-2", device=ufw.device, firewall=FirewallFacts(
        iptables="nf_tables", iptables_rules=tuple(UFW_CHAINS), ufw_active=True, ufw_has_rules=True))
    plan = plan_fix(judge(ns, Vxlan(), {"node-1": f1, "node-2": ufw}, pings, {}), ns, Vxlan())
    assert plan.steps[0].argv == ("ufw", "insert", "1", "allow", "from", "198.18.0.1", "to", "any", "port", "8472",
                                  "proto", "udp", "comment", "o11yctl-vxlan")
    assert not [s for s in plan.steps if s.kind == "persist"]  # ufw keeps its own rules

    fwd = NodeFacts(name="node-2", device=ufw.device, firewall=FirewallFacts(
        firewalld=Firewalld(running=True, zone="public")))
    plan = plan_fix(judge(ns, Vxlan(), {"node-1": f1, "node-2": fwd}, pings, {}), ns, Vxlan())
    assert [s.argv[-1] for s in plan.steps] == [
        '--add-rich-rule=rule family="ipv4" source address="198.18.0.1/32" port port="8472" protocol="udp" accept'] * 2
    assert plan.steps[1].argv[1] == "--permanent"

    nft = NodeFacts(name="node-2", device=ufw.device, firewall=FirewallFacts(
        iptables="nf_tables", iptables_rules=("-P INPUT ACCEPT",), nft=NFT_HOMELAB, nft_installed=True))
    plan = plan_fix(judge(ns, Vxlan(), {"node-1": f1, "node-2": nft}, pings, {}), ns, Vxlan())
    assert plan.steps[0].argv == ("nft", "insert", "rule", "inet", "homelab", "input", "ip", "saddr", "198.18.0.1",
                                  "udp", "dport", "8472", "counter", "accept", "comment", "o11yctl-vxlan")
    script = next(s for s in plan.steps if s.id == "persist script").content or ""
    assert "nft insert rule inet homelab input ip saddr 198.18.0.1" in script


def test_plan_offload_only_when_asked_and_restart_per_role() -> None:
    ns = nodes(2)
    f = {n.name: facts_for(n, i, offload="on") for i, n in enumerate(ns)}
    pings = {"node-1": PingFacts("node-1", {"node-2": True}), "node-2": PingFacts("node-2", {"node-1": True})}
    d = judge(ns, Vxlan(), f, pings, {})
    assert plan_fix(d, ns, Vxlan()).empty
    offload = plan_fix(d, ns, Vxlan(), fix_offload=True)
    assert [s.argv for s in offload.steps] == [("ethtool", "-K", "flannel.1", "tx-checksum-ip-generic", "off")] * 2
    steps = restart_steps(ns, Vxlan(), ["node-1", "node-2"])
    assert [s.argv for s in steps] == [("systemctl", "restart", "k3s"), ("systemctl", "restart", "k3s-agent")]


# --- config ---------------------------------------------------------------------------------------


def test_vxlan_config_keys() -> None:
    cfg = parse_config(
        "vxlan:\n  interface: vxlan0\n  port: 4789\n  restart:\n    agent: rc-service k3s-agent restart\n")
    assert (cfg.vxlan.interface, cfg.vxlan.port) == ("vxlan0", 4789)
    assert cfg.vxlan.restart.agent == "rc-service k3s-agent restart" and cfg.vxlan.restart.server == \
        default_config().vxlan.restart.server
    with pytest.raises(ConfigError, match=r"vxlan\.interface"):
        parse_config("vxlan:\n  interface: 'flannel.1; rm -rf /'\n")
    with pytest.raises(ConfigError, match=r"vxlan\.restart\.server"):
        parse_config("vxlan:\n  restart:\n    server: ''\n")
    with pytest.raises(ConfigError, match=r"vxlan\.boot"):
        parse_config("vxlan:\n  boot: openrc\n")
