"""Plan the repair: a diagnosis in, the exact commands per node out. Pure: no I/O here.

For each node and each peer whose encapsulated traffic it drops, one rule accepting UDP 8472
from that peer's VXLAN endpoint only, made with the tool in charge of the layer that drops it:
``iptables -I INPUT`` (after ``iptables -C`` says it is absent), ``ufw insert/allow``,
``firewall-cmd --add-rich-rule`` (runtime and permanent), or ``nft insert rule`` in the
nftables chain that drops. Nothing is flushed, deleted or reordered. Rules made with iptables
or nft are then saved, alone, in a boot script (run by a systemd unit where systemd runs).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from o11yctl.config import Node, Vxlan
from o11yctl.vxlan.diagnose import Diagnosis, Direction
from o11yctl.vxlan.facts import RULE_TAG, FirewallFacts, NodeFacts, is_ipv4
from o11yctl.vxlan.firewall import (
    IptTable,
    Verdict,
    firewalld_rich_rule,
    nft_chains,
    nft_has_tagged_accept,
    parse_iptables,
)
from o11yctl.vxlan.remote import PERSIST_SCRIPT, UNIT_NAME

StepKind = Literal["rule", "persist", "offload", "restart"]


def nft_check(proto: str = "udp", tag: str = RULE_TAG) -> str:
    """The read-only shell check that o11yctl's nftables rule (``$1 $2 $3``: family, table, chain) for
    source ``$4`` and port ``$5`` is in place."""
    return ('nft list chain "$1" "$2" "$3" 2>/dev/null | grep -F "ip saddr $4 ' + proto + ' dport $5 " '
            f'| grep -qF \'comment "{tag}"\'')


NFT_CHECK = nft_check()


WRITE_FILE = (
    'umask 022 && mkdir -p "$1" && printf \'%s\\n\' "$3" > "$2.o11yctl-tmp" && chmod "$4" "$2.o11yctl-tmp" '
    '&& mv -f "$2.o11yctl-tmp" "$2"'
)
SAME_FILE = '[ -f "$1" ] && [ "$(cat "$1")" = "$2" ]'


@dataclass(frozen=True, slots=True)
class FixStep:
    """One change on one node: the command, and the read-only check that makes it idempotent.

    Attributes:
        node: the node's name.
        id: short id in the report (``allow node-2``, ``persist``, ``restart``).
        description: one line saying what it does.
        argv: the command (run with sudo).
        check: when this command succeeds, ``argv`` is not run (the change is already there).
        kind: ``rule``, ``persist``, ``offload`` or ``restart``.
        path, content: for file writes, what goes where (shown by --dry-run).
    """

    node: str
    id: str
    description: str
    argv: tuple[str, ...]
    check: tuple[str, ...] | None = None
    kind: StepKind = "rule"
    path: str | None = None
    content: str | None = None

    def display_lines(self) -> list[str]:
        """The exact commands, as a shell would read them."""
        if self.path is not None and self.content is not None:
            head = f"write {self.path}:"
            return [head, *(f"    {line}" for line in self.content.splitlines())]
        run = "sudo " + shlex.join(self.argv)
        if self.check is None:
            return [run]
        return [f"sudo {shlex.join(self.check)} || {run}"]

    def to_json(self) -> dict[str, object]:
        return {"node": self.node, "id": self.id, "kind": self.kind, "description": self.description,
                "check": list(self.check) if self.check else None, "argv": list(self.argv),
                "path": self.path, "content": self.content, "commands": self.display_lines()}


@dataclass(frozen=True, slots=True)
class FixPlan:
    """The changes per node, in order, and notes (what cannot be done, and why)."""

    steps: tuple[FixStep, ...]
    notes: tuple[tuple[str, str], ...] = ()

    def for_node(self, name: str) -> tuple[FixStep, ...]:
        return tuple(s for s in self.steps if s.node == name)

    @property
    def empty(self) -> bool:
        return not self.steps

    def to_json(self) -> dict[str, object]:
        return {"steps": [s.to_json() for s in self.steps],
                "notes": [{"node": n, "note": t} for n, t in self.notes]}


# --- rules --------------------------------------------------------------------------------------


def iptables_rule(source: str, port: int, *, proto: str = "udp", tag: str = RULE_TAG) -> list[str]:
    """The match and target of o11yctl's iptables rule (after ``-C INPUT``/``-I INPUT``)."""
    return ["-s", f"{source}/32", "-p", proto, "-m", proto, "--dport", str(port),
            "-m", "comment", "--comment", tag, "-j", "ACCEPT"]


