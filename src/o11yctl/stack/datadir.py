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
    """Look, create, give to ``uid:gid``, look again: the four commands of a storage step."""
    return (
        RemoteCommand(("stat", "-c", STAT_FORMAT, path), purpose="probe"),
        RemoteCommand(("mkdir", "-p", path), sudo=True, purpose="change"),
        RemoteCommand(("chown", "-R", f"{uid}:{gid}", path), sudo=True, purpose="change"),
        RemoteCommand(("stat", "-c", STAT_FORMAT, path), purpose="probe"),
    )


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
