"""`o11yctl uninstall`: remove what `install` made, in reverse order, keeping the data.

Without ``--delete-data`` the PVCs, the PVs (reclaim policy Retain) and the data
directories on the storage node stay, and so does the namespace (deleting it
would delete the PVCs in it). A later `install` applies the same PVs and PVCs
again and clears the stale claim of a Released PV, so Loki and Tempo find their
data where they left it. With ``--delete-data`` (confirmed, or ``--yes``) the
claims, the volumes, the namespace and the directories go too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from o11yctl.config import Config
from o11yctl.deploy.walk import Callbacks, Handler, apply_plan
from o11yctl.errors import KubeError, O11yError, PreflightError
from o11yctl.model import Report, StepResult
from o11yctl.stack.context import data_dir, stack_of
from o11yctl.stack.plan import Action, build_uninstall_plan
from o11yctl.stack.render import render_config

if TYPE_CHECKING:
    from o11yctl.access import Access


@dataclass(frozen=True, slots=True)
class UninstallOptions:
    """What `uninstall` was asked to do, besides how to reach the cluster."""

    delete_data: bool = False
    assume_yes: bool = False


def kept(cfg: Config, delete_data: bool) -> list[StepResult]:
    """Report lines for what uninstall keeps on purpose."""
    if delete_data:
        return []
    ns = cfg.cluster.namespace
    out = [StepResult(f"keep.{c.name}", "volumes", "skipped",
                      f"kept PersistentVolumeClaim {ns}/{c.volume.pvc}, PersistentVolume {c.volume.pv} "
                      f"(Retain) and {data_dir(cfg, c)} on {cfg.storage.node}")
           for c in stack_of(cfg).data if c.volume is not None]
    out.append(StepResult("keep.namespace", "namespace", "skipped", f"kept namespace {ns}: it holds the claims"))
    return out


def run_uninstall(cfg: Config, access: Access, options: UninstallOptions | None = None, *,
                  callbacks: Callbacks | None = None,
                  confirm: Callable[[str, Sequence[str]], bool] | None = None) -> Report:
    """Remove the releases and objects in reverse order.

    Raises:
        PreflightError: the cluster or helm is not reachable; nothing was changed.
        O11yError: --delete-data was not confirmed; nothing was changed.
        StepFailed: a step failed; its ``report`` says what was already removed.
    """
    from o11yctl.deploy.cluster import Deployer
    from o11yctl.deploy.install import cluster_executors

    options = options or UninstallOptions()
    plan = build_uninstall_plan(cfg, delete_data=options.delete_data)
    if options.delete_data and not options.assume_yes:
        lines = [s.description for s in plan.steps if s.component in ("volumes", "storage", "namespace")]
        if not (confirm and confirm("Delete the stored logs and traces for good?", lines)):
            raise O11yError("nothing was changed: --delete-data was not confirmed",
                            hint="re-run with --yes to delete the data without asking")
    files = render_config(cfg)
    with ExitStack() as stack:
        kube, helm = cluster_executors(plan, access)
        try:
            kube.server_version()
        except KubeError as exc:
            raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
        helm.version()
        deployer = Deployer(plan, kube, helm, files)
        handlers: dict[Action, Handler] = {"delete": deployer.delete_step,
                                           "helm-uninstall": deployer.helm_uninstall_step}
        if plan.needs("ssh"):
            from o11yctl.deploy.remote import remove_data_dir, ssh_handler

            handlers["ssh"] = stack.enter_context(ssh_handler(plan, access, remove_data_dir))
        report = apply_plan(plan, handlers, callbacks=callbacks, command="uninstall")
    items = (*report.items, *kept(cfg, options.delete_data))
    removed = sum(1 for i in report.items if isinstance(i, StepResult) and i.outcome == "changed")
    summary = f"uninstall finished: {removed} removed" + (
        "; data kept (o11yctl uninstall --delete-data removes it)" if not options.delete_data else "")
    return Report("uninstall", items=items, summary=summary)