def iptables_steps(node: str, peer: str, source: str, port: int, *, proto: str = "udp",
                   tag: str = RULE_TAG) -> FixStep:
    """``iptables -I INPUT`` accepting ``proto`` ``port`` from ``source``, run only when ``iptables -C`` finds it
    absent.

    Args:
        node: the node the rule goes on.
        peer: the node whose VXLAN endpoint ``source`` is (or whatever ``source`` names).
        source: that endpoint's address.
        port: the VXLAN port (or the port to open).
        proto: ``udp`` or ``tcp``.
        tag: the comment the rule carries.
    """
    return FixStep(
        node=node, id=f"allow {peer}",
        description=f"iptables: accept {proto.upper()} {port} from {peer} ({source}) at the top of INPUT",
        check=("iptables", "-w", "5", "-C", "INPUT", *iptables_rule(source, port, proto=proto, tag=tag)),
        argv=("iptables", "-w", "5", "-I", "INPUT", *iptables_rule(source, port, proto=proto, tag=tag)),
    )


def nft_rule(source: str, port: int, *, proto: str = "udp", tag: str = RULE_TAG) -> list[str]:
    """The words of o11yctl's nftables rule (after ``nft insert rule FAMILY TABLE CHAIN``)."""
    return ["ip", "saddr", source, proto, "dport", str(port), "counter", "accept", "comment", tag]


def nft_step(node: str, peer: str, source: str, port: int, table: tuple[str, str], chain: str, *,
             proto: str = "udp", tag: str = RULE_TAG) -> FixStep:
    """``nft insert rule`` at the top of the base chain that drops, unless o11yctl's rule is already there."""
    family, name = table
    return FixStep(
        node=node, id=f"allow {peer} (nft {family} {name})",
        description=f"nftables: accept {proto.upper()} {port} from {peer} ({source}) at the top of chain {family} "
                    f"{name} {chain}",
        check=("sh", "-c", nft_check(proto, tag), "sh", family, name, chain, source, str(port)),
        argv=("nft", "insert", "rule", family, name, chain, *nft_rule(source, port, proto=proto, tag=tag)),
    )


def ufw_step(node: str, peer: str, source: str, port: int, *, has_rules: bool, proto: str = "udp",
             tag: str = RULE_TAG) -> FixStep:
    """``ufw allow`` (``ufw insert 1 allow`` when ufw has rules, so a deny before it cannot win); idempotent."""
    where = ["insert", "1"] if has_rules else []
    return FixStep(
        node=node, id=f"allow {peer} (ufw)",
        description=f"ufw: accept {proto.upper()} {port} from {peer} ({source}) (ufw keeps it across reboots)",
        argv=("ufw", *where, "allow", "from", source, "to", "any", "port", str(port), "proto", proto,
              "comment", tag),
    )


def firewalld_steps(node: str, peer: str, source: str, port: int, *, proto: str = "udp") -> list[FixStep]:
    """The rich rule for ``source``, added to the running firewalld and to its permanent configuration."""
    rule = firewalld_rich_rule(source, port, proto)
    return [
        FixStep(node=node, id=f"allow {peer} (firewalld)",
                description=f"firewalld: accept {proto.upper()} {port} from {peer} ({source}) now",
                check=("firewall-cmd", f"--query-rich-rule={rule}"),
                argv=("firewall-cmd", f"--add-rich-rule={rule}")),
        FixStep(node=node, id=f"allow {peer} (firewalld, permanent)",
                description="firewalld: keep that rule across reboots",
                check=("firewall-cmd", "--permanent", f"--query-rich-rule={rule}"),
                argv=("firewall-cmd", "--permanent", f"--add-rich-rule={rule}"), kind="persist"),
    ]


def _steps_for(d: Direction, f: NodeFacts, port: int) -> tuple[list[FixStep], str | None]:
    """The rule(s) letting ``d`` through on its receiving node, or why there is none."""
    source = d.source
    if source is None or not is_ipv4(source):
        return [], f"no IPv4 VXLAN endpoint known for {d.src}; nothing opened for it"
    return open_steps(d.dst, d.src, source, port, d.by, f.firewall, suspect=d.status == "suspect"), None


