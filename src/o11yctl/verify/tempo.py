"""Tempo: /ready, one span sent over OTLP/HTTP and fetched back by its trace id, and search.

The span belongs to the service ``o11yctl-verify`` and carries the attribute
``o11yctl.check=verify``, so it can be told apart from real traffic.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from o11yctl.config import Config
from o11yctl.executors.http import HttpResponse
from o11yctl.stack.components import Component
from o11yctl.verify import hints
from o11yctl.verify.base import Check, CheckContext, Polled, Verdict, failed, passed, poll
from o11yctl.verify.proxied import endpoint_unreachable, judge_proxy
from o11yctl.verify.ready import ReadyFacts, gather_ready, judge_ready

VERIFY_SERVICE = "o11yctl-verify"
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_JSON = {"Content-Type": "application/json"}


def _again(resp: HttpResponse) -> bool:
    return resp.status in _RETRY_STATUSES and not endpoint_unreachable(resp)


def _proxied(resp: HttpResponse, namespace: str, port: int = 3200) -> Verdict | None:
    return judge_proxy(resp, component="Tempo", namespace=namespace, service="tempo", port=port)


def check_ready(ctx: CheckContext) -> Verdict:
    """tempo.ready"""
    facts: ReadyFacts = gather_ready(ctx, "Tempo", ctx.tempo)
    return judge_ready(facts, namespace=ctx.namespace, not_ready_hint=hints.tempo_not_ready(ctx.namespace),
                       service="tempo", port=3200)


# --- one span, end to end ------------------------------------------------------------------------


def otlp_body(trace_id: str, span_id: str, start_ns: int, run_id: str) -> bytes:
    """An OTLP/HTTP JSON export request with one span (ids hex-encoded, as OTLP JSON wants)."""
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": "o11yctl verify",
        "kind": 1,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + 1_000_000),
        "attributes": [
            {"key": "o11yctl.check", "value": {"stringValue": "verify"}},
            {"key": "o11yctl.run", "value": {"stringValue": run_id}},
        ],
        "status": {"code": 1},
    }
    doc = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": VERIFY_SERVICE}}]},
            "scopeSpans": [{"scope": {"name": "o11yctl"}, "spans": [span]}],
        }]
    }
    return json.dumps(doc).encode()


def _hex_id(value: Any) -> str | None:
    """A span or trace id as lower-case hex: Tempo's trace JSON has base64, OTLP JSON hex."""
    if not isinstance(value, str) or not value:
        return None
    if all(c in "0123456789abcdefABCDEF" for c in value) and len(value) in (16, 32):
        return value.lower()
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def trace_span_ids(doc: Any) -> Iterator[str]:
    """Every span id (hex) in a trace answered by ``/api/traces/<id>`` (v1 ``batches`` or OTLP shape)."""
    if not isinstance(doc, dict):
        return
    trace = doc.get("trace")
    root: dict[str, Any] = trace if isinstance(trace, dict) else doc
    for batch in root.get("batches") or root.get("resourceSpans") or ():
        for scope in batch.get("scopeSpans") or batch.get("instrumentationLibrarySpans") or ():
            for span in scope.get("spans") or ():
                span_id = _hex_id(span.get("spanId"))
                if span_id:
                    yield span_id


@dataclass(frozen=True, slots=True)
class TraceFacts:
    """The OTLP export of one span, and the fetches of its trace."""

    otlp_where: str
    where: str
    trace_id: str
    span_id: str
    send: Polled
    fetch: Polled | None


