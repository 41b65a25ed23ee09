"""HTTP requests to Loki, Tempo and Grafana, each with a timeout, answered as values.

This is the only module that imports httpx, and it does so lazily, so importing it
costs nothing at CLI start. A request never raises for a network problem: a refused
connection, a timeout or a broken answer comes back as an :class:`HttpResponse`
whose ``status`` is ``None`` and whose ``error`` says what happened, so a check can
judge it like any other answer.

A :class:`Transport` is "where requests for one service go". :class:`DirectTransport`
sends them to a URL (``--loki-url``, a port-forward, the gateway); another transport
can carry the same requests through the Kubernetes API's service proxy. Checks only
see the protocol.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from o11yctl.errors import O11yError
from o11yctl.secrets import Secret

if TYPE_CHECKING:
    import httpx

ErrorKind = Literal["connect", "timeout", "protocol"]
Params = Sequence[tuple[str, str]] | Mapping[str, str]
Headers = Mapping[str, str | Secret]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One request's outcome: an HTTP answer, or the reason there was none."""

    method: str
    url: str
    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    error_kind: ErrorKind | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def answered(self) -> bool:
        """The server sent an HTTP answer (of any status)."""
        return self.status is not None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self, limit: int = 160) -> str:
        """One line for a report: ``HTTP 503: <first line of the body>`` or the network error."""
        if self.status is None:
            return self.error or "no answer"
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        if len(first) > limit:
            first = first[: limit - 1] + "…"
        return f"HTTP {self.status}: {first}" if first else f"HTTP {self.status}"


class Transport(Protocol):
    """Where the requests for one service go."""

    @property
    def where(self) -> str:
        """A short human description of the target, for details and hints (never holds secrets)."""
        ...

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        params: Params | None = None,
        body: bytes | None = None,
        headers: Headers | None = None,
    ) -> HttpResponse:
        """Send one request; never raise for network errors."""
        ...


def join_url(base: str, path: str) -> str:
    """``http://h:3000/grafana`` + ``/api/health`` -> ``http://h:3000/grafana/api/health``."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def reveal_headers(headers: Headers | None) -> dict[str, str]:
    """Headers with :class:`Secret` values unwrapped, for the moment they are sent."""
    return {k: v.reveal() if isinstance(v, Secret) else v for k, v in (headers or {}).items()}


class DirectTransport:
    """Requests straight to a base URL with httpx; one connection pool, shared by threads.

    Args:
        base_url: scheme, host, port and an optional path prefix, e.g. ``http://127.0.0.1:3100``.
        verify_tls: check server certificates for https URLs (True: against the system's CAs; a path:
            against the CA bundle in that file).
    """

    def __init__(self, base_url: str, *, verify_tls: bool | str = True) -> None:
        self.base_url = base_url.rstrip("/")
        self._verify_tls = verify_tls
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.base_url

    def _get_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(verify=_tls_verify(self._verify_tls), follow_redirects=False,
                                            trust_env=False)
            return self._client

    def close(self) -> None:
        """Close the connection pool (idempotent)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        params: Params | None = None,
        body: bytes | None = None,
        headers: Headers | None = None,
    ) -> HttpResponse:
        """Send one request with ``timeout`` seconds for each of connect, write and read.

        Returns:
            The answer; for a refused connection, a timeout or a protocol error, a
            response with ``status=None`` and ``error`` set.
        """
        import httpx

        url = join_url(self.base_url, path)
        started = time.monotonic()
        try:
            resp = self._get_client().request(
                method,
                url,
                params=[(k, v) for k, v in (params.items() if isinstance(params, Mapping) else params or ())],
                content=body,
                headers=reveal_headers(headers),
                timeout=httpx.Timeout(max(timeout, 0.01)),
            )
        except httpx.TimeoutException:
            return HttpResponse(method, url, None, error=f"no answer within {timeout:.1f}s", error_kind="timeout",
                                seconds=time.monotonic() - started)
        except httpx.ConnectError as exc:
            return HttpResponse(method, url, None, error=f"cannot connect: {_reason(exc)}", error_kind="connect",
                                seconds=time.monotonic() - started)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return HttpResponse(method, url, None, error=f"{type(exc).__name__}: {_reason(exc)}",
                                error_kind="protocol", seconds=time.monotonic() - started)
        return HttpResponse(
            method,
            url,
            resp.status_code,
            body=resp.content,
            headers={k.lower(): v for k, v in resp.headers.items()},
            seconds=time.monotonic() - started,
        )


class ServiceProxy(Protocol):
    """What :class:`ServiceProxyTransport` needs from a Kubernetes connection (``executors.kube.Kube``)."""

    def proxy_request(self, namespace: str, service: str, port: int | str, method: str = "GET", path: str = "/",
                      query: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
                      body: Any = None, timeout: float | None = None,
                      content_type: str = "application/json") -> tuple[int, bytes]: ...


class ServiceProxyTransport:
    """Requests to a Service through the Kubernetes API's service proxy (no port-forward needed).

    The API server removes the ``Authorization`` header of every request it has
    authenticated, so credentials for the service itself cannot travel this way;
    ``headers`` other than ``Content-Type`` are not sent.

    Args:
        proxy: the Kubernetes connection.
        namespace: the Service's namespace.
        service: the Service's name.
        port: the Service's port.
        prefix: a path prefix the service expects (Grafana's sub path, e.g. ``/grafana``).
    """

    def __init__(self, proxy: ServiceProxy, namespace: str, service: str, port: int, *, prefix: str = "") -> None:
        self._proxy = proxy
        self.namespace = namespace
        self.service = service
        self.port = port
        self.prefix = prefix.rstrip("/")

    @property
    def where(self) -> str:
        return f"svc/{self.service}:{self.port} in {self.namespace} (through the Kubernetes API)"

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        params: Params | None = None,
        body: bytes | None = None,
        headers: Headers | None = None,
    ) -> HttpResponse:
        """Send one request through the service proxy; a failure to reach the API becomes ``status=None``."""
        full_path = self.prefix + "/" + path.lstrip("/")
        url = f"{self.where}{full_path}"
        query = list(params.items()) if isinstance(params, Mapping) else list(params or ())
        content_type = str((headers or {}).get("Content-Type", "application/json"))
        payload: Any = body
        if body is not None and "json" in content_type:
            # The Kubernetes client serializes JSON bodies itself: hand it the parsed document, so the
            # service receives the same JSON (a str or bytes body would be encoded a second time).
            try:
                payload = json.loads(body)
            except ValueError:
                payload = body
        started = time.monotonic()
        try:
            status, data = self._proxy.proxy_request(self.namespace, self.service, self.port, method, full_path,
                                                     query=query or None, body=payload, timeout=max(timeout, 0.01),
                                                     content_type=content_type)
        except O11yError as exc:
            kind: ErrorKind = "timeout" if "timed out" in exc.message.lower() else "connect"
            return HttpResponse(method, url, None, error=exc.message, error_kind=kind,
                                seconds=time.monotonic() - started)
        return HttpResponse(method, url, status, body=data, seconds=time.monotonic() - started)


def _tls_verify(verify_tls: bool | str) -> Any:
    """What httpx's ``verify`` takes: True/False as given, a CA file as an SSL context trusting only
    it (httpx deprecates a path there)."""
    import ssl

    if isinstance(verify_tls, bool):
        return verify_tls
    return ssl.create_default_context(cafile=verify_tls)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # httpx wraps OSError text such as "[Errno 111] Connection refused"; keep the words.
    if "] " in text and text.startswith("[Errno"):
        text = text.split("] ", 1)[1]
    return text
