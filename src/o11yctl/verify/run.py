"""`o11yctl verify`: which checks exist, how each service is reached, and the report.

A service given by URL (``--loki-url``, ``--tempo-url``, ``--otlp-url``, default the
Tempo URL's host on port 4318, ``--grafana-url``) is reached directly; otherwise
through the Kubernetes API's service proxy, when a kubeconfig is at hand. Grafana's
public URL (``route.url`` in the config) is always reached directly, as a browser
would. A service with no way to reach it has its checks skipped, with the reason and
the flag to pass.

Grafana's data source API needs credentials: ``O11YCTL_GRAFANA_TOKEN`` (a service
account token), else the admin user and password from the chart's Secret, read
through the API and kept in memory. The API server strips credentials from requests
it proxies, so those calls go to ``--grafana-url``, else to ``route.url``, and only
where nobody on the network can read them: over HTTPS (the certificate verified,
against ``--grafana-ca`` when given) or to a loopback address (a port-forward). To any
other ``http://`` address the admin password is never sent, and the token only with
``--allow-http-token``; the checks that need them are skipped with the safe way to run
them.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from o11yctl.access import Unavailable
from o11yctl.config import Config
from o11yctl.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, O11yError, UsageError
from o11yctl.executors.http import DirectTransport, Headers, ServiceProxyTransport, Transport
from o11yctl.model import CheckResult, Report
from o11yctl.secrets import Secret
from o11yctl.stack.context import DATASOURCE_UIDS, data_dir, stack_of
from o11yctl.stack.plan import parse_components, select
from o11yctl.verify.base import Check, CheckContext, Deadline, Targets
from o11yctl.verify.cluster import cluster_checks, grafana_basic_auth
from o11yctl.verify.ready import service_ready_check
from o11yctl.verify.runner import OnResult, run_checks

if TYPE_CHECKING:
    from o11yctl.access import Access

ENV_GRAFANA_TOKEN = "O11YCTL_GRAFANA_TOKEN"
OTLP_HTTP_PORT = 4318


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """What `verify` was asked to do (the CLI's flags, as values).

    ``only`` and ``skip`` hold group names as given on the command line
    (comma-separated, repeatable); URLs are validated by :func:`run_verify`.
    """

    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    loki_url: str | None = None
    tempo_url: str | None = None
    otlp_url: str | None = None
    grafana_url: str | None = None
    timeout: float = 60.0
    request_timeout: float = 10.0
    poll_interval: float = 0.5
    #: A CA bundle to verify Grafana's https:// certificate with (default: the system's).
    grafana_ca: str | None = None
    #: Send O11YCTL_GRAFANA_TOKEN to a plain http:// Grafana on another host too.
    allow_http_token: bool = False


def verify_checks(cfg: Config) -> tuple[Check, ...]:
    """Every check of `verify`, grouped and ordered as the report shows them.

    The ``cluster`` group comes from the components' specs (claims, pods, data directories);
    then each component's own checks: its module under :mod:`o11yctl.verify` when the spec
    names one, else a readiness check of its Service when it has a readiness path.
    """
    stack = stack_of(cfg)
    out = list(cluster_checks(cfg, stack))
    for c in stack:
        if c.checks:
            module = importlib.import_module(f"o11yctl.verify.{c.checks}")
            out += module.checks(cfg, c)
        elif c.endpoint and c.endpoint.ready_path:
            out.append(service_ready_check(c))
    return tuple(out)


#: What a check may need to be run by `doctor`: the Kubernetes API, and the services through its proxy.
READ_ONLY_NEEDS = frozenset({"kube", "loki-http", "tempo-http", "grafana-http"})


def read_only_checks(cfg: Config) -> tuple[Check, ...]:
    """The checks `doctor` runs itself: those that only read, through the Kubernetes API alone.

    Left to `verify`: the checks that send a line or a span (``writes``), the data directories
    (SSH), Grafana's data source API (credentials) and its public URL (the gateway).
    """
    return tuple(c for c in verify_checks(cfg) if not c.writes and set(c.needs) <= READ_ONLY_NEEDS)


def run_read_only(cfg: Config, kube: Any, *, timeout: float = 15.0, request_timeout: float = 5.0,
                  poll_interval: float = 0.5) -> tuple[CheckResult, ...]:
    """Run :func:`read_only_checks` through ``kube`` (an ``executors.kube.Kube``) within ``timeout`` seconds.

    Returns:
        One result per check, in order.
    """
    options = VerifyOptions(timeout=timeout, request_timeout=request_timeout, poll_interval=poll_interval)
    targets = build_targets(cfg, options, {}, kube=kube)
    checks = read_only_checks(cfg)
    try:
        return run_checks(checks, make_context(cfg, options, targets), wait=timeout)
    finally:
        _close(targets)


def parse_url(flag: str, value: str) -> str:
    """A base URL given on the command line, checked, without a trailing slash.

    Raises:
        UsageError: not an http(s) URL with a host, or it carries a query or fragment.
    """
    parts = urlsplit(value.strip())
    problem = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "expected an http:// or https:// URL with a host"
    elif parts.query or parts.fragment:
        problem = "expected a base URL without ?query or #fragment"
    else:
        try:
            _ = parts.port
        except ValueError:
            problem = "the port is not a number between 0 and 65535"
    if problem:
        raise UsageError(f"{flag}: {problem}, got {value!r}", hint=f"for example {flag} http://127.0.0.1:3100")
    return value.strip().rstrip("/")


def otlp_url_for(tempo_url: str) -> str:
    """The OTLP/HTTP receiver's URL beside Tempo's HTTP API: same scheme and host, port 4318."""
    parts = urlsplit(tempo_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{OTLP_HTTP_PORT}"


def is_loopback_url(url: str) -> bool:
    """Whether a URL's host is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials_refused(url: str, *, token: bool, allow_http_token: bool) -> str | None:
    """Why Grafana's credentials must not go to ``url``, or None when they may.

    Over HTTPS or to a loopback address they may. Over plain HTTP to another host anyone on
    the path can read them: the admin password never goes there, a token only when the user
    said so (``--allow-http-token``).
    """
    if urlsplit(url).scheme == "https" or is_loopback_url(url):
        return None
    if token and allow_http_token:
        return None
    what = f"the {ENV_GRAFANA_TOKEN} token" if token else "Grafana's admin password"
    return f"not sending {what} in clear text to {url} (plain HTTP to another host)"


def grafana_auth_from_env(env: Mapping[str, str]) -> dict[str, str | Secret] | None:
    """The Authorization header for Grafana's API from ``O11YCTL_GRAFANA_TOKEN``, if set."""
    token = env.get(ENV_GRAFANA_TOKEN, "").strip()
    return {"Authorization": Secret(f"Bearer {token}")} if token else None


def build_targets(cfg: Config, options: VerifyOptions, env: Mapping[str, str] | None = None, *,
                  kube: Any | None = None, kube_missing: Unavailable | None = None,
                  ssh_missing: Unavailable | None = None,
                  ssh: Any | None = None) -> Targets:
    """How to reach each service, and the reason for each that cannot be reached.

    Args:
        cfg: the configuration (namespace, route URL, sub path).
        options: the URLs given.
        env: where ``O11YCTL_GRAFANA_TOKEN`` is read (default ``os.environ``).
        kube: a Kubernetes connection (``executors.kube.Kube``), or None.
        kube_missing: (detail, hint) saying why there is no connection.
        ssh_missing: (detail, hint) saying why the storage node cannot be reached.
        ssh: an SSH pool for the storage node, or None.

    Raises:
        UsageError: a malformed URL.
    """
    env = os.environ if env is None else env
    ns = cfg.cluster.namespace
    loki_url = parse_url("--loki-url", options.loki_url) if options.loki_url else None
    tempo_url = parse_url("--tempo-url", options.tempo_url) if options.tempo_url else None
    otlp_url = parse_url("--otlp-url", options.otlp_url) if options.otlp_url else None
    grafana_url = parse_url("--grafana-url", options.grafana_url) if options.grafana_url else None
    if otlp_url is None and tempo_url is not None:
        otlp_url = otlp_url_for(tempo_url)
    no_kube = kube_missing or ("no cluster access", "pass --kubeconfig (or set KUBECONFIG)")
    via = f"or give cluster access ({no_kube[0]}: {no_kube[1]})"
    unavailable = {
        "loki-http": ("Loki not reachable: no --loki-url and no cluster access",
                 f"pass --loki-url, e.g. http://127.0.0.1:3100 after `kubectl port-forward -n {ns} svc/loki "
                 f"3100:3100`, {via}"),
        "tempo-http": ("Tempo not reachable: no --tempo-url and no cluster access",
                  f"pass --tempo-url, e.g. http://127.0.0.1:3200 after `kubectl port-forward -n {ns} svc/tempo "
                  f"3200:3200 4318:4318`, {via}"),
        "otlp": ("Tempo's OTLP/HTTP receiver not reachable: no --otlp-url and no cluster access",
                 f"pass --otlp-url (default: the --tempo-url host on port 4318), {via}"),
        "grafana-http": ("Grafana not reachable: no --grafana-url and no cluster access",
                    f"pass --grafana-url, e.g. http://127.0.0.1:3000{cfg.route.path.rstrip('/')} after "
                    f"`kubectl port-forward -n {ns} svc/grafana 3000:80`, {via}"),
        "grafana-api": ("Grafana's API not reachable", "pass --grafana-url"),
        "grafana-auth": ("no Grafana credentials",
                         f"set {ENV_GRAFANA_TOKEN} to a Grafana service account token (Admin role), or give "
                         "cluster access so the admin password can be read from the chart's Secret "
                         f"({no_kube[0]})"),
        "grafana-auth-insecure": ("", f"run them where the credentials cannot be read on the way: `kubectl "
                                      f"port-forward -n {ns} svc/grafana 3000:80` and pass --grafana-url "
                                      f"http://127.0.0.1:3000{cfg.route.path.rstrip('/')}, or publish Grafana on "
                                      "an HTTPS listener and set route.url to its https:// URL (--grafana-ca FILE "
                                      f"for a private CA); a token in {ENV_GRAFANA_TOKEN} is sent anyway with "
                                      "--allow-http-token (anyone on the network path can then read and reuse "
                                      "it)"),
        "route": ("no route URL", "set route.url in the config"),
        "kube": (no_kube[0], no_kube[1]),
        "ssh": (ssh_missing[0], ssh_missing[1]) if ssh_missing else ("no SSH", "select the cluster group"),
    }

    def proxied(service: str, port: int, prefix: str = "") -> Transport | None:
        return ServiceProxyTransport(kube, ns, service, port, prefix=prefix) if kube is not None else None

    sub_path = cfg.route.path.rstrip("/")
    api_url = grafana_url or cfg.route.url
    stack = stack_of(cfg)

    def endpoint(name: str, port: int | None = None) -> Transport | None:
        """Through the service proxy, to a component's Service (on ``port`` instead of its own, when given)."""
        ep = stack.get(name).endpoint if stack.has(name) else None
        if ep is None:
            return None
        return proxied(ep.service, port or ep.port, sub_path if name == "grafana" else "")

    auth: Headers | Callable[[], Headers] | None = grafana_auth_from_env(env)
    token = auth is not None
    if auth is None and kube is not None:
        grafana = stack.get("grafana").endpoint
        auth = _SecretAuth(kube, ns, grafana.service if grafana else "grafana")
    refused = credentials_refused(api_url, token=token, allow_http_token=options.allow_http_token) \
        if auth is not None else None
    if refused is not None:
        auth = None  # never read, never sent
        unavailable["grafana-auth"] = (refused, unavailable.pop("grafana-auth-insecure")[1])
    else:
        unavailable.pop("grafana-auth-insecure")
    verify_tls: bool | str = options.grafana_ca or True
    return Targets(
        loki=DirectTransport(loki_url) if loki_url else endpoint("loki"),
        tempo=DirectTransport(tempo_url) if tempo_url else endpoint("tempo"),
        otlp=DirectTransport(otlp_url) if otlp_url else (None if tempo_url else endpoint("tempo", OTLP_HTTP_PORT)),
        grafana=DirectTransport(grafana_url, verify_tls=verify_tls) if grafana_url else endpoint("grafana"),
        grafana_api=DirectTransport(api_url, verify_tls=verify_tls),
        route=DirectTransport(cfg.route.url, verify_tls=verify_tls),
        grafana_auth=auth,
        kube=kube,
        ssh=ssh,
        unavailable=unavailable,
    )


class _SecretAuth:
    """Grafana's admin credentials from the chart's Secret, read once, on first use, kept in memory."""

    def __init__(self, kube: Any, namespace: str, name: str) -> None:
        self._kube = kube
        self._namespace = namespace
        self._name = name
        self._lock = threading.Lock()
        self._headers: Headers | None = None

    def __call__(self) -> Headers:
        with self._lock:
            if self._headers is None:
                secret = self._kube.get("v1", "Secret", self._name, self._namespace)
                headers = grafana_basic_auth(secret)
                if headers is None:
                    state = "does not exist" if secret is None else "has no admin-user/admin-password"
                    raise O11yError(f"Grafana's Secret {self._namespace}/{self._name} {state}",
                                    hint=f"set {ENV_GRAFANA_TOKEN} to a service account token instead")
                self._headers = headers
            return self._headers


def _close(targets: Targets) -> None:
    """Close the HTTP transports (the access closes the cluster's and the nodes' connections)."""
    for thing in (targets.loki, targets.tempo, targets.otlp, targets.grafana, targets.grafana_api, targets.route):
        close = getattr(thing, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):  # closing never fails the report
                close()


def _needs(checks: Sequence[Check]) -> set[str]:
    return {need for check in checks for need in check.needs}


def open_for(checks: Sequence[Check], access: Access, options: VerifyOptions, env: Mapping[str, str]
             ) -> tuple[Any | None, Unavailable | None, Any | None, Unavailable | None]:
    """The Kubernetes connection and SSH pool the selected checks can use, and why each is missing.

    Only what some selected check could use is opened. A kubeconfig that is missing, or an
    API server that does not answer, is a reason to skip the checks that need it (nothing
    verified at all is exit 3), unless --kubeconfig or --context named a kubeconfig that
    cannot be used: then it is an error.

    Raises:
        PreflightError: the kubeconfig named by --kubeconfig/--context cannot be used.
    """
    needs = _needs(checks)
    kube = ssh = None
    missing: Unavailable | None = None
    wants_kube = "kube" in needs or (
        ("loki-http" in needs and not options.loki_url) or ("tempo-http" in needs and not options.tempo_url)
        or ("otlp" in needs and not (options.otlp_url or options.tempo_url))
        or ("grafana-http" in needs and not options.grafana_url)
        or ("grafana-auth" in needs and not grafana_auth_from_env(env))
    )
    if wants_kube:
        kube, missing = access.reachable_kube()
    ssh_missing: Unavailable | None = None
    if "ssh" in needs:
        from o11yctl.executors.ssh import ssh_target

        ssh = access.ssh()
        try:
            ssh.connect(ssh_target(access.cfg.storage_node), step="verify")
        except O11yError as exc:
            if exc.exit_code != EXIT_UNREACHABLE:
                raise
            ssh, ssh_missing = None, Unavailable(exc.message, exc.hint or "check the storage node's SSH settings",
                                                 unreachable=True)
    return kube, missing, ssh, ssh_missing


def summarize(results: Sequence[CheckResult], seconds: float, *,
              cluster_unreachable: bool = False) -> tuple[int, str]:
    """The exit code and the summary line for a set of results.

    Exit 3 when something required could not be reached: the cluster API that selected
    checks need (the rule install, status and doctor follow, whatever else passed), or
    everything, so that every selected check was skipped; else 1 when any check FAILs;
    0 otherwise.
    """
    counts = {s: sum(1 for r in results if r.status == s) for s in ("PASS", "WARN", "FAIL", "SKIP")}
    words = {"PASS": "passed", "WARN": "warned", "FAIL": "failed", "SKIP": "skipped"}
    line = ", ".join(f"{n} {words[s]}" for s, n in counts.items() if n) + f" in {seconds:.1f}s"
    if cluster_unreachable:
        return EXIT_UNREACHABLE, f"the cluster API could not be reached ({line})"
    if counts["FAIL"]:
        return EXIT_FAILED, line
    if results and counts["SKIP"] == len(results):
        return EXIT_UNREACHABLE, f"nothing was verified: every selected check was skipped ({line})"
    return EXIT_OK, line


def make_context(cfg: Config, options: VerifyOptions, targets: Targets) -> CheckContext:
    """The context one run of checks shares; its deadline starts now.

    Checks stop a little before ``options.timeout`` so that they can say what they saw
    before the runner stops waiting for them.
    """
    from o11yctl.executors.ssh import ssh_target

    uids = DATASOURCE_UIDS
    margin = min(1.0, options.timeout * 0.1)
    return CheckContext(
        targets=targets,
        deadline=Deadline(options.timeout - margin),
        namespace=cfg.cluster.namespace,
        request_timeout=options.request_timeout,
        poll_interval=options.poll_interval,
        run_id=secrets.token_hex(6),
        loki_uid=uids["loki_uid"],
        tempo_uid=uids["tempo_uid"],
        storage_node=cfg.storage.node,
        storage_class=cfg.storage.class_name,
        grafana_node=cfg.components.grafana.node,
        data_owner=f"{cfg.storage.owner_uid}:{cfg.storage.owner_gid}",
        storage_target=ssh_target(cfg.storage_node),
        data_dirs={c.name: data_dir(cfg, c) for c in stack_of(cfg).data},
    )


def run_verify(cfg: Config, access: Access, options: VerifyOptions | None = None, *,
               on_result: OnResult | None = None, env: Mapping[str, str] | None = None) -> Report:
    """Run the selected checks concurrently within ``options.timeout`` and build the report.

    Args:
        cfg: the validated configuration (namespace, node names, route URL).
        access: how to reach the cluster and the storage node (opened only as the selected checks need).
        options: groups, URLs and timeouts.
        on_result: called as each check finishes (from its thread).
        env: environment to read ``O11YCTL_GRAFANA_TOKEN`` from (default: ``os.environ``).

    Returns:
        The report: one item per check, also under the JSON key ``checks``.

    Raises:
        UsageError: unknown group names, or a malformed URL or timeout.
        PreflightError: the kubeconfig named by --kubeconfig/--context cannot be used (exit 3).
    """
    options = options or VerifyOptions()
    if options.timeout <= 0 or options.request_timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds", hint="for example --timeout 60")
    if cfg.profile == "scalable":  # during a move to profile scalable, judge what runs now
        from o11yctl.deploy.migrate import read_record
        from o11yctl.stack.migrate import running

        with contextlib.suppress(O11yError):  # no cluster to read the move from: the checks needing it say so
            cfg = running(cfg, read_record(cfg, access.kube()))
    allowed = stack_of(cfg).check_groups
    groups = select(parse_components(options.only, flag="--only", allowed=allowed),
                    parse_components(options.skip, flag="--skip", allowed=allowed), allowed)
    checks = [c for c in verify_checks(cfg) if c.group in groups]
    env = os.environ if env is None else env
    kube, kube_missing, ssh, ssh_missing = open_for(checks, access, options, env)
    targets = build_targets(cfg, options, env, kube=kube, kube_missing=kube_missing, ssh=ssh,
                            ssh_missing=ssh_missing)
    started = time.monotonic()
    ctx = make_context(cfg, options, targets)
    try:
        results = run_checks(checks, ctx, wait=options.timeout, on_result=on_result)
    finally:
        _close(targets)
    exit_code, summary = summarize(results, time.monotonic() - started,
                                   cluster_unreachable=kube_missing is not None and kube_missing.unreachable)
    error = None
    if exit_code == EXIT_UNREACHABLE:
        why = kube_missing or ssh_missing or Unavailable("every selected check was skipped",
                                                         "each check's line says what it needs")
        error = O11yError(why[0], hint=why[1], exit_code=EXIT_UNREACHABLE)
    return Report("verify", items=results, exit_code=exit_code, summary=summary, error=error,
                  extra={"checks": [r.to_json() for r in results]})
