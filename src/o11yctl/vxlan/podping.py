"""The runbook's pod test: a pod on each node pings the Loki pod through the cluster's pod network.

The runbook runs ``kubectl run test-ping --rm -i --restart=Never --image=busybox:latest -- ping -c 3
<loki-pod-ip>``. Here that test is pinned down: one short-lived pod per configured node other than
the Loki pod's, placed with ``nodeName`` (no scheduler, so taints and selectors cannot move it),
and always deleted afterwards, also on an error, a timeout or Ctrl-C.

- :func:`run_pod_test` connects to the cluster, or says in one row why there is none;
- :func:`gather` finds the Loki pod, creates the test pods, waits, reads their logs and deletes
  them; all its I/O goes through a :class:`PodApi` (:class:`~o11yctl.executors.kube.Kube`);
- :func:`judge` turns what the pods did into check rows. It is pure, and it never decides the
  exit code: the overlay verdict comes from fix-vxlan's diagnosis over SSH.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from o11yctl.errors import KubeError, PreflightError
from o11yctl.model import CheckResult, Status

if TYPE_CHECKING:
    from o11yctl.access import Access
    from o11yctl.config import Config

GROUP = "pod-ping"
#: How the Loki chart (single binary) labels its pod.
LOKI_SELECTOR = "app.kubernetes.io/name=loki,app.kubernetes.io/component=single-binary"
LABELS: Mapping[str, str] = {"app.kubernetes.io/managed-by": "o11yctl", "app.kubernetes.io/name": "o11yctl-ping"}
PING_COUNT = 3
PING_WAIT = 2
#: Waiting reasons that mean the image cannot be pulled; the pod would wait for ever.
IMAGE_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                          "RegistryUnavailable", "SignatureValidationFailed"})
#: Waiting reasons that mean the container cannot start with this image or spec.
START_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError",
                          "StartError", "ContainerCannotRun"})
_REQUEST_TIMEOUT = 10.0
_POLL_FIRST, _POLL_MAX = 0.25, 2.0

#: The overlay diagnosis' ping result ``(src, dst) -> True/False/None``.
OverlayPing = Callable[[str, str], bool | None]


class PodApi(Protocol):
    """What the pod test needs from the Kubernetes API (:class:`~o11yctl.executors.kube.Kube`)."""

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]: ...

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]: ...

    def pod_log(self, namespace: str, pod: str, *, container: str | None = None, previous: bool = False,
                tail_lines: int | None = None, since_seconds: int | None = None,
                timeout: float | None = None) -> str | None: ...

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool: ...


@dataclass(frozen=True, slots=True)
class LokiPod:
    """The pod the test pings: its name, pod IP and node."""

    name: str
    ip: str
    node: str


@dataclass(frozen=True, slots=True)
class PingStats:
    """ping's summary line: packets sent and received, and the loss in percent."""

    transmitted: int
    received: int
    loss: float


@dataclass(frozen=True, slots=True)
class PodState:
    """One reading of a test pod: its phase and, when it cannot go on, why."""

    phase: str | None
    reason: str | None = None  # the container's waiting or terminated reason
    message: str = ""
    exit_code: int | None = None
    done: bool = False


@dataclass(frozen=True, slots=True)
class PodRun:
    """What the test pod on one node did.

    Attributes:
        node: the node it ran on.
        pod: its name ("" when none was made).
        state: its last reading (None: never read).
        log: what the container printed (Succeeded/Failed pods only).
        timed_out: it had not finished at the deadline.
        skipped: why no pod was made for this node.
        error: the API refused to create or read it.
        hint: the next step for ``error``.
        deleted: the pod is gone afterwards (deleted, or already gone).
        delete_error: why it could not be deleted.
        seconds: from its creation to its last reading.
    """

    node: str
    pod: str = ""
    state: PodState | None = None
    log: str | None = None
    timed_out: bool = False
    skipped: str | None = None
    error: str | None = None
    hint: str | None = None
    deleted: bool = False
    delete_error: str | None = None
    seconds: float = 0.0

    @property
    def stats(self) -> PingStats | None:
        return parse_ping_stats(self.log or "")


