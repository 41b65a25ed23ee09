"""`move-data`'s plan as data (stack/move.py): the order of the steps, the exact commands, what their output
means, and the refusals. Pure: no cluster, no node; facts are built by hand."""

from __future__ import annotations

import itertools

import pytest

from o11yctl.config import parse_config
from o11yctl.errors import UsageError
from o11yctl.executors.kube import Response, api_error
from o11yctl.model import CommandResult
from o11yctl.stack.datadir import PathState
from o11yctl.stack.move import (
    MIN_SPARE_BYTES,
    DataMove,
    DiskFree,
    Found,
    TreeFacts,
    build_move_plan,
    copy_commands,
    data_moves,
    judge_copy,
    judge_room,
    parse_du,
    room_commands,
)

OLD, NEW = "/mnt/k8s-storage", "/srv/o11y"
CFG = parse_config(f"storage:\n  root: {NEW}\n")
KINDS = ("stop", "copy", "unbind", "volume", "start", "verify")


def found(root: str = OLD, **over: Found) -> dict[str, Found]:
    out = {c: Found(path=f"{root}/{c}", bound=True, replicas=1) for c in ("loki", "tempo")}
    out.update(over)
    return out


def ok(stdout: str) -> CommandResult:
    return CommandResult(("x",), 0, stdout, "", 0.0)


def test_a_move_is_room_then_each_component_one_after_another() -> None:
    mp = build_move_plan(CFG, data_moves(CFG, found()), found())
    steps = mp.plan.steps
    assert [s.id for s in steps] == ["room", *(f"{k}.{c}" for c in ("loki", "tempo") for k in KINDS)]
    assert [s.action for s in steps[:7]] == ["ssh", "scale", "ssh", "delete", "apply", "scale", "wait"]
    # a chain: every step waits for the one before it, so one component is down at a time
    assert all(s.depends_on == (prev.id,) for prev, s in itertools.pairwise(steps))
    assert steps[0].depends_on == ()
    by_id = {s.id: s for s in steps}
    assert by_id["unbind.loki"].manifest == by_id["volume.loki"].manifest == "01-loki-storage.yaml"
    assert by_id["start.tempo"].ready[0].describe() == "Tempo answers /ready (svc/tempo:3200)"
    assert mp.plan.needs("apply") and mp.plan.needs("ssh") and by_id["stop.loki"].kind == "apply"
    assert [(m.source, m.target, m.statefulset) for m in mp.moves] == [
        (f"{OLD}/loki", f"{NEW}/loki", "loki"), (f"{OLD}/tempo", f"{NEW}/tempo", "tempo")]


def test_the_copy_runs_on_the_node_with_sudo_and_never_removes_anything() -> None:
    move = data_moves(CFG, found())[0]
    lines = [c.display() for c in copy_commands(move).all()]
    assert lines == [
        f"sudo -n -- stat -c '%u:%g %a %F' -- {OLD}/loki",
        f"sudo -n -- mkdir -p -- {NEW}/loki",
        f"sudo -n -- du -sxk -- {OLD}/loki",
        f"sudo -n -- du -sxk -- {NEW}/loki",
        f"sudo -n -- df -Pk -- {NEW}/loki",
        f"sudo -n -- cp -a --one-file-system -- {OLD}/loki/. {NEW}/loki/",
        f"sudo -n -- du -sxb -- {OLD}/loki",
        f"sudo -n -- du -sx --inodes -- {OLD}/loki",
        f"sudo -n -- find {OLD}/loki -xdev -type d -printf '%s\\n'",
        f"sudo -n -- du -sxb -- {NEW}/loki",
        f"sudo -n -- du -sx --inodes -- {NEW}/loki",
        f"sudo -n -- find {NEW}/loki -xdev -type d -printf '%s\\n'",
        f"sudo -n -- stat -c '%u:%g %a %F' -- {NEW}/loki",
    ]
    plan = build_move_plan(CFG, data_moves(CFG, found()), found()).plan
    assert not any(c.argv[0] in ("rm", "rmdir", "mv") for s in plan.steps for c in s.commands)


