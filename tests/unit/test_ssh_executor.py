"""The SSH executor's pure parts: ssh_config resolution, ProxyJump hops, options, lazy imports; storage parsing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.lab.ci import skip_or_fail

from o11yctl.config import default_config, parse_config
from o11yctl.errors import ConfigError
from o11yctl.executors.ssh import SshOptions, parse_jump, resolve_host, ssh_target
from o11yctl.model import CommandResult
from o11yctl.secrets import Secret
from o11yctl.stack.datadir import PathState
from o11yctl.stack.plan import build_plan
from o11yctl.stack.quantity import human_bytes
from o11yctl.status.usage import _du_bytes


@pytest.fixture
def ssh_client() -> None:
    """``ssh -G`` resolves ssh_config; without the OpenSSH client these tests skip (fail under CI=true)."""
    if shutil.which("ssh") is None:
        skip_or_fail("needs the OpenSSH client (ssh -G): apt-get install openssh-client")


def _ssh_config(text: str) -> Path:
    ssh_dir = Path(os.path.expanduser("~/.ssh"))  # HOME is a temp dir in tests
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "config").write_text(text)
    return ssh_dir / "config"


@pytest.mark.usefixtures("ssh_client")
def test_resolve_follows_alias_include_and_match() -> None:
    ssh_dir = _ssh_config("")
    (ssh_dir.parent / "more.conf").write_text("Host node2\n  HostName 10.0.0.103\n  IdentityFile ~/.ssh/node2\n")
    _ssh_config(
        f"Include {ssh_dir.parent / 'more.conf'}\n"
        "Match host 10.0.0.103\n  User ubuntu\n  Port 2222\n  ProxyJump admin@bastion:2200\n"
        "Host *\n  HashKnownHosts yes\n"
    )
    resolved = resolve_host("node2")
    assert (resolved.hostname, resolved.port, resolved.user) == ("10.0.0.103", 2222, "ubuntu")
    assert resolved.identity_files == (Path(os.path.expanduser("~/.ssh/node2")),)
    assert resolved.proxy_jump == ("admin@bastion:2200",)
    assert resolved.hash_known_hosts
    assert resolved.known_hosts_name == "[10.0.0.103]:2222"


@pytest.mark.usefixtures("ssh_client")
def test_explicit_port_and_user_win_over_ssh_config() -> None:
    _ssh_config("Host node2\n  HostName 10.0.0.103\n  User ubuntu\n  Port 2222\n")
    resolved = resolve_host("node2", port=22, user="admin")
    assert (resolved.hostname, resolved.port, resolved.user) == ("10.0.0.103", 22, "admin")
    assert resolved.known_hosts_name == "10.0.0.103"


@pytest.mark.usefixtures("ssh_client")
def test_host_key_alias_names_the_known_hosts_entry() -> None:
    _ssh_config("Host node2\n  HostName 10.0.0.103\n  HostKeyAlias node2-key\n")
    assert resolve_host("node2").known_hosts_name == "node2-key"


@pytest.mark.usefixtures("ssh_client")
def test_without_a_config_file_defaults_apply() -> None:
    resolved = resolve_host("10.0.0.103")
    assert (resolved.hostname, resolved.port, resolved.proxy_jump) == ("10.0.0.103", 22, ())


@pytest.mark.usefixtures("ssh_client")
def test_proxy_command_is_refused_with_a_pointer_to_proxyjump() -> None:
    from o11yctl.errors import UnreachableError
    from o11yctl.executors.ssh import SshPool
    from o11yctl.model import SshTarget

    _ssh_config("Host node2\n  HostName 10.0.0.103\n  ProxyCommand nc %h %p\n")
    options = SshOptions(known_hosts=Path("kh"), config_file=None, connect_timeout=1, command_timeout=1)
    with SshPool(options) as pool, pytest.raises(UnreachableError, match="ProxyCommand") as err:
        pool.run(SshTarget("node-2", "node2"), ["true"])
    assert "ProxyJump" in (err.value.hint or "")


def test_configured_ssh_config_that_is_missing_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_host("node2", config_file=tmp_path / "nope")


@pytest.mark.parametrize(("spec", "expected"), [
    ("bastion", ("bastion", None, None)),
    ("admin@bastion:2200", ("bastion", 2200, "admin")),
    ("ssh://admin@10.0.0.1:22", ("10.0.0.1", 22, "admin")),
    ("[fe80::1]:2222", ("fe80::1", 2222, None)),
])
def test_jump_specs(spec: str, expected: tuple[str, int | None, str | None]) -> None:
    assert parse_jump(spec) == expected


@pytest.mark.parametrize("spec", ["-oProxyCommand=x", "a@b@c", ""])
def test_bad_jump_specs(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_jump(spec)


def test_options_and_targets_from_config(tmp_path: Path) -> None:
    cfg = parse_config(
        "nodes:\n  - {name: node-1, address: 10.0.0.102, role: server}\n"
        "  - {name: node-2, address: 10.0.0.103, role: agent, ssh_host: node2, ssh_port: 2222, ssh_user: ubuntu,"
        f" ssh_key: {tmp_path}/id}}\n"
        f"ssh: {{known_hosts: {tmp_path}/kh, connect_timeout: 3s, command_timeout: 1m}}\n"
    )
    secret = Secret("pw")
    options = SshOptions.from_settings(cfg.ssh, accept_new_host_keys=True, sudo_password=secret)
    assert options == SshOptions(known_hosts=tmp_path / "kh", config_file=None, connect_timeout=3.0,
                                 command_timeout=60.0, accept_new_host_keys=True, sudo_password=secret)
    assert SshOptions.from_config(cfg) == SshOptions.from_settings(cfg.ssh)
    assert "pw" not in repr(options)
    target = ssh_target(cfg.node("node-2"))
    assert (target.name, target.host, target.port, target.user, target.key) == (
        "node-2", "node2", 2222, "ubuntu", f"{tmp_path}/id")
    default = ssh_target(default_config().node("node-1"))
    assert (default.host, default.port, default.user, default.key) == ("10.0.0.102", None, None, None)


def test_importing_the_cli_or_the_ssh_module_does_not_import_paramiko() -> None:
    code = ("import sys, o11yctl.cli, o11yctl.executors.ssh, o11yctl.deploy.remote, o11yctl.status.usage\n"
            "assert 'paramiko' not in sys.modules, 'paramiko imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_only_the_ssh_executor_imports_paramiko(repo_root: Path) -> None:
    offenders = [p for p in (repo_root / "src").rglob("*.py")
                 if "import paramiko" in p.read_text() and p.name != "ssh.py"]
    assert offenders == []


def test_dry_run_shows_sudo_as_the_executor_sends_it() -> None:
    plan = build_plan(default_config(), only=["storage"])
    lines = plan.steps[0].display_lines()
    assert lines == [
        "node-2$ stat -c '%u:%g %a %F' /mnt/k8s-storage/loki",
        "node-2$ sudo -n -- mkdir -p /mnt/k8s-storage/loki",
        "node-2$ sudo -n -- chown -R 10001:10001 /mnt/k8s-storage/loki",
        "node-2$ stat -c '%u:%g %a %F' /mnt/k8s-storage/loki",
        "node-2$ df -Pk -- /mnt/k8s-storage/loki",
    ]


def _result(code: int, out: str = "", err: str = "") -> CommandResult:
    return CommandResult(("stat",), code, out, err, 0.0)


def test_stat_states() -> None:
    assert PathState.parse(_result(0, "10001:10001 755 directory\n")) == PathState(True, "10001:10001", "755",
                                                                                    "directory")
    assert PathState.parse(_result(0, "0:0 644 regular file\n")) == PathState(True, "0:0", "644", "regular file")
    assert PathState.parse(_result(1, err="stat: cannot statx '/x': No such file or directory")) == PathState(False)
    assert PathState.parse(_result(1, err="stat: cannot statx '/x': Input/output error")) is None


def test_du_and_human_sizes() -> None:
    assert _du_bytes("1536\t/mnt/k8s-storage/loki\n") == 1536 * 1024
    assert _du_bytes("") is None
    assert [human_bytes(v) for v in (None, 0, 1023, 1536, 5 * 1024**3, 300 * 1024**3)] == [
        "-", "0", "1023", "1.5K", "5.0G", "300G"]


def test_lab_tests_fail_instead_of_skipping_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        skip_or_fail("no sshd here")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        skip_or_fail("no sshd here")
