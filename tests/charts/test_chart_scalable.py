"""Profile scalable through `helm template` with the real charts of the `current` set and SeaweedFS.

Asserted on the parsed objects: every pod lands where the config says, every volume is where it
should be, every workload finds its bucket through the Secret's keys, the buckets are made, no
credential appears in any rendered object (only references to the Secret), and an external
store's private CA is a file in Loki's and Tempo's pods that their S3 clients are pointed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from o11yctl.config import parse_config
from o11yctl.stack.context import build_context
from o11yctl.stack.render import render_files
from o11yctl.status.buckets import MASTER_PORT, MASTER_SERVICE
from tests.lab.tls import private_ca

pytestmark = pytest.mark.charts

HelmTemplate = Callable[..., list[dict[str, Any]]]
NODES = ["node-a", "node-b", "node-c"]
CONFIG = f"""\
profile: scalable
charts:
  set: current
nodes:
  - {{name: node-a, address: 198.18.0.1, role: server}}
  - {{name: node-b, address: 198.18.0.2, role: agent, taints: [{{key: heavy, value: "true", effect: NoSchedule}}]}}
  - {{name: node-c, address: 198.18.0.3, role: agent}}
  - {{name: node-d, address: 198.18.0.4, role: agent}}
storage:
  node: node-b
components:
  grafana:
    node: node-a
  loki:
    nodes: {NODES}
  tempo:
    nodes: [node-c]
object_storage:
  nodes: {NODES}
  root: /srv/s3
  credentials_secret: s3-keys
"""
PLACEHOLDER = re.compile(r"^\$\{[A-Z0-9_]+\}$")


@pytest.fixture
def chart_set() -> str:
    return "current"


@pytest.fixture
def ctx() -> dict[str, Any]:
    return build_context(parse_config(CONFIG))


def _template(helm_template: HelmTemplate, ctx: dict[str, Any], component: str, chart: str) -> list[dict[str, Any]]:
    values = {"loki": "02-loki-values.yaml", "tempo": "07-tempo-values.yaml", "store": "09-object-store-values.yaml"}
    return helm_template(chart, render_files(ctx)[values[component]], release=ctx[component]["release"],
                         namespace=ctx["namespace"])


def _pod(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in ("StatefulSet", "Deployment", "DaemonSet", "Job"):
        return dict(obj["spec"]["template"]["spec"])
    return None


def _allowed(pod: dict[str, Any]) -> set[str] | None:
    """The hostnames a pod may run on (nodeSelector or required node affinity), None when unconstrained."""
    selector = (pod.get("nodeSelector") or {}).get("kubernetes.io/hostname")
    if selector:
        return {selector}
    terms = (((pod.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    names: set[str] = set()
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr["key"] == "kubernetes.io/hostname" and expr["operator"] == "In":
                names |= set(expr["values"])
    return names or None


def _one_per_node(pod: dict[str, Any]) -> bool:
    rules = (((pod.get("affinity") or {}).get("podAntiAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")) or []
    return any(r.get("topologyKey") == "kubernetes.io/hostname" for r in rules)


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers") or []
    yield from pod.get("containers") or []


def _secret_refs(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    out = {}
    for c in _containers(pod):
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                out[env["name"]] = (ref["name"], ref["key"])
    return out


def _loki_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Loki's config file as the chart renders it (its ConfigMap or Secret named loki, key config.yaml)."""
    return dict(yaml.safe_load(next(o for o in objects if o["kind"] in ("ConfigMap", "Secret")
                                    and o["metadata"]["name"] == "loki" and "config.yaml" in (o.get("data") or {}))
                               ["data"]["config.yaml"]))


def _tempo_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Tempo's config file as the chart renders it (the ConfigMap with tempo.yaml)."""
    return dict(yaml.safe_load(next(o for o in objects if o["kind"] == "ConfigMap" and "tempo.yaml" in (
        o.get("data") or {}))["data"]["tempo.yaml"]))


def _no_literal_credentials(objects: list[dict[str, Any]]) -> list[str]:
    """Any value under a key that names a credential which is not a ${VAR} reference or a Secret reference."""
    leaks = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        elif (isinstance(value, str) and value and re.search(r"(secret|access)_?key", path.rsplit(".", 1)[-1], re.I)
              and not PLACEHOLDER.match(value) and "secretKeyRef" not in path
              and not path.endswith(("Key", ".key"))):
            leaks.append(f"{path} = {value[:40]}")

    for obj in objects:
        walk(obj, f"{obj['kind']}/{obj['metadata']['name']}")
    return leaks


