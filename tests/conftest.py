"""Shared fixtures: a clean environment for every test, and the default render context."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Lab fixtures (real servers) available to every test: sshd, sshd_farm, lab_users, fake_kube, kube_cluster.
pytest_plugins = ["tests.lab.sshd_fixtures", "tests.lab.kube_fixtures"]


@pytest.fixture(autouse=True)
def _clean_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith("O11YCTL_") and key not in {"O11YCTL_CHART_DIR", "O11YCTL_HELM", "O11YCTL_HELM3",
                                                      "O11YCTL_HELM4"}:
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(home / "kubeconfig"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    yield


@pytest.fixture
def context() -> dict[str, Any]:
    """The template context for the built-in default configuration (the runbook's cluster)."""
    from o11yctl.config import default_config
    from o11yctl.stack.context import build_context

    return build_context(default_config())


@pytest.fixture
def rendered(context: dict[str, Any]) -> dict[str, list[Any]]:
    """Every rendered file of the default configuration, parsed: file name -> YAML documents."""
    import yaml

    from o11yctl.stack.render import render_files

    return {name: [d for d in yaml.safe_load_all(text) if d is not None]
            for name, text in render_files(context).items()}


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
