"""`o11yctl doctor` as one function: gather, judge, optionally fix and bundle, report.

:func:`run_doctor` reads the cluster through the Kubernetes API; it opens SSH connections
only when a rule asks for the owner of a data directory, the overlay's diagnosis, or a
fix that runs on a node. The exit code: 0 when no problem remains, 1 when one does; a
cluster that cannot be reached raises (exit 3) before anything is judged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from o11yctl.config import Config
from o11yctl.doctor.facts import (
    diagnose_network,
    gather_cluster,
    network_facts,
    probe_ownership,
    with_network,
    with_ownership,
)
from o11yctl.doctor.fixes import FixTools, apply_fixes, finding_key
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
    kube = access.kube()
    pool = access.ssh
    server_version = kube.server_version()
    cb.show(f"reading pods, events, volumes and nodes in namespace {cfg.cluster.namespace}")
    facts = gather_cluster(kube, cfg)
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
    return doctor_report(findings, fixes, bundle=bundle, fix_requested=options.fix)


def doctor_report(findings: list[Finding], fixes: Mapping[str, StepResult], *,
                  bundle: BundleResult | None = None, fix_requested: bool = False) -> Report:
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

    return FixTools(kube=access.kube(), ssh=_LazyRunner(access.ssh), ssh_target=lambda name: ssh_target(cfg.node(name)),
                    fix_vxlan=run_fix_vxlan)


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
