"""What doctor knows about the cluster: small fact values, their parsers, and the gatherers.

The parsers (``parse_*``, :func:`expectations`) are pure: they turn the API's own JSON
and the config into frozen values the rules judge. The gatherers are the only I/O:

- :func:`gather_cluster` reads pods, events, PVs, PVCs and nodes through the Kubernetes
  API, and the last lines of the containers' logs and previous logs a rule reads; a log the
  API server could not give is a fact too (:class:`LogFailure`: its message whole, and the
  failed dial to the node's kubelet when that is why);
- :func:`gather_checks` runs the checks of `verify` that only read (the cluster's objects,
  Alloy's logs, each service's readiness through the API server's proxy) and keeps their
  verdicts as :class:`CheckFacts`;
- :func:`probe_ownership` runs ``stat`` on the storage node over SSH for the data
  directories a rule asks about (see :func:`o11yctl.doctor.rules.ownership_probes`);
- :func:`diagnose_network` asks fix-vxlan's read-only diagnosis about the overlay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from o11yctl.config import Config
from o11yctl.errors import EXIT_UNREACHABLE, KubeError, O11yError
from o11yctl.model import CommandResult, SshTarget
from o11yctl.stack.context import data_dir, stack_of
from o11yctl.stack.nodes import NodeTaint
from o11yctl.stack.quantity import format_quantity, parse_quantity

if TYPE_CHECKING:
    from o11yctl.model import CheckResult
    from o11yctl.vxlan.diagnose import Diagnosis

#: How many lines of each log doctor reads (the end of the log is where a crash explains itself).
LOG_TAIL_LINES = 200
#: The label the charts put on every pod, naming the component.
NAME_LABEL = "app.kubernetes.io/name"
HOSTNAME_LABEL = "kubernetes.io/hostname"

#: A log as read: (pod, container, previous run?).
LogKey = tuple[str, str, bool]


class KubeReader(Protocol):
    """What doctor needs of :class:`o11yctl.executors.kube.Kube` to read the cluster."""

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """One object, or None."""
        ...

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of a kind."""
        ...

    def pod_log(self, namespace: str, pod: str, *, container: str | None = None, previous: bool = False,
                tail_lines: int | None = None, since_seconds: int | None = None,
                timeout: float | None = None) -> str | None:
        """One container's log, or None when the API server has none to give."""
        ...


class CommandRunner(Protocol):
    """What doctor needs of :class:`o11yctl.executors.ssh.SshPool`."""

    def run(self, target: SshTarget, argv: Sequence[str], *, sudo: bool = False, timeout: float | None = None,
            step: str = "") -> CommandResult:
        """Run one command on a node."""
        ...


# --- values -----------------------------------------------------------------------------------


#: A node taint (the one taint value every command shares).
TaintFact = NodeTaint


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod's toleration, as in ``spec.tolerations``."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: TaintFact) -> bool:
        """Whether this toleration lets a pod onto a node with ``taint`` (the scheduler's rule)."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """One container's status."""

    name: str
    ready: bool = False
    restarts: int = 0
    state: str = "waiting"  # running, waiting or terminated
    reason: str = ""  # e.g. CrashLoopBackOff (waiting), Error (terminated)
    message: str = ""
    last_reason: str = ""  # the previous run's termination reason, e.g. Error or OOMKilled
    last_exit_code: int | None = None
    init: bool = False


@dataclass(frozen=True, slots=True)
class PodFacts:
    """One pod: where it runs or why it cannot, and its containers."""

    name: str
    component: str = ""
    phase: str = "Pending"
    node: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    claims: tuple[str, ...] = ()
    containers: tuple[ContainerFacts, ...] = ()
    ready: bool = False
    unschedulable: str = ""  # the PodScheduled condition's message when it is False
    requests: Mapping[str, str] = field(default_factory=dict)  # summed cpu and memory requests
    ip: str = ""  # status.podIP

    @property
    def subject(self) -> str:
        return f"pod/{self.name}"


