"""A real OpenSSH server for tests and benchmarks.

Starts Debian's ``/usr/sbin/sshd`` on a given address and port, optionally inside
a network namespace, with generated host keys, and creates two local test users:

* ``o11y-test``: logs in with a generated key; ``sudo`` needs no password.
* ``o11y-sudopw``: logs in with the same kind of key; ``sudo`` asks for a password.

Both users have ``/bin/sh`` as their shell and no profile, so a remote command
costs no more than the login itself. Everything here needs root (``useradd``,
``/etc/sudoers.d``, binding sshd); callers without root should skip (or fail under
``CI=true``, see :mod:`tests.lab.ci`).

Typical use::

    users = ensure_test_users()
    server = start_sshd(tmp_path / "sshd")             # 127.0.0.1, a free port, ed25519
    write_known_hosts(tmp_path / "known_hosts", server)
    ...                                                # connect as users.nopasswd.name with users.nopasswd.key
    server.stop()

Inside a network namespace (the namespace must exist and have its address up)::

    server = start_sshd(workdir, address="10.99.0.2", netns="o11y-lab-a")   # port 22 by default

The pytest fixtures built on this module live in :mod:`tests.lab.sshd_fixtures`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
#: Users this lab creates (and reuses); their names never collide with real accounts.
NOPASSWD_USER = "o11y-test"
PASSWORD_USER = "o11y-sudopw"
#: Where the test users' client keys and the sudo password live (0700, root only).
DEFAULT_LAB_DIR = Path(tempfile.gettempdir()) / "o11yctl-lab"
_SUDOERS_FILE = Path("/etc/sudoers.d/o11yctl-lab")
_KEY_BITS = {"rsa": ["-b", "2048"], "ecdsa": ["-b", "256"], "ed25519": []}
_START_TIMEOUT = 15.0


class LabUnavailable(RuntimeError):
    """The machine cannot run the lab (not root, or sshd/ssh-keygen missing)."""


def lab_unavailable_reason() -> str | None:
    """Why the sshd lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the sshd lab needs root (useradd, /etc/sudoers.d, sshd)"
    for tool in (SSHD, "ssh-keygen", "useradd", "sudo"):
        if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool)):
            return f"the sshd lab needs {tool} (Debian: apt-get install openssh-server sudo)"
    return None


# --- users ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestUser:
    """A local account sshd lets in with ``key``."""

    __test__ = False  # a data class, not a pytest test class

    name: str
    uid: int
    gid: int
    home: Path
    key: Path  # private key file (OpenSSH format, no passphrase)
    public_key: str  # "ssh-ed25519 AAAA... comment"


@dataclass(frozen=True, slots=True)
class TestUsers:
    """The two lab users, and the sudo password of the second."""

    __test__ = False  # a data class, not a pytest test class

    nopasswd: TestUser
    sudopw: TestUser
    sudo_password: str
    lab_dir: Path
    #: A key no user accepts, for "wrong key" tests.
    stranger_key: Path


