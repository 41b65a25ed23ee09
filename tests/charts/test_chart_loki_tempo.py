"""Loki and Tempo values through `helm template` with the real charts at the pinned versions.

Checks what the cluster would receive: the one workload, where it is scheduled,
which claim it mounts where, the configuration the chart generates for Loki and
Tempo, the Services the runbook port-forwards to, and that nothing a homelab
cannot run (memcached, canary, gateway, MinIO) is rendered.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from o11yctl.stack.render import render_files
from tests.charts.conftest import chart_dir, unknown_keys

pytestmark = pytest.mark.charts

HelmTemplate = Callable[..., list[dict[str, Any]]]

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
LOKI_DATA_PATH = "/var/loki"
TEMPO_DATA_PATH = "/var/tempo"
REGISTRY = "registry.lan:5000"


# --- helpers -----------------------------------------------------------------------------------------------------


def _template(helm_template: HelmTemplate, context: dict[str, Any], component: str) -> list[dict[str, Any]]:
    values_file = {"loki": "02-loki-values.yaml", "tempo": "07-tempo-values.yaml"}[component]
    values = render_files(context)[values_file]
    return helm_template(component, values, release=context[component]["release"], namespace=context["namespace"])


def _workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def _the_workload(objects: list[dict[str, Any]]) -> dict[str, Any]:
    workloads = _workloads(objects)
    assert len(workloads) == 1, f"expected one workload, got {[(w['kind'], w['metadata']['name']) for w in workloads]}"
    return workloads[0]


def _containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def _claim_mounts(pod_spec: dict[str, Any], claim: str) -> list[str]:
    """Every mountPath, in any container, of a volume that uses ``claim``."""
    names = {
        v["name"]
        for v in pod_spec.get("volumes") or []
        if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim
    }
    assert len(names) == 1, f"expected one pod volume for claim {claim}, got {sorted(names)}"
    return [m["mountPath"] for c in _containers(pod_spec) for m in c.get("volumeMounts") or [] if m["name"] in names]


def _mounts_at(pod_spec: dict[str, Any], path: str) -> list[str]:
    return [m["name"] for c in _containers(pod_spec) for m in c.get("volumeMounts") or [] if m["mountPath"] == path]


def _config_text(objects: list[dict[str, Any]], name: str, key: str) -> str:
    for obj in objects:
        if obj["metadata"]["name"] != name:
            continue
        if obj["kind"] == "ConfigMap" and key in (obj.get("data") or {}):
            return str(obj["data"][key])
        if obj["kind"] == "Secret" and key in (obj.get("data") or {}):
            return base64.b64decode(obj["data"][key]).decode()
    raise AssertionError(f"no ConfigMap or Secret {name} with key {key}")


def _parsed_config(objects: list[dict[str, Any]], name: str, key: str) -> dict[str, Any]:
    config = yaml.safe_load(_config_text(objects, name, key))
    assert isinstance(config, dict), f"{name}/{key} is not a YAML mapping"
    return config


def _service(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    services = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == name]
    assert len(services) == 1, f"expected a Service named {name}"
    return services[0]


def _selects(service: dict[str, Any], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


# --- Loki --------------------------------------------------------------------------------------------------------


@pytest.fixture
def loki(helm_template: HelmTemplate, context: dict[str, Any]) -> list[dict[str, Any]]:
    return _template(helm_template, context, "loki")


@pytest.fixture
def loki_config(loki: list[dict[str, Any]]) -> dict[str, Any]:
    return _parsed_config(loki, "loki", "config.yaml")


def test_loki_is_one_statefulset_replica_on_the_storage_node(
    loki: list[dict[str, Any]], context: dict[str, Any]
) -> None:
    sts = _the_workload(loki)
    assert (sts["kind"], sts["metadata"]["name"]) == ("StatefulSet", "loki")
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == context["heavy_node_selector"]
    assert pod["tolerations"] == context["heavy_tolerations"]
    assert "-target=all" in next(c for c in pod["containers"] if c["name"] == "loki")["args"]


def test_loki_pod_mounts_the_runbooks_claim_at_var_loki(loki: list[dict[str, Any]], context: dict[str, Any]) -> None:
    sts = _the_workload(loki)
    pod = sts["spec"]["template"]["spec"]
    assert _claim_mounts(pod, context["loki"]["pvc"]) == [LOKI_DATA_PATH]
    # Nothing else (an emptyDir, the chart's own claim) sits at the same path.
    assert len(_mounts_at(pod, LOKI_DATA_PATH)) == 1
    assert not sts["spec"].get("volumeClaimTemplates"), "the chart must not create a claim of its own"
    assert pod["securityContext"]["runAsUser"] == context["owner_uid"]
    assert pod["securityContext"]["fsGroup"] == context["owner_gid"]


def test_loki_writes_only_under_the_mounted_claim(loki_config: dict[str, Any]) -> None:
    common = loki_config["common"]
    paths = [
        common["path_prefix"],
        common["storage"]["filesystem"]["chunks_directory"],
        common["storage"]["filesystem"]["rules_directory"],
        loki_config["compactor"]["working_directory"],
    ]
    assert all(_under(p, LOKI_DATA_PATH) for p in paths), paths


def test_loki_config_enforces_retention_on_the_filesystem(loki_config: dict[str, Any], context: dict[str, Any]) -> None:
    assert loki_config["auth_enabled"] is False
    assert loki_config["common"]["replication_factor"] == 1
    assert set(loki_config["common"]["storage"]) == {"filesystem"}
    assert loki_config["limits_config"]["retention_period"] == context["loki"]["retention"] == "168h"
    compactor = loki_config["compactor"]
    assert compactor["retention_enabled"] is True
    assert compactor["delete_request_store"] == "filesystem"
    for period in loki_config["schema_config"]["configs"]:
        assert (period["store"], period["object_store"], period["schema"]) == ("tsdb", "filesystem", "v13")
        assert period["index"]["period"] == "24h"
    assert loki_config["ruler"]["storage"]["type"] == "local"


def test_loki_config_has_only_filesystem_keys_loki_parses(loki_config: dict[str, Any]) -> None:
    """Loki loads its config file strictly: an unknown key stops it at start-up.

    Loki 3.x's ``common.storage.filesystem`` (FilesystemConfig in pkg/loki/common/common.go)
    knows two keys; the 18.x chart copies ``loki.storage.filesystem`` into it verbatim.
    """
    assert set(loki_config["common"]["storage"]["filesystem"]) <= {"chunks_directory", "rules_directory"}


def test_loki_config_uses_no_memcached(loki_config: dict[str, Any]) -> None:
    assert "chunk_store_config" not in loki_config
    assert "results_cache" not in loki_config.get("query_range", {})
    assert "memcached" not in yaml.safe_dump(loki_config)


def test_svc_loki_serves_3100(loki: list[dict[str, Any]]) -> None:
    svc = _service(loki, "loki")
    assert svc["spec"].get("clusterIP") != "None"
    ports = {p["port"]: p for p in svc["spec"]["ports"]}
    assert ports[3100]["targetPort"] == "http-metrics"
    sts = _the_workload(loki)
    container = next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "loki")
    assert {"name": "http-metrics", "containerPort": 3100, "protocol": "TCP"} in container["ports"]
    assert _selects(svc, sts)


def test_loki_renders_nothing_a_homelab_cannot_run(loki: list[dict[str, Any]]) -> None:
    names = [f"{o['kind']}/{o['metadata']['name']}" for o in loki]
    for unwanted in ("memcached", "chunks-cache", "results-cache", "canary", "gateway", "minio", "grafana-agent"):
        assert not [n for n in names if unwanted in n], f"{unwanted}: {names}"
    hooks = [n for o, n in zip(loki, names, strict=True) if "helm.sh/hook" in (o["metadata"].get("annotations") or {})]
    assert not hooks, f"helm test or hook objects: {hooks}"
    kinds = {o["kind"] for o in loki}
    assert not kinds & {"GrafanaAgent", "LogsInstance", "PodLogs", "ServiceMonitor", "PrometheusRule"}


def test_loki_image_registry_override(helm_template: HelmTemplate, context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = REGISTRY
    objects = _template(helm_template, ctx, "loki")
    images = [c["image"] for w in _workloads(objects) for c in _containers(w["spec"]["template"]["spec"])]
    assert images == [f"{REGISTRY}/grafana/loki:{context['loki']['app_version']}"]


def test_loki_default_images_come_from_the_chart(loki: list[dict[str, Any]], context: dict[str, Any]) -> None:
    images = [c["image"] for w in _workloads(loki) for c in _containers(w["spec"]["template"]["spec"])]
    assert images == [f"docker.io/grafana/loki:{context['loki']['app_version']}"]


# --- Tempo -------------------------------------------------------------------------------------------------------


@pytest.fixture
def tempo(helm_template: HelmTemplate, context: dict[str, Any]) -> list[dict[str, Any]]:
    return _template(helm_template, context, "tempo")


@pytest.fixture
def tempo_config(tempo: list[dict[str, Any]]) -> dict[str, Any]:
    return _parsed_config(tempo, "tempo", "tempo.yaml")


def test_tempo_is_one_statefulset_replica_on_the_storage_node(
    tempo: list[dict[str, Any]], context: dict[str, Any]
) -> None:
    sts = _the_workload(tempo)
    assert (sts["kind"], sts["metadata"]["name"]) == ("StatefulSet", "tempo")  # pod tempo-0, as the runbook reads
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == context["heavy_node_selector"]
    assert pod["tolerations"] == context["heavy_tolerations"]
    assert pod["securityContext"]["runAsUser"] == context["owner_uid"]


def test_tempo_pod_mounts_the_runbooks_claim_where_tempo_writes(
    tempo: list[dict[str, Any]], tempo_config: dict[str, Any], context: dict[str, Any]
) -> None:
    sts = _the_workload(tempo)
    pod = sts["spec"]["template"]["spec"]
    assert _claim_mounts(pod, context["tempo"]["pvc"]) == [TEMPO_DATA_PATH]
    assert len(_mounts_at(pod, TEMPO_DATA_PATH)) == 1
    assert not sts["spec"].get("volumeClaimTemplates")
    trace = tempo_config["storage"]["trace"]
    assert trace["backend"] == "local"
    assert _under(trace["local"]["path"], TEMPO_DATA_PATH)
    assert _under(trace["wal"]["path"], TEMPO_DATA_PATH)


def test_tempo_config_receives_otlp_on_all_interfaces(tempo_config: dict[str, Any]) -> None:
    protocols = tempo_config["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


def test_tempo_config_keeps_traces_168h(tempo_config: dict[str, Any], context: dict[str, Any]) -> None:
    assert tempo_config["compactor"]["compaction"]["block_retention"] == context["tempo"]["retention"] == "168h"


def test_svc_tempo_serves_the_api_and_otlp(tempo: list[dict[str, Any]]) -> None:
    svc = _service(tempo, "tempo")
    ports = {(p["port"], p.get("protocol", "TCP")): p for p in svc["spec"]["ports"]}
    for port in (3200, 4317, 4318):
        assert (port, "TCP") in ports, port
        assert ports[(port, "TCP")]["targetPort"] == port
    sts = _the_workload(tempo)
    container_ports = {p["containerPort"] for c in sts["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert {3200, 4317, 4318} <= container_ports
    assert _selects(svc, sts)


def test_tempo_image_registry_override(helm_template: HelmTemplate, context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = REGISTRY
    objects = _template(helm_template, ctx, "tempo")
    images = [c["image"] for w in _workloads(objects) for c in _containers(w["spec"]["template"]["spec"])]
    assert images == [f"{REGISTRY}/grafana/tempo:{context['tempo']['app_version']}"]


# --- every key we set is one the chart reads ---------------------------------------------------------------------

#: Maps the charts pass through verbatim (toYaml), so any key inside them is fine.
FREE_FORM: dict[str, set[tuple[str, ...]]] = {
    "loki": {("loki", "podSecurityContext"), ("loki", "limits_config")},
    "tempo": {("securityContext",)},
}


@pytest.mark.parametrize("component", ["loki", "tempo"])
def test_values_use_only_keys_the_chart_defines(context: dict[str, Any], chart_set: str, component: str) -> None:
    chart_values = chart_dir(chart_set) / component / "values.yaml"
    theirs = yaml.safe_load(chart_values.read_text())
    values_file = {"loki": "02-loki-values.yaml", "tempo": "07-tempo-values.yaml"}[component]
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = REGISTRY
    ours = yaml.safe_load(render_files(ctx)[values_file])
    assert unknown_keys(ours, theirs, FREE_FORM[component]) == []
