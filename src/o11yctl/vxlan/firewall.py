"""What a node's firewall does with one packet: pure functions over ``iptables -S`` and ``nft -j``.

Each layer is walked the way the kernel walks it: iptables' filter ``INPUT`` chain with its jumps,
gotos, returns and policy; every nftables base chain on the input hook (a drop in any of them is
final, whatever iptables accepts); firewalld's default and trusted zones. A match o11yctl does not
understand (a named set, ``-m recent``, a mark set elsewhere) is never guessed: such a rule is
reported as one that *may* drop the packet, and the walk goes on as if it did not match.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from o11yctl.vxlan.facts import RULE_TAG, FirewallFacts

Action = Literal["accept", "drop", "reject"]
Tri = bool | None  # True matches, False does not, None: o11yctl cannot tell

#: Tables iptables-nft owns; the iptables walk covers them, so the nftables walk leaves them out.
IPTABLES_NFT_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet arriving at a node (only what firewall rules look at)."""

    src: str
    dst: str | None
    proto: str
    dport: int | None = None
    iface: str | None = None
    state: str = "NEW"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one firewall layer does with a packet.

    ``layer`` is ``iptables``, ``nft`` or ``firewalld``; ``chain`` where the verdict fell
    (``INPUT``, ``inet lab input``); ``by`` the rule or policy that decided; ``maybe`` rules the
    walk passed whose matches o11yctl cannot evaluate and that would drop or reject.
    """

    layer: str
    action: Action
    by: str
    chain: str = ""
    table: tuple[str, str] | None = None
    policy: bool = False
    ufw: bool = False
    maybe: tuple[str, ...] = ()

    @property
    def blocks(self) -> bool:
        return self.action != "accept"


# --- iptables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IptRule:
    """One ``-A CHAIN ...`` line of ``iptables -S``."""

    chain: str
    text: str
    tokens: tuple[str, ...]
    target: str | None
    goto: bool


@dataclass(frozen=True, slots=True)
class IptTable:
    """A parsed ``iptables -S`` filter table: policies and rules per chain, in order."""

    policies: Mapping[str, str]
    rules: Mapping[str, tuple[IptRule, ...]]

    def tagged_rules(self, chain: str = "INPUT", *, tag: str = RULE_TAG) -> tuple[IptRule, ...]:
        """The rules o11yctl added (they carry its comment: ``tag``)."""
        return tuple(r for r in self.rules.get(chain, ()) if tag in r.tokens)


def parse_iptables(lines: Iterable[str]) -> IptTable:
    """Parse ``iptables -S`` (``-v`` counters are ignored)."""
    policies: dict[str, str] = {}
    rules: dict[str, list[IptRule]] = {}
    for line in lines:
        try:
            tokens = shlex.split(line)
        except ValueError:
            tokens = line.split()
        if len(tokens) >= 3 and tokens[0] == "-P":
            policies[tokens[1]] = tokens[2]
            rules.setdefault(tokens[1], [])
        elif len(tokens) >= 2 and tokens[0] == "-N":
            rules.setdefault(tokens[1], [])
        elif len(tokens) >= 2 and tokens[0] == "-A":
            body = _drop_counters(tokens[2:])
            target, goto = None, False
            for i, tok in enumerate(body):
                if tok in ("-j", "--jump", "-g", "--goto") and i + 1 < len(body):
                    target, goto = body[i + 1], tok in ("-g", "--goto")
                    break
            rules.setdefault(tokens[1], []).append(
                IptRule(chain=tokens[1], text=line.strip(), tokens=tuple(body), target=target, goto=goto)
            )
    return IptTable(policies=policies, rules={k: tuple(v) for k, v in rules.items()})


def _drop_counters(tokens: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = 0
    for i, tok in enumerate(tokens):
        if skip:
            skip -= 1
            continue
        if tok == "-c" and i + 2 < len(tokens) and tokens[i + 1].isdigit():
            skip = 2
            continue
        out.append(tok)
    return out


_IPT_OPTS_WITH_VALUE = {
    "-s", "--source", "-d", "--destination", "-p", "--protocol", "-i", "--in-interface", "-o", "--out-interface",
    "-m", "--match", "--dport", "--destination-port", "--sport", "--source-port", "--dports", "--destination-ports",
    "--sports", "--source-ports", "--ports", "--ctstate", "--state", "--comment", "--dst-type", "--src-type",
    "--mark", "--icmp-type",
}


def rule_matches(rule: IptRule, pkt: Packet) -> Tri:
    """Whether an iptables rule's matches select ``pkt``: True, False, or None (cannot tell)."""
    toks = list(rule.tokens)
    result: Tri = True
    negate = False
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok == "!":
            negate = True
            i += 1
            continue
        if tok in ("-j", "--jump", "-g", "--goto"):
            break
        value = toks[i + 1] if i + 1 < len(toks) else ""
        if value == "!":  # old syntax: -s ! ADDR
            negate = True
            value = toks[i + 2] if i + 2 < len(toks) else ""
            i += 1
        takes_value = tok in _IPT_OPTS_WITH_VALUE or (bool(value) and not value.startswith("-"))
        step = 2 if takes_value else 1
        m: Tri
        if tok in ("-s", "--source"):
            m = _addr_in(pkt.src, value.split(","))
        elif tok in ("-d", "--destination"):
            m = _addr_in(pkt.dst, value.split(",")) if pkt.dst else None
        elif tok in ("-p", "--protocol"):
            m = _proto_is(pkt.proto, value.lower())
        elif tok in ("-i", "--in-interface"):
            m = _iface_is(pkt.iface, value)
        elif tok in ("-o", "--out-interface"):
            m = False
        elif tok in ("-m", "--match"):
            m = True if value in _KNOWN_MODULES else None
        elif tok in ("--dport", "--destination-port"):
            m = _port_in(pkt.dport, [value]) if pkt.proto in ("udp", "tcp") else False
        elif tok in ("--dports", "--destination-ports", "--ports"):
            m = _port_in(pkt.dport, value.split(",")) if pkt.proto in ("udp", "tcp") else False
        elif tok in ("--sport", "--source-port", "--sports", "--source-ports"):
            m = None
        elif tok in ("--ctstate", "--state"):
            m = pkt.state in {s.upper() for s in value.split(",")}
        elif tok == "--comment":
            m = True
        elif tok == "--dst-type":
            m = True if value == "LOCAL" else (False if value in ("BROADCAST", "MULTICAST", "ANYCAST") else None)
        elif tok == "--src-type":
            m = False if value == "LOCAL" else None
        elif tok == "--mark":
            m = _mark_matches(value)
        elif tok == "--icmp-type":
            m = (value in ("8", "echo-request", "any")) if pkt.proto == "icmp" else False
        elif tok in ("-f", "--fragment"):
            m, step = False, 1
        else:
            m = None
        if negate and m is not None:
            m = not m
        negate = False
        if m is False:
            return False
        if m is None:
            result = None
        i += step
    return result


