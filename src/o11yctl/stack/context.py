"""Config -> the values the templates place. Pure: every derived value is computed here,
so the templates only place values and hold no logic about the cluster. The one file read
is an external object store's CA (``object_storage.ca_file``): its certificates go into
the cluster as the file holds them when the stack is rendered.

Each component of the stack gets one entry named after it, built from its spec (release,
chart version, data volume, Service URL); a few components add values only they use
(Loki's push URL, Grafana's public URL). ``files`` says which template renders each
file: a data component's volume file is ``volume.yaml.j2`` with that component as
``volume``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from o11yctl.config import Config, ca_certificates, go_duration, parse_duration
from o11yctl.errors import ConfigError
from o11yctl.stack.catalog import chart_set, repository_name
from o11yctl.stack.charts import resolve
from o11yctl.stack.components import MIGRATION_RECORD, Component, Stack, stack_for

#: The template every data component's volume file is rendered from.
VOLUME_TEMPLATE = "volume.yaml.j2"
#: The uids the Grafana values give the data sources (the correlation links use them).
DATASOURCE_UIDS = {"loki_uid": "loki", "tempo_uid": "tempo"}


def stack_of(cfg: Config) -> Stack:
    """The components ``cfg`` deploys: its profile's, those whose ``when`` switch the config turns on."""
    def enabled(key: str) -> bool:
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        return bool(value)

    profile = "migrating" if cfg.bridge_from else "finishing" if cfg.finishing_from else cfg.profile
    return stack_for(profile, enabled=enabled)


def data_dir(cfg: Config, component: str | Component) -> str:
    """The data directory of a data component on the storage node."""
    c = stack_of(cfg).get(component) if isinstance(component, str) else component
    assert c.volume is not None, f"{c.name} keeps no data"
    return f"{cfg.storage.root.rstrip('/')}/{c.volume.directory}"


def service_url(cfg: Config, component: str | Component) -> str:
    """A component's Service inside the cluster, e.g. ``http://loki.logging.svc.cluster.local:3100``."""
    c = stack_of(cfg).get(component) if isinstance(component, str) else component
    assert c.endpoint is not None, f"{c.name} has no Service"
    return f"http://{c.endpoint.service}.{cfg.cluster.namespace}.svc.cluster.local:{c.endpoint.port}"


def chart_title(name: str, version: str, repository: str | None) -> str:
    """``the grafana/loki chart 6.21.0``; a mirror by its URL, a local chart as such."""
    if repository is None:
        return f"the local {name} chart {version}"
    owner = repository_name(repository)
    if owner == repository:
        return f"the {name} chart {version} from {repository}"
    return f"the {owner}/{name} chart {version}"


def _component(cfg: Config, c: Component) -> dict[str, Any]:
    """The values every component's templates may use, from its spec and its config section."""
    out: dict[str, Any] = {"name": c.name, "title": c.title}
    if c.release:
        out["release"] = c.release
        chart = resolve(cfg, c.name)
        out["chart_version"] = chart.version
        out["chart_title"] = chart_title(chart.name, chart.version, chart.repository)
        out["app_version"] = chart.app_version
    if c.volume:
        settings = getattr(cfg.components, c.name)
        out.update(pv=c.volume.pv, pvc=c.volume.pvc, size=settings.size, host_path=data_dir(cfg, c))
    retention = getattr(getattr(cfg.components, c.name, None), "retention", None)
    if retention is not None:
        out["retention"] = go_duration(parse_duration(retention))
    if c.endpoint:
        out["url"] = service_url(cfg, c)
    return out


