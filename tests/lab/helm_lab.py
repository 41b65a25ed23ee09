"""The real Helm 3 and Helm 4 binaries, a chart repository on 127.0.0.1, and helm's own release records.

- :func:`helm_binary` finds ``helm`` v3 or v4: ``$O11YCTL_HELM3``/``$O11YCTL_HELM4``, else
  ``.cache/helm/v3/helm`` and ``.cache/helm/v4/helm`` under the repository root (where
  ``python scripts/get_helm.py`` puts them). Missing binaries skip the test on a laptop
  and fail it under ``CI=true``.
- :class:`ChartRepo` builds small charts with ``helm package`` and indexes them with
  ``helm repo index``, then serves the directory over HTTP on 127.0.0.1 (stdlib
  ``http.server``), as a chart repository is served.
- :func:`release_secret` is a release as helm stores it in the cluster (a Secret of type
  ``helm.sh/release.v1``: base64 of gzipped JSON), so real helm can read releases from the
  fake API server (:mod:`tests.lab.fake_kube`): ``list``, ``status``, ``get values``,
  ``history`` and ``uninstall`` work; writing releases does not (it needs protobuf).
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.lab.ci import skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS = {3: "v3.17.2", 4: "v4.1.4"}


def helm_binary(major: int) -> str:
    """The path of the real Helm ``major`` binary (3 or 4), or skip/fail the test."""
    path = os.environ.get(f"O11YCTL_HELM{major}") or str(REPO_ROOT / ".cache" / "helm" / f"v{major}" / "helm")
    if not os.access(path, os.X_OK):
        skip_or_fail(f"Helm {major} not found at {path}: run `python scripts/get_helm.py .cache/helm` "
                     f"or set O11YCTL_HELM{major}")
    return path


def helm_env(root: Path) -> dict[str, str]:
    """Private helm cache/config/data directories, so a test never reads or writes the user's."""
    return {"HELM_CACHE_HOME": str(root / "cache"), "HELM_CONFIG_HOME": str(root / "config"),
            "HELM_DATA_HOME": str(root / "data")}


def write_chart(root: Path, name: str, version: str, *, app_version: str = "1.0.0") -> Path:
    """A small chart: one ConfigMap holding the values it was given (so a test sees them)."""
    chart = root / f"{name}-{version}" / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v2", "name": name, "version": version, "appVersion": app_version, "type": "application"}))
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "values.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-values\n"
        "  namespace: {{ .Release.Namespace }}\ndata:\n  chart: {{ .Chart.Version | quote }}\n"
        "  values.json: {{ .Values | toJson | quote }}\n")
    return chart


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class ChartRepo:
    """A chart repository served from ``directory`` at :attr:`url`."""

    directory: Path
    url: str
    server: ThreadingHTTPServer

    @classmethod
    def start(cls, directory: Path, helm: str, charts: list[tuple[str, str]], env: dict[str, str]) -> ChartRepo:
        """Package ``charts`` ((name, version) pairs) into ``directory``, index them and serve it."""
        directory.mkdir(parents=True, exist_ok=True)
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        sources = directory.parent / "chart-sources"
        for name, version in charts:
            chart = write_chart(sources, name, version)
            _run([helm, "package", str(chart), "--destination", str(directory)], env)
        _run([helm, "repo", "index", str(directory), "--url", url], env)
        return cls(directory, url, server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _run(argv: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert proc.returncode == 0, f"{argv} failed: {proc.stderr}"
    return proc.stdout


def release_secret(name: str, namespace: str, revision: int, status: str, chart: str, version: str,
                   values: dict[str, Any] | None = None, *, description: str = "Install complete") -> dict[str, Any]:
    """A release record the way helm keeps it: Secret ``sh.helm.release.v1.<name>.v<revision>``."""
    release = {
        "name": name, "namespace": namespace, "version": revision, "manifest": "", "config": values or {},
        "info": {"first_deployed": "2025-01-01T10:00:00Z", "last_deployed": "2025-01-01T10:00:00Z", "deleted": "",
                 "description": description, "status": status},
        "chart": {"metadata": {"name": chart, "version": version, "appVersion": "1.0.0", "apiVersion": "v2"},
                  "lock": None, "templates": [], "values": {}, "schema": None, "files": []},
    }
    encoded = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": namespace,
                     "labels": {"name": name, "owner": "helm", "status": status, "version": str(revision)}},
        "data": {"release": base64.b64encode(encoded.encode()).decode()},
    }
