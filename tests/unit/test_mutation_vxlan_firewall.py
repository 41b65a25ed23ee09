"""fix-vxlan's firewall evaluation, match by match: iptables options, nft expressions, verdict texts.

tests/unit/test_vxlan.py walks captured rulesets; these tests take each kind of match on its own
(every option spelling ``iptables -S`` prints, every nft expression the walk reads) and pin whether
it selects the packet (True), does not (False) or cannot be told (None), then the exact verdict a
walk returns: action, the rule or policy that decided, and the rules that *may* drop. Rulesets are
written here in ``iptables -S`` and ``nft -j`` form; nothing of o11yctl is monkeypatched.
"""

from __future__ import annotations

from typing import Any

import pytest

from o11yctl.vxlan.facts import Firewalld, FirewallFacts
from o11yctl.vxlan.firewall import (
    Packet,
    Verdict,
    describe_nft_rule,
    evaluate,
    firewalld_rich_rule,
    nft_chains,
    nft_has_tagged_accept,
    nft_input_chains,
    parse_iptables,
    policy_drops,
    rule_matches,
    walk_firewalld,
    walk_iptables,
    walk_nft,
)

UDP = Packet(src="198.18.0.2", dst="198.18.0.1", proto="udp", dport=8472, iface="eth0")
TCP = Packet(src="198.18.0.2", dst="198.18.0.1", proto="tcp", dport=22, iface="eth0")
ICMP = Packet(src="10.42.1.0", dst="10.42.0.0", proto="icmp", iface="flannel.1")
NO_DST = Packet(src="198.18.0.2", dst=None, proto="udp", dport=8472)
NO_IFACE = Packet(src="198.18.0.2", dst="198.18.0.1", proto="udp", dport=8472)
NO_PORT = Packet(src="198.18.0.2", dst="198.18.0.1", proto="udp")
PACKETS = {"udp": UDP, "tcp": TCP, "icmp": ICMP, "no-dst": NO_DST, "no-iface": NO_IFACE, "no-port": NO_PORT,
           "established": Packet(src="198.18.0.2", dst="198.18.0.1", proto="udp", dport=8472, state="ESTABLISHED")}


def _match(rule: str, packet: str) -> bool | None:
    table = parse_iptables([f"-A INPUT {rule}"])
    return rule_matches(table.rules["INPUT"][0], PACKETS[packet])


