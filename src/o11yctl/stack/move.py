"""Moving the data directories to a new ``storage.root``: the plan, its commands and what their output means. Pure.

A local PersistentVolume's path cannot change (``spec.persistentvolumesource`` is
immutable), so a changed ``storage.root`` is a move: for each data component, one after
another, stop it (its StatefulSet scaled to 0 through the ``scale`` subresource), copy its
directory on the storage node itself (``cp -a`` keeps owner, modes, links and times; the
copy is compared with the source before anything else changes), delete its claim and
volume (reclaim policy ``Retain``: the data is not touched), apply the rendered volume
with the new path and wait until the claim is Bound again, start it (back to the replicas
it had), and run its verify checks. The source directory is never deleted: the user
deletes it once satisfied.

A ``room`` step comes first: the data is measured with ``du`` and the target's
filesystem with ``df``, and the move is refused (nothing changed) when the copies and a
margin (:data:`MIN_SPARE_BYTES`, :data:`SPARE_SHARE`) do not fit. Each copy step
measures again right before it copies.

Which steps a component needs follows from what the cluster shows (:class:`Found`):
a re-run after an interrupted move finishes the job (re-binds a claim, starts a stopped
StatefulSet) and a finished move changes nothing. The executor is
:mod:`o11yctl.deploy.move`.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from o11yctl.config import Config, RemotePath
from o11yctl.errors import UsageError
from o11yctl.model import CommandResult
from o11yctl.stack.components import Component
from o11yctl.stack.context import data_dir, stack_of
from o11yctl.stack.datadir import STAT_FORMAT, PathState, RemoteCommand
from o11yctl.stack.plan import Plan, ReadyCheck, Step
from o11yctl.stack.quantity import human_bytes

#: The annotation a stop leaves on the StatefulSet: the replicas it had, so a re-run after an
#: interrupted move starts it again with as many.
REPLICAS_ANNOTATION = "o11yctl/replicas-before-move"
#: The target's filesystem must keep this much free once the copies are made (Loki and Tempo
#: write their WAL at once when they start)...
MIN_SPARE_BYTES = 1 << 30
#: ...or this share of the copied data, whichever is more.
SPARE_SHARE = 0.05

_REMOTE_PATH: TypeAdapter[str] = TypeAdapter(RemotePath)


@dataclass(frozen=True, slots=True)
class Found:
    """What the cluster shows about one data component before the move.

    Attributes:
        path: the directory its PersistentVolume points at (``spec.local.path``); None: no volume.
        bound: its claim is Bound to its volume.
        replicas: its StatefulSet's ``spec.replicas`` (None: no StatefulSet).
        stopped_by_move: the replicas an earlier, interrupted move recorded when it stopped it.
    """

    path: str | None = None
    bound: bool = False
    replicas: int | None = None
    stopped_by_move: int | None = None


@dataclass(frozen=True, slots=True)
class DataMove:
    """One data component's directory, where it is and where the config wants it."""

    component: str
    title: str
    statefulset: str  # the StatefulSet of its release (named after the release in the charts)
    pv: str
    pvc: str
    manifest: str  # the rendered file with its PV and claim
    source: str
    target: str
    node: str

    @property
    def copies(self) -> bool:
        return self.source != self.target


@dataclass(frozen=True, slots=True)
class MovePlan:
    """The plan, the moves it carries out, and the components already where the config wants them."""

    plan: Plan
    moves: tuple[DataMove, ...]
    done: tuple[str, ...] = ()

    def move(self, component: str) -> DataMove:
        return next(m for m in self.moves if m.component == component)


def remote_path(value: str, what: str) -> str:
    """An absolute path o11yctl may put into remote commands (the config's rule for ``storage.root``).

    Raises:
        UsageError: it is not absolute, or holds characters outside ``A-Za-z0-9._-+/``.
    """
    try:
        return _REMOTE_PATH.validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0].get("msg", "not a usable path").removeprefix("Value error, ")
        raise UsageError(f"{what}: {reason}", hint="give an absolute path such as /mnt/k8s-storage") from None