def build_context(cfg: Config) -> dict[str, Any]:
    """The template context for ``cfg`` (see templates/*.j2 for where each value goes)."""
    stack = stack_of(cfg)
    storage_node = cfg.storage_node
    route_path = cfg.route.path
    ctx: dict[str, Any] = {
        "namespace": cfg.cluster.namespace,
        "cluster": cfg.cluster.name,
        "storage_class": cfg.storage.class_name,
        "storage_node": storage_node.name,
        "heavy_node_selector": dict(storage_node.labels),
        "heavy_tolerations": [t.as_toleration() for t in storage_node.taints],
        "owner_uid": cfg.storage.owner_uid,
        "owner_gid": cfg.storage.owner_gid,
        "images": {"registry": cfg.images.registry},
        "datasources": dict(DATASOURCE_UIDS),
        "labels": {"app.kubernetes.io/managed-by": "o11yctl"},
    }
    for c in stack:
        if c.release or c.volume or c.endpoint:  # a bare manifest (the namespace, the route) has no values
            ctx[c.name] = _component(cfg, c)
    if stack.has("loki"):
        ctx["loki"]["push_url"] = f"{ctx['loki']['url']}/loki/api/v1/push"
    if stack.has("grafana"):
        grafana = stack.get("grafana")
        assert grafana.endpoint is not None
        ctx["grafana"].update(node=cfg.components.grafana.node, root_url=cfg.route.url,
                              sub_path=route_path if route_path != "/" else "", service_name=grafana.endpoint.service,
                              service_port=grafana.endpoint.port)
        ctx["route"] = {
            "name": grafana.endpoint.service,
            "gateway_name": cfg.route.gateway.name,
            "gateway_namespace": cfg.route.gateway.namespace,
            "section_name": cfg.route.gateway.listener,
            "hostnames": list(cfg.route.hostnames),
            "path": route_path,
        }
    if cfg.profile == "scalable":
        ctx.update(scalable_context(cfg, stack))
    day = cfg.bridge_from or cfg.finishing_from
    if day:
        ctx["migration"] = {"s3_from": day, "record": MIGRATION_RECORD,
                            "stage": "bridged" if cfg.bridge_from else "finishing",
                            "claims": [c.volume.pvc for c in stack_for("single-node").data if c.volume is not None]}
    ctx["policy"] = policy_context(cfg, stack)
    ctx["files"] = render_list(cfg, stack)
    return ctx


#: The keys of the object store's credentials Secret: the identity Loki, Tempo and o11yctl use, and a
#: read-only one the in-cluster store also gets (its chart would otherwise make up its own).
CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "read_access_key_id", "read_secret_access_key")
#: Where an external store's CA goes: the ConfigMap (in the stack's namespace), its key, the volume
#: Loki's and Tempo's pods mount it as, and the directory it is mounted at (read-only).
STORE_CA = {"configmap": "o11yctl-object-storage-ca", "key": "ca.crt", "volume": "object-storage-ca",
            "directory": "/etc/o11yctl/object-storage-ca"}


def store_nodes(cfg: Config) -> list[str]:
    """The nodes whose disks hold the in-cluster object store's data (default: every node)."""
    return list(cfg.object_storage.nodes) or [n.name for n in cfg.nodes]