@dataclass(frozen=True, slots=True)
class EventFacts:
    """One event about an object in the namespace."""

    kind: str
    name: str
    reason: str
    message: str
    type: str = "Normal"
    count: int = 1
    last_seen: str = ""

    def describe(self) -> str:
        times = f" (x{self.count})" if self.count > 1 else ""
        when = f" at {self.last_seen}" if self.last_seen else ""
        return f"event {self.reason} on {self.kind.lower()}/{self.name}{when}{times}: {self.message}"


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """The claim a PV is reserved for or bound to."""

    namespace: str
    name: str
    uid: str = ""


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    """One PersistentVolume."""

    name: str
    phase: str = "Available"
    storage_class: str = ""
    capacity: str = ""
    access_modes: tuple[str, ...] = ()
    claim_ref: ClaimRef | None = None
    affinity_hostnames: tuple[str, ...] | None = None  # kubernetes.io/hostname In [...], None when not pinned
    path: str = ""


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """One PersistentVolumeClaim."""

    name: str
    namespace: str
    uid: str = ""
    phase: str = "Pending"
    storage_class: str | None = None
    request: str = ""
    access_modes: tuple[str, ...] = ()
    volume_name: str = ""


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """One node: labels, taints, readiness and what it can give pods."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[TaintFact, ...] = ()
    ready: bool = True
    allocatable: Mapping[str, str] = field(default_factory=dict)
    addresses: tuple[tuple[str, str], ...] = ()  # status.addresses: (type, address), e.g. ("InternalIP", "10.0.0.103")

    @property
    def hostname(self) -> str:
        return self.labels.get(HOSTNAME_LABEL, self.name)


@dataclass(frozen=True, slots=True)
class Ownership:
    """The owner of a data directory on the storage node, as ``stat`` printed it (or why not)."""

    node: str
    path: str
    owner: str | None = None  # "uid:gid"
    mode: str | None = None  # octal, e.g. "755"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """fix-vxlan's diagnosis of the overlay between the nodes, as doctor uses it."""

    ok: bool | None  # None: not diagnosed (the reason is in summary)
    summary: str
    details: tuple[str, ...] = ()
    fixable: bool = False


@dataclass(frozen=True, slots=True)
class Dial:
    """A TCP connection the API server tried and that failed, as its message says (Go's ``dial tcp``)."""

    host: str
    port: int
    why: str  # "connect: no route to host", "i/o timeout", "connect: connection refused"...
    text: str  # "dial tcp 10.0.0.103:10250: connect: no route to host"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class LogFailure:
    """A container log the API server did not give, and why (its answer, whole)."""

    pod: str
    container: str
    previous: bool
    node: str | None
    message: str
    kubelet: Dial | None = None  # the failed dial to the node's kubelet, when that is why

    @property
    def what(self) -> str:
        return f"{self.pod}/{self.container}" + (" (previous run)" if self.previous else "")


@dataclass(frozen=True, slots=True)
class CheckFacts:
    """One of `verify`'s checks, as doctor ran it, with what its detail says the API server met."""

    id: str
    group: str
    status: str  # PASS, WARN, FAIL or SKIP
    detail: str
    hint: str | None = None
    component: str = ""  # the component it is about (a group, or the last part of a cluster.* id)
    dial: Dial | None = None  # a failed dial of the API server named in the detail
    kubelet: bool = False  # that dial went to a kubelet (logs), not to a pod behind a Service
    no_endpoints: bool = False  # the API server said the Service has no Ready endpoint

    @property
    def failing(self) -> bool:
        return self.status in ("FAIL", "WARN")


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """One data volume the config asks for."""

    component: str
    pv: str
    pvc: str
    host_path: str
    size: str
    mount_path: str


