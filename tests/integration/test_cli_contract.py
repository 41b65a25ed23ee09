"""How every subcommand ends, driven through real ``o11yctl`` processes.

One table: each subcommand with a usage error, a configuration error, a cluster and nodes
that do not answer, an output path it cannot write, and a real SIGINT at several moments
(right after start, and while it waits on a peer), each with and without ``--json``. Every
case asserts the exit code of the README's table, one ``error:`` line and one ``hint:``
line on stderr (or, with ``--json``, exactly one JSON envelope on stdout carrying both),
and no traceback.

Nothing of o11yctl is replaced. The "cluster" and the "nodes" are ports on 127.0.0.1:
either closed (connection refused, the fast way to be unreachable) or held by a listener
that accepts and never answers (a hung peer, so that a command is interrupted mid-wait).
``status --watch`` is interrupted while it polls the fake API server of
:mod:`tests.lab.fake_kube` (a loopback HTTP server speaking the Kubernetes API, since no
control plane runs here).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tests.lab.fake_kube import KubeLab
from tests.lab.sshd import free_port

_SCRIPT = Path(sys.executable).with_name("o11yctl")
#: The console script users run (``python -m o11yctl`` where it is not installed next to Python).
O11YCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "o11yctl"]


# --- the world: closed and hung ports on 127.0.0.1 ------------------------------------------------


@dataclass
class World:
    tmp: Path
    env: dict[str, str]
    closed_cfg: Path      # node SSH, API server and route on closed ports
    hung_cfg: Path        # node SSH and route held by a silent listener
    closed_kube: Path
    hung_kube: Path
    bad_cfg: Path
    a_file: Path          # an existing regular file, to name where a directory is needed


def _config(path: Path, ssh_port: int, route_port: int, known_hosts: Path) -> Path:
    doc = {
        "nodes": [{"name": "node-1", "address": "127.0.0.1", "role": "server", "ssh_port": ssh_port,
                   "labels": {"hardware": "heavy"}}],
        "storage": {"node": "node-1"},
        "components": {"grafana": {"node": "node-1"}},
        "ssh": {"known_hosts": str(known_hosts), "connect_timeout": 30},
        "route": {"url": f"http://127.0.0.1:{route_port}/grafana"},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _kubeconfig(path: Path, port: int) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "lab",
           "clusters": [{"name": "lab", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                    "insecure-skip-tls-verify": True}}],
           "users": [{"name": "lab", "user": {"token": "not-a-secret"}}],
           "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}]}
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def silent_listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that completes handshakes and then says nothing, ever."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, silent_listener: int) -> World:
    tmp = tmp_path_factory.mktemp("contract")
    home = tmp / "home"
    home.mkdir()
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text("")
    bad = tmp / "bad.yaml"
    bad.write_text("cluster:\n  name: lab\n  nam: typo\n")
    a_file = tmp / "a-file"
    a_file.write_text("not a directory\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("O11YCTL_", "KUBE"))}
    env.update(HOME=str(home), NO_COLOR="1", COLUMNS="100", PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    return World(
        tmp=tmp, env=env,
        closed_cfg=_config(tmp / "closed.yaml", free_port(), free_port(), known_hosts),
        hung_cfg=_config(tmp / "hung.yaml", silent_listener, silent_listener, known_hosts),
        closed_kube=_kubeconfig(tmp / "closed-kube", free_port()),
        hung_kube=_kubeconfig(tmp / "hung-kube", silent_listener),
        bad_cfg=bad, a_file=a_file,
    )


# --- the table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]                      # a run that would do the command's job
    reads_config: bool = True
    reaches: bool = True                       # contacts the cluster or the nodes
    unwritable: tuple[str, ...] | None = None  # a run naming a path it cannot write ({file} = a regular file)
    interrupt_at: tuple[float, ...] = (0.05, 1.5)  # seconds after start; later ones hit the wait on a hung peer


COMMANDS = [
    Command("init", ("init", "{tmp}/fresh-{case}.yaml"), reads_config=False, reaches=False,
            unwritable=("init", "{file}/o11yctl.yaml"), interrupt_at=(0.05, 0.12)),
    Command("render", ("render", "--out", "{tmp}/out-{case}"), reaches=False,
            unwritable=("render", "--out", "{file}"), interrupt_at=(0.05, 0.12)),
    Command("install", ("install",)),
    Command("uninstall", ("uninstall", "--yes")),
    Command("upgrade", ("upgrade", "--to", "current", "--yes")),
    Command("move-data", ("move-data", "--yes")),
    Command("verify", ("verify", "--timeout", "60")),
    Command("fix-vxlan", ("fix-vxlan", "--check")),
    Command("status", ("status",)),
    Command("doctor", ("doctor",), unwritable=("doctor", "--bundle", "{file}/support.tar.gz")),
]


def _cases() -> Iterator[object]:
    for cmd in COMMANDS:
        kinds = ["usage"]
        kinds += ["config"] if cmd.reads_config else []
        kinds += ["unreachable"] if cmd.reaches else []
        kinds += ["unwritable"] if cmd.unwritable else []
        kinds += [f"interrupt@{at}" for at in cmd.interrupt_at]
        for kind in kinds:
            for json_flag in (False, True):
                yield pytest.param(cmd, kind, json_flag, id=f"{cmd.name}-{kind}{'-json' if json_flag else ''}")


EXPECTED = {"usage": 2, "config": 2, "unreachable": 3, "unwritable": 2, "interrupt": 130}


@dataclass
class Ended:
    code: int
    stdout: str
    stderr: str


def _argv(world: World, cmd: Command, kind: str, case: str) -> tuple[list[str], dict[str, str]]:
    env = dict(world.env)
    fill = {"tmp": str(world.tmp), "file": str(world.a_file), "case": case}
    args = [a.format(**fill) for a in cmd.args]
    config = world.closed_cfg
    env["KUBECONFIG"] = str(world.closed_kube)
    if kind == "usage":
        args.append("--no-such-flag")
    elif kind == "config":
        config = world.bad_cfg
    elif kind == "unwritable":
        args = [a.format(**fill) for a in cmd.unwritable or ()]
    elif kind.startswith("interrupt"):
        config = world.hung_cfg
        env["KUBECONFIG"] = str(world.hung_kube)
    if cmd.reads_config:
        args += ["--config", str(config)]
    return args, env


def _run(argv: list[str], env: dict[str, str], interrupt_at: float | None) -> Ended:
    proc = subprocess.Popen([*O11YCTL, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    if interrupt_at is not None:
        time.sleep(interrupt_at)
        # The moment must be real: a process that already ended was not interrupted.
        assert proc.poll() is None, f"{argv[0]} ended before {interrupt_at}s; the interrupt would prove nothing"
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"o11yctl {' '.join(argv)} did not end within 60s\nstdout: {out}\nstderr: {err}")
    return Ended(proc.returncode, out, err)


@pytest.mark.parametrize(("cmd", "kind", "json_flag"), list(_cases()))
def test_every_ending(world: World, cmd: Command, kind: str, json_flag: bool) -> None:
    case = f"{kind}-{int(json_flag)}"
    argv, env = _argv(world, cmd, kind, case)
    if json_flag:
        argv.append("--json")
    at = float(kind.split("@")[1]) if "@" in kind else None
    ended = _run(argv, env, at)
    expected = EXPECTED[kind.split("@")[0]]
    said = (f"o11yctl {' '.join(argv)}\nexit {ended.code}\n"
            f"stdout: {ended.stdout[-2000:]}\nstderr: {ended.stderr[-2000:]}")

    assert ended.code == expected, said
    assert "Traceback" not in ended.stderr + ended.stdout, said
    if json_flag:
        doc = json.loads(ended.stdout)  # exactly one document: anything else makes this raise
        assert isinstance(doc, dict), said
        assert doc["command"] == cmd.name and doc["exit_code"] == expected and doc["ok"] is False, said
        assert doc["error"]["message"] and doc["error"]["hint"], said
        if kind.startswith("interrupt"):
            assert doc["error"]["message"] == "interrupted", said
    else:
        errors = [line for line in ended.stderr.splitlines() if line.startswith("error: ")]
        hints = [line for line in ended.stderr.splitlines() if line.startswith("hint: ")]
        assert len(errors) == 1 and len(hints) == 1, said
        if kind.startswith("interrupt"):
            assert errors == ["error: interrupted"], said
        if kind == "unwritable":
            assert str(world.a_file) in errors[0], said  # the path the user gave, and the reason
        if kind == "config":
            assert "cluster.nam" in errors[0] and "bad.yaml:3" in errors[0], said


# --- status --watch: JSON Lines, and Ctrl-C is exit 130 ---------------------------------------------


def _lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    assert proc.stdout is not None
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            got.append(line)
    return got


@pytest.mark.parametrize("json_flag", [False, True], ids=["text", "json"])
def test_status_watch_ends_with_130_and_json_lines(world: World, kube_cluster: KubeLab, json_flag: bool) -> None:
    lab = kube_cluster
    argv = ["status", "--watch", "--interval", "1", "--config", str(world.closed_cfg)]
    argv += ["--json"] if json_flag else []
    env = {**world.env, "KUBECONFIG": str(lab.kubeconfig), "PATH": "/nonexistent"}  # no helm: releases unread
    proc = subprocess.Popen([*O11YCTL, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, bufsize=1)
    first = _lines(proc, 2, timeout=30)
    assert proc.poll() is None and len(first) == 2, first
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    if json_flag:
        docs = [json.loads(line) for line in first + rest.splitlines(keepends=True)]  # JSON Lines: each line one doc
        assert all(d["command"] == "status" for d in docs)
        assert docs[-1]["exit_code"] == 130 and docs[-1]["error"]["message"] == "interrupted"
        assert all(d["error"] is None for d in docs[:-1])
    else:
        assert [line for line in err.splitlines() if line.startswith("error: ")] == ["error: interrupted"]