def read_keys(secret: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """The access key id and secret key a Secret holds, decoded (kept in memory by the caller only)."""
    data = (secret or {}).get("data") or {}
    try:
        access, secret_key = (base64.b64decode(data[k]).decode() for k in CREDENTIAL_KEYS[:2])
    except (KeyError, ValueError):
        return None
    return access, secret_key


def store_servers(nodes: list[str]) -> int:
    """Masters (and filers) of the in-cluster store: Raft needs a majority, so 3 from three nodes up, else 1."""
    return 3 if len(nodes) >= 3 else 1


def _placement(cfg: Config, names: list[str]) -> dict[str, Any]:
    """Nodes by name, and the tolerations of every taint they carry (so the pods may run there)."""
    chosen = names or [n.name for n in cfg.nodes]
    tolerations = []
    for node in cfg.nodes:
        if node.name in chosen:
            for taint in node.taints:
                toleration = taint.as_toleration()
                if toleration not in tolerations:
                    tolerations.append(toleration)
    return {"nodes": chosen, "tolerations": tolerations}


def scalable_context(cfg: Config, stack: Stack) -> dict[str, Any]:
    """Profile scalable: where the object store is, its buckets and keys' Secret; where Loki and Tempo run.

    The in-cluster store is SeaweedFS with its data on each store node (``object_storage.root``);
    with two or more nodes every chunk is written twice, on different nodes (replication
    ``001``), and there is one master and one filer per node up to three (Raft needs a majority).
    Loki runs ``components.loki.replicas`` pods, one per node, replication factor 3 when there
    are three or more (a quorum of two keeps writes and reads going with one down), else 1.
    """
    from urllib.parse import urlsplit

    store = cfg.object_storage
    ns = cfg.cluster.namespace
    if store.in_cluster:
        c = stack.get("store")
        assert c.endpoint is not None
        endpoint, insecure = f"{c.endpoint.service}.{ns}.svc.cluster.local:{c.endpoint.port}", True
    else:
        assert store.endpoint is not None
        parts = urlsplit(store.endpoint)
        endpoint, insecure = parts.netloc, parts.scheme == "http"
    nodes = store_nodes(cfg)
    replicas = cfg.components.loki.replicas
    out: dict[str, Any] = {
        "object_storage": {
            "endpoint": endpoint, "insecure": insecure, "region": store.region, "path_style": store.path_style,
            "buckets": store.buckets.model_dump(), "secret": store.credentials_secret,
            "access_key": CREDENTIAL_KEYS[0], "secret_key": CREDENTIAL_KEYS[1],
            "read_access_key": CREDENTIAL_KEYS[2], "read_secret_key": CREDENTIAL_KEYS[3],
            "ca": store_ca(cfg),
        },
        "loki_layout": {"replicas": replicas, "replication_factor": 3 if replicas >= 3 else 1,
                        **_placement(cfg, list(cfg.components.loki.nodes))},
        "tempo_layout": _placement(cfg, list(cfg.components.tempo.nodes)),
    }
    if stack.has("store"):
        owner = stack.get("store").node_owner
        assert owner is not None
        out["store_layout"] = {"nodes": nodes, "root": store.root.rstrip("/"), "uid": owner[0], "gid": owner[1],
                        "replication": "001" if len(nodes) >= 2 else "000",
                        "servers": store_servers(nodes),
                        **{k: v for k, v in _placement(cfg, nodes).items() if k == "tolerations"}}
    return out


def store_ca(cfg: Config) -> dict[str, Any] | None:
    """An external store's CA (profile scalable): the certificates of ``object_storage.ca_file``
    (read now), where they go, and their SHA-256 (a pod annotation: a new CA restarts the pods, which
    read it once at start). None without a CA.

    Raises:
        ConfigError: the file changed since the config was read and is no longer a CA file.
    """
    import hashlib

    path = cfg.object_storage.ca_file
    if path is None:
        return None
    try:
        pem = ca_certificates(path)
    except ValueError as exc:
        raise ConfigError(f"object_storage.ca_file: {exc}",
                          hint="point object_storage.ca_file at the PEM file of the CA that signed the store's "
                               "certificate") from None
    return {**STORE_CA, "file": f"{STORE_CA['directory']}/{STORE_CA['key']}", "pem": pem,
            "sha256": hashlib.sha256(pem.encode()).hexdigest()}


def pod_selector(c: Component) -> dict[str, str]:
    """The labels a component's chart gives its pods (the chart's name and the release)."""
    return {"app.kubernetes.io/name": c.pod_label, "app.kubernetes.io/instance": c.release or c.name}


def policy_context(cfg: Config, stack: Stack) -> dict[str, Any]:
    """What the NetworkPolicies say (``network_policy``): one per data component's pods.

    Allowed in: the component's own pods (memberlist, its peers); the components that come
    after it (Alloy pushes to Loki, Grafana queries both) on its port; the namespaces the config
    names, on every port it serves; and the API server, for o11yctl's checks through the service
    proxy. The API server runs on the server nodes, in their host network: a pod on the same node
    sees the node's own address (kube-router, K3s's policy controller, admits a pod's local node),
    a pod on another node sees the server's flannel.1 address, the first of its pod CIDR
    (cloudnativelabs/kube-router#332); both are allowed for each server, and its cni0 address
    (the second) too.
    """
    import ipaddress

    sources: list[str] = []
    for node in cfg.nodes:
        if node.role != "server":
            continue
        sources.append(f"{node.address}/32")
        if node.pod_cidr:
            net = ipaddress.ip_network(node.pod_cidr)
            sources += [f"{net.network_address}/32", f"{net.network_address + 1}/32"]
    protected = []
    for c in stack:
        if c.endpoint is None or not (c.volume or c.object_storage or c.node_dirs):
            continue  # only what keeps data: Loki, Tempo, and the in-cluster object store
        clients = [pod_selector(o) for o in stack if c.name in o.after and o.release]
        ports = [c.endpoint.port, *c.endpoint.ingest_ports]
        protected.append({"name": f"{c.name}-ingress", "selector": pod_selector(c), "port": c.endpoint.port,
                          "ports": ports, "api_ports": [*ports, *c.endpoint.admin_ports], "clients": clients})
    return {"protected": protected, "namespaces": list(cfg.network_policy.allow_namespaces),
            "api_server": list(dict.fromkeys(sources))}


def render_list(cfg: Config, stack: Stack) -> dict[str, dict[str, Any]]:
    """Each file the stack renders -> its template, the chart set's template directory, and its volume's component."""
    templates = chart_set(cfg.charts.set).templates
    files: dict[str, dict[str, Any]] = {}
    for c in stack:
        if c.manifest:
            files[c.manifest] = {"template": c.template or c.manifest + ".j2", "dir": "", "volume": None}
        if c.volume:
            files[c.volume.manifest] = {"template": VOLUME_TEMPLATE, "dir": "", "volume": c.name}
        if c.values:
            files[c.values] = {"template": c.template or c.values + ".j2", "dir": "" if c.template else templates,
                               "volume": None}
    return dict(sorted(files.items()))
