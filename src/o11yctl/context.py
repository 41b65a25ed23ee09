"""Config -> the values the templates place. Pure: every derived value is computed here,
so the templates only place values and hold no logic about the cluster."""

from __future__ import annotations

from typing import Any

from o11yctl.config import Config, go_duration, parse_duration

#: Names the runbook uses for the PVs and PVCs; fixed, because its checks name them.
PV_NAMES = {"loki": ("loki-pv", "loki-pvc"), "tempo": ("tempo-pv", "tempo-pvc")}
#: Helm release names; fixed, because the runbook's service names (svc/loki, svc/tempo) follow them.
RELEASES = {"loki": "loki", "tempo": "tempo", "alloy": "alloy", "grafana": "grafana"}
LOKI_PORT = 3100
TEMPO_PORT = 3200
GRAFANA_SERVICE_PORT = 80


def data_dir(cfg: Config, component: str) -> str:
    """The data directory of ``loki`` or ``tempo`` on the storage node."""
    return f"{cfg.storage.root.rstrip('/')}/{component}"


def service_url(cfg: Config, component: str) -> str:
    port = {"loki": LOKI_PORT, "tempo": TEMPO_PORT}[component]
    return f"http://{RELEASES[component]}.{cfg.cluster.namespace}.svc.cluster.local:{port}"


def build_context(cfg: Config) -> dict[str, Any]:
    """The template context for ``cfg`` (see templates/*.j2 for where each value goes)."""
    storage_node = cfg.storage_node
    comps = cfg.components
    loki_url = service_url(cfg, "loki")
    route_path = cfg.route.path
    return {
        "namespace": cfg.cluster.namespace,
        "cluster": cfg.cluster.name,
        "storage_class": cfg.storage.class_name,
        "storage_node": storage_node.name,
        "heavy_node_selector": dict(storage_node.labels),
        "heavy_tolerations": [t.as_toleration() for t in storage_node.taints],
        "owner_uid": cfg.storage.owner_uid,
        "owner_gid": cfg.storage.owner_gid,
        "images": {"registry": cfg.images.registry},
        "loki": {
            "release": RELEASES["loki"],
            "chart_version": comps.loki.chart.version,
            "pv": PV_NAMES["loki"][0],
            "pvc": PV_NAMES["loki"][1],
            "size": comps.loki.size,
            "host_path": data_dir(cfg, "loki"),
            "retention": go_duration(parse_duration(comps.loki.retention)),
            "url": loki_url,
            "push_url": f"{loki_url}/loki/api/v1/push",
        },
        "tempo": {
            "release": RELEASES["tempo"],
            "chart_version": comps.tempo.chart.version,
            "pv": PV_NAMES["tempo"][0],
            "pvc": PV_NAMES["tempo"][1],
            "size": comps.tempo.size,
            "host_path": data_dir(cfg, "tempo"),
            "retention": go_duration(parse_duration(comps.tempo.retention)),
            "url": service_url(cfg, "tempo"),
        },
        "alloy": {"release": RELEASES["alloy"], "chart_version": comps.alloy.chart.version},
        "grafana": {
            "release": RELEASES["grafana"],
            "chart_version": comps.grafana.chart.version,
            "node": comps.grafana.node,
            "root_url": cfg.route.url,
            "sub_path": route_path if route_path != "/" else "",
            "service_name": RELEASES["grafana"],
            "service_port": GRAFANA_SERVICE_PORT,
        },
        "datasources": {"loki_uid": "loki", "tempo_uid": "tempo"},
        "route": {
            "name": RELEASES["grafana"],
            "gateway_name": cfg.route.gateway.name,
            "gateway_namespace": cfg.route.gateway.namespace,
            "section_name": cfg.route.gateway.listener,
            "hostnames": list(cfg.route.hostnames),
            "path": route_path,
        },
        "labels": {"app.kubernetes.io/managed-by": "o11yctl"},
    }
