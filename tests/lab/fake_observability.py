"""Fake Loki, Tempo, Grafana and gateway servers on loopback, for `verify` and `status`.

The real servers cannot run here, so these fakes stand in for them. They answer on
the wire like Loki 3.3 and Tempo 2.9 did when their responses were captured (status
codes, plain-text errors, JSON shapes, Loki's 503 while warming up, Tempo's 404 for a
trace until it is ingested and its base64 ids in trace JSON, OTLP/HTTP's
``{"partialSuccess":{}}``), and like Grafana's HTTP API documents (``/api/health``,
``/api/datasources/uid/<uid>`` and ``.../health`` answering 400 with
``{"status":"ERROR"}`` when a data source is broken).

Each fake is a real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, port 0) that
the code under test reaches through its normal HTTP client. Tests script it:
``script()`` queues answers for a path, ``hang()`` makes a path never answer,
``delay`` slows every answer, and attributes such as ``not_ready_for`` or
``ingest_delay`` shape the behaviour. A request nobody scripted gets the real
server's 404 and is recorded in ``unexpected``; :meth:`FakeServer.assert_clean`
fails a test that made one, or that left a scripted answer unused.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

JSON_TYPE = "application/json"
LOKI_JSON_TYPE = "application/json; charset=UTF-8"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int
    body: bytes | str | dict[str, Any] | list[Any] = b""
    content_type: str | None = None

    def encoded(self) -> tuple[bytes, str | None]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), self.content_type or JSON_TYPE
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or TEXT_TYPE
        return self.body, self.content_type


@dataclass(frozen=True)
class Request:
    """A request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Script:
    method: str
    pattern: re.Pattern[str]
    replies: list[Reply]
    repeat_last: bool
    used: int = 0


