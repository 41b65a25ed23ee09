"""The cluster side of a plan: apply or delete manifests, install or remove releases, wait until ready.

Each handler probes first and acts only where the cluster differs from what the
configuration renders, so a second run reports ``unchanged`` everywhere and
creates no new helm revision. :meth:`Deployer.diff` runs the same probes and
stops there: it is what ``install --diff`` shows and what ``install`` asks to
confirm before it changes anything that already exists.

What the diff read is kept for the steps: an object, a release list and a release's
values are read once per run (and read again only after o11yctl changed them), so a
re-run with nothing to do costs few requests and few helm processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from o11yctl.errors import HelmError, KubeError
from o11yctl.model import Outcome, StepResult
from o11yctl.stack.plan import HelmRelease, Plan, ReadyCheck, Step

#: How long to wait for a new PVC to bind to its PV before calling the step failed.
BIND_TIMEOUT = 30.0
#: How long a deleted object may take to go (a claim waits for its pods, a namespace for its content).
DELETE_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Change:
    """What a step would do to one object or release (one line of ``--diff``)."""

    step_id: str
    component: str
    target: str
    outcome: Outcome  # created / changed / unchanged / skipped
    lines: tuple[str, ...] = ()
    exists: bool = False
    adopted: bool = False
    #: The API server's refusal of this change (a dry run answered 403 from admission or 422).
    refused: str | None = None

    def describe(self) -> str:
        verb = {"created": "would be created", "changed": "would change", "unchanged": "unchanged",
                "skipped": "not checked"}[self.outcome]
        if self.refused:
            verb = f"would be refused: {self.refused}"
        head = f"{self.target}: {verb}"
        if self.adopted:
            head += " (made outside o11yctl; adopted from now on)"
        return head + "".join(f"\n    {line}" for line in self.lines)

    def as_result(self) -> StepResult:
        detail = "; ".join(self.lines) if self.lines else ""
        prefix = {"created": "would create", "changed": "would change", "unchanged": "unchanged",
                  "skipped": "not checked"}[self.outcome]
        if self.adopted:
            prefix += " (adopt)"
        if self.refused:
            return StepResult(f"{self.step_id}: {self.target}", self.component, "failed",
                              f"would be refused: {self.refused}{'; ' + detail if detail else ''}")
        return StepResult(f"{self.step_id}: {self.target}", self.component, self.outcome,
                          f"{prefix}{': ' + detail if detail else ''}")


@dataclass
class ReleaseState:
    """A release as found, and as o11yctl wants it."""

    name: str
    want_chart: str
    want_values: dict[str, Any]
    current: Any = None  # executors.helm.Release or None
    current_values: dict[str, Any] | None = None

    def lines(self) -> list[str]:
        from o11yctl.executors.kube import describe_changes

        if self.current is None:
            return [f"install chart {self.want_chart}"]
        out: list[str] = []
        if self.current.pending:
            out.append(f"release is {self.current.status} (revision {self.current.revision}): "
                       "an interrupted helm run; --recover rolls it back first (or removes it if it never deployed)")
        elif self.current.status != "deployed":
            out.append(f"release is {self.current.status} (revision {self.current.revision}); upgrade again")
        if self.current.chart != self.want_chart:
            out.append(f"chart {self.current.chart} -> {self.want_chart}")
        if self.current_values is not None:  # equal values give no lines
            out += [f"values.{c}" for c in describe_changes(_normal(self.current_values), _normal(self.want_values))]
        return out


@dataclass
class DeployOptions:
    """How the cluster side behaves (the install flags that concern it)."""

    recover: bool = False
    wait_timeout: float | None = None  # default: the config's charts.timeout
    poll_interval: float = 2.0
    bind_timeout: float = BIND_TIMEOUT
    delete_timeout: float = DELETE_TIMEOUT


@dataclass
class Deployer:
    """Carries out apply, helm and wait steps against one cluster."""

    plan: Plan
    kube: Any  # executors.kube.Kube
    helm: Any | None  # executors.helm.Helm
    files: Mapping[str, str]
    options: DeployOptions = field(default_factory=DeployOptions)
    sleep: Callable[[float], None] = time.sleep
    #: The releases of the namespace (``helm list``), when preflight already read them.
    releases: dict[str, Any] | None = None
    #: Objects already read in this run, by reference (None: known not to exist).
    live: dict[Any, dict[str, Any] | None] = field(default_factory=dict)
    _values_dir: Path | None = None
    _values: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Where the external object store's keys are read from (``secret_step``).
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: Where the keys in ``env`` came from, when not the environment (``--s3-keys-stdin``).
    key_origin: str | None = None
    #: Steps run on several threads at once (deploy.walk): the caches above change under this lock.
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- values files ----------------------------------------------------------------------------

    def values_dir(self) -> Path:
        """A private directory (0700) holding the rendered values files (0600); see :meth:`cleanup`."""
        with self._lock:
            return self._make_values_dir()

    def _make_values_dir(self) -> Path:
        if self._values_dir is None:
            self._values_dir = Path(tempfile.mkdtemp(prefix="o11yctl-values-"))
            os.chmod(self._values_dir, 0o700)
            for step in self.plan.steps:
                if step.helm is not None:
                    target = self._values_dir / step.helm.values_file
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        fh.write(self.files[step.helm.values_file])
        return self._values_dir

    def cleanup(self) -> None:
        """Remove the values files."""
        if self._values_dir is not None:
            shutil.rmtree(self._values_dir, ignore_errors=True)
            self._values_dir = None

    # --- reading: what would change ------------------------------------------------------------

    def manifests(self, step: Step) -> list[dict[str, Any]]:
        """The documents of a step's manifest file."""
        assert step.manifest is not None
        return [dict(d) for d in yaml.safe_load_all(self.files[step.manifest]) if d]

    def release_state(self, release: HelmRelease) -> ReleaseState:
        """Read one release and what o11yctl wants it to be."""
        assert self.helm is not None
        from o11yctl.executors.helm import chart_meta

        if release.local:
            meta = chart_meta(release.chart)
            want_chart = f"{meta.name}-{meta.version}"
        else:
            want_chart = f"{release.chart}-{release.version}"
        want_values = yaml.safe_load(self.files[release.values_file]) or {}
        with self._lock:
            if self.releases is None:
                self.releases = self.helm.list_releases(release.namespace)
            current = self.releases.get(release.release)
        state = ReleaseState(release.release, want_chart, want_values, current)
        if current is not None:
            with self._lock:
                values = self._values.get(release.release)
            if values is None:
                values = self.helm.get_values(release.release, release.namespace)
                with self._lock:
                    self._values[release.release] = values
            state.current_values = values
        return state

    def _forget_release(self, release: HelmRelease) -> None:
        """After o11yctl changed a release, read it again when asked."""
        with self._lock:
            self.releases = None
            self._values.pop(release.release, None)

    def read_releases(self) -> None:
        """Read the values of every release the plan installs that exists, at the same time."""
        from o11yctl.parallel import map_threads

        if self.helm is None:
            return
        releases = [s.helm for s in self.plan.steps if s.action == "helm-upgrade" and s.helm is not None]
        if not releases:
            return
        if self.releases is None:
            self.releases = self.helm.list_releases(releases[0].namespace)
        missing = [r for r in releases if r.release in self.releases and r.release not in self._values]
        if not missing:
            return
        helm = self.helm
        values = map_threads(missing, lambda r: helm.get_values(r.release, r.namespace), name="o11yctl-helm")
        for rel, got in zip(missing, values, strict=True):
            if isinstance(got, BaseException):
                raise got
            self._values[rel.release] = got

    def _get(self, ref: Any) -> dict[str, Any] | None:
        """An object read once in this run (see :attr:`live`)."""
        if ref not in self.live:
            self.live[ref] = self.kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        return self.live[ref]

    def diff(self) -> list[Change]:
        """What every apply and helm step would do, read from the cluster without changing it."""
        from o11yctl.executors.kube import ObjectRef

        changes: list[Change] = []
        self.read_releases()
        for step in self.plan.steps:
            if step.action == "apply":
                for doc in self.manifests(step):
                    ref = ObjectRef.of(doc)
                    if ref.namespace and self._get(ObjectRef("v1", "Namespace", ref.namespace)) is None:
                        changes.append(Change(step.id, step.component, str(ref), "created"))
                        continue
                    current = self._get(ref)
                    if current is None:
                        changes.append(Change(step.id, step.component, str(ref), "created"))
                        continue
                    try:
                        doc, note = fit_claim(doc, current)
                        d = self.kube.diff(doc, current=current)
                    except KubeError as exc:
                        if not exc.refused:
                            raise
                        changes.append(Change(step.id, step.component, str(ref), "changed",
                                              (exc.hint,) if exc.hint else (), True, refused=exc.message))
                        continue
                    said = (*d.changes, *((note,) if note else ()))
                    changes.append(Change(step.id, step.component, str(ref), d.outcome, said, True,
                                          d.adopted and d.outcome == "changed"))
            elif step.action == "secret":
                store = self.plan.config.object_storage
                ns = self.plan.config.cluster.namespace
                present = self.kube.get("v1", "Secret", store.credentials_secret, ns) is not None
                changes.append(Change(step.id, step.component, f"Secret {ns}/{store.credentials_secret}",
                                      "unchanged" if present else "created", ("values never shown",), present))
            elif step.action == "helm-upgrade" and step.helm is not None:
                state = self.release_state(step.helm)
                lines = state.lines()
                if state.current is None:
                    outcome: Outcome = "created"
                else:
                    outcome = "changed" if lines else "unchanged"
                changes.append(Change(step.id, step.component, f"helm release {step.helm.namespace}/{state.name}",
                                      outcome, tuple(lines), state.current is not None))
            elif step.action == "orphan" and step.target:
                kind, name, ns = _target(step.target)
                present = self.kube.get("apps/v1", kind, name, ns) is not None
                changes.append(Change(step.id, step.component, step.target, "changed" if present else "unchanged",
                                      ("deleted, its pods and claims kept (propagation Orphan)",) if present else (),
                                      present))
            else:
                what = "storage directories (checked over SSH when install runs)" if step.action == "ssh" else \
                    "readiness (checked when install runs)"
                changes.append(Change(step.id, step.component, what, "skipped"))
        return changes

    # --- the handlers --------------------------------------------------------------------------

    def apply_step(self, step: Step) -> StepResult:
        """Server-side apply every object of the step's manifest; clear stale claims of our PVs first."""
        from o11yctl.executors.kube import ObjectRef

        outcomes: list[str] = []
        notes: list[str] = []
        info: list[str] = []  # said in the detail, without making an unchanged step "changed"
        claims: list[tuple[str, str, str, dict[str, Any]]] = []
        for doc in self.manifests(step):
            ref = ObjectRef.of(doc)
            before = self._get(ref)
            if ref.kind == "Namespace" and before is not None and (before.get("metadata") or {}).get(
                    "deletionTimestamp"):
                raise KubeError(f"namespace {ref.name} is being deleted (Terminating): it takes no new objects "
                                "until it is gone",
                                hint=f"wait until `kubectl get namespace {ref.name}` says NotFound (o11yctl uninstall "
                                     "--delete-data waits for it), then re-run")
            if ref.kind == "PersistentVolume" and before is not None:
                note = self._release_stale_claim(doc, before)
                if note:
                    notes.append(note)
            doc, kept = fit_claim(doc, before)
            if kept:
                info.append(kept)
            # The manifest goes in as rendered, on every run: leaving a field out of an apply
            # gives up o11yctl's ownership of it, and the server deletes what nobody else owns.
            result = self.kube.apply_manifest(doc, before=before)
            self.live[ref] = result.obj
            outcomes.append(result.outcome)
            notes.append(f"{ref} {result.outcome}")
            if ref.kind == "PersistentVolumeClaim":
                claims.append((ref.namespace or "", ref.name, str((doc.get("spec") or {}).get("volumeName", "")),
                               result.obj))
        for namespace, name, volume, applied in claims:
            self._wait_bound(namespace, name, volume, applied)
        if all(o == "unchanged" for o in outcomes) and len(notes) == len(outcomes):
            return StepResult(step.id, step.component, "unchanged", "; ".join([*notes, *info]))
        outcome: Outcome = "created" if all(o == "created" for o in outcomes) else "changed"
        return StepResult(step.id, step.component, outcome, "; ".join([*notes, *info]))

    def helm_step(self, step: Step) -> StepResult:
        """Install or upgrade one release, unless it already has this chart version and these values."""
        assert step.helm is not None and self.helm is not None
        release = step.helm
        state = self.release_state(release)
        recovered = ""
        if state.current is not None and state.current.pending:
            if not self.options.recover:
                raise HelmError(
                    f"release {release.namespace}/{release.release} is {state.current.status}: an earlier helm run "
                    "was interrupted", hint="re-run with --recover to roll it back first")
            recovered = self.recover(release)
            self._forget_release(release)
            state = self.release_state(release)
        if state.current is not None and not state.lines():
            return StepResult(step.id, step.component, "unchanged",
                              f"{recovered}release {release.release} already at chart {state.want_chart} with the "
                              f"same values (revision {state.current.revision})")
        argv = release.argv(str(self.values_dir()))
        self._forget_release(release)
        result = self.helm.upgrade_install(argv, timeout=_seconds(release.timeout))
        revision = re.search(r"^REVISION:\s*(\d+)", result.stdout, re.MULTILINE)
        rev = f" (revision {revision.group(1)})" if revision else ""
        if state.current is None:
            return StepResult(step.id, step.component, "created",
                              f"{recovered}installed chart {state.want_chart}{rev}")
        why = "; ".join(state.lines()[:3])
        return StepResult(step.id, step.component, "changed", f"{recovered}upgraded{rev}: {why}")

    def delete_step(self, step: Step) -> StepResult:
        """Delete every object of the step's manifest (the claim before its volume) and wait until each is gone.

        A deletion is only a request: a claim stays while a pod uses it, a volume while it is bound,
        a namespace (Terminating) until everything in it is gone. What comes next (removing the
        data directory, a new install into the namespace) must not start before. Absent objects are fine.
        """
        from o11yctl.executors.kube import ObjectRef

        gone: list[str] = []
        absent: list[str] = []
        deleted: list[ObjectRef] = []
        for doc in reversed(self.manifests(step)):
            ref = ObjectRef.of(doc)
            if self.kube.delete(ref.api_version, ref.kind, ref.name, ref.namespace):
                gone.append(str(ref))
                deleted.append(ref)
            else:
                absent.append(str(ref))
        for ref in deleted:
            self._wait_gone(ref)
        detail = "; ".join([f"deleted {g}" for g in gone] + [f"{a} not present" for a in absent])
        return StepResult(step.id, step.component, "changed" if gone else "unchanged", detail)

    def orphan_step(self, step: Step) -> StepResult:
        """Delete a StatefulSet with propagation Orphan and wait until it is gone: its pods keep running,
        without an owner, until a new StatefulSet of the same name adopts and replaces them."""
        from o11yctl.executors.kube import ObjectRef

        assert step.target is not None
        kind, name, ns = _target(step.target)
        ref = ObjectRef("apps/v1", kind, name, ns)
        if not self.kube.delete("apps/v1", kind, name, ns, propagation="Orphan"):
            return StepResult(step.id, step.component, "unchanged", f"{step.target} not present")
        self._wait_gone(ref)
        return StepResult(step.id, step.component, "changed", f"deleted {step.target}; its pods and claims kept")

    def helm_uninstall_step(self, step: Step) -> StepResult:
        """Remove one release; a release that is not there is fine."""
        assert step.helm is not None and self.helm is not None
        release = step.helm
        if self.helm.uninstall(release.release, release.namespace, timeout=release.timeout):
            return StepResult(step.id, step.component, "changed", f"removed release {release.release}")
        return StepResult(step.id, step.component, "unchanged", f"release {release.release} not present")

    def recover(self, release: HelmRelease) -> str:
        """Roll a pending release back to its last good revision, or remove it if it never deployed."""
        assert self.helm is not None
        history = self.helm.history(release.release, release.namespace)
        current = history[-1].revision if history else 0
        good = [h for h in history if h.status in ("deployed", "superseded") and h.revision < current]
        if good:
            target = good[-1].revision
            self.helm.rollback(release.release, release.namespace, target, timeout=release.timeout)
            return f"rolled back the interrupted revision {current} to {target}; "
        self.helm.uninstall(release.release, release.namespace, timeout=release.timeout)
        return f"removed the never-deployed release (revision {current}); "

    def wait_step(self, step: Step) -> StepResult:
        """Every pod in the namespace Running and Ready, then each readiness path answers, within a deadline."""
        from o11yctl.config import parse_duration

        cfg = self.plan.config
        ns = cfg.cluster.namespace
        timeout = self.options.wait_timeout or float(parse_duration(cfg.charts.timeout))
        deadline = time.monotonic() + timeout
        pods = self._wait_pods(ns, deadline, timeout)
        answered = []
        for check in step.ready:
            self._wait_ready_endpoint(ns, check, deadline, timeout)
            answered.append(f"{check.service} {check.path}")
        detail = f"all {pods} pod(s) in {ns} Running and Ready"
        if answered:
            detail += f"; {', '.join(answered)} answered"
        return StepResult(step.id, step.component, "unchanged", detail)

    def wait_release(self, release: str, step: Step) -> str:
        """One release's pods Running and Ready, then each readiness path of ``step`` answers."""
        from o11yctl.config import parse_duration

        cfg = self.plan.config
        ns = cfg.cluster.namespace
        timeout = self.options.wait_timeout or float(parse_duration(cfg.charts.timeout))
        deadline = time.monotonic() + timeout
        pods = self._wait_pods(ns, deadline, timeout, selector=f"app.kubernetes.io/instance={release}")
        answered = []
        for check in step.ready:
            self._wait_ready_endpoint(ns, check, deadline, timeout)
            answered.append(f"{check.service} {check.path}")
        detail = f"{pods} pod(s) of release {release} Running and Ready"
        return detail + (f"; {', '.join(answered)} answered" if answered else "")

    def secret_step(self, step: Step) -> StepResult:
        """The object store's credentials Secret: kept when it holds the keys, else created; values never said."""
        from o11yctl.deploy.credentials import credentials_secret, required_keys

        cfg = self.plan.config
        store = cfg.object_storage
        ns = cfg.cluster.namespace
        live = self.kube.get("v1", "Secret", store.credentials_secret, ns)
        wanted = required_keys(cfg)
        if live is not None:
            missing = [k for k in wanted if k not in (live.get("data") or {})]
            if missing:
                raise KubeError(
                    f"Secret {ns}/{store.credentials_secret} has no {', '.join(missing)}",
                    hint=f"add the key(s) (kubectl edit secret -n {ns} {store.credentials_secret}), or point "
                         "object_storage.credentials_secret at a Secret that has access_key_id and "
                         "secret_access_key")
            return StepResult(step.id, step.component, "unchanged",
                              f"Secret {ns}/{store.credentials_secret} holds {', '.join(wanted)} (values not shown)")
        manifest, origin = credentials_secret(cfg, self.env, self.key_origin)
        self.kube.create(manifest)
        return StepResult(step.id, step.component, "created",
                          f"created Secret {ns}/{store.credentials_secret} from {origin} (values not shown)")

    # --- helpers -------------------------------------------------------------------------------

    def _release_stale_claim(self, doc: Mapping[str, Any], live: Mapping[str, Any]) -> str | None:
        """Clear the claim of our Released PV when its claim is gone, so the new PVC binds to the same data."""
        phase = (live.get("status") or {}).get("phase")
        live_ref = (live.get("spec") or {}).get("claimRef") or {}
        want_ref = (doc.get("spec") or {}).get("claimRef") or {}
        if phase != "Released" or not live_ref.get("uid"):
            return None
        if (live_ref.get("namespace"), live_ref.get("name")) != (want_ref.get("namespace"), want_ref.get("name")):
            return None
        claim = self.kube.get("v1", "PersistentVolumeClaim", live_ref["name"], live_ref["namespace"])
        if claim is not None and (claim.get("metadata") or {}).get("uid") == live_ref["uid"]:
            return None
        name = (live.get("metadata") or {}).get("name")
        from o11yctl.executors.kube import ObjectRef

        self.live[ObjectRef("v1", "PersistentVolume", str(name))] = self.kube.merge_patch(
            "v1", "PersistentVolume", str(name), None, {"spec": {"claimRef": {"uid": None, "resourceVersion": None}}})
        return f"PersistentVolume {name} was Released with a stale claim: cleared it, so the claim binds to the " \
               "same data again"

    def _wait_gone(self, ref: Any) -> None:
        """Poll a deleted object until the API says it is gone (404), or fail naming what holds it."""
        deadline = time.monotonic() + self.options.delete_timeout
        while True:
            obj = self.kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            if obj is None:
                return
            if time.monotonic() >= deadline:
                meta = obj.get("metadata") or {}
                held = f" (finalizers: {', '.join(meta['finalizers'])})" if meta.get("finalizers") else ""
                left = [c.get("message") for c in (obj.get("status") or {}).get("conditions") or []
                        if c.get("status") == "True" and c.get("type") in ("NamespaceContentRemaining",
                                                                           "NamespaceFinalizersRemaining")]
                raise KubeError(
                    f"{ref} is still being deleted {self.options.delete_timeout:g}s after the request{held}"
                    + (": " + "; ".join(str(m) for m in left) if left else ""),
                    hint="see what holds it: kubectl get " + (f"-n {ref.namespace} " if ref.namespace else "")
                         + f"{ref.kind.lower()} {ref.name} -o yaml (metadata.finalizers, status); then re-run")
            self.sleep(min(self.options.poll_interval, 1.0))

    def _wait_bound(self, namespace: str, name: str, volume: str, applied: Mapping[str, Any]) -> None:
        deadline = time.monotonic() + self.options.bind_timeout
        pvc: Mapping[str, Any] = applied
        pauses = backoff(0.05, min(self.options.poll_interval, 1.0))
        while True:
            phase = (pvc.get("status") or {}).get("phase")
            if phase == "Bound":
                return
            if time.monotonic() >= deadline:
                pv = self.kube.get("v1", "PersistentVolume", volume) if volume else None
                pv_phase = ((pv or {}).get("status") or {}).get("phase", "missing")
                raise KubeError(
                    f"PersistentVolumeClaim {namespace}/{name} is {phase or 'missing'}, not Bound to {volume} "
                    f"(the PV is {pv_phase}) after {self.options.bind_timeout:g}s",
                    hint=f"`o11yctl doctor` names the cause; or kubectl describe pvc -n {namespace} {name}; "
                         f"kubectl describe pv {volume} (storageClassName, size and claimRef must match)")
            self.sleep(min(next(pauses), max(0.0, deadline - time.monotonic())))
            pvc = self.kube.get("v1", "PersistentVolumeClaim", name, namespace) or {}

    def _wait_pods(self, ns: str, deadline: float, timeout: float, *, selector: str | None = None) -> int:
        pauses = backoff(0.1, self.options.poll_interval)
        where = f"{ns} ({selector})" if selector else ns
        while True:
            pods = self.kube.list("v1", "Pod", ns, label_selector=selector) if selector else \
                self.kube.list("v1", "Pod", ns)
            waiting = [p for p in pods if not _pod_ok(p)]
            if pods and not waiting:
                return len(pods)
            if time.monotonic() >= deadline:
                if not pods:
                    raise KubeError(f"no pods in namespace {where} after {timeout:g}s",
                                    hint=f"see what the releases did: helm list -n {ns}; kubectl get events -n {ns}")
                first = waiting[0]["metadata"]["name"]
                raise KubeError(
                    f"{len(waiting)} of {len(pods)} pods in {where} not Ready after {timeout:g}s: "
                    + ", ".join(_pod_text(p) for p in waiting[:5]),
                    hint=f"`o11yctl doctor` names the cause (scheduling, volumes, crashes); or kubectl describe "
                         f"pod -n {ns} {first}; kubectl logs -n {ns} {first} --tail=50")
            self.sleep(min(next(pauses), max(0.0, deadline - time.monotonic())))

    def _wait_ready_endpoint(self, ns: str, check: ReadyCheck, deadline: float, timeout: float) -> None:
        from o11yctl.executors.http import HttpResponse
        from o11yctl.verify.proxied import judge_proxy

        service, last = check.service, ""
        usual = (f"`o11yctl doctor` looks for config and storage errors; or kubectl logs -n {ns} "
                f"-l app.kubernetes.io/name={service} --tail=50")
        pauses = backoff(0.1, self.options.poll_interval)
        while True:
            hint = usual
            try:
                status, body = self.kube.proxy_request(ns, service, check.port, "GET", check.path, timeout=10)
                text = body.decode("utf-8", "replace").strip()
                if status == 200 and text.startswith("ready"):
                    return
                # The API server's own Status (its proxy could not reach a pod) is read, never pasted.
                verdict = judge_proxy(HttpResponse("GET", check.path, status, body), component=check.title,
                                      namespace=ns, service=service, port=check.port)
                if verdict is not None:
                    last, hint = verdict.detail, verdict.hint or usual
                else:
                    last = f"HTTP {status}: {text[:120]}"
            except KubeError as exc:
                last = exc.message
            if time.monotonic() >= deadline:
                raise KubeError(f"{service} did not answer {check.path} within {timeout:g}s (last answer: {last})",
                                hint=hint)
            self.sleep(min(next(pauses), max(0.0, deadline - time.monotonic())))


