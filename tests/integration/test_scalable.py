"""Profile scalable end to end: install, verify, and where the object store's keys go (nowhere but the Secret).

No control plane, helm release store, Loki, Tempo, SeaweedFS or S3 can run here: the Kubernetes API
is the fake API server of tests/lab/fake_kube.py, helm the stand-in of tests/lab/fake_helm.py, an
external store the fake S3 server of tests/lab/fake_s3.py (SigV4 checked, answers in S3's documented
shapes), the in-cluster store's filer and master answers shaped after SeaweedFS's source
(tests/data/seaweedfs/), and the store's nodes a real sshd on 127.0.0.1 whose disk takes the
directories. An external store with a private CA answers https with a certificate that CA signed
(tests/lab/tls.py). The CLI runs unchanged against them.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.lab.fake_helm import FakeHelm
from tests.lab.fake_kube import KubeLab
from tests.lab.fake_s3 import FakeS3
from tests.lab.observability_lab import open_directory
from tests.lab.sshd import Sshd, TestUsers, free_port, write_known_hosts
from tests.lab.tls import private_ca
from typer.testing import CliRunner

from o11yctl.cli import app

NS = "logging"
READY = (200, "text/plain; charset=utf-8", b"ready\n")
ACCESS, SECRET = "AKIAO11YCTLSCALABLE1", "external-store-secret-key-do-not-print"
FILER = json.loads((Path(__file__).resolve().parents[1] / "data" / "seaweedfs" / "filer-list-buckets.json")
                   .read_text())


def _nodes(extra: str = "") -> str:
    return "nodes:\n" + "".join(
        f"  - {{name: node-{i}, address: 198.18.0.{i}, role: {'server' if i == 1 else 'agent'}{extra}}}\n"
        for i in (1, 2, 3))


def _pods(lab: KubeLab, *, store: bool) -> None:
    """What the charts' pods look like once the kubelet runs them (labels as the charts give them)."""
    api = lab.api
    api.add_node("node-3", address="198.18.0.3")
    pods = [(f"loki-{i}", f"node-{i + 1}", "loki") for i in range(3)]
    pods += [("tempo-0", "node-2", "tempo"), ("alloy-a", "node-1", "alloy"), ("grafana-x", "node-1", "grafana")]
    if store:
        pods += [(f"seaweedfs-master-{i}", f"node-{i + 1}", "seaweedfs") for i in range(3)]
        pods += [(f"seaweedfs-filer-{i}", f"node-{i + 1}", "seaweedfs") for i in range(3)]
        pods += [(f"seaweedfs-volume-node-{i}-0", f"node-{i}", "seaweedfs") for i in (1, 2, 3)]
    for name, node, release in pods:
        api.add_pod(NS, name, node=node, labels={"app.kubernetes.io/name": release,
                                                  "app.kubernetes.io/instance": release})
    api.add_service(NS, "loki", 3100, READY)
    api.add_service(NS, "tempo", 3200, READY)


def _filer(buckets: list[str]) -> Any:
    def answer(method: str, path: str, query: Any, body: bytes, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        assert (method, path) == ("GET", "/buckets/")
        assert headers.get("Accept") == "application/json"  # else the filer answers its HTML page
        doc = dict(FILER, Entries=[e for e in FILER["Entries"] if e["FullPath"].rsplit("/", 1)[-1] in buckets])
        return 200, "application/json", json.dumps(doc).encode()
    return answer


@pytest.fixture
def helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHelm]:
    fake = FakeHelm(tmp_path / "helm").first_on_path(monkeypatch)
    yield fake
    fake.check_clean()


def run(lab: KubeLab, config: Path, *args: str, command: str = "install", stdin: str | None = None) -> Any:
    result = CliRunner().invoke(app, [command, "-c", str(config), "--kubeconfig", str(lab.kubeconfig), "--json",
                                      *args], input=stdin)
    result.doc = json.loads(result.stdout) if result.stdout.strip() else None
    return result


def _never_printed(values: list[str], *texts: str) -> None:
    for value in values:
        for text in texts:
            assert value not in text


# --- an external store --------------------------------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    with FakeS3(credentials={ACCESS: SECRET}) as server:
        for bucket in ("loki-chunks", "loki-ruler", "tempo-traces"):
            server.add_bucket(bucket)
        yield server


def _external(tmp_path: Path, endpoint: str) -> Path:
    config = tmp_path / "o11yctl.yaml"
    config.write_text("profile: scalable\ncharts:\n  set: current\n" + _nodes() + "storage:\n  node: node-2\n"
                      f"route:\n  url: http://127.0.0.1:{free_port()}/grafana\n"
                      f"object_storage:\n  store: external\n  endpoint: {endpoint}\n")
    return config


