"""known_hosts parsing, matching and appending (pure; no server)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.lab.ci import skip_or_fail

from o11yctl.executors.known_hosts import (
    append_host_key,
    check_host_key,
    fingerprint,
    hash_name,
    host_field_matches,
    host_key_types,
    key_type_label,
    known_hosts_name,
    parse_known_hosts,
)

KEY_A = base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAIIysgPh5vp3Z16fYgLMZ4cIwTyVdo1CAB1TwGp8g3cE4")
KEY_B = base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAIBph88Wm0NzELw4xY0ctXkvvMHQJWVtM4oJM8DvwpYMf")
A64 = base64.b64encode(KEY_A).decode()
B64 = base64.b64encode(KEY_B).decode()


def test_names_follow_openssh() -> None:
    assert known_hosts_name("Node2.LAN", 22) == "node2.lan"
    assert known_hosts_name("10.0.0.103", 2222) == "[10.0.0.103]:2222"


@pytest.mark.parametrize(("field", "name", "expected"), [
    ("10.0.0.103", "10.0.0.103", True),
    ("node2,10.0.0.103", "10.0.0.103", True),
    ("10.0.0.*", "10.0.0.103", True),
    ("10.0.0.10?", "10.0.0.103", True),
    ("10.0.0.*,!10.0.0.103", "10.0.0.103", False),
    ("[10.0.0.103]:2222", "[10.0.0.103]:2222", True),
    ("[10.0.0.103]:2222", "10.0.0.103", False),
    ("10.0.0.103", "[10.0.0.103]:2222", False),
    ("NODE2", "node2", True),
])
def test_host_patterns(field: str, name: str, expected: bool) -> None:
    assert host_field_matches(field, name) is expected


def test_hashed_names_match_only_their_host() -> None:
    field = hash_name("[127.0.0.1]:2200")
    assert host_field_matches(field, "[127.0.0.1]:2200")
    assert not host_field_matches(field, "[127.0.0.1]:2201")


def test_names_hashed_by_ssh_keygen_match(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        skip_or_fail("needs ssh-keygen (apt-get install openssh-client)")
    path = tmp_path / "known_hosts"
    path.write_text(f"[10.0.0.103]:2222 ssh-ed25519 {A64}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    (entry,) = parse_known_hosts(path.read_text())
    assert entry.hosts.startswith("|1|")
    assert entry.matches("[10.0.0.103]:2222") and not entry.matches("10.0.0.103")


def test_markers_comments_and_garbage_do_not_break_parsing() -> None:
    text = (
        "# comment\n\n"
        f"@cert-authority *.lab ssh-ed25519 {B64} ca\n"
        f"@revoked * ssh-ed25519 {B64}\n"
        "@unknown-marker host ssh-ed25519 AAAA\n"
        "host-only-one-field\n"
        "host ssh-ed25519 !!!notbase64!!!\n"
        f"{hash_name('10.0.0.103')} ssh-ed25519 {A64}\n"
        f"[10.0.0.104]:2222 ssh-rsa {B64} comment with spaces\n"
    )
    entries = parse_known_hosts(text)
    assert [(e.marker, e.line_no) for e in entries] == [("@cert-authority", 3), ("@revoked", 4), (None, 8), (None, 9)]
    assert host_key_types(entries, "10.0.0.103") == ("ssh-ed25519",)
    assert host_key_types(entries, "[10.0.0.104]:2222") == ("ssh-rsa",)
    assert host_key_types(entries, "node.lab") == ()  # a CA line is not the host's own key


def test_verdicts() -> None:
    entries = parse_known_hosts(f"10.0.0.103 ssh-ed25519 {A64}\n@revoked * ssh-ed25519 {B64}\n")
    assert check_host_key(entries, "10.0.0.103", "ssh-ed25519", KEY_A).verdict == "known"
    assert check_host_key(entries, "10.0.0.103", "ssh-ed25519", KEY_B).verdict == "revoked"
    assert check_host_key(entries, "10.0.0.9", "ssh-ed25519", KEY_B).verdict == "revoked"
    assert check_host_key(entries, "10.0.0.9", "ssh-ed25519", KEY_A).verdict == "unknown"
    other = parse_known_hosts(f"10.0.0.103 ssh-ed25519 {B64}\n")
    changed = check_host_key(other, "10.0.0.103", "ssh-ed25519", KEY_A)
    assert changed.verdict == "changed" and changed.on_file[0].line_no == 1
    ca = parse_known_hosts(f"@cert-authority 10.0.0.* ssh-ed25519 {B64}\n")
    unknown = check_host_key(ca, "10.0.0.103", "ssh-ed25519", KEY_A)
    assert unknown.verdict == "unknown" and unknown.has_cert_authority


@pytest.mark.parametrize("existing", [b"", b"# mine\n", b"# no newline at the end", b"\xff binary-ish \xfe\n"])
def test_append_adds_one_line_and_keeps_every_byte(tmp_path: Path, existing: bytes) -> None:
    path = tmp_path / "ssh" / "known_hosts"
    if existing:
        path.parent.mkdir()
        path.write_bytes(existing)
    line = append_host_key(path, "[127.0.0.1]:2200", "ssh-ed25519", KEY_A)
    data = path.read_bytes()
    assert data.startswith(existing)
    added = data[len(existing):]
    assert added.strip(b"\n") == line.encode() and added.endswith(b"\n")
    assert added.count(b"\n") == (2 if existing and not existing.endswith(b"\n") else 1)
    assert check_host_key(parse_known_hosts(data.decode(errors="replace")), "[127.0.0.1]:2200", "ssh-ed25519",
                          KEY_A).verdict == "known"


def test_append_hashed(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    line = append_host_key(path, "10.0.0.103", "ssh-ed25519", KEY_A, hashed=True)
    assert line.startswith("|1|") and "10.0.0.103" not in line
    assert check_host_key(parse_known_hosts(path.read_text()), "10.0.0.103", "ssh-ed25519", KEY_A).verdict == "known"


def test_fingerprint_and_labels() -> None:
    assert fingerprint(KEY_A) == "SHA256:omohnMXOdxXkEbfaktAsD+xMNRDX/R/qA/auooaWqhg"
    assert [key_type_label(t) for t in ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256")] == ["ED25519", "RSA",
                                                                                             "ECDSA"]
