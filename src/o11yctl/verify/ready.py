"""Readiness: a Service's readiness path asked until it answers (Loki, Tempo, and any component with one)."""

from __future__ import annotations

from dataclasses import dataclass

from o11yctl.executors.http import ServiceProxyTransport, Transport
from o11yctl.stack.components import Component
from o11yctl.verify import hints
from o11yctl.verify.base import Check, CheckContext, Polled, Verdict, failed, passed, poll
from o11yctl.verify.proxied import endpoint_unreachable, judge_proxy, no_endpoints


@dataclass(frozen=True, slots=True)
class ReadyFacts:
    """What /ready answered, every time it was asked."""

    component: str
    where: str
    polled: Polled


def gather_ready(ctx: CheckContext, component: str, transport: Transport, path: str = "/ready") -> ReadyFacts:
    """Ask ``path`` until it says ready, answers something other than 503, or time runs out."""
    polled = poll(
        lambda t: transport.request("GET", path, timeout=t),
        deadline=ctx.deadline,
        request_timeout=ctx.request_timeout,
        interval=ctx.poll_interval,
        done=lambda r: r.status == 200,
        again=lambda r: r.status == 503 and not endpoint_unreachable(r),
    )
    return ReadyFacts(component, transport.where, polled)


def judge_ready(facts: ReadyFacts, *, namespace: str, not_ready_hint: str, service: str, port: int) -> Verdict:
    """200 is ready; 503 until the deadline is still warming up; anything else is a failure."""
    last = facts.polled.last
    tries = len(facts.polled.attempts)
    if last.status == 200:
        if tries > 1:
            return passed(f"ready after warming up for {facts.polled.seconds:.1f}s ({tries - 1} answers 503)")
        return passed("ready")
    if last.status is None:
        return failed(f"{facts.where}: {last.error}",
                      hints.unreachable(facts.component, facts.where, namespace, service=service, port=port))
    empty = no_endpoints(last)
    if empty is not None:
        return failed(f"no Ready pod behind the Service after {facts.polled.seconds:.0f}s: {empty.describe()}",
                      f"the {facts.component} pod is not Ready: see cluster.pod.{facts.component.lower()} "
                      f"(`o11yctl verify --only cluster`); `o11yctl doctor` names the cause")
    proxied = judge_proxy(last, component=facts.component, namespace=namespace, service=service, port=port)
    if proxied is not None:
        return proxied
    if last.status == 503:
        return failed(f"still warming up after {facts.polled.seconds:.0f}s: {last.describe()}",
                      hints.warming_up(facts.component, facts.polled.seconds) + "; if it stays so, " + not_ready_hint)
    return failed(f"/ready answered {last.describe()}", not_ready_hint)




def service_ready_check(c: Component) -> Check:
    """``<component>.ready``: the component's readiness path, through the API server's service proxy."""
    endpoint = c.endpoint
    assert endpoint is not None and endpoint.ready_path is not None

    def run(ctx: CheckContext) -> Verdict:
        assert ctx.targets.kube is not None
        transport = ServiceProxyTransport(ctx.targets.kube, ctx.namespace, endpoint.service, endpoint.port)
        facts = gather_ready(ctx, c.title, transport, endpoint.ready_path or "/ready")
        hint = f"`kubectl logs -n {ctx.namespace} -l app.kubernetes.io/name={c.pod_label or c.name} --tail=50`"
        return judge_ready(facts, namespace=ctx.namespace, not_ready_hint=hint, service=endpoint.service,
                           port=endpoint.port)

    return Check(f"{c.name}.ready", c.name, f"{c.title} answers {endpoint.ready_path}", ("kube",), run)