def _target(target: str) -> tuple[str, str, str]:
    """``StatefulSet logging/loki`` -> (kind, name, namespace)."""
    kind, _, where = target.partition(" ")
    ns, _, name = where.partition("/")
    return kind, name, ns


def _request(claim: Mapping[str, Any]) -> str | None:
    value = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    return None if value is None else str(value)


def fit_claim(doc: dict[str, Any], live: Mapping[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """A claim as o11yctl applies it over the live one: a size change stays on the volume.

    A claim on a statically provisioned local volume cannot grow (the PersistentVolumeClaimResize
    admission plugin refuses it) and no claim can shrink, while a PersistentVolume's capacity may
    change. So when ``size`` changed, the claim keeps the request it has and the PV (applied with
    it) records the new size; a local volume's room is its filesystem's anyway. A size below the
    claim's request is refused: a volume smaller than its claim would not bind again.

    Returns:
        The document to apply and, when the request was kept, a note saying so.

    Raises:
        KubeError: the new size is smaller than the claim's request (refused; nothing changed).
    """
    from o11yctl.stack.quantity import quantity_bytes

    if doc.get("kind") != "PersistentVolumeClaim" or live is None:
        return doc, None
    want, have = _request(doc), _request(live)
    if want is None or have is None or want == have:
        return doc, None
    name = (doc.get("metadata") or {}).get("name")
    want_b, have_b = quantity_bytes(want), quantity_bytes(have)
    if want_b is not None and have_b is not None and want_b < have_b:
        raise KubeError(f"PersistentVolumeClaim {name} asks for {have}; a size of {want} is smaller, and a claim "
                        "cannot shrink (a volume smaller than its claim would not bind again)",
                        hint=f"set the size back to {have} or more", status=422)
    spec = dict(doc.get("spec") or {})
    spec["resources"] = {**(spec.get("resources") or {}), "requests": {"storage": have}}
    return {**doc, "spec": spec}, (f"claim {name} keeps its request of {have} (a claim on a local volume "
                                   f"cannot grow); the PersistentVolume records {want}")


def backoff(first: float, cap: float) -> Iterator[float]:
    """Pauses between polls: short at first (most waits end quickly), doubling up to ``cap``."""
    pause = min(first, cap)
    while True:
        yield pause
        pause = min(pause * 2, cap)


def _pod_ok(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") == "Succeeded":
        return True
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready


def _pod_text(pod: Mapping[str, Any]) -> str:
    status = pod.get("status") or {}
    reasons = [((c.get("state") or {}).get("waiting") or {}).get("reason") for c in status.get("containerStatuses")
               or []]
    reason = next((r for r in reasons if r), None)
    return f"{pod['metadata']['name']} ({status.get('phase', 'Unknown')}{', ' + reason if reason else ''})"


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))  # describe_changes sorts the keys itself


def _seconds(duration: str) -> float:
    from o11yctl.config import parse_duration

    try:
        return float(parse_duration(duration))
    except ValueError:
        return 600.0


def change_lines(changes: Sequence[Change]) -> list[str]:
    """The confirmation text: one entry per existing object or release that would change."""
    return [c.describe() for c in changes if c.exists and c.outcome == "changed" and not c.refused]


def refusals(changes: Sequence[Change]) -> list[Change]:
    """The changes the API server would refuse (its dry run said no)."""
    return [c for c in changes if c.refused]
