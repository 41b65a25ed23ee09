"""The fake Loki and Tempo servers answer like the real ones did when their responses were captured.

The captures (real Loki 3.3.0 and Tempo 2.9.0) are in tests/data/upstream; the fakes
are tests/lab/fake_observability.py, real HTTP servers on loopback. Each test feeds a
fake what the real server was fed and compares the answer with the capture, byte for
byte where the answer does not depend on the moment; where a capture is silent, the
test says which part of the server's source it follows. Each test's docstring names
the old fake behaviour it catches. No o11yctl function is patched; the last tests run
``o11yctl verify`` unchanged against a Tempo that is still forming its ring.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from tests.lab.fake_observability import UPSTREAM, FakeLoki, FakeTempo, serving
from typer.testing import CliRunner

from o11yctl.cli import app

#: The moment the captures were taken (the Loki query's ``now``): 2026-11-26T10:01:53Z.
CAPTURED_AT = 1795687313.0
#: The search window the captured Tempo searches used.
WINDOW = {"start": "1795686748", "end": "1795687408"}
JSON_HEADERS = {"Content-Type": "application/json"}


def upstream(name: str) -> bytes:
    return (UPSTREAM / name).read_bytes()


def call(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of one request, whatever the status."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def search(tempo: FakeTempo, **params: str) -> tuple[int, str, bytes]:
    return call("GET", f"{tempo.url}/api/search?{urlencode(params)}")


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()


def captured_export() -> dict[str, Any]:
    """The OTLP/HTTP JSON export of the captured trace (tempo__api_traces__id.json), ids back in hex."""
    (batch,) = json.loads(upstream("tempo__api_traces__id.json"))["batches"]
    (scope_spans,) = batch["scopeSpans"]
    spans = [{**span, "traceId": _hex(span["traceId"]), "spanId": _hex(span["spanId"]), "kind": 2,
              "status": {"code": 1}} for span in scope_spans["spans"]]
    return {"resourceSpans": [{"resource": batch["resource"],
                               "scopeSpans": [{"scope": scope_spans["scope"], "spans": spans}]}]}


def export(service: str, trace_id: str, start_ns: int, *, check: str = "verify") -> dict[str, Any]:
    span: dict[str, Any] = {"traceId": trace_id, "spanId": trace_id[:16], "name": "probe-span", "kind": 2,
                            "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(start_ns + 10_000_000),
                            "attributes": [{"key": "o11yctl.check", "value": {"stringValue": check}}]}
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                            "value": {"stringValue": service}}]},
                               "scopeSpans": [{"scope": {"name": "o11yctl-probe"}, "spans": [span]}]}]}


def send(tempo: FakeTempo, doc: dict[str, Any]) -> tuple[int, str, bytes]:
    return call("POST", f"{tempo.otlp_url}/v1/traces", json.dumps(doc).encode(), JSON_HEADERS)


@pytest.fixture
def tempo() -> Iterator[FakeTempo]:
    """A fake Tempo holding the captured trace and one of another service, an hour earlier."""
    server = FakeTempo()
    with serving(server):
        assert send(server, captured_export())[0] == 200
        assert send(server, export("other-service", "0a" * 16, 1795683747_000_000_000, check="other"))[0] == 200
        yield server


@pytest.fixture
def loki() -> Iterator[FakeLoki]:
    server = FakeLoki()
    with serving(server):
        yield server


# --- Tempo search ----------------------------------------------------------------------------------


def test_search_by_tags_answers_like_the_capture(tempo: FakeTempo) -> None:
    """Old fake: ignored ``tags`` and the window, so the other service's trace came back too."""
    status, ctype, body = search(tempo, tags="service.name=o11yctl-test", **WINDOW)
    want = json.loads(upstream("tempo__api_search__tags.json"))
    got = json.loads(body)
    assert (status, ctype) == (200, "application/json")
    assert got["traces"] == want["traces"]
    assert set(got["metrics"]) == set(want["metrics"])


