"""`o11yctl verify` end to end against fake Loki, Tempo, Grafana and gateway servers.

Real Loki, Tempo and Grafana servers cannot run here, so the servers in
tests/lab/fake_observability.py stand in for them: real HTTP servers on loopback,
shaped after responses captured from Loki 3.3.0 and Tempo 2.9.0 and after Grafana's
HTTP API. The CLI runs in-process and unchanged; only its URLs point at the fakes.
Every fake fails closed: an unscripted request fails the test at teardown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.lab.fake_observability import (
    FakeGateway,
    FakeGrafana,
    FakeLoki,
    FakeServer,
    FakeTempo,
    Reply,
    datasources_from_values,
)
from typer.testing import CliRunner

from o11yctl.cli import app
from o11yctl.config import default_config
from o11yctl.stack.context import build_context
from o11yctl.stack.render import render_files

runner = CliRunner()
#: Checks that read the Kubernetes API: skipped here (no kubeconfig); see test_verify_cluster.py.
KUBE_CHECKS = {"alloy.pods", "alloy.push-errors", "grafana.httproute"}
HTTP_CHECKS = [
    "loki.ready", "loki.e2e", "loki.cluster-logs", "tempo.ready", "tempo.e2e", "tempo.search",
    "grafana.health", "grafana.datasources", "grafana.correlation", "grafana.route",
]


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    """The data sources our Grafana values provision, as Grafana's API shows them."""
    values = yaml.safe_load(render_files(build_context(default_config()))["04-grafana-values.yaml"])
    return datasources_from_values(values)


@dataclass
class Stack:
    loki: FakeLoki
    tempo: FakeTempo
    grafana: FakeGrafana
    gateway: FakeGateway
    config: Path

    @property
    def servers(self) -> tuple[FakeServer, ...]:
        return (self.loki, self.tempo, self.grafana, self.gateway)

    def args(self, *extra: str, timeout: float = 5.0) -> list[str]:
        return [
            "verify", "-c", str(self.config),
            "--loki-url", self.loki.url, "--tempo-url", self.tempo.url, "--otlp-url", self.tempo.otlp_url,
            "--grafana-url", self.grafana.url + "/grafana", "--timeout", str(timeout), *extra,
        ]


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    loki, tempo = FakeLoki().start(), FakeTempo().start()
    grafana = FakeGrafana(provisioned_datasources()).start()
    gateway = FakeGateway(grafana.url).start()
    loki.add_lines({"namespace": "logging", "pod": "alloy-x7k2p", "container": "alloy", "cluster": "homelab"},
                   ['level=info msg="finished node evaluation" controller_id=""'])
    config = tmp_path / "o11yctl.yaml"
    config.write_text(yaml.safe_dump({"route": {"url": gateway.url + "/grafana"}}))
    monkeypatch.setenv("O11YCTL_GRAFANA_TOKEN", grafana.token)
    s = Stack(loki, tempo, grafana, gateway, config)
    try:
        yield s
    finally:
        for server in s.servers:
            server.stop()
    for server in s.servers:
        server.assert_clean()


def run_json(args: list[str]) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, [*args, "--json"])
    try:
        doc = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"not JSON (exit {result.exit_code}): {result.output}")
    return result.exit_code, doc


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in doc["checks"]}


# --- the happy path ------------------------------------------------------------------------------


def test_everything_passes_and_kube_checks_say_why_they_are_skipped(stack: Stack) -> None:
    code, doc = run_json(stack.args("--skip", "cluster"))
    checks = by_id(doc)
    assert code == 0, doc
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["command"] == "verify"
    assert {i: c["status"] for i, c in checks.items() if i in HTTP_CHECKS} == dict.fromkeys(HTTP_CHECKS, "PASS")
    for check_id in KUBE_CHECKS:
        assert checks[check_id]["status"] == "SKIP"
        assert checks[check_id]["detail"].startswith("no cluster access: no kubeconfig at ")
        assert "--kubeconfig" in checks[check_id]["hint"]
    assert set(checks) == KUBE_CHECKS | set(HTTP_CHECKS)
    assert doc["items"] == doc["checks"]
    for c in doc["checks"]:
        assert set(c) == {"id", "group", "status", "detail", "hint", "seconds"}
        assert c["status"] in {"PASS", "WARN", "FAIL", "SKIP"}
        if c["status"] == "PASS":
            assert c["hint"] is None