def open_steps(node: str, peer: str, source: str, port: int, blocking: Sequence[Verdict], firewall: FirewallFacts,
               *, suspect: bool = False, proto: str = "udp", tag: str = RULE_TAG) -> list[FixStep]:
    """The rule(s) on ``node`` accepting ``proto`` ``port`` from ``source`` in each layer that blocks it.

    Each rule is made with the tool in charge of its layer (ufw where ufw manages iptables), carries
    ``tag``, and is added only when absent.

    Args:
        node: the node the rules go on.
        peer: who ``source`` is (for the step's id and description).
        source: the one address to accept.
        port: the destination port.
        blocking: the verdicts of the layers that drop or reject the packet (:func:`~o11yctl.vxlan.firewall.evaluate`).
        firewall: the node's firewall facts.
        suspect: nothing is known to block, yet the traffic does not pass: open it in every input layer.
        proto: ``udp`` or ``tcp``.
        tag: the comment every rule carries (what persistence saves).
    """
    layers: list[Verdict] = list(blocking)
    if not layers and suspect:
        if firewall.iptables_rules is not None:
            layers = [Verdict(layer="iptables", action="drop", by="(rules o11yctl cannot evaluate)", chain="INPUT")]
        elif firewall.nft is not None:
            for chain in nft_chains(firewall.nft).values():
                if chain.hook == "input" and chain.type == "filter" and chain.family in ("ip", "inet"):
                    layers.append(Verdict(layer="nft", action="drop", by="?", chain=chain.name,
                                          table=(chain.family, chain.table)))
    steps: list[FixStep] = []
    for v in layers:
        if v.layer == "iptables":
            if firewall.ufw_active and (v.ufw or v.policy):
                steps.append(ufw_step(node, peer, source, port, has_rules=firewall.ufw_has_rules, proto=proto,
                                      tag=tag))
            else:
                steps.append(iptables_steps(node, peer, source, port, proto=proto, tag=tag))
        elif v.layer == "nft" and v.table is not None:
            assert firewall.nft is not None
            if not nft_has_tagged_accept(firewall.nft, v.table, v.chain, source, port, proto=proto, tag=tag):
                steps.append(nft_step(node, peer, source, port, v.table, v.chain, proto=proto, tag=tag))
        elif v.layer == "firewalld":
            steps.extend(firewalld_steps(node, peer, source, port, proto=proto))
    return [s for i, s in enumerate(steps) if s not in steps[:i]]


# --- persistence ------------------------------------------------------------------------------


def persist_script(iptables_rules: Sequence[Sequence[str]], nft_rules: Sequence[tuple[str, str, str, list[str]]],
                   port: int, *, proto: str = "udp", tag: str = RULE_TAG,
                   header: Sequence[str] | None = None) -> str:
    """The boot script re-adding exactly o11yctl's rules (each only when absent).

    Args:
        iptables_rules: each rule's words after ``-I INPUT``.
        nft_rules: (family, table, chain, rule words) of each nftables rule.
        port: the VXLAN port (for the comment).
        proto: the rules' protocol (for the nftables check).
        tag: the rules' comment (for the nftables check).
        header: the comment lines saying what the script is for (default: fix-vxlan's).
    """
    header = list(header) if header is not None else [
        "# Written by o11yctl fix-vxlan. Re-adds the firewall rules it added so that Flannel's VXLAN",
        f"# (UDP {port}) is accepted from the other nodes, and nothing else: no other rule of this",
        "# firewall is saved or restored here. Safe to run more than once.",
    ]
    lines = [
        "#!/bin/sh",
        *header,
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "rc=0",
    ]
    # Sorted, so the file does not depend on the order the rules were inserted in (all are ACCEPTs).
    for rule in sorted(iptables_rules, key=shlex.join):
        r = shlex.join(rule)
        lines.append(f"iptables -w 5 -C INPUT {r} 2>/dev/null || iptables -w 5 -I INPUT {r} || rc=1")
    for family, table, chain, words in sorted(nft_rules, key=lambda r: (r[0], r[1], r[2], shlex.join(r[3]))):
        src = words[words.index("saddr") + 1] if "saddr" in words else ""
        check = shlex.join(["sh", "-c", nft_check(proto, tag), "sh", family, table, chain, src, str(port)])
        lines.append(f"{check} || nft insert rule {shlex.join([family, table, chain, *words])} || rc=1")
    lines.append("exit $rc")
    return "\n".join(lines)