@dataclass
class Answer:
    """What a route handler returns."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def text(status: int, body: str) -> Answer:
    return Answer(status, body.encode(), TEXT_TYPE)


def as_json(status: int, doc: Any, content_type: str = JSON_TYPE) -> Answer:
    return Answer(status, json.dumps(doc).encode(), content_type)


Route = tuple[str, re.Pattern[str], Callable[[Request, re.Match[str]], Answer]]


class FakeServer:
    """An HTTP server on 127.0.0.1 (or :attr:`host`) with scripted answers and a record of every request."""

    name = "fake"

    def __init__(self) -> None:
        #: The address to listen on (a lab namespace's address for tests that need another host).
        self.host = "127.0.0.1"
        self.requests: list[Request] = []
        self.unexpected: list[Request] = []
        self.delay = 0.0
        self._scripts: list[_Script] = []
        self._hangs: list[tuple[str, re.Pattern[str]]] = []
        self._routes: list[Route] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Callable[[Request, re.Match[str]], Answer]) -> None:
        self._routes.append((method, re.compile(pattern), handler))

    def script(self, method: str, path: str, *replies: Reply, repeat_last: bool = False) -> None:
        """Answer the next requests matching ``path`` (a full-match regex) with ``replies``, in order.

        With ``repeat_last``, the last reply keeps answering; otherwise the normal
        behaviour resumes once the replies are used, and :meth:`assert_clean` checks
        they all were.
        """
        with self._lock:
            self._scripts.append(_Script(method, re.compile(path), list(replies), repeat_last))

    def hang(self, method: str, path: str) -> None:
        """Never answer requests matching ``path`` (until the server stops)."""
        with self._lock:
            self._hangs.append((method, re.compile(path)))

    def hits(self, method: str, path: str) -> list[Request]:
        """The requests received for ``path`` (a full-match regex)."""
        pattern = re.compile(path)
        with self._lock:
            return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    def assert_clean(self) -> None:
        """No request went unanswered by a script or route, and every scripted reply was used."""
        assert not self.unexpected, f"{self.name}: unscripted requests: " + ", ".join(
            f"{r.method} {r.path}" for r in self.unexpected
        )
        unused = [s for s in self._scripts if s.used < len(s.replies) - (1 if s.repeat_last else 0)]
        assert not unused, f"{self.name}: scripted replies never requested: " + ", ".join(
            f"{s.method} {s.pattern.pattern} ({s.used}/{len(s.replies)})" for s in unused
        )

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name} server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- dispatch --------------------------------------------------------------------------------

    def not_found(self, request: Request) -> Answer:
        return text(404, "404 page not found\n")

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            method=handler.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(request)
            hang = any(m == request.method and p.fullmatch(request.path) for m, p in self._hangs)
            script = next((s for s in self._scripts if s.method == request.method and s.pattern.fullmatch(request.path)
                           and (s.used < len(s.replies) or s.repeat_last)), None)
            reply = None
            if script is not None:
                reply = script.replies[min(script.used, len(script.replies) - 1)]
                script.used += 1
        if hang:
            self._stop.wait(120)
            handler.close_connection = True
            return
        if self.delay:
            time.sleep(self.delay)
        if reply is not None:
            payload, ctype = reply.encoded()
            answer = Answer(reply.status, payload, ctype)
        else:
            answer = self._route(request)
        handler.send_response(answer.status)
        if answer.content_type:
            handler.send_header("Content-Type", answer.content_type)
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        if request.method != "HEAD":
            handler.wfile.write(answer.body)

    def _route(self, request: Request) -> Answer:
        for method, pattern, fn in self._routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                return fn(request, match)
        with self._lock:
            self.unexpected.append(request)
        return self.not_found(request)


# --- Loki ---------------------------------------------------------------------------------------

_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
_FILTER = re.compile(r'\s*(\|=|!=)\s*"((?:[^"\\]|\\.)*)"\s*')


class LogQLError(ValueError):
    pass


def parse_logql(query: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """A log selector and line filters: ``{a="b", c=~"d"} |= "x" != "y"``; enough LogQL for the checks."""
    query = query.strip()
    if not query.startswith("{"):
        raise LogQLError("parse error at line 1, col 1: syntax error: unexpected IDENTIFIER")
    end = query.find("}")
    if end < 0:
        raise LogQLError(f"parse error at line 1, col {len(query) + 1}: syntax error: unexpected $end, "
                         "expecting } or ,")
    inner, rest = query[1:end], query[end + 1:]
    matchers = []
    for part in filter(str.strip, inner.split(",")):
        m = _MATCHER.fullmatch(part)
        if not m:
            raise LogQLError("parse error at line 1, col 2: syntax error: unexpected IDENTIFIER")
        matchers.append((m.group(1), m.group(2), m.group(3)))
    if not any(op in ("=", "=~") and value for _n, op, value in matchers):
        raise LogQLError("parse error : queries require at least one regexp or equality matcher that does not "
                         "have an empty-compatible value. For instance, app=~\".*\" does not meet this "
                         "requirement, but app=~\".+\" will")
    filters = []
    pos = 0
    while pos < len(rest.strip()):
        m = _FILTER.match(rest, pos)
        if not m:
            raise LogQLError(f"parse error at line 1, col {end + 2 + pos}: syntax error: unexpected IDENTIFIER")
        filters.append((m.group(1), m.group(2)))
        pos = m.end()
    return matchers, filters


def _labels_match(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        ok = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]
        if not ok:
            return False
    return True


class FakeLoki(FakeServer):
    """Loki 3.3's HTTP API: /ready, push, query_range, /metrics; streams kept in memory.

    Attributes:
        not_ready_for: answer /ready with 503 this many times first (the warm-up window).
        ingest_delay: seconds before a pushed line shows up in queries.
        drop_pushes: accept pushes (204) but never store them (a broken ingester).
        started_at, bytes_received: what /metrics reports as process_start_time_seconds and
            loki_distributor_bytes_received_total (pushes add to the latter).
    """

    name = "loki"
    NOT_READY = "Ingester not ready: waiting for 15s after being ready\n"

    def __init__(self) -> None:
        super().__init__()
        self.not_ready_for = 0
        self.ingest_delay = 0.0
        self.drop_pushes = False
        self.streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str, float]]] = {}
        self.started_at = time.time()
        self.bytes_received = 0
        self._ready_calls = 0
        self.route("GET", r"/ready", self._ready)
        self.route("GET", r"/metrics", self._metrics)
        self.route("POST", r"/loki/api/v1/push", self._push)
        self.route("GET", r"/loki/api/v1/query_range", self._query_range)

    def add_lines(self, labels: dict[str, str], lines: list[str], *, age: float = 5.0) -> None:
        """Store lines as if they arrived ``age`` seconds ago (e.g. the cluster's pod logs from Alloy)."""
        key = tuple(sorted(labels.items()))
        ts = time.time_ns() - int(age * 1e9)
        with self._lock:
            entries = self.streams.setdefault(key, [])
            entries.extend((ts + i, line, 0.0) for i, line in enumerate(lines))

    def _ready(self, request: Request, _m: re.Match[str]) -> Answer:
        with self._lock:
            self._ready_calls += 1
            warming = self._ready_calls <= self.not_ready_for
        return text(503, self.NOT_READY) if warming else text(200, "ready\n")

    def _push(self, request: Request, _m: re.Match[str]) -> Answer:
        try:
            doc = request.json()
            streams = doc["streams"]
            parsed = [(dict(s["stream"]), [(int(v[0]), str(v[1])) for v in s["values"]]) for s in streams]
        except (ValueError, KeyError, TypeError, IndexError):
            snippet = request.body[:10].decode("utf-8", "replace")
            return text(400, f"loghttp.PushRequest.readFieldHash: expect \", but found {snippet[1:2] or '?'}, "
                             f"error found in #2 byte of ...|{snippet}|...\n")
        if self.drop_pushes:
            return Answer(204)
        visible_at = time.monotonic() + self.ingest_delay
        with self._lock:
            self.bytes_received += sum(len(line) for _labels, values in parsed for _ts, line in values)
            for labels, values in parsed:
                labels.setdefault("service_name", labels.get("job", "unknown_service"))
                key = tuple(sorted(labels.items()))
                self.streams.setdefault(key, []).extend((ts, line, visible_at) for ts, line in values)
        return Answer(204)

    def _metrics(self, request: Request, _m: re.Match[str]) -> Answer:
        with self._lock:
            received = self.bytes_received
        body = (
            "# HELP loki_distributor_bytes_received_total The total number of uncompressed bytes received per "
            "tenant. Includes structured metadata bytes.\n"
            "# TYPE loki_distributor_bytes_received_total counter\n"
            f'loki_distributor_bytes_received_total{{retention_hours="168",tenant="fake"}} {received}\n'
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
            "# TYPE process_start_time_seconds gauge\n"
            f"process_start_time_seconds {self.started_at:.2f}\n"
        )
        return Answer(200, body.encode(), "text/plain; version=0.0.4; charset=utf-8; escaping=values")

    def _query_range(self, request: Request, _m: re.Match[str]) -> Answer:
        query = request.query.get("query", "")
        try:
            matchers, filters = parse_logql(query)
        except LogQLError as exc:
            return text(400, str(exc))
        now = time.time_ns()
        start = int(request.query.get("start") or now - 3600 * 10**9)
        end = int(request.query.get("end") or now)
        limit = int(request.query.get("limit") or 100)
        backward = request.query.get("direction", "backward") == "backward"
        result = []
        total = 0
        with self._lock:
            for key, entries in self.streams.items():
                labels = dict(key)
                if not _labels_match(labels, matchers):
                    continue
                values = [
                    (ts, line) for ts, line, visible_at in entries
                    if start <= ts <= end and visible_at <= time.monotonic()
                    and all((needle in line) == (op == "|=") for op, needle in filters)
                ]
                values.sort(reverse=backward)
                values = values[: max(0, limit - total)]
                if values:
                    total += len(values)
                    result.append({"stream": {**labels, "detected_level": "info"},
                                   "values": [[str(ts), line] for ts, line in values]})
        doc = {"status": "success", "data": {"resultType": "streams", "result": result,
                                             "stats": {"summary": {"totalEntriesReturned": total}}}}
        return as_json(200, doc, LOKI_JSON_TYPE)


# --- Tempo --------------------------------------------------------------------------------------


class FakeTempo(FakeServer):
    """Tempo 2.9's HTTP API (port 3200): /ready, /api/traces/<id>, /api/search, /api/echo.

    Its OTLP/HTTP receiver (port 4318) is a second server, :attr:`otlp`, sharing the
    trace store.

    Attributes:
        not_ready_for: answer /ready with 503 this many times first.
        ingest_delay: seconds before a received trace is found by /api/traces/<id> (404 until then).
        search_delay: seconds before a received trace shows up in /api/search.
    """

    name = "tempo"
    NOT_READY = "Ingester not ready: ingester check ready failed: waiting for 15s after being ready\n"

    def __init__(self) -> None:
        super().__init__()
        self.not_ready_for = 0
        self.ingest_delay = 0.0
        self.search_delay = 0.0
        self.traces: dict[str, list[tuple[dict[str, Any], dict[str, Any], float]]] = {}
        self._ready_calls = 0
        self.otlp = FakeServer()
        self.otlp.name = "tempo-otlp"
        self.otlp.route("POST", r"/v1/traces", self._otlp)
        self.route("GET", r"/ready", self._ready)
        self.route("GET", r"/api/echo", lambda r, m: text(200, "echo"))
        self.route("GET", r"/api/traces/([^/]+)", self._trace)
        self.route("GET", r"/api/search", self._search)

    @property
    def otlp_url(self) -> str:
        return self.otlp.url

    def start(self) -> FakeTempo:
        super().start()
        self.otlp.start()
        return self

    def stop(self) -> None:
        self.otlp.stop()
        super().stop()

    def assert_clean(self) -> None:
        super().assert_clean()
        self.otlp.assert_clean()

    def _ready(self, request: Request, _m: re.Match[str]) -> Answer:
        with self._lock:
            self._ready_calls += 1
            warming = self._ready_calls <= self.not_ready_for
        return text(503, self.NOT_READY) if warming else text(200, "ready\n")

    def _otlp(self, request: Request, _m: re.Match[str]) -> Answer:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return as_json(415, {"code": 3, "message": "unsupported content type"})
        try:
            doc = request.json()
            received = []
            for rs in doc.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        trace_id = str(span["traceId"]).lower()
                        bytes.fromhex(trace_id)
                        received.append((trace_id, rs.get("resource", {}), {**span, "_scope": ss.get("scope", {})}))
        except (ValueError, KeyError, TypeError, AttributeError):
            return as_json(400, {"code": 3, "message": "ReadObjectCB: expect \" after {, but found n"})
        visible_at = time.monotonic()
        with self._lock:
            for trace_id, resource, span in received:
                self.traces.setdefault(trace_id, []).append((resource, span, visible_at))
        return as_json(200, {"partialSuccess": {}})

    def _trace(self, request: Request, m: re.Match[str]) -> Answer:
        trace_id = m.group(1)
        bad = next((i for i, c in enumerate(trace_id) if c not in "0123456789abcdefABCDEF"), None)
        if bad is not None:
            return text(400, f"trace IDs can only contain hex characters: invalid character '{trace_id[bad]}' "
                             f"at position {bad}")
        now = time.monotonic()
        with self._lock:
            spans = [(res, span) for res, span, at in self.traces.get(trace_id.lower().zfill(32), [])
                     if at + self.ingest_delay <= now]
        if not spans:
            return Answer(404)
        batches = []
        for resource, span in spans:
            out = {k: v for k, v in span.items() if k != "_scope"}
            out["traceId"] = base64.b64encode(bytes.fromhex(span["traceId"])).decode()
            out["spanId"] = base64.b64encode(bytes.fromhex(span["spanId"])).decode()
            batches.append({"resource": resource, "scopeSpans": [{"scope": span["_scope"], "spans": [out]}]})
        return as_json(200, {"batches": batches})

    def _search(self, request: Request, _m: re.Match[str]) -> Answer:
        limit = int(request.query.get("limit") or 20)
        now = time.monotonic()
        found = []
        with self._lock:
            for trace_id, spans in self.traces.items():
                visible = [(res, span) for res, span, at in spans if at + self.search_delay <= now]
                if not visible:
                    continue
                res, span = visible[0]
                service = next((a["value"].get("stringValue") for a in res.get("attributes", [])
                                if a.get("key") == "service.name"), "")
                start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
                found.append({"traceID": trace_id, "rootServiceName": service, "rootTraceName": span.get("name"),
                              "startTimeUnixNano": str(start), "durationMs": (end - start) // 1_000_000})
        return as_json(200, {"traces": found[:limit],
                             "metrics": {"inspectedTraces": len(found), "completedJobs": 1, "totalJobs": 1}})


# --- Grafana ------------------------------------------------------------------------------------


def datasources_from_values(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Grafana's API view (``GET /api/datasources/uid/<uid>``) of the data sources a values file provisions."""
    provisioned = values["datasources"]["datasources.yaml"]["datasources"]
    out = {}
    for n, ds in enumerate(provisioned, 1):
        out[ds["uid"]] = {
            "id": n, "uid": ds["uid"], "orgId": 1, "name": ds["name"], "type": ds["type"],
            "typeLogoUrl": f"public/app/plugins/datasource/{ds['type']}/img/logo.svg", "access": ds["access"],
            "url": ds["url"], "user": "", "database": "", "basicAuth": False, "withCredentials": False,
            "isDefault": bool(ds.get("isDefault")), "jsonData": ds.get("jsonData", {}), "secureJsonFields": {},
            "version": 1, "readOnly": True,
        }
    return out


class FakeGrafana(FakeServer):
    """Grafana's HTTP API under its sub path (serve_from_sub_path), with Bearer-token or basic auth.

    Attributes:
        datasources: uid -> the data source as ``GET /api/datasources/uid/<uid>`` returns it.
        health: uid -> (status, message) of Grafana's health check of that data source.
        token: the service account token the API accepts.
        admin: the admin user and password it accepts (basic auth).
        database_failing: /api/health answers 503 with ``"database": "failing"``.
    """

    name = "grafana"
    VERSION = "11.3.0"

    def __init__(self, datasources: dict[str, dict[str, Any]], *, sub_path: str = "/grafana",
                 token: str = "glsa_test_token", admin: tuple[str, str] = ("admin", "admin-password-for-tests")
                 ) -> None:
        super().__init__()
        self.datasources = datasources
        self.health: dict[str, tuple[str, str]] = {
            uid: ("OK", "Data source successfully connected.") for uid in datasources
        }
        self.token = token
        self.admin = admin
        self.database_failing = False
        prefix = re.escape(sub_path.rstrip("/"))
        # Grafana answers /api/health whatever comes before it.
        self.route("GET", r".*/api/health", self._api_health)
        self.route("GET", prefix + r"/api/datasources/uid/([^/]+)", self._datasource)
        self.route("GET", prefix + r"/api/datasources/uid/([^/]+)/health", self._datasource_health)

    def not_found(self, request: Request) -> Answer:
        return as_json(404, {"message": "Not found"})

    def _authorized(self, request: Request) -> bool:
        basic = base64.b64encode(f"{self.admin[0]}:{self.admin[1]}".encode()).decode()
        return request.headers.get("authorization") in (f"Bearer {self.token}", f"Basic {basic}")

    def _unauthorized(self) -> Answer:
        return as_json(401, {"extra": None, "message": "Invalid API key", "messageId": "api-key.invalid",
                             "statusCode": 401, "traceID": ""})

    def _api_health(self, request: Request, _m: re.Match[str]) -> Answer:
        if self.database_failing:
            return as_json(503, {"database": "failing", "version": self.VERSION, "commit": "0123abcd"})
        return as_json(200, {"database": "ok", "version": self.VERSION, "commit": "0123abcd"})

    def _datasource(self, request: Request, m: re.Match[str]) -> Answer:
        if not self._authorized(request):
            return self._unauthorized()
        ds = self.datasources.get(m.group(1))
        if ds is None:
            return as_json(404, {"message": "Data source not found"})
        return as_json(200, ds)

    def _datasource_health(self, request: Request, m: re.Match[str]) -> Answer:
        if not self._authorized(request):
            return self._unauthorized()
        uid = m.group(1)
        if uid not in self.datasources:
            return as_json(500, {"message": "Unable to load datasource metadata"})
        status, message = self.health[uid]
        return as_json(200 if status == "OK" else 400, {"status": status, "message": message})


class FakeGateway(FakeServer):
    """An Envoy-like gateway: requests under ``prefix`` go unchanged to ``upstream``.

    Attributes:
        backend_down: answer 503 "no healthy upstream", as Envoy does when the Service has no ready endpoint.
    """

    name = "gateway"

    def __init__(self, upstream: str, prefix: str = "/grafana") -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.prefix = prefix.rstrip("/")
        self.backend_down = False
        self.route("GET", re.escape(self.prefix) + r"(/.*)?", self._forward)

    def not_found(self, request: Request) -> Answer:
        return Answer(404)

    def _forward(self, request: Request, _m: re.Match[str]) -> Answer:
        if self.backend_down:
            return text(503, "no healthy upstream")
        upstream = urllib.request.Request(self.upstream + request.path, method=request.method,
                                          headers={k: v for k, v in request.headers.items() if k != "host"})
        try:
            with urllib.request.urlopen(upstream, timeout=10) as resp:
                return Answer(resp.status, resp.read(), resp.headers.get("Content-Type"))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read(), exc.headers.get("Content-Type"))
        except OSError:
            return text(503, "upstream connect error or disconnect/reset before headers")


def proxy_to(url: str) -> Callable[[str, str, dict[str, list[str]], bytes, Mapping[str, str]],
                                   tuple[int, str, bytes]]:
    """A backend for the fake Kubernetes API's service proxy that forwards to a fake server at ``url``.

    The request goes on with the headers the API server forwarded, except ``Host`` and
    ``Content-Length``, which belong to the new connection.
    """

    def forward(method: str, path: str, query: dict[str, list[str]], body: bytes,
                forwarded: Mapping[str, str]) -> tuple[int, str, bytes]:
        target = url.rstrip("/") + path + ("?" + urlencode(query, doseq=True) if query else "")
        headers = {k: v for k, v in forwarded.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(target, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()

    return forward


@contextmanager
def serving(*servers: FakeServer, check_clean: bool = True) -> Iterator[None]:
    """Start ``servers``; stop them afterwards and (by default) assert each stayed clean."""
    for server in servers:
        server.start()
    try:
        yield
    finally:
        for server in servers:
            server.stop()
    if check_clean:
        for server in servers:
            server.assert_clean()
