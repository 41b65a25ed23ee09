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

Where the fakes come from. The responses captured from real Loki 3.3.0 and Tempo
2.9.0 that a behaviour below is shaped after are kept in ``tests/data/upstream/``
(its README names the behaviour each file backs). Where the captures are silent,
the behaviour comes from the servers' own source at the captured revisions (Loki
v3.3.0, commit 19bbc448; Tempo v2.9.0, commit 607c7fb6 -- the revisions the
captured ``buildinfo`` reports), and the docstring of the class says so. A request
the fakes cannot answer the way the real server would (a TraceQL query beyond the
small subset below, a protobuf push, ...) is answered 501 by :meth:`FakeServer.unmodelled`
and recorded in ``unexpected`` with the reason, so the test fails instead of
passing against an invented answer.
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
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

JSON_TYPE = "application/json"
LOKI_JSON_TYPE = "application/json; charset=UTF-8"
TEXT_TYPE = "text/plain; charset=utf-8"
#: Responses captured from the real servers (see the README there).
UPSTREAM = Path(__file__).resolve().parents[1] / "data" / "upstream"


def captured(name: str) -> bytes:
    """The body of a response captured from a real Loki or Tempo (a file of ``tests/data/upstream``)."""
    return (UPSTREAM / name).read_bytes()


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
        #: Why each request answered by :meth:`unmodelled` could not be answered faithfully.
        self.unmodelled_reasons: list[str] = []
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
        ) + "".join(f"\n  not modelled: {why}" for why in self.unmodelled_reasons)
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

    def unmodelled(self, request: Request, why: str) -> Answer:
        """Record a request the fake cannot answer as the real server would, and answer 501.

        The request lands in ``unexpected`` (so :meth:`assert_clean` fails the test) with
        ``why`` in ``unmodelled_reasons``. 501 is the fake's own answer, not the real server's.
        """
        with self._lock:
            self.unexpected.append(request)
            self.unmodelled_reasons.append(f"{request.method} {request.path}: {why}")
        return text(501, f"{self.name} fake: not modelled: {why}\n")

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


#: Loki 3.3.0's default ``limits_config.discover_service_name`` (pkg/validation/limits.go): the first of these
#: labels with a value becomes ``service_name`` when a pushed stream has none (pkg/loghttp/push/push.go).
DISCOVER_SERVICE_NAME = ("service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
                         "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name")
#: Loki 3.3.0's default ``limits_config.reject_old_samples_max_age`` (7d) and ``creation_grace_period`` (10m),
#: pkg/validation/limits.go; o11yctl's Loki values leave both alone.
REJECT_OLD_SAMPLES_MAX_AGE = 7 * 24 * 3600.0
CREATION_GRACE_PERIOD = 600.0


def prometheus_labels(labels: Mapping[str, str]) -> str:
    """A label set as Loki prints it in errors (Prometheus ``labels.String()``): sorted, ``", "``-separated."""
    return "{" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())) + "}"