def data_moves(cfg: Config, found: Mapping[str, Found], from_root: str | None = None) -> tuple[DataMove, ...]:
    """Each data component's move, from where its volume points (or ``--from``) to ``<storage.root>/<dir>``.

    Args:
        cfg: the configuration (its ``storage.root`` is the target).
        found: per component, what the cluster shows (empty for an offline ``--dry-run``).
        from_root: the old ``storage.root`` (``--from``): the source of a component without a volume.

    Raises:
        UsageError: ``--from`` disagrees with a volume, or a source is unknown; the paths overlap.
    """
    old_root = remote_path(from_root, "--from") if from_root is not None else None
    out = []
    for c in stack_of(cfg).data:
        assert c.volume is not None and c.release is not None
        facts = found.get(c.name, Found())
        expected = posixpath.join(old_root, c.volume.directory) if old_root is not None else None
        if facts.path is not None:
            source = remote_path(facts.path, f"PersistentVolume {c.volume.pv}'s spec.local.path")
            if expected is not None and source not in (expected, data_dir(cfg, c)):
                raise UsageError(f"--from {old_root} says {c.title}'s data is in {expected}, but PersistentVolume "
                                 f"{c.volume.pv} points at {source}",
                                 hint="leave --from out: the volumes say where the data is")
        elif expected is not None:
            source = expected
        else:
            raise UsageError(f"PersistentVolume {c.volume.pv} does not exist, so where {c.title}'s data is now is "
                             "unknown", hint="give the old storage.root: o11yctl move-data --from OLD_ROOT")
        out.append(DataMove(c.name, c.title, c.release, c.volume.pv, c.volume.pvc, c.volume.manifest, source,
                            data_dir(cfg, c), cfg.storage.node))
    check_paths(out)
    return tuple(out)


def _inside(path: str, other: str) -> bool:
    return path == other or path.startswith(other.rstrip("/") + "/")


def check_paths(moves: Sequence[DataMove]) -> None:
    """Refuse a target inside a source or a source inside a target: ``cp`` would copy into itself or another
    component's data.

    Raises:
        UsageError: two of the paths nest.
    """
    copying = [m for m in moves if m.copies]
    for m in copying:
        for other in moves:
            if _inside(m.target, other.source) or _inside(other.source, m.target):
                raise UsageError(f"{m.title}'s new directory {m.target} and {other.title}'s data in {other.source} "
                                 "lie one inside the other",
                                 hint="choose a storage.root outside the old data directories, e.g. a sibling of the "
                                      "old root")


# --- the commands --------------------------------------------------------------------------------------


def ancestors(path: str) -> tuple[str, ...]:
    """``path`` and each directory above it, up to ``/`` (``df`` needs a path that exists)."""
    out = [path]
    while path != "/":
        path = posixpath.dirname(path) or "/"
        out.append(path)
    return tuple(out)


def du_command(path: str) -> RemoteCommand:
    """The disk space ``path`` uses, in KiB, on its own filesystem only (as ``cp --one-file-system`` copies)."""
    return RemoteCommand(("du", "-sxk", "--", path), sudo=True, purpose="probe")


def df_command(path: str) -> RemoteCommand:
    """The size and free space of the filesystem holding ``path``, in KiB (POSIX format)."""
    return RemoteCommand(("df", "-Pk", "--", path), sudo=True, purpose="probe")


@dataclass(frozen=True, slots=True)
class RoomCommands:
    """The room step's commands: ``du`` of each source, then ``df`` of each target or its nearest existing parent."""

    du: tuple[tuple[str, RemoteCommand], ...]  # (component, command)
    df: tuple[tuple[str, tuple[RemoteCommand, ...]], ...]  # (component, candidates, first to last)

    def all(self) -> tuple[RemoteCommand, ...]:
        out = [c for _, c in self.du]
        for _, candidates in self.df:
            out += [c for c in candidates if c not in out]
        return tuple(out)