def test_test_data_is_labelled(stack: Stack) -> None:
    code, _doc = run_json(stack.args("--only", "loki,tempo"))
    assert code == 0
    pushes = [r.json() for r in stack.loki.hits("POST", "/loki/api/v1/push")]
    assert len(pushes) == 1
    (stream,) = pushes[0]["streams"]
    assert stream["stream"] == {"job": "o11yctl-verify"}
    assert "o11yctl verify" in stream["values"][0][1]
    (export,) = [r.json() for r in stack.tempo.otlp.hits("POST", "/v1/traces")]
    (resource_spans,) = export["resourceSpans"]
    assert resource_spans["resource"]["attributes"] == [
        {"key": "service.name", "value": {"stringValue": "o11yctl-verify"}}
    ]
    (span,) = resource_spans["scopeSpans"][0]["spans"]
    assert {"key": "o11yctl.check", "value": {"stringValue": "verify"}} in span["attributes"]


def test_two_runs_use_one_stream_and_different_tokens(stack: Stack) -> None:
    for _ in range(2):
        assert run_json(stack.args("--only", "loki"))[0] == 0
    verify_streams = [k for k in stack.loki.streams if ("job", "o11yctl-verify") in k]
    assert len(verify_streams) == 1
    lines = [line for _ts, line, _at in stack.loki.streams[verify_streams[0]]]
    assert len(set(lines)) == 2