def test_search_by_tags_without_a_window_answers_like_the_capture(tempo: FakeTempo) -> None:
    """Old fake: ignored ``tags`` and listed every trace."""
    status, _ctype, body = search(tempo, tags="service.name=o11yctl-test")
    want = json.loads(upstream("tempo__api_search__tags_nowindow.json"))
    assert status == 200 and json.loads(body)["traces"] == want["traces"]


def test_search_by_traceql_answers_like_the_capture(tempo: FakeTempo) -> None:
    """The captured TraceQL answer carries the matching spans (spanSet, spanSets) and serviceStats, and its
    metrics have no inspectedTraces. Old fake: ignored ``q``, listed every trace, without spanSet."""
    status, ctype, body = search(tempo, q='{resource.service.name="o11yctl-test"}', **WINDOW)
    want = json.loads(upstream("tempo__api_search__traceql.json"))
    got = json.loads(body)
    assert (status, ctype) == (200, "application/json")
    assert got["traces"] == want["traces"]
    assert set(got["metrics"]) == set(want["metrics"])


@pytest.mark.parametrize("params", [
    {"q": '{resource.service.name="does-not-exist"}'},
    {"q": '{resource.service.name="o11yctl-test" && span.o11yctl.check="install"}'},
    {"q": '{span.service.name="o11yctl-test"}'},  # service.name is a resource attribute
    {"tags": "service.name=does-not-exist"},
    {"tags": "o11yctl.check=verif"},  # generic attributes match exactly, not as substrings
    {"tags": "service.name=o11yctl-test", "start": "1795680000", "end": "1795686000"},  # before the trace
], ids=["traceql", "traceql-and", "traceql-scope", "tags", "tags-generic", "window"])
def test_a_query_that_matches_nothing_returns_no_trace(tempo: FakeTempo, params: dict[str, str]) -> None:
    """Old fake: every search listed every trace, whatever it asked."""
    status, _ctype, body = search(tempo, **params)
    assert status == 200
    assert json.loads(body)["traces"] == []


def test_search_matches_what_tempo_would(tempo: FakeTempo) -> None:
    """Positive cases the captures do not show, after Tempo's source: ``service.name`` tags match as a
    substring (vParquet4's ServiceName column), other tags exactly, ``{}`` matches everything; trace ids
    lose leading zeros. Old fake: right by accident for ``{}`` only."""
    def ids(**params: str) -> list[str]:
        status, _ctype, body = search(tempo, **params)
        assert status == 200, body
        return [t["traceID"] for t in json.loads(body)["traces"]]

    assert ids(tags="service.name=o11yctl") == ["c6b6bfb68ff5da19272dacf34a8b8e39"]
    assert ids(tags="o11yctl.check=verify") == ["c6b6bfb68ff5da19272dacf34a8b8e39"]
    assert ids(q="{}") == ["c6b6bfb68ff5da19272dacf34a8b8e39", "a" + "0a" * 15]
    assert ids(q='{span.o11yctl.check = "other" && resource.service.name = `other-service`}') == ["a" + "0a" * 15]


def test_limit_keeps_the_traces_that_started_last(tempo: FakeTempo) -> None:
    """Tempo's combiner sorts by start time, newest first. Old fake: cut the list in arrival order, so the
    first traces received (the oldest here) came back."""
    for n in range(3):
        send(tempo, export("batch", f"{n + 1:032x}", 1795687000_000_000_000 + n * 10**9))
    status, _ctype, body = search(tempo, tags="service.name=batch", limit="2")
    assert status == 200
    assert [t["traceID"] for t in json.loads(body)["traces"]] == ["3", "2"]


def test_invalid_traceql_answers_the_captured_400(tempo: FakeTempo) -> None:
    """Old fake: 200 with every trace."""
    status, ctype, body = search(tempo, q="{resource.service.name=")
    assert (status, ctype, body) == (400, "text/plain; charset=utf-8",
                                     upstream("tempo__api_search__invalid_traceql.txt"))