@dataclass(frozen=True, slots=True)
class Expected:
    """What the config says the cluster should look like (the part the rules compare with)."""

    namespace: str
    storage_node: str
    storage_class: str
    owner: str  # "uid:gid"
    volumes: tuple[VolumeSpec, ...]
    node_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    node_taints: Mapping[str, tuple[TaintFact, ...]] = field(default_factory=dict)
    node_addresses: Mapping[str, str] = field(default_factory=dict)  # nodes[].name -> nodes[].address
    servers: tuple[str, ...] = ()  # the nodes whose role is server (where the API server runs)
    services: Mapping[str, str] = field(default_factory=dict)  # component -> "svc/<name>:<port>"
    #: Profile scalable: the components keeping data in the object store, and where it is.
    object_storage: tuple[str, ...] = ()
    object_store: str = ""  # the endpoint (host:port), or the in-cluster store's Service

    def volume_for(self, component: str) -> VolumeSpec | None:
        return next((v for v in self.volumes if v.component == component), None)


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the rules judge."""

    expected: Expected
    namespace_exists: bool = True
    pods: tuple[PodFacts, ...] = ()
    events: tuple[EventFacts, ...] = ()
    volumes: tuple[VolumeFacts, ...] = ()
    claims: tuple[ClaimFacts, ...] = ()
    nodes: tuple[NodeFacts, ...] = ()
    logs: Mapping[LogKey, str] = field(default_factory=dict)
    ownership: Mapping[str, Ownership] = field(default_factory=dict)
    network: NetworkFacts | None = None
    log_failures: tuple[LogFailure, ...] = ()
    checks: tuple[CheckFacts, ...] = ()

    def pod(self, name: str) -> PodFacts | None:
        return next((p for p in self.pods if p.name == name), None)

    def claim(self, name: str) -> ClaimFacts | None:
        return next((c for c in self.claims if c.name == name), None)

    def volume(self, name: str) -> VolumeFacts | None:
        return next((v for v in self.volumes if v.name == name), None)

    def node(self, name: str) -> NodeFacts | None:
        return next((n for n in self.nodes if n.name == name), None)

    def events_for(self, kind: str, name: str) -> tuple[EventFacts, ...]:
        return tuple(e for e in self.events if e.kind == kind and e.name == name)

    def log(self, pod: str, container: str, *, previous: bool = False) -> str:
        return self.logs.get((pod, container, previous), "")

    def node_at(self, host: str) -> str | None:
        """The node whose address (in the cluster or the config) is ``host``, or None."""
        for node in self.nodes:
            if host == node.name or any(host == address for _kind, address in node.addresses):
                return node.name
        return next((name for name, address in self.expected.node_addresses.items() if address == host), None)


# --- parsers (pure) ---------------------------------------------------------------------------


def expectations(cfg: Config) -> Expected:
    """The part of the config the rules compare the cluster with."""
    volumes = tuple(
        VolumeSpec(component=c.name, pv=c.volume.pv, pvc=c.volume.pvc, host_path=data_dir(cfg, c),
                   size=getattr(cfg.components, c.name).size, mount_path=c.volume.mount_path)
        for c in stack_of(cfg).data if c.volume is not None
    )
    return Expected(
        namespace=cfg.cluster.namespace,
        storage_node=cfg.storage.node,
        storage_class=cfg.storage.class_name,
        owner=f"{cfg.storage.owner_uid}:{cfg.storage.owner_gid}",
        volumes=volumes,
        node_labels={n.name: dict(n.labels) for n in cfg.nodes},
        node_taints={n.name: tuple(TaintFact(t.key, t.value, t.effect) for t in n.taints) for n in cfg.nodes},
        node_addresses={n.name: n.address for n in cfg.nodes},
        servers=tuple(n.name for n in cfg.nodes if n.role == "server"),
        services={c.name: f"svc/{c.endpoint.service}:{c.endpoint.port}" for c in stack_of(cfg) if c.endpoint},
        object_storage=tuple(c.name for c in stack_of(cfg) if c.object_storage),
        object_store=_object_store(cfg),
    )


def _object_store(cfg: Config) -> str:
    if cfg.profile != "scalable":
        return ""
    from o11yctl.stack.context import build_context

    return str(build_context(cfg)["object_storage"]["endpoint"])


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _container(status: Mapping[str, Any], *, init: bool = False) -> ContainerFacts:
    state = status.get("state") or {}
    kind = next(iter(state), "waiting")
    detail = state.get(kind) or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    exit_code = last.get("exitCode")
    return ContainerFacts(
        name=str(status.get("name", "")), ready=bool(status.get("ready")),
        restarts=int(status.get("restartCount") or 0),
        state=str(kind), reason=str(detail.get("reason") or ""), message=str(detail.get("message") or ""),
        last_reason=str(last.get("reason") or ""), last_exit_code=int(exit_code) if exit_code is not None else None,
        init=init,
    )


def parse_pod(obj: Mapping[str, Any]) -> PodFacts:
    """A Pod object -> :class:`PodFacts`."""
    meta, spec, status = _meta(obj), _spec(obj), _status(obj)
    labels = meta.get("labels") or {}
    conditions = {str(c.get("type")): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    unschedulable = str(scheduled.get("message") or scheduled.get("reason") or "") \
        if scheduled.get("status") == "False" else ""
    containers = tuple(_container(s, init=True) for s in status.get("initContainerStatuses") or []) + \
        tuple(_container(s) for s in status.get("containerStatuses") or [])
    if not containers:
        containers = tuple(ContainerFacts(name=str(c.get("name", ""))) for c in spec.get("containers") or [])
    claims = tuple(str((v.get("persistentVolumeClaim") or {}).get("claimName"))
                   for v in spec.get("volumes") or [] if v.get("persistentVolumeClaim"))
    tolerations = tuple(
        Toleration(key=str(t.get("key") or ""), operator=str(t.get("operator") or "Equal"),
                   value=str(t.get("value") or ""), effect=str(t.get("effect") or ""))
        for t in spec.get("tolerations") or []
    )
    requests: dict[str, float] = {}
    for c in spec.get("containers") or []:
        for res, amount in ((c.get("resources") or {}).get("requests") or {}).items():
            if res in ("cpu", "memory"):
                requests[res] = requests.get(res, 0.0) + (parse_quantity(str(amount)) or 0.0)
    return PodFacts(
        name=str(meta.get("name", "")),
        component=str(labels.get(NAME_LABEL) or labels.get("app") or ""),
        phase=str(status.get("phase") or "Pending"),
        node=spec.get("nodeName") or None,
        node_selector=dict(spec.get("nodeSelector") or {}),
        tolerations=tolerations,
        claims=claims,
        containers=containers,
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        unschedulable=unschedulable,
        requests={k: format_quantity(v, k) for k, v in requests.items()},
        ip=str(status.get("podIP") or ""),
    )


def parse_event(obj: Mapping[str, Any]) -> EventFacts:
    """An Event (core/v1) -> :class:`EventFacts`."""
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or _meta(obj).get("creationTimestamp") or ""
    return EventFacts(
        kind=str(involved.get("kind", "")), name=str(involved.get("name", "")), reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or obj.get("note") or "").strip(), type=str(obj.get("type") or "Normal"),
        count=int(obj.get("count") or 1), last_seen=str(last),
    )


def parse_volume(obj: Mapping[str, Any]) -> VolumeFacts:
    """A PersistentVolume -> :class:`VolumeFacts`."""
    spec, status = _spec(obj), _status(obj)
    ref = spec.get("claimRef")
    hostnames: list[str] | None = None
    terms = ((spec.get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms") or []
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In":
                hostnames = (hostnames or []) + [str(v) for v in expr.get("values") or []]
    path = (spec.get("local") or {}).get("path") or (spec.get("hostPath") or {}).get("path") or ""
    return VolumeFacts(
        name=str(_meta(obj).get("name", "")),
        phase=str(status.get("phase") or "Available"),
        storage_class=str(spec.get("storageClassName") or ""),
        capacity=str((spec.get("capacity") or {}).get("storage") or ""),
        access_modes=tuple(str(m) for m in spec.get("accessModes") or []),
        claim_ref=ClaimRef(str(ref.get("namespace") or ""), str(ref.get("name") or ""), str(ref.get("uid") or ""))
        if ref else None,
        affinity_hostnames=tuple(hostnames) if hostnames is not None else None,
        path=str(path),
    )


def parse_claim(obj: Mapping[str, Any]) -> ClaimFacts:
    """A PersistentVolumeClaim -> :class:`ClaimFacts`."""
    meta, spec, status = _meta(obj), _spec(obj), _status(obj)
    sc = spec.get("storageClassName")
    return ClaimFacts(
        name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")), uid=str(meta.get("uid") or ""),
        phase=str(status.get("phase") or "Pending"), storage_class=str(sc) if sc is not None else None,
        request=str(((spec.get("resources") or {}).get("requests") or {}).get("storage") or ""),
        access_modes=tuple(str(m) for m in spec.get("accessModes") or []),
        volume_name=str(spec.get("volumeName") or ""),
    )


def parse_node(obj: Mapping[str, Any]) -> NodeFacts:
    """A Node -> :class:`NodeFacts`."""
    meta, spec, status = _meta(obj), _spec(obj), _status(obj)
    conditions = {str(c.get("type")): c for c in status.get("conditions") or []}
    return NodeFacts(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        taints=tuple(TaintFact(str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect") or ""))
                     for t in spec.get("taints") or []),
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        allocatable={k: str(v) for k, v in (status.get("allocatable") or {}).items() if k in ("cpu", "memory")},
        addresses=tuple((str(a.get("type", "")), str(a.get("address", ""))) for a in status.get("addresses") or []),
    )


# --- gathering (I/O) --------------------------------------------------------------------------


def gather_cluster(kube: KubeReader, cfg: Config, *, tail_lines: int = LOG_TAIL_LINES) -> Facts:
    """Read what the rules need from the Kubernetes API.

    Args:
        kube: a connected client (:func:`o11yctl.executors.kube.connect`).
        cfg: the configuration (namespace, volume names, storage node).
        tail_lines: how many lines of each container log to read.

    Returns:
        The facts, without ownership or network facts (those come from the nodes).

    Raises:
        KubeError: the API refused a read or cannot be reached (then with exit code 3).
    """
    expected = expectations(cfg)
    ns = expected.namespace
    nodes = tuple(parse_node(n) for n in kube.list("v1", "Node"))
    pv_names = {v.pv for v in expected.volumes}
    volumes = tuple(
        parse_volume(v) for v in kube.list("v1", "PersistentVolume")
        if _meta(v).get("name") in pv_names or ((_spec(v).get("claimRef") or {}).get("namespace") == ns)
    )
    if kube.get("v1", "Namespace", ns) is None:
        return Facts(expected=expected, namespace_exists=False, nodes=nodes, volumes=volumes)
    raw_pods = kube.list("v1", "Pod", ns)
    pods = tuple(parse_pod(p) for p in raw_pods)
    events = tuple(parse_event(e) for e in kube.list("v1", "Event", ns))
    claims = tuple(parse_claim(c) for c in kube.list("v1", "PersistentVolumeClaim", ns))
    logs: dict[LogKey, str] = {}
    failures: list[LogFailure] = []
    asked: set[str] = set()  # the nodes whose kubelet a log read went through
    for pod in pods:
        for container in pod.containers:
            if not _log_matters(pod, container, expected.object_storage):
                continue
            for previous in (False, True) if container.restarts else (False,):
                got = fetch_log(kube, ns, pod, container.name, previous=previous, tail_lines=tail_lines)
                asked.add(pod.node or "")
                if isinstance(got, LogFailure):
                    failures.append(got)
                elif got is not None:
                    logs[(pod.name, container.name, previous)] = got
    # Every node's kubelet is asked once: the last line of one running container there.
    for pod in pods:
        running = next((c for c in pod.containers if c.state == "running" and not c.init), None)
        if pod.node and pod.node not in asked and running is not None:
            asked.add(pod.node)
            got = fetch_log(kube, ns, pod, running.name, tail_lines=1)
            if isinstance(got, LogFailure):
                failures.append(got)
    return Facts(expected=expected, pods=pods, events=events, volumes=volumes, claims=claims, nodes=nodes,
                 logs=logs, log_failures=tuple(failures))


def _log_matters(pod: PodFacts, container: ContainerFacts, on_object_storage: Sequence[str] = ()) -> bool:
    """Whether a rule reads this container's log: Alloy's and (profile scalable) the object store's users'
    always (a bucket's errors do not make them unready), others' when they restart or are not ready."""
    if container.state == "waiting" and container.restarts == 0:
        return False  # never started: nothing to read
    return (pod.component == "alloy" or pod.component in on_object_storage or container.restarts > 0
            or (pod.phase == "Running" and not container.ready))


def fetch_log(kube: KubeReader, namespace: str, pod: PodFacts, container: str, *, previous: bool = False,
              tail_lines: int | None = LOG_TAIL_LINES) -> str | LogFailure | None:
    """The end of one container's log (or of its previous run); None when it has none; or why it could not be read.

    Raises:
        KubeError: the API cannot be reached, or does not let this user read logs (exit 3).
    """
    from o11yctl.executors.kube import KubeletUnreachable

    try:
        return kube.pod_log(namespace, pod.name, container=container, previous=previous,
                            tail_lines=tail_lines or None)
    except KubeletUnreachable as exc:  # the API server is up, the pod's kubelet is out of its reach
        d = exc.dial
        return LogFailure(pod.name, container, previous, pod.node, exc.api_status.describe(),
                          kubelet=Dial(d.host, d.port, d.why, d.text))
    except KubeError as exc:
        if exc.exit_code == EXIT_UNREACHABLE:
            raise  # the API is down, or refuses this user: nothing else doctor reads will work either
        return LogFailure(pod.name, container, previous, pod.node, exc.message)


def gather_checks(kube: Any, cfg: Config, *, timeout: float = 15.0) -> tuple[CheckFacts, ...]:
    """Run `verify`'s read-only checks through the Kubernetes API and keep their verdicts as facts.

    Args:
        kube: a connected client.
        cfg: the configuration.
        timeout: seconds for all of them together.
    """
    from o11yctl.verify.run import run_read_only

    # Each service is asked once (a poll interval past the deadline): doctor describes the cluster as it is now,
    # and a 503 while a pod warms up is a verdict like any other.
    return tuple(check_facts(r) for r in run_read_only(cfg, kube, timeout=timeout, poll_interval=timeout + 1.0))


def check_facts(result: CheckResult) -> CheckFacts:
    """A check's verdict, with the failed dial (and its kind) its detail names, as a fact."""
    from o11yctl.executors.kube import KUBELET_PORT, dial_error

    found = dial_error(result.detail) if result.status in ("FAIL", "WARN") else None
    dial = Dial(found.host, found.port, found.why, found.text) if found else None
    component = result.group if result.group != "cluster" else result.id.rsplit(".", 1)[-1]
    return CheckFacts(
        id=result.id, group=result.group, status=result.status, detail=result.detail, hint=result.hint,
        component=component, dial=dial,
        kubelet=dial is not None and (dial.port == KUBELET_PORT or "kubelet" in result.detail),
        no_endpoints="no endpoints available for service" in result.detail,
    )


def with_checks(facts: Facts, checks: Sequence[CheckFacts]) -> Facts:
    """``facts`` with the verdicts of `verify`'s read-only checks added."""
    return replace(facts, checks=tuple(checks))


def probe_ownership(runner: CommandRunner, target: SshTarget, paths: Sequence[str], *,
                    node: str) -> dict[str, Ownership]:
    """``stat -c '%u:%g %a' PATH`` on the storage node for each path; failures become facts, not errors.

    Args:
        runner: the SSH pool.
        target: how to reach the storage node.
        paths: absolute data directories on the node.
        node: the node's name (for the facts).

    Returns:
        One :class:`Ownership` per path.
    """
    out: dict[str, Ownership] = {}
    for path in paths:
        try:
            result = runner.run(target, ["stat", "-c", "%u:%g %a", path], step="doctor.ownership")
            if not result.ok and "ermission denied" in result.stderr:
                result = runner.run(target, ["stat", "-c", "%u:%g %a", path], sudo=True, step="doctor.ownership")
        except O11yError as exc:
            out[path] = Ownership(node, path, error=exc.message)
            continue
        words = result.stdout.split()
        if result.ok and words:
            out[path] = Ownership(node, path, owner=words[0], mode=words[1] if len(words) > 1 else None)
        else:
            problem = (result.stderr or result.stdout).strip().splitlines()
            out[path] = Ownership(node, path, error=problem[-1] if problem else f"stat exited {result.exit_code}")
    return out


def with_ownership(facts: Facts, ownership: Mapping[str, Ownership]) -> Facts:
    """``facts`` with ownership facts added."""
    return replace(facts, ownership={**facts.ownership, **ownership})


def with_network(facts: Facts, network: NetworkFacts | None) -> Facts:
    """``facts`` with the overlay's diagnosis added."""
    return replace(facts, network=network)


#: Runs fix-vxlan's read-only diagnosis and reports it as :class:`NetworkFacts`.
NetworkProbe = Callable[[], NetworkFacts]


def diagnose_network(probe: NetworkProbe | None) -> NetworkFacts:
    """The overlay's diagnosis, or why there is none."""
    if probe is None:
        return NetworkFacts(ok=None, summary="the overlay was not diagnosed (no SSH access to the nodes)")
    try:
        return probe()
    except O11yError as exc:
        return NetworkFacts(ok=None, summary=f"the overlay could not be diagnosed: {exc.message}")


def network_facts(diag: Diagnosis) -> NetworkFacts:
    """fix-vxlan's :class:`~o11yctl.vxlan.diagnose.Diagnosis`, as much of it as doctor shows."""
    if diag.errors:
        return NetworkFacts(ok=None, summary=diag.verdict(),
                            details=tuple(f"{e.name}: {e.message}" for e in diag.errors.values()))
    details = tuple(
        f"{d.src} → {d.dst}: {d.status}" + (f" (by {'; '.join(v.by for v in d.by)})" if d.by else "")
        for d in diag.directions if d.status != "ok"
    ) + tuple(f"{name}: {problem}" for name, problem in diag.device_problems.items())
    ok = diag.overlay_ok
    return NetworkFacts(ok=ok, summary=diag.verdict(), details=details, fixable=not ok)