def test_room_measures_each_source_and_the_nearest_existing_parent_of_each_target() -> None:
    commands = room_commands(data_moves(CFG, found()))
    assert [c.argv for _, c in commands.du] == [("du", "-sxk", "--", f"{OLD}/loki"),
                                                ("du", "-sxk", "--", f"{OLD}/tempo")]
    assert [c.argv[-1] for c in dict(commands.df)["loki"]] == [f"{NEW}/loki", NEW, "/srv", "/"]
    assert [c.argv[-1] for c in commands.all() if c.argv[0] == "df"] == [f"{NEW}/loki", NEW, "/srv", "/",
                                                                         f"{NEW}/tempo"]


def _disk(free: int, fs: str = "/dev/sdb1", mount: str = "/srv") -> DiskFree:
    return DiskFree(fs, mount, 10 * free, free)


def test_room_is_refused_when_the_copies_and_the_spare_do_not_fit() -> None:
    loki, tempo = data_moves(CFG, found())
    gib = 1 << 30
    assert judge_room([(loki, 2 * gib, _disk(4 * gib))]) == []
    # on one filesystem the copies add up: 2 + 2 GiB and 1 GiB spare do not fit in 4 GiB
    problems = judge_room([(loki, 2 * gib, _disk(4 * gib)), (tempo, 2 * gib, _disk(4 * gib))])
    assert len(problems) == 1 and "the copies of Loki" in problems[0] and "and Tempo" in problems[0]
    # on two filesystems each is judged alone
    assert judge_room([(loki, 2 * gib, _disk(4 * gib)), (tempo, 2 * gib, _disk(4 * gib, "/dev/sdc1", "/t"))]) == []
    # a small disk: even tiny data needs the spare room
    small = judge_room([(loki, 8192, _disk(MIN_SPARE_BYTES))])
    assert small and "has 1.0G free" in small[0] and "1.0G must stay free" in small[0]
    # a large copy keeps 5% of itself free
    assert judge_room([(loki, 100 * gib, _disk(104 * gib))]) and not judge_room([(loki, 100 * gib, _disk(105 * gib))])


def test_df_du_and_the_counts_are_read_as_the_tools_print_them() -> None:
    df = DiskFree.parse(ok("Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
                           "/dev/sdb1       1000 200 800 20% /mnt/big disk\n"))
    assert df == DiskFree("/dev/sdb1", "/mnt/big disk", 1000 * 1024, 800 * 1024)
    assert DiskFree.parse(CommandResult(("df",), 1, "", "df: /x: No such file or directory", 0.0)) is None
    assert parse_du(ok("1234\t/mnt/k8s-storage/loki\n")) == 1234
    tree = TreeFacts.parse(ok("12288\t/x\n"), ok("5\t/x\n"), ok("4096\n4096\n"))
    assert tree is not None and (tree.file_bytes, tree.non_dirs) == (4096, 3)


def test_a_copy_differing_from_its_source_is_named() -> None:
    move = data_moves(CFG, found())[0]
    src, same = TreeFacts(12288, 5, (4096, 4096)), TreeFacts(4096 + 40, 5, (20, 20))  # other directory sizes
    owner = PathState(True, "10001:10001", "750", "directory")
    assert judge_copy(move, src, same, owner, owner) is None
    extra = judge_copy(move, src, TreeFacts(4096 + 40 + 10, 6, (20, 20)), owner, owner)
    assert extra is not None and "holds 3 files and 2 directories" in extra and "/srv/o11y/loki 4 and 2" in extra
    assert "holds 4096 bytes in files, /srv/o11y/loki 4106" in extra
    root_owned = judge_copy(move, src, same, owner, PathState(True, "0:0", "755", "directory"))
    assert root_owned is not None and "0:0 mode 755" in root_owned


