"""Two hosts on a wire: a pair of network namespaces joined by a veth pair, for tests that need another address.

::

    netns <prefix>-cli   eth0 198.18.1.1/24, lo up   (o11yctl runs here: ``argv_in``)
    netns <prefix>-srv   eth0 198.18.1.2/24, lo up   (a fake server listens here: start it ``inside``)

Nothing is added to the root namespace; all traffic stays inside the two namespaces
(198.18.0.0/15). The names follow the VXLAN lab's (``o11y-<pid>-<n>``), so its
``cleanup_stale_labs`` removes what a killed test process left behind. Needs root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tests.lab.vxlan_lab import _counter, _kill_in_netns, cleanup_stale_labs, in_netns

CLIENT_ADDRESS = "198.18.1.1"
SERVER_ADDRESS = "198.18.1.2"


def unavailable_reason() -> str | None:
    """Why two namespaces cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the network-namespace lab needs root"
    if not shutil.which("ip"):
        return "the network-namespace lab needs ip (Debian: apt-get install iproute2)"
    return None


@dataclass(frozen=True)
class Wire:
    """The two namespaces' names and addresses."""

    client: str
    server: str
    client_address: str = CLIENT_ADDRESS
    server_address: str = SERVER_ADDRESS

    def inside(self, which: str) -> contextlib.AbstractContextManager[None]:
        """Run the calling thread in ``client`` or ``server`` for a while (sockets made meanwhile stay there)."""
        return in_netns(self.client if which == "client" else self.server)

    def argv_in(self, which: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside one of the namespaces."""
        return ["ip", "netns", "exec", self.client if which == "client" else self.server, *argv]

    def o11yctl(self, args: Sequence[str], *, env: dict[str, str] | None = None,
                timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """The real ``o11yctl`` CLI, run in the client namespace."""
        return subprocess.run(self.argv_in("client", [sys.executable, "-m", "o11yctl", *args]), capture_output=True,
                              text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
                              env={**os.environ, "NO_COLOR": "1", **(env or {})})


def _run(argv: Sequence[str], input_text: str | None = None) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False, input=input_text)
    if done.returncode != 0:
        raise RuntimeError(f"netns lab: `{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")


@contextlib.contextmanager
def wire() -> Iterator[Wire]:
    """Build the two namespaces and the veth pair between them; always removed on exit."""
    cleanup_stale_labs()
    prefix = f"o11y-{os.getpid()}-{next(_counter)}"
    made: list[str] = []
    try:
        for side in ("cli", "srv"):
            _run(["ip", "netns", "add", f"{prefix}-{side}"])
            made.append(f"{prefix}-{side}")
        client, server = made
        _run(["ip", "-n", client, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", server])
        for ns, address in ((client, CLIENT_ADDRESS), (server, SERVER_ADDRESS)):
            _run(["ip", "-n", ns, "-batch", "-"], input_text=f"addr add {address}/24 dev eth0\nlink set eth0 up\n"
                                                              "link set lo up\n")
        yield Wire(client, server)
    finally:
        for ns in reversed(made):
            _kill_in_netns(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