def _rfc3339(ts_ns: int) -> str:
    """Go's ``time.Format(time.RFC3339)`` of a UTC time: whole seconds, ``Z``."""
    return datetime.fromtimestamp(ts_ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _grouped(errors: list[str]) -> str:
    """Loki's ``util.GroupedErrors``: one message as is; repeats as ``N errors like: ...``, joined by ``; ``.

    (Loki walks a map, so the order of different messages varies; here it is first-seen.)
    """
    counts: dict[str, int] = {}
    for err in errors:
        counts[err] = counts.get(err, 0) + 1
    if len(counts) == 1 and len(errors) == 1:
        return errors[0]
    return "; ".join(f"{n} errors like: {err}" for err, n in counts.items())


class FakeLoki(FakeServer):
    """Loki 3.3's HTTP API: /ready, push, query_range, /metrics; streams kept in memory.

    Push (``POST /loki/api/v1/push``, JSON only) follows the captures: 204 with an empty
    body, also while /ready still answers 503 (``loki__push__while_not_ready.txt``); a line
    older than :attr:`reject_old_samples_max_age` is refused with 400 and Loki's message
    (``loki__push__old_timestamp.txt``, byte for byte). The window is Loki's default
    ``reject_old_samples_max_age`` of 7d (``RejectOldSamplesMaxAge.Set("7d")`` in Loki
    v3.3.0's pkg/validation/limits.go; the capture's "oldest acceptable" time is exactly 7
    days before it was taken). From the same source, not captured: a line more than
    :attr:`creation_grace_period` (10m) in the future is refused as "too new"; the other
    lines of a request are still stored when some are refused; several refusals are
    grouped as Loki's ``GroupedErrors`` does; ``service_name`` is added to a stream that
    has none from :data:`DISCOVER_SERVICE_NAME` (the captured query answers show it).
    A push that is not ``application/json`` (Loki reads it as snappy protobuf) is not
    modelled. Loki prints times in the server's zone; the capture's server ran in UTC, as
    the fake does.

    Attributes:
        not_ready_for: answer /ready with 503 this many times first (the warm-up window).
        ingest_delay: seconds before a pushed line shows up in queries.
        drop_pushes: accept pushes (204) but never store them (a broken ingester).
        reject_old_samples_max_age, creation_grace_period: the push's time window, in seconds.
        clock: the server's wall clock (``time.time``), which push validation reads; a test may
            pin it to reproduce a capture exactly.
        started_at, bytes_received: what /metrics reports as process_start_time_seconds and
            loki_distributor_bytes_received_total (every pushed line adds to the latter, refused
            ones too: Loki counts them as it parses the request).
    """

    name = "loki"
    NOT_READY = "Ingester not ready: waiting for 15s after being ready\n"
    TOO_OLD = "entry for stream '%s' has timestamp too old: %s, oldest acceptable timestamp is: %s"
    TOO_NEW = "entry for stream '%s' has timestamp too new: %s"

    def __init__(self) -> None:
        super().__init__()
        self.not_ready_for = 0
        self.ingest_delay = 0.0
        self.drop_pushes = False
        self.reject_old_samples_max_age = REJECT_OLD_SAMPLES_MAX_AGE
        self.creation_grace_period = CREATION_GRACE_PERIOD
        self.clock: Callable[[], float] = time.time
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
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return self.unmodelled(request, f"a push with Content-Type {media or '(none)'!r}: Loki reads it as "
                                            "snappy-compressed protobuf")
        try:
            doc = request.json()
            streams = doc["streams"]
            parsed = [(dict(s["stream"]), [(int(v[0]), str(v[1])) for v in s["values"]]) for s in streams]
        except (ValueError, KeyError, TypeError, IndexError):
            snippet = request.body[:10].decode("utf-8", "replace")
            return text(400, f"loghttp.PushRequest.readFieldHash: expect \", but found {snippet[1:2] or '?'}, "
                             f"error found in #2 byte of ...|{snippet}|...\n")
        now_ns = int(self.clock() * 1e9)
        oldest_ns = now_ns - int(self.reject_old_samples_max_age * 1e9)
        newest_ns = now_ns + int(self.creation_grace_period * 1e9)
        errors: list[str] = []
        accepted: list[tuple[dict[str, str], list[tuple[int, str]]]] = []
        for labels, values in parsed:
            if "service_name" not in labels:
                labels["service_name"] = next((labels[n] for n in DISCOVER_SERVICE_NAME if labels.get(n)),
                                              "unknown_service")
            kept = []
            for ts, line in values:
                if ts < oldest_ns:
                    errors.append(self.TOO_OLD % (prometheus_labels(labels), _rfc3339(ts), _rfc3339(oldest_ns)))
                elif ts > newest_ns:
                    errors.append(self.TOO_NEW % (prometheus_labels(labels), _rfc3339(ts)))
                else:
                    kept.append((ts, line))
            accepted.append((labels, kept))
        visible_at = time.monotonic() + self.ingest_delay
        with self._lock:
            self.bytes_received += sum(len(line) for _labels, values in parsed for _ts, line in values)
            for labels, kept in accepted:
                if kept and not self.drop_pushes:
                    key = tuple(sorted(labels.items()))
                    self.streams.setdefault(key, []).extend((ts, line, visible_at) for ts, line in kept)
        if errors:
            return text(400, _grouped(errors) + "\n")
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


class TraceQLError(ValueError):
    """A TraceQL query Tempo refuses, with the message it answers (400)."""


class NotModelled(ValueError):
    """A request the fake cannot answer the way the real server would."""


_TRACEQL_TOKEN = re.compile(r"""\s*(?:
    (?P<open>\{) | (?P<close>\}) | (?P<and>&&)
  | (?P<op>!=|=~|!~|>=|<=|=|>|<)
  | (?P<attr>(?:resource|span)\.[A-Za-z0-9_.\-/]+)
  | (?P<str>"(?:[^"\\]|\\["\\])*"|`[^`]*`)
  | (?P<other>\S)
)""", re.VERBOSE)


def parse_traceql(query: str) -> list[tuple[str, str, str]]:
    """The TraceQL the fake evaluates: ``{}`` or ``{ <scope>.<attr> = "<string>" && ... }``, scope
    ``resource`` or ``span``. Returns (scope, attribute, value) conditions.

    Raises:
        TraceQLError: the query ends right after ``=``, as in the captured
            ``tempo__api_search__invalid_traceql.txt`` (``{resource.service.name=``).
        NotModelled: anything else (other operators, unscoped or intrinsic attributes, ``||``,
            pipelines, other syntax errors): Tempo's answer to it is not captured.
    """
    tokens = []
    pos = 0
    while pos < len(query) and query[pos:].strip():
        m = _TRACEQL_TOKEN.match(query, pos)
        assert m is not None and m.lastgroup is not None
        if m.lastgroup == "other":
            raise NotModelled(f"TraceQL beyond the modelled subset at col {m.start('other') + 1}: {query!r}")
        tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    ends_here = pos == len(query) and "\n" not in query

    def take(kind: str) -> str:
        if not tokens:
            raise NotModelled(f"incomplete TraceQL (Tempo's message for it is not captured): {query!r}")
        got, value = tokens.pop(0)
        if got != kind:
            raise NotModelled(f"TraceQL beyond the modelled subset ({value!r} where {kind} was expected): {query!r}")
        return value

    take("open")
    conditions: list[tuple[str, str, str]] = []
    if tokens[:1] == [("close", "}")]:
        tokens.pop(0)
    else:
        while True:
            scope, _, attr = take("attr").partition(".")
            op = take("op")
            if op != "=":
                raise NotModelled(f"TraceQL operator {op!r} is not modelled: {query!r}")
            if not tokens and ends_here:
                raise TraceQLError(f"invalid TraceQL query: parse error at line 1, col {len(query) + 1}: "
                                   "syntax error: unexpected $end")
            literal = take("str")
            value = literal[1:-1] if literal[0] == "`" else re.sub(r"\\(.)", r"\1", literal[1:-1])
            conditions.append((scope, attr, value))
            if tokens[:1] == [("and", "&&")]:
                tokens.pop(0)
                continue
            take("close")
            break
    if tokens:
        raise NotModelled(f"TraceQL beyond the modelled subset (after the spanset filter): {query!r}")
    return conditions


def parse_logfmt_tags(encoded: str) -> dict[str, str]:
    """``tags=`` as Tempo decodes it (go-logfmt): ``key=value key2="quoted value"``.

    Raises:
        TraceQLError: a tag set twice (Tempo's own message).
        NotModelled: a pair the fake's small decoder does not read (go-logfmt's errors are not captured).
    """
    tags: dict[str, str] = {}
    for m in re.finditer(r'\s*([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"=]+)\s*|(\S+)', encoded):
        if m.group(3) is not None:
            raise NotModelled(f"tags the fake cannot decode like go-logfmt: {encoded!r}")
        key, raw = m.group(1), m.group(2)
        value = json.loads(raw) if raw.startswith('"') else raw
        if key in tags:
            raise TraceQLError(f"invalid tags: tag {key} has been set twice")
        tags[key] = value
    return tags


def _go_int(name: str, value: str, *, bits: int) -> int:
    """Go's ``strconv.ParseInt(value, 10, bits)`` (``Atoi`` for 64), with the error Tempo wraps it in."""
    func = "Atoi" if bits == 64 else "ParseInt"
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise TraceQLError(f'invalid {name}: strconv.{func}: parsing {json.dumps(value)}: invalid syntax')
    number = int(value)
    if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
        raise TraceQLError(f'invalid {name}: strconv.{func}: parsing {json.dumps(value)}: value out of range')
    return number


def _string_attr(attrs: list[dict[str, Any]], key: str) -> str | None:
    return next((a["value"].get("stringValue") for a in attrs if a.get("key") == key
                 and isinstance(a.get("value"), dict)), None)


class FakeTempo(FakeServer):
    """Tempo 2.9's HTTP API (port 3200): /ready, /api/traces/<id>, /api/search, /api/echo.

    Its OTLP/HTTP receiver (port 4318) is a second server, :attr:`otlp`, sharing the
    trace store. It takes OTLP JSON only (protobuf is not modelled) and answers the
    captured ``{"partialSuccess":{}}`` (``tempo__otlp_http_v1_traces__json.txt``).
    While the distributor's ring has no ingester yet (set :attr:`otlp_unready_for`), an
    export with spans answers 503 with the captured body ``{"code":14, "message":"DoBatch:
    InstancesCount <= 0"}`` (``tempo__otlp__while_starting__503.txt``) and is not stored.
    The capture does not record the 503's Content-Type; the fake sends
    ``application/json``, as the receiver's captured 400 does. The capture behind
    ``tempo__otlp__while_not_ready.txt`` saw OTLP answer 503 and then 200 while /ready
    still answered 503, so :attr:`otlp_unready_for` and :attr:`not_ready_for` are
    independent. From Tempo's source (modules/distributor/distributor.go, PushTraces), an
    export without spans answers 200 before the ring is asked, so it never gets the 503.

    ``/api/search`` (answers shaped after ``tempo__api_search__*.json``):

    - ``q`` (TraceQL): ``{}`` and ``{resource.<attr> = "v" && span.<attr> = "v" ...}``
      (string equality), as the captured query; matching traces carry ``spanSet``,
      ``spanSets`` (up to ``spss``, default 3, spans with the queried attributes) and
      ``serviceStats``. A query cut off right after ``=`` answers the captured 400
      (``tempo__api_search__invalid_traceql.txt``). Any other TraceQL, valid or not, is not
      modelled (:class:`NotModelled`).
    - ``tags`` (logfmt): ``service.name`` and ``name`` match as substrings, ``root.service.name``
      and ``root.name`` against the root span, any other key as the exact string value of a
      span or resource attribute (at most one such key) -- as Tempo's vParquet4 tag search
      does (tempodb/encoding/vparquet4/block_search.go). Other well-known tags (``status.code``,
      ``http.status_code``, k8s names) are not modelled.
    - neither: every trace matches (``o11yctl verify`` asks ``/api/search?limit=10``); other
      query parameters then count as tags, as pkg/api/http.go still allows.
    - ``start``/``end`` (unix seconds): a trace matches when it overlaps the window (start <=
      end and end >= start), only when both are set; ``limit`` (default 20) keeps the traces
      that started last. Bad values answer Tempo's 400 messages (pkg/api/http.go,
      ParseSearchRequest), as does ``q`` together with ``tags``. A window longer than the
      default ``max_duration`` (168h) and ``minDuration``/``maxDuration`` are not modelled.
    - trace ids lose their leading zeros (util.TraceIDToHexString); a trace without a root
      span shows ``<root span not yet received>``; empty and zero fields are left out, as
      Tempo's JSON marshalling does; the ``metrics`` numbers are the fake's own.

    Attributes:
        not_ready_for: answer /ready with 503 this many times first.
        otlp_unready_for: answer this many OTLP exports (with spans) 503 first, as a freshly
            started Tempo does while its ring forms (0: ready at once).
        ingest_delay: seconds before a received trace is found by /api/traces/<id> (404 until then).
        search_delay: seconds before a received trace shows up in /api/search.
    """

    name = "tempo"
    NOT_READY = "Ingester not ready: ingester check ready failed: waiting for 15s after being ready\n"
    OTLP_UNAVAILABLE = "tempo__otlp__while_starting__503.txt"
    OTLP_ACCEPTED = "tempo__otlp_http_v1_traces__json.txt"
    ROOT_NOT_RECEIVED = "<root span not yet received>"
    DEFAULT_LIMIT = 20
    DEFAULT_SPSS = 3

    def __init__(self) -> None:
        super().__init__()
        self.not_ready_for = 0
        self.otlp_unready_for = 0
        self.ingest_delay = 0.0
        self.search_delay = 0.0
        self.traces: dict[str, list[tuple[dict[str, Any], dict[str, Any], float]]] = {}
        self._ready_calls = 0
        self._otlp_calls = 0
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
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return self.otlp.unmodelled(request, f"an OTLP export with Content-Type {media or '(none)'!r} "
                                                 "(only OTLP JSON is modelled)")
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
        if received:
            with self._lock:
                self._otlp_calls += 1
                starting = self._otlp_calls <= self.otlp_unready_for
            if starting:
                return Answer(503, captured(self.OTLP_UNAVAILABLE), JSON_TYPE)
        visible_at = time.monotonic()
        with self._lock:
            for trace_id, resource, span in received:
                self.traces.setdefault(trace_id, []).append((resource, span, visible_at))
        return Answer(200, captured(self.OTLP_ACCEPTED), JSON_TYPE)

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

    # --- search ----------------------------------------------------------------------------------

    def _search(self, request: Request, _m: re.Match[str]) -> Answer:
        try:
            return self._search_answer(request)
        except TraceQLError as exc:
            return Answer(400, str(exc).encode(), TEXT_TYPE)
        except NotModelled as exc:
            return self.unmodelled(request, str(exc))

    def _search_answer(self, request: Request) -> Answer:
        """Tempo's ParseSearchRequest and the frontend's checks, in their order, then the search."""
        params = {k: v for k, v in request.query.items() if v != ""}  # Tempo treats an empty parameter as absent
        start = _go_int("start", params["start"], bits=32) if "start" in params else 0
        end = _go_int("end", params["end"], bits=32) if "end" in params else 0
        if start < 0 or end < 0:
            raise NotModelled("a negative start or end (Tempo converts it to uint32)")
        query = params.get("q")
        tags: dict[str, str] = {}
        if "tags" in params:
            if query is not None:
                raise TraceQLError("invalid request: can't specify tags and q in the same query")
            tags = parse_logfmt_tags(params["tags"])
        elif query is None and not start and not end:
            reserved = {"q", "tags", "minDuration", "maxDuration", "limit", "spss", "start", "end"}
            tags = {k: v for k, v in params.items() if k not in reserved}
        if "minDuration" in params or "maxDuration" in params:
            raise NotModelled("minDuration/maxDuration")
        limit = self.DEFAULT_LIMIT
        if "limit" in params:
            limit = _go_int("limit", params["limit"], bits=64)
            if limit <= 0:
                raise TraceQLError("invalid limit: must be a positive number")
        spss = self.DEFAULT_SPSS
        if "spss" in params:
            spss = _go_int("spss", params["spss"], bits=64)
            if spss <= 0:
                raise TraceQLError("invalid spss: must be a positive number")
        if (start or end) and end <= start:
            raise TraceQLError(f"http parameter start must be before end. received start={start} end={end}")
        conditions = parse_traceql(query) if query is not None else None
        if start and end and end - start > 168 * 3600:
            raise NotModelled("a window longer than Tempo's default search max_duration (168h)")

        now = time.monotonic()
        with self._lock:
            stored = {tid: [(res, span) for res, span, at in spans if at + self.search_delay <= now]
                      for tid, spans in self.traces.items()}
        stored = {tid: spans for tid, spans in stored.items() if spans}
        found = []
        for trace_id, spans in stored.items():
            first = min(int(span["startTimeUnixNano"]) for _res, span in spans)
            last = max(int(span["endTimeUnixNano"]) for _res, span in spans)
            if start and end and not (first <= end * 10**9 and last >= start * 10**9):
                continue
            if conditions is None:
                if not self._tags_match(tags, spans):
                    continue
                found.append(self._metadata(trace_id, spans, first, last))
                continue
            matched = [(res, span) for res, span in spans if all(
                _string_attr((res if scope == "resource" else span).get("attributes", []), attr) == value
                for scope, attr, value in conditions)]
            if matched:
                found.append(self._metadata(trace_id, spans, first, last, matched=matched, conditions=conditions,
                                            spss=spss))
        found.sort(key=lambda t: int(t["startTimeUnixNano"]), reverse=True)
        inspected = sum(len(json.dumps(span)) for spans in stored.values() for _res, span in spans)
        metrics: dict[str, Any] = {}
        if conditions is None and stored:
            metrics["inspectedTraces"] = len(stored)
        if inspected:
            metrics["inspectedBytes"] = str(inspected)
        metrics.update(completedJobs=1, totalJobs=1)
        return as_json(200, {"traces": found[:limit], "metrics": metrics})

    @staticmethod
    def _root(spans: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        return next(((res, span) for res, span in spans if not span.get("parentSpanId")), None)

    def _tags_match(self, tags: dict[str, str], spans: list[tuple[dict[str, Any], dict[str, Any]]]) -> bool:
        generic = [k for k in tags if k not in ("service.name", "name", "root.service.name", "root.name")]
        special = {"cluster", "namespace", "pod", "container", "k8s.cluster.name", "k8s.namespace.name",
                   "k8s.pod.name", "k8s.container.name", "http.method", "http.url", "http.status_code",
                   "status.code"}
        if any(k in special for k in generic) or len(generic) > 1:
            raise NotModelled(f"tags the fake does not search like Tempo's vParquet4 columns: {sorted(tags)}")
        root = self._root(spans)
        for key, value in tags.items():
            if key == "service.name":
                ok = any(value in (_string_attr(res.get("attributes", []), "service.name") or "") for res, _s in spans)
            elif key == "name":
                ok = any(value in str(span.get("name", "")) for _r, span in spans)
            elif key == "root.service.name":
                ok = root is not None and value in (_string_attr(root[0].get("attributes", []), "service.name") or "")
            elif key == "root.name":
                ok = root is not None and value in str(root[1].get("name", ""))
            else:
                ok = any(_string_attr(res.get("attributes", []), key) == value
                         or _string_attr(span.get("attributes", []), key) == value for res, span in spans)
            if not ok:
                return False
        return True

    def _metadata(self, trace_id: str, spans: list[tuple[dict[str, Any], dict[str, Any]]], first: int, last: int, *,
                  matched: list[tuple[dict[str, Any], dict[str, Any]]] | None = None,
                  conditions: list[tuple[str, str, str]] | None = None, spss: int = 3) -> dict[str, Any]:
        """One trace of a search answer, with Tempo's field order and its zero fields left out."""
        root = self._root(spans)
        out: dict[str, Any] = {"traceID": trace_id.lstrip("0"),
                               "rootServiceName": self.ROOT_NOT_RECEIVED}
        if root is not None:
            out["rootServiceName"] = _string_attr(root[0].get("attributes", []), "service.name") or \
                self.ROOT_NOT_RECEIVED
            if root[1].get("name"):
                out["rootTraceName"] = root[1]["name"]
        out["startTimeUnixNano"] = str(first)
        if (last - first) // 1_000_000:
            out["durationMs"] = (last - first) // 1_000_000
        if matched is None:
            return out
        shown = []
        for res, span in sorted(matched, key=lambda rs: int(rs[1]["startTimeUnixNano"]))[:spss]:
            begin = int(span["startTimeUnixNano"])
            entry: dict[str, Any] = {"spanID": str(span["spanId"]).lower().zfill(16), "startTimeUnixNano": str(begin)}
            if int(span["endTimeUnixNano"]) - begin:
                entry["durationNanos"] = str(int(span["endTimeUnixNano"]) - begin)
            attributes = []
            for scope, attr in dict.fromkeys((scope, attr) for scope, attr, _v in conditions or ()):
                source = res if scope == "resource" else span
                found = next((a for a in source.get("attributes", []) if a.get("key") == attr), None)
                if found is not None:
                    attributes.append({"key": attr, "value": found["value"]})
            if attributes:
                entry["attributes"] = attributes
            shown.append(entry)
        spanset = {"spans": shown, "matched": len(matched)}
        out["spanSet"] = spanset
        out["spanSets"] = [spanset]
        stats: dict[str, dict[str, int]] = {}
        for res, span in spans:
            service = _string_attr(res.get("attributes", []), "service.name") or ""
            stat = stats.setdefault(service, {"spanCount": 0})
            stat["spanCount"] += 1
            if (span.get("status") or {}).get("code") in (2, "STATUS_CODE_ERROR"):
                stat["errorCount"] = stat.get("errorCount", 0) + 1
        out["serviceStats"] = stats
        return out


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
