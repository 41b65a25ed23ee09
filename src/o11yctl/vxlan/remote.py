"""The commands fix-vxlan runs on a node, and the parsers of what they print. Pure: no I/O here.

Commands are argv lists. To keep a 10-node run about as fast as a 2-node one, a node's
commands of one phase go out as one ``sh -c`` batch over one SSH channel (and one sudo): each
argv is quoted with :func:`shlex.join` into the batch, whose fixed runner prints every command's
exit code, stdout and stderr between marker lines carrying a per-run token.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from o11yctl.vxlan.facts import (
    Device,
    Firewalld,
    FirewallFacts,
    NodeFacts,
    Output,
    PingFacts,
    parse_device,
    parse_iptables_rules,
    parse_iptables_version,
    parse_nft,
    parse_offload,
    parse_udp_csum_errors,
    parse_ufw,
    words,
)

#: The boot script that re-adds o11yctl's rules, inside ``vxlan.persist_dir``.
PERSIST_SCRIPT = "vxlan-firewall.sh"
#: The systemd unit that runs it at boot, inside ``vxlan.systemd_unit_dir``.
UNIT_NAME = "o11yctl-vxlan.service"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

_RUNNER = """\
{path}
LC_ALL=C
export PATH LC_ALL
_o11y_t={token}
_o11y_d=$(mktemp -d) || exit 70
trap 'rm -rf "$_o11y_d"' EXIT
_o11y_run() {{
  _o11y_n=$1
  shift
  if command -v "$1" >/dev/null 2>&1; then
    "$@" >"$_o11y_d/out" 2>"$_o11y_d/err" </dev/null
    _o11y_rc=$?
  else
    : >"$_o11y_d/out"
    printf '%s: command not found\\n' "$1" >"$_o11y_d/err"
    _o11y_rc=127
  fi
  eval "_o11y_rc_$_o11y_n=\\$_o11y_rc"
  printf '\\n%s %s %s\\n' "$_o11y_t" "$_o11y_n" "$_o11y_rc"
  cat "$_o11y_d/out"
  printf '\\n%s %s stderr\\n' "$_o11y_t" "$_o11y_n"
  cat "$_o11y_d/err"
}}
_o11y_present() {{
  eval "_o11y_rc_$1=0"
  printf '\\n%s %s present\\n' "$_o11y_t" "$1"
}}
"""


@dataclass(frozen=True, slots=True)
class BatchCommand:
    """One command of a batch.

    Attributes:
        name: its key in the parsed result (lower-case letters, digits, underscores).
        argv: the command.
        only_if: run only when the earlier command of this name exited 0.
        check: run ``argv`` only when this command fails (``iptables -C`` before ``iptables -I``);
            when it succeeds the command is reported as already present.
    """

    name: str
    argv: tuple[str, ...]
    only_if: str | None = None
    check: tuple[str, ...] | None = None


def batch_script(commands: Sequence[BatchCommand], token: str) -> str:
    """A POSIX sh script running ``commands`` in order and reporting each between marker lines.

    Raises:
        ValueError: a command name is not a plain identifier, or the token is not alphanumeric.
    """
    if not re.match(r"^[A-Za-z0-9@_-]+$", token):
        raise ValueError(f"bad batch token {token!r}")
    lines = [_RUNNER.format(path=_PATH, token=token)]
    for cmd in commands:
        if not _NAME.fullmatch(cmd.name):
            raise ValueError(f"bad batch command name {cmd.name!r}")
        line = f"_o11y_run {cmd.name} {shlex.join(cmd.argv)}"
        if cmd.check is not None:
            line = (f"if {shlex.join(cmd.check)} >/dev/null 2>&1 </dev/null; then _o11y_present {cmd.name}; "
                    f"else {line}; fi")
        if cmd.only_if is not None:
            if not _NAME.fullmatch(cmd.only_if):
                raise ValueError(f"bad batch command name {cmd.only_if!r}")
            line = f'if [ "${{_o11y_rc_{cmd.only_if}:-1}}" = 0 ]; then {line}; fi'
        lines.append(line)
    lines.append("printf '\\n%s end\\n' \"$_o11y_t\"")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The parsed output of a batch: each command's output, and whether the batch ran to its end."""

    outputs: Mapping[str, Output]
    present: frozenset[str]
    complete: bool

    def get(self, name: str) -> Output:
        """The output of ``name``; a command that did not run reads as exit code -1."""
        return self.outputs.get(name, Output(exit_code=-1, stderr="did not run"))