@pytest.mark.parametrize(("params", "message"), [
    ({"start": "1795686748000000000", "end": "1795687408000000000"},
     'invalid start: strconv.ParseInt: parsing "1795686748000000000": value out of range'),
    ({"start": "yesterday", "end": "1795687408"},
     'invalid start: strconv.ParseInt: parsing "yesterday": invalid syntax'),
    ({"start": "1795687408", "end": "1795686748"},
     "http parameter start must be before end. received start=1795687408 end=1795686748"),
    ({"start": "1795686748"}, "http parameter start must be before end. received start=1795686748 end=0"),
    ({"limit": "0"}, "invalid limit: must be a positive number"),
    ({"q": "{}", "tags": "service.name=x"}, "invalid request: can't specify tags and q in the same query"),
    ({"tags": "a=1 a=2"}, "invalid tags: tag a has been set twice"),
], ids=["start-in-nanoseconds", "start-not-a-number", "start-after-end", "start-without-end", "limit-0",
        "q-and-tags", "tag-twice"])
def test_bad_search_parameters_answer_tempos_400(tempo: FakeTempo, params: dict[str, str], message: str) -> None:
    """Not captured: the messages of Tempo v2.9.0's pkg/api/http.go (ParseSearchRequest). Old fake: 200 with
    every trace (or a Python error for a bad limit)."""
    status, ctype, body = search(tempo, **params)
    assert (status, ctype, body.decode()) == (400, "text/plain; charset=utf-8", message)


@pytest.mark.parametrize("query", ['{span.http.status_code >= 500}', '{.service.name="x"}', '{name="probe-span"}',
                                   '{resource.service.name="x"} | count() > 1', "{resource.service.name="
                                   '"o11yctl-test"', "not traceql"])
def test_traceql_the_fake_cannot_evaluate_fails_the_test(query: str) -> None:
    """Answering these would mean inventing Tempo's answer: the request is recorded and fails the test at
    teardown. Old fake: 200 with every trace."""
    server = FakeTempo()
    with serving(server, check_clean=False):
        status, _ctype, body = search(server, q=query)
    assert status == 501 and b"not modelled" in body
    with pytest.raises(AssertionError, match="not modelled"):
        server.assert_clean()


# --- Tempo OTLP/HTTP -------------------------------------------------------------------------------


def test_otlp_answers_the_captured_503_while_the_ring_forms() -> None:
    """Old fake: no such state; every export was accepted at once."""
    server = FakeTempo()
    server.otlp_unready_for = 2
    doc = captured_export()
    with serving(server):
        first, second, third = (send(server, doc) for _ in range(3))
        trace_id = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
        fetched = call("GET", f"{server.url}/api/traces/{trace_id}")
    unavailable = upstream("tempo__otlp__while_starting__503.txt")
    assert first == second == (503, "application/json", unavailable)
    assert third == (200, "application/json", upstream("tempo__otlp_http_v1_traces__json.txt"))
    assert fetched[0] == 200
    (batch,) = json.loads(fetched[2])["batches"]  # the refused exports were not stored
    assert len(batch["scopeSpans"][0]["spans"]) == 1


def test_otlp_without_spans_is_accepted_while_the_ring_forms() -> None:
    """Tempo answers an export without spans before asking its ring (distributor.go, PushTraces), as it
    answered the captured empty export. Old fake: answered ``{"partialSuccess": {}}`` with a space; the
    captured body has none."""
    server = FakeTempo()
    server.otlp_unready_for = 5
    with serving(server):
        answer = call("POST", f"{server.otlp_url}/v1/traces", b"{}", JSON_HEADERS)
    assert answer == (200, "application/json", upstream("tempo__otlp_http_v1_traces__empty.txt"))


def test_otlp_ring_and_ready_are_independent() -> None:
    """The capture behind tempo__otlp__while_not_ready.txt: OTLP accepted spans while /ready still said
    503. Old fake: accepted them too, but its body (``{"partialSuccess": {}}``) was not the captured one."""
    server = FakeTempo()
    server.not_ready_for = 10
    with serving(server):
        assert call("GET", f"{server.url}/ready")[0] == 503
        assert send(server, captured_export()) == (200, "application/json",
                                                   upstream("tempo__otlp__while_not_ready.txt"))


