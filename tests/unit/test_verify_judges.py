"""`verify`'s pure parts: judges over facts, the runner's deadline and skips, URLs and exit codes.

Facts are built by hand here, in the shapes real Loki 3.3 and Tempo 2.9 answered with
when their responses were captured, and in the Kubernetes API's own JSON.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from o11yctl.errors import KubeError, UsageError
from o11yctl.executors.http import HttpResponse
from o11yctl.model import CheckResult, CommandResult
from o11yctl.stack.components import stack_for
from o11yctl.verify import grafana, loki, ready, tempo
from o11yctl.verify.alloy import judge_alloy_logs, judge_alloy_pods
from o11yctl.verify.base import Check, CheckContext, Deadline, Polled, Targets, passed
from o11yctl.verify.cluster import (
    DataDirFacts,
    grafana_basic_auth,
    judge_data_dir,
    judge_httproute,
    judge_namespace,
    judge_pod,
    judge_volume,
)
from o11yctl.verify.run import otlp_url_for, parse_url, summarize
from o11yctl.verify.runner import run_checks

NS = "logging"


def resp(status: int | None, body: bytes | str = b"", *, error: str | None = None) -> HttpResponse:
    data = body.encode() if isinstance(body, str) else body
    return HttpResponse("GET", "http://x", status, body=data, error=error,
                        error_kind="connect" if error else None)


def polled(*answers: HttpResponse, seconds: float = 1.0, out_of_time: bool = False) -> Polled:
    return Polled(tuple(answers), seconds, out_of_time)


# --- /ready -------------------------------------------------------------------------------------


def _ready(*answers: HttpResponse, seconds: float = 1.0) -> Any:
    facts = ready.ReadyFacts("Loki", "http://loki:3100", polled(*answers, seconds=seconds))
    return ready.judge_ready(facts, namespace=NS, not_ready_hint="NOT-READY-HINT", service="loki", port=3100)


def test_ready_at_once() -> None:
    assert _ready(resp(200, "ready\n")) == passed("ready")


def test_ready_after_warming_up_says_so() -> None:
    v = _ready(resp(503, "Ingester not ready: waiting for 15s after being ready\n"), resp(200, "ready"), seconds=2.4)
    assert v.status == "PASS" and v.detail == "ready after warming up for 2.4s (1 answers 503)"


def test_still_warming_up_at_the_deadline() -> None:
    v = _ready(resp(503, "Ingester not ready: waiting for 15s after being ready\n"), seconds=30)
    assert v.status == "FAIL"
    assert v.detail == "still warming up after 30s: HTTP 503: Ingester not ready: waiting for 15s after being ready"
    assert v.hint is not None and "--timeout" in v.hint and "NOT-READY-HINT" in v.hint


def test_ready_unreachable_and_other_statuses() -> None:
    v = _ready(resp(None, error="cannot connect: Connection refused"))
    assert v.status == "FAIL" and "Connection refused" in v.detail
    assert v.hint is not None and "kubectl port-forward -n logging svc/loki 3100:3100" in v.hint
    v = _ready(resp(500, "boom"))
    assert v.status == "FAIL" and v.detail == "/ready answered HTTP 500: boom" and v.hint == "NOT-READY-HINT"


# --- Loki end to end and cluster logs -----------------------------------------------------------

# The shape of a captured query_range answer (stats trimmed).
STREAMS = (
    '{"status":"success","data":{"resultType":"streams","result":[{"stream":{"job":"o11yctl-verify",'
    '"service_name":"o11yctl-verify"},"values":[["1795687313699369535","o11yctl verify probe token=T-1"]]}],'
    '"stats":{}}}'
)
NO_MATCH = '{"status":"success","data":{"resultType":"streams","result":[],"stats":{}}}'


def test_push_body_is_one_line_in_the_fixed_stream() -> None:
    import json

    doc = json.loads(loki.push_body("T-1", 123))
    assert doc == {"streams": [{"stream": {"job": "o11yctl-verify"}, "values": [["123", "o11yctl verify probe "
                                                                                        "token=T-1"]]}]}


def test_stream_lines_reads_captured_shapes() -> None:
    assert list(loki.stream_lines(resp(200, STREAMS).json())) == [
        (1795687313699369535, "o11yctl verify probe token=T-1", {"job": "o11yctl-verify",
                                                                 "service_name": "o11yctl-verify"})]
    assert list(loki.stream_lines({"status": "success"})) == []  # an empty Loki's /labels has no data key
    assert list(loki.stream_lines(None)) == []


@pytest.mark.parametrize("push, query, status, words", [
    (resp(204), resp(200, STREAMS), "PASS", "read it back"),
    (resp(None, error="cannot connect: refused"), None, "FAIL", "push to"),
    (resp(400, "entry for stream has timestamp too old: 2001"), None, "FAIL", "push refused: HTTP 400"),
    (resp(204), resp(200, NO_MATCH), "FAIL", "not returned by query_range"),
    (resp(204), resp(400, "parse error at line 1, col 20: syntax error"), "FAIL", "query_range answered HTTP 400"),
    (resp(204), resp(None, error="no answer within 2.0s"), "FAIL", "query_range: no answer"),
])
def test_loki_e2e_judgements(push: HttpResponse, query: HttpResponse | None, status: str, words: str) -> None:
    facts = loki.E2eFacts("http://loki", "T-1", polled(push), polled(query) if query else None)
    v = loki.judge_e2e(facts, namespace=NS)
    assert v.status == status and words in v.detail


def test_loki_e2e_old_timestamp_hints_at_the_clock() -> None:
    facts = loki.E2eFacts("http://loki", "T-1", polled(resp(400, "has timestamp too old")), None)
    hint = loki.judge_e2e(facts, namespace=NS).hint
    assert hint is not None and "clock" in hint


def test_cluster_logs() -> None:
    now = 1795687313699369535 + 42 * 10**9
    body = STREAMS.replace('"job":"o11yctl-verify"', '"namespace":"logging","pod":"loki-0"')
    v = loki.judge_cluster_logs(loki.ClusterLogsFacts("x", NS, polled(resp(200, body)), now))
    assert v.status == "PASS" and "the newest is 42s old (from loki-0)" in v.detail
    v = loki.judge_cluster_logs(loki.ClusterLogsFacts("x", NS, polled(resp(200, NO_MATCH)), now))
    assert v.status == "FAIL" and v.hint is not None and "fix-vxlan" in v.hint and "Alloy" in v.hint


# --- Tempo --------------------------------------------------------------------------------------

# Captured from Tempo 2.9's /api/traces/<id>: base64 ids.
TRACE = (
    '{"batches":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"o11yctl-test"}}]},'
    '"scopeSpans":[{"scope":{"name":"o11yctl-probe"},"spans":[{"traceId":"xra/to/12hknLazzSouOOQ==",'
    '"spanId":"WcFN11ErDkI=","name":"probe-span","kind":"SPAN_KIND_SERVER"}]}]}]}'
)
TRACE_ID, SPAN_ID = "c6b6bfb68ff5da19272dacf34a8b8e39", "59c14dd7512b0e42"


def test_trace_span_ids_decode_base64_ids() -> None:
    assert list(tempo.trace_span_ids(resp(200, TRACE).json())) == [SPAN_ID]
    v2 = '{"trace":{"resourceSpans":' + TRACE[len('{"batches":'):-1] + '},"metrics":{}}'
    assert list(tempo.trace_span_ids(resp(200, v2).json())) == [SPAN_ID]


def test_otlp_body_uses_hex_ids_and_labels_the_span() -> None:
    import json

    doc = json.loads(tempo.otlp_body(TRACE_ID, SPAN_ID, 1, "run1"))
    (rs,) = doc["resourceSpans"]
    (span,) = rs["scopeSpans"][0]["spans"]
    assert (span["traceId"], span["spanId"]) == (TRACE_ID, SPAN_ID)
    assert rs["resource"]["attributes"][0]["value"]["stringValue"] == "o11yctl-verify"


@pytest.mark.parametrize("send, fetch, status, words", [
    (resp(200, '{"partialSuccess":{}}'), resp(200, TRACE), "PASS", "fetched trace"),
    (resp(200, '{"partialSuccess":{}}'), resp(404), "FAIL", "still not found"),
    (resp(200, '{"partialSuccess":{}}'), resp(200, TRACE.replace("WcFN11ErDkI=", "AAAAAAAAAAA=")), "FAIL",
     "without the span"),
    (resp(200, '{"partialSuccess":{"rejectedSpans":"1","errorMessage":"too old"}}'), None, "FAIL", "too old"),
    (resp(503, '{"code":14, "message":"DoBatch: InstancesCount <= 0"}'), None, "FAIL", "export refused: HTTP 503"),
    (resp(None, error="cannot connect: refused"), None, "FAIL", "OTLP/HTTP"),
])
def test_tempo_e2e_judgements(send: HttpResponse, fetch: HttpResponse | None, status: str, words: str) -> None:
    facts = tempo.TraceFacts("otlp", "tempo", TRACE_ID, SPAN_ID, polled(send), polled(fetch) if fetch else None)
    v = tempo.judge_e2e(facts, namespace=NS)
    assert v.status == status and words in v.detail


def test_tempo_search() -> None:
    captured = ('{"traces":[{"traceID":"c6b6","rootServiceName":"o11yctl-test","rootTraceName":"probe-span"}],'
                '"metrics":{"inspectedTraces":1}}')
    v = tempo.judge_search(tempo.SearchFacts("t", polled(resp(200, captured))), namespace=NS)
    assert v.status == "PASS" and v.detail == "answers; 1 recent trace(s): o11yctl-test"
    v = tempo.judge_search(tempo.SearchFacts("t", polled(resp(200, '{"traces":[]}'))), namespace=NS)
    assert v.status == "PASS"
    v = tempo.judge_search(tempo.SearchFacts("t", polled(resp(200, "echo"))), namespace=NS)
    assert v.status == "FAIL"


# --- Grafana ------------------------------------------------------------------------------------


def _ds(uid: str, plugin: str, json_data: dict[str, Any],
        health: HttpResponse | None = None) -> grafana.DatasourceFacts:
    import json

    doc = {"uid": uid, "type": plugin, "name": plugin.capitalize(), "jsonData": json_data}
    return grafana.DatasourceFacts(uid, plugin, plugin.capitalize(), resp(200, json.dumps(doc)),
                                   health or resp(200, '{"status":"OK","message":"Data source is working"}'))


LOKI_JD = {"derivedFields": [{"name": "TraceID", "datasourceUid": "tempo", "matcherRegex": "x"}]}
TEMPO_JD = {"tracesToLogsV2": {"datasourceUid": "loki"}}


def test_health() -> None:
    assert grafana.judge_health(resp(200, '{"commit":"1","database":"ok","version":"11.3.0"}'), where="g",
                                hint="H").detail == "Grafana 11.3.0, database ok"
    v = grafana.judge_health(resp(503, '{"database":"failing","version":"11.3.0"}'), where="g", hint="H")
    assert v.status == "FAIL" and v.hint == "H"
    assert grafana.judge_health(resp(404, ""), where="g", hint="H").status == "FAIL"


def test_datasources() -> None:
    ok = (_ds("loki", "loki", LOKI_JD), _ds("tempo", "tempo", TEMPO_JD))
    assert grafana.judge_datasources(ok, where="g", namespace=NS).status == "PASS"
    broken = (ok[0], _ds("tempo", "tempo", TEMPO_JD, resp(400, '{"status":"ERROR","message":"dial tcp: i/o timeout"}')))
    v = grafana.judge_datasources(broken, where="g", namespace=NS)
    assert v.status == "FAIL" and "ERROR: dial tcp: i/o timeout" in v.detail
    assert v.hint is not None and "fix-vxlan" in v.hint
    missing = grafana.DatasourceFacts("tempo", "tempo", "Tempo", resp(404, '{"message":"Data source not found"}'))
    v = grafana.judge_datasources((ok[0], missing), where="g", namespace=NS)
    assert v.status == "FAIL" and "no Tempo data source" in v.detail
    wrong = grafana.DatasourceFacts("loki", "loki", "Loki", resp(401, '{"message":"Invalid API key"}'))
    v = grafana.judge_datasources((wrong, ok[1]), where="g", namespace=NS)
    assert v.hint is not None and "O11YCTL_GRAFANA_TOKEN" in v.hint


def test_correlation() -> None:
    ok = (_ds("loki", "loki", LOKI_JD), _ds("tempo", "tempo", TEMPO_JD))
    v = grafana.judge_correlation(ok, where="g", namespace=NS)
    assert v.status == "PASS" and "Tempo → loki" in v.detail and "TraceID → tempo" in v.detail
    v = grafana.judge_correlation((ok[0], _ds("tempo", "tempo", {})), where="g", namespace=NS)
    assert v.status == "FAIL" and "is not set" in v.detail
    v = grafana.judge_correlation((_ds("loki", "loki", {"derivedFields": [{"datasourceUid": "jaeger"}]}), ok[1]),
                                  where="g", namespace=NS)
    assert v.status == "FAIL" and "derivedFields" in v.detail


# --- cluster ------------------------------------------------------------------------------------


def _pvc(phase: str, volume: str | None = "loki-pv") -> dict[str, Any]:
    return {"spec": {"volumeName": volume}, "status": {"phase": phase, "capacity": {"storage": "200Gi"}}}


def _pv(phase: str, claim: str | None = "loki-pvc") -> dict[str, Any]:
    return {"spec": {"claimRef": {"namespace": NS, "name": claim} if claim else None,
                     "capacity": {"storage": "200Gi"}}, "status": {"phase": phase}}


@pytest.mark.parametrize("pvc, pv, status, words", [
    (_pvc("Bound"), _pv("Bound"), "PASS", "Bound to loki-pv (200Gi)"),
    (_pvc("Pending"), _pv("Available"), "WARN", "waiting for its first consumer"),
    (_pvc("Pending"), _pv("Released"), "FAIL", "is Released"),
    (_pvc("Bound", "other-pv"), _pv("Bound"), "FAIL", "not to loki-pv"),
    (None, _pv("Available"), "FAIL", "does not exist"),
    (_pvc("Pending"), None, "FAIL", "PersistentVolume loki-pv does not exist"),
    (_pvc("Pending"), _pv("Available", claim="someone-else"), "FAIL", "is Pending"),
])
def test_volume(pvc: Any, pv: Any, status: str, words: str) -> None:
    v = judge_volume(pvc, pv, pvc_name="loki-pvc", pv_name="loki-pv", namespace=NS, storage_node="node-2",
                     storage_class="local-storage")
    assert v.status == status and words in v.detail


def _pod(name: str, node: str, *, claim: str | None = None, ready: bool = True, phase: str = "Running",
         waiting: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"nodeName": node, "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]
                     if claim else []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"restartCount": 1, "state": {"waiting": {"reason": waiting}}
                                              if waiting else {"running": {}}}]}}


def test_pod_judgements() -> None:
    def judge(*pods: dict[str, Any]) -> Any:
        return judge_pod(pods, component="Loki", namespace=NS, node="node-2", pvc="loki-pvc", owner="10001:10001")

    assert judge(_pod("loki-0", "node-2", claim="loki-pvc")).status == "PASS"
    assert "no Loki pod mounting loki-pvc" in judge(_pod("loki-canary-x", "node-1")).detail
    assert "not on node-2" in judge(_pod("loki-0", "node-1", claim="loki-pvc")).detail
    v = judge(_pod("loki-0", "node-2", claim="loki-pvc", ready=False, waiting="CrashLoopBackOff"))
    assert "CrashLoopBackOff" in v.detail and v.hint is not None and "10001:10001" in v.hint
    assert "not Ready" in judge(_pod("loki-0", "node-2", claim="loki-pvc", ready=False)).detail


def test_alloy() -> None:
    nodes = [{"metadata": {"name": "node-1"}}, {"metadata": {"name": "node-2"}, "spec": {"taints": [
        {"key": "heavy", "value": "true", "effect": "NoSchedule"}]}}]
    assert judge_alloy_pods(nodes, [_pod("a", "node-1"), _pod("b", "node-2")], namespace=NS).status == "PASS"
    v = judge_alloy_pods(nodes, [_pod("a", "node-1")], namespace=NS)
    assert v.status == "FAIL" and "none on node-2" in v.detail
    assert v.hint is not None and "heavy=true:NoSchedule" in v.hint
    assert judge_alloy_logs({"a": "ok\nfine"}, namespace=NS).status == "PASS"
    v = judge_alloy_logs({"a": "x\nerror=\"context deadline exceeded\"\n"}, namespace=NS)
    assert v.status == "FAIL" and "(a: 1)" in v.detail


def test_namespace_and_route() -> None:
    assert judge_namespace({"status": {"phase": "Active"}}, namespace=NS).status == "PASS"
    assert judge_namespace(None, namespace=NS).status == "FAIL"
    accepted = {"status": {"parents": [{"parentRef": {"name": "eg", "namespace": "default"},
                                        "conditions": [{"type": "Accepted", "status": "True"}]}]}}
    kw = {"namespace": NS, "name": "grafana", "gateway": "eg", "gateway_ns": "default"}
    assert judge_httproute(accepted, **kw).status == "PASS"
    assert "has not reported" in judge_httproute({"status": {}}, **kw).detail
    assert judge_httproute(None, **kw).status == "FAIL"


def _cmd(stdout: str = "", stderr: str = "", code: int = 0) -> CommandResult:
    return CommandResult(("x",), code, stdout, stderr, 0.1, "node-2")


def test_data_dir() -> None:
    def judge(ls: CommandResult, du: CommandResult | None = None, component: str = "loki") -> Any:
        facts = DataDirFacts("/mnt/k8s-storage/" + component, "node-2", du or _cmd("1.2G\t/x\n"), ls)
        volume = stack_for().get(component).volume
        assert volume is not None
        return judge_data_dir(facts, component=component, owner="10001:10001", expected=volume.writes)

    v = judge(_cmd("wal\ntsdb-shipper-active\n"))
    assert v.status == "PASS" and v.detail.startswith("1.2G in node-2:/mnt/k8s-storage/loki")
    assert "chunks/ appears after the first flush" in v.detail
    assert judge(_cmd("")).status == "FAIL"
    assert judge(_cmd("lost+found\n")).status == "WARN"
    assert "does not exist" in judge(_cmd(stderr="ls: cannot access: No such file or directory", code=2)).detail
    assert judge(_cmd(stderr="ls: cannot open directory: Permission denied", code=2)).status == "WARN"
    assert judge(_cmd("wal\ntraces\n"), component="tempo").status == "PASS"


def test_grafana_basic_auth_from_the_secret_never_shows_the_password() -> None:
    import base64

    secret = {"data": {"admin-user": base64.b64encode(b"admin").decode(),
                       "admin-password": base64.b64encode(b"s3cret").decode()}}
    headers = grafana_basic_auth(secret)
    assert headers is not None
    value = headers["Authorization"]
    assert "s3cret" not in repr(value) and "s3cret" not in str(value)
    assert not isinstance(value, str)
    assert value.reveal() == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    assert grafana_basic_auth(None) is None
    assert grafana_basic_auth({"data": {}}) is None


# --- the runner ---------------------------------------------------------------------------------


def _ctx(**targets: Any) -> CheckContext:
    return CheckContext(Targets(unavailable={"loki-http": ("no Loki", "pass --loki-url")}, **targets), Deadline(5))


def test_runner_skips_checks_whose_needs_are_missing_and_keeps_order() -> None:
    checks = [Check("a.one", "a", "t", ("loki-http",), lambda c: passed("x")),
              Check("a.two", "a", "t", (), lambda c: passed("y"))]
    results = run_checks(checks, _ctx(), wait=2)
    assert [(r.id, r.status, r.detail, r.hint) for r in results] == [
        ("a.one", "SKIP", "no Loki", "pass --loki-url"), ("a.two", "PASS", "y", None)]


def test_runner_runs_concurrently_and_stops_waiting_at_the_deadline() -> None:
    release = threading.Event()

    def slow(_ctx: CheckContext) -> Any:
        time.sleep(0.5)
        return passed("slow")

    def hang(_ctx: CheckContext) -> Any:
        release.wait(10)
        return passed("never")

    checks = [Check(f"s.{i}", "s", "t", (), slow) for i in range(5)]
    checks.append(Check("h.hang", "h", "hangs", (), hang))
    started = time.monotonic()
    results = run_checks(checks, _ctx(), wait=1.5)
    elapsed = time.monotonic() - started
    release.set()
    assert 1.4 <= elapsed < 2.0
    assert all(r.status == "PASS" and r.seconds < 1.0 for r in results[:5])
    assert results[5].status == "FAIL" and "no verdict within the --timeout of 1.5s" in results[5].detail


def test_runner_turns_o11y_errors_into_failures_and_raises_bugs() -> None:
    def kube_down(_ctx: CheckContext) -> Any:
        raise KubeError("cannot reach the Kubernetes API", hint="is the cluster up?")

    (r,) = run_checks([Check("c.x", "c", "t", (), kube_down)], _ctx(), wait=2)
    assert (r.status, r.detail, r.hint) == ("FAIL", "cannot reach the Kubernetes API", "is the cluster up?")

    def bug(_ctx: CheckContext) -> Any:
        raise ZeroDivisionError("oops")

    with pytest.raises(ZeroDivisionError):
        run_checks([Check("c.y", "c", "t", (), bug)], _ctx(), wait=2)


def test_deadline_caps_request_timeouts() -> None:
    now = [100.0]
    d = Deadline(3, clock=lambda: now[0])
    assert d.timeout(10) == 3
    now[0] = 102.5
    assert d.timeout(10) == pytest.approx(0.5)
    now[0] = 200
    assert d.expired and d.timeout(10) == 0.05


# --- URLs, exit codes, imports ------------------------------------------------------------------


def test_urls() -> None:
    assert parse_url("--loki-url", "http://127.0.0.1:3100/") == "http://127.0.0.1:3100"
    assert parse_url("--grafana-url", "https://10.0.0.102/grafana") == "https://10.0.0.102/grafana"
    for bad in ("127.0.0.1:3100", "ftp://x", "http://x:99999", "http://x/?q=1"):
        with pytest.raises(UsageError):
            parse_url("--loki-url", bad)
    assert otlp_url_for("http://tempo.example:3200") == "http://tempo.example:4318"


def _r(status: Any) -> CheckResult:
    return CheckResult("x", "g", status)


def test_exit_codes() -> None:
    assert summarize([_r("PASS"), _r("SKIP")], 1.0)[0] == 0
    assert summarize([_r("PASS"), _r("WARN")], 1.0)[0] == 0
    assert summarize([_r("PASS"), _r("FAIL")], 1.0) == (1, "1 passed, 1 failed in 1.0s")
    code, line = summarize([_r("SKIP"), _r("SKIP")], 1.0)
    assert code == 3 and line.startswith("nothing was verified")


def test_an_unreachable_cluster_is_exit_3_whatever_else_passed() -> None:
    # the route check can still FAIL on its own, and SSH checks pass, when the API server does not answer
    code, line = summarize([_r("SKIP"), _r("FAIL")], 1.0, cluster_unreachable=True)
    assert code == 3 and line == "the cluster API could not be reached (1 failed, 1 skipped in 1.0s)"
    assert summarize([_r("PASS"), _r("SKIP")], 1.0, cluster_unreachable=True)[0] == 3


def test_help_does_not_import_heavy_libraries() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "o11yctl", "verify", "--help"],
                         capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert not imported & {"httpx", "kubernetes", "paramiko"}


def test_only_the_http_executor_imports_httpx() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "o11yctl"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                   if "import httpx" in p.read_text(encoding="utf-8"))
    assert users == ["executors/http.py"]


def test_an_unanswered_store_names_the_ca_file_only_for_a_certificate_it_does_not_trust() -> None:
    from o11yctl.verify.hints import store_unanswered

    untrusted = ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
                 "certificate (_ssl.c:1006)")
    assert "set object_storage.ca_file" in store_unanswered(untrusted, "default")
    mismatch = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is not valid"
    assert "does not name the host" in store_unanswered(mismatch, "default")
    assert store_unanswered("[Errno 111] Connection refused", "default") == "default"
    assert store_unanswered(None, "default") == "default"


def test_the_store_ca_configmap_holds_the_certificates_of_the_config_s_file() -> None:
    from o11yctl.verify.store import judge_store_ca

    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    where = {"namespace": "logging", "name": "o11yctl-object-storage-ca", "key": "ca.crt", "ca_file": "ca.pem"}
    missing = judge_store_ca(None, pem, **where)
    assert missing.status == "FAIL" and missing.detail == (
        "ConfigMap logging/o11yctl-object-storage-ca is missing: Loki's and Tempo's pods cannot start without it")
    assert missing.hint == "`o11yctl install --only store-ca` puts ca.pem there (Loki and Tempo restart with it)"
    other = judge_store_ca({"data": {"ca.crt": pem.replace("MIIB", "MIIC")}}, pem, **where)
    assert other.status == "FAIL" and "holds another CA than object_storage.ca_file (ca.pem)" in other.detail
    assert judge_store_ca({"data": {}}, pem, **where).status == "FAIL"
    same = judge_store_ca({"data": {"ca.crt": pem * 2}}, pem * 2, **where)
    assert same.status == "PASS" and same.detail == (
        "ConfigMap logging/o11yctl-object-storage-ca holds the 2 certificate(s) of ca.pem")
