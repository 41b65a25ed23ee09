"""Judge the overlay: every node's facts and pings in, a diagnosis out. Pure: no I/O here.

The verdict comes from the overlay itself (a ping from each node's VXLAN address to each
peer's). The firewall walk explains it: a ping between A and B needs UDP 8472 to pass both
ways, so a failed pair is traced to the direction(s) whose receiving node drops the
encapsulated packets from the sender's VXLAN endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from o11yctl.config import Node, Vxlan
from o11yctl.model import CheckResult, Status
from o11yctl.vxlan.facts import NodeFacts, PingFacts, is_ipv4
from o11yctl.vxlan.firewall import Packet, Verdict, evaluate, policy_drops

GROUP = "vxlan"

DirectionStatus = Literal["ok", "blocked", "suspect", "masked", "pod-blocked", "unexplained", "untested"]

#: What K3s asks a default-drop firewall to accept (K3s docs, "Inbound Rules" and firewall notes).
K3S_INBOUND_HINT = (
    "the firewall drops by default; besides UDP {port} between the nodes, K3s needs TCP 6443 to the servers, "
    "TCP 10250 between all nodes, and traffic from the pod network 10.42.0.0/16 and the service network "
    "10.43.0.0/16 accepted (K3s docs: 'Inbound Rules'); o11yctl opens only UDP {port}"
)


@dataclass(frozen=True, slots=True)
class NodeError:
    """A node o11yctl could not read: its name, the message and hint, and the exit code it implies."""

    name: str
    message: str
    hint: str | None
    exit_code: int
    unreachable: bool


@dataclass(frozen=True, slots=True)
class Direction:
    """Encapsulated traffic from ``src``'s VXLAN endpoint into ``dst``.

    ``status``: ``ok`` (a ping between them worked), ``blocked`` (``dst``'s firewall drops it),
    ``suspect`` (pings fail and a rule o11yctl cannot evaluate may drop it), ``masked`` (pings
    fail because the reverse direction is blocked; this one is proven after the fix),
    ``pod-blocked`` (UDP passes but ``dst`` drops the decapsulated overlay traffic),
    ``unexplained`` (pings fail and no firewall rule explains it), ``untested``.
    """

    src: str
    dst: str
    status: DirectionStatus
    source: str | None = None
    by: tuple[Verdict, ...] = ()
    maybe: tuple[str, ...] = ()
    pod_block: Verdict | None = None

    @property
    def needs_rule(self) -> bool:
        return self.status in ("blocked", "suspect")


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The overlay's state across the cluster."""

    nodes: tuple[str, ...]
    interface: str
    port: int
    facts: Mapping[str, NodeFacts]
    pings: Mapping[str, PingFacts]
    errors: Mapping[str, NodeError]
    endpoints: Mapping[str, str | None]
    directions: tuple[Direction, ...]
    checks: tuple[CheckResult, ...]
    device_problems: Mapping[str, str] = field(default_factory=dict)

    @property
    def unreachable(self) -> bool:
        return any(e.unreachable for e in self.errors.values())

    def ping(self, src: str, dst: str) -> bool | None:
        p = self.pings.get(src)
        return None if p is None else p.results.get(dst)

    @property
    def overlay_ok(self) -> bool:
        """Every node was read, has a working device, and reaches every peer over the overlay."""
        if self.errors or self.device_problems:
            return False
        return all(self.ping(a, b) is True for a in self.nodes for b in self.nodes if a != b)

    @property
    def blocked(self) -> tuple[Direction, ...]:
        return tuple(d for d in self.directions if d.status == "blocked")

    def matrix(self) -> dict[str, dict[str, str]]:
        """``src -> dst -> ok | fail | ?`` for the overlay pings."""
        out: dict[str, dict[str, str]] = {}
        for a in self.nodes:
            row: dict[str, str] = {}
            for b in self.nodes:
                if a == b:
                    continue
                r = self.ping(a, b)
                row[b] = "?" if r is None else ("ok" if r else "fail")
            out[a] = row
        return out

    def verdict(self) -> str:
        """One line: does the overlay work, and if not, what blocks it."""
        n = len(self.nodes)
        if self.overlay_ok:
            pairs = n * (n - 1)
            return f"overlay works: {pairs} of {pairs} pings between {n} nodes over {self.interface} pass"
        parts: list[str] = []
        if self.errors:
            parts.append("not reached: " + ", ".join(sorted(self.errors)))
        if self.device_problems:
            parts.append("no working VXLAN device on " + ", ".join(sorted(self.device_problems)))
        if self.blocked:
            parts.append(f"UDP {self.port} blocked " + ", ".join(f"{d.src} → {d.dst}" for d in self.blocked))
        others = [d for d in self.directions if d.status in ("suspect", "pod-blocked", "unexplained")]
        if others:
            parts.append("also failing: " + ", ".join(f"{d.src} → {d.dst} ({d.status})" for d in others))
        fails = sum(1 for a in self.nodes for b in self.nodes if a != b and self.ping(a, b) is False)
        if fails and not parts:
            parts.append(f"{fails} pings fail")
        return "overlay broken: " + "; ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {
            "overlay_ok": self.overlay_ok,
            "verdict": self.verdict(),
            "matrix": self.matrix(),
            "blocked": [
                {"from": d.src, "to": d.dst, "source": d.source, "by": [v.by for v in d.by]} for d in self.blocked
            ],
            "directions": [
                {"from": d.src, "to": d.dst, "status": d.status, "source": d.source,
                 "by": [v.by for v in d.by], "maybe": list(d.maybe),
                 "pod_block": d.pod_block.by if d.pod_block else None}
                for d in self.directions
            ],
            "nodes": {
                name: {
                    "reached": name not in self.errors,
                    "error": self.errors[name].message if name in self.errors else None,
                    "firewall": self.facts[name].firewall.tool if name in self.facts else None,
                    "endpoint": self.endpoints.get(name),
                    "overlay": self.facts[name].device.overlay if name in self.facts else None,
                    "device": self.device_problems.get(name, "ok") if name in self.facts else None,
                    "udp_csum_errors_delta": self.pings[name].csum_delta if name in self.pings else None,
                }
                for name in self.nodes
            },
        }


