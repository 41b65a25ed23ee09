"""`o11yctl install --only storage` end to end against a real sshd, and reading usage over SSH."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.lab.sshd import Sshd, TestUser, TestUsers, write_known_hosts
from typer.testing import CliRunner

from o11yctl.cli import app
from o11yctl.config import parse_config
from o11yctl.deploy.remote import prepare_storage
from o11yctl.executors.ssh import SshOptions, SshPool, ssh_target
from o11yctl.model import CommandResult, SshTarget
from o11yctl.stack.plan import build_plan
from o11yctl.status.usage import read_usage

pytestmark = pytest.mark.sshd

runner = CliRunner()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temp dir every lab user may enter (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="o11yctl-storage-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _config(tmp_path: Path, *, root: Path | str, node: dict[str, Any], storage: str = "") -> Path:
    """A two-node config whose storage node is reached as ``node`` says; known_hosts in tmp_path."""
    fields = "".join(f"\n    {k}: {v}" for k, v in node.items())
    path = tmp_path / "o11yctl.yaml"
    path.write_text(
        "nodes:\n"
        "  - name: node-1\n    address: 10.0.0.102\n    role: server\n"
        f"  - name: node-2\n    address: 10.0.0.103\n    role: agent{fields}\n"
        f"ssh:\n  known_hosts: {tmp_path / 'known_hosts'}\n  connect_timeout: 5\n"
        f"storage:\n  node: node-2\n  root: {root}\n{storage}"
    )
    return path


def _direct(server: Sshd, user: TestUser) -> dict[str, Any]:
    return {"ssh_host": server.address, "ssh_port": server.port, "ssh_user": user.name, "ssh_key": str(user.key)}


def _install(config: Path, *args: str, input: str | None = None) -> Any:
    return runner.invoke(app, ["install", "-c", str(config), "--only", "storage", *args], input=input)


def _flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def _owner(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


# --- the happy path --------------------------------------------------------------------------------


def test_storage_prep_creates_owned_dirs_then_reports_unchanged(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    root = tmp_path / "k8s-storage"  # under a root-only parent: stat must look again through sudo
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.nopasswd))
    write_known_hosts(tmp_path / "known_hosts", sshd)
    first = _install(config, "--json")
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert [(i["id"], i["outcome"], i["host"]) for i in doc["items"]] == [
        ("storage.loki", "created", "node-2"), ("storage.tempo", "created", "node-2")]
    for component in ("loki", "tempo"):
        assert (root / component).is_dir()
        assert _owner(root / component) == (10001, 10001)
    second = _install(config, "--json")
    assert second.exit_code == 0, second.output
    items = json.loads(second.stdout)["items"]
    assert [i["outcome"] for i in items] == ["unchanged", "unchanged"]
    assert items[0]["detail"].split("; ")[0] == f"{root}/loki already owned by 10001:10001"
    assert sshd.log().count("Accepted publickey") == 2  # one connection per run, reused by both steps


def test_wrong_owner_is_changed_and_configurable_owner_is_used(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "loki").mkdir(parents=True)
    (root / "loki" / "chunks").mkdir()
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.nopasswd),
                     storage="  owner_uid: 12345\n  owner_gid: 23456\n")
    write_known_hosts(tmp_path / "known_hosts", sshd)
    result = _install(config)
    assert result.exit_code == 0, result.output
    assert "changed" in _flat(result.stdout) and "created" in _flat(result.stdout)
    assert _owner(root / "loki") == (12345, 23456)
    assert _owner(root / "loki" / "chunks") == (12345, 23456)  # chown -R
    assert _owner(root / "tempo") == (12345, 23456)


def test_a_file_where_the_directory_should_be_fails_the_step(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "loki").write_text("not a directory")
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.nopasswd))
    write_known_hosts(tmp_path / "known_hosts", sshd)
    result = _install(config, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert "exists but is a regular file" in doc["error"]["message"]
    steps = {i["id"]: i for i in doc["items"]}
    assert steps["storage.loki"]["outcome"] == "failed"
    # storage.tempo does not depend on storage.loki: it ran alongside, or had not started when
    # the failure stopped the walk. Either way the report says which, and the disk agrees.
    tempo = steps["storage.tempo"]
    assert tempo["outcome"] in {"created", "skipped"}
    assert (root / "tempo").is_dir() == (tempo["outcome"] == "created")


def test_a_volume_larger_than_its_filesystem_is_said_over_ssh(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    """A local volume's room is its filesystem's: the storage step reads df and says when the size cannot fit."""
    root = tmp_path / "data"
    storage = "components:\n  loki:\n    size: 1000Pi\n  tempo:\n    size: 1Ki\n"
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.nopasswd), storage=storage)
    write_known_hosts(tmp_path / "known_hosts", sshd)
    result = _install(config, "--json")
    assert result.exit_code == 0, result.output
    steps = {i["id"]: i["detail"] for i in json.loads(result.stdout)["items"]}
    assert "warning: the volume's size (" in steps["storage.loki"]
    assert f"is larger than the filesystem holding {root}/loki" in steps["storage.loki"]
    assert "warning" not in steps["storage.tempo"] and "note" not in steps["storage.tempo"]


def test_commands_that_run_are_the_ones_dry_run_prints(sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    root = tmp_path / "data"
    config_path = _config(tmp_path, root=root, node=_direct(sshd, lab_users.nopasswd))
    write_known_hosts(tmp_path / "known_hosts", sshd)
    cfg = parse_config(config_path.read_text())
    plan = build_plan(cfg, only=["storage"])
    ran: list[CommandResult] = []

    class Recording(SshPool):
        def run(self, target: SshTarget, argv: Any, **kwargs: Any) -> CommandResult:
            result = super().run(target, argv, **kwargs)
            ran.append(result)
            return result

    with Recording(SshOptions.from_settings(cfg.ssh)) as pool:
        for step in plan.steps:
            prepare_storage(pool, ssh_target(cfg.storage_node), step)
    printed = {line.split("$ ", 1)[1] for step in plan.steps for line in step.display_lines()}
    # probes retried through sudo where the login user may not enter a parent directory
    sent = [shlex.join(r.argv) for r in ran if not (r.argv[0] == "sudo" and r.argv[-4] in ("stat", "df"))]
    assert sent and set(sent) <= printed
    dry = runner.invoke(app, ["install", "-c", str(config_path), "--only", "storage", "--dry-run"])
    for command in sent:
        assert command in dry.stdout


# --- refusing before anything changes ------------------------------------------------------------------


def test_unknown_host_key_exits_3_with_nothing_changed_then_is_accepted(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    root = tmp_path / "data"
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.nopasswd))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("# my hosts\n")
    refused = _install(config)
    assert refused.exit_code == 3
    assert sshd.host_keys["ed25519"].fingerprint in _flat(refused.stderr)
    assert "--accept-new-host-keys" in _flat(refused.stderr)
    assert not root.exists()
    assert known_hosts.read_text() == "# my hosts\n"
    accepted = _install(config, "--accept-new-host-keys")
    assert accepted.exit_code == 0, accepted.output
    lines = known_hosts.read_text().splitlines()
    assert lines[0] == "# my hosts" and len(lines) == 2
    assert lines[1] == sshd.known_hosts_lines()[0]
    assert (root / "loki").is_dir()


@pytest.mark.parametrize("flag", [[], ["--accept-new-host-keys"]])
def test_changed_host_key_exits_3_with_and_without_the_flag(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path, flag: list[str]) -> None:
    root = tmp_path / "data"
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.nopasswd))
    stranger = Path(f"{lab_users.stranger_key}.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{sshd.known_hosts_name} {stranger[0]} {stranger[1]}\n")
    before = known_hosts.read_bytes()
    result = _install(config, *flag, "--json")
    assert result.exit_code == 3
    error = json.loads(result.stdout)["error"]
    assert "HOST KEY CHANGED" in error["message"] and "ssh-keygen -R" in error["hint"]
    assert known_hosts.read_bytes() == before
    assert not root.exists()


def test_unreachable_storage_node_exits_3(lab_users: TestUsers, tmp_path: Path) -> None:
    from tests.lab.sshd import free_port

    node = {"ssh_host": "127.0.0.1", "ssh_port": free_port(), "ssh_user": lab_users.nopasswd.name,
            "ssh_key": str(lab_users.nopasswd.key)}
    result = _install(_config(tmp_path, root=tmp_path / "data", node=node))
    assert result.exit_code == 3
    assert "node-2" in _flat(result.stderr) and "connection refused" in _flat(result.stderr)


def test_path_with_shell_metacharacters_is_a_config_error(sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    config = _config(tmp_path, root='"/mnt/x; rm -rf /tmp/y"', node=_direct(sshd, lab_users.nopasswd))
    result = _install(config, "--accept-new-host-keys")
    assert result.exit_code == 2
    assert "storage.root" in _flat(result.stderr)
    assert "Connection from" not in sshd.log()  # refused before any connection


# --- sudo passwords ------------------------------------------------------------------------------


def test_sudo_password_needed_says_how_to_give_it(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path, open_dir: Path) -> None:
    config = _config(tmp_path, root=open_dir / "data", node=_direct(sshd, lab_users.sudopw))
    write_known_hosts(tmp_path / "known_hosts", sshd)
    result = _install(config)
    assert result.exit_code == 1
    assert "sudo needs a password" in _flat(result.stderr)
    assert "--ask-sudo-password" in _flat(result.stderr) and "--sudo-password-stdin" in _flat(result.stderr)
    assert not (open_dir / "data").exists()


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_sudo_password_from_stdin_is_used_and_never_shown(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path, open_dir: Path, json_flag: list[str]) -> None:
    root = open_dir / "data"
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.sudopw))
    write_known_hosts(tmp_path / "known_hosts", sshd)
    result = _install(config, "--sudo-password-stdin", *json_flag, input=lab_users.sudo_password + "\n")
    assert result.exit_code == 0, result.output
    assert _owner(root / "loki") == (10001, 10001) and _owner(root / "tempo") == (10001, 10001)
    assert lab_users.sudo_password not in result.stdout + result.stderr + _flat(result.stdout + result.stderr)
    if json_flag:
        assert [i["outcome"] for i in json.loads(result.stdout)["items"]] == ["created", "created"]


def test_wrong_sudo_password_from_stdin_fails_without_showing_it(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path, open_dir: Path) -> None:
    config = _config(tmp_path, root=open_dir / "data", node=_direct(sshd, lab_users.sudopw))
    write_known_hosts(tmp_path / "known_hosts", sshd)
    result = _install(config, "--sudo-password-stdin", "--json", input="wrong-password-123\n")
    assert result.exit_code == 1
    assert "refused the password" in json.loads(result.stdout)["error"]["message"]
    assert "wrong-password-123" not in result.stdout + result.stderr + _flat(result.stdout + result.stderr)


def test_sudo_password_prompted_on_a_terminal(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path, open_dir: Path) -> None:
    root = open_dir / "data"
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.sudopw))
    write_known_hosts(tmp_path / "known_hosts", sshd)
    o11yctl = str(Path(sys.executable).parent / "o11yctl")
    argv = [o11yctl, "install", "-c", str(config), "--only", "storage", "--ask-sudo-password"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, as for a user at a shell
        os.execve(o11yctl, argv, {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"})
    transcript = b""
    sent = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            transcript += chunk
            if not sent and b"sudo password:" in transcript:
                os.write(fd, lab_users.sudo_password.encode() + b"\n")
                sent = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = transcript.decode(errors="replace")
    assert sent, text
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert lab_users.sudo_password not in text  # not echoed, not printed
    assert _owner(root / "loki") == (10001, 10001)


# --- ssh_config ----------------------------------------------------------------------------------


def test_ssh_config_alias_is_resolved(sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    ssh_dir = Path(os.path.expanduser("~/.ssh"))  # HOME is a temp dir in tests
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "config").write_text(
        f"Host node2\n  HostName {sshd.address}\n  Port {sshd.port}\n"
        f"  User {lab_users.nopasswd.name}\n  IdentityFile {lab_users.nopasswd.key}\n"
    )
    root = tmp_path / "data"
    config = _config(tmp_path, root=root, node={"ssh_host": "node2"})
    write_known_hosts(tmp_path / "known_hosts", sshd)
    result = _install(config)
    assert result.exit_code == 0, result.output
    assert (root / "tempo").is_dir()


# --- usage ---------------------------------------------------------------------------------------


def test_read_usage_reports_size_existence_and_free_space(
        sshd: Sshd, lab_users: TestUsers, tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "loki" / "chunks").mkdir(parents=True)
    (root / "loki" / "chunks" / "blob").write_bytes(os.urandom(300 * 1024))
    os.chmod(root / "loki" / "chunks", 0o700)  # unreadable for the login user: du goes through sudo
    config = _config(tmp_path, root=root, node=_direct(sshd, lab_users.nopasswd))
    write_known_hosts(tmp_path / "known_hosts", sshd)
    cfg = parse_config(config.read_text())
    with SshPool(SshOptions.from_settings(cfg.ssh)) as pool:
        loki, tempo = read_usage(cfg, pool)
    assert (loki.component, loki.exists, loki.complete, loki.host) == ("loki", True, True, "node-2")
    assert loki.used_bytes is not None and loki.used_bytes >= 300 * 1024
    assert loki.fs_size_bytes and loki.fs_free_bytes is not None and loki.fs_free_bytes <= loki.fs_size_bytes
    assert loki.used_human.endswith("K")
    assert (tempo.exists, tempo.used_bytes) == (False, None)
    assert tempo.fs_size_bytes  # the filesystem of storage.root (or /) is still reported
    assert json.dumps(loki.to_json())