@pytest.mark.parametrize(("rule", "packet", "expected"), [
    # addresses, in both spellings, lists, negation (both syntaxes)
    ("-s 198.18.0.2/32 -j DROP", "udp", True),
    ("--source 198.18.0.0/24 -j DROP", "udp", True),
    ("--source 198.18.0.3 -j DROP", "udp", False),
    ("-s 198.18.0.9,198.18.0.2 -j DROP", "udp", True),
    ("-s 198.18.0.1/24 -j DROP", "udp", True),  # host bits set, as iptables accepts them
    ("-s bogus -j DROP", "udp", None),
    ("-s bogus,198.18.0.2 -j DROP", "udp", True),
    ("! -s 198.18.0.2 -j DROP", "udp", False),
    ("! -s 198.18.0.3 -j DROP", "udp", True),
    ("-p udp ! -s 198.18.0.3 -j DROP", "udp", True),
    ("-p udp ! -s 198.18.0.2 -j DROP", "udp", False),
    ("! -s bogus -j DROP", "udp", None),
    ("-s ! 198.18.0.2 -j DROP", "udp", False),
    ("-s ! 198.18.0.3 -j DROP", "udp", True),
    ("-p udp -s ! 198.18.0.2 -j DROP", "udp", False),
    ("-p udp -s ! 198.18.0.3 -p tcp -j DROP", "udp", False),
    ("-s ! 198.18.0.3", "udp", True),
    ("-d 198.18.0.1 -j DROP", "udp", True),
    ("--destination 198.18.0.0/30,10.0.0.1 -j DROP", "udp", True),
    ("-d 198.18.0.9 -j DROP", "udp", False),
    ("-d 198.18.0.9 -j DROP", "no-dst", None),
    # protocol and interfaces
    ("-p udp -j DROP", "udp", True),
    ("--protocol UDP -j DROP", "udp", True),
    ("-p tcp -j DROP", "udp", False),
    ("-p 17 -j DROP", "udp", True),
    ("-p 6 -j DROP", "udp", False),
    ("-p all -j DROP", "tcp", True),
    ("-p 0 -j DROP", "icmp", True),
    ("-i eth0 -j DROP", "udp", True),
    ("--in-interface eth1 -j DROP", "udp", False),
    ("-i eth+ -j DROP", "udp", True),
    ("-i wl* -j DROP", "udp", False),
    ("-i eth+ -j DROP", "no-iface", None),
    ("-i eth0 -j DROP", "no-iface", None),
    ("-i e+ -j DROP", "udp", True),
    ("-i et+ -j DROP", "udp", True),
    ("-o eth0 -j DROP", "udp", False),
    ("--out-interface eth0 -j DROP", "udp", False),
    # match modules
    ("-m udp -j DROP", "udp", True),
    ("--match conntrack -j DROP", "udp", True),
    ("-m recent -j DROP", "udp", None),
    ("-p udp -m udp --dport 8472 -j DROP", "udp", True),
    ("-p udp --destination-port 8000:9000 -j DROP", "udp", True),
    ("-p udp --dport 53 -j DROP", "udp", False),
    ("--dport 22", "icmp", False),
    ("--dport 8472 -j DROP", "no-port", None),
    ("-m multiport --dports 53,8472 -j DROP", "udp", True),
    ("-m multiport --destination-ports 1:100,8000:9000 -j DROP", "udp", True),
    ("-m multiport --ports 53,54 -j DROP", "udp", False),
    ("-m multiport --ports 22", "tcp", True),
    ("-m multiport --dports 22", "icmp", False),
    ("--sport 53 -j DROP", "udp", None),
    ("--source-port 53 -j DROP", "udp", None),
    ("--sports 53,54 -j DROP", "udp", None),
    ("--source-ports 53 -j DROP", "udp", None),
    ("-m conntrack --ctstate NEW -j DROP", "udp", True),
    ("-m state --state related,established -j ACCEPT", "established", True),
    ("-m state --state RELATED,ESTABLISHED -j ACCEPT", "udp", False),
    ("-m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP", "udp", True),
    ("-m comment --comment o11yctl-vxlan -j ACCEPT", "udp", True),
    ('-m comment --comment "-- managed elsewhere" -j ACCEPT', "udp", True),
    ("-m addrtype --dst-type LOCAL -j DROP", "udp", True),
    ("-m addrtype --dst-type BROADCAST -j DROP", "udp", False),
    ("-m addrtype --dst-type MULTICAST -j DROP", "udp", False),
    ("-m addrtype --dst-type ANYCAST -j DROP", "udp", False),
    ("-m addrtype --dst-type UNICAST -j DROP", "udp", None),
    ("-m addrtype --src-type LOCAL -j DROP", "udp", False),
    ("-m addrtype --src-type UNICAST -j DROP", "udp", None),
    ("-m mark --mark 0x8000/0x8000 -j DROP", "udp", False),
    ("-m mark --mark 0x0/0x8000 -j DROP", "udp", True),
    ("-m mark --mark 0 -j DROP", "udp", True),
    ("-m mark --mark 1 -j DROP", "udp", False),
    ("-m mark --mark 0x10/0x10 -j DROP", "udp", False),
    ("-m mark --mark 0x0/0xf0/0x1 -j DROP", "udp", None),
    ("-m mark --mark 012 -j DROP", "udp", None),
    ("-m mark --mark x -j DROP", "udp", None),
    ("-m mark --mark 0/x -j DROP", "udp", None),
    ("-p icmp -m icmp --icmp-type 8 -j ACCEPT", "icmp", True),
    ("--icmp-type echo-request -j ACCEPT", "icmp", True),
    ("--icmp-type any -j ACCEPT", "icmp", True),
    ("--icmp-type 0 -j ACCEPT", "icmp", False),
    ("--icmp-type 8 -j ACCEPT", "udp", False),
    ("-f -j DROP", "udp", False),
    ("--fragment -j DROP", "udp", False),
    ("-p udp -f", "udp", False),
    ("! -f -p udp -j DROP", "udp", True),
    ("--syn -s 198.18.0.9 -j DROP", "udp", False),
    ("--tcp-flags SYN,ACK SYN -s 198.18.0.2 -j DROP", "udp", None),
    # the target ends the matches, in every spelling
    ("-p udp --jump ACCEPT", "udp", True),
    ("-p udp -g CHAIN", "udp", True),
    ("-p udp --goto CHAIN", "udp", True),
    ("-s 198.18.0.2", "udp", True),
    ("-p udp", "udp", True),
])
def test_each_iptables_match(rule: str, packet: str, expected: bool | None) -> None:
    assert _match(rule, packet) is expected


def test_parse_iptables_reads_policies_chains_counters_and_targets() -> None:
    table = parse_iptables([
        "-P INPUT DROP", "-P FORWARD", "-N KUBE-FW", "-N", "bogus line",
        "-A INPUT -c 10 20 -s 198.18.0.2/32 -j ACCEPT",
        "-A INPUT -s 198.18.0.3/32 -c 1 2 --jump KUBE-FW",
        "-A INPUT -p udp -c x 2 -j DROP",
        "-A INPUT -p udp --goto KUBE-FW",
        "-A INPUT -p udp -g",
        "-A KUBE-FW -m comment --comment \"kube fw\" -j RETURN",
        "-A KUBE-FW -m comment --comment 'unclosed -j DROP",
        "-A",
    ])
    assert table.policies == {"INPUT": "DROP"}
    assert list(table.rules) == ["INPUT", "KUBE-FW"]
    rules = table.rules["INPUT"]
    assert [(r.tokens, r.target, r.goto) for r in rules] == [
        (("-s", "198.18.0.2/32", "-j", "ACCEPT"), "ACCEPT", False),
        (("-s", "198.18.0.3/32", "--jump", "KUBE-FW"), "KUBE-FW", False),
        (("-p", "udp", "-c", "x", "2", "-j", "DROP"), "DROP", False),
        (("-p", "udp", "--goto", "KUBE-FW"), "KUBE-FW", True),
        (("-p", "udp", "-g"), None, False),
    ]
    assert rules[0].text == "-A INPUT -c 10 20 -s 198.18.0.2/32 -j ACCEPT" and rules[0].chain == "INPUT"
    fw = table.rules["KUBE-FW"]
    assert fw[0].tokens == ("-m", "comment", "--comment", "kube fw", "-j", "RETURN")
    # a line shlex cannot split is split on blanks
    assert fw[1].tokens == ("-m", "comment", "--comment", "'unclosed", "-j", "DROP") and fw[1].target == "DROP"