def test_the_store_puts_one_of_each_on_the_named_nodes_with_its_data_on_their_disks(
        helm_template: HelmTemplate, ctx: dict[str, Any]) -> None:
    objects = _template(helm_template, ctx, "store", "seaweedfs")
    sts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "StatefulSet"}
    for name in ("seaweedfs-master", "seaweedfs-filer"):
        pod = _pod(sts[name])
        assert pod is not None and sts[name]["spec"]["replicas"] == 3
        assert _allowed(pod) == set(NODES) and _one_per_node(pod)
    volumes = {n: s for n, s in sts.items() if n.startswith("seaweedfs-volume-")}
    assert {n.removeprefix("seaweedfs-volume-") for n in volumes} == set(NODES)
    for name, obj in volumes.items():
        pod = _pod(obj)
        assert pod is not None and _allowed(pod) == {name.removeprefix("seaweedfs-volume-")}
    for obj in sts.values():
        pod = _pod(obj)
        assert pod is not None and not obj["spec"].get("volumeClaimTemplates")
        paths = [v["hostPath"]["path"] for v in pod.get("volumes") or [] if "hostPath" in v]
        assert paths and all(p.split("/srv/s3/")[-1].split("/")[0] in ("object_store", "filer_store",
                                                                         "seaweed-master") for p in paths), paths
        assert pod["securityContext"]["runAsUser"] == 1000  # the owner o11yctl gives the directories
        # the storage node's taint is tolerated where the pod may run on it
        assert any(t.get("key") == "heavy" for t in pod.get("tolerations") or []), obj["metadata"]["name"]
    s3 = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "seaweedfs-s3")
    assert {p["port"] for p in s3["spec"]["ports"]} >= {8333}
    # where `status` reads the buckets' usage (the master's /vol/status, through the API server's service proxy)
    master = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == MASTER_SERVICE)
    assert MASTER_PORT in {p["port"] for p in master["spec"]["ports"]}
    assert "-port=9333" in " ".join(c["command"][-1] for c in _containers(_pod(sts["seaweedfs-master"]) or {}))
    filer_env = _secret_refs(_pod(sts["seaweedfs-filer"]) or {})
    assert {ref for ref in filer_env.values()} == {("s3-keys", k) for k in (
        "access_key_id", "secret_access_key", "read_access_key_id", "read_secret_access_key")}
    hook = next(o for o in objects if o["kind"] == "Job")
    script = " ".join(c["command"][-1] for c in _containers(_pod(hook) or {}))
    for bucket in ("loki-chunks", "loki-ruler", "tempo-traces"):
        assert f"s3.bucket.create --name {bucket}" in script
    identities = json.loads(next(o for o in objects if o["kind"] == "Secret")["stringData"]["seaweedfs_s3_config"])
    for identity in identities["identities"]:
        for cred in identity["credentials"]:
            assert PLACEHOLDER.match(cred["accessKey"]) and PLACEHOLDER.match(cred["secretKey"])
    assert _no_literal_credentials(objects) == []


def test_loki_runs_three_replicas_one_per_node_on_the_bucket(helm_template: HelmTemplate,
                                                             ctx: dict[str, Any]) -> None:
    objects = _template(helm_template, ctx, "loki", "loki")
    sts = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "loki")
    pod = _pod(sts)
    assert pod is not None and sts["spec"]["replicas"] == 3
    assert _allowed(pod) == set(NODES) and _one_per_node(pod)
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "local-path"  # the WAL only
    config = _loki_config(objects)
    assert config["common"]["replication_factor"] == 3
    s3 = config["common"]["storage"]["s3"]
    assert s3["endpoint"] == "seaweedfs-s3.logging.svc.cluster.local:8333" and s3["insecure"] is True
    assert s3["s3forcepathstyle"] is True and s3["bucketnames"] == "loki-chunks"
    assert PLACEHOLDER.match(s3["access_key_id"]) and PLACEHOLDER.match(s3["secret_access_key"])
    assert {p["object_store"] for p in config["schema_config"]["configs"]} == {"s3"}
    assert config["compactor"]["delete_request_store"] == "s3"
    assert set(_secret_refs(pod).values()) == {("s3-keys", "access_key_id"), ("s3-keys", "secret_access_key")}
    assert _no_literal_credentials(objects) == []


def test_tempo_runs_one_replica_where_the_config_says_on_the_bucket(helm_template: HelmTemplate,
                                                                   ctx: dict[str, Any]) -> None:
    objects = _template(helm_template, ctx, "tempo", "tempo")
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    pod = _pod(sts)
    assert pod is not None and sts["spec"]["replicas"] == 1 and _allowed(pod) == {"node-c"}
    config = _tempo_config(objects)
    trace = config["storage"]["trace"]
    assert trace["backend"] == "s3" and trace["s3"]["bucket"] == "tempo-traces"
    assert PLACEHOLDER.match(trace["s3"]["access_key"]) and PLACEHOLDER.match(trace["s3"]["secret_key"])
    tempo = next(c for c in pod["containers"] if c["name"] == "tempo")
    assert "-config.expand-env=true" in tempo["args"]
    assert set(_secret_refs(pod).values()) == {("s3-keys", "access_key_id"), ("s3-keys", "secret_access_key")}
    assert _no_literal_credentials(objects) == []


