"""`o11yctl move-data`: move Loki's and Tempo's data to the config's ``storage.root``, on the storage node.

The order of a run (the plan itself, and why, is :mod:`o11yctl.stack.move`):

1. read the cluster: where each data component's PersistentVolume points (``spec.local.path``),
   whether its claim is Bound, and its StatefulSet (named after its release). ``--dry-run
   --from OLD_ROOT`` reads nothing; ``--dry-run`` alone reads only these objects;
2. build the plan and, with ``--dry-run``, stop there and show every step and command;
3. connect to the storage node and run the ``room`` step (``du`` and ``df``): not enough room
   is a refusal with nothing changed (exit 3);
4. ask (or ``--yes``), then walk the steps one after another: per component stop, copy
   (on the node, with ``sudo``; never through this machine), unbind, volume, start, verify;
5. on a failure or Ctrl-C no new step starts; a component that was stopped is scaled back to
   the replicas it had when its claim is still Bound (its data is where the claim points: the old
   directory, or the verified copy); one whose claim is gone stays stopped, and the report says
   how to finish. The old directories are never deleted: the summary names them and the
   command that deletes them, to run once satisfied.
"""

from __future__ import annotations

import posixpath
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from o11yctl.config import Config
from o11yctl.deploy.walk import Callbacks, Handler, StepFailed, apply_plan
from o11yctl.errors import EXIT_FAILED, KubeError, O11yError, PreflightError, RemoteError
from o11yctl.model import CommandResult, Outcome, Report, SshTarget, StepResult
from o11yctl.stack.context import stack_of
from o11yctl.stack.datadir import PathState, RemoteCommand, remove_commands
from o11yctl.stack.move import (
    REPLICAS_ANNOTATION,
    DataMove,
    DiskFree,
    Found,
    MovePlan,
    TreeFacts,
    build_move_plan,
    copy_commands,
    data_moves,
    judge_copy,
    judge_room,
    parse_du,
    room_commands,
)
from o11yctl.stack.plan import Action, Plan, Step
from o11yctl.stack.quantity import human_bytes
from o11yctl.stack.render import render_config

if TYPE_CHECKING:
    from o11yctl.access import Access

Confirm = Callable[[str, Sequence[str]], bool]

#: The slowest copy o11yctl waits for (bytes per second): ``cp`` may run ``size / rate`` seconds.
MIN_COPY_RATE = 10 << 20
#: Measuring a large tree (``du``, ``find``) may take this long.
PROBE_TIMEOUT = 600.0
APPS = "apps/v1"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True, slots=True)
class MoveOptions:
    """What ``move-data`` was asked to do, besides how to reach the cluster and the node."""

    from_root: str | None = None  # --from: the old storage.root, for volumes that are gone or an offline dry run
    assume_yes: bool = False
    wait_timeout: float | None = None  # pods Ready after a start (default: charts.timeout)
    stop_timeout: float = 600.0  # pods gone after a stop
    poll_interval: float = 2.0
    verify_timeout: float = 120.0


# --- reading the cluster ---------------------------------------------------------------------------------