@dataclass(frozen=True, slots=True)
class PodTest:
    """The whole test: where it ran, and each node's pod; or why it did not run."""

    namespace: str
    image: str
    timeout: float
    loki: LokiPod | None = None
    runs: tuple[PodRun, ...] = ()
    not_run: str | None = None
    not_run_hint: str | None = None
    not_run_status: Status = "SKIP"

    def to_json(self) -> dict[str, object]:
        return {
            "ran": self.not_run is None,
            "not_run": self.not_run,
            "namespace": self.namespace,
            "image": self.image,
            "loki": None if self.loki is None else {"pod": self.loki.name, "ip": self.loki.ip,
                                                    "node": self.loki.node},
            "runs": [
                {"node": r.node, "pod": r.pod or None, "result": result_cell(r),
                 "phase": r.state.phase if r.state else None, "reason": r.state.reason if r.state else None,
                 "exit_code": r.state.exit_code if r.state else None,
                 "transmitted": r.stats.transmitted if r.stats else None,
                 "received": r.stats.received if r.stats else None,
                 "timed_out": r.timed_out, "deleted": r.deleted if r.pod else None, "delete_error": r.delete_error}
                for r in self.runs
            ],
        }


# --- pure parts ------------------------------------------------------------------------------------

_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received(?:, \+\d+ \w+)*, ([\d.]+)% packet loss")


def parse_ping_stats(text: str) -> PingStats | None:
    """The summary line of busybox's or iputils' ping, or None when there is none."""
    found = _STATS.search(text)
    if found is None:
        return None
    return PingStats(int(found.group(1)), int(found.group(2)), float(found.group(3)))


def pod_name(node: str, suffix: str) -> str:
    """``o11yctl-ping-<node>-<suffix>``, a DNS label of at most 63 characters."""
    part = re.sub(r"[^a-z0-9-]+", "-", node.lower()).strip("-")[: 63 - len("o11yctl-ping--") - len(suffix)]
    return f"o11yctl-ping-{part.strip('-') or 'node'}-{suffix}"