def test_the_policies_select_the_scalable_charts_pods(helm_template: HelmTemplate) -> None:
    """With network_policy on, each policy selects exactly its release's pods (the store's hook Job's too)."""
    text = CONFIG.replace("{name: node-a, address: 198.18.0.1, role: server}",
                          "{name: node-a, address: 198.18.0.1, role: server, pod_cidr: 10.42.0.0/24}")
    ctx = build_context(parse_config(text + "network_policy:\n  enabled: true\n"))
    pods = {name: [o["spec"]["template"]["metadata"]["labels"] for o in _template(helm_template, ctx, name, chart)
                   if _pod(o) is not None]
            for name, chart in (("store", "seaweedfs"), ("loki", "loki"), ("tempo", "tempo"))}
    policies = {d["metadata"]["name"]: d for d in yaml.safe_load_all(render_files(ctx)["08-network-policies.yaml"])
                if d}
    assert set(policies) == {"store-ingress", "loki-ingress", "tempo-ingress"}
    for name, labels in pods.items():
        selector = policies[f"{name}-ingress"]["spec"]["podSelector"]["matchLabels"]
        assert labels and all(all(pod.get(k) == v for k, v in selector.items()) for pod in labels), (name, labels)
        for other, other_labels in pods.items():
            if other != name:
                assert not any(all(pod.get(k) == v for k, v in selector.items()) for pod in other_labels)


# --- the move from single-node: `o11yctl migrate`'s bridge stage ----------------------------------------------


@pytest.fixture
def bridge_ctx() -> dict[str, Any]:
    return build_context(parse_config(CONFIG).bridged("2026-12-06"))


def _volume_of(pod: dict[str, Any], mount_path: str) -> dict[str, Any]:
    """The pod volume mounted at ``mount_path`` in the main container."""
    name = next(m["name"] for c in pod["containers"] for m in c.get("volumeMounts") or []
                if m["mountPath"] == mount_path)
    return dict(next(v for v in pod["volumes"] if v["name"] == name))


def _replaced_by_scalable(helm_template: HelmTemplate, ctx: dict[str, Any], component: str,
                          bridge: dict[str, Any]) -> None:
    """The finish stage deletes the bridge's StatefulSet (orphan) for profile scalable's: same name and selector,
    so the new one adopts the running pod; its claims differ (the reason it cannot be updated in place)."""
    scalable = next(o for o in _template(helm_template, ctx, component, component) if o["kind"] == "StatefulSet")
    assert scalable["metadata"]["name"] == bridge["metadata"]["name"] == component
    assert scalable["spec"]["selector"] == bridge["spec"]["selector"]
    assert scalable["spec"]["volumeClaimTemplates"] and not bridge["spec"].get("volumeClaimTemplates")


def test_the_bridge_keeps_loki_on_its_claim_and_adds_the_bucket_period(
        helm_template: HelmTemplate, ctx: dict[str, Any], bridge_ctx: dict[str, Any]) -> None:
    objects = _template(helm_template, bridge_ctx, "loki", "loki")
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    pod = _pod(sts)
    assert pod is not None and sts["spec"]["replicas"] == 1 and not sts["spec"].get("volumeClaimTemplates")
    assert _volume_of(pod, "/var/loki")["persistentVolumeClaim"] == {"claimName": "loki-pvc"}
    assert any(t.get("key") == "heavy" for t in pod.get("tolerations") or [])  # the storage node's taint
    config = _loki_config(objects)
    assert [(p["from"], p["object_store"]) for p in config["schema_config"]["configs"]] == [
        ("2024-04-01", "filesystem"), ("2026-12-06", "s3")]
    assert config["storage_config"]["filesystem"]["directory"] == "/var/loki/chunks"
    s3 = config["common"]["storage"]["s3"]
    assert s3["bucketnames"] == "loki-chunks" and PLACEHOLDER.match(s3["access_key_id"])
    assert config["compactor"]["delete_request_store"] == "filesystem"
    assert set(_secret_refs(pod).values()) == {("s3-keys", "access_key_id"), ("s3-keys", "secret_access_key")}
    assert _no_literal_credentials(objects) == []
    _replaced_by_scalable(helm_template, ctx, "loki", sts)


