"""A data directory on the storage node: the commands that prepare or remove it, and what their output means.

Preparing is the runbook's ``sudo mkdir -p`` and ``sudo chown -R 10001:10001`` made
idempotent: look with ``stat`` first, then create the directory, or only give it to
its owner, or leave it; then look again to confirm. The decisions are here, pure; the
commands run over SSH in :mod:`o11yctl.deploy.remote` (install, uninstall) and
:mod:`o11yctl.doctor.fixes` (``doctor --fix``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from o11yctl.model import CommandResult

#: What ``stat`` prints for a path: ``uid:gid mode kind``.
STAT_FORMAT = "%u:%g %a %F"


@dataclass(frozen=True, slots=True)
class RemoteCommand:
    """One command for a node: argv, and whether it runs through ``sudo -n``."""

    argv: tuple[str, ...]
    sudo: bool = False
    purpose: str = ""  # "probe" (read-only) or "change"

    def display(self) -> str:
        """The command as the SSH executor sends it (``sudo -n -- argv`` when privileged)."""
        line = shlex.join(self.argv)
        return f"sudo -n -- {line}" if self.sudo else line


def prepare_commands(path: str, uid: int, gid: int) -> tuple[RemoteCommand, ...]:
    """Look, create, give to ``uid:gid``, look again, measure the filesystem: the five commands of a storage step."""
    return (
        RemoteCommand(("stat", "-c", STAT_FORMAT, path), purpose="probe"),
        RemoteCommand(("mkdir", "-p", path), sudo=True, purpose="change"),
        RemoteCommand(("chown", "-R", f"{uid}:{gid}", path), sudo=True, purpose="change"),
        RemoteCommand(("stat", "-c", STAT_FORMAT, path), purpose="probe"),
        RemoteCommand(("df", "-Pk", "--", path), purpose="probe"),
    )


def parse_df(stdout: str) -> tuple[int, int] | None:
    """Filesystem size and available bytes from ``df -Pk`` (POSIX format: 1024-byte blocks), or None."""
    lines = stdout.strip().splitlines()
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    try:
        return int(fields[1]) * 1024, int(fields[3]) * 1024
    except (IndexError, ValueError):
        return None


def room_note(size: int, fs: tuple[int, int] | None, path: str) -> str | None:
    """A warning when a volume's size does not fit the filesystem that holds its directory.

    A local volume's room is its filesystem's: Loki and Tempo stop writing when the disk is
    full, whatever the PersistentVolume says. ``size`` larger than the whole filesystem can
    never be used; larger than what is free is said too, since the data grows into it.
    """
    if fs is None:
        return None
    total, free = fs
    gib = 1 << 30
    if size > total:
        return (f"warning: the volume's size ({size / gib:.0f} GiB) is larger than the filesystem holding {path} "
                f"({total / gib:.0f} GiB, {free / gib:.0f} GiB free): the disk fills first")
    if size > free:
        return (f"note: {free / gib:.0f} GiB free on the filesystem holding {path}, less than the volume's size "
                f"({size / gib:.0f} GiB); retention or a bigger disk keeps it from filling")
    return None


def remove_commands(path: str) -> tuple[RemoteCommand, ...]:
    """Delete a data directory (``uninstall --delete-data``), never crossing into another file system."""
    return (RemoteCommand(("rm", "-rf", "--one-file-system", path), sudo=True, purpose="change"),)


def chown_commands(path: str, owner: str, *, create: bool) -> list[tuple[str, ...]]:
    """``doctor --fix``'s repair of a directory's owner (``mkdir -p`` first when it is missing), run with sudo."""
    out: list[tuple[str, ...]] = [("mkdir", "-p", path)] if create else []
    return [*out, ("chown", "-R", owner, path)]


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


#: What a storage step does about the directory it found.
Decision = Literal["create", "chown", "nothing", "not-a-directory"]


def decide(before: PathState, owner: str) -> Decision:
    """Create a missing directory, re-own one with another owner, leave a right one, refuse anything else."""
    if not before.exists:
        return "create"
    if before.kind != "directory":
        return "not-a-directory"
    return "nothing" if before.owner == owner else "chown"


def confirmed(after: PathState, owner: str) -> str | None:
    """None when the directory now exists with its owner, else what is still wrong."""
    if not after.exists:
        return "missing"
    if after.kind != "directory":
        return f"a {after.kind}"
    if after.owner != owner:
        return f"owned by {after.owner}"
    return None
