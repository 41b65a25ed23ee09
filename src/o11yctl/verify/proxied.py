"""When the Kubernetes API server answers instead of the service behind its proxy.

A request through the service proxy (``/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/...``)
is answered by the service, unless the API server cannot hand it on: then the answer is the
API server's own ``Status`` (503 ``ServiceUnavailable``), read here, never pasted:

- ``no endpoints available for service "<svc>"``: no Ready pod backs the Service
  (apiserver ``pkg/util/proxy/proxy.go``, ``ResolveEndpoint``);
- ``error trying to reach service: dial tcp <pod-ip>:<port>: <why>``: there is a Ready pod, but the
  API server could not connect to it (apimachinery ``pkg/util/proxy/transport.go``,
  ``Transport.RoundTrip``); the API server reaches a pod on another node over the pod network
  (Flannel's VXLAN, UDP 8472).

The exact forms, and where they come from, are kept in ``tests/data/kube/kubelet-unreachable.json``.
"""

from __future__ import annotations

from o11yctl.executors.http import HttpResponse
from o11yctl.executors.kube import ApiStatus, dial_error, read_status
from o11yctl.verify import hints
from o11yctl.verify.base import Verdict, failed

#: The start of the message of a Status the proxy transport made of a failed dial to the pod.
UNREACHABLE = "error trying to reach service"
#: The message of a Status for a Service without a Ready endpoint.
NO_ENDPOINTS = "no endpoints available for service"


def api_status(resp: HttpResponse) -> ApiStatus | None:
    """The API server's own ``Status``, when it answered in the service's place; None for the service's answer."""
    if resp.status is None or resp.status < 400:
        return None
    return read_status(resp.status, resp.body)


def endpoint_unreachable(resp: HttpResponse) -> bool:
    """The API server could not connect to the Service's pod (asking again soon does not help)."""
    status = api_status(resp)
    return status is not None and status.message.startswith(UNREACHABLE)


def no_endpoints(resp: HttpResponse) -> ApiStatus | None:
    """The Status saying the Service has no Ready endpoint, or None."""
    status = api_status(resp)
    return status if status is not None and status.message.startswith(NO_ENDPOINTS) else None


def judge_proxy(resp: HttpResponse, *, component: str, namespace: str, service: str, port: int | str) -> Verdict | None:
    """A failed verdict when the answer is the API server's and not the service's, else None.

    Args:
        resp: the answer.
        component: the component's name in messages (Loki, Tempo, Grafana).
        namespace: the stack's namespace.
        service: the Service's name.
        port: its port.
    """
    status = api_status(resp)
    if status is None:
        return None
    where = f"svc/{service}:{port}"
    if status.message.startswith(UNREACHABLE):
        dial = dial_error(status.message)
        pod = f"{component}'s pod at {dial.address}" if dial else f"{component}'s pod"
        return failed(f"the Kubernetes API server could not connect to {pod} behind {where}: {status.describe()}",
                      hints.pod_unreachable(component, namespace, dial.address if dial else None))
    if status.message.startswith(NO_ENDPOINTS):
        return failed(f"{where} has no Ready pod behind it: {status.describe()}",
                      hints.no_endpoints(component, namespace))
    if status.code == 404 and status.reason == "NotFound":
        return failed(f"{where}: {status.describe()}",
                      f"the Service does not exist: `o11yctl install --only {component.lower()}`")
    return failed(f"the Kubernetes API server answered for {where}: {status.describe()}",
                  hints.api_server_answer(component, namespace))
