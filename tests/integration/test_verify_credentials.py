"""Grafana's credentials never cross the network in clear text.

A fake Grafana (tests/lab/fake_observability.py: Grafana's HTTP API shaped after its
documented answers; no Grafana server runs here) listens on another host's address,
198.18.1.2 in a network namespace of its own (tests/lab/netns.py), and records every
request's headers. The real ``o11yctl verify`` runs in a second namespace wired to it,
with a fake Kubernetes API on its loopback (tests/lab/fake_kube.py) holding the chart's
admin Secret. Over plain HTTP to that address neither the admin password nor a token
may arrive; the token does with --allow-http-token, the password never; to a loopback
address both may (covered by tests/integration/test_verify.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.lab.ci import skip_or_fail
from tests.lab.fake_kube import FakeKube
from tests.lab.fake_observability import FakeGrafana, datasources_from_values
from tests.lab.netns import Wire, unavailable_reason, wire

from o11yctl.config import parse_config
from o11yctl.stack.context import build_context
from o11yctl.stack.render import render_files

pytestmark = pytest.mark.root
NS = "logging"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Wire, FakeGrafana, FakeKube, Path, Path]]:
    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    values = yaml.safe_load(render_files(build_context(parse_config("")))["04-grafana-values.yaml"])
    with wire() as net:
        grafana = FakeGrafana(datasources_from_values(values))
        grafana.host = net.server_address
        with net.inside("server"):
            grafana.start()
        api = FakeKube()
        with net.inside("client"):
            api.start()
        try:
            user, password = grafana.admin
            api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            api.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "grafana", "namespace": NS},
                      "type": "Opaque", "data": {"admin-user": base64.b64encode(user.encode()).decode(),
                                                 "admin-password": base64.b64encode(password.encode()).decode()}})
            kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
            config = tmp_path / "o11yctl.yaml"
            config.write_text(f"route:\n  url: {grafana.url}/grafana\n")
            yield net, grafana, api, kubeconfig, config
        finally:
            grafana.stop()
            api.stop()


def _verify(net: Wire, kubeconfig: Path, config: Path, grafana: FakeGrafana, *extra: str,
            env: dict[str, str] | None = None) -> tuple[int, dict[str, dict[str, Any]]]:
    done = net.o11yctl(["verify", "-c", str(config), "--only", "grafana", "--grafana-url", f"{grafana.url}/grafana",
                        "--kubeconfig", str(kubeconfig), "--timeout", "20", "--json", *extra], env=env)
    doc = json.loads(done.stdout)
    return done.returncode, {c["id"]: c for c in doc["checks"]}


def _credentials_seen(grafana: FakeGrafana) -> list[str]:
    return [r.headers["authorization"] for r in grafana.requests if "authorization" in r.headers]


def test_the_admin_password_never_goes_over_plain_http(lab: tuple[Wire, FakeGrafana, FakeKube, Path, Path]) -> None:
    net, grafana, api, kubeconfig, config = lab
    _code, checks = _verify(net, kubeconfig, config, grafana)
    assert grafana.hits("GET", "/grafana/api/health"), "Grafana itself was reached"
    assert _credentials_seen(grafana) == []
    for check in ("grafana.datasources", "grafana.correlation"):
        assert checks[check]["status"] == "SKIP"
        assert "not sending Grafana's admin password in clear text" in checks[check]["detail"]
        assert "kubectl port-forward -n logging svc/grafana 3000:80" in checks[check]["hint"]
    assert not [p for _m, p, _q in api.requests if "/secrets/" in p], "the Secret is not even read"
    _code, checks = _verify(net, kubeconfig, config, grafana, "--allow-http-token")
    assert _credentials_seen(grafana) == [], "--allow-http-token is about a token, never the admin password"


def test_a_token_goes_over_plain_http_only_when_asked(lab: tuple[Wire, FakeGrafana, FakeKube, Path, Path]) -> None:
    net, grafana, _api, kubeconfig, config = lab
    env = {"O11YCTL_GRAFANA_TOKEN": grafana.token}
    _code, checks = _verify(net, kubeconfig, config, grafana, env=env)
    assert _credentials_seen(grafana) == []
    assert checks["grafana.datasources"]["status"] == "SKIP"
    assert "not sending the O11YCTL_GRAFANA_TOKEN token in clear text" in checks["grafana.datasources"]["detail"]
    assert "--allow-http-token" in checks["grafana.datasources"]["hint"]

    _code, checks = _verify(net, kubeconfig, config, grafana, "--allow-http-token", env=env)
    assert checks["grafana.datasources"]["status"] == "PASS", checks["grafana.datasources"]
    assert set(_credentials_seen(grafana)) == {f"Bearer {grafana.token}"}