_KNOWN_MODULES = frozenset({"udp", "tcp", "icmp", "multiport", "conntrack", "state", "comment", "addrtype", "mark"})


def _mark_matches(value: str) -> Tri:
    # A packet fresh from the wire carries mark 0 unless a mangle rule set one.
    try:
        want, _, mask = value.partition("/")
        v = int(want, 0)
        mk = int(mask, 0) if mask else 0xFFFFFFFF
    except ValueError:
        return None
    return (0 & mk) == v


def walk_iptables(table: IptTable, pkt: Packet, chain: str = "INPUT") -> Verdict:
    """Walk ``chain`` (with its jumps) for ``pkt``; fall back to the chain's policy.

    Returns:
        The verdict, with ``maybe`` listing drop/reject rules whose matches could not be evaluated.
    """
    maybe: list[str] = []
    found = _walk_chain(table, chain, pkt, maybe, depth=0)
    if found is not None:
        action, rule = found
        return Verdict(layer="iptables", action=action, by=rule.text, chain=rule.chain,
                       ufw=rule.chain.startswith("ufw"), maybe=tuple(maybe))
    policy = table.policies.get(chain, "ACCEPT").upper()
    action = "accept" if policy == "ACCEPT" else "drop"
    return Verdict(layer="iptables", action=action, by=f"policy {policy} of chain {chain}", chain=chain,
                   policy=True, maybe=tuple(maybe))