def gather_e2e(ctx: CheckContext) -> TraceFacts:
    """Send one span to the OTLP/HTTP receiver, then fetch its trace until Tempo has it."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    body = otlp_body(trace_id, span_id, time.time_ns(), ctx.run_id)
    send = poll(
        lambda t: ctx.otlp.request("POST", "/v1/traces", timeout=t, body=body, headers=_JSON),
        deadline=ctx.deadline, request_timeout=ctx.request_timeout, interval=ctx.poll_interval,
        done=lambda r: r.ok, again=_again,
    )
    if not send.last.ok:
        return TraceFacts(ctx.otlp.where, ctx.tempo.where, trace_id, span_id, send, None)
    fetch = poll(
        lambda t: ctx.tempo.request("GET", f"/api/traces/{trace_id}", timeout=t),
        deadline=ctx.deadline, request_timeout=ctx.request_timeout, interval=ctx.poll_interval,
        done=lambda r: r.status == 200, again=lambda r: r.status == 404 or _again(r),
    )
    return TraceFacts(ctx.otlp.where, ctx.tempo.where, trace_id, span_id, send, fetch)


def _rejected(resp: HttpResponse) -> str | None:
    doc = resp.json()
    partial = doc.get("partialSuccess") if isinstance(doc, dict) else None
    if isinstance(partial, dict) and int(partial.get("rejectedSpans") or 0) > 0:
        return str(partial.get("errorMessage") or f"{partial['rejectedSpans']} span(s) rejected")
    return None


def judge_e2e(facts: TraceFacts, *, namespace: str) -> Verdict:
    """The trace comes back with our span: PASS. Refused, unreachable or never ingested: FAIL."""
    send = facts.send.last
    if send.status is None:
        return failed(f"OTLP/HTTP {facts.otlp_where}: {send.error}", hints.otlp_unreachable(namespace,
                                                                                             facts.otlp_where))
    if not send.ok:
        return _proxied(send, namespace, 4318) or failed(f"OTLP/HTTP export refused: {send.describe()}",
                                                         hints.tempo_not_ready(namespace))
    rejected = _rejected(send)
    if rejected:
        return failed(f"OTLP/HTTP export partly rejected: {rejected}", hints.tempo_not_ready(namespace))
    assert facts.fetch is not None
    last = facts.fetch.last
    if last.status == 200:
        if facts.span_id in set(trace_span_ids(last.json())):
            total = facts.send.seconds + facts.fetch.seconds
            return passed(f"sent a span over OTLP/HTTP and fetched trace {facts.trace_id} back in {total:.1f}s")
        return failed(f"trace {facts.trace_id} came back without the span that was sent ({facts.span_id})",
                      hints.tempo_storage(namespace))
    if last.status is None:
        return failed(f"/api/traces: {last.error}",
                      hints.unreachable("Tempo", facts.where, namespace, service="tempo", port=3200))
    if last.status == 404:
        return failed(f"trace {facts.trace_id} still not found {facts.fetch.seconds:.0f}s after Tempo accepted it",
                      hints.tempo_storage(namespace))
    return _proxied(last, namespace) or failed(f"/api/traces answered {last.describe()}",
                                               hints.tempo_not_ready(namespace))


def check_e2e(ctx: CheckContext) -> Verdict:
    """tempo.e2e"""
    return judge_e2e(gather_e2e(ctx), namespace=ctx.namespace)


# --- search ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchFacts:
    where: str
    polled: Polled


def gather_search(ctx: CheckContext) -> SearchFacts:
    """``/api/search?limit=10``, as the runbook asks it (waiting out a 503 while Tempo starts)."""
    polled = poll(
        lambda t: ctx.tempo.request("GET", "/api/search", timeout=t, params=[("limit", "10")]),
        deadline=ctx.deadline, request_timeout=ctx.request_timeout, interval=ctx.poll_interval,
        done=lambda r: r.ok, again=_again,
    )
    return SearchFacts(ctx.tempo.where, polled)


def judge_search(facts: SearchFacts, *, namespace: str) -> Verdict:
    """Search answers with a ``traces`` list: PASS (an empty list too; new traces show up seconds later)."""
    last = facts.polled.last
    if last.status is None:
        return failed(f"/api/search: {last.error}",
                      hints.unreachable("Tempo", facts.where, namespace, service="tempo", port=3200))
    if not last.ok:
        return _proxied(last, namespace) or failed(f"/api/search answered {last.describe()}",
                                                   hints.tempo_not_ready(namespace))
    doc = last.json()
    traces = doc.get("traces") if isinstance(doc, dict) else None
    if not isinstance(traces, list):
        return failed(f"/api/search answered 200 without a traces list: {last.describe(80)}",
                      hints.tempo_not_ready(namespace))
    services = sorted({str(t.get("rootServiceName")) for t in traces if isinstance(t, dict)} - {"None"})
    shown = f": {', '.join(services[:4])}{', …' if len(services) > 4 else ''}" if services else ""
    return passed(f"answers; {len(traces)} recent trace(s){shown}")


def check_search(ctx: CheckContext) -> Verdict:
    """tempo.search"""
    return judge_search(gather_search(ctx), namespace=ctx.namespace)


def checks(cfg: Config, component: Component) -> tuple[Check, ...]:
    """The checks of group ``tempo``."""
    return (
        Check("tempo.ready", component.name, "Tempo answers /ready", ("tempo-http",), check_ready),
        Check("tempo.e2e", component.name, "a span sent over OTLP/HTTP can be fetched back", ("tempo-http", "otlp"),
              check_e2e, writes=True),
        Check("tempo.search", component.name, "Tempo's search answers", ("tempo-http",), check_search),
    )
