"""Grafana: health, the Loki and Tempo data sources (and Grafana's own health check of each),
the trace-to-logs links between them, and Grafana's public URL through the gateway.

``/api/health`` needs no login; the data source API does (a Bearer token).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from o11yctl.config import Config
from o11yctl.executors.http import HttpResponse, Transport
from o11yctl.parallel import map_threads
from o11yctl.stack.components import Component
from o11yctl.verify import hints
from o11yctl.verify.base import Check, CheckContext, Verdict, failed, passed
from o11yctl.verify.cluster import check_httproute
from o11yctl.verify.proxied import judge_proxy

#: (uid attribute of CheckContext, Grafana plugin type, the component's name in messages)
_DATASOURCES = (("loki_uid", "loki", "Loki"), ("tempo_uid", "tempo", "Tempo"))


# --- health (direct and through the gateway) -------------------------------------------------------


def gather_health(ctx: CheckContext, transport: Transport) -> HttpResponse:
    """One ``GET /api/health``."""
    return transport.request("GET", "/api/health", timeout=ctx.deadline.timeout(ctx.request_timeout))


def judge_health(resp: HttpResponse, *, where: str, hint: str, via: str = "", namespace: str = "logging",
                 service: str = "grafana", port: int | str = 80) -> Verdict:
    """200 with ``"database": "ok"`` is healthy; ``via`` says how it was reached (for the detail).

    An answer of the Kubernetes API server in Grafana's place (through the service proxy) is read
    as such (:func:`~o11yctl.verify.proxied.judge_proxy`).
    """
    if resp.status is None:
        return failed(f"{where}: {resp.error}", hint)
    proxied = judge_proxy(resp, component="Grafana", namespace=namespace, service=service, port=port)
    if proxied is not None:
        return proxied
    doc = resp.json()
    if not isinstance(doc, dict) or "database" not in doc:
        return failed(f"{where}/api/health answered {resp.describe(80)} (not Grafana's health JSON)", hint)
    version = doc.get("version") or "?"
    if resp.status == 200 and doc.get("database") == "ok":
        return passed(f"{via}Grafana {version}, database ok")
    return failed(f"Grafana {version}: HTTP {resp.status}, database {doc.get('database')}", hint)


def check_health(ctx: CheckContext) -> Verdict:
    """grafana.health"""
    transport = ctx.grafana
    return judge_health(gather_health(ctx, transport), where=transport.where, hint=hints.grafana_down(ctx.namespace),
                        namespace=ctx.namespace, service=getattr(transport, "service", "grafana"),
                        port=getattr(transport, "port", 80))


def check_route(ctx: CheckContext, *, gateway: str) -> Verdict:
    """grafana.route: Grafana's public URL answers /api/health through the gateway."""
    return judge_health(gather_health(ctx, ctx.route), where=ctx.route.where,
                        hint=hints.route(ctx.namespace, gateway), via=f"{ctx.route.where} answers: ")


# --- data sources ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasourceFacts:
    """One data source as Grafana describes it, and Grafana's health check of it."""

    uid: str
    plugin: str
    component: str
    get: HttpResponse
    health: HttpResponse | None = None


def _get(ctx: CheckContext, path: str) -> HttpResponse:
    return ctx.grafana_api.request("GET", path, timeout=ctx.deadline.timeout(ctx.request_timeout),
                                   headers=ctx.grafana_headers())


def gather_datasources(ctx: CheckContext, *, health: bool) -> tuple[DatasourceFacts, ...]:
    """``GET /api/datasources/uid/<uid>`` for Loki and Tempo, and ``.../health`` of each that exists.

    The two data sources are asked at the same time.
    """

    def one(attr: str, plugin: str, component: str) -> DatasourceFacts:
        uid = str(getattr(ctx, attr))
        got = _get(ctx, f"/api/datasources/uid/{uid}")
        checked = _get(ctx, f"/api/datasources/uid/{uid}/health") if health and got.status == 200 else None
        return DatasourceFacts(uid, plugin, component, got, checked)

    out = []
    for got in map_threads(_DATASOURCES, lambda spec: one(*spec), name="o11yctl-grafana"):
        if isinstance(got, BaseException):
            raise got
        out.append(got)
    return tuple(out)


def _message(resp: HttpResponse) -> str:
    doc = resp.json()
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])
    return resp.describe(80)


def _datasource_problem(facts: DatasourceFacts, where: str, namespace: str) -> Verdict | None:
    """Why a data source cannot be used (a failed verdict), or None."""
    got = facts.get
    if got.status is None:
        return failed(f"{where}: {got.error}", hints.grafana_down(namespace))
    if got.status in (401, 403):
        return failed(f"Grafana answered HTTP {got.status} ({_message(got)}) for the data source API",
                      hints.grafana_credentials())
    if got.status == 404:
        doc = got.json()
        if isinstance(doc, dict) and str(doc.get("message", "")).lower() == "data source not found":
            return failed(f"no {facts.component} data source with uid {facts.uid!r}", hints.datasource_missing())
        return failed(f"{where}/api/datasources answered {got.describe(80)}",
                      "is that Grafana's URL? It is served under a sub path (for example /grafana): "
                      "include it in --grafana-url")
    if got.status != 200:
        return failed(f"data source {facts.uid!r}: {got.describe()}", hints.grafana_down(namespace))
    doc = got.json()
    if not isinstance(doc, dict):
        return failed(f"data source {facts.uid!r}: answer is not JSON", hints.grafana_down(namespace))
    if doc.get("type") != facts.plugin:
        return failed(f"data source {facts.uid!r} is of type {doc.get('type')!r}, expected {facts.plugin!r}",
                      hints.datasource_missing())
    return None


