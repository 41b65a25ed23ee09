"""Alloy and Grafana values through `helm template` with the real charts at the pinned versions.

Checks what the cluster would receive: Alloy's DaemonSet (tolerations, the node
name its configuration reads, no host mounts) and the RBAC its configuration
needs; Grafana's Deployment (node, probes, provisioned data sources, grafana.ini),
the admin Secret the chart generates, and the Service the HTTPRoute points at.
"""

from __future__ import annotations

import base64
import configparser
import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from o11yctl.stack.render import render_files
from tests.charts.conftest import chart_dir, unknown_keys

pytestmark = pytest.mark.charts

HelmTemplate = Callable[..., list[dict[str, Any]]]

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
REGISTRY = "registry.lan:5000"
VALUES_FILE = {"alloy": "03-alloy-values.yaml", "grafana": "04-grafana-values.yaml"}


# --- helpers -----------------------------------------------------------------------------------------------------


def _template(helm_template: HelmTemplate, context: dict[str, Any], component: str) -> list[dict[str, Any]]:
    values = render_files(context)[VALUES_FILE[component]]
    return helm_template(component, values, release=context[component]["release"], namespace=context["namespace"])


def _is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def _workloads(objects: list[dict[str, Any]], *, hooks: bool = False) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS and (hooks or not _is_hook(o))]


def _the_workload(objects: list[dict[str, Any]]) -> dict[str, Any]:
    workloads = _workloads(objects)
    assert len(workloads) == 1, f"expected one workload, got {[(w['kind'], w['metadata']['name']) for w in workloads]}"
    return workloads[0]


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    return spec


def _containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def _container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in pod_spec["containers"] if c["name"] == name]
    assert len(found) == 1, f"expected one container {name}"
    return found[0]


def _images(objects: list[dict[str, Any]]) -> list[str]:
    return [c["image"] for w in _workloads(objects, hooks=True) for c in _containers(_pod_spec(w))]


