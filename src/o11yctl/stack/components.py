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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

#: Where a component's pods run: on the storage node (its data is there), on the node the
#: config names for Grafana, on every node (a DaemonSet), spread over the nodes its config
#: section names (one per node), on the object store's nodes, or nowhere (only manifests).
Placement = Literal["storage", "grafana", "every-node", "spread", "store-nodes", "none"]


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
    #: Ports where clients send data besides ``port`` (Tempo's OTLP receivers).
    ingest_ports: tuple[int, ...] = ()
    #: Ports only o11yctl's checks reach, through the API server (the store's filer listing).
    admin_ports: tuple[int, ...] = ()


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
        template: the template of its manifest or values file (default: the file's name plus ``.j2`` under
            templates/, or the chart set's directory for values; an absolute path for a template kept elsewhere).
        when: a dotted config key that must be true (or set) for the component to be part of the stack.
        object_storage: it keeps its data in the object store's buckets.
        node_dirs: directories under ``object_storage.root`` it needs on each of its nodes, made over SSH.
        node_owner: the uid and gid its pods run as, the owner of ``node_dirs``.
        credentials: it is the object store's credentials Secret (made by install, never rendered).
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
    when: str | None = None
    object_storage: bool = False
    node_dirs: tuple[str, ...] = ()
    node_owner: tuple[int, int] | None = None
    credentials: bool = False

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
POLICY = Component("policy", "the NetworkPolicies", manifest="08-network-policies.yaml",
                   when="network_policy.enabled")

# --- profile scalable: Loki and Tempo on object storage ---------------------------------------------------------
CREDENTIALS = Component("credentials", "the object storage credentials", credentials=True)
#: SeaweedFS: masters, filers (each serving S3) and one volume server per node; data on the nodes' disks.
STORE = Component(
    "store", "the object store", release="seaweedfs", values="09-object-store-values.yaml",
    endpoint=Endpoint("seaweedfs-s3", 8333, ready_path=None, admin_ports=(8888,)), after=("credentials",),
    placement="store-nodes",
    pod_label="seaweedfs", checks="store", template="scalable/09-object-store-values.yaml.j2",
    when="object_storage.in_cluster", node_dirs=("object_store", "filer_store", "seaweed-master"),
    node_owner=(1000, 1000),
)
#: An external store's private CA (object_storage.ca_file): a ConfigMap Loki and Tempo mount and trust.
STORE_CA = Component("store-ca", "the object store's CA certificate", manifest="10-object-store-ca.yaml",
                     template="scalable/10-object-store-ca.yaml.j2", when="object_storage.ca_file")
LOKI_S3 = Component(
    "loki", "Loki", release="loki", values="02-loki-values.yaml", endpoint=Endpoint("loki", 3100),
    after=("credentials", "store", "store-ca"), placement="spread", pod_label="loki", checks="loki",
    template="scalable/02-loki-values.yaml.j2", object_storage=True,
)
TEMPO_S3 = Component(
    "tempo", "Tempo", release="tempo", values="07-tempo-values.yaml",
    endpoint=Endpoint("tempo", 3200, ingest_ports=(4317, 4318)), after=("credentials", "store", "store-ca"),
    placement="spread", pod_label="tempo", checks="tempo", template="scalable/07-tempo-values.yaml.j2",
    object_storage=True,
)

# --- moving a single-node install to profile scalable: its first stage ----------------------------------------
#: Loki and Tempo stay where they are (the storage node, their volumes) and write to the object store too.
#: The ConfigMap recording the move (the day Loki's bucket period starts), applied before Loki and Tempo change.
MIGRATION_RECORD = "o11yctl-migration"
MIGRATION = Component("migration", "the migration record", manifest="11-migration-record.yaml",
                      template="migrate/11-migration-record.yaml.j2")
LOKI_BRIDGE = replace(LOKI, after=("credentials", "store", "store-ca", "migration"),
                      template="migrate/02-loki-values.yaml.j2", object_storage=True)
TEMPO_BRIDGE = replace(TEMPO, after=("credentials", "store", "store-ca", "migration"),
                       template="migrate/07-tempo-values.yaml.j2", object_storage=True)

#: The runbook's stack, in the runbook's order (the plan follows it).
SINGLE_NODE: tuple[Component, ...] = (NAMESPACE, LOKI, ALLOY, TEMPO, GRAFANA, ROUTE, POLICY)
#: Loki and Tempo on object storage; the store in the cluster unless the config names one.
SCALABLE: tuple[Component, ...] = (NAMESPACE, CREDENTIALS, STORE_CA, STORE, LOKI_S3, ALLOY, TEMPO_S3, GRAFANA, ROUTE,
                                   POLICY)
#: The migration's first stage (not a profile a config names: ``Config.bridged``): the single-node data
#: components with the object store beside them.
MIGRATING: tuple[Component, ...] = (NAMESPACE, MIGRATION, CREDENTIALS, STORE_CA, STORE, LOKI_BRIDGE, ALLOY,
                                    TEMPO_BRIDGE, GRAFANA, ROUTE, POLICY)
#: The move's finish stage (``Config.finishing``): profile scalable, its record saying so before Loki and Tempo
#: change (a re-run after an interruption goes on finishing).
FINISHING: tuple[Component, ...] = tuple(
    x for c in SCALABLE for x in ((c, MIGRATION) if c is NAMESPACE else
                                  (replace(c, after=(*c.after, "migration")),) if c.object_storage else (c,)))
PROFILES: dict[str, tuple[Component, ...]] = {"single-node": SINGLE_NODE, "scalable": SCALABLE,
                                              "migrating": MIGRATING, "finishing": FINISHING}
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

        Directories made over SSH and local volumes are selected as ``storage`` and ``volumes``
        (named where the first component with them comes); every other component by its name.
        """
        out: list[str] = []
        for c in self.components:
            if (c.volume or c.node_dirs) and "storage" not in out:
                out.append("storage")
            if c.volume and "volumes" not in out:
                out.append("volumes")
            out.append(c.name)
        return tuple(out)

    @property
    def check_groups(self) -> tuple[str, ...]:
        """The groups ``verify --only``/``--skip`` take: ``cluster``, then each component with checks."""
        return ("cluster", *(c.name for c in self.components if c.checks or (c.endpoint and c.endpoint.ready_path)))

    def on_storage_node(self) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.placement == "storage")


def stack_for(profile: str = DEFAULT_PROFILE, extra: Sequence[Component] = (),
              enabled: Callable[[str], bool] = lambda key: False) -> Stack:
    """The stack of a profile: its components whose ``when`` switch is ``enabled`` (``extra`` appended,
    for tests of the layout); an ``after`` naming a component left out is dropped."""
    chosen = [c for c in (*PROFILES[profile], *extra) if c.when is None or enabled(c.when)]
    names = {c.name for c in chosen}
    return Stack(tuple(c if all(a in names for a in c.after) else
                       replace(c, after=tuple(a for a in c.after if a in names)) for c in chosen))
