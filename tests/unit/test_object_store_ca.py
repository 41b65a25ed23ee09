"""An external object store's private CA (``object_storage.ca_file``): what the config accepts, and
where the CA goes.

The file must hold certificates and nothing else (they go into a ConfigMap), and only an
external store reached over https has a certificate to check. Every refusal names the key and
its line, and exits 2. The certificates become the ConfigMap o11yctl-object-storage-ca, applied
before Loki and Tempo, which mount it and point their S3 clients at it. What the real charts
make of those values is checked in tests/charts/test_chart_scalable.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.lab.tls import PrivateCA, private_ca
from typer.testing import CliRunner

from o11yctl.cli import app
from o11yctl.config import Config, ca_certificates, parse_config
from o11yctl.errors import ConfigError
from o11yctl.stack.context import stack_of
from o11yctl.stack.plan import build_plan, build_uninstall_plan
from o11yctl.stack.render import render_config

TWO_NODES = ("nodes:\n  - name: node-1\n    address: 10.0.0.102\n    role: server\n"
             "  - name: node-2\n    address: 10.0.0.103\n    role: agent\n")
SCALABLE = TWO_NODES + "profile: scalable\ncharts:\n  set: current\ncomponents:\n  loki:\n    replicas: 2\n"


@pytest.fixture(scope="module")
def ca() -> PrivateCA:
    return private_ca()


def external(ca_file: Path | str, endpoint: str = "https://s3.lan:9000", store: str = "external") -> str:
    """A scalable config on an external store (ca_file is on line 17)."""
    return SCALABLE + f"object_storage:\n  store: {store}\n  endpoint: {endpoint}\n  ca_file: {ca_file}\n"


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "f.yaml")
    return caught.value.message


# --- the config ------------------------------------------------------------------------------------------------


def test_a_file_of_certificates_is_accepted(ca: PrivateCA, tmp_path: Path) -> None:
    other = private_ca("another CA")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(b"a bundle, as some tools write it\r\n" + ca.cert_pem.replace(b"\n", b"\r\n") + other.cert_pem)
    cfg = parse_config(external(ca_file), "f.yaml")
    assert cfg.object_storage.ca_file == str(ca_file)
    # the certificates only, each as PEM with \n line ends, in the file's order
    assert ca_certificates(str(ca_file)) == ca.cert_pem.decode() + other.cert_pem.decode()


def test_a_missing_file_is_named_with_its_key_and_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert _error(external(missing)) == (
        f"object_storage.ca_file: cannot read {missing}: No such file or directory (f.yaml:17)")


@pytest.mark.parametrize(("content", "why"), [
    (b"", "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
    (b"-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n",
     "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
    (b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
     "certificate 1 is not a valid X.509 certificate (was it copied whole?)"),
    (b"\x30\x82\x01\x78\xff\xfe", "is not a PEM file (a DER certificate converts with `openssl x509 -inform der"),
])
def test_a_file_without_a_usable_certificate_is_refused(tmp_path: Path, content: bytes, why: str) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(content)
    message = _error(external(ca_file))
    assert message.startswith("object_storage.ca_file: ") and message.endswith(" (f.yaml:17)"), message
    assert why in message


def test_more_certificates_than_a_configmap_holds_are_refused(ca: PrivateCA, tmp_path: Path) -> None:
    ca_file = tmp_path / "bundle.pem"
    copies = (1024 * 1024) // len(ca.cert_pem) + 1
    ca_file.write_bytes(ca.cert_pem * copies)
    assert _error(external(ca_file)) == (
        f"object_storage.ca_file: {ca_file}: {copies} certificates are more than a ConfigMap holds (1 MiB): give "
        "only the CA that signed the store's certificate (f.yaml:17)")
    ca_file.write_bytes(ca.cert_pem * (copies - 2))  # under 1 MiB
    assert parse_config(external(ca_file), "f.yaml").object_storage.ca_file == str(ca_file)


def test_a_file_with_a_private_key_never_reaches_the_cluster(ca: PrivateCA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca-and-key.pem"
    ca_file.write_bytes(ca.cert_pem + ca.key_pem)
    assert _error(external(ca_file)) == (
        f"object_storage.ca_file: {ca_file} holds a private key: give a file with the CA's certificate only (it "
        "goes into a ConfigMap, readable by anyone who may read the namespace) (f.yaml:17)")


def test_a_ca_needs_an_external_store_spoken_to_over_https(ca: PrivateCA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    assert _error(external(ca_file, endpoint="http://s3.lan:9000")) == (
        "object_storage.ca_file: the endpoint http://s3.lan:9000 is plain HTTP, where no certificate is checked: "
        "give an https:// endpoint, or leave ca_file out (f.yaml:17)")
    in_cluster = SCALABLE + f"object_storage:\n  ca_file: {ca_file}\n"
    assert _error(in_cluster) == (
        "object_storage.ca_file: only for store: external (the in-cluster store answers plain HTTP inside the "
        "cluster) (f.yaml:15)")
    # the single-node profile does not read object_storage at all
    assert parse_config(f"object_storage:\n  ca_file: {tmp_path / 'nope.pem'}\n").object_storage.ca_file


def test_a_refused_ca_file_exits_2_before_anything_is_rendered(tmp_path: Path) -> None:
    config = tmp_path / "o11yctl.yaml"
    config.write_text(external(tmp_path / "nope.pem"))
    for argv in (["render", "--out", str(tmp_path / "out")], ["install", "--dry-run"]):
        result = CliRunner().invoke(app, [*argv, "-c", str(config)])
        assert result.exit_code == 2, result.output
        assert "object_storage.ca_file: cannot read" in result.output and f"{config}:17" in result.output
    assert not (tmp_path / "out").exists()


# --- the stack: a ConfigMap, mounted and trusted by Loki and Tempo ----------------------------------------------

CA_FILE = "10-object-store-ca.yaml"
MOUNTED = "/etc/o11yctl/object-storage-ca/ca.crt"


@pytest.fixture
def ca_config(ca: PrivateCA, tmp_path: Path) -> Config:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    return parse_config(external(ca_file), "f.yaml")


def _docs(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    return {name: [d for d in yaml.safe_load_all(text) if d] for name, text in render_config(cfg).items()}


def test_the_plan_applies_the_ca_before_loki_and_tempo_and_uninstall_deletes_it_after(ca_config: Config) -> None:
    plan = build_plan(ca_config)
    step = plan.step("store-ca")
    assert (step.action, step.manifest, step.depends_on) == ("apply", CA_FILE, ("namespace",))
    assert "store-ca" in plan.step("helm.loki").depends_on and "store-ca" in plan.step("helm.tempo").depends_on
    assert [s.id for s in build_plan(ca_config, only=["store-ca"]).steps] == ["store-ca"]
    gone = build_uninstall_plan(ca_config).step("store-ca")
    assert (gone.action, gone.manifest) == ("delete", CA_FILE)
    assert {"helm.loki", "helm.tempo"} <= set(gone.depends_on)


@pytest.mark.parametrize("text", [
    SCALABLE,  # the in-cluster store
    SCALABLE + "object_storage:\n  store: external\n  endpoint: https://s3.lan:9000\n",  # the system's CAs
    "",  # single-node
])
def test_without_a_ca_file_nothing_changes(text: str) -> None:
    cfg = parse_config(text, "f.yaml")
    assert not stack_of(cfg).has("store-ca") and CA_FILE not in render_config(cfg)
    if cfg.profile == "scalable":
        docs = _docs(cfg)
        loki, tempo = docs["02-loki-values.yaml"][0], docs["07-tempo-values.yaml"][0]
        assert "http_config" not in loki["loki"]["storage"]["s3"] and "extraVolumes" not in loki["singleBinary"]
        assert "tls_ca_path" not in tempo["tempo"]["storage"]["trace"]["s3"] and "extraVolumes" not in tempo


def test_the_configmap_holds_the_certificates_and_nothing_else(ca_config: Config, ca: PrivateCA) -> None:
    (cm,) = _docs(ca_config)[CA_FILE]
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")
    assert cm["metadata"] == {"name": "o11yctl-object-storage-ca", "namespace": "logging",
                              "labels": {"app.kubernetes.io/managed-by": "o11yctl"}}
    assert cm["data"] == {"ca.crt": ca.cert_pem.decode()}
    assert "PRIVATE" not in render_config(ca_config)[CA_FILE]


def test_loki_mounts_the_configmap_and_its_s3_client_trusts_the_file(ca_config: Config, ca: PrivateCA) -> None:
    values = _docs(ca_config)["02-loki-values.yaml"][0]
    s3 = values["loki"]["storage"]["s3"]
    assert s3["http_config"] == {"ca_file": MOUNTED} and s3["insecure"] is False
    single = values["singleBinary"]
    assert single["extraVolumes"] == [{"name": "object-storage-ca",
                                       "configMap": {"name": "o11yctl-object-storage-ca"}}]
    assert single["extraVolumeMounts"] == [{"name": "object-storage-ca", "readOnly": True,
                                            "mountPath": str(Path(MOUNTED).parent)}]
    assert single["podAnnotations"] == {"checksum/object-storage-ca": hashlib.sha256(ca.cert_pem).hexdigest()}


def test_tempo_mounts_the_configmap_and_its_s3_client_trusts_the_file(ca_config: Config, ca: PrivateCA) -> None:
    values = _docs(ca_config)["07-tempo-values.yaml"][0]
    s3 = values["tempo"]["storage"]["trace"]["s3"]
    assert s3["tls_ca_path"] == MOUNTED and s3["insecure"] is False
    assert values["extraVolumes"] == [{"name": "object-storage-ca", "configMap": {"name": "o11yctl-object-storage-ca"}}]
    assert values["tempo"]["extraVolumeMounts"] == [{"name": "object-storage-ca", "readOnly": True,
                                                     "mountPath": str(Path(MOUNTED).parent)}]
    assert values["podAnnotations"] == {"checksum/object-storage-ca": hashlib.sha256(ca.cert_pem).hexdigest()}


def test_the_file_is_read_when_rendering(ca_config: Config, ca: PrivateCA) -> None:
    """A new CA in the same file reaches the ConfigMap and restarts the pods; a file gone since is a config error."""
    path = Path(str(ca_config.object_storage.ca_file))
    before = _docs(ca_config)["02-loki-values.yaml"][0]["singleBinary"]["podAnnotations"]
    rotated = private_ca("the next CA")
    path.write_bytes(rotated.cert_pem)
    docs = _docs(ca_config)
    assert docs[CA_FILE][0]["data"] == {"ca.crt": rotated.cert_pem.decode()}
    assert docs["02-loki-values.yaml"][0]["singleBinary"]["podAnnotations"] != before
    path.unlink()
    with pytest.raises(ConfigError) as caught:
        render_config(ca_config)
    assert caught.value.message == f"object_storage.ca_file: cannot read {path}: No such file or directory"
    assert caught.value.exit_code == 2
