"""A node's labels and taints: what the config names, what the node has, and the one change between them.

One rule, used by every command that touches a node (`install`'s preflight and
``--label-nodes``, `doctor --fix`): the config owns the label keys and the taint keys
it names for a node, and nothing else. A label it names is set to its value; every
taint of the node with a key the config names is replaced by the config's taints of
that key (a taint with the same key but another value or effect goes); labels and
taints with other keys are left alone. Pure: the change is data (the merge patch and
the equivalent ``kubectl`` commands); :func:`apply_node_change` is the one place that
sends it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from o11yctl.model import StepResult


@dataclass(frozen=True, slots=True)
class NodeTaint:
    """A node taint: key, value, effect (``kubectl taint`` writes it ``key=value:effect``)."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"

    def as_dict(self) -> dict[str, str]:
        """The taint as it appears in a Node's ``spec.taints``."""
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> NodeTaint:
        """A taint from the API's JSON (``{"key": ..., "value": ..., "effect": ...}``)."""
        return cls(str(raw.get("key", "")), str(raw.get("value") or ""), str(raw.get("effect", "")))


@dataclass(frozen=True, slots=True)
class NodeChange:
    """What a node needs to carry the labels and taints the config names for it."""

    node: str
    labels: Mapping[str, str] = field(default_factory=dict)  # labels to set (missing, or another value)
    taints: tuple[NodeTaint, ...] | None = None  # the node's whole new taint list; None: taints stay
    removed: tuple[NodeTaint, ...] = ()
    added: tuple[NodeTaint, ...] = ()

    kind: ClassVar[str] = "node"

    def patch(self) -> dict[str, Any]:
        """The JSON merge patch that makes the change (``spec.taints`` is replaced whole)."""
        out: dict[str, Any] = {}
        if self.labels:
            out["metadata"] = {"labels": dict(self.labels)}
        if self.taints is not None:
            out["spec"] = {"taints": [t.as_dict() for t in self.taints]}
        return out

    def commands(self) -> list[str]:
        """The same change as ``kubectl`` commands, one per line."""
        out = []
        if self.labels:
            out.append(shlex.join(["kubectl", "label", "node", self.node,
                                   *[f"{k}={v}" for k, v in self.labels.items()], "--overwrite"]))
        out += [shlex.join(["kubectl", "taint", "node", self.node, f"{t.key}:{t.effect}-"]) for t in self.removed]
        out += [shlex.join(["kubectl", "taint", "node", self.node, str(t), "--overwrite"]) for t in self.added]
        return out

    def describe(self) -> str:
        return " && ".join(self.commands())

    def what(self) -> str:
        """``the label hardware=heavy and taint heavy=true:NoSchedule`` (for messages)."""
        parts = [f"label {k}={v}" for k, v in self.labels.items()] + [f"taint {t}" for t in self.added]
        return " and ".join(parts) or "taints as configured"

    def remaining(self, node: Mapping[str, Any]) -> list[str]:
        """What the node (as the API returned it after the patch) still lacks; empty when it took the change."""
        labels = (node.get("metadata") or {}).get("labels") or {}
        have = [NodeTaint.of(t) for t in (node.get("spec") or {}).get("taints") or []]
        out = [f"label {k}={v}" for k, v in self.labels.items() if labels.get(k) != v]
        out += [f"taint {t}" for t in self.added if t not in have]
        out += [f"still has taint {t}" for t in self.removed if t in have]
        return out


def node_change(node: str, *, want_labels: Mapping[str, str], want_taints: Sequence[NodeTaint],
                have_labels: Mapping[str, str], have_taints: Sequence[NodeTaint]) -> NodeChange | None:
    """The change that gives ``node`` the config's labels and taints (see the module's rule), or None.

    Args:
        node: the node's name.
        want_labels: the labels the config names for it.
        want_taints: the taints the config names for it.
        have_labels: the node's labels now.
        have_taints: the node's taints now, in order.
    """
    labels = {k: v for k, v in want_labels.items() if have_labels.get(k) != v}
    keys = {t.key for t in want_taints}
    removed = tuple(t for t in have_taints if t.key in keys and t not in want_taints)
    added = tuple(t for t in want_taints if t not in have_taints)
    taints = None
    if removed or added:
        taints = tuple(t for t in have_taints if t.key not in keys) + tuple(want_taints)
    if not labels and taints is None:
        return None
    return NodeChange(node, labels, taints, removed, added)


def node_change_for(node: str, want_labels: Mapping[str, str], want_taints: Sequence[NodeTaint],
                    live: Mapping[str, Any]) -> NodeChange | None:
    """:func:`node_change` against a Node object as the API returns it."""
    return node_change(node, want_labels=want_labels, want_taints=want_taints,
                       have_labels=(live.get("metadata") or {}).get("labels") or {},
                       have_taints=[NodeTaint.of(t) for t in (live.get("spec") or {}).get("taints") or []])


class NodePatcher(Protocol):
    """What :func:`apply_node_change` needs of :class:`o11yctl.executors.kube.Kube`."""

    def merge_patch(self, api_version: str, kind: str, name: str, namespace: str | None,
                    patch: Any) -> dict[str, Any]: ...


def apply_node_change(kube: NodePatcher, change: NodeChange, *, step: str, component: str) -> StepResult:
    """Send one node change and check what the API returned: ``changed``, or ``failed`` with what is missing.

    Raises:
        KubeError: the API refused the patch.
    """
    node = kube.merge_patch("v1", "Node", change.node, None, change.patch())
    missing = change.remaining(node)
    if missing:
        return StepResult(step, component, "failed", f"node {change.node} still lacks {', '.join(missing)}",
                          host=change.node)
    return StepResult(step, component, "changed", f"node {change.node}: {'; '.join(change.commands())}",
                      host=change.node)
