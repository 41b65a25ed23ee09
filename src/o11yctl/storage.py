"""Storage on the storage node: prepare the data directories (install's ``ssh`` steps) and read their usage.

Preparing is the runbook's ``sudo mkdir -p`` and ``sudo chown -R 10001:10001`` made
idempotent: look with ``stat`` first, then create the directory (``created``), or
only give it to the owner (``changed``), or leave it (``unchanged``); then confirm
with ``stat``. The commands are exactly the step's (what ``install --dry-run``
prints). Reading usage is the runbook's ``du -sh``, plus ``df`` for the filesystem.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from o11yctl.errors import O11yError, RemoteError, SudoPasswordRequired
from o11yctl.model import CommandResult, Outcome, SshTarget, StepResult

if TYPE_CHECKING:
    from o11yctl.apply import Handler
    from o11yctl.config import Config
    from o11yctl.executors.ssh import SshPool
    from o11yctl.install import InstallOptions
    from o11yctl.plan import Plan, RemoteCommand, Step

#: Components whose data lives under storage.root on the storage node.
DATA_COMPONENTS: tuple[str, ...] = ("loki", "tempo")


@contextmanager
def ssh_handler(plan: Plan, options: InstallOptions,
                carry_out: Callable[[SshPool, SshTarget, Step], StepResult]) -> Iterator[Handler]:
    """A handler for a plan's ``ssh`` steps, with its SSH connections open for the run.

    Every host the plan's ssh steps name is connected to first, in parallel, so a host key,
    authentication or network problem stops the run before anything changed.

    Args:
        plan: the plan whose ``ssh`` steps the handler will carry out.
        options: the command's options (host-key acceptance, sudo password).
        carry_out: what one step does on its host, given the pool and the host's target.

    Yields:
        The handler: it finds the step's host and calls ``carry_out``.

    Raises:
        UnreachableError: a host cannot be reached or authenticated (exit 3; nothing changed).
        HostKeyError: a host key is unknown or changed (exit 3; nothing changed).
    """
    from o11yctl.executors.ssh import SshOptions, SshPool, ssh_target

    cfg = plan.config
    ssh_options = SshOptions.from_config(cfg, accept_new_host_keys=options.accept_new_host_keys,
                                         sudo_password=options.sudo_password)
    hosts = list(dict.fromkeys(s.host for s in plan.steps if s.kind == "ssh" and s.host))
    targets = {name: ssh_target(cfg.node(name)) for name in hosts}
    with SshPool(ssh_options) as pool:
        preflight(pool, list(targets.values()))

        def handle(step: Step) -> StepResult:
            if step.host is None or step.host not in targets:
                raise O11yError(f"step {step.id} names no known node", hint="this is a bug in o11yctl's plan")
            return carry_out(pool, targets[step.host], step)

        yield handle


def storage_handler(plan: Plan, options: InstallOptions) -> AbstractContextManager[Handler]:
    """The handler for install's storage steps: create and chown each data directory (see ssh_handler)."""
    return ssh_handler(plan, options, prepare_storage)


def preflight(pool: SshPool, targets: Sequence[SshTarget]) -> None:
    """Connect to every target at once; raise the first failure, naming every host that failed.

    Raises:
        O11yError: the error of the first failing host (its exit code; 3 for unreachable or host keys).
    """
    results = pool.map(targets, lambda t: pool.connect(t, step="preflight"))
    errors = [r for r in results.values() if isinstance(r, O11yError)]
    if not errors:
        return
    first = errors[0]
    if len(errors) == 1:
        raise first
    others = "; ".join(e.message for e in errors[1:])
    raise O11yError(f"{first.message}; also: {others}", hint=first.hint, exit_code=first.exit_code) from first


# --- preparing a data directory ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathState:
    """What ``stat -c '%u:%g %a %F'`` says about a path."""

    exists: bool
    owner: str = ""  # "uid:gid"
    mode: str = ""  # octal, e.g. "755"
    kind: str = ""  # "directory", "regular file", ...

    @classmethod
    def parse(cls, result: CommandResult) -> PathState | None:
        """The state from a stat result; None when stat failed for another reason than a missing path."""
        if result.ok:
            fields = result.stdout.strip().split(" ", 2)
            if len(fields) == 3:
                return cls(exists=True, owner=fields[0], mode=fields[1], kind=fields[2])
            return None
        if "No such file or directory" in result.stderr:
            return cls(exists=False)
        return None


