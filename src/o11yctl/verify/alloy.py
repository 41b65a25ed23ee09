"""Alloy: one Ready pod on every node, and no failed pushes to Loki in its logs.

Reading a pod's log makes the API server ask the kubelet of the pod's node (TCP 10250); when it
cannot reach that kubelet, the log is unreadable for that reason, and the check says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from o11yctl.config import Config
from o11yctl.executors.kube import KubeletUnreachable
from o11yctl.stack.components import Component
from o11yctl.verify import hints
from o11yctl.verify.base import Check, CheckContext, Verdict, failed, passed
from o11yctl.verify.cluster import Obj, is_ready, kube_of, name_of

_SELECTOR = "app.kubernetes.io/name=alloy"


def judge_alloy_pods(nodes: Sequence[Obj], pods: Sequence[Obj], *, namespace: str) -> Verdict:
    """One Ready Alloy pod on every node (the storage node's taint included)."""
    node_names = sorted(name_of(n) for n in nodes)
    ready_on = {(p.get("spec") or {}).get("nodeName") for p in pods if is_ready(p)}
    missing = [n for n in node_names if n not in ready_on]
    if not missing:
        return passed(f"{len(node_names)}/{len(node_names)} nodes run a Ready Alloy pod")
    tainted = [n for n in nodes if name_of(n) in missing and (n.get("spec") or {}).get("taints")]
    hint = f"`kubectl get pods -n {namespace} -l app.kubernetes.io/name=alloy -o wide`"
    if tainted:
        taints = ", ".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                           for t in (tainted[0].get("spec") or {}).get("taints") or [])
        hint = (f"{name_of(tainted[0])} carries the taint {taints}: Alloy's DaemonSet needs a toleration for it "
                f"(the Alloy values); re-apply them with `o11yctl install --only alloy`; then {hint}")
    return failed(f"{len(node_names) - len(missing)}/{len(node_names)} nodes run a Ready Alloy pod; "
                  f"none on {', '.join(missing)}", hint)


def check_alloy_pods(ctx: CheckContext) -> Verdict:
    """alloy.pods"""
    kube = kube_of(ctx)
    return judge_alloy_pods(kube.list("v1", "Node"),
                            kube.list("v1", "Pod", ctx.namespace, label_selector=_SELECTOR),
                            namespace=ctx.namespace)


PUSH_ERROR = re.compile(r"context deadline exceeded", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UnreadableLog:
    """A pod whose log the API server could not get, because it could not reach the kubelet of the pod's node."""

    pod: str
    node: str
    kubelet: str  # HOST:PORT the API server dialled
    answer: str  # the API server's answer, whole: "HTTP 500: Get \"https://...\": dial tcp ...: ..."


def judge_alloy_logs(logs: Mapping[str, str], *, namespace: str, unreadable: Sequence[UnreadableLog] = ()) -> Verdict:
    """Recent Alloy logs mentioning "context deadline exceeded" mean pushes to Loki time out.

    Logs the API server could not read (``unreadable``) leave the check unable to say that no push
    failed: a failure that names the nodes whose kubelet the API server cannot reach.
    """
    if not logs and not unreadable:
        return failed(f"no running Alloy pod in namespace {namespace}", "see alloy.pods; install it with "
                      "`o11yctl install --only alloy`")
    bad = {pod: [line for line in text.splitlines() if PUSH_ERROR.search(line)] for pod, text in logs.items()}
    bad = {pod: lines for pod, lines in bad.items() if lines}
    unread = ""
    if unreadable:
        unread = (f"the logs of {', '.join(sorted(u.pod for u in unreadable))} could not be read: the API server "
                  f"could not reach the kubelet of {', '.join(sorted({u.node for u in unreadable}))}: "
                  f"{unreadable[0].answer}")
    if bad:
        counts = ", ".join(f"{pod}: {len(lines)}" for pod, lines in sorted(bad.items()))
        return failed(f"\"context deadline exceeded\" in Alloy's logs ({counts})" + (f"; {unread}" if unread else ""),
                      hints.alloy_not_shipping(namespace))
    if unreadable:
        read = f" (the {len(logs)} other log(s) show no failed push)" if logs else ""
        kubelets = ", ".join(sorted({u.kubelet for u in unreadable}))
        return failed(unread + read, hints.kubelet_unreachable(", ".join(sorted({u.node for u in unreadable})),
                                                               kubelets))
    return passed(f"no \"context deadline exceeded\" in the last 15 minutes of {len(logs)} Alloy pod(s)")


def check_alloy_logs(ctx: CheckContext) -> Verdict:
    """alloy.push-errors: the last 15 minutes of each Alloy pod's log."""
    kube = kube_of(ctx)
    pods = kube.list("v1", "Pod", ctx.namespace, label_selector=_SELECTOR)
    logs: dict[str, str] = {}
    unreadable: list[UnreadableLog] = []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") not in ("Running", "Succeeded", "Failed"):
            continue  # never started: no log yet (alloy.pods reports it)
        name = name_of(pod)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        try:
            text = kube.pod_log(ctx.namespace, name, container="alloy" if "alloy" in containers else None,
                                since_seconds=900, tail_lines=2000, timeout=ctx.deadline.timeout(ctx.request_timeout))
        except KubeletUnreachable as exc:
            node = str((pod.get("spec") or {}).get("nodeName") or exc.dial.host)
            unreadable.append(UnreadableLog(name, node, exc.dial.address, exc.api_status.describe()))
            continue
        if text is None:
            continue  # gone, or its container has not started yet (alloy.pods reports it)
        logs[name] = text
    return judge_alloy_logs(logs, namespace=ctx.namespace, unreadable=unreadable)




def checks(cfg: Config, component: Component) -> tuple[Check, ...]:
    """The checks of group ``alloy``."""
    return (
        Check("alloy.pods", component.name, "one Ready Alloy pod per node", ("kube",), check_alloy_pods),
        Check("alloy.push-errors", component.name, "Alloy's logs show no failed pushes to Loki", ("kube",),
              check_alloy_logs),
    )
