"""pytest fixtures over :mod:`tests.lab.fake_kube`: a fake Kubernetes API per test.

Registered for the whole suite from ``tests/conftest.py``. ``fake_kube`` starts an
empty API server on 127.0.0.1 and writes a kubeconfig for it; ``kube_cluster`` is
the same server seeded like the runbook's cluster (two nodes, the storage node
labelled and tainted, the Gateway API CRDs and Gateway ``default/eg``). Both
check at teardown that no unimplemented request came in and that every
scripted failure happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.fake_kube import KubeLab, running


@pytest.fixture
def fake_kube(tmp_path: Path) -> Iterator[KubeLab]:
    """An empty fake API server and a kubeconfig (context ``fake``) pointing at it."""
    yield from running(tmp_path / "fake-kube")


@pytest.fixture
def kube_cluster(fake_kube: KubeLab) -> KubeLab:
    """The fake API seeded like the runbook's cluster: node-1, node-2 (hardware=heavy, heavy=true:NoSchedule),
    the Gateway API CRDs and Gateway default/eg with an HTTP listener admitting all namespaces."""
    fake_kube.api.seed_runbook_cluster()
    return fake_kube
