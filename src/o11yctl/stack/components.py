"""What gets deployed, as data: the components of a profile, in the runbook's order.

Each component says what it is made of (a Helm release with its values file, or a
manifest), where its data lives (a local PersistentVolume and a directory on the
storage node), how to reach it (its Service, port and readiness path), where it runs,
and what it needs first. The plan, the template context, uninstall's order, preflight,
the wait step, status, verify's registry and doctor's expectations all iterate over
these components instead of naming them: adding a component is one entry here (and its
template).

This is the one place that lists the components; the chart versions that deploy them
live in :mod:`o11yctl.stack.catalog`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

#: Where a component's pods run: on the storage node (its data is there), on the node the
#: config names for Grafana, on every node (a DaemonSet), or nowhere (only manifests).
Placement = Literal["storage", "grafana", "every-node", "none"]


@dataclass(frozen=True, slots=True)
class DataVolume:
    """A component's data: a directory on the storage node, a local PV pinned there and its claim."""

    pv: str  # PersistentVolume name, e.g. loki-pv
    pvc: str  # PersistentVolumeClaim name, e.g. loki-pvc
    directory: str  # under storage.root, e.g. loki
    mount_path: str  # where the container sees it, e.g. /var/loki
    manifest: str  # the rendered file holding the PV and the claim, e.g. 01-loki-storage.yaml
    #: Entries the component writes into its directory once it runs (for verify's data check).
    writes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How the component answers: its Service, port and readiness path (None: no readiness path)."""

    service: str
    port: int
    ready_path: str | None = "/ready"
    #: Ports where clients send data besides ``port`` (Tempo\'s OTLP receivers).
    ingest_ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Component:
    """One thing the stack is made of.

    Attributes:
        name: the name ``--only``/``--skip`` take, the verify group and the config section.
        title: the name in messages (``Loki``).
        release: the Helm release (None: the component is a manifest).
        values: the values file rendered for the release (one of the runbook's file names).
        manifest: the manifest file the component applies itself (namespace, route).
        volume: its data volume, for components that keep data.
        endpoint: its Service, when it answers on one.
        after: components whose steps must finish before this one's.
        placement: where its pods run.
        pod_label: the ``app.kubernetes.io/name`` its chart gives its pods.
        checks: the module of :mod:`o11yctl.verify` with its own end-to-end checks (None: the generic ones).
        template: the template of its manifest (default: the manifest's name plus ``.j2`` under templates/;
            an absolute path for a template kept elsewhere).
    """

    name: str
    title: str
    release: str | None = None
    values: str | None = None
    manifest: str | None = None
    volume: DataVolume | None = None
    endpoint: Endpoint | None = None
    after: tuple[str, ...] = ()
    placement: Placement = "none"
    pod_label: str = ""
    checks: str | None = None
    template: str | None = None

    @property
    def files(self) -> tuple[str, ...]:
        """The rendered files this component brings."""
        return tuple(f for f in (self.manifest, self.volume.manifest if self.volume else None, self.values) if f)


NAMESPACE = Component("namespace", "the namespace", manifest="00-namespace.yaml")
LOKI = Component(
    "loki", "Loki", release="loki", values="02-loki-values.yaml",
    volume=DataVolume("loki-pv", "loki-pvc", "loki", "/var/loki", "01-loki-storage.yaml", writes=("wal", "tsdb-")),
    endpoint=Endpoint("loki", 3100), placement="storage", pod_label="loki", checks="loki",
)
ALLOY = Component("alloy", "Alloy", release="alloy", values="03-alloy-values.yaml", after=("loki",),
                  placement="every-node", pod_label="alloy", checks="alloy")
TEMPO = Component(
    "tempo", "Tempo", release="tempo", values="07-tempo-values.yaml",
    volume=DataVolume("tempo-pv", "tempo-pvc", "tempo", "/var/tempo", "06-tempo-storage.yaml", writes=("wal",)),
    endpoint=Endpoint("tempo", 3200, ingest_ports=(4317, 4318)), placement="storage", pod_label="tempo",
    checks="tempo",
)
GRAFANA = Component("grafana", "Grafana", release="grafana", values="04-grafana-values.yaml", after=("loki", "tempo"),
                    endpoint=Endpoint("grafana", 80, ready_path=None), placement="grafana", pod_label="grafana",
                    checks="grafana")
ROUTE = Component("route", "the HTTPRoute", manifest="05-grafana-httproute.yaml", after=("grafana",))
POLICY = Component("policy", "the NetworkPolicies", manifest="08-network-policies.yaml")

#: The runbook's stack, in the runbook's order (the plan follows it).
SINGLE_NODE: tuple[Component, ...] = (NAMESPACE, LOKI, ALLOY, TEMPO, GRAFANA, ROUTE)
PROFILES: dict[str, tuple[Component, ...]] = {"single-node": SINGLE_NODE}
#: Components a config switch adds to any profile: the switch's dotted key -> its components.
OPTIONAL: dict[str, tuple[Component, ...]] = {"network_policy.enabled": (POLICY,)}
DEFAULT_PROFILE = "single-node"


@dataclass(frozen=True, slots=True)
class Stack:
    """The components of one profile, with the lookups every layer needs."""

    components: tuple[Component, ...]

    def __iter__(self) -> Iterator[Component]:
        return iter(self.components)

    def get(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(c.name == name for c in self.components)

    @property
    def releases(self) -> tuple[Component, ...]:
        """The components deployed by a Helm release, in order."""
        return tuple(c for c in self.components if c.release)

    @property
    def data(self) -> tuple[Component, ...]:
        """The components that keep data on the storage node, in order."""
        return tuple(c for c in self.components if c.volume)

    @property
    def files(self) -> tuple[str, ...]:
        """Every rendered file, in the runbook's numbering."""
        return tuple(sorted(f for c in self.components for f in c.files))

    @property
    def selectable(self) -> tuple[str, ...]:
        """The names ``install``/``uninstall`` take in ``--only``/``--skip``, in plan order.

        Data components' directories and volumes are selected as ``storage`` and ``volumes``
        (named where the first data component comes); every other component by its name.
        """
        out: list[str] = []
        for c in self.components:
            if c.volume and "storage" not in out:
                out += ["storage", "volumes"]
            out.append(c.name)
        return tuple(out)

    @property
    def check_groups(self) -> tuple[str, ...]:
        """The groups ``verify --only``/``--skip`` take: ``cluster``, then each component with checks."""
        return ("cluster", *(c.name for c in self.components if c.checks or (c.endpoint and c.endpoint.ready_path)))

    def on_storage_node(self) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.placement == "storage")


def stack_for(profile: str = DEFAULT_PROFILE, extra: Sequence[Component] = ()) -> Stack:
    """The stack of a profile (``extra`` components appended, for tests of the layout)."""
    return Stack((*PROFILES[profile], *extra))
