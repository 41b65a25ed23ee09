"""Crash logs: written privately, and only the newest few kept."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from o11yctl.errors import CRASH_LOGS_KEPT, write_crash_log


def test_a_crash_log_is_private_and_old_ones_are_removed(tmp_path: Path) -> None:
    old = []
    for n in range(8):
        path = tmp_path / f"o11yctl-crash-old{n}.log"
        path.write_text("old")
        stamp = time.time() - 1000 + n
        os.utime(path, (stamp, stamp))
        old.append(path)
    unrelated = tmp_path / "something-else.log"
    unrelated.write_text("keep me")
    log = write_crash_log("Traceback ...", directory=str(tmp_path))
    assert log is not None and log.read_text() == "Traceback ..."
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    left = sorted(tmp_path.glob("o11yctl-crash-*.log"))
    assert len(left) == CRASH_LOGS_KEPT and log in left
    assert set(left) - {log} == set(old[-(CRASH_LOGS_KEPT - 1):]), "the newest old ones stay"
    assert unrelated.exists()


def test_an_unwritable_directory_gives_no_log_and_no_error(tmp_path: Path) -> None:
    assert write_crash_log("x", directory=str(tmp_path / "missing")) is None
