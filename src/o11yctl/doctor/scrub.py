"""Remove known secret values from text before it leaves the machine. Pure: no I/O here.

A secret can hide in a support bundle in more than its plain form: Kubernetes and Helm
put values into base64 (a Secret's ``data``, a rendered manifest in ``helm status``), URLs
and form bodies percent-encode them, JSON escapes quotes and backslashes. For every known
value the :class:`Scrubber` looks for each of these forms:

- plain, and JSON-escaped;
- URL-encoded (``quote`` and ``quote_plus``, upper- and lower-case hex);
- base64, standard and URL-safe alphabets, padded or not, and the part of the encoding
  that does not depend on where the value starts inside a longer encoded blob (a value
  can begin at any of three byte offsets of a base64 group);
- for a value of several lines (a PEM key), each line on its own, so a value that a
  writer folded or indented line by line is still found.

Text is the last line of defence. Documents (objects, Helm values) are redacted before
they are written (:func:`redact`): YAML quotes, folds and escapes strings as it writes
them (``it's`` becomes ``'it''s'``, control characters become escapes), which no search
through the written text could undo.

Values shorter than :data:`MIN_LENGTH` are not scrubbed: removing every ``1`` or
``true`` would destroy the bundle and protect nothing.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

#: The shortest value that is scrubbed.
MIN_LENGTH = 4
#: The shortest fragment of a base64 encoding that is scrubbed on its own.
MIN_ENCODED = 6
REDACTED = "[REDACTED]"


def encoded_forms(secret: str | bytes) -> set[str]:
    """Every form of ``secret`` the scrubber looks for (see the module docstring).

    Args:
        secret: the value, as text or raw bytes.

    Returns:
        The forms; empty when the value is shorter than :data:`MIN_LENGTH`.
    """
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_LENGTH:
        return set()
    forms: set[str] = set()
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        if "\n" in text:
            for line in text.splitlines():
                if len(line.strip()) >= MIN_LENGTH:
                    forms |= encoded_forms(line.strip())
        forms.add(text)
        forms.add(json.dumps(text)[1:-1])
        forms.add(json.dumps(text, ensure_ascii=False)[1:-1])
        for encoded in (quote(text, safe=""), quote(text), quote_plus(text)):  # quote_plus keeps no "/" by default
            forms.add(encoded)
            forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    for form in _base64_forms(raw):
        forms.add(form)
        forms.add(form.replace("+", "-").replace("/", "_"))
    return {f for f in forms if f}


def _base64_forms(raw: bytes) -> set[str]:
    padded = base64.b64encode(raw).decode("ascii")
    out = {padded, padded.rstrip("=")}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = (offset * 8 + 5) // 6  # characters that carry bits of the bytes before the value
        end = ((offset + len(raw)) * 8) // 6  # characters made only of the value's bits (and the prefix's)
        core = encoded[start:end]
        if len(core) >= MIN_ENCODED:
            out.add(core)
    return out


class Scrubber:
    """Replaces every form of every known secret value with ``[REDACTED]``.

    Args:
        secrets: the values to remove (text or bytes); short ones are ignored.
    """

    def __init__(self, secrets: Iterable[str | bytes] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | bytes) -> None:
        """Also remove ``secret`` from now on."""
        new = encoded_forms(secret)
        if new - self._forms:
            self._forms |= new
            self._pattern = None

    def __len__(self) -> int:
        return len(self._forms)

    def _regex(self) -> re.Pattern[str] | None:
        if self._pattern is None and self._forms:
            # Longest first, so a value's long encoding goes before a shorter value inside it.
            alternatives = sorted(self._forms, key=lambda f: (-len(f), f))
            self._pattern = re.compile("|".join(re.escape(f) for f in alternatives))
        return self._pattern

    def text(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        regex = self._regex()
        if regex is None or not text:
            return text
        return regex.sub(REDACTED, text)

    def contains_secret(self, text: str) -> bool:
        """Whether ``text`` still holds a form of a known secret."""
        regex = self._regex()
        return bool(regex is not None and regex.search(text))


#: Keys whose values in a Secret are names, not secrets (scrubbing ``admin`` everywhere helps nobody).
NOT_SECRET_KEYS = re.compile(r"(^|[-_.])(user|username|user-name|ca\.crt|tls\.crt|namespace)$", re.IGNORECASE)
#: Keys in Helm values that hold secrets.
SECRET_KEYS = re.compile(r"pass(word)?|secret|token|api[-_]?key|credential|private[-_]?key|bearer", re.IGNORECASE)


def secret_like_values(values: object, *, key: str = "") -> list[str]:
    """String leaves of a values document whose key looks like a secret (``adminPassword``, ``token``...).

    Args:
        values: a parsed values document (dicts, lists, scalars).
        key: the key ``values`` was found under.

    Returns:
        The values, in document order.
    """
    out: list[str] = []
    if isinstance(values, dict):
        for k, v in values.items():
            out += secret_like_values(v, key=str(k))
    elif isinstance(values, list):
        for item in values:
            out += secret_like_values(item, key=key)
    elif isinstance(values, str) and key and SECRET_KEYS.search(key) and values:
        out.append(values)
    return out


def redact(doc: object, scrubber: Scrubber, *, by_key: bool = False, key: str = "") -> object:
    """A copy of a parsed document with every known secret taken out of its strings, before it is written.

    Args:
        doc: dicts, lists and scalars (an object from the API, a values document).
        scrubber: the known secret values.
        by_key: also replace whole string values under secret-like keys (``adminPassword``, ``token``...),
            for documents whose keys name their values (Helm values, o11yctl's config).
        key: the key ``doc`` was found under.

    Returns:
        The document with ``[REDACTED]`` in place of secrets; the input is not changed.
    """
    if isinstance(doc, dict):
        return {k: redact(v, scrubber, by_key=by_key, key=str(k)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [redact(item, scrubber, by_key=by_key, key=key) for item in doc]
    if isinstance(doc, str):
        if by_key and key and doc and SECRET_KEYS.search(key) and not NOT_SECRET_KEYS.search(key):
            return REDACTED
        for _ in range(3):  # a replacement only shrinks the text: a few passes reach what nests
            if not scrubber.contains_secret(doc):
                break
            doc = scrubber.text(doc)
        return doc
    return doc