def ensure_test_users(lab_dir: Path = DEFAULT_LAB_DIR) -> TestUsers:
    """Create (or reuse) the two test users, their client keys and sudoers entries. Idempotent.

    Args:
        lab_dir: where the client keys and the sudo password are kept (created 0700).

    Returns:
        The users, each with the path of a private key sshd accepts for it.

    Raises:
        LabUnavailable: not root, or a needed program is missing.
    """
    reason = lab_unavailable_reason()
    if reason:
        raise LabUnavailable(reason)
    lab_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(lab_dir, 0o700)
    with (lab_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several test runs may set up the users at once
        return _ensure_test_users(lab_dir)


def _ensure_test_users(lab_dir: Path) -> TestUsers:
    password_file = lab_dir / "sudo-password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(18) + "\n")
        os.chmod(password_file, 0o600)
    password = password_file.read_text().strip()
    nopasswd = _ensure_user(NOPASSWD_USER, lab_dir, password=None)
    sudopw = _ensure_user(PASSWORD_USER, lab_dir, password=password)
    stranger = lab_dir / "stranger_ed25519"
    if not stranger.exists():
        _keygen(stranger, "ed25519", comment="stranger")
    sudoers = (
        "# o11yctl test lab (tests/lab/sshd.py)\n"
        f"Defaults:{NOPASSWD_USER},{PASSWORD_USER} !requiretty, !use_pty, lecture=never\n"
        f"{NOPASSWD_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"
        f"{PASSWORD_USER} ALL=(ALL:ALL) ALL\n"
    )
    if not _SUDOERS_FILE.exists() or _SUDOERS_FILE.read_text() != sudoers:
        tmp = _SUDOERS_FILE.with_name(".o11yctl-lab.tmp")
        tmp.write_text(sudoers)
        os.chmod(tmp, 0o440)
        check = subprocess.run(["visudo", "-cqf", str(tmp)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            tmp.unlink()
            raise LabUnavailable(f"visudo rejected the lab's sudoers entry: {check.stderr.strip()}")
        tmp.replace(_SUDOERS_FILE)
    return TestUsers(nopasswd=nopasswd, sudopw=sudopw, sudo_password=password, lab_dir=lab_dir,
                     stranger_key=stranger)


def _ensure_user(name: str, lab_dir: Path, *, password: str | None) -> TestUser:
    home = Path("/home") / name
    if subprocess.run(["id", "-u", name], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
                        "--user-group", name], check=True, capture_output=True)
    if password is None:
        # "*": no password login, but not "locked" ("!"), which sshd refuses without PAM.
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
    else:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
    import pwd

    entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    home.mkdir(mode=0o755, exist_ok=True)
    # A clean shell: no profile or rc files that could slow a login or print anything.
    for rc in (".profile", ".bashrc", ".bash_logout"):
        (home / rc).unlink(missing_ok=True)
    key = lab_dir / f"{name}_ed25519"
    if not key.exists():
        _keygen(key, "ed25519", comment=name)
    public = Path(f"{key}.pub").read_text().strip()
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    if not auth.exists() or auth.read_text() != public + "\n":
        # Replaced atomically: an sshd of another test run may be reading it right now.
        tmp = ssh_dir / ".authorized_keys.tmp"
        tmp.write_text(public + "\n")
        os.chown(tmp, entry.pw_uid, entry.pw_gid)
        os.chmod(tmp, 0o600)
        tmp.replace(auth)
    for path, mode in ((home, 0o755), (ssh_dir, 0o700), (auth, 0o600)):
        os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(path, mode)
    return TestUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=home, key=key, public_key=public)


def _keygen(path: Path, key_type: str, *, comment: str = "") -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, *_KEY_BITS.get(key_type, []), "-N", "", "-C", comment,
                    "-f", str(path)], check=True, capture_output=True, stdin=subprocess.DEVNULL)