def test_counters_at_the_end_are_kept_when_incomplete() -> None:
    rules = parse_iptables(["-A INPUT -p udp -j DROP -c 5", "-A INPUT -c 1 2 -c 3 4 -p tcp -j DROP"]).rules["INPUT"]
    assert rules[0].tokens == ("-p", "udp", "-j", "DROP", "-c", "5")
    assert rules[1].tokens == ("-p", "tcp", "-j", "DROP")


def test_tagged_rules() -> None:
    table = parse_iptables(["-A INPUT -s 198.18.0.2/32 -m comment --comment o11yctl-vxlan -j ACCEPT",
                            "-A INPUT -s 198.18.0.3/32 -m comment --comment other -j ACCEPT",
                            "-A OTHER -m comment --comment o11yctl-vxlan -j ACCEPT"])
    assert [r.tokens[1] for r in table.tagged_rules()] == ["198.18.0.2/32"]
    assert [r.tokens[1] for r in table.tagged_rules(tag="other")] == ["198.18.0.3/32"]
    assert len(table.tagged_rules("OTHER")) == 1 and table.tagged_rules("NONE") == ()


def _walk(*lines: str, packet: Packet = UDP) -> Verdict:
    return walk_iptables(parse_iptables(lines), packet)


def test_iptables_verdicts_name_the_rule_or_the_policy() -> None:
    assert _walk("-P INPUT DROP") == Verdict(layer="iptables", action="drop", by="policy DROP of chain INPUT",
                                             chain="INPUT", policy=True)
    assert _walk("-P INPUT accept") == Verdict(layer="iptables", action="accept", by="policy ACCEPT of chain INPUT",
                                               chain="INPUT", policy=True)
    assert _walk() == Verdict(layer="iptables", action="accept", by="policy ACCEPT of chain INPUT", chain="INPUT",
                              policy=True)
    assert _walk("-P INPUT ACCEPT", "-A INPUT -p udp -j REJECT") == Verdict(
        layer="iptables", action="reject", by="-A INPUT -p udp -j REJECT", chain="INPUT")
    assert _walk("-N ufw-user-input", "-A INPUT -j ufw-user-input", "-A ufw-user-input -p udp -j DROP") == Verdict(
        layer="iptables", action="drop", by="-A ufw-user-input -p udp -j DROP", chain="ufw-user-input", ufw=True)


def test_iptables_rules_that_may_drop_are_listed() -> None:
    v = _walk("-P INPUT ACCEPT", "-N HOLD", "-A INPUT -m recent -j DROP", "-A INPUT -m recent -j REJECT",
              "-A INPUT -m recent -j HOLD", "-A INPUT -m recent -j LOG", "-A INPUT -m recent -j ACCEPT",
              "-A INPUT -p udp -j ACCEPT")
    assert v == Verdict(layer="iptables", action="accept", by="-A INPUT -p udp -j ACCEPT", chain="INPUT", maybe=(
        "-A INPUT -m recent -j DROP", "-A INPUT -m recent -j REJECT", "-A INPUT -m recent -j HOLD"))
    assert _walk("-P INPUT DROP", "-A INPUT -m recent -j DROP").maybe == ("-A INPUT -m recent -j DROP",)


def test_iptables_jumps_returns_gotos_and_loops() -> None:
    chains = ("-N A", "-N B", "-A A -s 198.18.0.9 -j ACCEPT", "-A A -j RETURN", "-A A -j DROP",
              "-A B -s 198.18.0.9 -j ACCEPT")
    # a jump that decides nothing comes back; a goto that decides nothing ends at the policy
    assert _walk("-P INPUT DROP", *chains, "-A INPUT -j A", "-A INPUT -j ACCEPT").by == "-A INPUT -j ACCEPT"
    assert _walk("-P INPUT DROP", *chains, "-A INPUT -g B", "-A INPUT -j ACCEPT").by == "policy DROP of chain INPUT"
    assert _walk("-P INPUT DROP", *chains, "-A INPUT -j B", "-A INPUT -j ACCEPT").by == "-A INPUT -j ACCEPT"
    assert _walk("-P INPUT DROP", "-A INPUT -j LOG", "-A INPUT -p udp -j MARK", "-A INPUT -j ACCEPT").action == "accept"
    assert _walk("-P INPUT DROP", "-A INPUT -p tcp -j ACCEPT", "-A INPUT -p udp").by == "policy DROP of chain INPUT"
    # a chain that jumps to itself stops at the depth limit and falls back to the policy
    loop = _walk("-P INPUT ACCEPT", "-N LOOP", "-A INPUT -j LOOP", "-A LOOP -j LOOP", "-A INPUT -j DROP")
    assert loop.by == "-A INPUT -j DROP"