def test_what_the_cluster_shows_decides_what_is_left_to_do() -> None:
    at_target = {c: Found(path=f"{NEW}/{c}", bound=True, replicas=1) for c in ("loki", "tempo")}
    done = build_move_plan(CFG, data_moves(CFG, at_target), at_target)
    assert done.plan.steps == () and done.done == ("loki", "tempo")
    # an interrupted move: Loki's volume re-created but its claim not Bound; Tempo left stopped after its volume
    half = {"loki": Found(path=f"{NEW}/loki", bound=False, replicas=0, stopped_by_move=1),
            "tempo": Found(path=f"{NEW}/tempo", bound=True, replicas=0, stopped_by_move=1)}
    rest = build_move_plan(CFG, data_moves(CFG, half), half)
    assert [s.id for s in rest.plan.steps] == ["stop.loki", "volume.loki", "start.loki", "verify.loki",
                                               "start.tempo", "verify.tempo"]
    # the volume is gone: where the data is comes from --from
    gone = {"loki": Found(path=None, bound=False, replicas=0, stopped_by_move=1), "tempo": at_target["tempo"]}
    moves = data_moves(CFG, gone, OLD)
    assert moves[0].source == f"{OLD}/loki"
    assert [s.id for s in build_move_plan(CFG, moves, gone).plan.steps][:3] == ["room", "stop.loki", "copy.loki"]


@pytest.mark.parametrize(("facts", "from_root", "message"), [
    (found(), "/elsewhere", "--from /elsewhere says Loki's data is in /elsewhere/loki"),
    ({"tempo": Found(path=f"{OLD}/tempo")}, None, "PersistentVolume loki-pv does not exist"),
    (found(), "relative/path", "--from: expected an absolute path"),
    (found(), "/mnt/with space", "--from: '/mnt/with space' contains characters"),
    (found(root=f"{NEW}/loki/old"), None, "lie one inside the other"),
])
def test_moves_that_cannot_be_made_are_usage_errors(facts: dict[str, Found], from_root: str | None,
                                                     message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as info:
        data_moves(CFG, facts, from_root)
    assert info.value.hint


def test_a_target_inside_the_old_data_is_refused() -> None:
    inside = parse_config(f"storage:\n  root: {OLD}/loki\n")
    with pytest.raises(UsageError, match="lie one inside the other"):
        data_moves(inside, found())


def test_the_dry_run_of_a_plan_shows_every_command() -> None:
    plan = build_move_plan(CFG, data_moves(CFG, {}, OLD)).plan
    copy = next(s for s in plan.steps if s.id == "copy.tempo")
    assert f"node-2$ sudo -n -- cp -a --one-file-system -- {OLD}/tempo/. {NEW}/tempo/" in copy.display_lines()
    stop = next(s for s in plan.steps if s.id == "stop.loki")
    assert "PATCH the scale subresource of StatefulSet logging/loki: spec.replicas 0" in stop.display_lines()


def test_install_refused_for_a_new_path_points_to_move_data() -> None:
    body = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Invalid","code":422,"message":'
            b'"PersistentVolume \\"loki-pv\\" is invalid: spec.persistentvolumesource: Forbidden: '
            b'spec.persistentvolumesource is immutable after creation"}')
    error = api_error(Response(422, {}, body), "apply PersistentVolume loki-pv")
    assert "o11yctl move-data" in (error.hint or "") and "cannot change after creation" in (error.hint or "")
    other = api_error(Response(422, {}, b'{"message":"PersistentVolumeClaim \\"x\\" is invalid: spec"}'), "apply")
    assert "move-data" not in (other.hint or "")


def test_data_move_copies_only_when_the_paths_differ() -> None:
    same = DataMove("loki", "Loki", "loki", "loki-pv", "loki-pvc", "01-loki-storage.yaml", "/a", "/a", "node-2")
    assert not same.copies
