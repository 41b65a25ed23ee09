"""Loki: /ready, a line pushed and read back, and the cluster's own logs arriving.

The end-to-end line goes to one fixed stream, ``{job="o11yctl-verify"}``, so runs
do not create new streams; each run's line carries its own token, found again with
a ``|=`` filter.
"""

from __future__ import annotations

import json
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
from o11yctl.verify.ready import gather_ready, judge_ready

VERIFY_JOB = "o11yctl-verify"
VERIFY_SELECTOR = f'{{job="{VERIFY_JOB}"}}'
CLUSTER_LOGS_WINDOW = 15 * 60
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_JSON = {"Content-Type": "application/json"}


def _retry_unavailable(resp: HttpResponse) -> bool:
    return resp.status in _RETRY_STATUSES and not endpoint_unreachable(resp)


def _proxied(resp: HttpResponse, namespace: str) -> Verdict | None:
    return judge_proxy(resp, component="Loki", namespace=namespace, service="loki", port=3100)


def check_ready(ctx: CheckContext) -> Verdict:
    """loki.ready"""
    return judge_ready(gather_ready(ctx, "Loki", ctx.loki), namespace=ctx.namespace,
                       not_ready_hint=hints.loki_not_ready(ctx.namespace), service="loki", port=3100)


# --- a line pushed and read back ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class E2eFacts:
    """The push of one token-carrying line, and the queries that looked for it."""

    where: str
    token: str
    push: Polled
    query: Polled | None


def push_body(token: str, ts_ns: int) -> bytes:
    """Loki's JSON push body: one line in the verify stream."""
    line = f"o11yctl verify probe token={token}"
    return json.dumps({"streams": [{"stream": {"job": VERIFY_JOB}, "values": [[str(ts_ns), line]]}]}).encode()


def stream_lines(doc: Any) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(timestamp ns, line, labels) of every entry in a query_range ``streams`` answer."""
    if not isinstance(doc, dict):
        return
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "streams":
        return
    for stream in data.get("result") or ():
        labels = stream.get("stream") or {}
        for value in stream.get("values") or ():
            if isinstance(value, list) and len(value) >= 2:
                try:
                    yield int(value[0]), str(value[1]), labels
                except ValueError:
                    continue


def _has_token(resp: HttpResponse, token: str) -> bool:
    return resp.ok and any(token in line for _ts, line, _l in stream_lines(resp.json()))


def gather_e2e(ctx: CheckContext) -> E2eFacts:
    """Push one line with a unique token, then query for it until it is found or time runs out."""
    token = f"o11yctl-verify-{ctx.run_id}"
    ts_ns = time.time_ns()
    body = push_body(token, ts_ns)
    push = poll(
        lambda t: ctx.loki.request("POST", "/loki/api/v1/push", timeout=t, body=body, headers=_JSON),
        deadline=ctx.deadline, request_timeout=ctx.request_timeout, interval=ctx.poll_interval,
        done=lambda r: r.ok, again=_retry_unavailable,
    )
    if not push.last.ok:
        return E2eFacts(ctx.loki.where, token, push, None)
    query = f'{VERIFY_SELECTOR} |= "{token}"'

    def send(timeout: float) -> HttpResponse:
        end_ns = time.time_ns() + 60 * 10**9
        params = [("query", query), ("start", str(ts_ns - 300 * 10**9)), ("end", str(end_ns)),
                  ("limit", "10"), ("direction", "backward")]
        return ctx.loki.request("GET", "/loki/api/v1/query_range", timeout=timeout, params=params)

    found = poll(
        send, deadline=ctx.deadline, request_timeout=ctx.request_timeout, interval=ctx.poll_interval,
        done=lambda r: _has_token(r, token), again=lambda r: r.ok or _retry_unavailable(r),
    )
    return E2eFacts(ctx.loki.where, token, push, found)


def judge_e2e(facts: E2eFacts, *, namespace: str) -> Verdict:
    """Found is a PASS; a refused push, a failing query or a line that never shows up are failures."""
    push = facts.push.last
    unreachable = hints.unreachable("Loki", facts.where, namespace, service="loki", port=3100)
    if push.status is None:
        return failed(f"push to {facts.where}: {push.error}", unreachable)
    if not push.ok and (proxied := _proxied(push, namespace)) is not None:
        return proxied
    if not push.ok:
        hint = hints.loki_not_ready(namespace)
        if "too old" in push.text or "too far behind" in push.text or "too new" in push.text:
            hint = "Loki rejects the line's timestamp: check this machine's clock (and the nodes'), then run again"
        return failed(f"push refused: {push.describe()}", hint)
    assert facts.query is not None
    last = facts.query.last
    if _has_token(last, facts.token):
        total = facts.push.seconds + facts.query.seconds
        return passed(f"pushed a line to {VERIFY_SELECTOR} and read it back in {total:.1f}s")
    if last.status is None:
        return failed(f"query_range: {last.error}", unreachable)
    if not last.ok:
        return _proxied(last, namespace) or failed(f"query_range answered {last.describe()}",
                                                   hints.loki_not_ready(namespace))
    return failed(f"pushed line (token {facts.token}) not returned by query_range within "
                  f"{facts.query.seconds:.0f}s", hints.loki_storage(namespace))


def check_e2e(ctx: CheckContext) -> Verdict:
    """loki.e2e"""
    return judge_e2e(gather_e2e(ctx), namespace=ctx.namespace)


# --- the cluster's own logs --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterLogsFacts:
    """The newest lines of the stack's namespace over the last 15 minutes, and when we asked."""

    where: str
    namespace: str
    polled: Polled
    now_ns: int