def read_found(cfg: Config, kube: Any) -> dict[str, Found]:
    """What the cluster shows about each data component: its volume's path, its claim, its StatefulSet.

    Raises:
        PreflightError: a volume is not a local volume, or a StatefulSet is missing (exit 3).
    """
    ns = cfg.cluster.namespace
    out: dict[str, Found] = {}
    for c in stack_of(cfg).data:
        assert c.volume is not None and c.release is not None
        pv = kube.get("v1", "PersistentVolume", c.volume.pv)
        path = None
        if pv is not None:
            path = ((pv.get("spec") or {}).get("local") or {}).get("path")
            if not path:
                raise PreflightError(f"PersistentVolume {c.volume.pv} is not a local volume (no spec.local.path): "
                                     "o11yctl moves only the local volumes it made; nothing was changed",
                                     hint=f"see it: kubectl get pv {c.volume.pv} -o yaml")
        pvc = kube.get("v1", "PersistentVolumeClaim", c.volume.pvc, ns)
        bound = bool(pvc) and (pvc.get("status") or {}).get("phase") == "Bound" and \
            (pvc.get("spec") or {}).get("volumeName") == c.volume.pv
        sts = kube.get(APPS, "StatefulSet", c.release, ns)
        if sts is None:
            raise PreflightError(f"StatefulSet {ns}/{c.release} does not exist: move-data stops and starts "
                                 f"{c.title} through it; nothing was changed",
                                 hint=f"is the release installed? `o11yctl status`; `o11yctl install --only {c.name}`")
        replicas = (sts.get("spec") or {}).get("replicas", 1)
        recorded = ((sts.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_ANNOTATION)
        out[c.name] = Found(path=str(path) if path else None, bound=bool(bound), replicas=int(replicas),
                            stopped_by_move=int(recorded) if recorded and recorded.isdigit() else None)
    return out


def _refuse_stopped(cfg: Config, mp: MovePlan, found: Mapping[str, Found]) -> None:
    """A StatefulSet someone else scaled to 0 has no replicas to come back to, and its data could not be verified."""
    ns = cfg.cluster.namespace
    for move in mp.moves:
        facts = found.get(move.component)
        touched = any(s.owner == move.component for s in mp.plan.steps)
        if touched and facts is not None and facts.replicas == 0 and facts.stopped_by_move is None:
            raise PreflightError(
                f"StatefulSet {ns}/{move.statefulset} is scaled to 0, and not by o11yctl: after the move it could "
                "not be started and verified at the new place; nothing was changed",
                hint=f"start it first: kubectl scale statefulset -n {ns} {move.statefulset} --replicas=1")


# --- the dry run -------------------------------------------------------------------------------------------


def _moves_doc(mp: MovePlan) -> list[dict[str, Any]]:
    return [{"component": m.component, "source": m.source, "target": m.target, "node": m.node, "pv": m.pv,
             "pvc": m.pvc, "statefulset": m.statefulset, "moves": m.copies,
             "state": "done" if m.component in mp.done else "to do"} for m in mp.moves]


def _step_lines(mp: MovePlan, step: Step) -> list[str]:
    """What ``--dry-run`` shows under a step: the exact commands, objects and waits."""
    lines = step.display_lines()
    if step.id == "room":
        lines.append("(df: the first of these paths that exists; the move is refused, nothing changed, when the "
                     "copies and the spare room do not fit)")
    elif step.action in ("delete", "apply") and step.owner:
        move = mp.move(step.owner)
        if step.action == "apply":
            lines.append(f"PersistentVolume {move.pv}: spec.local.path {move.target}")
        else:
            lines.append(f"PersistentVolumeClaim {mp.plan.config.cluster.namespace}/{move.pvc}, then "
                         f"PersistentVolume {move.pv}; wait until both are gone")
    return lines


def plan_doc(mp: MovePlan) -> list[dict[str, Any]]:
    return [{"n": n, "id": s.id, "component": s.component, "kind": s.kind, "description": s.description,
             "host": s.host, "commands": _step_lines(mp, s), "manifest": s.manifest, "depends_on": list(s.depends_on)}
            for n, s in enumerate(mp.plan.steps, 1)]


def dry_run_report(cfg: Config, access: Access | None, from_root: str | None) -> Report:
    """The move as a plan, every step ``skipped``. With ``from_root`` and no ``access`` nothing is contacted;
    otherwise only the volumes, claims and StatefulSets are read."""
    found: dict[str, Found] | None = None
    if access is not None:
        try:
            kube = _kube(access)
        except PreflightError as exc:
            raise PreflightError(exc.message, hint=f"{exc.hint + '; ' if exc.hint else ''}or plan offline: "
                                                   "o11yctl move-data --from OLD_ROOT --dry-run") from exc
        found = read_found(cfg, kube)
    mp = build_move_plan(cfg, data_moves(cfg, found or {}, from_root), found)
    items = tuple(StepResult(s.id, s.component, "skipped", "\n".join([s.description, *_step_lines(mp, s)]),
                             host=s.host) for s in mp.plan.steps)
    where = "nothing was contacted or changed" if found is None else "the cluster was read; nothing was changed"
    summary = (f"dry run: {len(mp.plan.steps)} steps planned; {where}" if mp.plan.steps
               else f"dry run: nothing to move, the data is already under {cfg.storage.root}; {where}")
    return Report("move-data", items=items, summary=summary,
                  extra={"mode": "dry-run", "offline": found is None, "moves": _moves_doc(mp),
                         "plan": plan_doc(mp)})


def _kube(access: Access) -> Any:
    try:
        kube = access.kube()
        kube.server_version()
    except O11yError as exc:
        raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
    return kube


# --- the scale subresource -----------------------------------------------------------------------------------


def _scale_path(kube: Any, ns: str, name: str) -> str:
    return f"{kube.path(APPS, 'StatefulSet', name, ns)}/scale"


def read_scale(kube: Any, ns: str, name: str) -> dict[str, Any]:
    """The ``autoscaling/v1`` Scale of a StatefulSet."""
    from o11yctl.executors.kube import api_error

    what = f"read the scale of StatefulSet {ns}/{name}"
    resp = kube.request("GET", _scale_path(kube, ns, name), what=what)
    if resp.status != 200:
        raise api_error(resp, what)
    return dict(resp.json())


def set_replicas(kube: Any, ns: str, name: str, replicas: int) -> dict[str, Any]:
    """Set ``spec.replicas`` through the scale subresource (what ``kubectl scale`` does); the new Scale."""
    from o11yctl.executors.kube import FIELD_MANAGER, api_error

    what = f"scale StatefulSet {ns}/{name} to {replicas}"
    resp = kube.request("PATCH", _scale_path(kube, ns, name), body={"spec": {"replicas": replicas}},
                        content_type=MERGE_PATCH, query={"fieldManager": FIELD_MANAGER}, what=what)
    if resp.status != 200:
        raise api_error(resp, what)
    return dict(resp.json())


def _annotate(kube: Any, ns: str, name: str, value: str | None) -> None:
    kube.merge_patch(APPS, "StatefulSet", name, ns, {"metadata": {"annotations": {REPLICAS_ANNOTATION: value}}})


# --- the run ---------------------------------------------------------------------------------------------------


@dataclass
class MoveRun:
    """One run's connections and what it learnt on the way (the replicas each StatefulSet had)."""

    cfg: Config
    access: Any
    kube: Any
    mp: MovePlan
    options: MoveOptions
    deployer: Any = None
    pool: Any = None
    target: SshTarget | None = None
    replicas: dict[str, int] = field(default_factory=dict)
    found: dict[str, Found] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep

    @property
    def ns(self) -> str:
        return self.cfg.cluster.namespace

    # --- ssh --------------------------------------------------------------------------------------

    def _run(self, command: RemoteCommand, step: str, timeout: float | None = None) -> CommandResult:
        assert self.target is not None
        result: CommandResult = self.pool.run(self.target, command.argv, sudo=command.sudo, timeout=timeout,
                                              step=step)
        return result

    def _ok(self, command: RemoteCommand, step: str, timeout: float | None = None) -> CommandResult:
        result = self._run(command, step, timeout)
        if not result.ok:
            raise _failed(self.cfg.storage.node, command, result, step)
        return result

    def _probe_timeout(self) -> float:
        return max(self.cfg.ssh.command_timeout, PROBE_TIMEOUT)

    def room(self, step: Step) -> StepResult:
        """Measure each source and the free space where its copy goes; refuse when they do not fit."""
        commands = room_commands(self.mp.moves)
        if commands.all() != step.commands:
            raise O11yError(f"step {step.id}: unexpected commands", hint="this is a bug in o11yctl's plan")
        node = self.cfg.storage.node
        sizes: dict[str, int] = {}
        for component, du in commands.du:
            move = self.mp.move(component)
            result = self._run(du, step.id, self._probe_timeout())
            kib = parse_du(result)
            if kib is None:
                if "No such file or directory" in result.stderr:
                    raise PreflightError(f"{move.title}'s data directory {move.source} (where PersistentVolume "
                                         f"{move.pv} points) does not exist on {node}",
                                         hint="check the path on the node; if the data is elsewhere, give the old "
                                              "storage.root with --from")
                raise _failed(node, du, result, step.id)
            sizes[component] = kib * 1024
        needs = []
        for component, candidates in commands.df:
            disk = None
            for df in candidates:
                result = self._run(df, step.id)
                disk = DiskFree.parse(result)
                if disk is not None:
                    break
                if "No such file or directory" not in result.stderr:
                    raise _failed(node, df, result, step.id)
            if disk is None:
                raise RemoteError(f"{node}, step {step.id}: df found no filesystem for "
                                  f"{self.mp.move(component).target}", hint="check that df works there over SSH")
            needs.append((self.mp.move(component), sizes[component], disk))
        problems = judge_room(needs)
        if problems:
            raise PreflightError("; ".join(problems),
                                 hint="make room on that filesystem, or choose another storage.root; `o11yctl status` "
                                      "shows what the data uses")
        detail = "; ".join(f"{m.title}: {human_bytes(size)} to copy, {human_bytes(disk.free_bytes)} free on "
                           f"{disk.describe()}" for m, size, disk in needs)
        return StepResult(step.id, step.component, "unchanged", detail, host=node)

    def copy(self, step: Step) -> StepResult:
        """Copy one directory on the node, then compare the copy with the source; the source stays."""
        move = self.mp.move(step.owner)
        cc = copy_commands(move)
        if cc.all() != step.commands:
            raise O11yError(f"step {step.id}: unexpected commands", hint="this is a bug in o11yctl's plan")
        node = move.node
        before = PathState.parse(self._run(cc.stat_source, step.id))
        if before is None or not before.exists or before.kind != "directory":
            what = "does not exist" if before is not None and not before.exists else \
                f"is a {before.kind}" if before is not None else "cannot be read"
            raise RemoteError(f"{node}, step {step.id}: {move.source} {what}; nothing was copied",
                              hint="check the path on the node; if the data is elsewhere, give the old storage.root "
                                   "with --from")
        self._ok(cc.mkdir, step.id)
        used_src = parse_du(self._ok(cc.du_source, step.id, self._probe_timeout()))
        used_dst = parse_du(self._ok(cc.du_target, step.id, self._probe_timeout()))
        disk = DiskFree.parse(self._ok(cc.df_target, step.id))
        if used_src is None or used_dst is None or disk is None:
            raise RemoteError(f"{node}, step {step.id}: could not read du or df output for {move.source} and "
                              f"{move.target}", hint="check that du and df work there over SSH")
        to_copy = max(0, used_src - used_dst) * 1024
        problems = judge_room([(move, to_copy, disk)])
        if problems:
            raise RemoteError(f"{'; '.join(problems)}; nothing was copied",
                              hint="make room on that filesystem (the data grew since the room step?), then re-run")
        timeout = max(self._probe_timeout(), used_src * 1024 / MIN_COPY_RATE)
        self._ok(cc.copy, step.id, timeout)
        source = TreeFacts.parse(*(self._ok(c, step.id, self._probe_timeout()) for c in cc.count_source))
        copied = TreeFacts.parse(*(self._ok(c, step.id, self._probe_timeout()) for c in cc.count_target))
        after = PathState.parse(self._run(cc.stat_target, step.id))
        if source is None or copied is None or after is None or not after.exists:
            raise RemoteError(f"{node}, step {step.id}: could not count what {move.source} and {move.target} hold",
                              hint=f"{move.source} is untouched; check du and find on the node, then re-run")
        different = judge_copy(move, source, copied, before, after)
        if different:
            raise RemoteError(f"{node}, step {step.id}: the copy differs from the source: {different}",
                              hint=f"{move.source} is untouched and still in use; look at {move.target} (did it hold "
                                   "files before?), empty it and re-run")
        return StepResult(step.id, step.component, "changed",
                          f"copied {human_bytes(source.file_bytes)} ({source.non_dirs} files, "
                          f"{len(source.dir_sizes)} directories) to {move.target}, owner {after.owner} mode "
                          f"{after.mode} kept; {move.source} kept", host=node)

    # --- scaling ------------------------------------------------------------------------------------

    def stop(self, step: Step) -> StepResult:
        """Record the replicas, scale to 0 through the scale subresource, wait until the pods are gone."""
        move = self.mp.move(step.owner)
        sts = self.kube.get(APPS, "StatefulSet", move.statefulset, self.ns)
        if sts is None:
            raise KubeError(f"StatefulSet {self.ns}/{move.statefulset} does not exist any more",
                            hint="is the release still installed? `o11yctl status`")
        replicas = int((sts.get("spec") or {}).get("replicas", 1))
        recorded = ((sts.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_ANNOTATION)
        if replicas > 0:
            if recorded != str(replicas):
                _annotate(self.kube, self.ns, move.statefulset, str(replicas))
            self.replicas[move.component] = replicas
            scale = set_replicas(self.kube, self.ns, move.statefulset, 0)
            outcome: Outcome = "changed"
            what = f"scaled StatefulSet {self.ns}/{move.statefulset} from {replicas} to 0"
        else:
            if not (recorded and recorded.isdigit() and int(recorded) > 0):
                raise KubeError(f"StatefulSet {self.ns}/{move.statefulset} is at 0 replicas and o11yctl did not record "
                                "how many it had", hint=f"scale it up first: kubectl scale statefulset -n {self.ns} "
                                                        f"{move.statefulset} --replicas=1")
            self.replicas[move.component] = int(recorded)
            scale = read_scale(self.kube, self.ns, move.statefulset)
            outcome, what = "unchanged", f"StatefulSet {self.ns}/{move.statefulset} already at 0"
        selector = str((scale.get("status") or {}).get("selector") or "")
        gone = self._wait_no_pods(move, selector)
        return StepResult(step.id, step.component, outcome,
                          f"{what} (it had {self.replicas[move.component]}); {gone}")

    def _wait_no_pods(self, move: DataMove, selector: str) -> str:
        from o11yctl.deploy.cluster import backoff

        deadline = time.monotonic() + self.options.stop_timeout
        pauses = backoff(0.1, self.options.poll_interval)
        seen: set[str] = set()
        while True:
            pods = self.kube.list("v1", "Pod", self.ns, label_selector=selector or None)
            seen |= {p["metadata"]["name"] for p in pods}
            if not pods:
                return f"its pods are gone ({', '.join(sorted(seen))})" if seen else "it had no pods"
            if time.monotonic() >= deadline:
                names = ", ".join(p["metadata"]["name"] for p in pods)
                raise KubeError(f"the pods of StatefulSet {self.ns}/{move.statefulset} ({names}) are still there "
                                f"{self.options.stop_timeout:g}s after it was scaled to 0",
                                hint=f"see why: kubectl describe pod -n {self.ns} {pods[0]['metadata']['name']} "
                                     "(finalizers, a node that does not answer)")
            self.sleep(min(next(pauses), max(0.0, deadline - time.monotonic())))

    def _replicas_of(self, move: DataMove) -> int:
        if move.component in self.replicas:
            return self.replicas[move.component]
        sts = self.kube.get(APPS, "StatefulSet", move.statefulset, self.ns) or {}
        recorded = ((sts.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_ANNOTATION)
        if recorded and recorded.isdigit():
            return int(recorded)
        return max(1, int((sts.get("spec") or {}).get("replicas", 1)))

    def start(self, step: Step) -> StepResult:
        """Scale back to the replicas it had, wait until its pods are Ready and it answers, drop the record."""
        move = self.mp.move(step.owner)
        replicas = self._replicas_of(move)
        set_replicas(self.kube, self.ns, move.statefulset, replicas)
        detail = self.deployer.wait_release(move.statefulset, step)
        _annotate(self.kube, self.ns, move.statefulset, None)
        return StepResult(step.id, step.component, "changed",
                          f"scaled StatefulSet {self.ns}/{move.statefulset} to {replicas}; {detail}")

    # --- verify -------------------------------------------------------------------------------------

    def verify(self, step: Step) -> StepResult:
        """The component's verify checks, and the cluster checks of its claim, pod and data directory."""
        from o11yctl.verify.run import VerifyOptions, run_verify

        c = step.owner
        report = run_verify(self.cfg, self.access, VerifyOptions(only=["cluster", c],
                                                                 timeout=self.options.verify_timeout))
        mine = [i for i in report.items if getattr(i, "group", "") == c
                or (getattr(i, "group", "") == "cluster" and i.id.endswith(f".{c}"))]
        failed = [i for i in mine if getattr(i, "status", "") == "FAIL"]
        move = self.mp.move(c)
        if failed or not mine:
            first = failed[0] if failed else None
            why = f"{first.id}: {first.detail}" if first is not None else "no check ran"
            raise O11yError(f"{move.title} runs on {move.target} but `verify --only cluster,{c}` fails: {why}",
                            hint=getattr(first, "hint", None) or f"the old data is kept in {move.source}; `o11yctl "
                                                                 "doctor` names the cause", exit_code=EXIT_FAILED)
        passed = [i.id for i in mine if getattr(i, "status", "") == "PASS"]
        warned = [i.id for i in mine if getattr(i, "status", "") == "WARN"]
        detail = f"verify: {len(passed)} passed ({', '.join(passed)})" + (f"; warnings: {', '.join(warned)}"
                                                                          if warned else "")
        return StepResult(step.id, step.component, "unchanged", detail)

    # --- after a failure ------------------------------------------------------------------------------

    def recover(self, items: Sequence[Any]) -> list[StepResult]:
        """Scale back what was stopped and not started again, where its claim is still Bound."""
        outcome = {i.id: i.outcome for i in items if isinstance(i, StepResult)}
        planned = {s.id for s in self.mp.plan.steps}
        out = []
        for move in self.mp.moves:
            c = move.component
            if f"start.{c}" not in planned or outcome.get(f"start.{c}") in ("changed", "unchanged", "failed"):
                continue  # not stopped by this plan, started again, or its start ran (and scaled it up) but failed
            # a stop that ran (even one that failed waiting), or a StatefulSet an earlier run left stopped
            stopped = outcome.get(f"stop.{c}") in ("changed", "unchanged", "failed") or (
                f"stop.{c}" not in planned and self.found.get(c, Found()).stopped_by_move is not None)
            if not stopped:
                continue
            sid = f"restart.{c}"
            pvc = self.kube.get("v1", "PersistentVolumeClaim", move.pvc, self.ns)
            bound = pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound"
            if not bound:
                old_root = posixpath.dirname(move.source)
                out.append(StepResult(sid, c, "skipped",
                                      f"{move.title} stays stopped: its claim {self.ns}/{move.pvc} is not Bound (the "
                                      f"volume step did not finish); the data is in {move.source}"
                                      + (f" and its copy in {move.target}" if outcome.get(f"copy.{c}") == "changed"
                                         else "")
                                      + f"; finish with `o11yctl move-data --from {old_root}`"))
                continue
            replicas = self._replicas_of(move)
            volume = (pvc.get("spec") or {}).get("volumeName") or move.pv
            try:
                set_replicas(self.kube, self.ns, move.statefulset, replicas)
                ready = Step(sid, c, "scale", "", ready=next((s.ready for s in self.mp.plan.steps
                                                              if s.id == f"start.{c}"), ()))
                detail = self.deployer.wait_release(move.statefulset, ready)
                _annotate(self.kube, self.ns, move.statefulset, None)
            except O11yError as exc:
                out.append(StepResult(sid, c, "failed", f"scaling {move.statefulset} back to {replicas} failed: "
                                                         f"{exc.message}"))
                continue
            out.append(StepResult(sid, c, "changed", f"scaled StatefulSet {self.ns}/{move.statefulset} back to "
                                                     f"{replicas} on its claim's volume {volume}; {detail}"))
        return out


def _failed(node: str, command: RemoteCommand, result: CommandResult, step: str) -> RemoteError:
    tail = "\n".join((result.stderr.strip() or result.stdout.strip()).splitlines()[-10:]) or "(no output)"
    return RemoteError(f"{node}, step {step}: `{command.display()}` failed with exit {result.exit_code}: {tail}",
                       hint="fix the cause on the node, then run `o11yctl move-data` again")


def delete_command(cfg: Config, paths: Sequence[str]) -> str:
    """The command that deletes the old directories, from this machine: ssh to the storage node, then the
    ``rm`` of ``uninstall --delete-data`` (never crossing into another filesystem)."""
    node = cfg.storage_node
    ssh = ["ssh", *(["-p", str(node.ssh_port)] if node.ssh_port else []),
           f"{node.ssh_user}@{node.ssh_target_host}" if node.ssh_user else node.ssh_target_host]
    rm = remove_commands(paths[0])[0].argv[:-1]  # rm -rf --one-file-system
    return shlex.join([*ssh, "sudo", *rm, "--", *paths])


def run_move_data(cfg: Config, access: Access, options: MoveOptions | None = None, *,
                  callbacks: Callbacks | None = None, confirm: Confirm | None = None) -> Report:
    """Move each data directory to ``<storage.root>/<dir>`` (see the module docstring).

    Raises:
        UsageError: ``--from`` disagrees with the volumes, or the paths overlap (exit 2).
        PreflightError: the cluster or the node cannot be reached, a StatefulSet is missing, or the target
            lacks room; nothing was changed (exit 3).
        O11yError: the move was not confirmed; nothing was changed.
        StepFailed: a step failed or the run was interrupted; the report says what was done, and what was
            started again.
    """
    from o11yctl.deploy.cluster import Deployer, DeployOptions

    options = options or MoveOptions()
    kube = _kube(access)
    found = read_found(cfg, kube)
    moves = data_moves(cfg, found, options.from_root)
    mp = build_move_plan(cfg, moves, found)
    extra: dict[str, Any] = {"moves": _moves_doc(mp)}
    if not mp.plan.steps:
        return Report("move-data", items=(), extra=extra,
                      summary=f"nothing to move: the data of {_titles(mp.moves)} is already under {cfg.storage.root}")
    _refuse_stopped(cfg, mp, found)
    run = MoveRun(cfg, access, kube, mp, options, found=found)
    with ExitStack() as stack:
        run.deployer = Deployer(mp.plan, kube, None, render_config(cfg), DeployOptions(
            wait_timeout=options.wait_timeout, poll_interval=options.poll_interval))
        stack.callback(run.deployer.cleanup)
        handlers: dict[Action, Handler] = {
            "ssh": lambda step: run.room(step) if step.id == "room" else run.copy(step),
            "scale": lambda step: run.stop(step) if step.id.startswith("stop.") else run.start(step),
            "delete": run.deployer.delete_step,
            "apply": run.deployer.apply_step,
            "wait": run.verify,
        }
        if mp.plan.needs("ssh"):
            from o11yctl.deploy.remote import connect_all
            from o11yctl.executors.ssh import ssh_target

            run.pool = access.ssh()
            run.target = ssh_target(cfg.storage_node)
            connect_all(run.pool, [run.target])
        first = tuple(s for s in mp.plan.steps if s.id == "room")
        rest = tuple(s for s in mp.plan.steps if s.id != "room")
        done: tuple[Any, ...] = ()
        if first:
            done = apply_plan(Plan(cfg, first, mp.plan.selected), handlers, callbacks=callbacks,
                              command="move-data").items
        lines = [f"{m.title}: {m.source} -> {m.target} on {m.node}" for m in mp.moves if m.component not in mp.done]
        if not options.assume_yes and not (confirm and confirm(
                f"Move the data now? {_titles(mp.moves)} stop, one at a time, while theirs is copied; the old "
                "directories are kept.", lines)):
            raise O11yError("nothing was changed: the move was not confirmed",
                            hint="see every step first with `o11yctl move-data --dry-run`; --yes skips the question")
        try:
            report = apply_plan(Plan(cfg, rest, mp.plan.selected), handlers, callbacks=callbacks,
                                command="move-data")
        except StepFailed as exc:
            try:
                recovered = run.recover(exc.report.items)
            except KeyboardInterrupt:
                recovered = []
            exc.report = Report("move-data", items=(*done, *exc.report.items, *recovered),
                                exit_code=exc.report.exit_code, extra=extra)
            said = [exc.hint] if exc.hint else []
            said += [f"{mp.move(r.component).title} was started again" for r in recovered if r.outcome == "changed"]
            said += [f"{mp.move(r.component).title} stays stopped (see {r.id})" for r in recovered
                     if r.outcome != "changed"]
            kept = [m.source for m in mp.moves if m.copies]
            if kept:
                said.append(f"the old directories are kept: {', '.join(kept)}")
            exc.hint = "; ".join(said)
            raise
    old = [m.source for m in mp.moves if m.copies]
    extra.update({"old_directories": old, "delete_old": delete_command(cfg, old) if old else None})
    moved = [m for m in mp.moves if m.component not in mp.done]
    summary = f"moved {_titles(moved)} to {cfg.storage.root} on {cfg.storage.node}, verified"
    if old:
        summary += (f"; the old directories are kept: {', '.join(old)}. Once satisfied, delete them: "
                    f"{extra['delete_old']}")
    return Report("move-data", items=(*done, *report.items), summary=summary, extra=extra)


def _titles(moves: Sequence[DataMove]) -> str:
    names = [m.title for m in moves]
    return " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]


__all__ = ["MoveOptions", "dry_run_report", "read_found", "run_move_data"]
