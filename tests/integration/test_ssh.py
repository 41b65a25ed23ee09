"""The SSH executor against a real OpenSSH server: host keys, auth, sudo, quoting, timeouts, fan-out."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.lab.sshd import Sshd, TestUser, TestUsers, free_port, hash_host, start_sshd, write_known_hosts
from tests.lab.sshd_fixtures import SshdFarm

from o11yctl.errors import HostKeyError, O11yError, RemoteError, SudoPasswordRequired, UnreachableError
from o11yctl.executors.ssh import SshOptions, SshPool
from o11yctl.model import SshTarget
from o11yctl.secrets import Secret

pytestmark = pytest.mark.sshd


def _options(known_hosts: Path, **kwargs: object) -> SshOptions:
    base = SshOptions(known_hosts=known_hosts, config_file=None, connect_timeout=5.0, command_timeout=20.0)
    return replace(base, **kwargs)  # type: ignore[arg-type]


def _target(server: Sshd, user: TestUser, name: str = "node-2", key: Path | None = None) -> SshTarget:
    return SshTarget(name=name, host=server.address, port=server.port, user=user.name, key=str(key or user.key))


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "known_hosts"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temp dir every lab user may enter (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="o11yctl-test-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- commands ----------------------------------------------------------------------------------


def test_run_returns_output_and_exit_code_and_reuses_one_connection(
        sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    target = _target(sshd, lab_users.nopasswd)
    with SshPool(_options(known_hosts)) as pool:
        failed = pool.run(target, ["sh", "-c", "echo out; echo err >&2; exit 3"], step="probe")
        who = pool.run(target, ["id", "-un"])
        root = pool.run(target, ["id", "-u"], sudo=True)
    assert (failed.exit_code, failed.stdout, failed.stderr, failed.host) == (3, "out\n", "err\n", "node-2")
    assert who.stdout.strip() == lab_users.nopasswd.name
    assert root.ok and root.stdout.strip() == "0"
    assert root.argv == ("sudo", "-n", "--", "id", "-u")
    assert sshd.log().count("Accepted publickey") == 1


def test_every_argument_arrives_verbatim(sshd: Sshd, lab_users: TestUsers, known_hosts: Path,
                                         open_dir: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    nasty = "a b;c|d&e $(touch pwned) `touch pwned2` 'q' \"dq\" \\ *"
    path = open_dir / "dir with ; and $(x)"
    target = _target(sshd, lab_users.nopasswd)
    with SshPool(_options(known_hosts)) as pool:
        echoed = pool.run(target, ["printf", "%s", nasty])
        made = pool.run(target, ["mkdir", "-p", str(path)], sudo=True)
    assert echoed.stdout == nasty
    assert made.ok and path.is_dir()
    assert sorted(p.name for p in open_dir.iterdir()) == ["dir with ; and $(x)"]


def test_command_timeout_names_host_and_step(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    with SshPool(_options(known_hosts)) as pool:
        started = time.monotonic()
        with pytest.raises(RemoteError) as err:
            pool.run(_target(sshd, lab_users.nopasswd), ["sleep", "10"], timeout=0.5, step="storage.loki")
        assert time.monotonic() - started < 5
    assert "node-2" in err.value.message and "storage.loki" in err.value.message
    assert "did not finish within 0.5s" in err.value.message


# --- host keys ---------------------------------------------------------------------------------------


def _pre_existing_known_hosts(path: Path, users: TestUsers) -> bytes:
    """A realistic file: comments, a hashed entry, markers, a [host]:port entry, none for our server."""
    other = Path(f"{users.stranger_key}.pub").read_text().split()[:2]
    text = (
        "# managed by hand\n"
        f"{hash_host('10.9.9.9')} {other[0]} {other[1]}\n"
        f"@cert-authority *.lab.example {other[0]} {other[1]} lab-ca\n"
        f"@revoked * {other[0]} {other[1]}\n"
        f"[10.9.9.10]:2222,10.9.9.11 {other[0]} {other[1]}\n"
        "\n"
        "this line is not a known_hosts line\n"
    )
    path.write_text(text)
    return path.read_bytes()


def test_unknown_host_is_refused_with_its_fingerprint_and_nothing_is_written(
        sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    before = _pre_existing_known_hosts(known_hosts, lab_users)
    with SshPool(_options(known_hosts)) as pool, pytest.raises(HostKeyError) as err:
        pool.run(_target(sshd, lab_users.nopasswd), ["true"], step="storage.loki")
    assert err.value.exit_code == 3
    assert sshd.host_keys["ed25519"].fingerprint in err.value.message
    assert "node-2" in err.value.message and "storage.loki" in err.value.message
    assert "--accept-new-host-keys" in (err.value.hint or "")
    assert known_hosts.read_bytes() == before
    assert "Accepted publickey" not in sshd.log()


def test_accept_new_appends_exactly_one_line_and_keeps_the_rest_byte_for_byte(
        sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    before = _pre_existing_known_hosts(known_hosts, lab_users)
    with SshPool(_options(known_hosts, accept_new_host_keys=True)) as pool:
        assert pool.run(_target(sshd, lab_users.nopasswd), ["true"]).ok
    after = known_hosts.read_bytes()
    assert after.startswith(before)
    added = after[len(before):].decode()
    assert added.count("\n") == 1 and added.endswith("\n")
    assert added.split()[1:] == sshd.host_keys["ed25519"].line.split()
    # OpenSSH itself finds the recorded key.
    found = subprocess.run(["ssh-keygen", "-F", sshd.known_hosts_name, "-f", str(known_hosts)],
                           capture_output=True, text=True, check=False)
    assert found.returncode == 0 and sshd.host_keys["ed25519"].base64 in found.stdout
    # Now known: a run without the flag connects and writes nothing.
    with SshPool(_options(known_hosts)) as pool:
        assert pool.run(_target(sshd, lab_users.nopasswd), ["true"]).ok
    assert known_hosts.read_bytes() == after


@pytest.mark.parametrize("accept_new", [False, True])
def test_changed_host_key_is_always_refused(sshd: Sshd, lab_users: TestUsers, known_hosts: Path,
                                            accept_new: bool) -> None:
    stranger = Path(f"{lab_users.stranger_key}.pub").read_text().split()[:2]
    known_hosts.write_text(f"{sshd.known_hosts_name} {stranger[0]} {stranger[1]}\n")
    before = known_hosts.read_bytes()
    with SshPool(_options(known_hosts, accept_new_host_keys=accept_new)) as pool, \
            pytest.raises(HostKeyError) as err:
        pool.run(_target(sshd, lab_users.nopasswd), ["true"], step="storage.loki")
    assert "HOST KEY CHANGED" in err.value.message
    assert sshd.host_keys["ed25519"].fingerprint in err.value.message
    assert "ssh-keygen -R" in (err.value.hint or "")
    assert err.value.exit_code == 3
    assert known_hosts.read_bytes() == before


def test_host_known_by_rsa_that_also_offers_ed25519_is_not_unknown(
        sshd_farm: SshdFarm, lab_users: TestUsers, known_hosts: Path) -> None:
    (server,) = sshd_farm(1, host_key_types=("ed25519", "rsa"))
    write_known_hosts(known_hosts, server, key_types=["rsa"])
    before = known_hosts.read_bytes()
    with SshPool(_options(known_hosts, accept_new_host_keys=True)) as pool:
        assert pool.run(_target(server, lab_users.nopasswd), ["true"]).ok
    assert known_hosts.read_bytes() == before  # nothing "new" was recorded


def test_hashed_entry_is_recognised(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd, hashed=True)
    with SshPool(_options(known_hosts)) as pool:
        assert pool.run(_target(sshd, lab_users.nopasswd), ["true"]).ok


def test_revoked_key_is_refused(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    with known_hosts.open("a") as fh:
        fh.write(f"@revoked * {sshd.host_keys['ed25519'].line}\n")
    with SshPool(_options(known_hosts, accept_new_host_keys=True)) as pool, pytest.raises(HostKeyError) as err:
        pool.run(_target(sshd, lab_users.nopasswd), ["true"])
    assert "REVOKED" in err.value.message


# --- reaching the host ----------------------------------------------------------------------------


def test_wrong_key_fails_authentication(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    target = _target(sshd, lab_users.nopasswd, key=lab_users.stranger_key)
    with SshPool(_options(known_hosts)) as pool, pytest.raises(UnreachableError) as err:
        pool.run(target, ["true"], step="storage.loki")
    assert err.value.exit_code == 3
    message = err.value.message
    assert "authentication failed for user o11y-test" in message
    assert str(lab_users.stranger_key) in message and "node-2" in message and "storage.loki" in message


def test_connection_refused(lab_users: TestUsers, known_hosts: Path) -> None:
    port = free_port()
    target = SshTarget("node-2", "127.0.0.1", port, lab_users.nopasswd.name, str(lab_users.nopasswd.key))
    with SshPool(_options(known_hosts)) as pool, pytest.raises(UnreachableError) as err:
        pool.run(target, ["true"], step="storage.loki")
    assert err.value.exit_code == 3
    assert "connection refused" in err.value.message
    assert f"127.0.0.1:{port}" in err.value.message and "storage.loki" in err.value.message


def test_timeout_on_a_port_that_never_speaks_ssh(lab_users: TestUsers, known_hosts: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)  # the kernel completes the TCP handshake; nobody ever answers
        port = silent.getsockname()[1]
        target = SshTarget("node-2", "127.0.0.1", port, lab_users.nopasswd.name, str(lab_users.nopasswd.key))
        started = time.monotonic()
        with SshPool(_options(known_hosts, connect_timeout=1.0)) as pool, pytest.raises(UnreachableError) as err:
            pool.run(target, ["true"], step="storage.loki")
        assert time.monotonic() - started < 6
    assert "timed out after 1s" in err.value.message and "banner" in err.value.message
    assert "node-2" in err.value.message


def test_unresolvable_host_name(lab_users: TestUsers, known_hosts: Path) -> None:
    target = SshTarget("node-2", "no-such-host.invalid", 22, lab_users.nopasswd.name, str(lab_users.nopasswd.key))
    with SshPool(_options(known_hosts)) as pool, pytest.raises(UnreachableError) as err:
        pool.run(target, ["true"], step="storage.loki")
    assert "cannot resolve host name 'no-such-host.invalid'" in err.value.message


# --- sudo ----------------------------------------------------------------------------------------


def test_sudo_that_wants_a_password_says_how_to_give_one(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    with SshPool(_options(known_hosts)) as pool, pytest.raises(SudoPasswordRequired) as err:
        pool.run(_target(sshd, lab_users.sudopw), ["id", "-u"], sudo=True, step="storage.loki")
    assert "--ask-sudo-password" in (err.value.hint or "") and "--sudo-password-stdin" in (err.value.hint or "")
    assert "node-2" in err.value.message and "storage.loki" in err.value.message


def test_sudo_password_goes_to_stdin_only(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    secret = Secret(lab_users.sudo_password)
    with SshPool(_options(known_hosts, sudo_password=secret)) as pool:
        first = pool.run(_target(sshd, lab_users.sudopw), ["id", "-u"], sudo=True)
        second = pool.run(_target(sshd, lab_users.sudopw), ["id", "-u"], sudo=True)
    for result in (first, second):
        assert result.ok and result.stdout.strip() == "0"
        assert result.argv == ("sudo", "-k", "-S", "-p", "", "--", "id", "-u")
        assert lab_users.sudo_password not in repr(result)


@pytest.fixture
def sudo_caches_credentials(lab_users: TestUsers) -> Iterator[None]:
    """sudo keeps the password user's credentials for all their sessions (``timestamp_type=global``)."""
    drop_in = Path("/etc/sudoers.d/o11yctl-lab-timestamp")
    drop_in.write_text(f"Defaults:{lab_users.sudopw.name} timestamp_type=global, timestamp_timeout=5\n")
    drop_in.chmod(0o440)
    try:
        yield
    finally:
        drop_in.unlink(missing_ok=True)


