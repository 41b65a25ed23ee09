"""Commands on the nodes over SSH, behaving like the ``ssh`` users already trust.

This is the only module that imports paramiko, and only when a connection is
opened, so importing it (for :class:`SshOptions` or :func:`ssh_target`) is cheap.

* **Where to connect** is resolved the way OpenSSH resolves it: ``ssh -G <host>``
  prints the effective settings after ``Host`` aliases, ``Match``, ``Include`` and
  tokens; HostName, User, Port, IdentityFile, IdentitiesOnly, ProxyJump,
  HostKeyAlias and HashKnownHosts are taken from it. ``ssh_user``, ``ssh_port``
  and ``ssh_key`` from o11yctl's config win over ssh_config. ProxyJump hops are
  opened here, each as its own SSH connection carrying a ``direct-tcpip`` channel.
* **Host keys** are checked against ``ssh.known_hosts`` (see :mod:`.known_hosts`).
  For a host already on file only the key types on file are negotiated, so a host
  known by its RSA key is not taken for a new host because it also has ed25519.
  An unknown host is refused with its fingerprint unless ``accept_new_host_keys``
  (then one line is appended); a changed or revoked key is always refused.
* **Authentication**: ``ssh_key`` if set, the ssh-agent (``SSH_AUTH_SOCK``), then
  the IdentityFiles ssh_config names.
* **sudo**: ``sudo -n -- argv``; when sudo wants a password and one was given, the
  command is re-run as ``sudo -k -S -p '' -- argv`` with the password on stdin only (``-k``: sudo
  ignores cached credentials, so it always reads the password and the command never sees it).
* **Quoting**: every command is an argument list sent as ``shlex.join(argv)``.
* **Timeouts** on connecting and on every command; each error names the node, the
  address and the step.
* :class:`SshPool` keeps one connection per host for the whole run and is safe to
  use from many threads; :meth:`SshPool.map` fans out with one thread per host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import random
import re
import select
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from o11yctl.errors import (
    ConfigError,
    HostKeyError,
    O11yError,
    RemoteError,
    SudoPasswordRequired,
    UnreachableError,
)
from o11yctl.executors.known_hosts import (
    HostKeyCheck,
    KnownHostEntry,
    append_host_key,
    check_host_key,
    fingerprint,
    host_key_types,
    key_type_label,
    known_hosts_name,
    load_known_hosts,
)
from o11yctl.model import CommandResult, SshTarget
from o11yctl.parallel import map_threads
from o11yctl.secrets import Secret

if TYPE_CHECKING:
    import paramiko

    from o11yctl.config import Config, Node, SshSettings

T = TypeVar("T")

SUDO_HINT = "--ask-sudo-password or --sudo-password-stdin"
#: The most a remote command may print on each of stdout and stderr (a probe prints a few KiB; iptables-save of a
#: busy host some hundred): beyond it the command is stopped rather than read into memory without end.
MAX_OUTPUT = 16 * 1024 * 1024
#: Connection attempts for failures that are often transient (reset, no banner because sshd throttles).
_CONNECT_ATTEMPTS = 3
_SSH_G_TIMEOUT = 10.0
_MAX_JUMPS = 5
#: Host-key algorithms that prove possession of a key of the type stored in known_hosts.
_ALGORITHMS_FOR_KEY_TYPE = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}
_PASSWORD_REQUIRED = re.compile(r"sudo: (a password is required|a terminal is required)")
_PASSWORD_WRONG = re.compile(r"incorrect password attempt|Sorry, try again")


# --- options and targets -----------------------------------------------------------------------


@dataclass(frozen=True)
class SshOptions:
    """How every connection of a run behaves (from ``ssh:`` in the config, and install's flags)."""

    known_hosts: Path
    config_file: Path | None
    connect_timeout: float
    command_timeout: float
    accept_new_host_keys: bool = False
    sudo_password: Secret | None = None
    #: The most a command may print on stdout or on stderr; more stops the command (see MAX_OUTPUT).
    max_output: int = 0

    @classmethod
    def from_settings(cls, settings: SshSettings, *, accept_new_host_keys: bool = False,
                      sudo_password: Secret | None = None) -> SshOptions:
        """Options from the config's ``ssh:`` section (``cfg.ssh``) plus the command's flags.

        Args:
            settings: ``cfg.ssh``.
            accept_new_host_keys: record unknown host keys (``--accept-new-host-keys``).
            sudo_password: the sudo password, if the user gave one.

        Returns:
            The options.
        """
        return cls(
            known_hosts=Path(os.path.expanduser(settings.known_hosts)),
            config_file=Path(os.path.expanduser(settings.config_file)) if settings.config_file else None,
            connect_timeout=float(settings.connect_timeout),
            command_timeout=float(settings.command_timeout),
            accept_new_host_keys=accept_new_host_keys,
            sudo_password=sudo_password,
        )

    @classmethod
    def from_config(cls, cfg: Config, *, accept_new_host_keys: bool = False,
                    sudo_password: Secret | None = None) -> SshOptions:
        """Same as :meth:`from_settings` with ``cfg.ssh``."""
        return cls.from_settings(cfg.ssh, accept_new_host_keys=accept_new_host_keys, sudo_password=sudo_password)


def ssh_target(node: Node) -> SshTarget:
    """How to reach ``node``: its ``ssh_host`` (else its address) and any explicit port, user and key."""
    return SshTarget(name=node.name, host=node.ssh_target_host, port=node.ssh_port, user=node.ssh_user,
                     key=node.ssh_key)


# --- resolving a host the way OpenSSH does -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedHost:
    """A host's effective SSH settings (what ``ssh -G`` says, with the config's explicit values laid over)."""

    hostname: str
    port: int
    user: str
    identity_files: tuple[Path, ...] = ()
    identities_only: bool = False
    proxy_jump: tuple[str, ...] = ()
    host_key_alias: str | None = None
    hash_known_hosts: bool = False
    use_agent: bool = True
    proxy_command: str | None = None

    @property
    def known_hosts_name(self) -> str:
        return known_hosts_name(self.host_key_alias or self.hostname, self.port)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


def resolve_host(host: str, *, port: int | None = None, user: str | None = None,
                 config_file: Path | None = None) -> ResolvedHost:
    """Resolve ``host`` through ssh_config with ``ssh -G``.

    Args:
        host: a host name, address or ssh_config alias.
        port: an explicit port (wins over ssh_config).
        user: an explicit user (wins over ssh_config).
        config_file: the ssh_config to read; default ``~/.ssh/config`` (following ``$HOME``).

    Returns:
        The effective settings.

    Raises:
        ConfigError: ``ssh -G`` rejected the host or the config file.
    """
    argv = ["ssh", "-G", *_config_args(config_file)]
    if port is not None:
        argv += ["-p", str(port)]
    if user is not None:
        argv += ["-l", user]
    argv += ["--", host]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=_SSH_G_TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return _resolve_with_paramiko(host, port=port, user=user, config_file=config_file)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"`{shlex.join(argv)}` did not answer within {_SSH_G_TIMEOUT:.0f}s",
                          hint="check the ssh_config file (a Match exec that hangs?)") from None
    if proc.returncode != 0:
        problem = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise ConfigError(f"ssh_config cannot resolve host {host!r}: {problem}",
                          hint="check nodes[].ssh_host and ssh.config_file (try: ssh -G HOST)")
    settings: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key.lower(), []).append(value.strip())

    def one(key: str, default: str = "") -> str:
        return settings.get(key, [default])[0]

    jump = one("proxyjump", "none")
    alias = one("hostkeyalias", "none")
    proxy_command = one("proxycommand", "none")
    agent = one("identityagent", "SSH_AUTH_SOCK")
    return ResolvedHost(
        hostname=one("hostname", host),
        port=port if port is not None else int(one("port", "22")),
        user=user if user is not None else one("user", _login_name()),
        identity_files=tuple(Path(os.path.expanduser(p)) for p in settings.get("identityfile", [])),
        identities_only=one("identitiesonly", "no") == "yes",
        proxy_jump=() if jump.lower() == "none" else tuple(p for p in jump.split(",") if p),
        host_key_alias=None if alias.lower() == "none" else alias,
        hash_known_hosts=one("hashknownhosts", "no") == "yes",
        use_agent=agent.lower() != "none",
        proxy_command=None if proxy_command.lower() == "none" else proxy_command,
    )


