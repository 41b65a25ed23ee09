"""Run fix-vxlan against the nodes: diagnose, plan, fix, diagnose again, restart K3s if asked.

The only part of :mod:`o11yctl.vxlan` that talks to the nodes, and only through a runner with
the SSH pool's ``run``/``map`` interface, so every phase runs on all nodes at once. When a
cluster is reachable, the runbook's pod test (:mod:`~o11yctl.vxlan.podping`) runs last and
adds its rows; the exit code still comes from the diagnosis over SSH.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from o11yctl.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, O11yError, UnreachableError, UsageError
from o11yctl.model import CheckResult, CommandResult, Outcome, Report, SshTarget, StepResult
from o11yctl.vxlan.diagnose import GROUP, Diagnosis, NodeError, judge
from o11yctl.vxlan.facts import NodeFacts, PingFacts
from o11yctl.vxlan.fix import FixPlan, FixStep, plan_fix, restart_steps
from o11yctl.vxlan.remote import (
    BatchCommand,
    batch_script,
    parse_batch,
    parse_ping,
    parse_probe,
    ping_argv,
    probe_commands,
)

if TYPE_CHECKING:
    from o11yctl.access import Access
    from o11yctl.config import Config

T = TypeVar("T")
COMMAND = "fix-vxlan"
_POLL_SECONDS = 2.0


class Runner(Protocol):
    """What fix-vxlan needs from the SSH pool."""

    def run(self, target: SshTarget, argv: Sequence[str], *, sudo: bool = False, timeout: float | None = None,
            step: str = "") -> CommandResult: ...

    def map(self, targets: Sequence[SshTarget], fn: Callable[[SshTarget], T]) -> dict[str, T | O11yError]: ...


@dataclass(frozen=True, slots=True)
class FixVxlanOptions:
    """The command's flags.

    Attributes:
        check: only diagnose.
        dry_run: diagnose and print the exact commands a fix would run; change nothing.
        restart: restart K3s on the nodes that changed or still fail, after the fix.
        assume_yes: answer yes to "restart K3s?" when the overlay still fails.
        fix_checksum_offload: also turn off tx-checksum-ip-generic on the VXLAN device.
        pod_test: also run the runbook's pod test when a cluster is reachable (not with ``dry_run``).
        pod_test_timeout: seconds the test pods may take, image pull included.
    """

    check: bool = False
    dry_run: bool = False
    restart: bool = False
    assume_yes: bool = False
    fix_checksum_offload: bool = False
    pod_test: bool = False
    pod_test_timeout: float = 60.0


def run_fix_vxlan(cfg: Config, access: Access, options: FixVxlanOptions | None = None, *,
                  on_event: Callable[[str], None] | None = None,
                  confirm: Callable[[str], bool] | None = None) -> Report:
    """Diagnose the overlay and, unless ``--check``/``--dry-run``, repair it.

    Args:
        cfg: the configuration.
        access: the command's access (its SSH pool; the cluster for the pod test).
        options: the command's flags.
        on_event: called with one line per phase (progress).
        confirm: asked before restarting K3s without ``--restart``; default: never.

    Returns:
        The report: checks of the final state, the steps run, the matrix and plan in ``extra``.

    Raises:
        UsageError: flags that exclude each other.
    """
    options = options or FixVxlanOptions()
    if options.check and options.dry_run:
        raise UsageError("--check and --dry-run exclude each other", hint="--check diagnoses; --dry-run also plans")
    if options.check and (options.restart or options.fix_checksum_offload):
        raise UsageError("--check changes nothing, so it does not take --restart or --fix-checksum-offload",
                         hint="leave out --check to fix")
    return _FixVxlan(cfg, access, options, on_event, confirm).run()


def diagnose(cfg: Config, runner: Runner, *, token: str | None = None) -> Diagnosis:
    """Read every node (in parallel), run the overlay test from each node, and judge.

    Args:
        cfg: the configuration.
        runner: the SSH pool.
        token: the marker of this run's output lines (random by default).
    """
    token = token or f"@@o11y-{secrets.token_hex(6)}"
    vx = cfg.vxlan
    from o11yctl.executors.ssh import ssh_target

    targets = [ssh_target(n) for n in cfg.nodes]
    script = batch_script(probe_commands(vx.interface, vx.persist_dir, vx.systemd_unit_dir), token)

    def probe(target: SshTarget) -> NodeFacts:
        result = runner.run(target, ["sh", "-c", script], sudo=True, step="fix-vxlan probe")
        batch = parse_batch(result.stdout, token)
        if not batch.outputs:
            raise O11yError(
                f"{target.name} ({target.host}), step fix-vxlan probe: the probe did not run "
                f"(exit {result.exit_code}): {_tail(result.stderr or result.stdout)}",
                hint="check that the SSH user may run sudo on the node",
            )
        return parse_probe(target.name, vx.interface, batch)

    errors: dict[str, NodeError] = {}
    facts: dict[str, NodeFacts] = {}
    for name, found in runner.map(targets, probe).items():
        if isinstance(found, O11yError):
            errors[name] = _node_error(name, found)
        else:
            facts[name] = found

    overlay = {name: f.device.overlay for name, f in facts.items()
               if f.device.present and f.device.up and f.device.overlay}
    wait = vx.ping_wait
    timeout = vx.ping_count * 0.2 + wait + 15.0

    def ping(target: SshTarget) -> PingFacts:
        peers = {addr: name for name, addr in overlay.items() if name != target.name and addr}
        argv = ping_argv(token, overlay[target.name] or "", list(peers), count=vx.ping_count, wait=wait)
        # With sudo: an unprivileged ping can be refused (no ICMP socket rights), which would read as "no reply".
        result = runner.run(target, argv, sudo=True, timeout=timeout, step="fix-vxlan overlay ping")
        return parse_ping(target.name, result.stdout, token, peers)

    pings: dict[str, PingFacts] = {}
    pingers = [t for t in targets if t.name in overlay]
    if len(overlay) > 1:
        for name, found_ping in runner.map(pingers, ping).items():
            if isinstance(found_ping, O11yError):
                errors[name] = _node_error(name, found_ping)
                facts.pop(name, None)
            else:
                pings[name] = found_ping
    return judge(cfg.nodes, vx, facts, pings, errors)


def apply_steps(cfg: Config, runner: Runner, steps: Sequence[FixStep], *, token: str | None = None,
                step_name: str = "fix-vxlan fix") -> list[StepResult]:
    """Run ``steps`` (each node's in order, as one batch with sudo; nodes in parallel).

    Returns:
        One result per step: ``unchanged`` when its check found the change already there.
    """
    token = token or f"@@o11y-{secrets.token_hex(6)}"
    from o11yctl.executors.ssh import ssh_target

    by_node: dict[str, list[FixStep]] = {}
    for s in steps:
        by_node.setdefault(s.node, []).append(s)
    targets = [ssh_target(n) for n in cfg.nodes if n.name in by_node]

    def apply(target: SshTarget) -> list[StepResult]:
        mine = by_node[target.name]
        commands = [BatchCommand(f"s{i}", s.argv, check=s.check) for i, s in enumerate(mine)]
        result = runner.run(target, ["sh", "-c", batch_script(commands, token)], sudo=True, step=step_name)
        batch = parse_batch(result.stdout, token)
        each = result.seconds / max(1, len(mine))
        out: list[StepResult] = []
        for i, s in enumerate(mine):
            key = f"s{i}"
            output = batch.get(key)
            if key in batch.present:
                outcome: Outcome = "unchanged"
                detail = f"{s.description}: already there"
            elif output.ok:
                outcome = _done_outcome(s)
                detail = s.description
            else:
                outcome = "failed"
                why = _tail(output.stderr or output.stdout) if output.exit_code != -1 else "did not run"
                detail = f"{s.description}: exit {output.exit_code}: {why}"
            out.append(StepResult(id=s.id, component="vxlan", outcome=outcome, detail=detail, host=s.node,
                                  seconds=each))
        return out

    results: list[StepResult] = []
    found = runner.map(targets, apply)
    for target in targets:
        r = found.get(target.name)
        if isinstance(r, O11yError):
            results.extend(StepResult(id=s.id, component="vxlan", outcome="failed", detail=f"{s.description}: {r}",
                                      host=s.node) for s in by_node[target.name])
        elif r is not None:
            results.extend(r)
    return results


def _done_outcome(step: FixStep) -> Outcome:
    if step.kind == "rule":
        return "created"
    if step.kind == "persist" and step.path is not None:
        return "created"
    return "changed"


def _node_error(name: str, exc: O11yError) -> NodeError:
    return NodeError(name=name, message=exc.message, hint=exc.hint, exit_code=exc.exit_code,
                     unreachable=isinstance(exc, UnreachableError) or exc.exit_code == EXIT_UNREACHABLE)


def _tail(text: str, lines: int = 3) -> str:
    parts = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(parts[-lines:]) or "no output"


class _FixVxlan:
    """One run of the command (holds the pieces the phases share)."""

    def __init__(self, cfg: Config, access: Access, options: FixVxlanOptions,
                 on_event: Callable[[str], None] | None, confirm: Callable[[str], bool] | None) -> None:
        self.cfg = cfg
        self.access = access
        self.options = options
        self.runner: Runner = access.ssh()
        self.say = on_event or (lambda _line: None)
        self.confirm = confirm or (lambda _question: False)
        self.final: Diagnosis | None = None

    def run(self) -> Report:
        report = self._run()
        if self.options.pod_test and not self.options.dry_run and self.final is not None:
            report = self._with_pod_test(report, self.final)
        return report

    def _run(self) -> Report:
        n = len(self.cfg.nodes)
        self.say(f"reading {n} node(s) and testing the overlay over {self.cfg.vxlan.interface}")
        before = diagnose(self.cfg, self.runner)
        mode = "check" if self.options.check else ("dry-run" if self.options.dry_run else "fix")
        if before.errors:
            return self._unreadable(before, mode)
        if self.options.check:
            return self._report(before, mode, exit_code=EXIT_OK if before.overlay_ok else EXIT_FAILED,
                                summary=before.verdict())
        plan = plan_fix(before, self.cfg.nodes, self.cfg.vxlan, fix_offload=self.options.fix_checksum_offload)
        if self.options.dry_run:
            return self._dry_run(before, plan)
        return self._fix(before, plan)

    # -- phases ---------------------------------------------------------------------------------

    def _unreadable(self, diag: Diagnosis, mode: str) -> Report:
        code = EXIT_UNREACHABLE if diag.unreachable else max(e.exit_code for e in diag.errors.values())
        names = ", ".join(sorted(diag.errors))
        tail = "" if mode == "check" else "; nothing was changed"
        report = self._report(diag, mode, exit_code=code or EXIT_FAILED,
                              summary=f"{diag.verdict()}{tail} (could not read {names}; fix that, then re-run)")
        first = diag.errors[min(diag.errors)]
        message = first.message if len(diag.errors) == 1 else f"could not read {names}: {first.message}"
        return dataclasses.replace(report, error=O11yError(message, hint=first.hint, exit_code=report.exit_code))

    def _dry_run(self, diag: Diagnosis, plan: FixPlan) -> Report:
        nodes = sorted({s.node for s in plan.steps})
        if plan.empty:
            summary = f"{diag.verdict()}; dry run: nothing to change"
        else:
            summary = (f"{diag.verdict()}; dry run: {len(plan.steps)} change(s) on {', '.join(nodes)} "
                       "(nothing was changed)")
        return self._report(diag, "dry-run", exit_code=EXIT_OK, summary=summary, plan=plan)

    def _fix(self, before: Diagnosis, plan: FixPlan) -> Report:
        steps: list[StepResult] = []
        after = before
        if not plan.empty:
            self.say(f"applying {len(plan.steps)} change(s) on {', '.join(sorted({s.node for s in plan.steps}))}")
            steps = apply_steps(self.cfg, self.runner, plan.steps)
            self.say("testing the overlay again")
            after = diagnose(self.cfg, self.runner)
        changed_nodes = sorted({s.host for s in steps if s.host and s.outcome in ("created", "changed")})
        failing = _failing_nodes(after)
        if not after.errors:
            restart_names = sorted(set(changed_nodes) | set(failing)) if self.options.restart else sorted(failing)
            wants = self.options.restart and bool(restart_names)
            if not wants and failing and not self.options.restart:
                wants = self.options.assume_yes or self.confirm(
                    f"The overlay still fails ({after.verdict()}). Restart K3s on {', '.join(failing)}?")
            if wants:
                steps.extend(self._restart(restart_names))
                after = self._wait_for_overlay()
        added = sum(1 for s in steps if s.outcome == "created" and s.id.startswith("allow"))
        changes = sum(1 for s in steps if s.outcome in ("created", "changed"))
        if before.overlay_ok and not any(s.outcome in ("created", "changed", "failed") for s in steps):
            summary = f"{after.verdict()}; nothing to change"
        elif before.overlay_ok and after.overlay_ok:
            summary = f"{after.verdict()}; {changes} change(s) made"
        elif after.overlay_ok:
            summary = f"{after.verdict()} (was: {before.verdict()}); {added} rule(s) added"
        else:
            hint = "" if self.options.restart else "; try --restart to rebuild the tunnel"
            summary = f"{after.verdict()}; {added} rule(s) added{hint}"
        failed = any(s.outcome == "failed" for s in steps)
        code = EXIT_OK if after.overlay_ok and not failed else (
            EXIT_UNREACHABLE if after.unreachable else EXIT_FAILED)
        return self._report(after, "fix", exit_code=code, summary=summary, plan=plan, steps=steps, before=before)

    def _with_pod_test(self, report: Report, diag: Diagnosis) -> Report:
        """The report with the pod test's rows; it is judged against the final diagnosis."""
        from o11yctl.vxlan import podping

        test = podping.run_pod_test(self.cfg, self.access,
                                    timeout=self.options.pod_test_timeout, say=self.say)
        rows = podping.judge(test, diag.ping)
        return dataclasses.replace(report, items=(*report.items, *rows),
                                   extra={**report.extra, "pod_test": test.to_json()})

    def _restart(self, names: Sequence[str]) -> list[StepResult]:
        steps = restart_steps(self.cfg.nodes, self.cfg.vxlan, names)
        self.say(f"restarting K3s on {', '.join(names)}")
        return apply_steps(self.cfg, self.runner, steps, step_name="fix-vxlan restart")

    def _wait_for_overlay(self) -> Diagnosis:
        deadline = time.monotonic() + self.cfg.vxlan.restart_wait
        self.say(f"waiting up to {self.cfg.vxlan.restart_wait:g}s for the overlay")
        while True:
            diag = diagnose(self.cfg, self.runner)
            if diag.overlay_ok or time.monotonic() + _POLL_SECONDS >= deadline:
                return diag
            time.sleep(_POLL_SECONDS)

    # -- the report -----------------------------------------------------------------------------

    def _report(self, diag: Diagnosis, mode: str, *, exit_code: int, summary: str, plan: FixPlan | None = None,
                steps: Sequence[StepResult] = (), before: Diagnosis | None = None) -> Report:
        self.final = diag
        checks: list[CheckResult] = list(diag.checks)
        if plan is not None:
            checks.extend(CheckResult(f"persist {node}", GROUP, "WARN", note,
                                      "set vxlan.boot, or add the script to the node's boot sequence")
                          for node, note in plan.notes)
        extra: dict[str, object] = {"mode": mode, **diag.to_json()}
        if plan is not None:
            extra["plan"] = plan.to_json()
        if before is not None:
            extra["before"] = before.to_json()
        return Report(command=COMMAND, items=(*steps, *checks), exit_code=exit_code, summary=summary, extra=extra)


def _failing_nodes(diag: Diagnosis) -> list[str]:
    names: set[str] = set(diag.device_problems)
    for d in diag.directions:
        if d.status != "ok":
            names.update((d.src, d.dst))
    return sorted(n for n in names if n not in diag.errors)