def ping_pod(name: str, *, namespace: str, node: str, image: str, target: str, timeout: float) -> dict[str, Any]:
    """The test pod: on ``node`` (``nodeName``), ``ping -c 3 -W 2 <target>`` once, never restarted."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            # nodeName bypasses the scheduler, so taints do not keep the pod away; tolerating them all
            # also keeps it from being evicted by a NoExecute taint while it runs.
            "tolerations": [{"operator": "Exists"}],
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            # If it cannot be deleted (the API went away), the kubelet still stops it.
            "activeDeadlineSeconds": int(timeout) + 60,
            "containers": [{
                "name": "ping", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["ping", "-c", str(PING_COUNT), "-W", str(PING_WAIT), target],
            }],
        },
    }


def find_loki(pods: Sequence[Mapping[str, Any]]) -> LokiPod | None:
    """The Loki pod to ping: a running one with an IP and a node, ready ones first."""
    candidates: list[tuple[bool, LokiPod]] = []
    for pod in pods:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("phase") != "Running":
            continue
        if not status.get("podIP") or not spec.get("nodeName"):
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        candidates.append((ready, LokiPod(str(meta.get("name")), str(status["podIP"]), str(spec["nodeName"]))))
    candidates.sort(key=lambda c: (not c[0], c[1].name))
    return candidates[0][1] if candidates else None


def pod_state(pod: Mapping[str, Any] | None) -> PodState:
    """Read a test pod: done once it ended, or once its container waits for something that will not come."""
    if pod is None:
        return PodState(None, message="the pod was deleted by someone else", done=True)
    status = pod.get("status") or {}
    phase = status.get("phase")
    containers = status.get("containerStatuses") or []
    state = (containers[0].get("state") or {}) if containers else {}
    if phase in ("Succeeded", "Failed"):
        term = state.get("terminated") or {}
        code = term.get("exitCode")
        reason = term.get("reason") or status.get("reason")
        message = str(term.get("message") or status.get("message") or "")
        return PodState(phase, reason, message, int(code) if code is not None else None, True)
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason in IMAGE_ERRORS or reason in START_ERRORS:
        return PodState(phase, reason, str(waiting.get("message") or ""), None, True)
    return PodState(phase, reason, str(waiting.get("message") or ""))


def result_cell(run: PodRun) -> str:
    """``ok``, ``fail`` (it ran and got no reply, or failed) or ``?`` (the test did not run)."""
    if run.state is None or run.timed_out or run.state.phase not in ("Succeeded", "Failed"):
        return "?"
    return "ok" if run.state.phase == "Succeeded" else "fail"


def judge(test: PodTest, overlay: OverlayPing) -> tuple[CheckResult, ...]:
    """Check rows for the pod test.

    Args:
        test: what :func:`gather` (or :func:`run_pod_test`) found.
        overlay: the SSH diagnosis' overlay ping ``(src, dst) -> True/False/None``
            (:meth:`~o11yctl.vxlan.diagnose.Diagnosis.ping`). A pod ping with no reply is a FAIL
            when the overlay between the two nodes fails too (or was not tested), and a WARN
            when the overlay works: then something else drops pod traffic.

    Returns:
        One row per node (group ``pod-ping``), plus one per pod that could not be deleted;
        a single row when the test did not run.
    """
    if test.not_run is not None or test.loki is None:
        return (CheckResult(GROUP, GROUP, test.not_run_status, test.not_run or "the pod test did not run",
                            test.not_run_hint),)
    rows: list[CheckResult] = []
    for run in test.runs:
        status, detail, hint = _judge_run(test, test.loki, run, overlay)
        rows.append(CheckResult(f"{GROUP} {run.node}", GROUP, status, detail, hint, run.seconds))
        if run.delete_error:
            rows.append(CheckResult(
                f"{GROUP} {run.node} cleanup", GROUP, "WARN",
                f"the test pod {test.namespace}/{run.pod} could not be deleted: {run.delete_error}",
                f"delete it: kubectl delete pod -n {test.namespace} {run.pod} (it stops by itself within "
                f"{int(test.timeout) + 60}s)"))
    return tuple(rows)


def _judge_run(test: PodTest, loki: LokiPod, run: PodRun, overlay: OverlayPing) -> tuple[Status, str, str | None]:
    where = f"pod on {run.node} → Loki pod {loki.ip} on {loki.node}"
    no_test = " --no-pod-test leaves the test out."
    if run.skipped:
        return "SKIP", f"{where}: {run.skipped}", \
            "nodes[].name must be the Kubernetes node name (kubectl get nodes)"
    if run.error:
        return "WARN", f"{where}: the test did not run: {run.error}", run.hint
    state = run.state
    if run.timed_out or state is None:
        seen = "never read" if state is None else (state.phase or "unknown") + (
            f", {state.reason}" if state.reason else "")
        return "WARN", f"{where}: the test pod did not finish within {test.timeout:g}s (last seen: {seen})", \
            (f"{run.node} may be slow to pull {test.image} or to start pods: raise --pod-test-timeout, or check "
             f"the node's kubelet (kubectl get events -n {test.namespace}).{no_test}")
    if state.reason in IMAGE_ERRORS:
        return "WARN", (f"{where}: the test did not run: {run.node} cannot pull {test.image} "
                        f"({state.reason}{': ' + state.message if state.message else ''})"), \
            (f"set images.test_image to an image {run.node} can pull: a mirror (e.g. "
             f"registry.lan:5000/library/busybox:latest) or one already on the node.{no_test}")
    if state.phase not in ("Succeeded", "Failed"):
        return "WARN", (f"{where}: the test pod could not start ({state.reason}"
                        f"{': ' + state.message if state.message else ''})"), \
            f"images.test_image must be an image with ping, run as root (busybox is).{no_test}"
    stats = run.stats
    if state.phase == "Succeeded":
        replies = f"{stats.received}/{stats.transmitted} replies" if stats else "ping succeeded"
        return "PASS", f"{where}: {replies}", None
    if stats is not None and stats.received == 0:
        pair = _pair(overlay, run.node, loki.node)
        lost = f"no reply ({stats.transmitted} sent, 100% packet loss)"
        if pair is True:
            return "WARN", f"{where}: {lost}, although the overlay between {run.node} and {loki.node} works", \
                ("the VXLAN tunnel is fine, so something else drops pod traffic: a NetworkPolicy in namespace "
                 f"{test.namespace} (kubectl get networkpolicy -n {test.namespace}), a firewall rule on "
                 f"{loki.node} for the pod network 10.42.0.0/16, or Loki's pod was being replaced; re-run to see "
                 "whether it lasts")
        if pair is False:
            return "FAIL", f"{where}: {lost}, as the overlay test between the nodes found", \
                ("the overlay between the nodes is broken (the firewall and overlay rows say why); once it "
                 "works, so does this")
        return "FAIL", f"{where}: {lost}", \
            (f"the overlay between {run.node} and {loki.node} was not tested over SSH; run "
             "`o11yctl fix-vxlan --check` with both nodes reachable")
    if stats is not None:
        return "WARN", (f"{where}: {stats.received}/{stats.transmitted} replies, but ping exited "
                        f"{state.exit_code}"), None
    why = state.reason or "Error"
    return "WARN", (f"{where}: the test pod failed ({why}, exit {state.exit_code}) without a ping result: "
                    f"{_tail(run.log or state.message)}"), \
        f"images.test_image must be an image with ping, run as root (busybox is).{no_test}"


def _pair(overlay: OverlayPing, a: str, b: str) -> bool | None:
    """Whether the overlay carries traffic between two nodes: a ping either way proves both directions."""
    there, back = overlay(a, b), overlay(b, a)
    if there or back:
        return True
    if there is None and back is None:
        return None
    return False


def _tail(text: str, lines: int = 3) -> str:
    parts = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(parts[-lines:]) or "no output"


# --- I/O ---------------------------------------------------------------------------------------------


def run_pod_test(cfg: Config, access: Access, *, timeout: float = 60.0,
                 say: Callable[[str], None] | None = None) -> PodTest:
    """Connect to the cluster and run the pod test; when no cluster is reachable, say why (not an error).

    Args:
        cfg: the configuration (``cluster.namespace``, ``images.test_image``, ``nodes``).
        access: the command's access (``--kubeconfig``; default ``$KUBECONFIG``, else ~/.kube/config).
        timeout: seconds the test pods may take, from their creation (image pull included).
        say: called with one progress line.

    Returns:
        The test; its ``not_run`` says why it did not run (``SKIP``, or ``WARN`` when
        ``--kubeconfig``/``--context`` named a cluster that cannot be used).
    """
    base = PodTest(namespace=cfg.cluster.namespace, image=cfg.images.test_image, timeout=timeout)
    status: Status = "WARN" if access.options.kube_named else "SKIP"
    try:
        kube = access.kube()
    except PreflightError as exc:
        return replace(base, not_run=f"no cluster reachable ({exc.message}); the pod test was left out",
                       not_run_hint=exc.hint, not_run_status=status)
    try:
        kube.server_version()
    except KubeError as exc:
        return replace(base, not_run=f"no cluster reachable ({exc.message}); the pod test was left out",
                       not_run_hint=exc.hint, not_run_status=status)
    try:
        return gather(kube, namespace=base.namespace, image=base.image, nodes=[n.name for n in cfg.nodes],
                      timeout=timeout, say=say)
    except KubeError as exc:
        return replace(base, not_run=f"the pod test could not run: {exc.message}", not_run_hint=exc.hint,
                       not_run_status="WARN")


def gather(kube: PodApi, *, namespace: str, image: str, nodes: Sequence[str], timeout: float,
           say: Callable[[str], None] | None = None, suffix: str | None = None) -> PodTest:
    """Find the Loki pod, run a test pod on every other node, read their logs; always delete the pods.

    The pods are deleted in a ``finally``: after an API error, at the deadline, and on Ctrl-C
    (the interrupt then goes on up).

    Args:
        kube: the API.
        namespace: where Loki runs and the test pods are made.
        image: the test pods' image (``images.test_image``).
        nodes: the configured nodes, in order.
        timeout: seconds from the pods' creation until they must have finished.
        say: called with one progress line.
        suffix: the random part of the pods' names (default: random).

    Raises:
        KubeError: the Loki pod or the nodes cannot be listed.
    """
    test = PodTest(namespace=namespace, image=image, timeout=timeout)
    loki = find_loki(kube.list("v1", "Pod", namespace, label_selector=LOKI_SELECTOR))
    if loki is None:
        return replace(test, not_run=f"no running Loki pod with an IP in namespace {namespace} ({LOKI_SELECTOR}); "
                                     "the pod test was left out",
                       not_run_hint="the test pings Loki's pod: install the stack first (`o11yctl install`), or see "
                                    "`o11yctl status`")
    test = replace(test, loki=loki)
    others = [n for n in nodes if n != loki.node]
    if not others:
        return replace(test, not_run=f"Loki's pod runs on {loki.node}, and no other node is configured to test from")
    in_cluster = {str((n.get("metadata") or {}).get("name")) for n in kube.list("v1", "Node")}
    suffix = suffix or secrets.token_hex(3)
    runs: dict[str, PodRun] = {n: PodRun(n, skipped=f"{n} is not a node of this cluster") for n in others
                               if n not in in_cluster}
    testable = [n for n in others if n not in runs]
    if say and testable:
        say(f"pod test: a {image} pod on {', '.join(testable)} pings Loki's pod {loki.ip} on {loki.node}")
    # A pod counts as made from the moment it is asked for: Ctrl-C during the request may come
    # after the server stored it.
    created: dict[str, tuple[str, float]] = {}
    try:
        for node in testable:
            name = pod_name(node, suffix)
            created[node] = (name, time.monotonic())
            try:
                kube.create(ping_pod(name, namespace=namespace, node=node, image=image, target=loki.ip,
                                     timeout=timeout))
            except KubeError as exc:
                del created[node]
                runs[node] = PodRun(node, error=f"the API refused the test pod: {exc.message}",
                                    hint=_create_hint(exc, namespace))
        runs.update(_wait(kube, namespace, created, time.monotonic() + timeout))
    finally:
        gone = {node: _delete(kube, namespace, name) for node, (name, _t) in created.items()}
    for node, error in gone.items():
        runs[node] = replace(runs[node], deleted=error is None, delete_error=error)
    return replace(test, runs=tuple(runs[n] for n in others))


def _wait(kube: PodApi, namespace: str, created: Mapping[str, tuple[str, float]], deadline: float) -> dict[str, PodRun]:
    """Read every test pod until it is done or the deadline passes; then read the logs of those that ran."""
    runs = {node: PodRun(node, pod=name) for node, (name, _t) in created.items()}
    pending = dict(created)
    delay = _POLL_FIRST
    while pending:
        for node, (name, started) in list(pending.items()):
            try:
                state = pod_state(kube.get("v1", "Pod", name, namespace))
            except KubeError as exc:
                runs[node] = replace(runs[node], error=f"cannot read the test pod: {exc.message}", hint=exc.hint)
                del pending[node]
                continue
            runs[node] = replace(runs[node], state=state, seconds=time.monotonic() - started)
            if state.done:
                del pending[node]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        time.sleep(min(delay, left))
        delay = min(delay * 2, _POLL_MAX)
    for node in pending:
        runs[node] = replace(runs[node], timed_out=True)
    for node, run in runs.items():
        if run.state is not None and run.state.phase in ("Succeeded", "Failed") and not run.error:
            try:
                log = kube.pod_log(namespace, run.pod, tail_lines=50, timeout=_REQUEST_TIMEOUT)
            except KubeError:
                log = None
            runs[node] = replace(run, log=log)
    return runs


def _delete(kube: PodApi, namespace: str, name: str) -> str | None:
    """Delete one test pod; None when it is gone, else why not."""
    try:
        kube.delete("v1", "Pod", name, namespace)
    except KubeError as exc:
        return exc.message
    return None


def _create_hint(exc: KubeError, namespace: str) -> str | None:
    if "PodSecurity" in exc.message:
        return (f"namespace {namespace} enforces a Pod Security level that refuses the test pod (ping runs as "
                "root); leave the test out with --no-pod-test")
    return exc.hint