def test_the_bridge_keeps_tempo_on_its_claim_with_its_blocks_in_the_bucket(
        helm_template: HelmTemplate, ctx: dict[str, Any], bridge_ctx: dict[str, Any]) -> None:
    objects = _template(helm_template, bridge_ctx, "tempo", "tempo")
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    pod = _pod(sts)
    assert pod is not None and sts["spec"]["replicas"] == 1 and not sts["spec"].get("volumeClaimTemplates")
    assert _volume_of(pod, "/var/tempo")["persistentVolumeClaim"] == {"claimName": "tempo-pvc"}
    config = _tempo_config(objects)
    trace = config["storage"]["trace"]
    assert trace["backend"] == "s3" and trace["s3"]["bucket"] == "tempo-traces" and "local" not in trace
    assert trace["wal"]["path"] == "/var/tempo/wal"
    tempo = next(c for c in pod["containers"] if c["name"] == "tempo")
    assert "-config.expand-env=true" in tempo["args"]
    assert set(_secret_refs(pod).values()) == {("s3-keys", "access_key_id"), ("s3-keys", "secret_access_key")}
    assert _no_literal_credentials(objects) == []
    _replaced_by_scalable(helm_template, ctx, "tempo", sts)


# --- an external store whose certificate a private CA signed (object_storage.ca_file) -------------------------


@pytest.fixture(params=["scalable", "bridge"])
def ca_ctx(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Profile scalable, and `o11yctl migrate`'s bridge stage (the single-node pods on the same store)."""
    ca_file = tmp_path / "store-ca.pem"
    ca_file.write_bytes(private_ca().cert_pem)
    external = (f"object_storage:\n  store: external\n  endpoint: https://s3.lan:9000\n  ca_file: {ca_file}\n"
                "  credentials_secret: s3-keys\n")
    cfg = parse_config(CONFIG[:CONFIG.index("object_storage:")] + external)
    return build_context(cfg.bridged("2026-12-06") if request.param == "bridge" else cfg)


def _ca_in_pod(ctx: dict[str, Any], pod: dict[str, Any], container: str) -> str:
    """Where ``container`` sees the CA ConfigMap's certificate file: its mount of the volume, plus the key."""
    (cm,) = [d for d in yaml.safe_load_all(render_files(ctx)["10-object-store-ca.yaml"]) if d]
    assert cm["kind"] == "ConfigMap" and list(cm["data"]) == ["ca.crt"]
    volumes = [v for v in pod.get("volumes") or [] if (v.get("configMap") or {}).get("name") == cm["metadata"]["name"]]
    assert len(volumes) == 1 and "items" not in volumes[0]["configMap"], volumes  # every key, as a file of its name
    (c,) = [c for c in pod["containers"] if c["name"] == container]
    (mount,) = [m for m in c.get("volumeMounts") or [] if m["name"] == volumes[0]["name"]]
    assert mount.get("readOnly") is True and "subPath" not in mount
    return f"{mount['mountPath']}/ca.crt"


def test_loki_reads_an_external_store_s_ca_from_the_mounted_configmap(helm_template: HelmTemplate,
                                                                      ca_ctx: dict[str, Any]) -> None:
    objects = _template(helm_template, ca_ctx, "loki", "loki")
    sts = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "loki")
    pod = _pod(sts)
    assert pod is not None
    path = _ca_in_pod(ca_ctx, pod, "loki")
    config = _loki_config(objects)
    # the chunks and index (common) and the rules (ruler) go through the same S3 client settings
    for s3 in (config["common"]["storage"]["s3"], config["ruler"]["storage"]["s3"]):
        assert s3["endpoint"] == "s3.lan:9000" and s3["insecure"] is False
        assert s3["http_config"] == {"ca_file": path}
    assert "checksum/object-storage-ca" in sts["spec"]["template"]["metadata"]["annotations"]
    assert _no_literal_credentials(objects) == []


def test_tempo_reads_an_external_store_s_ca_from_the_mounted_configmap(helm_template: HelmTemplate,
                                                                       ca_ctx: dict[str, Any]) -> None:
    objects = _template(helm_template, ca_ctx, "tempo", "tempo")
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    pod = _pod(sts)
    assert pod is not None
    path = _ca_in_pod(ca_ctx, pod, "tempo")
    config = _tempo_config(objects)
    s3 = config["storage"]["trace"]["s3"]
    assert s3["endpoint"] == "s3.lan:9000" and s3["insecure"] is False
    assert s3["tls_ca_path"] == path  # dskit's TLS client config, inlined in Tempo's S3 config
    assert "checksum/object-storage-ca" in sts["spec"]["template"]["metadata"]["annotations"]
    assert _no_literal_credentials(objects) == []