def endpoint_of(node: Node, facts: NodeFacts | None) -> str | None:
    """The address a node's VXLAN packets come from: the device's ``local``, else the configured address."""
    if facts is not None and facts.device.present and is_ipv4(facts.device.local):
        return facts.device.local
    return node.address if is_ipv4(node.address) else None


def judge(nodes: Sequence[Node], vx: Vxlan, facts: Mapping[str, NodeFacts], pings: Mapping[str, PingFacts],
          errors: Mapping[str, NodeError]) -> Diagnosis:
    """Turn every node's facts and overlay test into a diagnosis.

    Args:
        nodes: the configured nodes, in order.
        vx: the ``vxlan`` settings.
        facts: the probe's facts per reachable node.
        pings: the overlay test per node that ran it.
        errors: nodes that could not be read.
    """
    names = tuple(n.name for n in nodes)
    by_name = {n.name: n for n in nodes}
    endpoints = {n.name: endpoint_of(n, facts.get(n.name)) for n in nodes}
    device_problems: dict[str, str] = {}
    checks: list[CheckResult] = []

    for node in nodes:
        if node.name in errors:
            e = errors[node.name]
            checks.append(CheckResult(f"ssh {node.name}", GROUP, "FAIL", e.message, e.hint))
            continue
        f = facts[node.name]
        status, detail, hint = _judge_device(node, f, vx)
        if status == "FAIL":
            device_problems[node.name] = detail
        checks.append(CheckResult(f"device {node.name}", GROUP, status, detail, hint))

    directions: list[Direction] = []
    for dst in names:
        if dst in errors:
            continue
        for src in names:
            if src == dst:
                continue
            directions.append(_direction(src, dst, by_name, facts, pings, errors, endpoints, vx))
    by_pair = {(d.src, d.dst): d for d in directions}
    directions = [_refine(d, by_pair) for d in directions]

    for node in nodes:
        if node.name in errors:
            continue
        checks.append(_firewall_check(node.name, facts[node.name], [d for d in directions if d.dst == node.name],
                                      vx.port))
        if node.name in pings:
            checks.append(_overlay_check(node.name, pings[node.name], facts, names, vx.interface))
            csum = _checksum_check(node.name, pings[node.name], facts[node.name], vx.interface)
            if csum is not None:
                checks.append(csum)

    return Diagnosis(
        nodes=names, interface=vx.interface, port=vx.port, facts=dict(facts), pings=dict(pings),
        errors=dict(errors), endpoints=endpoints, directions=tuple(directions), checks=tuple(checks),
        device_problems=device_problems,
    )