def room_commands(moves: Sequence[DataMove]) -> RoomCommands:
    copying = [m for m in moves if m.copies]
    return RoomCommands(du=tuple((m.component, du_command(m.source)) for m in copying),
                        df=tuple((m.component, tuple(df_command(p) for p in ancestors(m.target))) for m in copying))


@dataclass(frozen=True, slots=True)
class CopyCommands:
    """One copy step's commands, in the order they run."""

    stat_source: RemoteCommand
    mkdir: RemoteCommand
    du_source: RemoteCommand
    du_target: RemoteCommand
    df_target: RemoteCommand
    copy: RemoteCommand
    count_source: tuple[RemoteCommand, RemoteCommand, RemoteCommand]  # bytes, entries, directory sizes
    count_target: tuple[RemoteCommand, RemoteCommand, RemoteCommand]
    stat_target: RemoteCommand

    def all(self) -> tuple[RemoteCommand, ...]:
        return (self.stat_source, self.mkdir, self.du_source, self.du_target, self.df_target, self.copy,
                *self.count_source, *self.count_target, self.stat_target)


def _count(path: str) -> tuple[RemoteCommand, RemoteCommand, RemoteCommand]:
    """Bytes and entries under ``path`` (each inode once, hard links too), and the sizes of its directories.

    A directory's own size depends on its filesystem and history, so the copy is compared on the
    entries and on the bytes of everything that is not a directory.
    """
    return (RemoteCommand(("du", "-sxb", "--", path), sudo=True, purpose="probe"),
            RemoteCommand(("du", "-sx", "--inodes", "--", path), sudo=True, purpose="probe"),
            RemoteCommand(("find", path, "-xdev", "-type", "d", "-printf", "%s\\n"), sudo=True, purpose="probe"))


def copy_commands(move: DataMove) -> CopyCommands:
    """Look at the source, make the target, measure, copy on the node (``cp -a``, one filesystem), compare.

    ``SRC/.`` into ``DST/`` copies the directory's content and gives ``DST`` the source directory's
    owner and mode; nothing is ever removed.
    """
    src, dst = move.source, move.target
    return CopyCommands(
        stat_source=RemoteCommand(("stat", "-c", STAT_FORMAT, "--", src), sudo=True, purpose="probe"),
        mkdir=RemoteCommand(("mkdir", "-p", "--", dst), sudo=True, purpose="change"),
        du_source=du_command(src),
        du_target=du_command(dst),
        df_target=df_command(dst),
        copy=RemoteCommand(("cp", "-a", "--one-file-system", "--", f"{src}/.", f"{dst}/"), sudo=True,
                           purpose="change"),
        count_source=_count(src),
        count_target=_count(dst),
        stat_target=RemoteCommand(("stat", "-c", STAT_FORMAT, "--", dst), sudo=True, purpose="probe"),
    )


# --- what the output means -------------------------------------------------------------------------------


def parse_du(result: CommandResult) -> int | None:
    """The number ``du -s`` printed first (KiB with ``-k``, bytes with ``-b``, entries with ``--inodes``)."""
    if not result.ok:
        return None
    first = result.stdout.split()[:1]
    return int(first[0]) if first and first[0].isdigit() else None


@dataclass(frozen=True, slots=True)
class DiskFree:
    """One line of ``df -Pk``: the filesystem, where it is mounted, its size and free space in bytes."""

    filesystem: str
    mount: str
    size_bytes: int
    free_bytes: int

    @classmethod
    def parse(cls, result: CommandResult) -> DiskFree | None:
        if not result.ok:
            return None
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if len(lines) < 2:
            return None
        fields = lines[-1].split(None, 5)
        if len(fields) < 6 or not (fields[1].isdigit() and fields[3].isdigit()):
            return None
        return cls(fields[0], fields[5], int(fields[1]) * 1024, int(fields[3]) * 1024)

    def describe(self) -> str:
        return f"{self.filesystem} mounted on {self.mount}"