def test_iptables_depth_limit_is_33_chains() -> None:
    def chain_of(depth: int) -> list[str]:
        lines = ["-P INPUT ACCEPT"] + [f"-N C{i}" for i in range(depth)]
        lines += ["-A INPUT -j C0"] + [f"-A C{i} -j C{i + 1}" for i in range(depth - 1)]
        return [*lines, f"-A C{depth - 1} -j DROP"]

    assert _walk(*chain_of(32)).action == "drop"
    assert _walk(*chain_of(33)).action == "accept"


# --- nftables -----------------------------------------------------------------------------------


def _chain(name: str = "in", *, table: str = "t", family: str = "inet", hook: str | None = "input",
           prio: Any = 0, policy: str | None = "accept", kind: str | None = "filter") -> dict[str, Any]:
    c: dict[str, Any] = {"family": family, "table": table, "name": name}
    if hook is not None:
        c.update(type=kind, hook=hook, prio=prio)
    if policy is not None:
        c["policy"] = policy
    return {"chain": c}


def _rule(expr: list[Any], chain: str = "in", *, table: str = "t", family: str = "inet", **extra: Any) -> dict:
    return {"rule": {"family": family, "table": table, "chain": chain, "expr": expr, **extra}}


def _doc(*items: dict[str, Any]) -> dict[str, Any]:
    return {"nftables": [{"metainfo": {"version": "1.0.6"}}, *items]}


def _one(doc: dict[str, Any], packet: Packet = UDP) -> Verdict:
    [v] = walk_nft(doc, packet)
    return v


def _tri(body: dict[str, Any], packet: Packet = UDP) -> bool | None:
    """What an nft match says of the packet, read from the walk: drop (True), maybe (None) or no match (False)."""
    v = _one(_doc(_chain(), _rule([{"match": body}, {"drop": None}])), packet)
    if v.action == "drop":
        return True
    return None if v.maybe else False


def _m(left: dict[str, Any], right: Any, op: str | None = "==") -> dict[str, Any]:
    body: dict[str, Any] = {"left": left, "right": right}
    if op is not None:
        body["op"] = op
    return body


def saddr() -> dict[str, Any]:
    return {"payload": {"protocol": "ip", "field": "saddr"}}


def daddr() -> dict[str, Any]:
    return {"payload": {"protocol": "ip", "field": "daddr"}}


def port(proto: str = "udp", fld: str = "dport") -> dict[str, Any]:
    return {"payload": {"protocol": proto, "field": fld}}


def meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


CT_STATE = {"ct": {"key": "state"}}


