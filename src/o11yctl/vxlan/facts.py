"""What o11yctl learns about one node, and the pure parsers that turn command output into it."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

#: The comment on every firewall rule o11yctl adds; persistence saves only rules carrying it.
RULE_TAG = "o11yctl-vxlan"


@dataclass(frozen=True, slots=True)
class Output:
    """One command's exit code and output, as reported by the batch runner on the node."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def missing(self) -> bool:
        """The command is not installed on the node."""
        return self.exit_code == 127


@dataclass(frozen=True, slots=True)
class Device:
    """The VXLAN device (``flannel.1``) as ``ip -d -j addr show dev`` describes it."""

    name: str
    present: bool
    up: bool = False
    kind: str | None = None
    vni: int | None = None
    local: str | None = None
    port: int | None = None
    link: str | None = None
    overlay: str | None = None
    mac: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Firewalld:
    """firewalld's state and what its default and trusted zones allow."""

    running: bool = False
    zone: str | None = None
    ports: tuple[str, ...] = ()
    rich_rules: tuple[str, ...] = ()
    trusted_sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FirewallFacts:
    """Every firewall layer found on a node.

    ``iptables`` is the backend named by ``iptables --version`` (``nf_tables`` or ``legacy``),
    None when iptables is not installed; ``iptables_rules`` the filter table as ``iptables -S``
    prints it; ``nft`` the parsed ``nft -j list ruleset``.
    """

    iptables: str | None = None
    iptables_rules: tuple[str, ...] | None = None
    nft: dict[str, Any] | None = None
    nft_installed: bool = False
    firewalld: Firewalld = field(default_factory=Firewalld)
    ufw_active: bool = False
    ufw_has_rules: bool = False
    problems: tuple[str, ...] = ()

    @property
    def tool(self) -> str:
        """The tool in charge: ufw, firewalld, iptables-nft, iptables-legacy, nftables or none."""
        if self.ufw_active:
            return "ufw"
        if self.firewalld.running:
            return "firewalld"
        if self.iptables:
            return "iptables-nft" if self.iptables == "nf_tables" else "iptables-legacy"
        if self.nft_installed:
            return "nftables"
        return "none"


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """Everything the read-only probe learned on one node."""

    name: str
    device: Device
    firewall: FirewallFacts
    offload: str | None = None
    systemd: bool = False
    persisted: str | None = None
    unit: str | None = None
    unit_enabled: bool = False


@dataclass(frozen=True, slots=True)
class PingFacts:
    """The overlay test run on one node: each peer's ping result and the UDP checksum-error counter."""

    name: str
    results: dict[str, bool]
    csum_before: int | None = None
    csum_after: int | None = None

    @property
    def csum_delta(self) -> int | None:
        if self.csum_before is None or self.csum_after is None:
            return None
        return self.csum_after - self.csum_before


# --- parsers ----------------------------------------------------------------------------------


def parse_device(name: str, out: Output) -> Device:
    """Parse ``ip -d -j addr show dev NAME`` (or ``ip -d -j link show``).

    Args:
        name: the device name asked for.
        out: the command's output.

    Returns:
        The device; ``present`` is false when ip says it does not exist.
    """
    if not out.ok:
        text = (out.stderr or out.stdout).strip()
        if "does not exist" in text or "Cannot find device" in text or out.exit_code == 1:
            return Device(name=name, present=False, error=text or None)
        return Device(name=name, present=False, error=text or f"exit code {out.exit_code}")
    try:
        data = json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return Device(name=name, present=False, error="could not parse `ip -j` output")
    if not data:
        return Device(name=name, present=False)
    link = data[0]
    info = link.get("linkinfo") or {}
    kind = info.get("info_kind")
    vx = info.get("info_data") or {}
    flags = link.get("flags") or []
    up = "UP" in flags and link.get("operstate") != "DOWN"
    overlay = None
    for addr in link.get("addr_info") or []:
        if addr.get("family") == "inet" and addr.get("local") and is_ipv4(str(addr["local"])):
            # The address goes to `ping` on the other nodes: only a well-formed address ever gets there.
            overlay = str(addr["local"])
            break
    return Device(
        name=name,
        present=True,
        up=up,
        kind=kind,
        vni=_int(vx.get("id")),
        local=vx.get("local"),
        port=_int(vx.get("port")),
        link=vx.get("link"),
        overlay=overlay,
        mac=link.get("address"),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parse_iptables_version(out: Output) -> str | None:
    """``iptables --version`` -> ``nf_tables`` or ``legacy`` (None when not installed)."""
    if out.missing or not out.ok:
        return None
    match = re.search(r"\((nf_tables|legacy)\)", out.stdout)
    return match.group(1) if match else "legacy"


def parse_iptables_rules(out: Output) -> tuple[str, ...] | None:
    """``iptables -S`` -> its lines (None when it failed)."""
    if not out.ok:
        return None
    return tuple(line for line in out.stdout.splitlines() if line.strip())


def parse_nft(out: Output) -> dict[str, Any] | None:
    """``nft -j list ruleset`` -> the parsed document (None when it failed or printed no JSON)."""
    if not out.ok or not out.stdout.strip():
        return None
    try:
        doc = json.loads(out.stdout)
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) and "nftables" in doc else None


def parse_ufw(out: Output) -> tuple[bool, bool]:
    """``ufw status`` -> (active, has user rules)."""
    if not out.ok:
        return False, False
    active = bool(re.search(r"^Status:\s*active", out.stdout, re.MULTILINE))
    has_rules = active and bool(re.search(r"^-{2,}", out.stdout, re.MULTILINE))
    return active, has_rules


def parse_offload(out: Output) -> str | None:
    """``ethtool -k DEV`` -> ``on``/``off`` for tx-checksum-ip-generic (None when unknown)."""
    if not out.ok:
        return None
    match = re.search(r"^\s*tx-checksum-ip-generic:\s*(on|off)", out.stdout, re.MULTILINE)
    return match.group(1) if match else None


def parse_udp_csum_errors(snmp: str) -> int | None:
    """The ``InCsumErrors`` of the ``Udp:`` lines of /proc/net/snmp (nstat's UdpInCsumErrors)."""
    header: list[str] | None = None
    for line in snmp.splitlines():
        if not line.startswith("Udp:"):
            continue
        words = line.split()[1:]
        if header is None:
            header = words
            continue
        values = dict(zip(header, words, strict=False))
        try:
            return int(values["InCsumErrors"])
        except (KeyError, ValueError):
            return None
    return None


def words(text: str) -> tuple[str, ...]:
    """Whitespace-separated words of a command's output."""
    return tuple(text.split())


def is_ipv4(value: str | None) -> bool:
    """Whether ``value`` is one IPv4 address (never a network, a name or empty)."""
    if not value:
        return False
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False