def unit_file(script_path: str, port: int, *, description: str | None = None) -> str:
    """The systemd unit running the boot script after the firewall services and before K3s."""
    default = f"o11yctl: accept Flannel VXLAN (UDP {port}) from the cluster's nodes"
    return "\n".join([
        "[Unit]",
        f"Description={description or default}",
        "Wants=network-pre.target",
        "After=network-pre.target netfilter-persistent.service nftables.service firewalld.service ufw.service",
        "Before=k3s.service k3s-agent.service",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart=/bin/sh {script_path}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ])


def write_step(node: str, step_id: str, description: str, directory: str, path: str, content: str,
               mode: str) -> FixStep:
    """Write ``content`` to ``path`` (atomically, with ``mode``) unless the file already holds exactly that."""
    return FixStep(
        node=node, id=step_id, description=description, kind="persist", path=path, content=content,
        check=("sh", "-c", SAME_FILE, "sh", path, content),
        argv=("sh", "-c", WRITE_FILE, "sh", directory, path, content, mode),
    )


def _tagged_iptables(table: IptTable, tag: str = RULE_TAG) -> list[list[str]]:
    out: list[list[str]] = []
    for rule in table.tagged_rules("INPUT", tag=tag):
        out.append(list(rule.tokens))
    return out


def _tagged_nft(f: NodeFacts, tag: str = RULE_TAG, proto: str = "udp") -> list[tuple[str, str, str, list[str]]]:
    out: list[tuple[str, str, str, list[str]]] = []
    if f.firewall.nft is None:
        return out
    for chain in nft_chains(f.firewall.nft).values():
        for rule in chain.rules:
            if rule.get("comment") != tag:
                continue
            src = None
            port = None
            for e in rule.get("expr", []):
                m = e.get("match") if isinstance(e, dict) else None
                if not isinstance(m, dict):
                    continue
                left = m.get("left", {})
                if isinstance(left, dict) and left.get("payload", {}).get("field") == "saddr":
                    src = m.get("right")
                if isinstance(left, dict) and left.get("payload", {}).get("field") == "dport":
                    port = m.get("right")
            if isinstance(src, str) and isinstance(port, int):
                out.append((chain.family, chain.table, chain.name, nft_rule(src, port, proto=proto, tag=tag)))
    return out


@dataclass(frozen=True, slots=True)
class Persistence:
    """How one family of o11yctl's rules is saved on a node: its tag, boot script, unit, and their words.

    ``f.persisted``, ``f.unit`` and ``f.unit_enabled`` of the node's facts must describe these files
    (:func:`o11yctl.vxlan.remote.probe_commands` with the same ``script`` and ``unit``).
    """

    script: str = PERSIST_SCRIPT
    unit: str = UNIT_NAME
    tag: str = RULE_TAG
    proto: str = "udp"
    port: int | None = None  # default: the VXLAN port
    header: tuple[str, ...] | None = None
    unit_description: str | None = None