def gather_cluster_logs(ctx: CheckContext) -> ClusterLogsFacts:
    """Query ``{namespace="<ns>"}`` over the last 15 minutes (waiting out a 503 while Loki warms up)."""
    now_ns = time.time_ns()
    params = [("query", f'{{namespace="{ctx.namespace}"}}'), ("start", str(now_ns - CLUSTER_LOGS_WINDOW * 10**9)),
              ("end", str(now_ns)), ("limit", "5"), ("direction", "backward")]
    polled = poll(
        lambda t: ctx.loki.request("GET", "/loki/api/v1/query_range", timeout=t, params=params),
        deadline=ctx.deadline, request_timeout=ctx.request_timeout, interval=ctx.poll_interval,
        done=lambda r: r.ok, again=_retry_unavailable,
    )
    return ClusterLogsFacts(ctx.loki.where, ctx.namespace, polled, now_ns)


def judge_cluster_logs(facts: ClusterLogsFacts) -> Verdict:
    """Any entry in the window is a PASS; none means Alloy is not shipping."""
    last = facts.polled.last
    ns = facts.namespace
    if last.status is None:
        return failed(f"query_range: {last.error}",
                      hints.unreachable("Loki", facts.where, ns, service="loki", port=3100))
    if not last.ok:
        return _proxied(last, ns) or failed(f"query_range answered {last.describe()}", hints.loki_not_ready(ns))
    entries = list(stream_lines(last.json()))
    if not entries:
        return failed(f'no log lines from {{namespace="{ns}"}} in the last 15 minutes', hints.alloy_not_shipping(ns))
    newest = max(ts for ts, _line, _labels in entries)
    age = max(0.0, (facts.now_ns - newest) / 1e9)
    pods = sorted({labels.get("pod", "") for _ts, _line, labels in entries} - {""})
    from_pods = f" (from {', '.join(pods[:3])}{', …' if len(pods) > 3 else ''})" if pods else ""
    return passed(f'{{namespace="{ns}"}} has logs; the newest is {age:.0f}s old{from_pods}')


def check_cluster_logs(ctx: CheckContext) -> Verdict:
    """loki.cluster-logs"""
    return judge_cluster_logs(gather_cluster_logs(ctx))


def checks(cfg: Config, component: Component) -> tuple[Check, ...]:
    """The checks of group ``loki``."""
    ns = cfg.cluster.namespace
    return (
        Check("loki.ready", component.name, "Loki answers /ready", ("loki-http",), check_ready),
        Check("loki.e2e", component.name, "a pushed log line can be read back", ("loki-http",), check_e2e,
              writes=True),
        Check("loki.cluster-logs", component.name, f"logs of namespace {ns} arrive in Loki", ("loki-http",),
              check_cluster_logs),
    )