def _config_args(config_file: Path | None) -> list[str]:
    """``-F`` for ``ssh -G``: the configured file; else ~/.ssh/config under $HOME when $HOME is not the
    passwd home (ssh itself reads the passwd home's config, ignoring $HOME)."""
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"ssh.config_file: {config_file} does not exist",
                              hint="point ssh.config_file at your ssh_config, or remove the key")
        return ["-F", str(config_file)]
    home = Path(os.path.expanduser("~"))
    try:
        passwd_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        passwd_home = None
    if passwd_home is not None and _same_path(home, passwd_home):
        return []
    user_config = home / ".ssh" / "config"
    return ["-F", str(user_config) if user_config.is_file() else "none"]


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _login_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER", "root")


def _resolve_with_paramiko(host: str, *, port: int | None, user: str | None,
                           config_file: Path | None) -> ResolvedHost:
    """Fallback without the ``ssh`` client: paramiko's parser (no Include; Match only in part)."""
    import paramiko

    path = config_file or Path(os.path.expanduser("~/.ssh/config"))
    found: dict[str, Any] = {}
    if path.is_file():
        found = dict(paramiko.SSHConfig.from_path(str(path)).lookup(host))
    jump = str(found.get("proxyjump", "none"))
    return ResolvedHost(
        hostname=str(found.get("hostname", host)),
        port=port if port is not None else int(found.get("port", 22)),
        user=user if user is not None else str(found.get("user", _login_name())),
        identity_files=tuple(Path(os.path.expanduser(p)) for p in found.get("identityfile", [])),
        identities_only=str(found.get("identitiesonly", "no")).lower() == "yes",
        proxy_jump=() if jump.lower() == "none" else tuple(p for p in jump.split(",") if p),
        host_key_alias=found.get("hostkeyalias"),
        hash_known_hosts=str(found.get("hashknownhosts", "no")).lower() == "yes",
    )