def parse_batch(text: str, token: str) -> BatchResult:
    """Split a batch's stdout back into per-command outputs."""
    outputs: dict[str, Output] = {}
    present: set[str] = set()
    complete = False
    parts = ("\n" + text).split(f"\n{token} ")
    for part in parts[1:]:
        header, _, body = part.partition("\n")
        fields = header.split()
        if fields == ["end"]:
            complete = True
            continue
        if len(fields) != 2:
            continue
        name, what = fields
        if what == "present":
            present.add(name)
            outputs[name] = Output(exit_code=0)
        elif what == "stderr":
            prev = outputs.get(name, Output(exit_code=-1))
            outputs[name] = Output(exit_code=prev.exit_code, stdout=prev.stdout, stderr=body)
        elif what.lstrip("-").isdigit():
            outputs[name] = Output(exit_code=int(what), stdout=body)
    return BatchResult(outputs=outputs, present=frozenset(present), complete=complete)


# --- the read-only probe ----------------------------------------------------------------------


def probe_commands(interface: str, persist_dir: str, unit_dir: str, *, script: str = PERSIST_SCRIPT,
                   unit: str = UNIT_NAME) -> list[BatchCommand]:
    """Everything the diagnosis reads on a node (run with sudo; nothing here changes anything).

    ``script`` and ``unit`` name the boot script and systemd unit whose contents are read (fix-vxlan's by
    default; another family of o11yctl's rules has its own).
    """
    return [
        BatchCommand("device", ("ip", "-d", "-j", "addr", "show", "dev", interface)),
        BatchCommand("iptables_version", ("iptables", "--version")),
        BatchCommand("iptables", ("iptables", "-w", "5", "-S"), only_if="iptables_version"),
        BatchCommand("nft", ("nft", "-j", "list", "ruleset")),
        BatchCommand("firewalld", ("firewall-cmd", "--state")),
        BatchCommand("firewalld_zone", ("firewall-cmd", "--get-default-zone"), only_if="firewalld"),
        BatchCommand("firewalld_ports", ("firewall-cmd", "--list-ports"), only_if="firewalld"),
        BatchCommand("firewalld_rich", ("firewall-cmd", "--list-rich-rules"), only_if="firewalld"),
        BatchCommand("firewalld_trusted", ("firewall-cmd", "--zone=trusted", "--list-sources"), only_if="firewalld"),
        BatchCommand("ufw", ("ufw", "status")),
        BatchCommand("offload", ("ethtool", "-k", interface)),
        BatchCommand("systemd", ("test", "-d", "/run/systemd/system")),
        BatchCommand("persisted", ("cat", f"{persist_dir.rstrip('/')}/{script}")),
        BatchCommand("unit", ("cat", f"{unit_dir.rstrip('/')}/{unit}"), only_if="systemd"),
        BatchCommand("unit_enabled", ("systemctl", "is-enabled", "--quiet", unit), only_if="systemd"),
    ]


