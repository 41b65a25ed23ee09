"""The support bundle's scrubber: a known value is gone in every form it can take."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
import yaml

from o11yctl.doctor.scrub import REDACTED, Scrubber, encoded_forms, redact, secret_like_values

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


# --- what YAML does to a value, and why documents are redacted before they are written ----------------

PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACDv0kpeAxjzf8sbzfWOsQJXR3NR6VJ0JymqVbR5DC2n0gAAAJgbmAm2G5gJ\n-----END OPENSSH PRIVATE KEY-----\n")


@pytest.mark.parametrize("secret", ["it's: hunter22", PEM, "tab\there\x01ctl-zz", 'quo"te\\back-slash'])
def test_a_document_written_as_yaml_holds_no_form_of_a_known_secret(secret: str) -> None:
    doc = {"kind": "ConfigMap", "data": {"app.conf": f"[auth]\npassword = {secret}\n", "exact": secret},
           "list": [secret, {"nested": secret}]}
    scrubber = Scrubber([secret])
    written = yaml.safe_dump(redact(doc, scrubber), sort_keys=False, width=1_000_000, allow_unicode=True)
    for line in [secret, *(ln for ln in secret.splitlines() if len(ln) >= 8)]:
        assert line not in written
    assert not scrubber.contains_secret(written)
    assert yaml.safe_load(written)["data"]["exact"] == REDACTED


def test_yaml_quoting_hides_a_value_from_a_search_through_the_written_text() -> None:
    """Why redaction happens on the data: the text form of a re-quoted value no longer matches."""
    secret = "it's: hunter22"
    written = yaml.safe_dump({"v": secret})
    assert written == "v: 'it''s: hunter22'\n"
    assert not Scrubber([secret]).contains_secret(written), "no form of the value is in the text any more"


def test_each_line_of_a_multi_line_secret_is_found_on_its_own() -> None:
    scrubber = Scrubber([PEM])
    folded = "key: |\n" + "".join(f"    {line}\n" for line in PEM.splitlines())
    out = scrubber.text(folded)
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW" not in out
    assert "QyNTUxOQAAACDv0kpeAxjzf8sbzfWOsQJXR3NR6VJ0JymqVbR5DC2n0gAAAJgbmAm2G5gJ" not in out


def test_values_under_secret_like_keys_are_redacted_in_values_documents() -> None:
    values = {"adminUser": "admin", "adminPassword": "never-seen-before", "grafana.ini": {"server": {"root_url": "x"}}}
    out = redact(values, Scrubber([]), by_key=True)
    assert out == {"adminUser": "admin", "adminPassword": REDACTED, "grafana.ini": {"server": {"root_url": "x"}}}
    assert redact(values, Scrubber([]))["adminPassword"] == "never-seen-before", "objects: by value only"


def test_the_url_safe_base64_form_is_scrubbed_too() -> None:
    secret = "a>b?c>d?"  # its standard base64 has '+' and '/', so the URL-safe form differs
    standard = base64.b64encode(secret.encode()).decode()
    urlsafe = base64.urlsafe_b64encode(secret.encode()).decode()
    assert standard != urlsafe and ("+" in standard or "/" in standard)
    assert Scrubber([secret]).text(f"x {urlsafe} y") == f"x {REDACTED} y"