def _walk_chain(table: IptTable, chain: str, pkt: Packet, maybe: list[str],
                depth: int) -> tuple[Action, IptRule] | None:
    if depth > 32:
        return None
    for rule in table.rules.get(chain, ()):
        matched = rule_matches(rule, pkt)
        target = rule.target
        if matched is False or target is None:
            continue
        if matched is None:
            if target in ("DROP", "REJECT") or target in table.rules:
                maybe.append(rule.text)
            continue
        if target == "ACCEPT":
            return "accept", rule
        if target == "DROP":
            return "drop", rule
        if target == "REJECT":
            return "reject", rule
        if target == "RETURN":
            return None
        if target in table.rules:
            inner = _walk_chain(table, target, pkt, maybe, depth + 1)
            if inner is not None or rule.goto:
                return inner
            continue
        # LOG, NFLOG, MARK, CT and friends do not decide; go on.
    return None


# --- nftables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NftChain:
    family: str
    table: str
    name: str
    hook: str | None
    type: str | None
    prio: int
    policy: str
    rules: tuple[dict[str, Any], ...]

    @property
    def label(self) -> str:
        return f"{self.family} {self.table} {self.name}"


def nft_chains(doc: Mapping[str, Any]) -> dict[tuple[str, str, str], NftChain]:
    """Index the chains (with their rules, in order) of ``nft -j list ruleset``."""
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in doc.get("nftables", []):
        if "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            rules.setdefault((r["family"], r["table"], r["chain"]), []).append(r)
    out: dict[tuple[str, str, str], NftChain] = {}
    for key, c in chains.items():
        prio = c.get("prio", 0)
        out[key] = NftChain(
            family=key[0], table=key[1], name=key[2], hook=c.get("hook"), type=c.get("type"),
            prio=prio if isinstance(prio, int) else 0, policy=str(c.get("policy", "accept")),
            rules=tuple(rules.get(key, ())),
        )
    return out


def nft_input_chains(doc: Mapping[str, Any], *, skip_tables: Iterable[tuple[str, str]] = ()) -> list[NftChain]:
    """Base chains that see an IPv4 packet addressed to the node, lowest priority first."""
    skip = set(skip_tables)
    chains = [c for c in nft_chains(doc).values()
              if c.hook == "input" and c.type == "filter" and c.family in ("ip", "inet")
              and (c.family, c.table) not in skip]
    return sorted(chains, key=lambda c: (c.prio, c.family, c.table, c.name))


def walk_nft(doc: Mapping[str, Any], pkt: Packet, *, skip_tables: Iterable[tuple[str, str]] = ()) -> list[Verdict]:
    """Walk every nftables input base chain for ``pkt``; one verdict per chain."""
    index = nft_chains(doc)
    verdicts: list[Verdict] = []
    for chain in nft_input_chains(doc, skip_tables=skip_tables):
        maybe: list[str] = []
        found = _nft_walk_chain(index, chain, pkt, maybe, 0)
        table = (chain.family, chain.table)
        if found is not None:
            action, rule, where = found
            verdicts.append(Verdict(layer="nft", action=action, by=f"{where.label}: {describe_nft_rule(rule)}",
                                    chain=chain.name, table=table, maybe=tuple(maybe)))
        else:
            action = "accept" if chain.policy == "accept" else "drop"
            verdicts.append(Verdict(layer="nft", action=action, by=f"{chain.label}: policy {chain.policy}",
                                    chain=chain.name, table=table, policy=True, maybe=tuple(maybe)))
    return verdicts


_NOOP_STATEMENTS = frozenset({"counter", "log", "comment", "mangle", "notrack", "meta"})


def _nft_walk_chain(index: Mapping[tuple[str, str, str], NftChain], chain: NftChain, pkt: Packet,
                    maybe: list[str], depth: int) -> tuple[Action, dict[str, Any], NftChain] | None:
    if depth > 32:
        return None
    for rule in chain.rules:
        matched: Tri = True
        verdict: tuple[str, str | None] | None = None
        for expr in rule.get("expr", []):
            if not isinstance(expr, dict) or len(expr) != 1:
                matched = None
                continue
            key, body = next(iter(expr.items()))
            if key == "match":
                m = _nft_match(body, pkt)
                if m is False:
                    matched = False
                    break
                if m is None:
                    matched = None
            elif key in ("accept", "drop", "reject", "return"):
                verdict = (key, None)
                break
            elif key in ("jump", "goto"):
                verdict = (key, body.get("target") if isinstance(body, dict) else None)
                break
            elif key == "vmap":
                verdict = _nft_vmap(body, pkt)
                if verdict is None:
                    matched, verdict = (None if matched is not False else False), ("drop", None)
                break
            elif key not in _NOOP_STATEMENTS:
                matched = None
        if matched is False or verdict is None or verdict[0] == "continue":
            continue
        kind, target = verdict
        if matched is None:
            if kind in ("drop", "reject", "jump", "goto"):
                maybe.append(f"{chain.label}: {describe_nft_rule(rule)}")
            continue
        if kind == "accept":
            return "accept", rule, chain
        if kind == "drop":
            return "drop", rule, chain
        if kind == "reject":
            return "reject", rule, chain
        if kind == "return":
            return None
        if kind in ("jump", "goto") and target:
            inner_chain = index.get((chain.family, chain.table, target))
            if inner_chain is None:
                continue
            inner = _nft_walk_chain(index, inner_chain, pkt, maybe, depth + 1)
            if inner is not None or kind == "goto":
                return inner
    return None