@pytest.mark.parametrize(("body", "packet", "expected"), [
    (_m(saddr(), "198.18.0.2"), UDP, True),
    (_m(saddr(), "198.18.0.3"), UDP, False),
    (_m(saddr(), "198.18.0.2", op=None), UDP, True),
    (_m(saddr(), "198.18.0.2", op="in"), UDP, True),
    (_m(saddr(), "198.18.0.2", op="!="), UDP, False),
    (_m(saddr(), "198.18.0.3", op="!="), UDP, True),
    (_m(saddr(), "@blocked", op="!="), UDP, None),
    (_m(saddr(), {"prefix": {"addr": "198.18.0.0", "len": 30}}), UDP, True),
    (_m(saddr(), {"prefix": {"addr": "198.18.0.4", "len": 30}}), UDP, False),
    (_m(saddr(), {"range": ["198.18.0.1", "198.18.0.2"]}), UDP, True),
    (_m(saddr(), {"range": ["198.18.0.2", "198.18.0.9"]}), UDP, True),
    (_m(saddr(), {"range": ["198.18.0.3", "198.18.0.9"]}), UDP, False),
    (_m(saddr(), {"range": ["x", "198.18.0.9"]}), UDP, None),
    (_m(saddr(), {"set": ["198.18.0.7", {"prefix": {"addr": "198.18.0.0", "len": 31}}]}), UDP, False),
    (_m(saddr(), {"set": ["198.18.0.7", {"prefix": {"addr": "198.18.0.2", "len": 31}}]}), UDP, True),
    (_m(saddr(), {"set": ["198.18.0.7", "@other"]}), UDP, None),
    (_m(saddr(), ["198.18.0.2"]), UDP, True),
    (_m(saddr(), {"elem": {"val": "198.18.0.2", "timeout": 30}}), UDP, True),
    (_m(saddr(), {"elem": {"val": "198.18.0.3"}}), UDP, False),
    (_m(daddr(), "198.18.0.1"), UDP, True),
    (_m(daddr(), "198.18.0.7"), UDP, False),
    (_m(daddr(), "198.18.0.1"), NO_DST, None),
    (_m({"payload": {"protocol": "ip", "field": "ttl"}}, 64), UDP, None),
    (_m({"payload": {"protocol": "ip", "field": "protocol"}}, "udp"), UDP, True),
    (_m({"payload": {"protocol": "ip", "field": "protocol"}}, 17), UDP, True),
    (_m({"payload": {"protocol": "ip", "field": "protocol"}}, 6), UDP, False),
    (_m({"payload": {"protocol": "ip", "field": "protocol"}}, "tcp"), UDP, False),
    (_m(port(), 8472), UDP, True),
    (_m(port(), 8473), UDP, False),
    (_m(port(), "8472"), UDP, True),
    (_m(port(), "8473"), UDP, False),
    (_m(port(), "vxlan"), UDP, None),
    (_m(port(), {"range": [8000, 9000]}), UDP, True),
    (_m(port(), {"range": [8472, 9000]}), UDP, True),
    (_m(port(), {"range": [8000, 8472]}), UDP, True),
    (_m(port(), {"range": [8473, 9000]}), UDP, False),
    (_m(port(), {"range": ["8000", 9000]}), UDP, False),
    (_m(port(), {"range": [8000, "9000"]}), UDP, False),
    (_m(port(), {"set": [53, {"range": [8000, 9000]}]}), UDP, True),
    (_m(port("tcp"), 8472), UDP, False),
    (_m(port("udp"), 22), TCP, False),
    (_m(port("th"), 8472), UDP, True),
    (_m(port("th"), 22), TCP, True),
    (_m(port("th"), 22), ICMP, False),
    (_m(port("udp", "sport"), 53), UDP, None),
    (_m(port(), 8472), NO_PORT, None),
    (_m(port(), 8000, op="<"), UDP, False),
    (_m(port(), 9000, op="<"), UDP, True),
    (_m(port(), 8472, op="<"), UDP, False),
    (_m(port(), 8472, op="<="), UDP, True),
    (_m(port(), 8471, op="<="), UDP, False),
    (_m(port(), 8472, op=">"), UDP, False),
    (_m(port(), 8471, op=">"), UDP, True),
    (_m(port(), 8472, op=">="), UDP, True),
    (_m(port(), 8473, op=">="), UDP, False),
    (_m(port(), "8000", op=">"), UDP, None),
    (_m(port(), 8000, op="&"), UDP, None),
    (_m({"payload": {"protocol": "icmp", "field": "type"}}, "echo-request"), ICMP, True),
    (_m({"payload": {"protocol": "icmp", "field": "type"}}, 8), ICMP, True),
    (_m({"payload": {"protocol": "icmp", "field": "type"}}, 0), ICMP, False),
    (_m({"payload": {"protocol": "icmp", "field": "type"}}, "echo-reply"), ICMP, None),
    (_m({"payload": {"protocol": "icmp", "field": "type"}}, 8), UDP, False),
    (_m({"payload": {"protocol": "icmp", "field": "code"}}, 0), ICMP, None),
    (_m({"payload": {"protocol": "icmp", "field": "code"}}, 0), UDP, False),
    (_m({"payload": {"protocol": "sctp", "field": "dport"}}, 1), UDP, None),
    (_m(meta("l4proto"), "udp"), UDP, True),
    (_m(meta("l4proto"), 17), UDP, True),
    (_m(meta("l4proto"), {"set": [6, 1]}), UDP, False),
    (_m(meta("iifname"), "eth0"), UDP, True),
    (_m(meta("iifname"), "eth*"), UDP, True),
    (_m(meta("iifname"), "lo"), UDP, False),
    (_m(meta("iifname"), "lo"), NO_IFACE, None),
    (_m(meta("nfproto"), "ipv4"), UDP, True),
    (_m(meta("nfproto"), "ipv6"), UDP, False),
    (_m(meta("mark"), 0), UDP, True),
    (_m(meta("mark"), 1), UDP, False),
    (_m(meta("mark"), {"range": [0, 0]}), UDP, True),
    (_m(meta("oifname"), "eth0"), UDP, None),
    (_m(CT_STATE, "new"), UDP, True),
    (_m(CT_STATE, "established"), UDP, False),
    (_m(CT_STATE, ["established", "related"]), UDP, False),
    (_m(CT_STATE, {"set": ["new", "untracked"]}), UDP, True),
    (_m(CT_STATE, "established", op="!="), Packet(src="a", dst=None, proto="udp", state="ESTABLISHED"), False),
    (_m({"ct": {"key": "mark"}}, 0), UDP, None),
    (_m({"fib": {"result": "type"}}, "local"), UDP, None),
    (_m("saddr", "x"), UDP, None),
    ({"op": "==", "right": 1}, UDP, None),
])
def test_each_nft_match(body: dict[str, Any], packet: Packet, expected: bool | None) -> None:
    assert _tri(body, packet) is expected


def test_a_match_that_is_not_a_mapping_cannot_be_told() -> None:
    v = _one(_doc(_chain(), _rule([{"match": "junk"}, {"drop": None}], handle=4)))
    assert v.action == "accept" and v.maybe == ("inet t in: match drop (handle 4)",)


