"""Skip on a laptop, fail in CI: a lab test that cannot run under ``CI=true`` is a failure."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when ``CI`` is set to a true value (``true``, ``1``, ``yes``), as CI services do."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it when running in CI.

    Args:
        reason: what is missing, and how to provide it.
    """
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a lab test must not be skipped)", pytrace=False)
    pytest.skip(reason)