def _nft_vmap(body: Any, pkt: Packet) -> tuple[str, str | None] | None:
    if not isinstance(body, dict):
        return None
    value = _nft_left(body.get("key"), pkt)
    if value is _UNKNOWN:
        return None
    data = body.get("data")
    elements = data.get("set") if isinstance(data, dict) else None
    if not isinstance(elements, list):
        return None
    for element in elements:
        if not isinstance(element, list) or len(element) != 2:
            return None
        m = _member(value, element[0])
        if m is None:
            return None
        if m:
            verdict = element[1]
            if isinstance(verdict, dict) and len(verdict) == 1:
                (kind, arg), = verdict.items()
                return kind, arg.get("target") if isinstance(arg, dict) else None
            return None
    return ("continue", None)


class _Unknown:
    pass


_UNKNOWN = _Unknown()
_PROTOCOLS = {"udp": 17, "tcp": 6, "icmp": 1}


def _nft_left(left: Any, pkt: Packet) -> Any:
    """The packet's value for an nft expression, or a marker that it does not apply / is unknown."""
    if not isinstance(left, dict):
        return _UNKNOWN
    if "payload" in left:
        p = left["payload"]
        proto, fld = p.get("protocol"), p.get("field")
        if proto == "ip":
            return {"saddr": ("addr", pkt.src), "daddr": ("addr", pkt.dst),
                    "protocol": ("proto", pkt.proto)}.get(fld, _UNKNOWN)
        if proto in ("udp", "tcp", "th"):
            if proto != "th" and proto != pkt.proto:
                return _NOT_THIS_PROTO
            if proto == "th" and pkt.proto not in ("udp", "tcp"):
                return _NOT_THIS_PROTO
            return ("port", pkt.dport) if fld == "dport" else _UNKNOWN
        if proto == "icmp":
            return ("icmp", 8) if pkt.proto == "icmp" and fld == "type" else (
                _NOT_THIS_PROTO if pkt.proto != "icmp" else _UNKNOWN)
        return _UNKNOWN
    if "meta" in left:
        key = left["meta"].get("key")
        if key == "l4proto":
            return ("proto", pkt.proto)
        if key == "iifname":
            return ("iface", pkt.iface) if pkt.iface else _UNKNOWN
        if key == "nfproto":
            return ("str", "ipv4")
        if key == "mark":
            return ("int", 0)
        return _UNKNOWN
    if "ct" in left:
        return ("state", pkt.state.lower()) if left["ct"].get("key") == "state" else _UNKNOWN
    return _UNKNOWN


_NOT_THIS_PROTO = object()


def _nft_match(body: Any, pkt: Packet) -> Tri:
    if not isinstance(body, dict):
        return None
    value = _nft_left(body.get("left"), pkt)
    if value is _NOT_THIS_PROTO:
        return False
    if value is _UNKNOWN or value[1] is None:
        return None
    op = body.get("op", "==")
    right = body.get("right")
    if op in ("==", "in"):
        return _member(value, right)
    if op == "!=":
        m = _member(value, right)
        return None if m is None else not m
    if op in ("<", ">", "<=", ">=") and isinstance(value[1], int) and isinstance(right, int):
        return {"<": value[1] < right, ">": value[1] > right, "<=": value[1] <= right, ">=": value[1] >= right}[op]
    return None


