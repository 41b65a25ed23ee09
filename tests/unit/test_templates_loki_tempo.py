"""Loki and Tempo: the storage manifests (01, 06) and the Helm values (02, 07).

These tests parse the rendered files and check the properties the runbook relies
on. What the real charts make of the values is checked in
tests/charts/test_chart_loki_tempo.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from o11yctl.stack.render import render_files

STORAGE_FILES = {"loki": "01-loki-storage.yaml", "tempo": "06-tempo-storage.yaml"}
LOKI_VALUES = "02-loki-values.yaml"
TEMPO_VALUES = "07-tempo-values.yaml"
LOKI_DATA_PATH = "/var/loki"
TEMPO_DATA_PATH = "/var/tempo"


def _parse(files: dict[str, str]) -> dict[str, list[Any]]:
    return {name: [d for d in yaml.safe_load_all(text) if d is not None] for name, text in files.items()}


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _values(rendered: dict[str, list[Any]], name: str) -> dict[str, Any]:
    docs = rendered[name]
    assert len(docs) == 1, f"{name} should be a single YAML document"
    assert isinstance(docs[0], dict)
    return docs[0]


def _mounts_of(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], claim: str) -> list[str]:
    """Mount paths of the volume(s) that use ``claim``."""
    names = {v["name"] for v in volumes if v.get("persistentVolumeClaim", {}).get("claimName") == claim}
    assert len(names) == 1, f"expected one volume for claim {claim}, found {sorted(names)}"
    return [m["mountPath"] for m in mounts if m["name"] in names]


# --- 01 / 06: PersistentVolume + PersistentVolumeClaim -------------------------------------------------------------


@pytest.mark.parametrize("component", ["loki", "tempo"])
def test_storage_file_holds_exactly_a_pv_and_its_claim(rendered: dict[str, list[Any]], component: str) -> None:
    docs = rendered[STORAGE_FILES[component]]
    assert sorted(d["kind"] for d in docs) == ["PersistentVolume", "PersistentVolumeClaim"]


@pytest.mark.parametrize("component", ["loki", "tempo"])
def test_pv_is_a_local_volume_pinned_to_the_storage_node(
    rendered: dict[str, list[Any]], context: dict[str, Any], component: str
) -> None:
    comp = context[component]
    pv = _by_kind(rendered[STORAGE_FILES[component]], "PersistentVolume")
    spec = pv["spec"]

    assert pv["metadata"]["name"] == comp["pv"]
    assert "namespace" not in pv["metadata"], "a PersistentVolume is cluster-scoped"
    assert spec["local"] == {"path": comp["host_path"]}
    assert spec["capacity"] == {"storage": comp["size"]}
    assert spec["accessModes"] == ["ReadWriteOnce"]
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["volumeMode"] == "Filesystem"
    assert spec["storageClassName"] == context["storage_class"]

    terms = spec["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [context["storage_node"]]},
            ]
        }
    ]
    # Reserved for the runbook's claim, so no other claim can take it.
    claim_ref = spec["claimRef"]
    assert (claim_ref["namespace"], claim_ref["name"]) == (context["namespace"], comp["pvc"])
    assert "uid" not in claim_ref


@pytest.mark.parametrize("component", ["loki", "tempo"])
def test_pvc_binds_to_exactly_its_pv(rendered: dict[str, list[Any]], context: dict[str, Any], component: str) -> None:
    comp = context[component]
    docs = rendered[STORAGE_FILES[component]]
    pv = _by_kind(docs, "PersistentVolume")
    pvc = _by_kind(docs, "PersistentVolumeClaim")
    spec = pvc["spec"]

    assert pvc["metadata"]["name"] == comp["pvc"]
    assert pvc["metadata"]["namespace"] == context["namespace"]
    assert spec["volumeName"] == pv["metadata"]["name"]
    assert spec["storageClassName"] == pv["spec"]["storageClassName"]
    assert spec["accessModes"] == pv["spec"]["accessModes"]
    assert spec["volumeMode"] == pv["spec"]["volumeMode"]
    assert spec["resources"]["requests"]["storage"] == pv["spec"]["capacity"]["storage"]


@pytest.mark.parametrize("component", ["loki", "tempo"])
def test_storage_objects_are_labelled(rendered: dict[str, list[Any]], context: dict[str, Any], component: str) -> None:
    for doc in rendered[STORAGE_FILES[component]]:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "o11yctl"
        for key, value in context["labels"].items():
            assert labels[key] == value
        assert labels["app.kubernetes.io/component"] == f"{component}-storage"


def test_default_storage_is_the_runbooks(rendered: dict[str, list[Any]]) -> None:
    """The built-in default reproduces the runbook's names, sizes, paths and node."""
    expected = {
        "loki": ("loki-pv", "loki-pvc", "200Gi", "/mnt/k8s-storage/loki"),
        "tempo": ("tempo-pv", "tempo-pvc", "50Gi", "/mnt/k8s-storage/tempo"),
    }
    for component, (pv_name, pvc_name, size, path) in expected.items():
        docs = rendered[STORAGE_FILES[component]]
        pv = _by_kind(docs, "PersistentVolume")
        pvc = _by_kind(docs, "PersistentVolumeClaim")
        assert pv["metadata"]["name"] == pv_name
        assert pvc["metadata"]["name"] == pvc_name
        assert pvc["metadata"]["namespace"] == "logging"
        assert pv["spec"]["capacity"]["storage"] == size
        assert pv["spec"]["local"]["path"] == path
        assert pv["spec"]["storageClassName"] == "local-storage"
        expr = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert expr["values"] == ["node-2"]