def test_external_store_install_makes_the_secret_from_the_environment_and_verify_reads_the_buckets(
        kube_cluster: KubeLab, helm: FakeHelm, s3: FakeS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pods(kube_cluster, store=False)
    config = _external(tmp_path, s3.url)
    monkeypatch.setenv("O11YCTL_S3_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("O11YCTL_S3_SECRET_ACCESS_KEY", SECRET)
    installed = run(kube_cluster, config, "--yes")
    assert installed.exit_code == 0, installed.output
    steps = {i["id"]: i for i in installed.doc["items"]}
    assert steps["credentials"]["outcome"] == "created"
    assert "from $O11YCTL_S3_ACCESS_KEY_ID and $O11YCTL_S3_SECRET_ACCESS_KEY" in steps["credentials"]["detail"]
    secret = kube_cluster.api.obj("v1", "Secret", "o11yctl-object-storage", NS)
    assert secret is not None
    assert base64.b64decode(secret["data"]["secret_access_key"]).decode() == SECRET
    # Loki and Tempo take the keys from that Secret; no value reached helm, the values or the output
    loki_values = helm.releases(NS)["loki"][-1]["values"]
    assert loki_values["loki"]["storage"]["s3"]["endpoint"] == s3.url.split("://", 1)[1]
    assert loki_values["loki"]["storage"]["s3"]["insecure"] is True
    _never_printed([SECRET], installed.output, json.dumps(helm.releases(NS)), json.dumps(helm.calls))

    monkeypatch.delenv("O11YCTL_S3_SECRET_ACCESS_KEY")
    again = run(kube_cluster, config, "--yes")
    assert again.exit_code == 0, again.output
    assert {i["id"]: i["outcome"] for i in again.doc["items"]}["credentials"] == "unchanged"

    verified = run(kube_cluster, config, "--only", "cluster", command="verify")
    checks = {c["id"]: c for c in verified.doc["checks"]}
    assert checks["cluster.buckets"]["status"] == "PASS", checks["cluster.buckets"]
    assert checks["cluster.pods.loki"]["status"] == "PASS", checks["cluster.pods.loki"]
    assert checks["cluster.pods.loki"]["detail"] == "3/3 Loki pod(s) Ready on node-1, node-2, node-3"
    _never_printed([SECRET], verified.output)


def test_external_store_refusals_are_named_before_anything_changes(
        kube_cluster: KubeLab, helm: FakeHelm, s3: FakeS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pods(kube_cluster, store=False)
    config = _external(tmp_path, s3.url)
    no_keys = run(kube_cluster, config, "--yes")
    assert no_keys.exit_code == 3, no_keys.output
    assert "$O11YCTL_S3_ACCESS_KEY_ID / $O11YCTL_S3_SECRET_ACCESS_KEY are not set" in no_keys.doc["error"]["message"]

    monkeypatch.setenv("O11YCTL_S3_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("O11YCTL_S3_SECRET_ACCESS_KEY", "a-wrong-key")
    refused = run(kube_cluster, config, "--yes")
    assert refused.exit_code == 3
    assert "refused the keys for bucket loki-chunks: SignatureDoesNotMatch" in refused.doc["error"]["message"]
    _never_printed(["a-wrong-key"], refused.output)

    closed = _external(tmp_path, f"http://127.0.0.1:{free_port()}")
    unreachable = run(kube_cluster, closed, "--yes")
    assert unreachable.exit_code == 3
    assert "does not answer" in unreachable.doc["error"]["message"]
    assert kube_cluster.api.obj("v1", "Secret", "o11yctl-object-storage", NS) is None
    assert helm.releases(NS) == {}


def test_external_store_keys_from_standard_input_go_into_the_secret_only(
        kube_cluster: KubeLab, helm: FakeHelm, s3: FakeS3, tmp_path: Path) -> None:
    _pods(kube_cluster, store=False)
    config = _external(tmp_path, s3.url)
    one_line = run(kube_cluster, config, "--yes", "--s3-keys-stdin", stdin=f"{ACCESS}\n")
    assert one_line.exit_code == 2, one_line.output
    assert "expected two lines on standard input" in one_line.doc["error"]["message"]
    both = run(kube_cluster, config, "--yes", "--s3-keys-stdin", "--sudo-password-stdin", stdin="x\ny\nz\n")
    assert both.exit_code == 2 and "both read standard input" in both.doc["error"]["message"]
    assert kube_cluster.api.obj("v1", "Secret", "o11yctl-object-storage", NS) is None

    installed = run(kube_cluster, config, "--yes", "--s3-keys-stdin", stdin=f"{ACCESS}\n{SECRET}\n")
    assert installed.exit_code == 0, installed.output
    step = {i["id"]: i for i in installed.doc["items"]}["credentials"]
    assert step["outcome"] == "created" and "from standard input" in step["detail"]
    secret = kube_cluster.api.obj("v1", "Secret", "o11yctl-object-storage", NS)
    assert secret is not None and base64.b64decode(secret["data"]["secret_access_key"]).decode() == SECRET
    assert os.environ.get("O11YCTL_S3_SECRET_ACCESS_KEY") is None
    _never_printed([SECRET], installed.output, json.dumps(helm.releases(NS)), json.dumps(helm.calls))


def test_verify_names_wrong_keys_in_the_secret(kube_cluster: KubeLab, helm: FakeHelm, s3: FakeS3, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _pods(kube_cluster, store=False)
    config = _external(tmp_path, s3.url)
    monkeypatch.setenv("O11YCTL_S3_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("O11YCTL_S3_SECRET_ACCESS_KEY", SECRET)
    assert run(kube_cluster, config, "--yes").exit_code == 0
    secret = kube_cluster.api.obj("v1", "Secret", "o11yctl-object-storage", NS)
    assert secret is not None
    secret["data"]["access_key_id"] = base64.b64encode(b"AKIAROTATEDAWAY00000").decode()
    kube_cluster.api.seed(secret)
    verified = run(kube_cluster, config, "--only", "cluster", command="verify")
    check = {c["id"]: c for c in verified.doc["checks"]}["cluster.buckets"]
    assert check["status"] == "FAIL" and "InvalidAccessKeyId" in check["detail"]
    assert "the keys in the credentials Secret are wrong" in check["hint"]


def test_an_external_store_s_private_ca_reaches_loki_and_tempo_and_goes_with_uninstall(
        kube_cluster: KubeLab, helm: FakeHelm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pods(kube_cluster, store=False)
    ca = private_ca()
    ca_file = tmp_path / "store-ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    monkeypatch.setenv("O11YCTL_S3_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("O11YCTL_S3_SECRET_ACCESS_KEY", SECRET)
    store = FakeS3(credentials={ACCESS: SECRET})
    store.tls = ca.issue("127.0.0.1")
    with store:
        for bucket in ("loki-chunks", "loki-ruler", "tempo-traces"):
            store.add_bucket(bucket)
        assert store.url.startswith("https://")
        # without the CA the store's certificate is not trusted, by o11yctl's checks either
        untrusted = run(kube_cluster, _external(tmp_path, store.url), "--yes")
        assert untrusted.exit_code == 3, untrusted.output
        message = untrusted.doc["error"]["message"]
        assert "CERTIFICATE_VERIFY_FAILED" in message
        assert message.count("does not answer") == 1  # one problem, not one per bucket
        assert "set object_storage.ca_file to the CA (PEM) that signed it" in untrusted.doc["error"]["hint"]
        assert helm.releases(NS) == {}

        config = _external(tmp_path, store.url)
        config.write_text(config.read_text() + f"  ca_file: {ca_file}\n")
        planned = run(kube_cluster, config, "--dry-run")
        steps = {s["id"]: s for s in planned.doc["plan"]}
        assert steps["store-ca"]["objects"] == [f"ConfigMap {NS}/o11yctl-object-storage-ca"]
        assert "store-ca" in steps["helm.loki"]["depends_on"] and "store-ca" in steps["helm.tempo"]["depends_on"]

        installed = run(kube_cluster, config, "--yes")
        assert installed.exit_code == 0, installed.output
        assert {i["id"]: i["outcome"] for i in installed.doc["items"]}["store-ca"] == "created"
        cm = kube_cluster.api.obj("v1", "ConfigMap", "o11yctl-object-storage-ca", NS)
        assert cm is not None and cm["data"] == {"ca.crt": ca.cert_pem.decode()}
        loki = helm.releases(NS)["loki"][-1]["values"]
        assert loki["loki"]["storage"]["s3"]["http_config"] == {"ca_file": "/etc/o11yctl/object-storage-ca/ca.crt"}
        assert loki["singleBinary"]["extraVolumes"][0]["configMap"] == {"name": "o11yctl-object-storage-ca"}
        tempo = helm.releases(NS)["tempo"][-1]["values"]
        assert tempo["tempo"]["storage"]["trace"]["s3"]["tls_ca_path"] == "/etc/o11yctl/object-storage-ca/ca.crt"
        assert tempo["extraVolumes"][0]["configMap"] == {"name": "o11yctl-object-storage-ca"}
        again = run(kube_cluster, config, "--yes")
        assert {i["id"]: i["outcome"] for i in again.doc["items"]}["store-ca"] == "unchanged"

        verified = run(kube_cluster, config, "--only", "cluster", command="verify")
        checks = {c["id"]: c for c in verified.doc["checks"]}
        assert checks["cluster.buckets"]["status"] == "PASS", checks["cluster.buckets"]
        assert checks["cluster.store-ca"]["status"] == "PASS", checks["cluster.store-ca"]
        assert checks["cluster.store-ca"]["detail"] == (
            f"ConfigMap logging/o11yctl-object-storage-ca holds the 1 certificate(s) of {ca_file}")
        # the CA rotated in the file but not yet installed: what the pods trust is not what the config names
        ca_file.write_bytes(private_ca("the next CA").cert_pem)
        stale = run(kube_cluster, config, "--only", "cluster", command="verify")
        check = {c["id"]: c for c in stale.doc["checks"]}["cluster.store-ca"]
        assert check["status"] == "FAIL" and "holds another CA than object_storage.ca_file" in check["detail"]
        assert "`o11yctl install --only store-ca`" in check["hint"]
        ca_file.write_bytes(ca.cert_pem)

        removed = run(kube_cluster, config, command="uninstall")
        assert removed.exit_code == 0, removed.output
        assert {i["id"]: i["outcome"] for i in removed.doc["items"]}["store-ca"] == "changed"
        assert kube_cluster.api.obj("v1", "ConfigMap", "o11yctl-object-storage-ca", NS) is None
        assert helm.releases(NS) == {}
    store.check_clean()


# --- the in-cluster store ----------------------------------------------------------------------------------------


def test_in_cluster_store_gets_its_directories_generated_keys_and_its_buckets_checked(
        kube_cluster: KubeLab, helm: FakeHelm, sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    _pods(kube_cluster, store=True)
    kube_cluster.api.add_service(NS, "seaweedfs-filer", 8888, _filer(["loki-chunks", "loki-ruler", "tempo-traces"]))
    user = lab_users.nopasswd
    ssh = (f", ssh_host: {sshd.address}, ssh_port: {sshd.port}, ssh_user: {user.name}, ssh_key: {user.key}")
    write_known_hosts(tmp_path / "known_hosts", sshd)
    with open_directory() as root:
        config = tmp_path / "o11yctl.yaml"
        config.write_text("profile: scalable\ncharts:\n  set: current\n" + _nodes(ssh) + "storage:\n  node: node-2\n"
                          f"ssh:\n  known_hosts: {tmp_path / 'known_hosts'}\n"
                          f"route:\n  url: http://127.0.0.1:{free_port()}/grafana\n"
                          f"object_storage:\n  root: {root}/s3\n")
        installed = run(kube_cluster, config, "--yes")
        assert installed.exit_code == 0, installed.output
        outcomes = {i["id"]: i["outcome"] for i in installed.doc["items"]}
        assert outcomes["credentials"] == "created" and outcomes["helm.store"] == "created"
        for directory in ("object_store", "filer_store", "seaweed-master"):
            path = root / "s3" / directory
            assert path.is_dir() and (path.stat().st_uid, path.stat().st_gid) == (1000, 1000)
        # one node's three directories, made once though every node names the same sshd here
        assert sum(1 for k in outcomes if k.startswith("storage.store.")) == 9
        secret = kube_cluster.api.obj("v1", "Secret", "o11yctl-object-storage", NS)
        assert secret is not None and set(secret["data"]) == {
            "access_key_id", "secret_access_key", "read_access_key_id", "read_secret_access_key"}
        values = [base64.b64decode(v).decode() for v in secret["data"].values()]
        store_values = helm.releases(NS)["seaweedfs"][-1]["values"]
        assert store_values["s3"]["credentials"]["admin"]["existingSecret"] == "o11yctl-object-storage"
        _never_printed(values, installed.output, json.dumps(helm.releases(NS)), json.dumps(helm.calls))

        verified = run(kube_cluster, config, "--only", "cluster,store", command="verify")
        checks = {c["id"]: c for c in verified.doc["checks"]}
        assert checks["store.buckets"]["status"] == "PASS", checks["store.buckets"]
        assert checks["cluster.pods.store"]["detail"] == "9/9 the object store pod(s) Ready on node-1, node-2, node-3"
        _never_printed(values, verified.output)

        kube_cluster.api.set_backend(NS, "seaweedfs-filer", 8888, _filer(["loki-chunks"]))
        missing = run(kube_cluster, config, "--only", "store", command="verify")
        check = {c["id"]: c for c in missing.doc["checks"]}["store.buckets"]
        assert check["status"] == "FAIL" and check["detail"] == (
            "bucket(s) missing in the store: loki-ruler, tempo-traces")
        assert missing.exit_code == 1
    assert os.environ.get("O11YCTL_S3_SECRET_ACCESS_KEY") is None


def test_a_single_node_install_is_not_overwritten_and_the_migration_is_said(
        kube_cluster: KubeLab, helm: FakeHelm, s3: FakeS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pods(kube_cluster, store=False)
    kube_cluster.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_cluster.api.seed({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"name": "loki-pvc", "namespace": NS},
                           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-storage",
                                    "volumeName": "loki-pv", "resources": {"requests": {"storage": "200Gi"}}}})
    monkeypatch.setenv("O11YCTL_S3_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("O11YCTL_S3_SECRET_ACCESS_KEY", SECRET)
    refused = run(kube_cluster, _external(tmp_path, s3.url), "--yes")
    assert refused.exit_code == 3, refused.output
    message = refused.doc["error"]["message"]
    assert "holds a single-node install (claims loki-pvc" in message
    assert "1. `o11yctl migrate` keeps the single-node install and adds object storage to it" in message
    assert "the old volumes and directories are kept throughout" in message
    assert "`o11yctl migrate --dry-run` shows the move" in refused.doc["error"]["hint"]
    assert helm.releases(NS) == {} and kube_cluster.api.obj("v1", "Secret", "o11yctl-object-storage", NS) is None


# --- moving a single-node install: `o11yctl migrate` ------------------------------------------------------------


def _statefulset(release: str, claim: str) -> dict[str, Any]:
    """A single-node release's StatefulSet as its chart renders it, trimmed to what the move touches (helm's
    stand-in does not create it): named after the release, selecting its pods by the chart's labels, mounting
    the runbook's claim."""
    labels = {"app.kubernetes.io/name": release, "app.kubernetes.io/instance": release}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": release, "namespace": NS},
            "spec": {"replicas": 1, "serviceName": f"{release}-headless", "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": release, "image": "example"}],
                                           "volumes": [{"name": "storage",
                                                        "persistentVolumeClaim": {"claimName": claim}}]}}}}


def _configs(tmp_path: Path, root: Path, sshd: Sshd, user: Any, endpoint: str) -> tuple[Path, Path]:
    """The installed single-node stack's config and the profile scalable one it moves to (same nodes, storage
    node, root and namespace; an external store)."""
    ssh = f", ssh_host: {sshd.address}, ssh_port: {sshd.port}, ssh_user: {user.name}, ssh_key: {user.key}"
    write_known_hosts(tmp_path / "known_hosts", sshd)
    common = ("charts:\n  set: current\n" + _nodes(ssh) + f"storage:\n  node: node-2\n  root: {root}\n"
              f"ssh:\n  known_hosts: {tmp_path / 'known_hosts'}\n"
              f"route:\n  url: http://127.0.0.1:{free_port()}/grafana\n")
    single, scalable = tmp_path / "single.yaml", tmp_path / "scalable.yaml"
    single.write_text(common)
    scalable.write_text("profile: scalable\n" + common
                        + f"object_storage:\n  store: external\n  endpoint: {endpoint}\n")
    return single, scalable


def test_migrate_moves_a_single_node_install_in_two_stages_and_keeps_its_data(
        kube_cluster: KubeLab, helm: FakeHelm, s3: FakeS3, sshd: Sshd, lab_users: TestUsers, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from o11yctl.stack.migrate import bridge_day

    api = kube_cluster.api
    _pods(kube_cluster, store=False)
    monkeypatch.setenv("O11YCTL_S3_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("O11YCTL_S3_SECRET_ACCESS_KEY", SECRET)
    with open_directory() as root:
        single, scalable = _configs(tmp_path, root, sshd, lab_users.nopasswd, s3.url)
        assert run(kube_cluster, single, "--yes").exit_code == 0
        for release in ("loki", "tempo"):
            api.add_statefulset(_statefulset(release, f"{release}-pvc"))
        api.settle()  # the statefulset controller adopts loki-0 and tempo-0 (and removes the lab's loki-1, loki-2)
        (root / "loki" / "chunks").mkdir(exist_ok=True)
        (root / "loki" / "chunks" / "old-chunk").write_text("logs from before the move")
        pvs = {c: api.obj("v1", "PersistentVolume", f"{c}-pv") for c in ("loki", "tempo")}

        refused = run(kube_cluster, scalable, "--yes")
        assert refused.exit_code == 3 and "`o11yctl migrate --dry-run`" in refused.doc["error"]["hint"]

        # stage 1: where the move stands, then the bridge
        day = bridge_day(datetime.now(UTC))
        planned = run(kube_cluster, scalable, "--dry-run", command="migrate")
        assert planned.exit_code == 0, planned.output
        info = planned.doc["migration"]
        assert (info["stage"], info["s3_from"], info["claims"]) == ("bridge", day, ["loki-pvc", "tempo-pvc"])
        ids = [s["id"] for s in planned.doc["plan"]]
        assert ids.index("migration") < ids.index("helm.loki") and ids.index("migration") < ids.index("helm.tempo")
        assert helm.releases(NS)["loki"][-1]["revision"] == 1  # the dry run changed nothing

        bridged = run(kube_cluster, scalable, "--yes", command="migrate")
        assert bridged.exit_code == 0, bridged.output
        assert bridged.doc["migration"]["stage"] == "bridged"
        record = api.obj("v1", "ConfigMap", "o11yctl-migration", NS)
        assert record is not None and record["data"] == {"stage": "bridged", "s3-from": day,
                                                         "claims": "loki-pvc,tempo-pvc"}
        loki = helm.releases(NS)["loki"][-1]["values"]
        assert [(c["from"], c["object_store"]) for c in loki["loki"]["schemaConfig"]["configs"]] == [
            ("2024-04-01", "filesystem"), (day, "s3")]
        assert loki["loki"]["storage_config"]["filesystem"]["directory"] == "/var/loki/chunks"
        assert loki["singleBinary"]["persistence"]["dataVolumeParameters"]["persistentVolumeClaim"]["claimName"] \
            == "loki-pvc"
        tempo = helm.releases(NS)["tempo"][-1]["values"]
        assert tempo["tempo"]["storage"]["trace"]["backend"] == "s3"
        assert tempo["extraVolumes"][0]["persistentVolumeClaim"]["claimName"] == "tempo-pvc"
        assert api.obj("apps/v1", "StatefulSet", "loki", NS) is not None
        _never_printed([SECRET], bridged.output, json.dumps(helm.releases(NS)), json.dumps(helm.calls))

        # status and verify with the profile scalable config judge what runs during the move
        api.set_backend(NS, "loki", 3100, _loki_metrics)
        shown = run(kube_cluster, scalable, command="status")
        api.set_backend(NS, "loki", 3100, READY)
        # new logs go to the bucket: no "days the volume holds"
        assert shown.doc["status"]["ingestion"]["days_held"] is None
        assert f"in the object store's bucket loki-chunks since {day}" in shown.doc["status"]["ingestion"]["note"]
        assert shown.doc["status"]["migration"]["stage"] == "bridged"
        assert shown.doc["status"]["migration"]["s3_from"] == day
        assert [v["pvc"] for v in shown.doc["status"]["volumes"]] == ["loki-pvc", "tempo-pvc"]
        verified = run(kube_cluster, scalable, "--only", "cluster", command="verify")
        checks = {c["id"]: (c["status"], c["detail"]) for c in verified.doc["checks"]}
        # the single-node claims and the bucket, not three Loki replicas still to come
        assert checks["cluster.volume.loki"] == ("PASS", "loki-pvc is Bound to loki-pv (200Gi)")
        assert checks["cluster.buckets"][0] == "PASS" and "cluster.pods.loki" not in checks

        # before the retention has passed: nothing changes, exit 1, and when it can finish
        upgrades = [c for c in helm.calls if c[:1] == ["upgrade"]]
        waiting = run(kube_cluster, scalable, command="migrate")
        assert waiting.exit_code == 1, waiting.output
        assert waiting.doc["migration"]["stage"] == "waiting"
        assert "the move can finish after " in waiting.doc["error"]["message"]
        assert "--early" in waiting.doc["error"]["hint"]
        assert [c for c in helm.calls if c[:1] == ["upgrade"]] == upgrades
        # a single-node install would take Loki off the bucket: refused
        back = run(kube_cluster, single, "--yes")
        assert back.exit_code == 3 and "is being moved to profile scalable" in back.doc["error"]["message"]
        ahead = run(kube_cluster, scalable, "--yes")  # nor profile scalable before the move finishes
        assert ahead.exit_code == 3 and "is being moved to profile scalable" in ahead.doc["error"]["message"]
        assert "`o11yctl migrate` finishes it" in ahead.doc["error"]["hint"]

        # stage 2, early: the record says finishing, the StatefulSets go with their pods and claims kept, then
        # profile scalable; interrupted here by a failed helm upgrade of Tempo
        helm.fail("upgrade", "tempo", "Error: UPGRADE FAILED: context deadline exceeded")
        broken = run(kube_cluster, scalable, "--early", "--yes", command="migrate")
        assert broken.exit_code == 1, broken.output
        record = api.obj("v1", "ConfigMap", "o11yctl-migration", NS)
        assert record is not None and record["data"]["stage"] == "finishing"
        assert api.obj("apps/v1", "StatefulSet", "tempo", NS) is None  # released before its chart changed
        # a re-run goes on finishing, without --early: Loki's values are no longer the bridge's to go back to
        finished = run(kube_cluster, scalable, "--yes", command="migrate")
        assert finished.exit_code == 0, finished.output
        assert finished.doc["migration"]["stage"] == "finished"
        outcomes = {i["id"]: i["outcome"] for i in finished.doc["items"]}
        assert outcomes["migration.release.tempo"] == "unchanged"  # gone already
        assert outcomes["helm.tempo"] == "changed" and outcomes["migration.record"] == "changed"
        for release in ("loki", "tempo"):
            assert api.obj("apps/v1", "StatefulSet", release, NS) is None
            pod = api.obj("v1", "Pod", f"{release}-0", NS)
            assert pod is not None and not pod["metadata"].get("ownerReferences")  # orphaned, still running
            claim = api.obj("v1", "PersistentVolumeClaim", f"{release}-pvc", NS)
            assert claim is not None and claim["status"]["phase"] == "Bound"
            pv = api.obj("v1", "PersistentVolume", f"{release}-pv")
            assert pv is not None and pv["metadata"]["uid"] == pvs[release]["metadata"]["uid"]
        loki = helm.releases(NS)["loki"][-1]["values"]
        assert loki["singleBinary"]["replicas"] == 3 and loki["singleBinary"]["persistence"]["enabled"] is True
        assert (root / "loki" / "chunks" / "old-chunk").read_text() == "logs from before the move"
        kept = finished.doc["migration"]["kept"]
        assert len(kept) == 2 and "kubectl delete pvc -n logging loki-pvc && kubectl delete pv loki-pv" in kept[0]
        record = api.obj("v1", "ConfigMap", "o11yctl-migration", NS)
        assert record is not None and record["data"]["stage"] == "finished" and record["data"]["s3-from"] == day

        done = run(kube_cluster, scalable, command="migrate")
        assert done.exit_code == 0 and done.doc["migration"]["stage"] == "finished" and not done.doc["items"]
        again = run(kube_cluster, scalable, "--yes")
        assert again.exit_code == 0, again.output  # the kept claims no longer stop a profile scalable install


def test_migrate_refuses_what_it_cannot_move(kube_cluster: KubeLab, helm: FakeHelm, s3: FakeS3, tmp_path: Path
                                             ) -> None:
    config = _external(tmp_path, s3.url)
    nothing = run(kube_cluster, config, command="migrate")
    assert nothing.exit_code == 3
    assert nothing.doc["error"]["message"].startswith("nothing to move: namespace logging holds no single-node")

    single = tmp_path / "single.yaml"
    single.write_text("charts:\n  set: current\n" + _nodes() + "storage:\n  node: node-2\n")
    wrong = run(kube_cluster, single, command="migrate")
    assert wrong.exit_code == 2 and "give it the profile scalable configuration" in wrong.doc["error"]["message"]

    kube_cluster.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube_cluster.api.seed({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"name": "loki-pvc", "namespace": NS},
                           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-storage",
                                    "volumeName": "loki-pv", "resources": {"requests": {"storage": "200Gi"}}}})
    helm.seed_release("loki", NS, [{"status": "deployed", "chart": "loki-6.21.0"}])
    old = run(kube_cluster, config, command="migrate")
    assert old.exit_code == 3
    assert "runs loki loki-6.21.0, not the chart set current" in old.doc["error"]["message"]
    assert "o11yctl upgrade --to current" in old.doc["error"]["hint"]


# --- status: the buckets' usage ------------------------------------------------------------------------------------

VOL_STATUS = json.loads((Path(__file__).resolve().parents[1] / "data" / "seaweedfs" / "vol-status.json").read_text())
STORE_CHARTS = {"seaweedfs": "seaweedfs-4.44.0", "loki": "loki-18.11.0", "tempo": "tempo-2.2.4",
                "alloy": "alloy-1.11.1", "grafana": "grafana-12.11.1"}


def _master(method: str, path: str, query: Any, body: bytes, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
    """The master's /vol/status, as writeJsonQuiet sends it (json.Marshal: compact, Content-Type application/json)."""
    assert (method, path) == ("GET", "/vol/status")
    return 200, "application/json", json.dumps(VOL_STATUS, separators=(",", ":")).encode()


def _loki_metrics(method: str, path: str, query: Any, body: bytes, headers: Mapping[str, str]
                  ) -> tuple[int, str, bytes]:
    assert path == "/metrics"
    text = (f'loki_distributor_bytes_received_total{{tenant="fake"}} {4 * 1024**3:.6e}\n'
            f"process_start_time_seconds {time.time() - 2 * 86400:.6e}\n")
    return 200, "text/plain; version=0.0.4", text.encode()


def _scalable_status(lab: KubeLab, helm: FakeHelm, tmp_path: Path, store: str) -> Path:
    """A running scalable stack; its nodes' SSH addresses lead nowhere (status must not need them)."""
    _pods(lab, store=store == "in-cluster")
    lab.api.set_backend(NS, "loki", 3100, _loki_metrics)
    for name, chart in STORE_CHARTS.items():
        if name != "seaweedfs" or store == "in-cluster":
            helm.seed_release(name, NS, [{"status": "deployed", "chart": chart}])
    config = tmp_path / "o11yctl.yaml"
    config.write_text("profile: scalable\ncharts:\n  set: current\n" + _nodes() + "storage:\n  node: node-2\n"
                      f"route:\n  url: http://127.0.0.1:{free_port()}/grafana\n"
                      + (f"object_storage:\n  store: external\n  endpoint: http://127.0.0.1:{free_port()}\n"
                         if store == "external" else ""))
    return config


def _status(lab: KubeLab, config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["status", "-c", str(config), "--kubeconfig", str(lab.kubeconfig), *args])


def test_status_shows_each_buckets_usage_from_the_in_cluster_stores_master(
        kube_cluster: KubeLab, helm: FakeHelm, tmp_path: Path) -> None:
    config = _scalable_status(kube_cluster, helm, tmp_path, "in-cluster")
    kube_cluster.api.add_service(NS, "seaweedfs-master", 9333, _master)
    result = _status(kube_cluster, config, "--json")
    assert result.exit_code == 0, result.output
    st = json.loads(result.stdout)["status"]
    assert st["problems"] == {}
    store = st["buckets"]
    assert (store["store"], store["reported"], store["source"]) == (
        "in-cluster", True, "svc/seaweedfs-master:9333/vol/status")
    usage = {u["bucket"]: u for u in store["usage"]}
    assert list(usage) == ["loki-chunks", "loki-ruler", "tempo-traces"]
    assert (usage["loki-chunks"]["volumes"], usage["loki-chunks"]["logical_bytes"],
            usage["loki-chunks"]["bytes_with_copies"], usage["loki-chunks"]["files"],
            usage["loki-chunks"]["deleted_bytes"]) == (2, 163578448, 327156896, 773, 7340640)
    assert (usage["tempo-traces"]["logical_bytes"], usage["tempo-traces"]["bytes_with_copies"]) == (
        60817936, 121635872)
    assert usage["loki-ruler"]["volumes"] == 0 and usage["loki-ruler"]["logical_bytes"] == 0
    assert store["volume_slots"] == {"max": 300, "free": 288} and store["volume_servers"] == 3
    # nothing on the storage node in this profile: no volumes, no directories, no SSH
    assert st["volumes"] == [] and st["storage"] == []
    assert st["retention"] == {"loki": "7d", "tempo": "168h"}
    assert st["ingestion"]["bytes_per_day"] > 0 and st["ingestion"]["days_held"] is None
    assert st["ingestion"]["note"] == ("Loki keeps its chunks in the object store's bucket loki-chunks, not on a "
                                       "volume: see the buckets' usage")
    assert {r["name"] for r in st["releases"]} == set(STORE_CHARTS)

    table = _status(kube_cluster, config)
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    for words in ("object store buckets (svc/seaweedfs-master:9333/vol/status)",
                  "bucket volumes files used deleted, not vacuumed on disk (all copies)",
                  "loki-chunks 2 773 156M 7.0M 312M", "loki-ruler 0 0 0 0 0", "tempo-traces 2 116 58M 3.8M 116M",
                  "volume slots: 288 free of 300", "deleted data included until the store vacuums the volume",
                  "retention: loki 7d, tempo 168h"):
        assert words in text, words
    assert "data directories" not in text and "volumes claim" not in text


def test_status_names_a_master_without_endpoints_and_still_shows_the_rest(
        kube_cluster: KubeLab, helm: FakeHelm, tmp_path: Path) -> None:
    config = _scalable_status(kube_cluster, helm, tmp_path, "in-cluster")
    kube_cluster.api.add_service(NS, "seaweedfs-master", 9333)  # no master pod has an address
    result = _status(kube_cluster, config, "--json")
    assert result.exit_code == 1, result.output
    st = json.loads(result.stdout)["status"]
    assert set(st["problems"]) == {"buckets"} and st["buckets"] is None
    assert st["problems"]["buckets"].startswith(
        "the Kubernetes API server answered for svc/seaweedfs-master:9333: HTTP 503 ServiceUnavailable: no endpoints "
        'available for service "seaweedfs-master" (no master pod of the object store has an address')
    assert st["pods"] and st["releases"] and st["ingestion"]["bytes_per_day"] > 0

    table = _status(kube_cluster, config)
    assert table.exit_code == 1
    text = " ".join(table.stdout.split())
    assert 'buckets: the Kubernetes API server answered for svc/seaweedfs-master:9333' in text
    assert "helm releases" in text and "seaweedfs-master-0" in text


def test_status_says_an_external_store_does_not_report_usage_and_exits_0(
        kube_cluster: KubeLab, helm: FakeHelm, tmp_path: Path) -> None:
    config = _scalable_status(kube_cluster, helm, tmp_path, "external")
    result = _status(kube_cluster, config, "--json")
    assert result.exit_code == 0, result.output
    st = json.loads(result.stdout)["status"]
    assert st["problems"] == {}
    store = st["buckets"]
    endpoint = store["source"]
    assert f"endpoint: {endpoint}\n" in config.read_text()
    assert (store["store"], store["reported"], store["usage"]) == ("external", False, None)
    assert store["buckets"] == ["loki-chunks", "loki-ruler", "tempo-traces"]
    assert store["note"] == (f"the external store ({endpoint}) does not report bucket usage; its own console or "
                             "metrics do")
    assert st["ingestion"]["note"] == ("Loki keeps its chunks in the object store's bucket loki-chunks, not on a "
                                       "volume")
    text = " ".join(_status(kube_cluster, config).stdout.split())
    assert (f"object store buckets: loki-chunks, loki-ruler, tempo-traces: the external store ({endpoint}) does not "
            "report bucket usage") in text
