"""How full the data directories are, read over SSH: the runbook's ``du -sh``, plus ``df`` for the filesystem.

``status`` shows it; an install or a size change compares a volume's size with the free
space it finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from o11yctl.errors import SudoPasswordRequired
from o11yctl.model import CommandResult, SshTarget
from o11yctl.stack.quantity import human_bytes

if TYPE_CHECKING:
    from o11yctl.config import Config
    from o11yctl.executors.ssh import SshPool



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


def read_usage(cfg: Config, pool: SshPool, *, components: Sequence[str] | None = None,
               step: str = "usage") -> tuple[DirUsage, ...]:
    """Read the size of each data directory and the free space of its filesystem, over SSH.

    ``du`` runs as the login user first; where it cannot read everything it runs again through
    ``sudo -n`` (with the pool's sudo password, if any). Without sudo the size is a lower bound
    (``complete`` False).

    Args:
        cfg: the configuration (storage node and root).
        pool: SSH connections.
        components: which data directories (default: every data component's).
        step: the step name for error messages.

    Returns:
        One :class:`DirUsage` per component, in order.

    Raises:
        UnreachableError: the storage node cannot be reached.
        HostKeyError: its host key is unknown or changed.
    """
    from o11yctl.executors.ssh import ssh_target
    from o11yctl.stack.context import data_dir, stack_of

    target = ssh_target(cfg.storage_node)
    out: list[DirUsage] = []
    for component in components if components is not None else [c.name for c in stack_of(cfg).data]:
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
    from o11yctl.stack.datadir import parse_df

    result, _ = _run_as_user_then_root(pool, target, argv, step)
    parsed = parse_df(result.stdout) if result.ok else None
    return parsed if parsed is not None else (None, None)