# --- 02: Loki values ---------------------------------------------------------------------------------------------


def test_loki_is_one_monolithic_pod(rendered: dict[str, list[Any]]) -> None:
    values = _values(rendered, LOKI_VALUES)
    assert values["deploymentMode"] == "SingleBinary"
    assert values["singleBinary"]["replicas"] == 1
    for target in ("read", "write", "backend"):
        assert values[target]["replicas"] == 0, target


def test_loki_is_pinned_to_the_storage_node(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    single = _values(rendered, LOKI_VALUES)["singleBinary"]
    assert single["nodeSelector"] == context["heavy_node_selector"] == {"hardware": "heavy"}
    assert single["tolerations"] == context["heavy_tolerations"]
    assert {"key": "heavy", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in single["tolerations"]


def test_loki_mounts_the_runbooks_claim_at_its_data_path(
    rendered: dict[str, list[Any]], context: dict[str, Any]
) -> None:
    values = _values(rendered, LOKI_VALUES)
    single = values["singleBinary"]
    # The chart's volumeClaimTemplate would create its own claim (storage-loki-0) and mount it at /var/loki.
    assert single["persistence"]["enabled"] is False
    paths = _mounts_of(single["extraVolumes"], single["extraVolumeMounts"], context["loki"]["pvc"])
    assert paths == [LOKI_DATA_PATH]
    assert [m["mountPath"] for m in single["extraVolumeMounts"]].count(LOKI_DATA_PATH) == 1
    # Everything Loki writes lives under the mounted path.
    loki = values["loki"]
    assert loki["commonConfig"]["path_prefix"] == LOKI_DATA_PATH
    for key in ("chunks_directory", "rules_directory"):
        assert loki["storage"]["filesystem"][key].startswith(LOKI_DATA_PATH + "/")
    assert loki["compactor"]["working_directory"].startswith(LOKI_DATA_PATH + "/")


def test_loki_runs_as_the_data_directory_owner(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    security = _values(rendered, LOKI_VALUES)["loki"]["podSecurityContext"]
    assert security["runAsUser"] == context["owner_uid"] == 10001
    assert security["runAsGroup"] == context["owner_gid"]
    assert security["fsGroup"] == context["owner_gid"]
    assert security["runAsNonRoot"] is True


def test_loki_needs_no_tenant_header(rendered: dict[str, list[Any]]) -> None:
    assert _values(rendered, LOKI_VALUES)["loki"]["auth_enabled"] is False


def test_loki_stores_on_the_filesystem_with_one_replica(rendered: dict[str, list[Any]]) -> None:
    loki = _values(rendered, LOKI_VALUES)["loki"]
    assert loki["storage"]["type"] == "filesystem"
    assert loki["commonConfig"]["replication_factor"] == 1


def test_loki_retention_is_enforced_by_the_compactor(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    loki = _values(rendered, LOKI_VALUES)["loki"]
    assert loki["limits_config"]["retention_period"] == context["loki"]["retention"] == "168h"
    assert loki["compactor"]["retention_enabled"] is True
    # Loki 3 refuses retention without a store for delete requests.
    assert loki["compactor"]["delete_request_store"] == "filesystem"
    # Retention works only on the tsdb (or boltdb-shipper) index with a 24h period.
    for period in loki["schemaConfig"]["configs"]:
        assert period["store"] == "tsdb"
        assert period["schema"] == "v13"
        assert period["object_store"] == "filesystem"
        assert period["index"]["period"] == "24h"
        assert isinstance(period["from"], str), "an unquoted date would be parsed as a date, not Loki's string"


@pytest.mark.parametrize("section", ["gateway", "chunksCache", "resultsCache", "lokiCanary", "test", "minio"])
def test_loki_extras_are_off(rendered: dict[str, list[Any]], section: str) -> None:
    assert _values(rendered, LOKI_VALUES)[section]["enabled"] is False


def test_loki_sidecar_and_self_monitoring_are_off(rendered: dict[str, list[Any]]) -> None:
    values = _values(rendered, LOKI_VALUES)
    assert values["sidecar"]["rules"]["enabled"] is False
    monitoring = values["monitoring"]
    assert monitoring["selfMonitoring"]["enabled"] is False
    assert monitoring["selfMonitoring"]["grafanaAgent"]["installOperator"] is False
    for section in ("serviceMonitor", "dashboards", "rules"):
        assert monitoring[section]["enabled"] is False, section


# --- 07: Tempo values --------------------------------------------------------------------------------------------


def test_tempo_is_one_pod_pinned_to_the_storage_node(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    values = _values(rendered, TEMPO_VALUES)
    assert values["replicas"] == 1
    assert values["nodeSelector"] == context["heavy_node_selector"]
    assert values["tolerations"] == context["heavy_tolerations"]


def test_tempo_receives_otlp_on_all_interfaces(rendered: dict[str, list[Any]]) -> None:
    protocols = _values(rendered, TEMPO_VALUES)["tempo"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


def test_tempo_retention(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    assert _values(rendered, TEMPO_VALUES)["tempo"]["retention"] == context["tempo"]["retention"] == "168h"


def test_tempo_mounts_the_runbooks_claim_where_it_writes(
    rendered: dict[str, list[Any]], context: dict[str, Any]
) -> None:
    values = _values(rendered, TEMPO_VALUES)
    assert values["persistence"]["enabled"] is False
    tempo = values["tempo"]
    paths = _mounts_of(values["extraVolumes"], tempo["extraVolumeMounts"], context["tempo"]["pvc"])
    assert paths == [TEMPO_DATA_PATH]
    trace = tempo["storage"]["trace"]
    assert trace["backend"] == "local"
    assert trace["local"]["path"].startswith(TEMPO_DATA_PATH + "/")
    assert trace["wal"]["path"].startswith(TEMPO_DATA_PATH + "/")


def test_tempo_runs_as_the_data_directory_owner(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    security = _values(rendered, TEMPO_VALUES)["securityContext"]
    assert security["runAsUser"] == context["owner_uid"]
    assert security["runAsGroup"] == context["owner_gid"]
    assert security["fsGroup"] == context["owner_gid"]


# --- image registry override -------------------------------------------------------------------------------------


def test_no_registry_override_keeps_the_chart_defaults(rendered: dict[str, list[Any]]) -> None:
    assert "image" not in _values(rendered, LOKI_VALUES)["loki"]
    assert "registry" not in _values(rendered, TEMPO_VALUES)["tempo"]


def test_registry_override_reaches_every_image(context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = "registry.lan:5000"
    rendered = _parse(render_files(ctx))

    loki = _values(rendered, LOKI_VALUES)
    assert loki["loki"]["image"]["registry"] == "registry.lan:5000"
    # The only other image the chart would still run is the rules sidecar's, and it is off.
    assert loki["sidecar"]["rules"]["enabled"] is False
    tempo = _values(rendered, TEMPO_VALUES)
    assert tempo["tempo"]["registry"] == "registry.lan:5000"
    assert tempo.get("tempoQuery", {}).get("enabled", False) is False


# --- the context drives the output -------------------------------------------------------------------------------


def test_sizes_paths_retention_and_node_follow_the_context(context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["storage_node"] = "nas-1"
    ctx["heavy_node_selector"] = {"disk": "nvme"}
    ctx["heavy_tolerations"] = [{"key": "storage", "operator": "Exists", "effect": "NoSchedule"}]
    ctx["owner_uid"], ctx["owner_gid"] = 20000, 20001
    ctx["loki"].update(size="300Gi", host_path="/srv/data/loki", retention="336h")
    ctx["tempo"].update(size="80Gi", host_path="/srv/data/tempo", retention="72h")
    rendered = _parse(render_files(ctx))

    for component, size, path in (("loki", "300Gi", "/srv/data/loki"), ("tempo", "80Gi", "/srv/data/tempo")):
        docs = rendered[STORAGE_FILES[component]]
        pv = _by_kind(docs, "PersistentVolume")
        pvc = _by_kind(docs, "PersistentVolumeClaim")
        assert pv["spec"]["capacity"]["storage"] == size
        assert pvc["spec"]["resources"]["requests"]["storage"] == size
        assert pv["spec"]["local"]["path"] == path
        expr = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert expr["values"] == ["nas-1"]

    loki = _values(rendered, LOKI_VALUES)
    assert loki["loki"]["limits_config"]["retention_period"] == "336h"
    assert loki["singleBinary"]["nodeSelector"] == {"disk": "nvme"}
    assert loki["singleBinary"]["tolerations"] == ctx["heavy_tolerations"]
    assert loki["loki"]["podSecurityContext"]["runAsUser"] == 20000
    tempo = _values(rendered, TEMPO_VALUES)
    assert tempo["tempo"]["retention"] == "72h"
    assert tempo["nodeSelector"] == {"disk": "nvme"}
    assert tempo["securityContext"]["fsGroup"] == 20001


def test_names_with_yaml_specials_stay_strings(context: dict[str, Any]) -> None:
    """Values are placed as JSON, so a node called `yes` or `1` stays a string."""
    ctx = copy.deepcopy(context)
    ctx["storage_node"] = "yes"
    ctx["heavy_node_selector"] = {"hardware": "true"}
    rendered = _parse(render_files(ctx))
    pv = _by_kind(rendered[STORAGE_FILES["loki"]], "PersistentVolume")
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["yes"]
    assert _values(rendered, LOKI_VALUES)["singleBinary"]["nodeSelector"] == {"hardware": "true"}