def _member(value: tuple[str, Any], right: Any) -> Tri:
    kind, v = value
    if isinstance(right, dict) and "set" in right:
        right = right["set"]
    if isinstance(right, list):
        if kind == "state":
            return v in {str(x) for x in right}
        results = [_member(value, x) for x in right]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if isinstance(right, dict) and "elem" in right:
        return _member(value, right["elem"].get("val"))
    if isinstance(right, str) and right.startswith("@"):
        return None
    if kind == "addr":
        if isinstance(right, dict) and "prefix" in right:
            return _addr_in(v, [f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}"])
        if isinstance(right, dict) and "range" in right:
            lo, hi = right["range"]
            try:
                return int(ipaddress.IPv4Address(lo)) <= int(ipaddress.IPv4Address(v)) <= int(ipaddress.IPv4Address(hi))
            except (ValueError, TypeError):
                return None
        return _addr_in(v, [str(right)])
    if kind in ("port", "int", "icmp"):
        if isinstance(right, dict) and "range" in right:
            lo, hi = right["range"]
            return isinstance(lo, int) and isinstance(hi, int) and bool(lo <= v <= hi)
        if isinstance(right, int):
            return bool(v == right)
        if kind == "icmp" and right in ("echo-request",):
            return True
        return None if not isinstance(right, str) or not right.isdigit() else bool(v == int(right))
    if kind == "proto":
        if isinstance(right, int):
            return _PROTOCOLS.get(v) == right
        return bool(v == str(right))
    if kind == "iface":
        return _iface_is(v, str(right))
    if kind in ("state", "str"):
        return bool(v == str(right))
    return None


def describe_nft_rule(rule: Mapping[str, Any]) -> str:
    """A short nft-like text of a rule (``ip saddr 198.18.0.2 udp dport 8472 drop``)."""
    parts: list[str] = []
    for expr in rule.get("expr", []):
        if not isinstance(expr, dict) or len(expr) != 1:
            continue
        (key, body), = expr.items()
        if key == "match" and isinstance(body, dict):
            op = body.get("op", "==")
            op_text = "" if op in ("==", "in") else f"{op} "
            parts.append(f"{_left_text(body.get('left'))} {op_text}{_right_text(body.get('right'))}")
        elif key in ("accept", "drop", "reject", "return"):
            parts.append(key)
        elif key in ("jump", "goto") and isinstance(body, dict):
            parts.append(f"{key} {body.get('target')}")
        elif key == "vmap":
            parts.append("vmap {...}")
        elif key not in ("counter",):
            parts.append(key)
    if rule.get("comment"):
        parts.append(f'comment "{rule["comment"]}"')
    handle = rule.get("handle")
    text = " ".join(parts)
    return f"{text} (handle {handle})" if handle is not None else text


def _left_text(left: Any) -> str:
    if isinstance(left, dict):
        if "payload" in left:
            return f"{left['payload'].get('protocol')} {left['payload'].get('field')}"
        if "meta" in left:
            return f"meta {left['meta'].get('key')}"
        if "ct" in left:
            return f"ct {left['ct'].get('key')}"
    return "?"


def _right_text(right: Any) -> str:
    if isinstance(right, dict):
        if "set" in right:
            return "{ " + ", ".join(_right_text(x) for x in right["set"]) + " }"
        if "prefix" in right:
            return f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}"
        if "range" in right:
            return "-".join(str(x) for x in right["range"])
    if isinstance(right, list):
        return "{ " + ", ".join(_right_text(x) for x in right) + " }"
    return str(right)


def nft_has_tagged_accept(doc: Mapping[str, Any], table: tuple[str, str], chain: str, source: str, port: int, *,
                          proto: str = "udp", tag: str = RULE_TAG) -> bool:
    """Whether o11yctl's accept rule (comment ``tag``) for ``source`` already sits in that nftables chain."""
    key = (table[0], table[1], chain)
    found = nft_chains(doc).get(key)
    if found is None:
        return False
    for rule in found.rules:
        if rule.get("comment") != tag:
            continue
        pkt = Packet(src=source, dst=None, proto=proto, dport=port)
        if all(_nft_match(e["match"], pkt) is True for e in rule.get("expr", []) if "match" in e):
            return True
    return False


# --- firewalld --------------------------------------------------------------------------------

_RICH_SOURCE = re.compile(r'source\s+address="?([0-9.]+(?:/[0-9]+)?)"?')
_RICH_PORT = re.compile(r'port\s+port="?([0-9]+(?:-[0-9]+)?)"?\s+protocol="?(udp|tcp)"?')


