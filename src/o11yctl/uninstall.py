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
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import Any

import yaml

from o11yctl.apply import Callbacks, Handler, apply_plan
from o11yctl.config import Config
from o11yctl.context import PV_NAMES, RELEASES, data_dir
from o11yctl.errors import KubeError, O11yError, PreflightError, RemoteError
from o11yctl.install import InstallOptions, connect_cluster
from o11yctl.model import Report, StepResult
from o11yctl.plan import HelmRelease, Plan, RemoteCommand, Step, StepKind, build_plan


@dataclass(frozen=True, slots=True)
class UninstallOptions:
    """Everything `uninstall` takes besides the configuration."""

    delete_data: bool = False
    assume_yes: bool = False
    kubeconfig: Any = None
    context: str | None = None
    helm_binary: str | None = None
    accept_new_host_keys: bool = False
    sudo_password: Any = None
    request_timeout: float = 30.0


def build_uninstall_plan(cfg: Config, *, delete_data: bool = False) -> Plan:
    """The install plan's removable steps, reversed; the data steps only with ``delete_data``. Pure.

    Args:
        cfg: the validated configuration.
        delete_data: also remove the PVCs, PVs, namespace and data directories.
    """
    install = build_plan(cfg)
    ns = cfg.cluster.namespace
    steps: list[Step] = []
    for step in reversed(install.steps):
        if step.kind == "wait":
            continue
        if step.kind == "helm" and step.helm is not None:
            steps.append(Step(step.id, step.component, "helm", f"remove helm release {step.helm.release}",
                              helm=step.helm))
        elif step.id == "route":
            steps.append(Step(step.id, step.component, "apply", f"delete HTTPRoute {ns}/{RELEASES['grafana']}",
                              manifest=step.manifest))
        elif step.component == "volumes" and delete_data:
            comp = step.id.split(".", 1)[1]
            pv, pvc = PV_NAMES[comp]
            steps.append(Step(step.id, step.component, "apply",
                              f"delete PersistentVolumeClaim {ns}/{pvc} and PersistentVolume {pv}",
                              manifest=step.manifest))
        elif step.component == "storage" and delete_data:
            comp = step.id.split(".", 1)[1]
            path = data_dir(cfg, comp)
            steps.append(Step(step.id, step.component, "ssh", f"delete {path} on {step.host}", host=step.host,
                              commands=(RemoteCommand(("rm", "-rf", "--one-file-system", path), sudo=True,
                                                      purpose="change"),)))
        elif step.id == "namespace" and delete_data:
            steps.append(Step(step.id, step.component, "apply", f"delete namespace {ns}", manifest=step.manifest))
    return Plan(config=cfg, steps=tuple(steps), selected=install.selected)


def kept(cfg: Config, delete_data: bool) -> list[StepResult]:
    """Report lines for what uninstall keeps on purpose."""
    if delete_data:
        return []
    ns = cfg.cluster.namespace
    out = [StepResult(f"keep.{comp}", "volumes", "skipped",
                      f"kept PersistentVolumeClaim {ns}/{PV_NAMES[comp][1]}, PersistentVolume {PV_NAMES[comp][0]} "
                      f"(Retain) and {data_dir(cfg, comp)} on {cfg.storage.node}")
           for comp in ("loki", "tempo")]
    out.append(StepResult("keep.namespace", "namespace", "skipped", f"kept namespace {ns}: it holds the claims"))
    return out