def test_only_loki_and_tempo_need_no_cluster_and_no_config_file(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, doc = run_json(["verify", "--only", "loki,tempo", "--loki-url", stack.loki.url,
                          "--tempo-url", stack.tempo.url, "--otlp-url", stack.tempo.otlp_url, "--timeout", "5"])
    assert code == 0
    assert [c["id"] for c in doc["checks"]] == HTTP_CHECKS[:6]
    assert not stack.grafana.requests and not stack.gateway.requests


def test_skip_leaves_groups_out_entirely(stack: Stack) -> None:
    code, doc = run_json(stack.args("--skip", "cluster", "--skip", "alloy,grafana"))
    assert code == 0
    assert {c["group"] for c in doc["checks"]} == {"loki", "tempo"}


def test_table_output_names_every_check_and_a_summary(stack: Stack) -> None:
    result = runner.invoke(app, stack.args("--only", "loki,tempo,grafana"))
    assert result.exit_code == 0, result.output
    for check_id in HTTP_CHECKS:
        assert check_id in result.stdout
    assert "10 passed, 1 skipped" in result.stdout


def test_json_carries_the_same_results_as_the_table(stack: Stack) -> None:
    stack.grafana.health["tempo"] = ("ERROR", "dial tcp 10.42.1.7:3200: i/o timeout")
    table = runner.invoke(app, stack.args("--only", "loki,tempo,grafana"))
    code, doc = run_json(stack.args("--only", "loki,tempo,grafana"))
    assert table.exit_code == code == 1
    rows = {}
    for line in table.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in {"PASS", "WARN", "FAIL", "SKIP"}:
            rows[parts[0]] = parts[1]
    assert rows == {c["id"]: c["status"] for c in doc["checks"]}


# --- Loki ----------------------------------------------------------------------------------------


def test_loki_warming_up_then_ready_within_the_deadline(stack: Stack) -> None:
    stack.loki.not_ready_for = 3
    code, doc = run_json(stack.args("--only", "loki"))
    ready = by_id(doc)["loki.ready"]
    assert code == 0
    assert ready["status"] == "PASS"
    assert "warming up" in ready["detail"] and "3 answers 503" in ready["detail"]
    assert len(stack.loki.hits("GET", "/ready")) == 4


def test_loki_still_warming_up_at_the_deadline(stack: Stack) -> None:
    stack.loki.not_ready_for = 10_000
    code, doc = run_json(stack.args("--only", "loki", timeout=2))
    ready = by_id(doc)["loki.ready"]
    assert code == 1
    assert ready["status"] == "FAIL"
    assert "still warming up" in ready["detail"]
    assert "Ingester not ready" in ready["detail"]
    assert "--timeout" in ready["hint"]
    assert by_id(doc)["loki.e2e"]["status"] == "PASS"


def test_loki_ready_failing_with_500_points_at_config_and_storage(stack: Stack) -> None:
    stack.loki.script("GET", "/ready", Reply(500, "internal server error\n"))
    code, doc = run_json(stack.args("--only", "loki"))
    ready = by_id(doc)["loki.ready"]
    assert code == 1 and ready["status"] == "FAIL"
    assert "HTTP 500" in ready["detail"]
    assert "storage is writable" in ready["hint"] and "app.kubernetes.io/name=loki" in ready["hint"]
    assert len(stack.loki.hits("GET", "/ready")) == 1


def test_loki_line_never_returned(stack: Stack) -> None:
    stack.loki.drop_pushes = True
    code, doc = run_json(stack.args("--only", "loki", timeout=2))
    e2e = by_id(doc)["loki.e2e"]
    assert code == 1 and e2e["status"] == "FAIL"
    assert "not returned by query_range" in e2e["detail"]
    assert "storage is writable" in e2e["hint"]
    assert len(stack.loki.hits("GET", "/loki/api/v1/query_range")) > 2


def test_loki_line_found_after_an_ingest_delay(stack: Stack) -> None:
    stack.loki.ingest_delay = 1.0
    code, doc = run_json(stack.args("--only", "loki"))
    assert code == 0
    assert by_id(doc)["loki.e2e"]["status"] == "PASS"


def test_loki_push_refused_for_an_old_timestamp_points_at_the_clock(stack: Stack) -> None:
    stack.loki.script("POST", "/loki/api/v1/push", Reply(
        400, "entry for stream '{job=\"o11yctl-verify\"}' has timestamp too old: 2001-09-09T01:46:40Z, "
             "oldest acceptable timestamp is: 2026-11-19T10:01:53Z"))
    code, doc = run_json(stack.args("--only", "loki"))
    e2e = by_id(doc)["loki.e2e"]
    assert code == 1 and e2e["status"] == "FAIL"
    assert "push refused: HTTP 400" in e2e["detail"]
    assert "clock" in e2e["hint"]


def test_no_cluster_logs_points_at_alloy_and_fix_vxlan(stack: Stack) -> None:
    stack.loki.streams.clear()
    code, doc = run_json(stack.args("--only", "loki"))
    logs = by_id(doc)["loki.cluster-logs"]
    assert code == 1 and logs["status"] == "FAIL"
    assert '{namespace="logging"}' in logs["detail"]
    assert "alloy" in logs["hint"] and "o11yctl fix-vxlan" in logs["hint"] and "8472" in logs["hint"]
    assert by_id(doc)["loki.e2e"]["status"] == "PASS"


def test_old_cluster_logs_do_not_count(stack: Stack) -> None:
    stack.loki.streams.clear()
    stack.loki.add_lines({"namespace": "logging", "pod": "loki-0"}, ["old line"], age=20 * 60)
    _code, doc = run_json(stack.args("--only", "loki"))
    assert by_id(doc)["loki.cluster-logs"]["status"] == "FAIL"


# --- Tempo ---------------------------------------------------------------------------------------


def test_tempo_trace_404_until_ingested_then_found(stack: Stack) -> None:
    stack.tempo.ingest_delay = 1.0
    code, doc = run_json(stack.args("--only", "tempo"))
    assert code == 0
    assert by_id(doc)["tempo.e2e"]["status"] == "PASS"
    assert len(stack.tempo.hits("GET", "/api/traces/[0-9a-f]{32}")) >= 2


def test_tempo_trace_never_ingested(stack: Stack) -> None:
    stack.tempo.ingest_delay = 10_000
    code, doc = run_json(stack.args("--only", "tempo", timeout=2))
    e2e = by_id(doc)["tempo.e2e"]
    assert code == 1 and e2e["status"] == "FAIL"
    assert "still not found" in e2e["detail"]
    assert "tempo-0" in e2e["hint"]


def test_tempo_otlp_503_while_starting_is_retried(stack: Stack) -> None:
    stack.tempo.otlp.script("POST", "/v1/traces", Reply(503, {"code": 14, "message": "DoBatch: InstancesCount <= 0"}))
    code, doc = run_json(stack.args("--only", "tempo"))
    assert code == 0 and by_id(doc)["tempo.e2e"]["status"] == "PASS"
    assert len(stack.tempo.otlp.hits("POST", "/v1/traces")) == 2


def test_tempo_otlp_receiver_unreachable(stack: Stack) -> None:
    closed = FakeServer().start()
    closed_url = closed.url
    closed.stop()
    args = stack.args("--only", "tempo")
    args[args.index("--otlp-url") + 1] = closed_url
    code, doc = run_json(args)
    checks = by_id(doc)
    assert code == 1
    assert checks["tempo.e2e"]["status"] == "FAIL"
    assert "OTLP/HTTP" in checks["tempo.e2e"]["detail"] and "cannot connect" in checks["tempo.e2e"]["detail"]
    assert "4318" in checks["tempo.e2e"]["hint"]
    assert checks["tempo.ready"]["status"] == checks["tempo.search"]["status"] == "PASS"


def test_tempo_search_error(stack: Stack) -> None:
    stack.tempo.script("GET", "/api/search", Reply(500, "rpc error: code = Unavailable desc = no healthy queriers"))
    code, doc = run_json(stack.args("--only", "tempo"))
    search = by_id(doc)["tempo.search"]
    assert code == 1 and search["status"] == "FAIL"
    assert "HTTP 500" in search["detail"] and "tempo-0" in search["hint"]


def test_otlp_url_defaults_to_the_tempo_host_on_4318(stack: Stack) -> None:
    from o11yctl.verify.run import otlp_url_for

    assert otlp_url_for(stack.tempo.url) == "http://127.0.0.1:4318"
    assert otlp_url_for("https://[::1]:3200/x") == "https://[::1]:4318"


# --- Grafana -------------------------------------------------------------------------------------


def test_grafana_datasource_health_failing(stack: Stack) -> None:
    stack.grafana.health["tempo"] = ("ERROR", 'Get "http://tempo.logging.svc.cluster.local:3200": i/o timeout')
    code, doc = run_json(stack.args("--only", "grafana"))
    checks = by_id(doc)
    assert code == 1
    ds = checks["grafana.datasources"]
    assert ds["status"] == "FAIL"
    assert "Tempo (tempo)" in ds["detail"] and "i/o timeout" in ds["detail"]
    assert "fix-vxlan" in ds["hint"]
    assert checks["grafana.correlation"]["status"] == "PASS"
    assert checks["grafana.health"]["status"] == "PASS"


def test_grafana_datasource_missing(stack: Stack) -> None:
    del stack.grafana.datasources["tempo"]
    code, doc = run_json(stack.args("--only", "grafana"))
    checks = by_id(doc)
    assert code == 1
    assert checks["grafana.datasources"]["status"] == "FAIL"
    assert "no Tempo data source with uid 'tempo'" in checks["grafana.datasources"]["detail"]
    assert "o11yctl install --only grafana" in checks["grafana.datasources"]["hint"]
    assert checks["grafana.correlation"]["status"] == "FAIL"


def test_grafana_trace_to_logs_pointing_elsewhere(stack: Stack) -> None:
    stack.grafana.datasources["tempo"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] = "elasticsearch"
    code, doc = run_json(stack.args("--only", "grafana"))
    corr = by_id(doc)["grafana.correlation"]
    assert code == 1 and corr["status"] == "FAIL"
    assert "tracesToLogsV2" in corr["detail"] and "'elasticsearch'" in corr["detail"]
    assert "o11yctl install --only grafana" in corr["hint"]


def test_grafana_logs_to_trace_missing(stack: Stack) -> None:
    stack.grafana.datasources["loki"]["jsonData"].pop("derivedFields")
    _code, doc = run_json(stack.args("--only", "grafana"))
    corr = by_id(doc)["grafana.correlation"]
    assert corr["status"] == "FAIL" and "derivedFields" in corr["detail"]


def test_grafana_without_a_token_skips_what_needs_it(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("O11YCTL_GRAFANA_TOKEN")
    code, doc = run_json(stack.args("--only", "grafana"))
    checks = by_id(doc)
    assert code == 0
    for check_id in ("grafana.datasources", "grafana.correlation"):
        assert checks[check_id]["status"] == "SKIP"
        assert "O11YCTL_GRAFANA_TOKEN" in checks[check_id]["hint"]
    assert checks["grafana.health"]["status"] == "PASS"
    assert not stack.grafana.hits("GET", ".*/datasources/.*")


def test_grafana_rejects_a_wrong_token(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O11YCTL_GRAFANA_TOKEN", "glsa_wrong")
    code, doc = run_json(stack.args("--only", "grafana"))
    ds = by_id(doc)["grafana.datasources"]
    assert code == 1 and ds["status"] == "FAIL"
    assert "HTTP 401" in ds["detail"] and "O11YCTL_GRAFANA_TOKEN" in ds["hint"]
    assert "glsa_wrong" not in json.dumps(doc)


def test_the_token_is_sent_as_bearer_and_never_printed(stack: Stack) -> None:
    result = runner.invoke(app, stack.args("--only", "grafana"))
    code, doc = run_json(stack.args("--only", "grafana"))
    assert result.exit_code == code == 0
    assert stack.grafana.token not in result.output and stack.grafana.token not in json.dumps(doc)
    (first, *_rest) = stack.grafana.hits("GET", "/grafana/api/datasources/uid/loki")
    assert first.headers["authorization"] == f"Bearer {stack.grafana.token}"
    assert "authorization" not in stack.grafana.hits("GET", ".*/api/health")[0].headers


def test_grafana_database_failing(stack: Stack) -> None:
    stack.grafana.database_failing = True
    code, doc = run_json(stack.args("--only", "grafana"))
    health = by_id(doc)["grafana.health"]
    assert code == 1 and health["status"] == "FAIL"
    assert "database failing" in health["detail"]
    assert "app.kubernetes.io/name=grafana" in health["hint"]


def test_grafana_url_without_its_sub_path(stack: Stack) -> None:
    args = stack.args("--only", "grafana")
    args[args.index("--grafana-url") + 1] = stack.grafana.url
    _code, doc = run_json(args)
    ds = by_id(doc)["grafana.datasources"]
    assert ds["status"] == "FAIL" and "sub path" in ds["hint"]
    assert {r.path for r in stack.grafana.unexpected} == {"/api/datasources/uid/loki", "/api/datasources/uid/tempo"}
    stack.grafana.unexpected.clear()


def test_route_with_no_healthy_upstream(stack: Stack) -> None:
    stack.gateway.backend_down = True
    code, doc = run_json(stack.args("--only", "grafana"))
    checks = by_id(doc)
    assert code == 1
    assert checks["grafana.route"]["status"] == "FAIL"
    assert "HTTP 503" in checks["grafana.route"]["detail"]
    assert "kubectl get httproute -n logging grafana" in checks["grafana.route"]["hint"]
    assert checks["grafana.health"]["status"] == "PASS"


def test_route_with_no_matching_route(stack: Stack, tmp_path: Path) -> None:
    stack.config.write_text(yaml.safe_dump({"route": {"url": stack.gateway.url + "/grafana-typo"}}))
    _code, doc = run_json(stack.args("--only", "grafana"))
    route = by_id(doc)["grafana.route"]
    assert route["status"] == "FAIL" and "HTTP 404" in route["detail"]
    assert len(stack.gateway.unexpected) == 1
    stack.gateway.unexpected.clear()


# --- time, hangs, unreachable endpoints, exit codes -----------------------------------------------


def test_a_hung_endpoint_times_out_without_stalling_the_others(stack: Stack) -> None:
    stack.tempo.hang("GET", "/api/search")
    started = time.monotonic()
    code, doc = run_json(stack.args("--only", "loki,tempo,grafana", timeout=3))
    elapsed = time.monotonic() - started
    checks = by_id(doc)
    assert code == 1
    search = checks["tempo.search"]
    assert search["status"] == "FAIL" and "no answer within" in search["detail"]
    assert 1.5 <= search["seconds"] <= 3.5
    others = [c for i, c in checks.items() if i not in ("tempo.search", "grafana.httproute")]
    assert all(c["status"] == "PASS" for c in others), others
    assert max(c["seconds"] for c in others) < 1.5
    assert elapsed < 4.5


def test_unreachable_endpoints_fail_their_checks_without_a_crash(stack: Stack) -> None:
    closed = FakeServer().start()
    url = closed.url
    closed.stop()
    code, doc = run_json(["verify", "-c", str(stack.config), "--only", "loki,tempo,grafana", "--loki-url", url,
                          "--tempo-url", url, "--otlp-url", url, "--grafana-url", url, "--timeout", "5"])
    checks = by_id(doc)
    assert code == 1 and doc["error"] is None
    assert all(checks[i]["status"] == "FAIL" for i in HTTP_CHECKS if i != "grafana.route")
    assert "cannot connect" in checks["loki.ready"]["detail"]
    assert checks["grafana.route"]["status"] == "PASS"


def test_every_selected_check_skipped_exits_3(stack: Stack) -> None:
    code, doc = run_json(["verify", "-c", str(stack.config), "--only", "alloy"])
    assert code == 3 and doc["ok"] is False
    assert {c["status"] for c in doc["checks"]} == {"SKIP"}


@pytest.mark.parametrize("args, message", [
    (["--only", "logs"], "--only: unknown name 'logs'"),
    (["--only", "loki", "--skip", "loki"], "loki given to both --only and --skip"),
    (["--loki-url", "ftp://127.0.0.1"], "--loki-url: expected an http:// or https:// URL"),
    (["--tempo-url", "http://127.0.0.1:3200/?x=1"], "--tempo-url: expected a base URL"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["verify", *args])
    assert result.exit_code == 2
    assert message in result.output