def _one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def _selects(service: dict[str, Any], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


def _allows(rules: list[dict[str, Any]], resource: str, verb: str, group: str = "") -> bool:
    return any(
        group in r.get("apiGroups", []) and resource in r.get("resources", []) and verb in r.get("verbs", [])
        for r in rules
    )


# --- Alloy -------------------------------------------------------------------------------------------------------


@pytest.fixture
def alloy(helm_template: HelmTemplate, context: dict[str, Any]) -> list[dict[str, Any]]:
    return _template(helm_template, context, "alloy")


@pytest.fixture
def alloy_config(alloy: list[dict[str, Any]]) -> str:
    cm = _one(alloy, "ConfigMap", "alloy")
    assert list(cm["data"]) == ["config.alloy"]
    return str(cm["data"]["config.alloy"])


def test_alloy_is_one_daemonset_tolerating_every_taint(alloy: list[dict[str, Any]]) -> None:
    ds = _the_workload(alloy)
    assert ds["kind"] == "DaemonSet"
    spec = _pod_spec(ds)
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert "nodeSelector" not in spec and "affinity" not in spec


def test_alloy_pod_becomes_ready_on_its_http_port(alloy: list[dict[str, Any]]) -> None:
    alloy_container = _container(_pod_spec(_the_workload(alloy)), "alloy")
    probe = alloy_container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/-/ready"
    assert probe["port"] in {p["containerPort"] for p in alloy_container["ports"]}


def test_alloy_config_reaches_the_pod_unchanged(
    alloy: list[dict[str, Any]], alloy_config: str, context: dict[str, Any]
) -> None:
    ours = yaml.safe_load(render_files(context)[VALUES_FILE["alloy"]])["alloy"]["configMap"]["content"]
    assert alloy_config.strip() == ours.strip(), "the chart passes the content through tpl: it must not change it"
    spec = _pod_spec(_the_workload(alloy))
    config_volume = [v for v in spec["volumes"] if (v.get("configMap") or {}).get("name") == "alloy"]
    assert len(config_volume) == 1
    alloy_container = _container(spec, "alloy")
    mount = [m for m in alloy_container["volumeMounts"] if m["name"] == config_volume[0]["name"]]
    assert mount and alloy_container["args"][:2] == ["run", f"{mount[0]['mountPath']}/config.alloy"]


def test_alloy_node_name_comes_from_the_pods_spec(alloy: list[dict[str, Any]], alloy_config: str) -> None:
    """The configuration's field selector reads an environment variable; the chart must set it to spec.nodeName."""
    names = re.findall(r'sys\.env\("([A-Z_]+)"\)', alloy_config)
    assert names == ["HOSTNAME"]
    env = {e["name"]: e for e in _container(_pod_spec(_the_workload(alloy)), "alloy")["env"]}
    assert env["HOSTNAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_alloy_mounts_nothing_from_the_node(alloy: list[dict[str, Any]]) -> None:
    spec = _pod_spec(_the_workload(alloy))
    assert [v for v in spec["volumes"] if "hostPath" in v] == []
    assert not spec.get("hostNetwork") and not spec.get("hostPID")


def test_alloy_rbac_allows_what_its_config_uses_and_no_more(
    alloy: list[dict[str, Any]], context: dict[str, Any]
) -> None:
    role = _one(alloy, "ClusterRole")
    binding = _one(alloy, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    sa = _pod_spec(_the_workload(alloy))["serviceAccountName"]
    assert {"kind": "ServiceAccount", "name": sa, "namespace": context["namespace"]} in binding["subjects"]
    rules = role["rules"]
    # discovery.kubernetes (role pod) on every namespace, loki.source.kubernetes reading and tailing pods.
    for verb in ("list", "watch", "get"):
        assert _allows(rules, "pods", verb), verb
    assert _allows(rules, "pods/log", "get")
    for resource in ("secrets", "configmaps", "nodes"):
        assert not any(_allows(rules, resource, verb) for verb in ("get", "list", "watch")), resource
    assert not any("nonResourceURLs" in r for r in rules)


def test_alloy_runs_only_generally_available_components(alloy: list[dict[str, Any]], alloy_config: str) -> None:
    args = _container(_pod_spec(_the_workload(alloy)), "alloy")["args"]
    assert "--stability.level=generally-available" in args
    # All four are GA in Alloy v1.18.
    kinds = set(re.findall(r'^([a-z_]+(?:\.[a-z_]+)+)\s+"', alloy_config, re.M))
    assert kinds == {"discovery.kubernetes", "discovery.relabel", "loki.source.kubernetes", "loki.write"}


def test_alloy_installs_no_crd(alloy: list[dict[str, Any]]) -> None:
    assert [o for o in alloy if o["kind"] == "CustomResourceDefinition"] == []


def test_alloy_default_images_come_from_the_chart(alloy: list[dict[str, Any]]) -> None:
    images = _images(alloy)
    assert images[0] == "docker.io/grafana/alloy:v1.18.1"
    assert images[1].startswith("quay.io/prometheus-operator/prometheus-config-reloader:")
    assert len(images) == 2


def test_alloy_image_registry_override(helm_template: HelmTemplate, context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = REGISTRY
    images = _images(_template(helm_template, ctx, "alloy"))
    assert len(images) == 2
    assert all(image.startswith(f"{REGISTRY}/") for image in images), images


# --- Grafana -----------------------------------------------------------------------------------------------------


@pytest.fixture
def grafana(helm_template: HelmTemplate, context: dict[str, Any]) -> list[dict[str, Any]]:
    return _template(helm_template, context, "grafana")


def _grafana_config(objects: list[dict[str, Any]], context: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = _one(objects, "ConfigMap", context["grafana"]["service_name"])["data"]
    return data


def test_grafana_is_one_deployment_on_its_node(grafana: list[dict[str, Any]], context: dict[str, Any]) -> None:
    deployment = _the_workload(grafana)
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 1
    assert _pod_spec(deployment)["nodeSelector"] == {"kubernetes.io/hostname": context["grafana"]["node"]}


def test_grafana_probes_hit_the_health_api(grafana: list[dict[str, Any]]) -> None:
    """/api/health without the sub-path: Grafana strips the prefix when present and never redirects /api paths."""
    container = _container(_pod_spec(_the_workload(grafana)), "grafana")
    named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/api/health", probe
        assert named_ports[http["port"]] == 3000


def test_grafana_ini_serves_from_the_sub_path(grafana: list[dict[str, Any]], context: dict[str, Any]) -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(_grafana_config(grafana, context)["grafana.ini"])
    assert ini["server"]["root_url"] == context["grafana"]["root_url"]
    assert ini["server"]["serve_from_sub_path"] == "true"
    container = _container(_pod_spec(_the_workload(grafana)), "grafana")
    assert {"name": "config", "mountPath": "/etc/grafana/grafana.ini", "subPath": "grafana.ini"} in (
        container["volumeMounts"])


def test_grafana_provisions_loki_and_tempo_linked_both_ways(
    grafana: list[dict[str, Any]], context: dict[str, Any]
) -> None:
    provisioning = yaml.safe_load(_grafana_config(grafana, context)["datasources.yaml"])
    by_type = {ds["type"]: ds for ds in provisioning["datasources"]}
    assert sorted(by_type) == ["loki", "tempo"]
    loki, tempo = by_type["loki"], by_type["tempo"]
    uids = context["datasources"]
    assert (loki["uid"], loki["url"]) == (uids["loki_uid"], context["loki"]["url"])
    assert (tempo["uid"], tempo["url"]) == (uids["tempo_uid"], context["tempo"]["url"])
    assert tempo["jsonData"]["tracesToLogsV2"]["datasourceUid"] == loki["uid"]
    assert "$${__trace.traceId}" in tempo["jsonData"]["tracesToLogsV2"]["query"]
    (field,) = loki["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == tempo["uid"]
    assert field["url"] == "$${__value.raw}", "the chart's tpl must keep Grafana's $$ escape"
    # The file is mounted where Grafana reads provisioning.
    container = _container(_pod_spec(_the_workload(grafana)), "grafana")
    assert {"name": "config", "mountPath": "/etc/grafana/provisioning/datasources/datasources.yaml",
            "subPath": "datasources.yaml"} in container["volumeMounts"]


def test_grafana_admin_password_is_generated_by_the_chart(
    grafana: list[dict[str, Any]], context: dict[str, Any]
) -> None:
    name = context["grafana"]["service_name"]
    secret = _one(grafana, "Secret", name)
    password = base64.b64decode(secret["data"]["admin-password"]).decode()
    # The chart's randAlphaNum 40 (reused from the live Secret on upgrade), not a value we pass.
    assert re.fullmatch(r"[A-Za-z0-9]{40}", password)
    assert password not in render_files(context)[VALUES_FILE["grafana"]]
    env = {e["name"]: e for e in _container(_pod_spec(_the_workload(grafana)), "grafana")["env"]}
    assert env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": name, "key": "admin-password"}}


def test_grafana_service_is_the_routes_backend(grafana: list[dict[str, Any]], context: dict[str, Any]) -> None:
    route = yaml.safe_load(render_files(context)["05-grafana-httproute.yaml"])
    (backend,) = route["spec"]["rules"][0]["backendRefs"]
    service = _one(grafana, "Service", backend["name"])
    (port,) = service["spec"]["ports"]
    assert port["port"] == backend["port"] == 80
    deployment = _the_workload(grafana)
    assert _selects(service, deployment)
    container = _container(_pod_spec(deployment), "grafana")
    assert {p["name"]: p["containerPort"] for p in container["ports"]}[port["targetPort"]] == 3000


def test_grafana_keeps_no_state_on_disk(grafana: list[dict[str, Any]]) -> None:
    assert [o for o in grafana if o["kind"] == "PersistentVolumeClaim"] == []
    volumes = {v["name"]: v for v in _pod_spec(_the_workload(grafana))["volumes"]}
    assert volumes["storage"] == {"name": "storage", "emptyDir": {}}


def test_grafana_image_registry_override(helm_template: HelmTemplate, context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = REGISTRY
    objects = _template(helm_template, ctx, "grafana")
    images = _images(objects)
    assert f"{REGISTRY}/grafana/grafana:{context['grafana']['app_version']}" in images
    # Grafana, and the helm test pod where the chart ships one (the 12.x line's .helmignore drops tests/)
    has_test_pod = any(o["kind"] == "Pod" for o in objects)
    assert len(images) == 1 + has_test_pod, images
    assert all(image.startswith(f"{REGISTRY}/") for image in images), images


def test_grafana_registry_override_covers_optional_images(helm_template: HelmTemplate, context: dict[str, Any]) -> None:
    """With persistence and the sidecars on, the init container and sidecars follow the registry too."""
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = REGISTRY
    values = render_files(ctx)[VALUES_FILE["grafana"]]
    objects = helm_template("grafana", values, release=ctx["grafana"]["release"], namespace=ctx["namespace"],
                            extra=["--set", "persistence.enabled=true", "--set", "sidecar.dashboards.enabled=true"])
    images = _images(objects)
    # Grafana, the init container that chowns the volume, the dashboards sidecar (and a test pod in 10.x)
    assert {i.rsplit("/", 1)[-1].split(":")[0] for i in images} >= {"grafana", "busybox", "k8s-sidecar"}, images
    assert all(image.startswith(f"{REGISTRY}/") for image in images), images


# --- every key we set is one the chart reads ---------------------------------------------------------------------

#: Maps the charts pass through verbatim (toYaml or ini), so any key inside them is fine.
FREE_FORM: dict[str, set[tuple[str, ...]]] = {
    "alloy": set(),
    "grafana": {("grafana.ini",)},
}


@pytest.mark.parametrize("component", ["alloy", "grafana"])
def test_values_use_only_keys_the_chart_reads(context: dict[str, Any], chart_set: str, component: str) -> None:
    chart = chart_dir(chart_set) / component
    theirs = yaml.safe_load((chart / "values.yaml").read_text())
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = REGISTRY
    ours = yaml.safe_load(render_files(ctx)[VALUES_FILE[component]])
    templates = "\n".join(p.read_text() for p in (chart / "templates").rglob("*") if p.is_file())
    # A key the chart's values.yaml leaves out is still fine if a template reads it (fullnameOverride).
    unknown = [key for key in unknown_keys(ours, theirs, FREE_FORM[component]) if f".Values.{key}" not in templates]
    assert unknown == []