_HOP = re.compile(r"^(?:ssh://)?(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/@\[\]]+)(?::(?P<port>\d+))?/?$")


def parse_jump(spec: str) -> tuple[str, int | None, str | None]:
    """One ProxyJump hop, ``[user@]host[:port]`` or ``ssh://[user@]host[:port]`` -> (host, port, user).

    Raises:
        ConfigError: the hop is not in that form.
    """
    match = _HOP.match(spec.strip())
    if not match or match.group("host").startswith("-"):
        raise ConfigError(f"ProxyJump hop {spec!r} is not [user@]host[:port]", hint="fix ProxyJump in ssh_config")
    port = match.group("port")
    return match.group("host").strip("[]"), int(port) if port else None, match.group("user")


# --- the pool ------------------------------------------------------------------------------------


@dataclass
class _Connection:
    name: str
    transport: paramiko.Transport
    resolved: ResolvedHost
    where: str
    sudo_needs_password: bool = False


class SshPool:
    """SSH connections for one run: one per host, opened on first use and reused; thread-safe.

    Use it as a context manager (or call :meth:`close`)::

        with SshPool(SshOptions.from_settings(cfg.ssh)) as pool:
            result = pool.run(ssh_target(node), ["stat", "-c", "%u:%g", path], step="storage.loki")
    """

    def __init__(self, options: SshOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._known_hosts_lock = threading.Lock()
        self._host_locks: dict[Any, threading.Lock] = {}
        self._connections: dict[Any, _Connection] = {}
        self._closed = False

    def __enter__(self) -> SshPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public ------------------------------------------------------------------------------

    def run(self, target: SshTarget, argv: Sequence[str], *, sudo: bool = False, timeout: float | None = None,
            step: str = "") -> CommandResult:
        """Run ``argv`` on ``target`` and collect what it did. A non-zero exit does not raise.

        Args:
            target: the node.
            argv: program and arguments; each is quoted with ``shlex.join`` on the way.
            sudo: run through ``sudo -n --`` (``sudo -S`` with the password when sudo asks for one);
                a root login runs the command directly.
            timeout: seconds the command may run; default ``ssh.command_timeout``.
            step: the plan step this belongs to, for messages.

        Returns:
            The result (``argv`` is the full remote argument list, including any sudo prefix).

        Raises:
            UnreachableError: cannot connect or authenticate (exit 3).
            HostKeyError: the host key is unknown, changed or revoked (exit 3).
            SudoPasswordRequired: sudo wants a password and none was given, or it refused the one given.
            RemoteError: the command timed out or the session broke.
        """
        if not argv:
            raise ValueError("empty argv")
        conn = self._connection(target, step)
        limit = self.options.command_timeout if timeout is None else timeout
        if not sudo or conn.resolved.user == "root":
            return self._exec(conn, tuple(argv), None, limit, step)
        password = self.options.sudo_password
        if not (conn.sudo_needs_password and password):
            result = self._exec(conn, ("sudo", "-n", "--", *argv), None, limit, step)
            if result.ok or not _PASSWORD_REQUIRED.search(result.stderr):
                return result
            if not password:
                raise SudoPasswordRequired(
                    f"{_where(conn.where, step)}: sudo needs a password to run `{shlex.join(argv)}`",
                    hint=f"give it with {SUDO_HINT}, or allow {conn.resolved.user} passwordless sudo on the host",
                )
            conn.sudo_needs_password = True
        result = self._exec(conn, ("sudo", "-k", "-S", "-p", "", "--", *argv), password, limit, step)
        if not result.ok and _PASSWORD_WRONG.search(result.stderr):
            raise SudoPasswordRequired(
                f"{_where(conn.where, step)}: sudo refused the password given for {conn.resolved.user}",
                hint=f"re-run and give the right password ({SUDO_HINT})",
            )
        return result

    def connect(self, target: SshTarget, *, step: str = "") -> None:
        """Open (or reuse) the connection to ``target`` now: resolve, verify the host key, authenticate.

        Raises:
            UnreachableError: cannot connect or authenticate.
            HostKeyError: the host key is unknown, changed or revoked.
        """
        self._connection(target, step)

    def map(self, targets: Sequence[SshTarget], fn: Callable[[SshTarget], T]) -> dict[str, T | O11yError]:
        """Call ``fn(target)`` for every target at once, one thread per host.

        Args:
            targets: the nodes.
            fn: what to do on one node (usually calls :meth:`run`).

        Returns:
            Node name -> ``fn``'s result, or the :class:`O11yError` it raised; one host's failure
            never hides another's result.
        """
        results: dict[str, T | O11yError] = {}
        for target, got in zip(targets, map_threads(targets, fn, name="o11yctl-ssh"), strict=True):
            if isinstance(got, BaseException) and not isinstance(got, O11yError):
                raise got
            results[target.name] = got
        return results

    def close(self) -> None:
        """Close every connection (jump hosts last). Safe to call twice."""
        with self._lock:
            self._closed = True
            connections = list(self._connections.values())
            self._connections.clear()
        for conn in reversed(connections):
            with contextlib.suppress(Exception):  # closing must never fail the run
                conn.transport.close()

    # -- connections ---------------------------------------------------------------------------

    def _connection(self, target: SshTarget, step: str) -> _Connection:
        def open_target() -> _Connection:
            return self._open(target.name, self._resolve(target, step), target.key, step, depth=0)

        return self._get_or_open(("target", target), open_target)

    def _get_or_open(self, key: Any, opener: Callable[[], _Connection]) -> _Connection:
        with self._lock:
            if self._closed:
                raise RemoteError("the SSH connections of this run are already closed")
            host_lock = self._host_locks.setdefault(key, threading.Lock())
        with host_lock:
            with self._lock:
                conn = self._connections.get(key)
            if conn is not None and conn.transport.is_active():
                return conn
            conn = opener()
            with self._lock:
                self._connections[key] = conn
            return conn

    def _resolve(self, target: SshTarget, step: str) -> ResolvedHost:
        try:
            return resolve_host(target.host, port=target.port, user=target.user,
                                config_file=self.options.config_file)
        except ConfigError as exc:
            raise ConfigError(f"{_where(target.name, step)}: {exc.message}", hint=exc.hint) from None

    def _open(self, name: str, resolved: ResolvedHost, explicit_key: str | None, step: str, *,
              depth: int) -> _Connection:
        where = f"{name} ({resolved.address})"
        sock = self._socket_to(name, resolved, step, depth)
        attempt = 0
        while True:
            attempt += 1
            try:
                transport = self._handshake(sock, resolved, where, step)
                break
            except _Transient as exc:
                if attempt >= _CONNECT_ATTEMPTS:
                    raise UnreachableError(f"{_where(where, step)}: {exc}",
                                           hint="check that sshd runs on the host and accepts connections") from None
                time.sleep(random.uniform(0.1, 0.4))
                sock = self._socket_to(name, resolved, step, depth)
        try:
            self._authenticate(transport, resolved, explicit_key, where, step)
        except BaseException:
            transport.close()
            raise
        transport.set_keepalive(15)
        return _Connection(name=name, transport=transport, resolved=resolved, where=where)

    def _socket_to(self, name: str, resolved: ResolvedHost, step: str, depth: int) -> Any:
        """A connected socket (or a direct-tcpip channel through the last ProxyJump hop)."""
        where = f"{name} ({resolved.address})"
        timeout = self.options.connect_timeout
        if resolved.proxy_command and not resolved.proxy_jump:
            raise UnreachableError(f"{_where(where, step)}: ssh_config sets ProxyCommand, which o11yctl does not run",
                                   hint="use ProxyJump for that host instead (o11yctl opens the jump itself)")
        if resolved.proxy_jump:
            if depth >= _MAX_JUMPS:
                raise UnreachableError(f"{_where(where, step)}: more than {_MAX_JUMPS} ProxyJump hops",
                                       hint="check ProxyJump in ssh_config for a loop")
            hop = self._hop(resolved.proxy_jump, step, depth)
            try:
                return hop.transport.open_channel("direct-tcpip", (resolved.hostname, resolved.port),
                                                  ("127.0.0.1", 0), timeout=timeout)
            except Exception as exc:  # paramiko raises several types here
                raise UnreachableError(
                    f"{_where(where, step)}: jump host {hop.where} could not connect to "
                    f"{resolved.hostname}:{resolved.port}: {_reason(exc)}",
                    hint="check that the jump host can reach the node (and allows TCP forwarding)",
                ) from None
        try:
            return socket.create_connection((resolved.hostname, resolved.port), timeout=timeout)
        except socket.gaierror as exc:
            raise UnreachableError(f"{_where(where, step)}: cannot resolve host name {resolved.hostname!r} "
                                   f"({exc.strerror})",
                                   hint="check nodes[].ssh_host / address, or HostName in ssh_config") from None
        except TimeoutError:
            raise UnreachableError(f"{_where(where, step)}: connection timed out after {timeout:g}s",
                                   hint="check the address and that no firewall drops port "
                                        f"{resolved.port}; ssh.connect_timeout sets the limit") from None
        except ConnectionRefusedError:
            raise UnreachableError(f"{_where(where, step)}: connection refused",
                                   hint=f"is sshd running on {resolved.hostname} port {resolved.port}?") from None
        except OSError as exc:
            raise UnreachableError(f"{_where(where, step)}: cannot connect: {exc.strerror or exc}",
                                   hint="check the address and the network path to the node") from None

    def _hop(self, jumps: tuple[str, ...], step: str, depth: int) -> _Connection:
        """The connection to the last hop of ``jumps``, reached through the hops before it."""
        spec = jumps[-1]
        host, port, user = parse_jump(spec)
        try:
            hop = resolve_host(host, port=port, user=user, config_file=self.options.config_file)
        except ConfigError as exc:
            raise ConfigError(f"ProxyJump {spec}: {exc.message}", hint=exc.hint) from None
        if len(jumps) > 1:
            hop = dataclasses.replace(hop, proxy_jump=jumps[:-1])
        key = ("hop", hop)
        return self._get_or_open(key, lambda: self._open(f"jump host {spec}", hop, None, step, depth=depth + 1))

    def _handshake(self, sock: Any, resolved: ResolvedHost, where: str, step: str) -> paramiko.Transport:
        import paramiko

        timeout = self.options.connect_timeout
        known = self._load_known_hosts()
        name = resolved.known_hosts_name
        on_file = host_key_types(known, name)
        transport = paramiko.Transport(sock)
        if on_file:
            # Offer only the key types on file, as OpenSSH orders HostKeyAlgorithms by known_hosts.
            allowed = {alg for t in on_file for alg in _ALGORITHMS_FOR_KEY_TYPE.get(t, (t,))}
            options = transport.get_security_options()
            supported = [a for a in options.key_types if a in allowed]
            if not supported:
                transport.close()
                raise HostKeyError(
                    f"{_where(where, step)}: {self.options.known_hosts} holds only {', '.join(on_file)} keys for "
                    f"{name}, which o11yctl cannot verify",
                    hint="add the host's ed25519, ECDSA or RSA key to known_hosts (ssh-keyscan, checked by hand)",
                )
            options.key_types = supported
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        try:
            transport.start_client(timeout=timeout)
            key = transport.get_remote_server_key()
        except paramiko.SSHException as exc:
            if type(exc).__name__ != "IncompatiblePeer":
                transport.close()
                raise self._handshake_error(exc, transport, resolved, where, step) from None
            transport.close()
            if on_file and "key" in str(exc).lower():
                raise HostKeyError(
                    f"{_where(where, step)}: HOST KEY CHANGED? the host offers none of the key types on file "
                    f"for {name} ({', '.join(on_file)}) in {self.options.known_hosts}",
                    hint=_changed_hint(name, self.options.known_hosts),
                ) from None
            raise UnreachableError(f"{_where(where, step)}: no common SSH algorithms: {exc}",
                                   hint="the server's sshd is too old or too restricted for o11yctl") from None
        except (EOFError, ConnectionResetError) as exc:
            transport.close()
            raise _Transient(f"the connection closed during the SSH handshake ({_reason(exc)})") from None
        except OSError as exc:
            transport.close()
            raise self._handshake_error(exc, transport, resolved, where, step) from None
        self._verify_host_key(transport, key.get_name(), key.asbytes(), resolved, where, step)
        return transport

    def _handshake_error(self, exc: Exception, transport: paramiko.Transport, resolved: ResolvedHost, where: str,
                         step: str) -> Exception:
        text = str(exc).lower()
        if "banner" in text or ("no existing session" in text and not getattr(transport, "remote_version", None)):
            if isinstance(exc.__cause__ or exc.__context__, EOFError | ConnectionResetError):
                return _Transient("the connection closed before the SSH banner")
            return UnreachableError(
                f"{_where(where, step)}: timed out after {self.options.connect_timeout:g}s waiting for the SSH "
                f"banner (is port {resolved.port} an SSH server?)",
                hint="check nodes[].ssh_port / Port in ssh_config; ssh.connect_timeout sets the limit",
            )
        if "no existing session" in text:  # start_client gave up waiting
            return UnreachableError(
                f"{_where(where, step)}: the SSH handshake did not finish within {self.options.connect_timeout:g}s",
                hint="check the network path and the host's load; ssh.connect_timeout sets the limit",
            )
        return UnreachableError(f"{_where(where, step)}: SSH handshake failed: {_reason(exc)}",
                                hint="check that the port is sshd's and the network path is stable")

    def _load_known_hosts(self) -> list[KnownHostEntry]:
        with self._known_hosts_lock:
            return load_known_hosts(self.options.known_hosts)

    def _verify_host_key(self, transport: paramiko.Transport, key_type: str, blob: bytes, resolved: ResolvedHost,
                         where: str, step: str) -> None:
        path = self.options.known_hosts
        name = resolved.known_hosts_name
        label = f"{key_type_label(key_type)} key {fingerprint(blob)}"
        with self._known_hosts_lock:
            check: HostKeyCheck = check_host_key(load_known_hosts(path), name, key_type, blob)
            if check.verdict == "known":
                return
            if check.verdict == "unknown" and self.options.accept_new_host_keys:
                append_host_key(path, name, key_type, blob, hashed=resolved.hash_known_hosts)
                return
        transport.close()
        if check.verdict == "revoked":
            raise HostKeyError(f"{_where(where, step)}: the host offered a REVOKED host key ({label}); "
                               f"{path} marks it @revoked", hint="do not connect; find out why the key is revoked")
        if check.verdict == "changed":
            lines = ", ".join(str(e.line_no) for e in check.on_file)
            raise HostKeyError(
                f"{_where(where, step)}: HOST KEY CHANGED for {name}: the host offers {label}, but {path} "
                f"(line {lines}) records a different key. Someone may be intercepting the connection, or the "
                "host was reinstalled",
                hint=_changed_hint(name, path),
            )
        extra = " (a @cert-authority line covers it, but host certificates are not checked)" \
            if check.has_cert_authority else ""
        raise HostKeyError(
            f"{_where(where, step)}: unknown host key for {name}: {label} is not in {path}{extra}",
            hint="compare the fingerprint with the host's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on it); "
                 "if it matches, re-run with --accept-new-host-keys to record it",
        )

    def _authenticate(self, transport: paramiko.Transport, resolved: ResolvedHost, explicit_key: str | None,
                      where: str, step: str) -> None:
        import paramiko

        tried: list[str] = []
        skipped: list[str] = []
        with _agent(resolved.use_agent and not resolved.identities_only) as agent_keys:
            for label, key in self._identities(resolved, explicit_key, agent_keys, skipped, where, step):
                tried.append(label)
                try:
                    transport.auth_publickey(resolved.user, key)
                except paramiko.BadAuthenticationType as exc:
                    raise UnreachableError(
                        f"{_where(where, step)}: the server does not accept public keys for {resolved.user} "
                        f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})",
                        hint="o11yctl logs in with keys only; allow publickey authentication in sshd_config",
                    ) from None
                except paramiko.AuthenticationException:
                    continue
                except (paramiko.SSHException, OSError, EOFError) as exc:
                    raise UnreachableError(f"{_where(where, step)}: the connection broke during authentication: "
                                           f"{_reason(exc)}",
                                           hint="sshd may limit authentication attempts (MaxAuthTries)") from None
                if transport.is_authenticated():
                    return
        detail = f"tried {', '.join(tried)}" if tried else "no key to try (no ssh_key, no agent, no IdentityFile)"
        if skipped:
            detail += f"; skipped {', '.join(skipped)}"
        raise UnreachableError(
            f"{_where(where, step)}: authentication failed for user {resolved.user} ({detail})",
            hint="check nodes[].ssh_user and nodes[].ssh_key (or IdentityFile in ssh_config), that the public key "
                 f"is in ~{resolved.user}/.ssh/authorized_keys on the host, or load the key into ssh-agent",
        )

    def _identities(self, resolved: ResolvedHost, explicit_key: str | None, agent_keys: Sequence[Any],
                    skipped: list[str], where: str, step: str) -> Iterator[tuple[str, Any]]:
        """Keys to offer, in order: the configured ssh_key, the agent's keys, ssh_config's IdentityFiles."""
        if explicit_key:
            path = Path(os.path.expanduser(explicit_key))
            if not path.is_file():
                raise UnreachableError(f"{_where(where, step)}: ssh_key {path} does not exist",
                                       hint="fix nodes[].ssh_key, or remove it to use ssh-agent and ssh_config")
            key = _load_private_key(path, skipped)
            if key is not None:
                yield f"key {path} ({_describe_key(key)})", key
        for agent_key in agent_keys:
            yield f"agent key {_describe_key(agent_key)}", agent_key
        if explicit_key:
            return
        for path in resolved.identity_files:
            if path.is_file():
                key = _load_private_key(path, skipped)
                if key is not None:
                    yield f"key {path} ({_describe_key(key)})", key

    # -- commands ------------------------------------------------------------------------------

    def _exec(self, conn: _Connection, argv: tuple[str, ...], stdin: Secret | None, timeout: float,
              step: str) -> CommandResult:
        import paramiko

        command = shlex.join(argv)
        started = time.monotonic()
        try:
            channel = conn.transport.open_session(timeout=self.options.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise RemoteError(f"{_where(conn.where, step)}: cannot open a session: {_reason(exc)}",
                              hint="the connection may have dropped; re-run the command") from None
        try:
            channel.set_environment_variable("LC_ALL", "C")
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall((stdin.reveal() + "\n").encode())
            channel.shutdown_write()
            out, err = _collect(channel, started + timeout, self.options.max_output or MAX_OUTPUT)
        except _OutputTooLarge as exc:
            channel.close()
            raise RemoteError(
                f"{_where(conn.where, step)}: `{_shown(argv)}` printed more than {exc.limit // 1024} KiB on "
                f"{exc.stream}; o11yctl stopped reading it and closed the session",
                hint="this is more than any of o11yctl's commands prints; check what the command runs on the host",
            ) from None
        except _CommandTimeout:
            channel.close()
            raise RemoteError(
                f"{_where(conn.where, step)}: `{_shown(argv)}` did not finish within {timeout:g}s",
                hint="ssh.command_timeout sets the limit; check the host's load and disks",
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            channel.close()
            raise RemoteError(f"{_where(conn.where, step)}: `{_shown(argv)}` broke off: {_reason(exc)}",
                              hint="the connection may have dropped; re-run the command") from None
        code = channel.recv_exit_status()
        channel.close()
        return CommandResult(argv=argv, exit_code=code, stdout=out.decode("utf-8", "replace"),
                             stderr=err.decode("utf-8", "replace"), seconds=time.monotonic() - started,
                             host=conn.name)


class _Transient(Exception):
    """A connection failure worth one more try (reset, closed before the banner)."""


class _CommandTimeout(Exception):
    """A remote command outlived its deadline."""


class _OutputTooLarge(Exception):
    """A remote command printed more than the limit on one stream."""

    def __init__(self, stream: str, limit: int) -> None:
        super().__init__(stream)
        self.stream = stream
        self.limit = limit


def _collect(channel: Any, deadline: float, limit: int) -> tuple[bytes, bytes]:
    """Read stdout and stderr until the exit status arrives or ``deadline`` passes; at most ``limit`` bytes each."""
    out, err = bytearray(), bytearray()
    while True:
        while channel.recv_ready():
            out += channel.recv(65536)
            if len(out) > limit:
                raise _OutputTooLarge("stdout", limit)
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(65536)
            if len(err) > limit:
                raise _OutputTooLarge("stderr", limit)
        if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
            return bytes(out), bytes(err)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _CommandTimeout
        if channel.eof_received:
            channel.status_event.wait(min(remaining, 0.5))
        else:
            select.select([channel], [], [], min(remaining, 0.05))


@contextmanager
def _agent(enabled: bool) -> Iterator[Sequence[Any]]:
    """The ssh-agent's keys (one agent connection per SSH connection, so threads never share it)."""
    if not enabled or not os.environ.get("SSH_AUTH_SOCK"):
        yield ()
        return
    import paramiko

    try:
        agent = paramiko.Agent()
    except paramiko.SSHException:
        yield ()
        return
    try:
        yield agent.get_keys()
    finally:
        agent.close()


def _load_private_key(path: Path, skipped: list[str]) -> Any:
    import paramiko

    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        skipped.append(f"{path} (encrypted: load it into ssh-agent)")
    except OSError as exc:
        skipped.append(f"{path} ({exc.strerror})")
    except Exception as exc:  # paramiko raises several types for keys it cannot read
        skipped.append(f"{path} ({_reason(exc)})")
    return None


def _describe_key(key: Any) -> str:
    try:
        return f"{key_type_label(key.get_name())} {fingerprint(key.asbytes())}"
    except Exception:  # a description must never fail authentication
        return "key"


def _changed_hint(name: str, path: Path) -> str:
    return (f"if the change is expected (host reinstalled), remove the old key with: ssh-keygen -R '{name}' -f {path}; "
            "then re-run with --accept-new-host-keys")


def _where(where: str, step: str) -> str:
    return f"{where}, step {step}" if step else where


def _shown(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