# --- the server ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostKey:
    """One host key of a server: its type (``ssh-ed25519``, ``ssh-rsa``), blob, and files."""

    type: str
    base64: str
    private_path: Path

    @property
    def line(self) -> str:
        """``<type> <base64>``, as in known_hosts."""
        return f"{self.type} {self.base64}"

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as OpenSSH prints it."""
        digest = hashlib.sha256(base64.b64decode(self.base64)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass
class Sshd:
    """A running sshd started by :func:`start_sshd`."""

    address: str
    port: int
    workdir: Path
    config_path: Path
    log_path: Path
    host_keys: dict[str, HostKey]  # by short type: "ed25519", "rsa", "ecdsa"
    process: subprocess.Popen[bytes]
    netns: str | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH looks up in known_hosts: ``addr`` on port 22, else ``[addr]:port``."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def known_hosts_lines(self, key_types: Iterable[str] | None = None) -> list[str]:
        """known_hosts lines (no newline) for this server's keys, optionally only some types."""
        wanted = list(key_types) if key_types is not None else list(self.host_keys)
        return [f"{self.known_hosts_name} {self.host_keys[t].line}" for t in wanted]

    def log(self) -> str:
        """Everything sshd logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Stop the server and any session processes it left behind. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        pid = self.process.pid
        leftovers = _descendants(pid)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for child in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    def __enter__(self) -> Sshd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sshd(
    workdir: Path,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    netns: str | None = None,
    host_key_types: Sequence[str] = ("ed25519",),
    host_keys_from: Sshd | None = None,
    log_level: str = "VERBOSE",
    extra_config: Sequence[str] = (),
) -> Sshd:
    """Start ``/usr/sbin/sshd -D`` listening on ``address:port`` and wait until it listens.

    Args:
        workdir: a directory for the config, host keys, pid and log (created).
        address: the address to listen on.
        port: the port; default a free port on ``address`` (22 inside a network namespace).
        netns: run inside this network namespace (``ip netns exec NS sshd ...``).
        host_key_types: key types to generate: any of "ed25519", "rsa", "ecdsa".
        host_keys_from: reuse this server's host keys instead of generating new ones.
        log_level: sshd's LogLevel (DEBUG1 shows forwarded connections, for ProxyJump tests).
        extra_config: more sshd_config lines, e.g. ``["AllowTcpForwarding no"]``.

    Returns:
        The running server; call :meth:`Sshd.stop` (or use it as a context manager).

    Raises:
        LabUnavailable: not root or sshd missing.
        RuntimeError: sshd exited or did not listen within 15 s (the message has its log).
    """
    reason = lab_unavailable_reason()
    if reason:
        raise LabUnavailable(reason)
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    keys: dict[str, HostKey] = {}
    if host_keys_from is not None:
        keys = dict(host_keys_from.host_keys)
    else:
        for key_type in host_key_types:
            path = workdir / f"ssh_host_{key_type}_key"
            if not path.exists():
                _keygen(path, key_type)
            kind, blob = Path(f"{path}.pub").read_text().split()[:2]
            keys[key_type] = HostKey(type=kind, base64=blob, private_path=path)
    if port is None:
        port = 22 if netns else free_port(address)
    config = workdir / "sshd_config"
    log = workdir / "sshd.log"
    lines = [
        f"ListenAddress {address}:{port}" if ":" not in address else f"ListenAddress [{address}]:{port}",
        *(f"HostKey {k.private_path}" for k in keys.values()),
        f"PidFile {workdir / 'sshd.pid'}",
        "UsePAM no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        f"AllowUsers {NOPASSWD_USER} {PASSWORD_USER}",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "StrictModes yes",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        "MaxStartups 100:30:200",
        "MaxSessions 50",
        "AllowTcpForwarding yes",
        "X11Forwarding no",
        f"LogLevel {log_level}",
        "Subsystem sftp internal-sftp",
        *extra_config,
    ]
    config.write_text("\n".join(lines) + "\n")
    argv = [SSHD, "-D", "-e", "-f", str(config)]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    with log.open("wb") as log_fh:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = Sshd(address=address, port=port, workdir=workdir, config_path=config, log_path=log,
                  host_keys=keys, process=process, netns=netns)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if "Server listening on" in server.log():
            return server
        if process.poll() is not None:
            break
        time.sleep(0.02)
    server.stop()
    raise RuntimeError(f"sshd on {address}:{port} did not start (exit {process.poll()}):\n{server.log()}")


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``address`` right now."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def write_known_hosts(
    path: Path,
    *servers: Sshd,
    key_types: Iterable[str] | None = None,
    hashed: bool = False,
    append: bool = False,
) -> str:
    """Write known_hosts lines for ``servers`` (all their keys, or only ``key_types``).

    Args:
        path: the known_hosts file.
        servers: the servers to record.
        key_types: only these short types ("ed25519", "rsa"); default every key of each server.
        hashed: write hashed host names (``|1|salt|hash``), like ``HashKnownHosts yes``.
        append: add to the file instead of replacing it.

    Returns:
        The text written.
    """
    text = ""
    for server in servers:
        types = list(key_types) if key_types is not None else list(server.host_keys)
        for key_type in types:
            name = hash_host(server.known_hosts_name) if hashed else server.known_hosts_name
            text += f"{name} {server.host_keys[key_type].line}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w") as fh:
        fh.write(text)
    return text


def hash_host(name: str, salt: bytes | None = None) -> str:
    """A hashed known_hosts host field, as ``ssh-keygen -H`` writes it."""
    salt = salt if salt is not None else os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _descendants(pid: int) -> set[int]:
    """PIDs of every process below ``pid`` (the per-connection processes of an sshd we started)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
