"""pytest fixtures over :mod:`tests.lab.sshd`: a real sshd per test, or a farm of them.

Registered for the whole suite from ``tests/conftest.py``. Without root (or without
openssh-server and sudo) the tests that use them skip, and fail under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.ci import skip_or_fail
from tests.lab.sshd import LabUnavailable, Sshd, TestUsers, ensure_test_users, lab_unavailable_reason, start_sshd

#: Starts ``n`` servers with the same keyword arguments as :func:`tests.lab.sshd.start_sshd`.
SshdFarm = Callable[..., list[Sshd]]


@pytest.fixture(scope="session")
def lab_users() -> TestUsers:
    """The two lab users (created once per machine, reused afterwards)."""
    reason = lab_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    try:
        return ensure_test_users()
    except LabUnavailable as exc:
        skip_or_fail(str(exc))


@pytest.fixture
def sshd(lab_users: TestUsers, tmp_path: Path) -> Iterator[Sshd]:
    """One sshd on 127.0.0.1 at a free port with an ed25519 host key; stopped after the test."""
    server = start_sshd(tmp_path / "sshd")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sshd_farm(lab_users: TestUsers, tmp_path: Path) -> Iterator[SshdFarm]:
    """A factory: ``sshd_farm(n, **start_sshd_kwargs)`` starts ``n`` servers; all stop after the test."""
    started: list[Sshd] = []

    def start(n: int, **kwargs: Any) -> list[Sshd]:
        servers = []
        for _ in range(n):
            server = start_sshd(tmp_path / f"sshd-{len(started)}", **kwargs)
            started.append(server)
            servers.append(server)
        return servers

    try:
        yield start
    finally:
        for server in started:
            server.stop()