def spare(copied: int) -> int:
    """What must stay free on the target's filesystem once ``copied`` bytes are written there."""
    return max(MIN_SPARE_BYTES, int(copied * SPARE_SHARE))


def judge_room(needs: Sequence[tuple[DataMove, int, DiskFree]]) -> list[str]:
    """Why the copies do not fit (empty: they do). Copies landing on one filesystem are added up.

    Args:
        needs: per move, the bytes still to copy and the target's filesystem.
    """
    by_fs: dict[tuple[str, str], tuple[DiskFree, list[tuple[DataMove, int]]]] = {}
    for move, size, disk in needs:
        by_fs.setdefault((disk.filesystem, disk.mount), (disk, []))[1].append((move, size))
    problems = []
    for disk, moves in by_fs.values():
        total = sum(size for _, size in moves)
        wanted = total + spare(total)
        if disk.free_bytes < wanted:
            what = " and ".join(f"{m.title} ({human_bytes(size)} to {m.target})" for m, size in moves)
            problems.append(f"not enough room on {moves[0][0].node}: {disk.describe()} has "
                            f"{human_bytes(disk.free_bytes)} free; the copies of {what} need {human_bytes(total)} "
                            f"and {human_bytes(spare(total))} must stay free")
    return problems


@dataclass(frozen=True, slots=True)
class TreeFacts:
    """What the three counting commands say about a directory tree."""

    total_bytes: int  # du -sxb: every inode once, directories included
    entries: int  # du -sx --inodes
    dir_sizes: tuple[int, ...]  # find -type d -printf %s

    @property
    def file_bytes(self) -> int:
        return self.total_bytes - sum(self.dir_sizes)

    @property
    def non_dirs(self) -> int:
        return self.entries - len(self.dir_sizes)

    @classmethod
    def parse(cls, du_bytes: CommandResult, du_inodes: CommandResult, dirs: CommandResult) -> TreeFacts | None:
        total, entries = parse_du(du_bytes), parse_du(du_inodes)
        if total is None or entries is None or not dirs.ok:
            return None
        try:
            sizes = tuple(int(line) for line in dirs.stdout.split())
        except ValueError:
            return None
        return cls(total, entries, sizes)


def judge_copy(move: DataMove, source: TreeFacts, target: TreeFacts, source_dir: PathState,
               target_dir: PathState) -> str | None:
    """None when the copy holds what the source holds (entries, directories, bytes, top directory's owner and
    mode), else what differs."""
    problems = []
    if (source.non_dirs, len(source.dir_sizes)) != (target.non_dirs, len(target.dir_sizes)):
        problems.append(f"{move.source} holds {source.non_dirs} files and {len(source.dir_sizes)} directories, "
                        f"{move.target} {target.non_dirs} and {len(target.dir_sizes)}")
    if source.file_bytes != target.file_bytes:
        problems.append(f"{move.source} holds {source.file_bytes} bytes in files, {move.target} {target.file_bytes}")
    if (source_dir.owner, source_dir.mode) != (target_dir.owner, target_dir.mode):
        problems.append(f"{move.target} is {target_dir.owner} mode {target_dir.mode}, the source "
                        f"{source_dir.owner} mode {source_dir.mode}")
    return "; ".join(problems) or None


# --- the plan --------------------------------------------------------------------------------------------