def parse_probe(name: str, interface: str, batch: BatchResult) -> NodeFacts:
    """Turn a node's probe batch into its facts."""
    device = parse_device(interface, batch.get("device"))
    problems: list[str] = []
    version = parse_iptables_version(batch.get("iptables_version"))
    rules = parse_iptables_rules(batch.get("iptables")) if version else None
    if version and rules is None:
        problems.append(f"`iptables -S` failed: {_tail(batch.get('iptables'))}")
    nft_out = batch.get("nft")
    nft = parse_nft(nft_out)
    if not nft_out.missing and nft_out.exit_code != -1 and nft is None:
        problems.append(f"`nft -j list ruleset` failed: {_tail(nft_out)}")
    fwd_running = batch.get("firewalld").ok and "running" in batch.get("firewalld").stdout
    firewalld = Firewalld(
        running=fwd_running,
        zone=batch.get("firewalld_zone").stdout.strip() or None if fwd_running else None,
        ports=words(batch.get("firewalld_ports").stdout) if fwd_running else (),
        rich_rules=tuple(line.strip() for line in batch.get("firewalld_rich").stdout.splitlines() if line.strip())
        if fwd_running else (),
        trusted_sources=words(batch.get("firewalld_trusted").stdout) if fwd_running else (),
    )
    ufw_active, ufw_rules = parse_ufw(batch.get("ufw"))
    firewall = FirewallFacts(
        iptables=version, iptables_rules=rules, nft=nft, nft_installed=not nft_out.missing and nft_out.exit_code != -1,
        firewalld=firewalld, ufw_active=ufw_active, ufw_has_rules=ufw_rules, problems=tuple(problems),
    )
    persisted, unit = batch.get("persisted"), batch.get("unit")
    return NodeFacts(
        name=name, device=device, firewall=firewall, offload=parse_offload(batch.get("offload")),
        systemd=batch.get("systemd").ok, persisted=persisted.stdout if persisted.ok else None,
        unit=unit.stdout if unit.ok else None, unit_enabled=batch.get("unit_enabled").ok,
    )


def _tail(out: Output, lines: int = 3) -> str:
    text = (out.stderr or out.stdout).strip().splitlines()
    return " / ".join(text[-lines:]) or f"exit code {out.exit_code}"


# --- the overlay test -------------------------------------------------------------------------

_PING_SCRIPT = f"""\
t=$1; own=$2; count=$3; wait=$4; shift 4
{_PATH}
LC_ALL=C
export PATH LC_ALL
printf '%s snmp-before\\n' "$t"; cat /proc/net/snmp
for p in "$@"; do
  ( ping -n -q -c "$count" -i 0.2 -W "$wait" -I "$own" "$p" >/dev/null 2>&1
    printf '%s ping %s %s\\n' "$t" "$p" "$?" ) &
done
wait
printf '%s snmp-after\\n' "$t"; cat /proc/net/snmp
printf '%s end\\n' "$t"
"""


def ping_argv(token: str, own: str, peers: Sequence[str], *, count: int, wait: int) -> list[str]:
    """One command that reads /proc/net/snmp, pings every peer at once from ``own``, and reads it again.

    Args:
        token: the marker of this run's output lines.
        own: the node's overlay address (the ping source, ``-I``).
        peers: the peers' overlay addresses.
        count: pings per peer.
        wait: seconds to wait for the last reply.

    Raises:
        ValueError: an address is not an IPv4 address (it would reach ``ping`` as an option or a name).
    """
    for address in (own, *peers):
        ipaddress.IPv4Address(address)
    return ["sh", "-c", _PING_SCRIPT, "sh", token, own, str(count), str(wait), *peers]


def parse_ping(name: str, text: str, token: str, peers: Mapping[str, str]) -> PingFacts:
    """Parse the overlay test's output.

    Args:
        name: the node that pinged.
        text: its stdout.
        token: the marker.
        peers: overlay address -> peer node name.
    """
    results: dict[str, bool] = {}
    sections: dict[str, list[str]] = {"snmp-before": [], "snmp-after": []}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith(token + " "):
            fields = line.split()
            if len(fields) == 4 and fields[1] == "ping":
                peer = peers.get(fields[2])
                if peer is not None:
                    results[peer] = fields[3] == "0"
                continue
            current = fields[1] if len(fields) == 2 and fields[1] in sections else None
            continue
        if current is not None:
            sections[current].append(line)
    for peer in peers.values():
        results.setdefault(peer, False)
    return PingFacts(
        name=name, results=results,
        csum_before=parse_udp_csum_errors("\n".join(sections["snmp-before"])),
        csum_after=parse_udp_csum_errors("\n".join(sections["snmp-after"])),
    )


def unknown_device(interface: str, error: str) -> Device:
    """A device record for a node whose probe did not run."""
    return Device(name=interface, present=False, error=error)