def persist_steps(node: str, f: NodeFacts, added: Sequence[FixStep], vx: Vxlan,
                  persistence: Persistence | None = None) -> tuple[list[FixStep], str | None]:
    """Save o11yctl's iptables/nft rules on ``node`` (the live ones and those about to be added).

    Args:
        node: the node.
        f: its facts (the live rules, and the saved script and unit).
        added: the steps about to add rules.
        vx: the ``vxlan`` settings (where scripts and units go, and how they return at boot).
        persistence: which rules and files (default: fix-vxlan's).

    Returns:
        The steps, and a note when the node has no way to re-apply them at boot (or None).
    """
    how = persistence or Persistence()
    port = how.port if how.port is not None else vx.port
    ipt: list[list[str]] = []
    if f.firewall.iptables_rules is not None:
        ipt = _tagged_iptables(parse_iptables(f.firewall.iptables_rules), how.tag)
    nft = _tagged_nft(f, how.tag, how.proto)
    for step in added:
        if step.argv[:1] == ("iptables",):
            words = list(step.argv[5:])
            if words not in ipt:
                ipt.append(words)
        elif step.argv[:3] == ("nft", "insert", "rule"):
            entry = (step.argv[3], step.argv[4], step.argv[5], list(step.argv[6:]))
            if entry not in nft:
                nft.append(entry)
    if not ipt and not nft:
        return [], None
    directory = vx.persist_dir.rstrip("/") or "/"
    script_path = f"{directory}/{how.script}"
    content = persist_script(ipt, nft, port, proto=how.proto, tag=how.tag, header=how.header)
    steps: list[FixStep] = []
    if f.persisted != content + "\n":
        steps.append(write_step(node, "persist script", f"save o11yctl's {len(ipt) + len(nft)} rule(s), alone, "
                                f"in {script_path}", directory, script_path, content, "755"))
    if vx.boot == "none":
        return steps, (f"vxlan.boot is none: o11yctl's rules on {node} are live and saved in {script_path}, but "
                       "nothing re-applies them at boot; run that script from the node's boot scripts")
    if not f.systemd and vx.boot == "auto":
        return steps, (f"no systemd on {node}: o11yctl's rules are live and saved in {script_path}, but nothing "
                       "re-applies them at boot; run that script from the node's boot scripts")
    unit_dir = vx.systemd_unit_dir.rstrip("/") or "/"
    unit_path = f"{unit_dir}/{how.unit}"
    unit = unit_file(script_path, port, description=how.unit_description)
    if f.unit != unit + "\n":
        steps.append(write_step(node, "persist unit", f"run it at boot: {unit_path}", unit_dir, unit_path,
                                unit, "644"))
    if not f.unit_enabled or f.unit != unit + "\n":
        steps.append(FixStep(node=node, id="persist enable", description=f"enable {how.unit}", kind="persist",
                             argv=("sh", "-c", 'systemctl daemon-reload && systemctl enable "$1"', "sh",
                                   how.unit)))
    return steps, None


# --- the plan ---------------------------------------------------------------------------------


def plan_fix(diag: Diagnosis, nodes: Sequence[Node], vx: Vxlan, *, fix_offload: bool = False) -> FixPlan:
    """The changes that open the blocked directions of ``diag`` (and nothing else).

    Args:
        diag: the diagnosis.
        nodes: the configured nodes, in order.
        vx: the ``vxlan`` settings.
        fix_offload: also turn off tx-checksum-ip-generic on the VXLAN device where it is on.
    """
    steps: list[FixStep] = []
    notes: list[tuple[str, str]] = []
    for node in nodes:
        f = diag.facts.get(node.name)
        if f is None:
            continue
        rules: list[FixStep] = []
        for d in diag.directions:
            if d.dst != node.name or not d.needs_rule:
                continue
            more, note = _steps_for(d, f, vx.port)
            if note:
                notes.append((node.name, note))
            rules.extend(s for s in more if s not in rules)
        steps.extend(rules)
        if fix_offload and f.device.present and f.offload != "off":
            steps.append(FixStep(
                node=node.name, id="checksum offload", kind="offload",
                description=f"turn off tx-checksum-ip-generic on {vx.interface} (not kept across reboots)",
                argv=("ethtool", "-K", vx.interface, "tx-checksum-ip-generic", "off"),
            ))
        persist, note = persist_steps(node.name, f, rules, vx)
        steps.extend(persist)
        if note:
            notes.append((node.name, note))
    return FixPlan(steps=tuple(steps), notes=tuple(notes))


def restart_steps(nodes: Sequence[Node], vx: Vxlan, names: Sequence[str]) -> list[FixStep]:
    """Restart K3s on ``names`` with the configured command for each node's role."""
    out: list[FixStep] = []
    for node in nodes:
        if node.name not in names:
            continue
        command = vx.restart.server if node.role == "server" else vx.restart.agent
        out.append(FixStep(node=node.name, id="restart", kind="restart",
                           description=f"restart K3s ({node.role}): {command}",
                           argv=tuple(shlex.split(command))))
    return out


def summarize(plan: FixPlan) -> Mapping[str, int]:
    """How many steps of each kind the plan has."""
    counts: dict[str, int] = {}
    for s in plan.steps:
        counts[s.kind] = counts.get(s.kind, 0) + 1
    return counts
