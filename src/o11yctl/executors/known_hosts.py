"""OpenSSH known_hosts files: read them the way ``ssh`` does, and add to them by appending only.

A line is ``[marker] hosts keytype base64 [comment]``. ``hosts`` is a comma-separated
list of patterns (``*`` and ``?`` wildcards, ``!`` negation, ``[host]:port`` for a
port other than 22) or one hashed name (``|1|salt|hmac``, as ``HashKnownHosts yes``
writes). The markers ``@cert-authority`` and ``@revoked`` are understood: revoked
keys are refused; certificate authorities are kept apart (host certificates are not
verified here) and never taken for a host's own key. Lines that cannot be parsed are
skipped, as ``ssh`` skips them, so one odd line never hides the rest.

Nothing here rewrites a file: :func:`append_host_key` adds exactly one line and
leaves every existing byte as it was.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Marker = Literal["@cert-authority", "@revoked"]
Verdict = Literal["known", "unknown", "changed", "revoked"]

_MARKERS: frozenset[str] = frozenset({"@cert-authority", "@revoked"})


@dataclass(frozen=True, slots=True)
class KnownHostEntry:
    """One parsed known_hosts line."""

    hosts: str
    key_type: str
    key: bytes
    line_no: int
    marker: Marker | None = None

    def matches(self, name: str) -> bool:
        """Whether this line's host field covers ``name`` (``host`` or ``[host]:port``)."""
        return host_field_matches(self.hosts, name)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)


@dataclass(frozen=True, slots=True)
class HostKeyCheck:
    """What known_hosts says about the key a host offered."""

    verdict: Verdict
    name: str
    #: The host's own keys on file (no markers), whatever their type.
    on_file: tuple[KnownHostEntry, ...] = ()
    #: Whether a ``@cert-authority`` line covers the host (its certificates are not checked here).
    has_cert_authority: bool = False

    @property
    def key_types(self) -> tuple[str, ...]:
        """The key types on file for the host, in file order, without repeats."""
        return tuple(dict.fromkeys(e.key_type for e in self.on_file))


def known_hosts_name(host: str, port: int) -> str:
    """The name ``ssh`` looks up: ``host`` on port 22, else ``[host]:port``; lower case."""
    host = host.lower()
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: bytes) -> str:
    """``SHA256:<base64>`` of a public key blob, as ``ssh-keygen -l`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")


def key_type_label(key_type: str) -> str:
    """``ssh-ed25519`` -> ``ED25519``, ``ssh-rsa`` -> ``RSA``, ``ecdsa-sha2-nistp256`` -> ``ECDSA``."""
    if key_type.startswith("ecdsa-"):
        return "ECDSA"
    if key_type.startswith("sk-"):
        return key_type.upper()
    return key_type.removeprefix("ssh-").upper()


def parse_known_hosts(text: str) -> list[KnownHostEntry]:
    """Every usable line of a known_hosts file, in order; comments and broken lines are skipped."""
    entries: list[KnownHostEntry] = []
    for line_no, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker: Marker | None = None
        if fields[0].startswith("@"):
            if fields[0] not in _MARKERS:
                continue
            marker = "@cert-authority" if fields[0] == "@cert-authority" else "@revoked"
            fields = fields[1:]
        if len(fields) < 3:
            continue
        hosts, key_type, blob = fields[0], fields[1], fields[2]
        try:
            key = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            continue
        entries.append(KnownHostEntry(hosts=hosts, key_type=key_type, key=key, line_no=line_no, marker=marker))
    return entries


def load_known_hosts(path: Path) -> list[KnownHostEntry]:
    """Parse ``path``; a missing file is an empty list."""
    try:
        return parse_known_hosts(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return []


def host_field_matches(hosts: str, name: str) -> bool:
    """OpenSSH's rule: a hashed name matches exactly; otherwise any pattern, unless a ``!`` pattern does."""
    name = name.lower()
    if hosts.startswith("|1|"):
        return _hashed_matches(hosts, name)
    matched = False
    for pattern in hosts.lower().split(","):
        if not pattern:
            continue
        if pattern.startswith("!"):
            if _wildcard(pattern[1:]).fullmatch(name):
                return False
        elif _wildcard(pattern).fullmatch(name):
            matched = True
    return matched


def hash_name(name: str, salt: bytes | None = None) -> str:
    """A hashed host field (``|1|salt|hmac-sha1``) for ``name``, as ``ssh-keygen -H`` writes it."""
    salt = salt if salt is not None else os.urandom(20)
    digest = hmac.new(salt, name.lower().encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def check_host_key(entries: Sequence[KnownHostEntry], name: str, key_type: str, key: bytes) -> HostKeyCheck:
    """Judge the key a host offered against known_hosts.

    Args:
        entries: the parsed file.
        name: the looked-up name (see :func:`known_hosts_name`).
        key_type: the offered key's type, e.g. ``ssh-ed25519``.
        key: the offered key's blob.

    Returns:
        ``revoked`` if a ``@revoked`` line for the host holds this key; ``known`` if a host line
        holds it; ``changed`` if host lines exist but none holds it; else ``unknown``.
    """
    own = tuple(e for e in entries if e.marker is None and e.matches(name))
    cert_authority = any(e.marker == "@cert-authority" and e.matches(name) for e in entries)
    if any(e.marker == "@revoked" and e.key == key and e.matches(name) for e in entries):
        return HostKeyCheck("revoked", name, own, cert_authority)
    if any(e.key_type == key_type and e.key == key for e in own):
        return HostKeyCheck("known", name, own, cert_authority)
    if own:
        return HostKeyCheck("changed", name, own, cert_authority)
    return HostKeyCheck("unknown", name, own, cert_authority)


def host_key_types(entries: Sequence[KnownHostEntry], name: str) -> tuple[str, ...]:
    """The key types known_hosts holds for ``name`` (its own lines, not markers), in file order."""
    return tuple(dict.fromkeys(e.key_type for e in entries if e.marker is None and e.matches(name)))


def append_host_key(path: Path, name: str, key_type: str, key: bytes, *, hashed: bool = False) -> str:
    """Append one line for ``name`` to ``path`` (created if absent); existing bytes stay as they are.

    Args:
        path: the known_hosts file.
        name: the host name as looked up (``host`` or ``[host]:port``).
        key_type: e.g. ``ssh-ed25519``.
        key: the public key blob.
        hashed: write the host name hashed, as ``HashKnownHosts yes`` does.

    Returns:
        The line written (without its newline).
    """
    host_field = hash_name(name) if hashed else name
    line = f"{host_field} {key_type} {base64.b64encode(key).decode()}"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        lead = b""
        if size:
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                lead = b"\n"  # the file's last line had no newline; keep it a line of its own
        fh.write(lead + line.encode() + b"\n")
    return line


def _hashed_matches(field: str, name: str) -> bool:
    parts = field.split("|")
    if len(parts) != 4:
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        want = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), want)


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))
