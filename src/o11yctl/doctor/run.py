"""`o11yctl doctor` as one function: gather, judge, optionally fix and bundle, report.

:func:`run_doctor` reads the cluster through the Kubernetes API, and runs `verify`'s checks
that only read through it (the cluster's objects, Alloy's logs, each service's readiness
through the API server's proxy), so that a verdict `verify` would give is explained or
reported; it opens SSH connections only when a rule asks for the owner of a data directory,
the overlay's diagnosis, or a fix that runs on a node. The exit code: 0 when no problem
remains, 1 when one does; a cluster that cannot be reached raises (exit 3) before anything is
judged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from o11yctl.config import Config
from o11yctl.doctor.facts import (
    diagnose_network,
    gather_checks,
    gather_cluster,
    network_facts,
    probe_ownership,
    with_checks,
    with_network,
    with_ownership,
)
from o11yctl.doctor.fixes import FixTools, apply_fixes, finding_key
from o11yctl.doctor.kubelet import OpenKubeletPort
from o11yctl.doctor.rules import Finding, judge, needs_network_diagnosis, ownership_probes
from o11yctl.errors import EXIT_FAILED, EXIT_OK, O11yError
from o11yctl.model import Report, StepResult

if TYPE_CHECKING:
    from o11yctl.access import Access
    from o11yctl.doctor.bundle import BundleResult
    from o11yctl.executors.ssh import SshPool

ENV_GRAFANA_TOKEN = "O11YCTL_GRAFANA_TOKEN"
_FIXED = ("changed", "created", "unchanged")


def _quiet(_line: str) -> None:
    return None


def _no(_question: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    """What `doctor` was asked to do (the CLI's flags, as values)."""

    fix: bool = False
    assume_yes: bool = False
    bundle: Path | None = None
    config_source: str = ""
    #: Seconds for `verify`'s read-only checks, all together.
    check_timeout: float = 15.0


@dataclass(frozen=True, slots=True)
class DoctorCallbacks:
    """How doctor talks to the person at the terminal: progress lines, and yes/no questions."""

    show: Callable[[str], None] = _quiet
    confirm: Callable[[str], bool] = _no


def run_doctor(cfg: Config, access: Access, options: DoctorOptions | None = None,
               callbacks: DoctorCallbacks | None = None, *, env: Mapping[str, str] | None = None) -> Report:
    """Walk the runbook's troubleshooting tree against the cluster.

    Args:
        cfg: the configuration.
        access: how to reach the cluster, helm and the nodes (SSH opened only when a rule needs it).
        options: the command's flags.
        callbacks: progress lines and confirmations (default: quiet, and no to every question).
        env: where to read ``O11YCTL_GRAFANA_TOKEN`` (scrubbed from a bundle); default ``os.environ``.

    Returns:
        The report: the applied fixes as items, the findings under ``extra["findings"]``.

    Raises:
        PreflightError: no usable kubeconfig (exit 3).
        KubeError: the cluster cannot be reached (exit 3) or refuses a read.
        UsageError: a bad ``--bundle`` path.
    """
    cb = callbacks or DoctorCallbacks()
    options = options or DoctorOptions()
    env = os.environ if env is None else env
    if options.bundle is not None:
        from o11yctl.doctor.bundle import check_target

        check_target(options.bundle)  # before any cluster work: a bad path is the user's to fix first
    from o11yctl.deploy.migrate import read_record
    from o11yctl.stack.migrate import running

    kube = access.kube()
    pool = access.ssh
    server_version = kube.server_version()
    cfg = running(cfg, read_record(cfg, kube))  # during a move to profile scalable: what runs now
    cb.show(f"reading pods, events, volumes and nodes in namespace {cfg.cluster.namespace}")
    facts = gather_cluster(kube, cfg)
    if facts.namespace_exists:
        cb.show("running verify's read-only checks (objects, Alloy's logs, each service through the API server)")
        facts = with_checks(facts, gather_checks(kube, cfg, timeout=options.check_timeout))
    probes = ownership_probes(facts)
    if probes:
        from o11yctl.executors.ssh import ssh_target

        for node in dict.fromkeys(n for n, _ in probes):
            paths = [p for n, p in probes if n == node]
            cb.show(f"checking the owner of {', '.join(paths)} on {node} over SSH")
            facts = with_ownership(facts, probe_ownership(pool(), ssh_target(cfg.node(node)), paths, node=node))
    if needs_network_diagnosis(facts):
        cb.show("diagnosing the overlay between the nodes (as `o11yctl fix-vxlan --check` does)")
        facts = with_network(facts, diagnose_network(lambda: _diagnose_overlay(cfg, pool())))
    findings = judge(facts)
    fixes: dict[str, StepResult] = {}
    if options.fix and any(f.action is not None for f in findings):
        fixes = apply_fixes(findings, _fix_tools(cfg, options, cb, access), confirm=cb.confirm, show=cb.show,
                            assume_yes=options.assume_yes)
    bundle = None
    if options.bundle is not None:
        cb.show(f"collecting the support bundle {options.bundle}")
        bundle = _write_bundle(cfg, options, access, findings, server_version, env)
    passed = sum(1 for c in facts.checks if c.status == "PASS")
    return doctor_report(findings, fixes, bundle=bundle, fix_requested=options.fix, checks_passed=passed)


#: What `verify` checks and doctor does not (it only reads, through the Kubernetes API).
NOT_CHECKED = ("the data directories over SSH, a log line and a span end to end, Grafana's data sources and its "
               "public URL: `o11yctl verify`")


def doctor_report(findings: list[Finding], fixes: Mapping[str, StepResult], *,
                  bundle: BundleResult | None = None, fix_requested: bool = False, checks_passed: int = 0) -> Report:
    """The report: exit 0 when no finding remains unfixed, else 1; findings under ``extra``."""
    docs: list[dict[str, object]] = []
    remaining = 0
    for f in findings:
        result = fixes.get(finding_key(f))
        doc = f.to_json()
        doc["fix_result"] = None if result is None else {"outcome": result.outcome, "detail": result.detail}
        fixed = result is not None and result.outcome in _FIXED
        doc["status"] = "fixed" if fixed else "open"
        remaining += 0 if fixed else 1
        docs.append(doc)
    applied = sum(1 for d in docs if d["status"] == "fixed")
    if not findings:
        summary = "no problems found: volumes, pods and Alloy look as the runbook expects"
        if checks_passed:
            summary += f", and {checks_passed} of verify's read-only checks pass"
        summary += f" (not checked here: {NOT_CHECKED})"
    else:
        summary = f"{len(findings)} problem(s) found"
        if applied:
            summary += f", {applied} fixed; run `o11yctl doctor` again in a minute to see the pods recover"
        fixable = sum(1 for f in findings if f.action is not None and fixes.get(finding_key(f)) is None)
        if fixable and not fix_requested:
            summary += f"; `o11yctl doctor --fix` applies {fixable} of the fixes itself"
    extra: dict[str, object] = {"findings": docs, "healthy": remaining == 0}
    if bundle is not None:
        summary += f"; support bundle written to {bundle.path}"
        extra["bundle"] = {"path": str(bundle.path), "files": len(bundle.members),
                           "secret_forms_scrubbed": bundle.secret_values, "notes": list(bundle.notes)}
    return Report("doctor", items=tuple(dict.fromkeys(fixes.values())),
                  exit_code=EXIT_OK if remaining == 0 else EXIT_FAILED, summary=summary, extra=extra)


# --- the executors, opened only when needed ------------------------------------------------------


def _diagnose_overlay(cfg: Config, pool: SshPool) -> Any:
    from o11yctl.vxlan.run import diagnose

    return network_facts(diagnose(cfg, pool))


def _fix_tools(cfg: Config, options: DoctorOptions, cb: DoctorCallbacks, access: Access) -> FixTools:
    from o11yctl.executors.ssh import ssh_target

    def run_fix_vxlan() -> StepResult:
        from o11yctl.vxlan.run import FixVxlanOptions, run_fix_vxlan

        report = run_fix_vxlan(cfg, access, FixVxlanOptions(assume_yes=options.assume_yes, pod_test=False),
                               on_event=cb.show, confirm=cb.confirm)
        return StepResult("fix-vxlan", "network", "changed" if report.ok else "failed", report.summary)

    def open_kubelet_port(action: OpenKubeletPort) -> tuple[str, str]:
        return _open_kubelet_port(cfg, access.ssh(), action, cb.show)

    return FixTools(kube=access.kube(), ssh=_LazyRunner(access.ssh), ssh_target=lambda name: ssh_target(cfg.node(name)),
                    fix_vxlan=run_fix_vxlan, open_kubelet_port=open_kubelet_port)


def _open_kubelet_port(cfg: Config, pool: SshPool, action: OpenKubeletPort,
                       show: Callable[[str], None]) -> tuple[str, str]:
    """Read the node's firewall (fix-vxlan's probe), add what lets the server reach the kubelet, read it again.

    Returns:
        (outcome, detail): ``changed`` when rules were added and the firewall now accepts the server's
        connections; ``failed`` with the reason otherwise, also when the firewall does not block them
        (then something else keeps the kubelet out of reach, and the detail says what to check).
    """
    from o11yctl.doctor.kubelet import describe_steps, plan_open, probe, still_blocked
    from o11yctl.executors.ssh import ssh_target
    from o11yctl.vxlan.fix import FixStep
    from o11yctl.vxlan.remote import batch_script, parse_batch, parse_probe
    from o11yctl.vxlan.run import apply_steps

    target = ssh_target(cfg.node(action.node))
    sources = ", ".join(action.sources)

    def read() -> Any:
        token = f"@@o11y-{secrets.token_hex(6)}"
        result = pool.run(target, ["sh", "-c", batch_script(probe(cfg.vxlan), token)], sudo=True,
                          step="doctor.fix kubelet-port")
        batch = parse_batch(result.stdout, token)
        if not batch.outputs:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise O11yError(f"{target.name} ({target.host}): the firewall probe did not run (exit {result.exit_code})"
                            + (f": {lines[-1]}" if lines else ""),
                            hint="check that the SSH user may run sudo on the node")
        return parse_probe(target.name, cfg.vxlan.interface, batch)

    before = read()
    plan = plan_open(action, before, cfg.vxlan)
    rules: list[FixStep] = [s for s in plan.steps if s.kind == "rule"]
    if not rules:
        return ("failed",
                f"the firewall on {action.node} ({before.firewall.tool}) does not block TCP {action.port} from "
                f"{sources}: nothing to open there; check that the kubelet listens on {action.address}:{action.port} "
                f"(`sudo ss -tlnp | grep {action.port}` on {action.node}) and the route from the server")
    for step in plan.steps:
        show(f"  {action.node}: {step.description}" + ("" if step.path else f": {step.display_lines()[0]}"))
    results = apply_steps(cfg, pool, plan.steps, step_name="doctor.fix kubelet-port")
    failed = [r.detail for r in results if r.outcome == "failed"]
    if failed:
        return "failed", "; ".join(failed)
    left = still_blocked(read(), action)
    if left:
        return "failed", f"rules added, but the firewall of {action.node} still blocks: {'; '.join(left)}"
    notes = "".join(f"; {note}" for _node, note in plan.notes)
    return "changed", (f"{action.node} accepts TCP {action.port} from {sources} now ({describe_steps(rules)}; "
                       f"{len(plan.steps) - len(rules)} step(s) to keep it across reboots){notes}")


class _LazyRunner:
    """The SSH pool, opened on the first command."""

    def __init__(self, pool: Callable[[], SshPool]) -> None:
        self._pool = pool

    def run(self, target: Any, argv: Any, *, sudo: bool = False, timeout: float | None = None,
            step: str = "") -> Any:
        return self._pool().run(target, argv, sudo=sudo, timeout=timeout, step=step)


def _write_bundle(cfg: Config, options: DoctorOptions, access: Access, findings: list[Finding],
                  server_version: str, env: Mapping[str, str]) -> BundleResult:
    from o11yctl.doctor.bundle import write_bundle

    assert options.bundle is not None
    known = [s.reveal() for s in (access.options.sudo_password,) if s is not None]
    token = env.get(ENV_GRAFANA_TOKEN, "").strip()
    if token:
        known.append(token)
    helm: Any = access.helm()
    problem = None
    try:
        helm.version()
    except O11yError as exc:
        helm, problem = None, exc.message
    return write_bundle(options.bundle, cfg=cfg, kube=access.kube(), helm=helm, findings=findings,
                        known_secrets=known, config_source=options.config_source, helm_problem=problem,
                        server_version=server_version)