def _steps_for(cfg: Config, c: Component, move: DataMove, found: Found, after: tuple[str, ...]) -> list[Step]:
    """The steps one component needs, given what the cluster shows."""
    ns = cfg.cluster.namespace
    sts = f"StatefulSet {ns}/{move.statefulset}"
    if move.copies:
        kinds = ["stop", "copy", "unbind", "volume", "start", "verify"]
    elif not found.bound:
        kinds = ["stop", "volume", "start", "verify"]
    elif found.stopped_by_move is not None:
        kinds = ["start", "verify"]
    else:
        return []
    ready: tuple[ReadyCheck, ...] = ()
    if c.endpoint is not None and c.endpoint.ready_path:
        ready = (ReadyCheck(c.title, c.endpoint.service, c.endpoint.port, c.endpoint.ready_path),)
    steps: list[Step] = []
    for kind in kinds:
        sid = f"{kind}.{c.name}"
        if kind == "stop":
            step = Step(sid, c.name, "scale", f"stop {move.title}: {sts} to 0 replicas", owner=c.name,
                        waits_for=(f"record the replicas of {sts} in its annotation {REPLICAS_ANNOTATION}",
                                   f"PATCH the scale subresource of {sts}: spec.replicas 0",
                                   f"wait until the pods of {sts} are gone"))
        elif kind == "copy":
            step = Step(sid, c.name, "ssh", f"copy {move.source} to {move.target} on {move.node} (owner and modes "
                        f"kept; {move.source} stays)", host=move.node, commands=copy_commands(move).all(),
                        owner=c.name)
        elif kind == "unbind":
            step = Step(sid, c.name, "delete", f"delete PersistentVolumeClaim {ns}/{move.pvc}, then PersistentVolume "
                        f"{move.pv} (reclaim policy Retain: the data in {move.source} is not touched)",
                        manifest=move.manifest, owner=c.name)
        elif kind == "volume":
            step = Step(sid, c.name, "apply", f"PersistentVolume {move.pv} at {move.target} and PersistentVolumeClaim "
                        f"{ns}/{move.pvc}, Bound again", manifest=move.manifest, owner=c.name)
        elif kind == "start":
            waits = (f"PATCH the scale subresource of {sts}: spec.replicas back to what it had (recorded by the stop)",
                     f"wait until the pods of {sts} are Running and Ready", *(r.describe() for r in ready),
                     f"remove the annotation {REPLICAS_ANNOTATION}")
            step = Step(sid, c.name, "scale", f"start {move.title} again on {move.target}", owner=c.name,
                        waits_for=waits, ready=ready)
        else:
            step = Step(sid, c.name, "wait", f"{move.title}'s verify checks pass at the new place",
                        waits_for=(f"`o11yctl verify --only cluster,{c.name}`: its claim Bound, its pod Ready, "
                                   f"its data in {move.target}, and the {c.name} checks pass",),
                        ready=ready, owner=c.name)
        steps.append(dataclasses.replace(step, depends_on=after))
        after = (sid,)
    return steps


def build_move_plan(cfg: Config, moves: Sequence[DataMove], found: Mapping[str, Found] | None = None) -> MovePlan:
    """The move as steps: ``room`` first when anything is copied, then each component's steps, one after another.

    Args:
        cfg: the configuration (its rendered volume files carry the new paths).
        moves: from :func:`data_moves`.
        found: what the cluster shows per component (None: an offline dry run, where every component whose
            source differs from its target is moved and the others are taken as done).
    """
    stack = stack_of(cfg)
    steps: list[Step] = []
    copying = [m for m in moves if m.copies]
    after: tuple[str, ...] = ()
    if copying:
        titles = " and ".join(m.title for m in copying)
        steps.append(Step("room", "storage", "ssh", f"measure the data of {titles} and the free space where it goes "
                          f"on {cfg.storage.node}", host=cfg.storage.node, commands=room_commands(moves).all()))
        after = ("room",)
    done = []
    for move in moves:
        facts = (found or {}).get(move.component, Found(path=move.source, bound=True))
        component_steps = _steps_for(cfg, stack.get(move.component), move, facts, after)
        if not component_steps:
            done.append(move.component)
        steps += component_steps
        after = (steps[-1].id,) if steps else after
    return MovePlan(Plan(config=cfg, steps=tuple(steps), selected=tuple(m.component for m in moves)), tuple(moves),
                    tuple(done))
