"""Kubelet reachability: the API server's TCP connections to each node's kubelet (port 10250). Pure.

Logs, exec, attach and port-forward go from the API server to the kubelet of the pod's node;
when a node's firewall drops or rejects the server's connections to TCP 10250, they fail while
the API server itself is healthy. ``doctor --fix`` opens the port the way ``fix-vxlan`` opens
UDP 8472, with fix-vxlan's own firewall code (:mod:`o11yctl.vxlan.firewall`,
:mod:`o11yctl.vxlan.fix`): the node's firewall is read with fix-vxlan's probe, the packet from
each server address is walked through every layer, and where a layer blocks it one rule is
inserted with that layer's tool, accepting TCP 10250 from that address only, tagged
``o11yctl-kubelet``; only these rules are saved, alone, in their own boot script (and systemd
unit). Nothing is flushed, deleted or reordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from o11yctl.config import Vxlan
from o11yctl.vxlan.facts import NodeFacts
from o11yctl.vxlan.firewall import Packet, Verdict, evaluate
from o11yctl.vxlan.fix import FixPlan, FixStep, Persistence, iptables_rule, open_steps, persist_steps
from o11yctl.vxlan.remote import BatchCommand, probe_commands

#: The kubelet's port (the API server dials it for logs, exec, attach and port-forward).
KUBELET_PORT = 10250
#: The comment on every rule doctor adds for it; only rules carrying it are saved.
KUBELET_TAG = "o11yctl-kubelet"
#: The boot script (in ``vxlan.persist_dir``) and the systemd unit (in ``vxlan.systemd_unit_dir``) for them.
KUBELET_SCRIPT = "kubelet-firewall.sh"
KUBELET_UNIT = "o11yctl-kubelet.service"


@dataclass(frozen=True, slots=True)
class OpenKubeletPort:
    """Accept TCP 10250 on a node from the K3s server's address(es) only, as fix-vxlan accepts UDP 8472."""

    node: str
    address: str  # the node's own address (where the API server's connections go)
    sources: tuple[str, ...]  # the server's address(es)
    port: int = KUBELET_PORT

    kind: ClassVar[str] = "open-kubelet-port"

    def command_lines(self) -> list[str]:
        """The iptables form of the rules (another firewall in charge gets its own tool's equivalent)."""
        return ["sudo iptables -I INPUT " + " ".join(iptables_rule(s, self.port, proto="tcp", tag=KUBELET_TAG))
                for s in self.sources]

    def describe(self) -> str:
        return (f"on {self.node}: accept TCP {self.port} from the server ({', '.join(self.sources)}) only, with the "
                f"firewall in charge there ({'; '.join(self.command_lines())}, or its ufw, firewalld or nft "
                f"equivalent), tagged {KUBELET_TAG} and saved for boot like fix-vxlan's rules")


def persistence(port: int = KUBELET_PORT) -> Persistence:
    """How doctor's kubelet rules are saved on a node: their own tag, boot script and unit."""
    return Persistence(
        script=KUBELET_SCRIPT, unit=KUBELET_UNIT, tag=KUBELET_TAG, proto="tcp", port=port,
        header=("# Written by o11yctl doctor --fix. Re-adds the firewall rules it added so that the K3s server can",
                f"# reach this node's kubelet (TCP {port}), and nothing else: no other rule of this firewall is",
                "# saved or restored here. Safe to run more than once."),
        unit_description=f"o11yctl: accept the K3s server's connections to the kubelet (TCP {port})",
    )


def probe(vx: Vxlan) -> list[BatchCommand]:
    """fix-vxlan's read-only probe of a node, reading doctor's own boot script and unit."""
    return probe_commands(vx.interface, vx.persist_dir, vx.systemd_unit_dir, script=KUBELET_SCRIPT,
                          unit=KUBELET_UNIT)


def blocking(facts: NodeFacts, action: OpenKubeletPort) -> dict[str, list[Verdict]]:
    """For each server address, the firewall layers on the node that drop or reject its connections to the port."""
    out: dict[str, list[Verdict]] = {}
    for source in action.sources:
        pkt = Packet(src=source, dst=action.address or None, proto="tcp", dport=action.port)
        out[source] = [v for v in evaluate(facts.firewall, pkt) if v.blocks]
    return out


def plan_open(action: OpenKubeletPort, facts: NodeFacts, vx: Vxlan) -> FixPlan:
    """The rules (and their persistence) that let the server's connections to the kubelet through; nothing else.

    Args:
        action: what to open, on which node, for which addresses.
        facts: the node's facts from :func:`probe` (its firewall, and doctor's saved script and unit).
        vx: the ``vxlan`` settings (where boot scripts and units go).
    """
    steps: list[FixStep] = []
    for source, layers in blocking(facts, action).items():
        if layers:
            steps += [s for s in open_steps(action.node, "the server", source, action.port, layers, facts.firewall,
                                            proto="tcp", tag=KUBELET_TAG) if s not in steps]
    saved, note = persist_steps(action.node, facts, steps, vx, persistence(action.port)) if steps else ([], None)
    return FixPlan(steps=(*steps, *saved), notes=((action.node, note),) if note else ())


def still_blocked(facts: NodeFacts, action: OpenKubeletPort) -> list[str]:
    """What still blocks each server address, one line per layer (empty: the port is open to all of them)."""
    return [f"{source}: {v.layer} {v.action} by {v.by}" for source, layers in blocking(facts, action).items()
            for v in layers]


def describe_steps(steps: Sequence[FixStep]) -> str:
    """The steps as one line each (what was run on the node)."""
    return "; ".join(s.description for s in steps)