def judge_datasources(facts: tuple[DatasourceFacts, ...], *, where: str, namespace: str) -> Verdict:
    """Both data sources exist with the right type and pass Grafana's own health check."""
    ok: list[str] = []
    for ds in facts:
        problem = _datasource_problem(ds, where, namespace)
        if problem is not None:
            return problem
        health = ds.health
        if health is None:
            return failed(f"{ds.component} ({ds.uid}): no health answer", hints.grafana_down(namespace))
        if health.status is None:
            return failed(f"{ds.component} health check: {health.error}", hints.grafana_down(namespace))
        doc = health.json()
        status = doc.get("status") if isinstance(doc, dict) else None
        if health.status in (401, 403):
            return failed(f"Grafana answered HTTP {health.status} for the health check of {ds.uid!r}",
                          hints.grafana_credentials())
        if health.status != 200 or status != "OK":
            return failed(f"{ds.component} ({ds.uid}): Grafana's health check says {status or health.status}: "
                          f"{_message(health)}", hints.datasource_unhealthy(ds.component))
        ok.append(f"{ds.component} ({ds.uid}): {_message(health)}")
    return passed("; ".join(ok))


def check_datasources(ctx: CheckContext) -> Verdict:
    """grafana.datasources"""
    return judge_datasources(gather_datasources(ctx, health=True), where=ctx.grafana_api.where,
                             namespace=ctx.namespace)


# --- correlation -------------------------------------------------------------------------------


def _json_data(facts: DatasourceFacts) -> dict[str, Any]:
    doc = facts.get.json()
    data = doc.get("jsonData") if isinstance(doc, dict) else None
    return data if isinstance(data, dict) else {}


def judge_correlation(facts: tuple[DatasourceFacts, ...], *, where: str, namespace: str) -> Verdict:
    """Tempo's ``tracesToLogsV2.datasourceUid`` is Loki's uid; one of Loki's ``derivedFields`` points at Tempo."""
    by_plugin = {ds.plugin: ds for ds in facts}
    for ds in facts:
        problem = _datasource_problem(ds, where, namespace)
        if problem is not None:
            return problem
    loki, tempo = by_plugin["loki"], by_plugin["tempo"]
    to_logs = _json_data(tempo).get("tracesToLogsV2")
    target = to_logs.get("datasourceUid") if isinstance(to_logs, dict) else None
    if target != loki.uid:
        said = f"points at {target!r}" if target else "is not set"
        return failed(f"Tempo's trace-to-logs (tracesToLogsV2.datasourceUid) {said}, expected {loki.uid!r}",
                      hints.correlation())
    fields = _json_data(loki).get("derivedFields")
    linked = [f for f in fields if isinstance(f, dict) and f.get("datasourceUid") == tempo.uid] \
        if isinstance(fields, list) else []
    if not linked:
        return failed(f"no derived field of Loki links to Tempo (derivedFields[].datasourceUid == {tempo.uid!r})",
                      hints.correlation())
    name = linked[0].get("name") or "derived field"
    return passed(f"trace → logs: Tempo → {loki.uid}; logs → trace: Loki's {name} → {tempo.uid}")


def check_correlation(ctx: CheckContext) -> Verdict:
    """grafana.correlation"""
    return judge_correlation(gather_datasources(ctx, health=False), where=ctx.grafana_api.where,
                             namespace=ctx.namespace)


def checks(cfg: Config, component: Component) -> tuple[Check, ...]:
    """The checks of group ``grafana``: health, data sources, correlation, the public URL and the HTTPRoute."""
    ns = cfg.cluster.namespace
    gw = cfg.route.gateway
    gateway = f"{gw.namespace}/{gw.name}"
    route_name = component.endpoint.service if component.endpoint else component.name
    return (
        Check("grafana.health", component.name, "Grafana answers /api/health", ("grafana-http",), check_health),
        Check("grafana.datasources", component.name, "the Loki and Tempo data sources work",
              ("grafana-api", "grafana-auth"), check_datasources),
        Check("grafana.correlation", component.name, "traces and logs link to each other",
              ("grafana-api", "grafana-auth"), check_correlation),
        Check("grafana.route", component.name, f"{cfg.route.url} answers through the gateway", ("route",),
              partial(check_route, gateway=gateway)),
        Check("grafana.httproute", component.name, f"HTTPRoute {ns}/{route_name} is Accepted", ("kube",),
              check_httproute(route_name, gw.name, gw.namespace)),
    )