def run_uninstall(cfg: Config, options: UninstallOptions, *, callbacks: Callbacks | None = None,
                  confirm: Callable[[str, Sequence[str]], bool] | None = None) -> Report:
    """Remove the releases and objects in reverse order.

    Raises:
        PreflightError: the cluster or helm is not reachable; nothing was changed.
        O11yError: --delete-data was not confirmed; nothing was changed.
        StepFailed: a step failed; its ``report`` says what was already removed.
    """
    from o11yctl.render import render_config

    plan = build_uninstall_plan(cfg, delete_data=options.delete_data)
    if options.delete_data and not options.assume_yes:
        lines = [s.description for s in plan.steps if s.component in ("volumes", "storage", "namespace")]
        if not (confirm and confirm("Delete the stored logs and traces for good?", lines)):
            raise O11yError("nothing was changed: --delete-data was not confirmed",
                            hint="re-run with --yes to delete the data without asking")
    files = render_config(cfg)
    install_options = InstallOptions(kubeconfig=options.kubeconfig, context=options.context,
                                     helm_binary=options.helm_binary, request_timeout=options.request_timeout,
                                     accept_new_host_keys=options.accept_new_host_keys,
                                     sudo_password=options.sudo_password, assume_yes=options.assume_yes)
    with ExitStack() as stack:
        kube, helm = connect_cluster(plan, install_options, stack)
        try:
            kube.server_version()
        except KubeError as exc:
            raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
        helm.version()
        handlers: dict[StepKind, Handler] = {
            "apply": lambda step: _delete_objects(kube, files, step),
            "helm": lambda step: _uninstall_release(helm, step),
        }
        if plan.needs("ssh"):
            handlers["ssh"] = stack.enter_context(_data_dir_handler(plan, install_options))
        report = apply_plan(plan, handlers, callbacks=callbacks, command="uninstall")
    items = (*report.items, *kept(cfg, options.delete_data))
    removed = sum(1 for i in report.items if isinstance(i, StepResult) and i.outcome == "changed")
    summary = f"uninstall finished: {removed} removed" + (
        "; data kept (o11yctl uninstall --delete-data removes it)" if not options.delete_data else "")
    return Report("uninstall", items=items, summary=summary)


def _delete_objects(kube: Any, files: dict[str, str], step: Step) -> StepResult:
    from o11yctl.executors.kube import ObjectRef

    assert step.manifest is not None
    docs = [d for d in yaml.safe_load_all(files[step.manifest]) if d]
    gone: list[str] = []
    absent: list[str] = []
    for doc in reversed(docs):  # the claim before its volume
        ref = ObjectRef.of(doc)
        (gone if kube.delete(ref.api_version, ref.kind, ref.name, ref.namespace) else absent).append(str(ref))
    detail = "; ".join([f"deleted {g}" for g in gone] + [f"{a} not present" for a in absent])
    return StepResult(step.id, step.component, "changed" if gone else "unchanged", detail)


def _uninstall_release(helm: Any, step: Step) -> StepResult:
    release: HelmRelease | None = step.helm
    assert release is not None
    if helm.uninstall(release.release, release.namespace, timeout=release.timeout):
        return StepResult(step.id, step.component, "changed", f"removed release {release.release}")
    return StepResult(step.id, step.component, "unchanged", f"release {release.release} not present")



def _data_dir_handler(plan: Plan, options: InstallOptions) -> AbstractContextManager[Handler]:
    """The handler for uninstall's ``ssh`` steps (``rm -rf`` of a data directory), connections open."""
    from o11yctl.storage import ssh_handler

    return ssh_handler(plan, options, _delete_data_dir)


def _delete_data_dir(pool: Any, target: Any, step: Step) -> StepResult:
    (command,) = step.commands
    path = command.argv[-1]
    probe = pool.run(target, ("test", "-e", path), sudo=True, step=step.id)
    if probe.exit_code == 1:
        return StepResult(step.id, step.component, "unchanged", f"{path} not present", host=step.host)
    result = pool.run(target, command.argv, sudo=command.sudo, step=step.id)
    if not result.ok:
        tail = "\n".join(result.stderr.strip().splitlines()[-10:]) or "(no output)"
        raise RemoteError(f"{step.host}, step {step.id}: `{command.display()}` failed with exit "
                          f"{result.exit_code}: {tail}", hint="fix the cause on the node, then re-run")
    return StepResult(step.id, step.component, "changed", f"deleted {path}", host=step.host)
