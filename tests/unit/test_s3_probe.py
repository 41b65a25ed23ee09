"""SigV4 signing and the bucket probe.

The signature is checked against AWS's own worked example ("Get Bucket (List Objects)", kept in
tests/data/s3/sigv4-examples.json); the probe runs against the fake S3 server of
tests/lab/fake_s3.py on loopback (real S3 cannot be reached here), which checks every signature
for real and answers errors in S3's documented shapes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.lab.fake_s3 import FakeS3
from tests.lab.sshd import free_port
from tests.lab.tls import private_ca

from o11yctl.executors.s3 import probe_bucket, sign
from o11yctl.secrets import Secret

EXAMPLES = json.loads((Path(__file__).resolve().parents[1] / "data" / "s3" / "sigv4-examples.json").read_text())


def test_the_signature_is_awss_own_worked_example() -> None:
    example = next(e for e in EXAMPLES["examples"] if e["name"] == "Get Bucket (List Objects)")
    query = [tuple(p.split("=", 1)) for p in example["request"]["query"].split("&")]
    headers = sign("GET", "https://examplebucket.s3.amazonaws.com/", query=query,  # type: ignore[arg-type]
                   access_key=EXAMPLES["access_key_id"], secret_key=EXAMPLES["secret_access_key"],
                   region=EXAMPLES["region"], now=datetime(2013, 5, 24, tzinfo=UTC))
    assert headers["Authorization"].replace(" ", "") == example["authorization"].replace(" ", "")


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    with FakeS3(credentials={"AKIAO11YCTLTEST": "not-a-real-secret-key-0123456789"}) as server:
        server.add_bucket("loki-chunks")
        yield server


def _probe(s3: FakeS3, bucket: str, key: str = "AKIAO11YCTLTEST",
           secret: str = "not-a-real-secret-key-0123456789") -> object:
    return probe_bucket(s3.url, bucket, access_key=Secret(key), secret_key=Secret(secret), region="us-east-1",
                        timeout=5)


def test_a_readable_bucket_answers_200(s3: FakeS3) -> None:
    answer = _probe(s3, "loki-chunks")
    assert answer.ok, answer  # type: ignore[attr-defined]


@pytest.mark.parametrize(("bucket", "key", "secret", "status", "code"), [
    ("tempo-traces", "AKIAO11YCTLTEST", "not-a-real-secret-key-0123456789", 404, "NoSuchBucket"),
    ("loki-chunks", "AKIAWRONGKEY", "not-a-real-secret-key-0123456789", 403, "InvalidAccessKeyId"),
    ("loki-chunks", "AKIAO11YCTLTEST", "a-wrong-secret", 403, "SignatureDoesNotMatch"),
])
def test_each_refusal_carries_its_s3_error_code(s3: FakeS3, bucket: str, key: str, secret: str, status: int,
                                                code: str) -> None:
    answer = _probe(s3, bucket, key, secret)
    assert (answer.status, answer.code) == (status, code)  # type: ignore[attr-defined]


def test_no_answer_is_said_as_such() -> None:
    answer = probe_bucket(f"http://127.0.0.1:{free_port()}", "loki-chunks", access_key=Secret("a"),
                          secret_key=Secret("b"), region="us-east-1", timeout=2)
    assert answer.status is None and answer.error


def test_a_store_whose_certificate_a_private_ca_signed_answers_with_that_ca_only(tmp_path: Path) -> None:
    """``object_storage.ca_file`` is what o11yctl's own checks trust; without it the certificate is refused."""
    ca = private_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    store = FakeS3(credentials={"AKIAO11YCTLTEST": "not-a-real-secret-key-0123456789"})
    store.tls = ca.issue("127.0.0.1")
    with store, warnings.catch_warnings():
        warnings.simplefilter("error")  # a CA path handed to httpx as such is deprecated there
        store.add_bucket("loki-chunks")
        args = {"access_key": Secret("AKIAO11YCTLTEST"), "secret_key": Secret("not-a-real-secret-key-0123456789"),
                "region": "us-east-1", "timeout": 5}
        trusted = probe_bucket(store.url, "loki-chunks", verify_tls=str(ca_file), **args)  # type: ignore[arg-type]
        assert trusted.ok, trusted
        untrusted = probe_bucket(store.url, "loki-chunks", **args)  # type: ignore[arg-type]
        assert untrusted.status is None and "CERTIFICATE_VERIFY_FAILED" in str(untrusted.error), untrusted
