"""The scrubber at its edges: the shortest values and fragments, the forms that differ only in detail.

tests/unit/test_doctor_scrub.py shows every form of a typical secret gone; these tests pin the limits
(what is long enough to scrub, which base64 fragment is found at the start of a blob), the escaped
and encoded forms that only some secrets have, and that nothing more than the secret is removed.
Pure functions on hand-written text; nothing of o11yctl is monkeypatched.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from o11yctl.doctor.scrub import REDACTED, Scrubber, encoded_forms, redact, secret_like_values


def test_four_bytes_are_scrubbed_three_are_not() -> None:
    assert Scrubber(["abcd"]).text("x abcd y") == f"x {REDACTED} y"
    short = Scrubber(["abc"])
    assert len(short) == 0 and short.text("x abc y") == "x abc y" and encoded_forms("abc") == set()


def test_a_four_character_line_of_a_multi_line_secret_is_scrubbed_on_its_own() -> None:
    scrubber = Scrubber(["abcd\n  efghij\nxyz\n"])
    assert scrubber.text("folded: abcd ... efghij ... xyz") == f"folded: {REDACTED} ... {REDACTED} ... xyz"


def test_the_start_of_a_longer_base64_blob_is_found_by_its_fragment() -> None:
    # 5 bytes: the 7th base64 character mixes in bits of the next byte, so only the first 6 are the value's
    blob = base64.b64encode(b"abcde" + b"zzz").decode()
    assert not blob.startswith(base64.b64encode(b"abcde").decode().rstrip("="))
    assert Scrubber(["abcde"]).text(f"data: {blob}") == f"data: {REDACTED}{blob[6:]}"


def test_json_escaped_non_ascii_secret_is_scrubbed_in_both_escapings() -> None:
    secret = 'pä"ss1'
    scrubber = Scrubber([secret])
    as_utf8 = json.dumps(secret, ensure_ascii=False)[1:-1]
    as_ascii = json.dumps(secret)[1:-1]
    assert (as_utf8, as_ascii) == ('pä\\"ss1', 'p\\u00e4\\"ss1')
    assert scrubber.text(f'{{"password": "{as_utf8}"}}') == f'{{"password": "{REDACTED}"}}'
    assert scrubber.text(f'{{"password": "{as_ascii}"}}') == f'{{"password": "{REDACTED}"}}'


def test_a_url_encoded_slash_is_scrubbed() -> None:
    secret = "a/b c+d"
    assert quote(secret, safe="") == "a%2Fb%20c%2Bd"
    scrubber = Scrubber([secret])
    assert scrubber.text("u=a%2Fb%20c%2Bd&v=1") == f"u={REDACTED}&v=1"
    assert scrubber.text("path /a/b%20c%2Bd") == f"path /{REDACTED}"


def test_nothing_but_the_secret_is_removed() -> None:
    # tokenW's base64 is dG9rZW5X: a text holding all but its last character is not a form of the secret
    scrubber = Scrubber(["tokenW"])
    assert base64.b64encode(b"tokenW").decode() == "dG9rZW5X"
    assert scrubber.text("id dG9rZW5 end") == "id dG9rZW5 end"
    assert not scrubber.contains_secret("id dG9rZW5 end")
    assert scrubber.text("id dG9rZW5X end") == f"id {REDACTED} end"


def test_bytes_that_are_not_text_are_scrubbed_as_base64() -> None:
    raw = b"\xff\xfe\xfd\xfc"
    scrubber = Scrubber([raw])
    assert scrubber.text(base64.b64encode(raw).decode()) == REDACTED
    assert all(form.isascii() for form in encoded_forms(raw))


def test_lists_keep_the_key_they_are_under() -> None:
    doc = {"passwords": ["one1", "two2"], "users": ["admin"], "nested": [{"token": ["t0k3n"]}]}
    assert redact(doc, Scrubber(), by_key=True) == {"passwords": [REDACTED, REDACTED], "users": ["admin"],
                                                    "nested": [{"token": [REDACTED]}]}
    assert redact(doc, Scrubber(["two2"])) == {"passwords": ["one1", REDACTED], "users": ["admin"],
                                               "nested": [{"token": ["t0k3n"]}]}
    assert secret_like_values({"tokens": ["a1", "b2"], "list": ["c3"], "x": {"apiKey": "k"}}) == ["a1", "b2", "k"]