def test_nft_verdicts_name_the_chain_and_rule() -> None:
    doc = _doc(_chain(policy="drop", prio=10),
               _rule([{"match": _m(port(), 8472)}, {"counter": {"packets": 1}}, {"accept": None}], handle=7,
                     comment="vxlan"))
    assert _one(doc) == Verdict(layer="nft", action="accept",
                                by='inet t in: udp dport 8472 accept comment "vxlan" (handle 7)', chain="in",
                                table=("inet", "t"))
    assert _one(doc, TCP) == Verdict(layer="nft", action="drop", by="inet t in: policy drop", chain="in",
                                     table=("inet", "t"), policy=True)
    rejecting = _doc(_chain(), _rule([{"reject": {"type": "icmpx"}}]))
    assert _one(rejecting) == Verdict(layer="nft", action="reject", by="inet t in: reject", chain="in",
                                      table=("inet", "t"))


def test_nft_rules_that_may_drop_are_listed() -> None:
    unknown = {"match": _m(saddr(), "@blocked")}
    doc = _doc(_chain(), _chain("sub", hook=None),
               _rule([unknown, {"drop": None}], handle=1), _rule([unknown, {"reject": None}], handle=2),
               _rule([unknown, {"jump": {"target": "sub"}}], handle=3),
               _rule([unknown, {"goto": {"target": "sub"}}], handle=4),
               _rule([unknown, {"accept": None}], handle=5), _rule([unknown, {"return": None}], handle=6),
               _rule([{"limit": {"rate": 5}}, {"drop": None}], handle=8),
               _rule([{"match": _m(port(), 8472)}, {"accept": None}], handle=9))
    v = _one(doc)
    assert (v.action, v.by) == ("accept", "inet t in: udp dport 8472 accept (handle 9)")
    assert v.maybe == ("inet t in: ip saddr @blocked drop (handle 1)", "inet t in: ip saddr @blocked reject (handle 2)",
                       "inet t in: ip saddr @blocked jump sub (handle 3)",
                       "inet t in: ip saddr @blocked goto sub (handle 4)", "inet t in: limit drop (handle 8)")


def test_nft_jumps_gotos_and_returns() -> None:
    def walk(*expr: list[Any], packet: Packet = UDP) -> Verdict:
        sub = [_rule(e, "sub") for e in expr]
        return _one(_doc(_chain(policy="drop"), _chain("sub", hook=None), _chain("other", hook=None),
                         _rule([{"jump": {"target": "sub"}}]), _rule([{"goto": {"target": "other"}}]),
                         _rule([{"jump": {"target": "missing"}}]), _rule([{"jump": "sub"}]),
                         _rule([{"match": _m(port(), 8472)}, {"accept": None}]), *sub), packet)

    assert walk([{"match": _m(port(), 8472)}, {"drop": None}]).by == "inet t sub: udp dport 8472 drop"
    assert walk([{"match": _m(port(), 8472)}, {"return": None}], [{"drop": None}]).by == "inet t in: policy drop"
    assert walk([{"return": None}]).by == "inet t in: policy drop"  # the goto to an empty chain ends the walk
    doc = _doc(_chain(policy="drop"), _chain("sub", hook=None), _rule([{"jump": {"target": "sub"}}]),
               _rule([{"match": _m(port(), 8472)}, {"accept": None}]),
               _rule([{"match": _m(port("tcp"), 22)}, {"return": None}], "sub"), _rule([{"drop": None}], "sub"))
    assert _one(doc).by == "inet t sub: drop"
    assert _one(doc, TCP).by == "inet t in: policy drop"  # returned from sub, no rule of in matches TCP


def test_nft_depth_limit_is_33_chains() -> None:
    def doc_of(depth: int) -> dict[str, Any]:
        items = [_chain("c0")] + [_chain(f"c{i}", hook=None) for i in range(1, depth)]
        items += [_rule([{"goto": {"target": f"c{i + 1}"}}], f"c{i}") for i in range(depth - 1)]
        return _doc(*items, _rule([{"drop": None}], f"c{depth - 1}"))

    assert _one(doc_of(33)).action == "drop"
    assert _one(doc_of(34)).action == "accept"


MAPPED = "inet t in: vmap {...} (handle 3)"
SUB = "inet t sub: drop (handle 5)"
NEXT = "inet t in: udp dport 8472 drop (handle 9)"