def test_otlp_protobuf_is_not_modelled() -> None:
    """Old fake: answered an invented 415 and passed the test."""
    server = FakeTempo()
    with serving(server, check_clean=False):
        status, _ctype, _body = call("POST", f"{server.otlp_url}/v1/traces", b"\x0a\x00",
                                     {"Content-Type": "application/x-protobuf"})
    assert status == 501
    with pytest.raises(AssertionError, match="not modelled"):
        server.assert_clean()


# --- Loki push -------------------------------------------------------------------------------------


def push(loki: FakeLoki, labels: dict[str, str], *values: tuple[int, str]) -> tuple[int, str, bytes]:
    doc = {"streams": [{"stream": labels, "values": [[str(ts), line] for ts, line in values]}]}
    return call("POST", f"{loki.url}/loki/api/v1/push", json.dumps(doc).encode(), JSON_HEADERS)


def lines(loki: FakeLoki, selector: str, start_ns: int, end_ns: int) -> list[str]:
    params = urlencode({"query": selector, "start": str(start_ns), "end": str(end_ns)})
    status, _ctype, body = call("GET", f"{loki.url}/loki/api/v1/query_range?{params}")
    assert status == 200
    return [line for stream in json.loads(body)["data"]["result"] for _ts, line in stream["values"]]


def test_a_line_older_than_a_week_is_refused_with_the_captured_message(loki: FakeLoki) -> None:
    """The capture pushed a line stamped 2001-09-09 (10^9 s) to a Loki with the default 7d window. Old
    fake: 204, and the line was stored."""
    loki.clock = lambda: CAPTURED_AT
    answer = push(loki, {"job": "o11yctl-test"}, (10**18, "o11yctl probe line"))
    assert answer == (400, "text/plain; charset=utf-8", upstream("loki__push__old_timestamp.txt"))
    assert loki.streams == {}


def test_the_old_timestamp_window_is_seven_days(loki: FakeLoki) -> None:
    """The capture's oldest acceptable time is the moment of the capture minus exactly 7 days (Loki's default
    reject_old_samples_max_age). Old fake: no window at all."""
    captured = upstream("loki__push__old_timestamp.txt").decode()
    oldest = re.search(r"oldest acceptable timestamp is: (\S+)\n$", captured)
    assert oldest is not None and oldest.group(1) == "2026-11-19T10:01:53Z"
    loki.clock = lambda: CAPTURED_AT
    week_ns = 7 * 24 * 3600 * 10**9
    now_ns = int(CAPTURED_AT * 10**9)
    assert push(loki, {"job": "edge"}, (now_ns - week_ns, "just in"))[0] == 204
    status, _ctype, body = push(loki, {"job": "edge"}, (now_ns - week_ns - 1, "just out"))
    assert status == 400 and body.decode().endswith("oldest acceptable timestamp is: 2026-11-19T10:01:53Z\n")


def test_a_refused_line_does_not_refuse_the_rest_of_the_push(loki: FakeLoki) -> None:
    """Not captured; Loki v3.3.0's distributor (Push) stores the valid entries and answers 400 for the
    others, grouping repeated messages. Old fake: 204 for all, the old lines stored."""
    now_ns = int(loki.clock() * 10**9)
    status, _ctype, body = push(loki, {"job": "mixed"}, (10**18, "old 1"), (now_ns, "fresh"), (10**18, "old 2"))
    assert status == 400
    assert body.decode().startswith("2 errors like: entry for stream '{job=\"mixed\", service_name=\"mixed\"}' "
                                    "has timestamp too old: 2001-09-09T01:46:40Z, oldest acceptable timestamp is: ")
    assert lines(loki, '{job="mixed"}', now_ns - 10**9, now_ns + 10**9) == ["fresh"]


