"""Preflight: before anything changes, check what the selected steps need.

Gathering facts is I/O (:func:`gather`); judging them is pure (the ``judge_*``
functions), so each rule is unit-testable from plain dicts. Every problem is one
line with the command that fixes it; :func:`raise_problems` turns them into one
:class:`~o11yctl.errors.PreflightError` (exit 3). Nothing here changes the cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from o11yctl.config import Config
from o11yctl.errors import PreflightError
from o11yctl.stack.context import stack_of
from o11yctl.stack.migrate import MOVED, RECORD, Record
from o11yctl.stack.nodes import NodeChange, NodeTaint, node_change_for
from o11yctl.stack.plan import Plan

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = f"{GATEWAY_GROUP}/v1"
ROUTE_PROTOCOLS = ("HTTP", "HTTPS")


@dataclass(frozen=True, slots=True)
class Problem:
    """One preflight failure: what is wrong, and what to do."""

    message: str
    hint: str | None = None


@dataclass
class Facts:
    """What preflight learned; later stages reuse it instead of asking again."""

    server_version: str | None = None
    helm_version: str | None = None
    node_fixes: list[NodeChange] = field(default_factory=list)
    pending: dict[str, Any] = field(default_factory=dict)  # release name -> helm Release
    #: Every release of the namespace (``helm list``), when read.
    releases: dict[str, Any] | None = None
    #: Objects read (executors.kube.ObjectRef -> the object, or None when absent), for later stages to reuse.
    objects: dict[Any, dict[str, Any] | None] = field(default_factory=dict)


# --- judging (pure) ---------------------------------------------------------------------------


def judge_nodes(cfg: Config, nodes: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """Every configured node must exist in the cluster."""
    present = [str((n.get("metadata") or {}).get("name")) for n in nodes]
    problems = []
    for node in cfg.nodes:
        if node.name not in present:
            problems.append(Problem(
                f"node {node.name} (nodes[].name in the config) is not in the cluster; it has: "
                f"{', '.join(present) or 'no nodes'}",
                "set nodes[].name to the names `kubectl get nodes` shows",
            ))
    return problems


def judge_pod_cidrs(cfg: Config, nodes: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """Each configured pod_cidr is the one the cluster allocated to that node (``spec.podCIDR``).

    The NetworkPolicies let the API server in from the server nodes' pod-network addresses: a
    wrong CIDR would lock o11yctl's own checks out.
    """
    live = {str((n.get("metadata") or {}).get("name")): (n.get("spec") or {}).get("podCIDR") for n in nodes}
    problems = []
    for i, node in enumerate(cfg.nodes):
        if node.pod_cidr is None or node.name not in live:
            continue
        actual = live[node.name]
        if actual != node.pod_cidr:
            problems.append(Problem(
                f"nodes[{i}].pod_cidr is {node.pod_cidr} but the cluster gave node {node.name} "
                f"{actual or 'no podCIDR'}; the NetworkPolicies would shut the API server out",
                f"set nodes[{i}].pod_cidr to what `kubectl get node {node.name} -o jsonpath='{{.spec.podCIDR}}'` "
                "prints" if actual else "a cluster without per-node pod CIDRs: leave network_policy off"))
    return problems


def node_fix(cfg: Config, node: Mapping[str, Any] | None) -> NodeChange | None:
    """What the storage node lacks of the labels and taints Loki's and Tempo's values expect."""
    if node is None:
        return None
    want = cfg.storage_node
    return node_change_for(want.name, want.labels, [NodeTaint(t.key, t.value, t.effect) for t in want.taints], node)


def judge_node_fix(fix: NodeChange | None, *, label_nodes: bool) -> list[Problem]:
    """A missing label or taint is a problem unless --label-nodes will add it."""
    if fix is None or label_nodes:
        return []
    return [Problem(
        f"storage node {fix.node} lacks the {fix.what()} that Loki's and Tempo's values expect",
        "run: " + " && ".join(fix.commands()) + "   (or re-run install with --label-nodes)",
    )]


def listener_admits(listener: Mapping[str, Any], gateway_namespace: str, route_namespace: str,
                    namespace_labels: Mapping[str, str]) -> str | None:
    """None when a Gateway listener admits HTTPRoutes from ``route_namespace``, else why not."""
    protocol = listener.get("protocol", "")
    if protocol not in ROUTE_PROTOCOLS:
        return f"listener {listener.get('name')} speaks {protocol}, not HTTP"
    allowed = listener.get("allowedRoutes") or {}
    kinds = allowed.get("kinds")
    if kinds and not any(k.get("kind") == "HTTPRoute" and k.get("group", GATEWAY_GROUP) == GATEWAY_GROUP
                         for k in kinds):
        return f"listener {listener.get('name')} admits only {', '.join(k.get('kind', '?') for k in kinds)}"
    namespaces = allowed.get("namespaces") or {}
    source = namespaces.get("from", "Same")
    if source == "All":
        return None
    if source == "Same":
        if gateway_namespace == route_namespace:
            return None
        return (f"listener {listener.get('name')} admits routes only from its own namespace {gateway_namespace} "
                f"(allowedRoutes.namespaces.from: Same)")
    if source == "Selector":
        selector = namespaces.get("selector") or {}
        if _selector_matches(selector, namespace_labels):
            return None
        return (f"listener {listener.get('name')} admits routes only from namespaces matching "
                f"{_selector_text(selector)}; namespace {route_namespace} does not match")
    return f"listener {listener.get('name')} has allowedRoutes.namespaces.from: {source}"


def judge_gateway(cfg: Config, *, has_crds: bool, gateway: Mapping[str, Any] | None,
                  namespace_labels: Mapping[str, str]) -> list[Problem]:
    """The Gateway API CRDs and the configured Gateway exist, and a listener admits our HTTPRoute."""
    gw = cfg.route.gateway
    ns = cfg.cluster.namespace
    if not has_crds:
        return [Problem("the Gateway API CRDs are not installed (no gateway.networking.k8s.io/v1 HTTPRoute)",
                        "install Envoy Gateway (it brings the CRDs), or leave the route out with --skip route")]
    if gateway is None:
        return [Problem(f"Gateway {gw.namespace}/{gw.name} (route.gateway in the config) does not exist",
                        "list the Gateways with `kubectl get gateways -A` and set route.gateway.name/namespace")]
    listeners = list((gateway.get("spec") or {}).get("listeners") or [])
    if gw.listener is not None:
        chosen = [ls for ls in listeners if ls.get("name") == gw.listener]
        if not chosen:
            names = ", ".join(str(ls.get("name")) for ls in listeners) or "none"
            return [Problem(f"Gateway {gw.namespace}/{gw.name} has no listener {gw.listener!r} (it has: {names})",
                            "set route.gateway.listener to one of them, or to null for all listeners")]
        listeners = chosen
    reasons = [listener_admits(ls, gw.namespace, ns, namespace_labels) for ls in listeners]
    admitting = [ls for ls, r in zip(listeners, reasons, strict=True) if r is None]
    if admitting:
        return judge_scheme(cfg, admitting)
    detail = "; ".join(r for r in reasons if r) or "it has no listeners"
    return [Problem(
        f"Gateway {gw.namespace}/{gw.name} would not accept HTTPRoute {ns}/grafana: {detail}",
        f"let the listener admit namespace {ns}: `kubectl edit gateway -n {gw.namespace} {gw.name}` and set "
        "allowedRoutes.namespaces.from: All (or a Selector matching the namespace)",
    )]


def judge_scheme(cfg: Config, listeners: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """route.url's scheme matches a listener the route attaches to: https:// needs an HTTPS listener.

    TLS ends at the Gateway (the listener's certificateRefs); Grafana writes route.url into its
    links and redirects, so a scheme the listener does not speak breaks the login.
    """
    gw = cfg.route.gateway
    want = "HTTPS" if cfg.route.url.startswith("https://") else "HTTP"
    if any(ls.get("protocol") == want for ls in listeners):
        return []
    spoken = ", ".join(f"{ls.get('name')} ({ls.get('protocol')})" for ls in listeners)
    scheme = want.lower()
    return [Problem(
        f"route.url is {scheme}:// but the route attaches to Gateway {gw.namespace}/{gw.name} listener(s) "
        f"{spoken}, none of which speaks {want}",
        "point route.gateway.listener at an HTTPS listener (its certificateRefs hold the certificate) and "
        "keep route.url https://, or use http:// for an HTTP listener" if want == "HTTPS" else
        "use route.url https://... for an HTTPS listener, or attach to an HTTP listener")]


def judge_pending(releases: Mapping[str, Any], wanted: Sequence[str], *, recover: bool, namespace: str
                  ) -> list[Problem]:
    """A release stuck in pending-* (an interrupted helm run) stops the install unless --recover."""
    problems = []
    for name in wanted:
        rel = releases.get(name)
        if rel is None or not rel.pending or recover:
            continue
        problems.append(Problem(
            f"helm release {namespace}/{name} is {rel.status} (revision {rel.revision}, updated {rel.updated}): "
            "an earlier helm run was interrupted",
            f"re-run with --recover to roll it back (or remove a never-deployed one), or by hand: "
            f"helm history {name} -n {namespace}",
        ))
    return problems


def judge_local_chart(component: str, path: str, pinned: str, actual_name: str, actual_version: str, *,
                      allow_mismatch: bool) -> list[Problem]:
    """A local chart's own version must match the pin (helm ignores --version for local charts)."""
    if actual_version == pinned or allow_mismatch:
        return []
    return [Problem(
        f"local chart for {component} at {path} is {actual_name} {actual_version}, but the config pins {pinned}",
        f"point components.{component}.chart.path at chart {pinned}, change the pin, "
        "or pass --allow-chart-mismatch",
    )]


def raise_problems(problems: Sequence[Problem]) -> None:
    """Raise one PreflightError for all problems (one line each); do nothing when there are none.

    Raises:
        PreflightError: there was at least one problem (exit 3).
    """
    if not problems:
        return
    if len(problems) == 1:
        raise PreflightError(f"preflight: {problems[0].message}; nothing was changed", hint=problems[0].hint)
    lines = "\n".join(f"  - {p.message}" for p in problems)
    hints = "\n".join(f"  - {p.hint}" for p in problems if p.hint)
    raise PreflightError(f"preflight found {len(problems)} problems; nothing was changed:\n{lines}",
                         hint="\n" + hints if hints else None)


# --- gathering (I/O) --------------------------------------------------------------------------


def gather(plan: Plan, kube: Any, helm: Any, *, recover: bool, label_nodes: bool, allow_chart_mismatch: bool,
           desired_namespace_labels: Mapping[str, str], env: Mapping[str, str] | None = None) -> Facts:
    """Check everything the plan's steps need, and return what was learned.

    Args:
        plan: the selected steps.
        kube: a connected :class:`~o11yctl.executors.kube.Kube`, or None when no step needs the cluster.
        helm: a :class:`~o11yctl.executors.helm.Helm`, or None when no step runs helm.
        recover: --recover (pending releases are not a problem).
        label_nodes: --label-nodes (a missing label/taint is not a problem; it will be added).
        allow_chart_mismatch: --allow-chart-mismatch.
        desired_namespace_labels: the labels the namespace manifest gives the namespace.
        env: where an external object store's keys are read from (default: ``os.environ``).

    Raises:
        PreflightError: something is missing; the message lists every problem (exit 3).
    """
    from o11yctl.errors import HelmError, KubeError
    from o11yctl.executors.helm import chart_meta

    cfg = plan.config
    facts = Facts()
    problems: list[Problem] = []
    if kube is not None:
        try:
            facts.server_version = kube.server_version()
        except KubeError as exc:
            raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
    if helm is not None:
        facts.helm_version = helm.version().describe()
    try:
        if kube is not None:
            nodes = kube.list("v1", "Node")
            problems += judge_nodes(cfg, nodes)
            on_storage = {c.name for c in stack_of(cfg).on_storage_node()}
            if any(s.action == "helm-upgrade" and s.owner in on_storage for s in plan.steps):
                storage = next((n for n in nodes if n["metadata"]["name"] == cfg.storage.node), None)
                fix = node_fix(cfg, storage)
                if fix is not None:
                    facts.node_fixes.append(fix)
                problems += judge_node_fix(fix, label_nodes=label_nodes)
            if any(s.id == "route" for s in plan.steps):
                problems += _gather_gateway(plan, kube, desired_namespace_labels, facts.objects)
            if any(s.id == "policy" for s in plan.steps):
                problems += judge_pod_cidrs(cfg, nodes)
            if any(s.action == "secret" for s in plan.steps):
                problems += judge_single_node_data(cfg, _single_node_claims(cfg, kube),
                                                   record_in(kube, cfg.cluster.namespace))
                problems += _gather_object_storage(cfg, kube, os.environ if env is None else env)
            elif cfg.profile == "single-node" and any(s.action == "helm-upgrade" and s.owner in MOVED
                                                      for s in plan.steps):
                problems += judge_migrated(cfg, record_in(kube, cfg.cluster.namespace))
        helm_steps = [s for s in plan.steps if s.action == "helm-upgrade" and s.helm is not None]
        for step in helm_steps:
            assert step.helm is not None
            if step.helm.local:
                meta = chart_meta(step.helm.chart)
                problems += judge_local_chart(step.component, step.helm.chart, step.helm.version, meta.name,
                                              meta.version, allow_mismatch=allow_chart_mismatch)
        if helm is not None and helm_steps:
            releases = helm.list_releases(cfg.cluster.namespace)
            facts.releases = releases
            wanted = [s.helm.release for s in helm_steps if s.helm is not None]
            facts.pending = {n: r for n, r in releases.items() if n in wanted and r.pending}
            problems += judge_pending(releases, wanted, recover=recover, namespace=cfg.cluster.namespace)
    except (KubeError, HelmError) as exc:
        raise PreflightError(f"preflight: {exc.message}; nothing was changed", hint=exc.hint) from exc
    raise_problems(problems)
    return facts


def migration_plan(cfg: Config) -> list[str]:
    """How a single-node install moves to profile scalable: what `o11yctl migrate` does, stage by stage."""
    return [
        "1. `o11yctl migrate` keeps the single-node install and adds object storage to it: a new Loki schema "
        "period with object_store s3 from the next UTC day (Loki reads each period from its own store, so old "
        "logs stay readable from the volume), the S3 keys in the pod; Tempo switched to the bucket (its existing "
        "traces stay on the volume and are no longer shown)",
        f"2. one retention period later ({cfg.components.loki.retention}), when no log is read from the volume, "
        "`o11yctl migrate` again finishes: Loki's and Tempo's StatefulSets are deleted with --cascade=orphan "
        "(their claims change, an immutable field) and profile scalable is installed",
        "the old volumes and directories are kept throughout; delete them yourself once satisfied",
    ]


def record_in(kube: Any, namespace: str) -> Record | None:
    """The namespace's record of a move to profile scalable (the ConfigMap ``o11yctl-migration``), or None.

    Raises:
        KubeError: the API server does not answer.
    """
    return Record.of(kube.get("v1", "ConfigMap", RECORD, namespace))


def judge_single_node_data(cfg: Config, claims: Sequence[str], record: Record | None = None) -> list[Problem]:
    """Profile scalable over a single-node install: never in place without being asked (`o11yctl migrate`).

    Args:
        cfg: the configuration (``bridge_from`` or ``finishing_from`` set: a stage of migrate, which moves
            the single-node install it finds).
        claims: the single-node claims present in the namespace.
        record: the namespace's migration record, if any.
    """
    if not claims or cfg.bridge_from is not None or cfg.finishing_from is not None:
        return []
    if record is not None and record.stage == "finished":
        return []  # moved: the claims are the old data, kept on purpose
    ns = cfg.cluster.namespace
    if record is not None:
        return [Problem(
            f"namespace {ns} is being moved to profile scalable: Loki writes to the bucket since {record.s3_from} "
            "and still reads older logs from the single-node volume",
            "`o11yctl migrate --dry-run` says when the move can finish; `o11yctl migrate` finishes it")]
    return [Problem(
        f"namespace {ns} holds a single-node install (claims {', '.join(claims)} with its data on "
        f"{cfg.storage.node}); profile scalable would leave that data behind, so it is not installed over it. "
        "The migration: " + " ".join(migration_plan(cfg)),
        "`o11yctl migrate --dry-run` shows the move and `o11yctl migrate` starts it; or keep profile single-node, "
        "or install scalable in another namespace (cluster.namespace); README: Outgrowing one node")]


def judge_migrated(cfg: Config, record: Record | None) -> list[Problem]:
    """A single-node install over a namespace that is moving (or moved) to profile scalable."""
    if record is None:
        return []
    ns = cfg.cluster.namespace
    if record.stage == "finished":
        what = f"namespace {ns} was moved to profile scalable (Loki on the bucket since {record.s3_from})"
    else:
        what = (f"namespace {ns} is being moved to profile scalable (Loki writes to the bucket since "
                f"{record.s3_from})")
    return [Problem(f"{what}; a single-node install would take Loki and Tempo off the bucket, and the logs and "
                    "traces written there would no longer be shown",
                    "use the profile scalable configuration (`o11yctl migrate` with it goes on with the move)")]


def _single_node_claims(cfg: Config, kube: Any) -> list[str]:
    from o11yctl.stack.components import stack_for

    ns = cfg.cluster.namespace
    return [c.volume.pvc for c in stack_for("single-node").data if c.volume is not None
            and kube.get("v1", "PersistentVolumeClaim", c.volume.pvc, ns) is not None]


def judge_buckets(answers: Sequence[Any], endpoint: str) -> list[Problem]:
    """An external store's buckets answer to the keys: each S3 error code says what to fix."""
    from o11yctl.verify.hints import store_unanswered

    problems = []
    unanswered: set[str | None] = set()
    for a in answers:
        if a.ok:
            continue
        if a.status is None:
            if a.error not in unanswered:  # the same failure for every bucket is one problem
                unanswered.add(a.error)
                problems.append(Problem(f"the object store at {endpoint} does not answer ({a.error})",
                                        store_unanswered(a.error, "check object_storage.endpoint and that this "
                                                                  "machine can reach it")))
        elif a.code == "NoSuchBucket":
            problems.append(Problem(f"bucket {a.bucket} does not exist at {endpoint}",
                                    "create it on the store (o11yctl creates buckets only on its in-cluster store), "
                                    "or name an existing one in object_storage.buckets"))
        elif a.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            problems.append(Problem(f"{endpoint} refused the keys for bucket {a.bucket}: {a.code}: {a.message}",
                                    "check the access key id and secret key (the Secret named by "
                                    "object_storage.credentials_secret, or $O11YCTL_S3_ACCESS_KEY_ID/"
                                    "$O11YCTL_S3_SECRET_ACCESS_KEY)"))
        else:
            problems.append(Problem(f"{endpoint} answered HTTP {a.status} for bucket {a.bucket}: "
                                    f"{a.code or 'no error code'}: {a.message}".rstrip(": "),
                                    "the keys need to list and write the bucket (a store policy?)"))
    return problems


def _gather_object_storage(cfg: Config, kube: Any, env: Mapping[str, str]) -> list[Problem]:
    """Profile scalable: the credentials can be had, and an external store's buckets answer to them."""
    from o11yctl.deploy.credentials import ENV_ACCESS_KEY, ENV_SECRET_KEY, missing_source, read_keys

    store = cfg.object_storage
    secret = kube.get("v1", "Secret", store.credentials_secret, cfg.cluster.namespace)
    if secret is None:
        problem = missing_source(cfg, env)
        if problem is not None:
            return [Problem(problem, f"export {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} for this run (they go into the "
                                     "Secret and nowhere else), give them with --s3-keys-stdin, or create the "
                                     "Secret yourself")]
    if store.in_cluster or store.endpoint is None:
        return []
    keys = read_keys(secret) if secret is not None else (env[ENV_ACCESS_KEY], env[ENV_SECRET_KEY])
    if keys is None:
        return [Problem(f"Secret {cfg.cluster.namespace}/{store.credentials_secret} has no access_key_id and "
                        "secret_access_key", "add them, or name another Secret in object_storage.credentials_secret")]
    from o11yctl.executors.s3 import probe_bucket
    from o11yctl.secrets import Secret

    answers = [probe_bucket(store.endpoint, bucket, access_key=Secret(keys[0]), secret_key=Secret(keys[1]),
                            region=store.region, verify_tls=store.ca_file or True)
               for bucket in dict.fromkeys(store.buckets.model_dump().values())]
    return judge_buckets(answers, store.endpoint)


def _gather_gateway(plan: Plan, kube: Any, desired_labels: Mapping[str, str],
                    read: dict[Any, dict[str, Any] | None]) -> list[Problem]:
    from o11yctl.executors.kube import ObjectRef

    cfg = plan.config
    listing = kube.discover(GATEWAY_VERSION)
    names = {r.get("name") for r in (listing or {}).get("resources", [])}
    has_crds = {"gateways", "httproutes"} <= names
    gateway = None
    labels: dict[str, str] = {}
    if has_crds:
        gateway = kube.get(GATEWAY_VERSION, "Gateway", cfg.route.gateway.name, cfg.route.gateway.namespace)
        live_ns = kube.get("v1", "Namespace", cfg.cluster.namespace)
        read[ObjectRef("v1", "Namespace", cfg.cluster.namespace)] = live_ns
        labels = dict(((live_ns or {}).get("metadata") or {}).get("labels") or {})
        labels.update(desired_labels)
        labels["kubernetes.io/metadata.name"] = cfg.cluster.namespace
    return judge_gateway(cfg, has_crds=has_crds, gateway=gateway, namespace_labels=labels)


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _selector_text(selector: Mapping[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    parts += [f"{e.get('key')} {e.get('operator')} {e.get('values') or ''}".strip()
              for e in selector.get("matchExpressions") or []]
    return ", ".join(parts) or "{}"