@pytest.mark.parametrize(("data", "expected"), [
    ({"set": [["established", {"accept": None}], ["new", {"drop": None}]]}, ("drop", MAPPED, False)),
    ({"set": [["new", {"accept": None}]]}, ("accept", MAPPED, False)),
    ({"set": [["new", {"reject": None}]]}, ("reject", MAPPED, False)),
    ({"set": [["new", {"jump": {"target": "sub"}}]]}, ("drop", SUB, False)),
    ({"set": [["new", {"goto": {"target": "sub"}}]]}, ("drop", SUB, False)),
    ({"set": [["new", {"jump": "sub"}]]}, ("drop", NEXT, False)),  # a jump without a target decides nothing
    ({"set": [["established", {"accept": None}]]}, ("drop", NEXT, False)),  # no element: on to the next rule
    ({"set": [["new", "accept"]]}, ("drop", NEXT, True)),
    ({"set": [["new", {"accept": None, "drop": None}]]}, ("drop", NEXT, True)),
    ({"set": [["new"]]}, ("drop", NEXT, True)),
    ({"set": ["new"]}, ("drop", NEXT, True)),
    ({"set": [["@x", {"drop": None}]]}, ("drop", NEXT, True)),
    ({"set": "new"}, ("drop", NEXT, True)),
    (["new", {"drop": None}], ("drop", NEXT, True)),
])
def test_nft_verdict_maps(data: Any, expected: tuple[str, str, bool]) -> None:
    rule = _rule([{"vmap": {"key": CT_STATE, "data": data}}], handle=3)
    doc = _doc(_chain(), _chain("sub", hook=None), rule, _rule([{"drop": None}], "sub", handle=5),
               _rule([{"match": _m(port(), 8472)}, {"drop": None}], handle=9))
    v = _one(doc)
    assert (v.action, v.by, bool(v.maybe)) == expected


def test_an_nft_verdict_map_on_an_unknown_key_may_drop() -> None:
    doc = _doc(_chain(), _rule([{"vmap": {"key": meta("oifname"), "data": {"set": [["eth0", {"drop": None}]]}}}],
                               handle=3))
    assert _one(doc).maybe == ("inet t in: vmap {...} (handle 3)",)
    malformed = _doc(_chain(), _rule([{"vmap": "junk"}], handle=4))
    assert _one(malformed).maybe == ("inet t in: vmap {...} (handle 4)",)
    # a match that fails before the map decides nothing
    skipped = _doc(_chain(), _rule([{"match": _m(port(), 22)}, {"vmap": "junk"}]))
    assert _one(skipped) == Verdict(layer="nft", action="accept", by="inet t in: policy accept", chain="in",
                                    table=("inet", "t"), policy=True)


def test_nft_chains_and_input_chains() -> None:
    doc = _doc(_chain("b", prio=-10), _chain("a", prio=-10), _chain("z", prio="filter"),
               _chain("out", hook="output"), _chain("nat", kind="nat"), _chain("v6", family="ip6"),
               _chain("arp", family="arp"), _chain("ip", family="ip", table="x"),
               _chain("user", hook=None, policy=None), _chain("skipped", table="firewalld"),
               _rule([{"accept": None}], "user"), _rule([{"drop": None}], "user"))
    chains = nft_chains(doc)
    user = chains[("inet", "t", "user")]
    assert (user.hook, user.type, user.prio, user.policy, user.label) == (None, None, 0, "accept", "inet t user")
    assert [r["expr"][0] for r in user.rules] == [{"accept": None}, {"drop": None}]
    assert chains[("inet", "t", "z")].prio == 0
    assert [c.label for c in nft_input_chains(doc, skip_tables=[("inet", "firewalld")])] == [
        "inet t a", "inet t b", "inet t z", "ip x ip"]
    assert nft_chains({}) == {}


@pytest.mark.parametrize(("expr", "extra", "text"), [
    ([{"match": _m(saddr(), {"prefix": {"addr": "10.0.0.0", "len": 8}})}, {"drop": None}], {},
     "ip saddr 10.0.0.0/8 drop"),
    ([{"match": _m(port(), {"set": [53, {"range": [8000, 9000]}]}, op="!=")}, {"accept": None}], {"handle": 3},
     "udp dport != { 53, 8000-9000 } accept (handle 3)"),
    ([{"match": _m(meta("iifname"), ["lo", "eth0"], op="in")}, {"return": None}], {},
     "meta iifname { lo, eth0 } return"),
    ([{"match": _m(CT_STATE, "new", op=None)}, {"counter": None}, {"log": None}, {"jump": {"target": "x"}}],
     {"comment": "c"}, 'ct state new log jump x comment "c"'),
    ([{"match": _m("junk", 1)}, {"goto": {"target": "y"}}, {"vmap": {}}, "bad", {"a": 1, "b": 2}], {"handle": 0},
     "? 1 goto y vmap {...} (handle 0)"),
    ([{"match": "junk"}, {"jump": "x"}, {"reject": None}], {}, "match jump reject"),
])
def test_describe_nft_rule(expr: list[Any], extra: dict[str, Any], text: str) -> None:
    assert describe_nft_rule({"expr": expr, **extra}) == text


def test_nft_has_tagged_accept() -> None:
    mine = _rule([{"match": _m(saddr(), "198.18.0.2")}, {"match": _m(port(), 8472)}, {"accept": None}],
                 comment="o11yctl-vxlan")
    tcp = _rule([{"match": _m(saddr(), "198.18.0.2")}, {"match": _m(port("tcp"), 10250)}, {"accept": None}],
                comment="o11yctl-kubelet")
    other = _rule([{"match": _m(saddr(), "198.18.0.3")}, {"accept": None}])
    doc = _doc(_chain(), other, mine, tcp)
    assert nft_has_tagged_accept(doc, ("inet", "t"), "in", "198.18.0.2", 8472)
    assert not nft_has_tagged_accept(doc, ("inet", "t"), "in", "198.18.0.3", 8472)
    assert not nft_has_tagged_accept(doc, ("inet", "t"), "in", "198.18.0.2", 8473)
    assert not nft_has_tagged_accept(doc, ("inet", "t"), "other", "198.18.0.2", 8472)
    assert not nft_has_tagged_accept(doc, ("ip", "t"), "in", "198.18.0.2", 8472)
    assert nft_has_tagged_accept(doc, ("inet", "t"), "in", "198.18.0.2", 10250, proto="tcp", tag="o11yctl-kubelet")
    assert not nft_has_tagged_accept(doc, ("inet", "t"), "in", "198.18.0.2", 10250, proto="tcp")