@dataclass(frozen=True, slots=True)
class _StorageCommands:
    probe: RemoteCommand
    mkdir: RemoteCommand
    chown: RemoteCommand
    confirm: RemoteCommand

    @property
    def path(self) -> str:
        return self.probe.argv[-1]

    @property
    def owner(self) -> str:
        return self.chown.argv[-2]


def _commands(step: Step) -> _StorageCommands:
    """The step's four commands (stat, mkdir -p, chown -R, stat), as the plan built them."""
    names = tuple(c.argv[0] for c in step.commands)
    if names != ("stat", "mkdir", "chown", "stat"):
        raise O11yError(f"step {step.id}: unexpected commands {names}", hint="this is a bug in o11yctl's plan")
    probe, mkdir, chown, confirm = step.commands
    return _StorageCommands(probe, mkdir, chown, confirm)


def prepare_storage(pool: SshPool, target: SshTarget, step: Step) -> StepResult:
    """Carry out one storage step: probe, create or re-own only what differs, confirm.

    Args:
        pool: the run's SSH connections.
        target: the storage node.
        step: a ``storage.<component>`` step of the plan.

    Returns:
        ``created`` (directory made and owned), ``changed`` (owner fixed) or ``unchanged``.

    Raises:
        RemoteError: a command failed, the path is not a directory, or the owner is still wrong afterwards.
        SudoPasswordRequired: sudo wants a password and none was given.
    """
    started = time.monotonic()
    cmds = _commands(step)
    before = _stat(pool, target, cmds.probe, step.id)
    outcome: Outcome
    if not before.exists:
        _run_ok(pool, target, cmds.mkdir, step.id)
        _run_ok(pool, target, cmds.chown, step.id)
        outcome, detail = "created", f"created {cmds.path}, owned by {cmds.owner}"
    elif before.kind != "directory":
        raise RemoteError(f"{target.name}, step {step.id}: {cmds.path} exists but is a {before.kind}, not a directory",
                          hint="move it out of the way on the node, then re-run")
    elif before.owner != cmds.owner:
        _run_ok(pool, target, cmds.chown, step.id)
        outcome, detail = "changed", f"{cmds.path} was owned by {before.owner}, now {cmds.owner}"
    else:
        return StepResult(step.id, step.component, "unchanged", f"{cmds.path} already owned by {cmds.owner}",
                          host=target.name, seconds=time.monotonic() - started)
    after = _stat(pool, target, cmds.confirm, step.id)
    if not after.exists or after.kind != "directory" or after.owner != cmds.owner:
        found = f"owned by {after.owner}" if after.exists else "missing"
        raise RemoteError(f"{target.name}, step {step.id}: {cmds.path} is still {found} after "
                          f"`{cmds.chown.display()}`",
                          hint="check the filesystem on the node (read-only? NFS with root squash?)")
    return StepResult(step.id, step.component, outcome, detail, host=target.name, seconds=time.monotonic() - started)


def _stat(pool: SshPool, target: SshTarget, command: RemoteCommand, step_id: str) -> PathState:
    result = pool.run(target, command.argv, sudo=command.sudo, step=step_id)
    if not result.ok and not command.sudo and "Permission denied" in result.stderr:
        # A parent directory the login user may not enter: look again as root.
        result = pool.run(target, command.argv, sudo=True, step=step_id)
    state = PathState.parse(result)
    if state is None:
        raise _failed(target, command, result, step_id)
    return state


def _run_ok(pool: SshPool, target: SshTarget, command: RemoteCommand, step_id: str) -> CommandResult:
    result = pool.run(target, command.argv, sudo=command.sudo, step=step_id)
    if not result.ok:
        raise _failed(target, command, result, step_id)
    return result


def _failed(target: SshTarget, command: RemoteCommand, result: CommandResult, step_id: str) -> RemoteError:
    tail = "\n".join((result.stderr.strip() or result.stdout.strip()).splitlines()[-10:]) or "(no output)"
    return RemoteError(f"{target.name}, step {step_id}: `{command.display()}` failed with exit {result.exit_code}: "
                       f"{tail}", hint="fix the cause on the node, then re-run; finished steps are skipped")


# --- usage ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirUsage:
    """How much one data directory holds, and how full its filesystem is (the runbook's ``du -sh``)."""

    component: str
    host: str
    path: str
    exists: bool
    used_bytes: int | None = None
    #: False when du could not read everything (some files unreadable without sudo).
    complete: bool = True
    fs_size_bytes: int | None = None
    fs_free_bytes: int | None = None
    error: str | None = None

    @property
    def used_human(self) -> str:
        """``du -sh`` style size, e.g. ``1.5G``; ``-`` when unknown."""
        return human_bytes(self.used_bytes)

    def to_json(self) -> dict[str, object]:
        return {
            "component": self.component,
            "host": self.host,
            "path": self.path,
            "exists": self.exists,
            "used_bytes": self.used_bytes,
            "complete": self.complete,
            "fs_size_bytes": self.fs_size_bytes,
            "fs_free_bytes": self.fs_free_bytes,
            "error": self.error,
        }


