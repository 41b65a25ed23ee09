"""What every check is made of: a definition (data), a context to gather facts in, a verdict.

A check is ``Check(id, group, needs, run)``. ``run`` gathers facts through the
transports in the :class:`CheckContext` (I/O) and hands them to a judge, a pure
function from facts to a :class:`Verdict`. The runner turns the verdict into a
:class:`~o11yctl.model.CheckResult` with the check's id, group and duration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from o11yctl.executors.http import Headers, HttpResponse, Transport
from o11yctl.model import SshTarget, Status

#: What a check can need. A check whose need is not available is skipped with the reason.
#: (``loki-http``: Loki's HTTP API, by URL or through the service proxy; likewise Tempo's and Grafana's.)
NEEDS: tuple[str, ...] = ("loki-http", "tempo-http", "otlp", "grafana-http", "grafana-api", "grafana-auth", "route",
                          "kube", "ssh")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's answer: status, a one-line detail and, when not PASS, the next thing to do."""

    status: Status
    detail: str
    hint: str | None = None


def passed(detail: str) -> Verdict:
    return Verdict("PASS", detail)


def failed(detail: str, hint: str | None) -> Verdict:
    return Verdict("FAIL", detail, hint)


def warned(detail: str, hint: str | None) -> Verdict:
    return Verdict("WARN", detail, hint)


def skipped(detail: str, hint: str | None) -> Verdict:
    return Verdict("SKIP", detail, hint)


class Deadline:
    """A point in time every request and every wait of a check stays within.

    Args:
        seconds: how long from now.
        clock: a monotonic clock (tests may pass their own).
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self.end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def timeout(self, cap: float) -> float:
        """A request timeout: ``cap``, but never past the deadline (and never zero)."""
        return max(0.05, min(cap, self.remaining()))

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the deadline comes first."""
        time.sleep(max(0.0, min(seconds, self.remaining())))


@dataclass(frozen=True, slots=True)
class Targets:
    """How to reach each service, and why a service cannot be reached when it cannot.

    ``unavailable`` maps a need (see :data:`NEEDS`) to the detail and hint shown
    when a check that needs it is skipped.
    """

    loki: Transport | None = None
    tempo: Transport | None = None
    otlp: Transport | None = None
    grafana: Transport | None = None
    grafana_api: Transport | None = None
    route: Transport | None = None
    grafana_auth: Headers | Callable[[], Headers] | None = None
    kube: Any | None = None
    ssh: Any | None = None
    unavailable: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def has(self, need: str) -> bool:
        value = {
            "loki-http": self.loki,
            "tempo-http": self.tempo,
            "otlp": self.otlp,
            "grafana-http": self.grafana,
            "grafana-api": self.grafana_api,
            "grafana-auth": self.grafana_auth,
            "route": self.route,
            "kube": self.kube,
            "ssh": self.ssh,
        }[need]
        return value is not None


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything a check may use: the targets, the deadline and the cluster's names."""

    targets: Targets
    deadline: Deadline
    namespace: str = "logging"
    request_timeout: float = 10.0
    poll_interval: float = 0.5
    run_id: str = ""
    loki_uid: str = "loki"
    tempo_uid: str = "tempo"
    storage_node: str = "node-2"
    storage_class: str = "local-storage"
    grafana_node: str | None = None
    data_owner: str = "10001:10001"
    storage_target: SshTarget | None = None
    data_dirs: Mapping[str, str] = field(default_factory=dict)

    def grafana_headers(self) -> Headers | None:
        """The credentials for Grafana's API (read on first use when they come from the cluster)."""
        auth = self.targets.grafana_auth
        return auth() if callable(auth) else auth

    @property
    def loki(self) -> Transport:
        assert self.targets.loki is not None
        return self.targets.loki

    @property
    def tempo(self) -> Transport:
        assert self.targets.tempo is not None
        return self.targets.tempo

    @property
    def otlp(self) -> Transport:
        assert self.targets.otlp is not None
        return self.targets.otlp

    @property
    def grafana(self) -> Transport:
        assert self.targets.grafana is not None
        return self.targets.grafana

    @property
    def grafana_api(self) -> Transport:
        assert self.targets.grafana_api is not None
        return self.targets.grafana_api

    @property
    def route(self) -> Transport:
        assert self.targets.route is not None
        return self.targets.route


@dataclass(frozen=True, slots=True)
class Check:
    """One check: its id, its group (for --only/--skip), what it needs, and how it runs.

    ``writes`` marks a check that sends data into the stack (a log line, a span): `doctor`, which
    only reads, leaves those to `verify`.
    """

    id: str
    group: str
    title: str
    needs: tuple[str, ...]
    run: Callable[[CheckContext], Verdict]
    writes: bool = False


@dataclass(frozen=True, slots=True)
class Polled:
    """Every answer of a request repeated until it succeeded, could not succeed, or time ran out."""

    attempts: tuple[HttpResponse, ...]
    seconds: float
    out_of_time: bool

    @property
    def last(self) -> HttpResponse:
        return self.attempts[-1]


def poll(
    send: Callable[[float], HttpResponse],
    *,
    deadline: Deadline,
    request_timeout: float,
    interval: float,
    done: Callable[[HttpResponse], bool],
    again: Callable[[HttpResponse], bool],
) -> Polled:
    """Repeat ``send`` until ``done``; repeat only while ``again`` says the answer may still change.

    Args:
        send: sends one request with the given timeout.
        deadline: no request or wait goes past it.
        request_timeout: the cap for each request's timeout.
        interval: seconds between tries.
        done: the answer we wait for.
        again: whether another try makes sense after this answer (e.g. 503 while warming up).

    Returns:
        Every answer, how long it took, and whether the deadline ended it.
    """
    started = time.monotonic()
    attempts: list[HttpResponse] = []
    while True:
        resp = send(deadline.timeout(request_timeout))
        attempts.append(resp)
        if done(resp) or not again(resp):
            return Polled(tuple(attempts), time.monotonic() - started, False)
        if deadline.remaining() <= interval:
            return Polled(tuple(attempts), time.monotonic() - started, True)
        deadline.sleep(interval)