def test_the_sudo_password_never_reaches_the_commands_stdin(sshd: Sshd, lab_users: TestUsers, known_hosts: Path,
                                                           sudo_caches_credentials: None) -> None:
    """With ``sudo -k`` sudo reads the password itself every time, even when it has cached credentials;
    without it, a cached sudo would leave the password line on the command's stdin."""
    write_known_hosts(known_hosts, sshd)
    with SshPool(_options(known_hosts, sudo_password=Secret(lab_users.sudo_password))) as pool:
        target = _target(sshd, lab_users.sudopw)
        for _ in range(3):  # the first run caches the credentials where sudo's timestamp policy allows
            result = pool.run(target, ["cat"], sudo=True)
            assert result.ok, result.stderr
            assert result.stdout == "" and lab_users.sudo_password not in result.stdout


def test_output_beyond_the_limit_stops_the_command_and_says_so(sshd: Sshd, lab_users: TestUsers,
                                                               known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    with SshPool(_options(known_hosts, max_output=100_000)) as pool, pytest.raises(RemoteError) as err:
        pool.run(_target(sshd, lab_users.nopasswd), ["head", "-c", "1000000", "/dev/zero"], step="probe")
    assert "printed more than 97 KiB on stdout" in err.value.message and "node-2" in err.value.message
    with SshPool(_options(known_hosts, max_output=100_000)) as pool:
        assert pool.run(_target(sshd, lab_users.nopasswd), ["head", "-c", "50000", "/dev/zero"]).ok


def test_wrong_sudo_password_is_reported_without_echoing_it(
        sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    with SshPool(_options(known_hosts, sudo_password=Secret("not-the-password"))) as pool, \
            pytest.raises(SudoPasswordRequired) as err:
        pool.run(_target(sshd, lab_users.sudopw), ["id", "-u"], sudo=True)
    assert "refused the password" in err.value.message
    assert "not-the-password" not in err.value.message + (err.value.hint or "")


# --- ssh_config, ProxyJump, agent ---------------------------------------------------------------------


def test_ssh_config_alias_with_include_and_match(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    ssh_dir = Path(os.path.expanduser("~/.ssh"))  # HOME is a temp dir in tests
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "hosts.conf").write_text(f"Host node2\n  HostName {sshd.address}\n  Port {sshd.port}\n")
    (ssh_dir / "config").write_text(
        f"Include {ssh_dir / 'hosts.conf'}\n"
        f"Match host {sshd.address}\n  User {lab_users.nopasswd.name}\n  IdentityFile {lab_users.nopasswd.key}\n"
    )
    write_known_hosts(known_hosts, sshd)
    with SshPool(_options(known_hosts)) as pool:
        result = pool.run(SshTarget("node-2", "node2"), ["id", "-un"])
    assert result.stdout.strip() == lab_users.nopasswd.name


def test_explicit_user_and_key_win_over_ssh_config(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    ssh_dir = Path(os.path.expanduser("~/.ssh"))
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "config").write_text(f"Host node2\n  HostName {sshd.address}\n  Port {sshd.port}\n"
                                    f"  User {lab_users.nopasswd.name}\n  IdentityFile {lab_users.stranger_key}\n")
    write_known_hosts(known_hosts, sshd)
    target = SshTarget("node-2", "node2", user=lab_users.sudopw.name, key=str(lab_users.sudopw.key))
    with SshPool(_options(known_hosts)) as pool:
        assert pool.run(target, ["id", "-un"]).stdout.strip() == lab_users.sudopw.name


def test_proxyjump_one_hop(sshd_farm: SshdFarm, lab_users: TestUsers, known_hosts: Path) -> None:
    jump, node = sshd_farm(2, log_level="DEBUG1")
    ssh_dir = Path(os.path.expanduser("~/.ssh"))
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    user = lab_users.nopasswd
    (ssh_dir / "config").write_text(
        f"Host bastion\n  HostName {jump.address}\n  Port {jump.port}\n  User {user.name}\n"
        f"  IdentityFile {user.key}\n"
        f"Host node2\n  HostName {node.address}\n  Port {node.port}\n  User {user.name}\n"
        f"  IdentityFile {user.key}\n  ProxyJump bastion\n"
    )
    write_known_hosts(known_hosts, jump, node)
    with SshPool(_options(known_hosts)) as pool:
        assert pool.run(SshTarget("node-2", "node2"), ["id", "-un"]).stdout.strip() == user.name
    assert f"target {node.address} port {node.port}" in jump.log()  # the jump host forwarded the connection
    assert "direct-tcpip" not in node.log()


def test_ssh_agent_is_used_when_no_key_is_configured(
        sshd: Sshd, lab_users: TestUsers, known_hosts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(lab_users.nopasswd.key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        write_known_hosts(known_hosts, sshd)
        target = SshTarget("node-2", sshd.address, sshd.port, lab_users.nopasswd.name)
        with SshPool(_options(known_hosts)) as pool:
            assert pool.run(target, ["true"]).ok
    finally:
        agent.terminate()
        agent.wait(timeout=5)


# --- fan-out -------------------------------------------------------------------------------------


def test_fan_out_to_five_hosts_runs_in_parallel_and_keeps_each_error(
        sshd_farm: SshdFarm, lab_users: TestUsers, known_hosts: Path) -> None:
    servers = sshd_farm(5)
    write_known_hosts(known_hosts, *servers)
    user = lab_users.nopasswd
    targets = [SshTarget(f"node-{i}", s.address, s.port, user.name, str(user.key)) for i, s in enumerate(servers)]
    dead = SshTarget("node-dead", "127.0.0.1", free_port(), user.name, str(user.key))
    with SshPool(_options(known_hosts)) as pool:
        pool.map(targets, pool.connect)
        started = time.monotonic()
        results = pool.map([*targets, dead], lambda t: pool.run(t, ["sh", "-c", f"sleep 0.5; echo {t.name}"]))
        elapsed = time.monotonic() - started
    for target in targets:
        result = results[target.name]
        assert not isinstance(result, O11yError), result
        assert result.stdout.strip() == target.name
    assert isinstance(results["node-dead"], UnreachableError)
    assert "connection refused" in results["node-dead"].message
    assert elapsed < 1.5, f"5 x sleep 0.5 took {elapsed:.2f}s: not parallel"
    for server in servers:
        assert server.log().count("Accepted publickey") == 1


def test_pool_refuses_work_after_close(sshd: Sshd, lab_users: TestUsers, known_hosts: Path) -> None:
    write_known_hosts(known_hosts, sshd)
    pool = SshPool(_options(known_hosts))
    pool.close()
    with pytest.raises(RemoteError):
        pool.run(_target(sshd, lab_users.nopasswd), ["true"])


def test_lab_sshd_in_a_second_instance_reuses_host_keys(sshd: Sshd, lab_users: TestUsers, known_hosts: Path,
                                                        tmp_path: Path) -> None:
    twin = start_sshd(tmp_path / "twin", host_keys_from=sshd)
    try:
        write_known_hosts(known_hosts, twin)
        with SshPool(_options(known_hosts)) as pool:
            assert pool.run(_target(twin, lab_users.nopasswd), ["true"]).ok
    finally:
        twin.stop()