def firewalld_rich_rule(source: str, port: int, proto: str = "udp") -> str:
    """The rich rule o11yctl adds on firewalld: ``proto`` ``port`` from ``source`` only."""
    return f'rule family="ipv4" source address="{source}/32" port port="{port}" protocol="{proto}" accept'


def walk_firewalld(fw: FirewallFacts, pkt: Packet) -> Verdict | None:
    """firewalld's answer for ``pkt`` (None when firewalld is not running)."""
    f = fw.firewalld
    if not f.running:
        return None
    zone = f.zone or "default zone"
    if _addr_in(pkt.src, list(f.trusted_sources)):
        return Verdict(layer="firewalld", action="accept", by=f"source {pkt.src} is in zone trusted")
    for spec in f.ports:
        port, _, proto = spec.partition("/")
        if proto == pkt.proto and _port_in(pkt.dport, [port.replace("-", ":")]):
            return Verdict(layer="firewalld", action="accept", by=f"zone {zone} opens {spec}")
    for rule in f.rich_rules:
        src = _RICH_SOURCE.search(rule)
        port_m = _RICH_PORT.search(rule)
        if not port_m or pkt.proto != port_m.group(2) or not src or not rule.rstrip().endswith("accept"):
            continue
        if _addr_in(pkt.src, [src.group(1)]) and _port_in(pkt.dport, [port_m.group(1).replace("-", ":")]):
            return Verdict(layer="firewalld", action="accept", by=f"rich rule in zone {zone}: {rule}")
    return Verdict(layer="firewalld", action="reject",
                   by=f"firewalld zone {zone} does not open {pkt.dport}/{pkt.proto} to {pkt.src}")


# --- all layers -------------------------------------------------------------------------------


def evaluate(fw: FirewallFacts, pkt: Packet) -> list[Verdict]:
    """Every layer's verdict for ``pkt`` on a node; the packet passes only if none blocks it."""
    out: list[Verdict] = []
    if fw.iptables_rules is not None:
        out.append(walk_iptables(parse_iptables(fw.iptables_rules), pkt))
    if fw.nft is not None:
        skip: set[tuple[str, str]] = set()
        if fw.iptables == "nf_tables":
            skip |= {(fam, t) for fam in ("ip", "ip6") for t in IPTABLES_NFT_TABLES}
        if fw.firewalld.running:
            skip.add(("inet", "firewalld"))
        out.extend(walk_nft(fw.nft, pkt, skip_tables=skip))
    fwd = walk_firewalld(fw, pkt)
    if fwd is not None:
        out.append(fwd)
    return out


def policy_drops(fw: FirewallFacts) -> list[str]:
    """Input chains whose default is to drop (iptables INPUT policy, nft base-chain policies)."""
    out: list[str] = []
    if fw.iptables_rules is not None:
        table = parse_iptables(fw.iptables_rules)
        if table.policies.get("INPUT", "ACCEPT").upper() != "ACCEPT":
            out.append(f"iptables INPUT policy {table.policies['INPUT']}")
    if fw.nft is not None:
        skip = {(fam, t) for fam in ("ip", "ip6") for t in IPTABLES_NFT_TABLES} if fw.iptables == "nf_tables" else set()
        for chain in nft_input_chains(fw.nft, skip_tables=skip):
            if chain.policy != "accept":
                out.append(f"nft chain {chain.label} policy {chain.policy}")
    return out


# --- helpers ----------------------------------------------------------------------------------


def _addr_in(addr: str | None, specs: Sequence[str]) -> Tri:
    if not addr:
        return None
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    unknown = False
    for spec in specs:
        try:
            if ip in ipaddress.ip_network(spec, strict=False):
                return True
        except ValueError:
            unknown = True
    return None if unknown else False


def _proto_is(proto: str, spec: str) -> Tri:
    if spec in ("all", "0"):
        return True
    if spec.isdigit():
        return _PROTOCOLS.get(proto) == int(spec)
    return proto == spec


def _iface_is(iface: str | None, spec: str) -> Tri:
    if spec.endswith("+") or spec.endswith("*"):
        return None if iface is None else iface.startswith(spec[:-1])
    if iface is None:
        return None
    return iface == spec


def _port_in(port: int | None, specs: Sequence[str]) -> Tri:
    if port is None:
        return None
    for spec in specs:
        lo, _, hi = spec.partition(":")
        try:
            if int(lo or 0) <= port <= int(hi or lo or 65535):
                return True
        except ValueError:
            return None
    return False
