"""The support bundle's scrubber: a known value is gone in every form it can take."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from o11yctl.doctor.scrub import REDACTED, Scrubber, encoded_forms, secret_like_values

SECRET = "s3cr3t/p@ss+wörd=1"


def _all_forms(value: str) -> list[str]:
    raw = value.encode()
    b64 = base64.b64encode(raw).decode()
    return [value, quote(value, safe=""), quote_plus(value), quote(value), b64, b64.rstrip("="),
            base64.urlsafe_b64encode(raw).decode(), json.dumps(value)[1:-1], quote(value, safe="").lower()]


@pytest.mark.parametrize("form", _all_forms(SECRET))
def test_every_form_is_scrubbed(form: str) -> None:
    scrubber = Scrubber([SECRET])
    out = scrubber.text(f"before {form} after")
    assert out == f"before {REDACTED} after"
    assert not scrubber.contains_secret(out)


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"xyz", b'{"password":"'])
def test_base64_inside_a_longer_blob_is_scrubbed_at_any_offset(prefix: bytes) -> None:
    blob = base64.b64encode(prefix + SECRET.encode() + b'","more":"stuff"}').decode()
    out = Scrubber([SECRET]).text(f"data: {blob}\n")
    assert REDACTED in out
    # What is left cannot be decoded back to the value.
    for piece in out.split(REDACTED):
        assert SECRET.encode() not in base64.b64decode(piece.removeprefix("data: ").strip() + "===", validate=False)


def test_short_values_are_left_alone() -> None:
    assert encoded_forms("abc") == set()
    assert Scrubber(["abc", "no"]).text("abc is no") == "abc is no"
    assert len(Scrubber([])) == 0


def test_longer_values_go_first() -> None:
    scrubber = Scrubber(["hunter2", "hunter2-and-more"])
    assert scrubber.text("x hunter2-and-more y hunter2") == f"x {REDACTED} y {REDACTED}"


def test_bytes_values_are_scrubbed_in_base64() -> None:
    raw = b"\xff\xfe\x00binary-key"
    out = Scrubber([raw]).text("key: " + base64.b64encode(raw).decode())
    assert out == f"key: {REDACTED}"


def test_secret_like_values_in_helm_values() -> None:
    values = {"adminUser": "admin", "adminPassword": "pw-123456",
              "env": [{"name": "X", "apiKey": "key-abcdef"}], "grafana.ini": {"auth": {"token": ""}},
              "replicas": 1, "client_secret": "cs-987654"}
    assert secret_like_values(values) == ["pw-123456", "key-abcdef", "cs-987654"]