def test_a_line_from_the_future_is_refused(loki: FakeLoki) -> None:
    """Not captured; Loki v3.3.0 refuses lines beyond creation_grace_period (10m) as "too new"
    (pkg/distributor/validator.go), which o11yctl's verify reports as a clock problem. Old fake: 204."""
    loki.clock = lambda: CAPTURED_AT
    status, _ctype, body = push(loki, {"app": "clock-skew"}, (int(CAPTURED_AT + 3600) * 10**9, "ahead"))
    assert (status, body.decode()) == (400, "entry for stream '{app=\"clock-skew\", service_name=\"clock-skew\"}' "
                                            "has timestamp too new: 2026-11-26T11:01:53Z\n")


def test_service_name_is_discovered_like_loki_does(loki: FakeLoki) -> None:
    """The captured query answer shows ``service_name`` added to a stream pushed with ``job`` only; Loki
    3.3.0's discover_service_name list takes ``app`` before ``job``, and ``unknown_service`` when none is
    there. Old fake: always took ``job``."""
    now_ns = int(loki.clock() * 10**9)
    (stream,) = json.loads(upstream("loki__query_range__job.json"))["data"]["result"]
    assert stream["stream"]["service_name"] == stream["stream"]["job"]
    push(loki, {"job": "j", "app": "a"}, (now_ns, "line"))
    push(loki, {"other": "x"}, (now_ns, "line"))
    assert set(loki.streams) == {(("app", "a"), ("job", "j"), ("service_name", "a")),
                                 (("other", "x"), ("service_name", "unknown_service"))}


def test_push_is_accepted_while_loki_warms_up(loki: FakeLoki) -> None:
    """loki__push__while_not_ready.txt: 204 with an empty body while /ready answered 503. (The old fake did
    this too; kept here so it stays.)"""
    loki.not_ready_for = 5
    assert call("GET", f"{loki.url}/ready")[0] == 503
    status, _ctype, body = push(loki, {"job": "o11yctl-test"}, (int(loki.clock() * 10**9), "line"))
    assert (status, body) == (204, upstream("loki__push__while_not_ready.txt"))


def test_a_protobuf_push_is_not_modelled() -> None:
    """Loki reads a push without ``Content-Type: application/json`` as snappy protobuf. Old fake: parsed it
    as JSON and answered an invented 400."""
    server = FakeLoki()
    with serving(server, check_clean=False):
        status, _ctype, _body = call("POST", f"{server.url}/loki/api/v1/push", b"\xff\x06\x00",
                                     {"Content-Type": "application/x-protobuf"})
    assert status == 501
    with pytest.raises(AssertionError, match="not modelled"):
        server.assert_clean()


# --- o11yctl against a Tempo that is starting --------------------------------------------------------


def test_verify_waits_for_tempos_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``o11yctl verify --only tempo`` right after Tempo started: the OTLP export answers 503 until the ring
    has an ingester, and verify retries it until it is accepted. Old fake: could not play this (the first
    export was accepted), so only one export was made."""
    monkeypatch.chdir(tmp_path)
    server = FakeTempo()
    server.otlp_unready_for = 3
    with serving(server):
        result = CliRunner().invoke(app, ["verify", "--only", "tempo", "--tempo-url", server.url,
                                          "--otlp-url", server.otlp_url, "--timeout", "10", "--json"])
        exports = server.otlp.hits("POST", "/v1/traces")
    checks = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    assert result.exit_code == 0, result.stdout
    assert checks["tempo.e2e"]["status"] == "PASS"
    assert len(exports) == 4


def test_verify_reports_a_ring_that_never_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Still 503 at the deadline: verify fails the check with Tempo's own message and points at Tempo. Old
    fake: accepted the export, so the check passed."""
    monkeypatch.chdir(tmp_path)
    server = FakeTempo()
    server.otlp_unready_for = 10_000
    with serving(server):
        result = CliRunner().invoke(app, ["verify", "--only", "tempo", "--tempo-url", server.url,
                                          "--otlp-url", server.otlp_url, "--timeout", "2", "--json"])
    e2e = {c["id"]: c for c in json.loads(result.stdout)["checks"]}["tempo.e2e"]
    assert result.exit_code == 1 and e2e["status"] == "FAIL"
    assert "HTTP 503" in e2e["detail"] and "InstancesCount <= 0" in e2e["detail"]
    assert "tempo" in e2e["hint"]