# --- firewalld and all layers together ----------------------------------------------------------


def _firewalld(**kw: Any) -> FirewallFacts:
    return FirewallFacts(firewalld=Firewalld(running=True, **kw))


def test_firewalld_verdicts() -> None:
    assert walk_firewalld(_firewalld(zone="public"), UDP) == Verdict(
        layer="firewalld", action="reject", by="firewalld zone public does not open 8472/udp to 198.18.0.2")
    assert walk_firewalld(_firewalld(), UDP) == Verdict(
        layer="firewalld", action="reject", by="firewalld zone default zone does not open 8472/udp to 198.18.0.2")
    assert walk_firewalld(_firewalld(trusted_sources=("198.18.0.0/24",)), UDP) == Verdict(
        layer="firewalld", action="accept", by="source 198.18.0.2 is in zone trusted")
    assert walk_firewalld(_firewalld(zone="internal", ports=("22/tcp", "8000-9000/udp")), UDP) == Verdict(
        layer="firewalld", action="accept", by="zone internal opens 8000-9000/udp")
    assert walk_firewalld(_firewalld(ports=("8472/tcp",)), UDP).action == "reject"  # type: ignore[union-attr]
    rule = firewalld_rich_rule("198.18.0.2", 8472)
    assert rule == 'rule family="ipv4" source address="198.18.0.2/32" port port="8472" protocol="udp" accept'
    assert walk_firewalld(_firewalld(zone="public", rich_rules=(rule,)), UDP) == Verdict(
        layer="firewalld", action="accept", by=f"rich rule in zone public: {rule}")
    tcp_rule = firewalld_rich_rule("198.18.0.2", 22, "tcp")
    assert tcp_rule.endswith('port port="22" protocol="tcp" accept')
    assert walk_firewalld(_firewalld(rich_rules=(tcp_rule,)), TCP).action == "accept"  # type: ignore[union-attr]
    for rich in (tcp_rule, rule.replace("accept", "drop"), rule.replace("source address", "destination address"),
                 'rule family="ipv4" service name="ssh" accept',
                 rule.replace("198.18.0.2/32", "198.18.0.3/32"), rule.replace("8472", "8473-8480")):
        assert walk_firewalld(_firewalld(rich_rules=(rich,)), UDP).action == "reject", rich  # type: ignore[union-attr]
    ranged = rule.replace("8472", "8000-9000")
    assert walk_firewalld(_firewalld(rich_rules=(ranged + "  ",)), UDP).action == "accept"  # type: ignore[union-attr]
    assert walk_firewalld(FirewallFacts(), UDP) is None


def test_evaluate_leaves_out_the_tables_other_tools_own() -> None:
    ipt_nft = _doc(_chain("INPUT", table="filter", family="ip", policy="drop"),
                   _chain("INPUT", table="filter", family="ip6", policy="drop"),
                   _chain("input", table="firewalld", policy="drop"), _chain(policy="accept"))
    fw = FirewallFacts(iptables="nf_tables", iptables_rules=("-P INPUT ACCEPT",), nft=ipt_nft,
                       firewalld=Firewalld(running=True, ports=("8472/udp",)))
    assert [(v.layer, v.chain, v.action) for v in evaluate(fw, UDP)] == [
        ("iptables", "INPUT", "accept"), ("nft", "in", "accept"), ("firewalld", "", "accept")]
    legacy = FirewallFacts(iptables="legacy", nft=ipt_nft)
    assert [(v.table, v.action) for v in evaluate(legacy, UDP)] == [
        (("inet", "firewalld"), "drop"), (("inet", "t"), "accept"), (("ip", "filter"), "drop")]
    assert evaluate(FirewallFacts(), UDP) == []


def test_policy_drops() -> None:
    doc = _doc(_chain("INPUT", table="filter", family="ip", policy="drop"), _chain(policy="drop"),
               _chain("open", policy="accept"))
    fw = FirewallFacts(iptables="nf_tables", iptables_rules=("-P INPUT DROP", "-P FORWARD DROP"), nft=doc)
    assert policy_drops(fw) == ["iptables INPUT policy DROP", "nft chain inet t in policy drop"]
    legacy = FirewallFacts(iptables="legacy", iptables_rules=("-P INPUT ACCEPT",), nft=doc)
    assert policy_drops(legacy) == ["nft chain inet t in policy drop", "nft chain ip filter INPUT policy drop"]
    assert policy_drops(FirewallFacts(iptables_rules=("-P INPUT accept",))) == []
    assert policy_drops(FirewallFacts()) == []