def usage_commands(path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``du`` and ``df`` argument lists for one data directory (sizes in KiB)."""
    return ("du", "-sk", "--", path), ("df", "-Pk", "--", path)


def read_usage(cfg: Config, pool: SshPool, *, components: Sequence[str] = DATA_COMPONENTS,
               step: str = "usage") -> tuple[DirUsage, ...]:
    """Read the size of each data directory and the free space of its filesystem, over SSH.

    ``du`` runs as the login user first; where it cannot read everything it runs again through
    ``sudo -n`` (with the pool's sudo password, if any). Without sudo the size is a lower bound
    (``complete`` False).

    Args:
        cfg: the configuration (storage node and root).
        pool: SSH connections.
        components: which data directories (default loki and tempo).
        step: the step name for error messages.

    Returns:
        One :class:`DirUsage` per component, in order.

    Raises:
        UnreachableError: the storage node cannot be reached.
        HostKeyError: its host key is unknown or changed.
    """
    from o11yctl.context import data_dir
    from o11yctl.executors.ssh import ssh_target

    target = ssh_target(cfg.storage_node)
    out: list[DirUsage] = []
    for component in components:
        path = data_dir(cfg, component)
        du_argv, df_argv = usage_commands(path)
        du, complete = _run_as_user_then_root(pool, target, du_argv, step)
        if not du.ok and "No such file or directory" in du.stderr:
            fs_size, fs_free = _df(pool, target, ("df", "-Pk", "--", cfg.storage.root), step)
            if fs_size is None:
                fs_size, fs_free = _df(pool, target, ("df", "-Pk", "--", "/"), step)
            out.append(DirUsage(component, target.name, path, exists=False, fs_size_bytes=fs_size,
                                fs_free_bytes=fs_free))
            continue
        used = _du_bytes(du.stdout)
        error = None if used is not None else (du.stderr.strip().splitlines() or [f"exit {du.exit_code}"])[-1]
        fs_size, fs_free = _df(pool, target, df_argv, step)
        out.append(DirUsage(component, target.name, path, exists=True, used_bytes=used, complete=complete,
                            fs_size_bytes=fs_size, fs_free_bytes=fs_free, error=error))
    return tuple(out)


def _run_as_user_then_root(pool: SshPool, target: SshTarget, argv: tuple[str, ...],
                           step: str) -> tuple[CommandResult, bool]:
    """Run as the login user; where that cannot read everything, again through sudo if sudo allows.

    Returns the result to use and whether it saw everything.
    """
    result = pool.run(target, argv, step=step)
    if result.ok or "Permission denied" not in result.stderr:
        return result, result.ok
    try:
        as_root = pool.run(target, argv, sudo=True, step=step)
    except SudoPasswordRequired:
        return result, False
    if as_root.ok or "No such file or directory" in as_root.stderr:
        return as_root, as_root.ok
    return result, False


def _du_bytes(stdout: str) -> int | None:
    """``1234\\t/path`` -> 1234 KiB in bytes."""
    for line in stdout.splitlines():
        first = line.split("\t", 1)[0].strip()
        if first.isdigit():
            return int(first) * 1024
    return None


def _df(pool: SshPool, target: SshTarget, argv: tuple[str, ...], step: str) -> tuple[int | None, int | None]:
    """Filesystem size and available bytes from ``df -Pk`` (POSIX format), or (None, None)."""
    result, _ = _run_as_user_then_root(pool, target, argv, step)
    if not result.ok:
        return None, None
    lines = result.stdout.strip().splitlines()
    if len(lines) < 2:
        return None, None
    fields = lines[-1].split()
    try:
        return int(fields[1]) * 1024, int(fields[3]) * 1024
    except (IndexError, ValueError):
        return None, None


def human_bytes(value: int | None) -> str:
    """``du -h`` style: 0, 512K, 1.5M, 20G; ``-`` for None."""
    if value is None:
        return "-"
    if value < 1024:
        return str(value)
    size, units = value / 1024, "KMGTP"
    while size >= 1024 and len(units) > 1:
        size, units = size / 1024, units[1:]
    return f"{size:.1f}{units[0]}" if size < 10 else f"{size:.0f}{units[0]}"
