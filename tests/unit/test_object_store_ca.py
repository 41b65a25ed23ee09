"""An external object store's private CA (``object_storage.ca_file``): what the config accepts.

The file must hold certificates and nothing else (they go into a ConfigMap), and only an
external store reached over https has a certificate to check. Every refusal names the key and
its line, and exits 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.lab.tls import PrivateCA, private_ca
from typer.testing import CliRunner

from o11yctl.cli import app
from o11yctl.config import ca_certificates, parse_config
from o11yctl.errors import ConfigError

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
     "certificate 1 is not a valid X.509 certificate"),
    (b"\x30\x82\x01\x78\xff\xfe", "is not a PEM file (a DER certificate converts with `openssl x509 -inform der"),
])
def test_a_file_without_a_usable_certificate_is_refused(tmp_path: Path, content: bytes, why: str) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(content)
    message = _error(external(ca_file))
    assert message.startswith("object_storage.ca_file: ") and message.endswith(" (f.yaml:17)"), message
    assert why in message


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