def _judge_device(node: Node, f: NodeFacts, vx: Vxlan) -> tuple[Status, str, str | None]:
    d = f.device
    hint_k3s = f"is k3s running on {node.name} with Flannel's vxlan backend (the default)?"
    if not d.present:
        return "FAIL", f"no {vx.interface} device" + (f" ({d.error})" if d.error else ""), hint_k3s
    if d.kind != "vxlan":
        return "FAIL", f"{vx.interface} is a {d.kind or 'unknown'} device, not vxlan", \
            "set vxlan.interface to Flannel's VXLAN device"
    if not d.up:
        return "FAIL", f"{vx.interface} is down", f"restart k3s on {node.name}, or: ip link set {vx.interface} up"
    if not d.overlay:
        return "FAIL", f"{vx.interface} has no IPv4 overlay address", hint_k3s
    detail = f"{vx.interface} up: vxlan id {d.vni}, local {d.local or '-'}, dstport {d.port}, overlay {d.overlay}"
    if d.port is not None and d.port != vx.port:
        return "WARN", detail + f"; its UDP port is {d.port}, not {vx.port}", \
            f"set vxlan.port: {d.port} so o11yctl opens the port Flannel uses"
    if d.local and d.local != node.address:
        return "WARN", detail + f"; peers' packets come from {d.local}, not the configured address {node.address}", \
            (f"o11yctl opens UDP {vx.port} to {d.local}; if {node.address} is the address you meant, "
             "set K3s' --flannel-iface or --node-ip on this node")
    return "PASS", detail, None


def _direction(src: str, dst: str, by_name: Mapping[str, Node], facts: Mapping[str, NodeFacts],
               pings: Mapping[str, PingFacts], errors: Mapping[str, NodeError],
               endpoints: Mapping[str, str | None], vx: Vxlan) -> Direction:
    source = endpoints.get(src)
    f = facts[dst]
    verdicts: list[Verdict] = []
    maybe: list[str] = []
    if source is not None:
        pkt = Packet(src=source, dst=endpoints.get(dst), proto="udp", dport=vx.port, iface=f.device.link)
        verdicts = evaluate(f.firewall, pkt)
        maybe = [m for v in verdicts for m in v.maybe]
    blocking = tuple(v for v in verdicts if v.blocks)
    pod_block: Verdict | None = None
    src_facts = facts.get(src)
    if src_facts is not None and src_facts.device.overlay:
        pod_pkt = Packet(src=src_facts.device.overlay, dst=f.device.overlay, proto="icmp", iface=vx.interface)
        pod_block = next((v for v in evaluate(f.firewall, pod_pkt) if v.blocks), None)
    there, back = _ping_of(pings, src, dst), _ping_of(pings, dst, src)
    if src in errors or (there is None and back is None):
        status: DirectionStatus = "blocked" if blocking else "untested"
    elif there or back:
        status = "ok"
    elif blocking:
        status = "blocked"
    elif maybe:
        status = "suspect"
    elif pod_block is not None:
        status = "pod-blocked"
    else:
        status = "unexplained"
    return Direction(src=src, dst=dst, status=status, source=source, by=blocking, maybe=tuple(maybe),
                     pod_block=pod_block)


def _refine(d: Direction, by_pair: Mapping[tuple[str, str], Direction]) -> Direction:
    """A failing direction is explained by its reverse when only the reverse is blocked."""
    if d.status in ("unexplained", "pod-blocked"):
        reverse = by_pair.get((d.dst, d.src))
        if reverse is not None and reverse.status in ("blocked", "suspect"):
            return Direction(src=d.src, dst=d.dst, status="masked", source=d.source, by=d.by, maybe=d.maybe,
                             pod_block=d.pod_block)
    return d


