"""A real Flannel-style VXLAN overlay in network namespaces, each node with its own sshd.

Layout of a lab of N nodes (every name carries this process's id and a per-lab number)::

    netns <prefix>-br    bridge br0; one veth port per node (p0, p1, ...) and one for the controller
    netns <prefix>-<i>   node i: eth0 198.18.0.<i+1>/24 (underlay), flannel.1 (vxlan id 1,
                         local 198.18.0.<i+1>, dstport 8472, nolearning) with 10.42.<i>.0/32,
                         a route, a permanent neighbour and an FDB entry per peer (as Flannel
                         sets them), and sshd on 198.18.0.<i+1>:22
    netns <prefix>-ctl   the controller: eth0 198.18.0.254/24; o11yctl runs here (run_cli)

Nothing is added to the root namespace's interfaces, routes or firewall; all traffic stays
inside 198.18.0.0/15 and the lab's own namespaces. Each node sees its own copy of one
directory, ``/etc/<prefix>`` (``ip netns exec`` binds ``/etc/netns/<ns>/<name>`` over it), so
o11yctl's boot script and restart marker can be checked per node. :meth:`VxlanLab.close`
removes everything, and runs even when a test fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.sshd import Sshd, TestUsers, ensure_test_users, lab_unavailable_reason, start_sshd, write_known_hosts

PORT = 8472
CONTROLLER = "198.18.0.254"
_counter = itertools.count()
_TOOLS = ("ip", "bridge", "iptables", "nft", "ping")


def unavailable_reason() -> str | None:
    """Why this machine cannot build the lab, or None."""
    if os.geteuid() != 0:
        return "the VXLAN lab needs root (network namespaces, iptables)"
    for tool in _TOOLS:
        if not shutil.which(tool):
            return f"the VXLAN lab needs {tool} (Debian: apt-get install iproute2 iptables nftables iputils-ping)"
    return lab_unavailable_reason()


@dataclass
class LabNode:
    """One node of the lab."""

    index: int
    name: str
    netns: str
    address: str
    overlay: str
    mac: str
    etc_dir: Path  # this node's copy of /etc/<prefix>, seen from the root namespace
    role: str = "agent"
    sshd: Sshd | None = None


@dataclass
class VxlanLab:
    """N nodes joined by a bridge, with a working VXLAN overlay and an sshd each."""

    n: int
    workdir: Path
    prefix: str = ""
    nodes: list[LabNode] = field(default_factory=list)
    users: TestUsers | None = None
    known_hosts: Path | None = None
    _namespaces: list[str] = field(default_factory=list)
    _etc_paths: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.prefix:
            self.prefix = f"o11y-{os.getpid()}-{next(_counter)}"

    # -- names --------------------------------------------------------------------------------

    @property
    def bridge_ns(self) -> str:
        return f"{self.prefix}-br"

    @property
    def controller_ns(self) -> str:
        return f"{self.prefix}-ctl"

    @property
    def etc_name(self) -> str:
        """The directory under /etc each node sees as its own (``vxlan.persist_dir`` in :meth:`config_yaml`)."""
        return self.prefix

    def node(self, name: str) -> LabNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    # -- building -------------------------------------------------------------------------------

    def start(self) -> VxlanLab:
        """Build the namespaces, the overlay and the sshds. On failure everything built is removed."""
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        cleanup_stale_labs()
        self.users = ensure_test_users()
        etc_root = Path("/etc") / self.etc_name
        etc_root.mkdir(exist_ok=True)
        self._etc_paths.append(etc_root)
        self._add_ns(self.bridge_ns)
        _ip(self.bridge_ns, "link add br0 type bridge", "link set br0 up")
        for i in range(self.n):
            ns = f"{self.prefix}-{i}"
            etc_dir = Path("/etc/netns") / ns / self.etc_name
            etc_dir.mkdir(parents=True, exist_ok=True)
            self._etc_paths.append(etc_dir.parent)
            self.nodes.append(LabNode(
                index=i, name=f"node-{i + 1}", netns=ns, address=f"198.18.0.{i + 1}", overlay=f"10.42.{i}.0",
                mac=f"0e:42:00:00:{i // 256:02x}:{i % 256:02x}", etc_dir=etc_dir,
                role="server" if i == 0 else "agent",
            ))
        for node in self.nodes:
            self._add_ns(node.netns)
            _ip(self.bridge_ns, f"link add p{node.index} type veth peer name eth0 netns {node.netns}",
                f"link set p{node.index} master br0 up")
            _ip(node.netns,
                "link set lo up",
                f"addr add {node.address}/24 dev eth0",
                "link set eth0 up",
                f"link add flannel.1 address {node.mac} type vxlan id 1 local {node.address} dev eth0 "
                f"dstport {PORT} nolearning",
                f"addr add {node.overlay}/32 dev flannel.1",
                "link set flannel.1 up")
        self._add_ns(self.controller_ns)
        _ip(self.bridge_ns, f"link add pc type veth peer name eth0 netns {self.controller_ns}",
            "link set pc master br0 up")
        _ip(self.controller_ns, "link set lo up", f"addr add {CONTROLLER}/24 dev eth0", "link set eth0 up")
        for node in self.nodes:
            lines: list[str] = []
            fdb: list[str] = []
            for peer in self.nodes:
                if peer is node:
                    continue
                net = peer.overlay.rsplit(".", 1)[0] + ".0/24"
                lines.append(f"route add {net} via {peer.overlay} dev flannel.1 onlink")
                lines.append(f"neigh replace {peer.overlay} lladdr {peer.mac} dev flannel.1 nud permanent")
                fdb.append(f"fdb append {peer.mac} dev flannel.1 dst {peer.address}")
            _ip(node.netns, *lines)
            if fdb:
                _run(["bridge", "-n", node.netns, "-batch", "-"], input_text="\n".join(fdb) + "\n")
        first: Sshd | None = None
        for node in self.nodes:
            node.sshd = start_sshd(self.workdir / f"sshd-{node.name}", address=node.address, netns=node.netns,
                                   host_keys_from=first)
            first = first or node.sshd
        self.known_hosts = self.workdir / "known_hosts"
        write_known_hosts(self.known_hosts, *(n.sshd for n in self.nodes if n.sshd))

    def _add_ns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)

    def close(self) -> None:
        """Stop the sshds and delete the namespaces and per-node directories. Safe to call twice."""
        for node in self.nodes:
            if node.sshd is not None:
                with contextlib.suppress(Exception):
                    node.sshd.stop()
        for ns in reversed(self._namespaces):
            _kill_in_netns(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._namespaces.clear()
        for path in self._etc_paths:
            shutil.rmtree(path, ignore_errors=True)
        self._etc_paths.clear()

    def __enter__(self) -> VxlanLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scenarios ------------------------------------------------------------------------------

    def sh(self, node: str | LabNode, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside a node's namespace (as root, directly, not over SSH)."""
        n = node if isinstance(node, LabNode) else self.node(node)
        return _run(["ip", "netns", "exec", n.netns, *argv], check=check)

    def iptables(self, node: str | LabNode, *args: str) -> None:
        """``iptables ARGS`` in the node's namespace."""
        self.sh(node, ["iptables", "-w", "5", *args])

    def iptables_rules(self, node: str | LabNode) -> list[str]:
        """The node's filter table as ``iptables -S`` prints it."""
        return self.sh(node, ["iptables", "-w", "5", "-S"]).stdout.splitlines()

    def nft(self, node: str | LabNode, *args: str) -> None:
        self.sh(node, ["nft", *args])

    def nft_ruleset(self, node: str | LabNode) -> str:
        return self.sh(node, ["nft", "list", "ruleset"]).stdout

    def block(self, node: str, *, source: str | None = None, target: str = "DROP") -> None:
        """Append a rule on ``node`` that drops (or rejects) UDP 8472 from everyone or from one peer."""
        src = ["-s", f"{self.node(source).address}/32"] if source else []
        self.iptables(node, "-A", "INPUT", *src, "-p", "udp", "--dport", str(PORT), "-j", target)

    def drop_policy(self, node: str) -> None:
        """A default-drop INPUT that accepts what a careful admin would, but not UDP 8472."""
        self.iptables(node, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
        self.iptables(node, "-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
        self.iptables(node, "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
        self.iptables(node, "-A", "INPUT", "-s", "10.42.0.0/16", "-j", "ACCEPT")
        self.iptables(node, "-P", "INPUT", "DROP")

    def ping(self, src: str, dst: str, *, count: int = 1) -> bool:
        """An overlay ping from ``src``'s VXLAN address to ``dst``'s, run directly in the namespace."""
        a, b = self.node(src), self.node(dst)
        done = self.sh(a, ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1", "-I", a.overlay, b.overlay],
                       check=False)
        return done.returncode == 0

    def ping_matrix(self) -> dict[tuple[str, str], bool]:
        return {(a.name, b.name): self.ping(a.name, b.name) for a in self.nodes for b in self.nodes if a is not b}

    # -- o11yctl --------------------------------------------------------------------------------

    def config_yaml(self, *, boot: str | None = None, restart_wait: float = 10, sudo_password: bool = False,
                    known_hosts: Path | None = None, extra: str = "") -> str:
        """An o11yctl config whose nodes are this lab's, reached over SSH as a lab test user.

        Args:
            boot: ``vxlan.boot``; default ``auto``, or ``none`` where the host runs systemd (the lab's
                nodes share the host's /run, and must not enable units on it).
            restart_wait: ``vxlan.restart_wait``.
            sudo_password: log in as the user whose sudo asks for a password.
            known_hosts: another known_hosts file than the lab's.
            extra: YAML appended as is.
        """
        assert self.users is not None and self.known_hosts is not None
        user = self.users.sudopw if sudo_password else self.users.nopasswd
        boot = boot or ("none" if Path("/run/systemd/system").is_dir() else "auto")
        etc = f"/etc/{self.etc_name}"
        lines = ["nodes:"]
        for n in self.nodes:
            lines += [f"  - name: {n.name}", f"    address: {n.address}", f"    role: {n.role}",
                      f"    ssh_user: {user.name}", f"    ssh_key: {user.key}"]
        lines += [
            "ssh:", f"  known_hosts: {known_hosts or self.known_hosts}",
            "  connect_timeout: 5", "  command_timeout: 60",
            "storage:", f"  node: {self.nodes[0].name}",
            "components:", "  grafana:", f"    node: {self.nodes[0].name}",
            "vxlan:", f"  persist_dir: {etc}", f"  systemd_unit_dir: {etc}/units", f"  boot: {boot}",
            f"  restart_wait: {restart_wait:g}", "  restart:",
            f"    server: touch {etc}/restarted", f"    agent: touch {etc}/restarted",
        ]
        return "\n".join(lines) + "\n" + extra

    def write_config(self, path: Path, **kwargs: object) -> Path:
        path.write_text(self.config_yaml(**kwargs))  # type: ignore[arg-type]
        return path

    @contextlib.contextmanager
    def in_controller(self) -> Iterator[None]:
        """Run the calling thread in the controller's namespace for a while.

        A socket made meanwhile stays there: a server started inside (e.g. a fake Kubernetes
        API on 127.0.0.1) answers the o11yctl that :meth:`run_cli` runs, and nothing else.
        """
        with in_netns(self.controller_ns):
            yield

    def cli_argv(self, args: Sequence[str]) -> list[str]:
        """The command line that runs the real ``o11yctl`` CLI in the controller's namespace."""
        return ["ip", "netns", "exec", self.controller_ns, sys.executable, "-m", "o11yctl", *args]

    def run_cli(self, args: Sequence[str], *, timeout: float = 180.0,
                input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real ``o11yctl`` CLI in the controller's namespace."""
        argv = self.cli_argv(args)
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env,
                              input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL)


# --- helpers ----------------------------------------------------------------------------------


def _run(argv: Sequence[str], *, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False, input=input_text,
                          stdin=None if input_text is not None else subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise RuntimeError(f"lab: `{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def _ip(netns: str, *commands: str) -> None:
    """Several ``ip`` commands in one process (``ip -n NS -batch -``)."""
    _run(["ip", "-n", netns, "-batch", "-"], input_text="\n".join(commands) + "\n")


_CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Move the calling thread (only) into network namespace ``name``, and back afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)

    def enter(fd: int, what: str) -> None:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {what}: {os.strerror(err)}")

    with open("/proc/thread-self/ns/net", "rb") as own, open(f"/run/netns/{name}", "rb") as target:
        enter(target.fileno(), f"netns {name}")
        try:
            yield
        finally:
            enter(own.fileno(), "the original netns")


def _kill_in_netns(ns: str) -> None:
    done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False)
    for pid in done.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def cleanup_stale_labs() -> None:
    """Remove labs left by test processes that no longer run (``o11y-<pid>-...`` with a dead pid)."""
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != "o11y" or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        _kill_in_netns(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)
        prefix = "-".join(parts[:3])
        with contextlib.suppress(OSError):
            shutil.rmtree(Path("/etc") / prefix)


@contextlib.contextmanager
def vxlan_lab(n: int, workdir: Path) -> Iterator[VxlanLab]:
    """Build a lab of ``n`` nodes under ``workdir``; always torn down on exit."""
    lab = VxlanLab(n=n, workdir=workdir)
    try:
        yield lab.start()
    finally:
        lab.close()


def wait_until(predicate: object, seconds: float = 5.0) -> bool:
    """Poll a zero-argument callable until it returns true or ``seconds`` pass."""
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())
