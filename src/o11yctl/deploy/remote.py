"""The ``ssh`` steps of a plan: prepare a data directory (install) or remove it (uninstall --delete-data).

Every host the plan's ssh steps name is connected to first, in parallel, so a host key,
authentication or network problem stops the run before anything changed. The
commands are exactly the step's (what ``install --dry-run`` prints); what their output
means is decided in :mod:`o11yctl.stack.datadir`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from o11yctl.errors import O11yError, RemoteError
from o11yctl.model import CommandResult, Outcome, SshTarget, StepResult
from o11yctl.stack.datadir import PathState, RemoteCommand, confirmed, decide, parse_df, room_note

if TYPE_CHECKING:
    from o11yctl.access import Access
    from o11yctl.deploy.walk import Handler
    from o11yctl.executors.ssh import SshPool
    from o11yctl.stack.plan import Plan, Step

#: Carries out one ssh step on its host.
CarryOut = Callable[["SshPool", SshTarget, "Step"], StepResult]


@contextmanager
def ssh_handler(plan: Plan, access: Access, carry_out: CarryOut) -> Iterator[Handler]:
    """A handler for a plan's ``ssh`` steps, every host the steps name connected first.

    Args:
        plan: the plan whose ``ssh`` steps the handler will carry out.
        access: the command's access (its SSH pool, host-key policy, sudo password).
        carry_out: what one step does on its host.

    Yields:
        The handler: it finds the step's host and calls ``carry_out``.

    Raises:
        UnreachableError: a host cannot be reached or authenticated (exit 3; nothing changed).
        HostKeyError: a host key is unknown or changed (exit 3; nothing changed).
    """
    from o11yctl.executors.ssh import ssh_target

    cfg = plan.config
    hosts = list(dict.fromkeys(s.host for s in plan.steps if s.action == "ssh" and s.host))
    targets = {name: ssh_target(cfg.node(name)) for name in hosts}
    pool = access.ssh()
    connect_all(pool, list(targets.values()))

    def handle(step: Step) -> StepResult:
        if step.host is None or step.host not in targets:
            raise O11yError(f"step {step.id} names no known node", hint="this is a bug in o11yctl's plan")
        return carry_out(pool, targets[step.host], step)

    yield handle


def connect_all(pool: SshPool, targets: Sequence[SshTarget]) -> None:
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


def prepare_storage(pool: SshPool, target: SshTarget, step: Step) -> StepResult:
    """Carry out one storage step: look, create or re-own only what differs, confirm.

    Args:
        pool: the run's SSH connections.
        target: the storage node.
        step: a ``storage.<component>`` step of the plan (stat, mkdir -p, chown -R, stat).

    Returns:
        ``created`` (directory made and owned), ``changed`` (owner fixed) or ``unchanged``.

    Raises:
        RemoteError: a command failed, the path is not a directory, or the owner is still wrong afterwards.
        SudoPasswordRequired: sudo wants a password and none was given.
    """
    started = time.monotonic()
    names = tuple(c.argv[0] for c in step.commands)
    if names != ("stat", "mkdir", "chown", "stat", "df"):
        raise O11yError(f"step {step.id}: unexpected commands {names}", hint="this is a bug in o11yctl's plan")
    probe, mkdir, chown, confirm, df = step.commands
    path, owner = probe.argv[-1], chown.argv[-2]
    before = _stat(pool, target, probe, step.id)
    outcome: Outcome
    decision = decide(before, owner)
    if decision == "nothing":
        detail = _with_room(f"{path} already owned by {owner}", pool, target, df, step)
        return StepResult(step.id, step.component, "unchanged", detail, host=target.name,
                          seconds=time.monotonic() - started)
    if decision == "not-a-directory":
        raise RemoteError(f"{target.name}, step {step.id}: {path} exists but is a {before.kind}, not a directory",
                          hint="move it out of the way on the node, then re-run")
    if decision == "create":
        _run_ok(pool, target, mkdir, step.id)
        _run_ok(pool, target, chown, step.id)
        outcome, detail = "created", f"created {path}, owned by {owner}"
    else:
        _run_ok(pool, target, chown, step.id)
        outcome, detail = "changed", f"{path} was owned by {before.owner}, now {owner}"
    wrong = confirmed(_stat(pool, target, confirm, step.id), owner)
    if wrong is not None:
        raise RemoteError(f"{target.name}, step {step.id}: {path} is still {wrong} after `{chown.display()}`",
                          hint="check the filesystem on the node (read-only? NFS with root squash?)")
    detail = _with_room(detail, pool, target, df, step)
    return StepResult(step.id, step.component, outcome, detail, host=target.name, seconds=time.monotonic() - started)


def _with_room(detail: str, pool: SshPool, target: SshTarget, df: RemoteCommand, step: Step) -> str:
    """The step's detail, with a warning when the volume's size does not fit the filesystem (df)."""
    from o11yctl.stack.quantity import quantity_bytes

    size = quantity_bytes(step.room)
    if size is None:
        return detail
    result = pool.run(target, df.argv, sudo=df.sudo, step=step.id)
    if not result.ok and "Permission denied" in result.stderr:  # a parent the login user may not enter
        result = pool.run(target, df.argv, sudo=True, step=step.id)
    note = room_note(size, parse_df(result.stdout) if result.ok else None, df.argv[-1])
    return f"{detail}; {note}" if note else detail


def remove_data_dir(pool: SshPool, target: SshTarget, step: Step) -> StepResult:
    """Carry out one ``uninstall --delete-data`` storage step: remove the directory if it is there."""
    (command,) = step.commands
    path = command.argv[-1]
    probe = pool.run(target, ("test", "-e", path), sudo=True, step=step.id)
    if probe.exit_code == 1:
        return StepResult(step.id, step.component, "unchanged", f"{path} not present", host=step.host)
    _run_ok(pool, target, command, step.id)
    return StepResult(step.id, step.component, "changed", f"deleted {path}", host=step.host)


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