def _ping_of(pings: Mapping[str, PingFacts], a: str, b: str) -> bool | None:
    p = pings.get(a)
    return None if p is None else p.results.get(b)


def _firewall_check(name: str, f: NodeFacts, inbound: Sequence[Direction], port: int) -> CheckResult:
    tool = f.firewall.tool
    fixable = f"run `o11yctl fix-vxlan` to accept UDP {port} from those nodes' VXLAN endpoints only"
    blocked = [d for d in inbound if d.status == "blocked"]
    suspect = [d for d in inbound if d.status == "suspect"]
    pod = [d for d in inbound if d.status == "pod-blocked"]
    unexplained = [d for d in inbound if d.status == "unexplained"]
    drops = policy_drops(f.firewall)
    lines: list[str] = []
    status: Status = "PASS"
    hint: str | None = None
    for d in blocked:
        lines.append(f"drops UDP {port} from {d.src} ({d.source}): " + "; ".join(_verdict_text(v) for v in d.by))
    for d in suspect:
        lines.append(f"no reply with {d.src} ({d.source}); these rules may drop UDP {port}: " + "; ".join(d.maybe))
    for d in pod:
        assert d.pod_block is not None
        lines.append(f"accepts UDP {port} from {d.src}, but drops the overlay traffic from {d.src} on "
                     f"{d.pod_block.chain or 'input'}: {_verdict_text(d.pod_block)}")
    for d in unexplained:
        lines.append(f"no overlay reply with {d.src} and no firewall rule here explains it")
    if blocked or suspect:
        status, hint = "FAIL", fixable
    elif pod:
        status, hint = "FAIL", K3S_INBOUND_HINT.format(port=port)
    elif unexplained:
        status = "FAIL"
        hint = ("the firewall is not the cause: check that k3s runs on both nodes, that their underlay addresses "
                "reach each other, then restart k3s (`o11yctl fix-vxlan --restart`) to rebuild the tunnel")
    if f.firewall.problems:
        lines.extend(f.firewall.problems)
        if status == "PASS":
            status = "WARN"
    if drops:
        lines.append("default drop: " + ", ".join(drops))
        if status == "PASS":
            status = "WARN"
        hint = (hint + "; " if hint else "") + K3S_INBOUND_HINT.format(port=port)
    accepted = [d.src for d in inbound if d.status in ("ok", "masked") and not d.by]
    head = f"{tool}"
    if accepted and not lines:
        head += f": UDP {port} accepted from " + ", ".join(accepted)
    detail = head + ("; " + "; ".join(lines) if lines else "")
    return CheckResult(f"firewall {name}", GROUP, status, detail, hint)


def _verdict_text(v: Verdict) -> str:
    where = {"iptables": "iptables", "nft": "nftables", "firewalld": "firewalld"}[v.layer]
    return f"{where} {v.by}"


def _overlay_check(name: str, p: PingFacts, facts: Mapping[str, NodeFacts], names: Sequence[str],
                   interface: str) -> CheckResult:
    ok = [peer for peer in names if p.results.get(peer) is True]
    bad = [peer for peer in names if p.results.get(peer) is False]
    if not bad:
        return CheckResult(f"overlay {name}", GROUP, "PASS",
                           f"pings over {interface} reach " + (", ".join(ok) or "no peers"))
    shown = ", ".join(f"{peer} ({facts[peer].device.overlay})" if peer in facts and facts[peer].device.overlay
                      else peer for peer in bad)
    return CheckResult(f"overlay {name}", GROUP, "FAIL", f"no reply over {interface} from {shown}",
                       "see the firewall checks of both ends")


def _checksum_check(name: str, p: PingFacts, f: NodeFacts, interface: str) -> CheckResult | None:
    delta = p.csum_delta
    if not delta or delta <= 0:
        return None
    offload = f" (tx-checksum-ip-generic is {f.offload})" if f.offload else ""
    return CheckResult(
        f"checksum {name}", GROUP, "WARN",
        f"UDP checksum errors (UdpInCsumErrors) rose by {delta} during the overlay test{offload}",
        f"a known cause is checksum offload on {interface}: `o11yctl fix-vxlan --fix-checksum-offload` runs "
        f"ethtool -K {interface} tx-checksum-ip-generic off",
    )
