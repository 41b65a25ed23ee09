"""The Kubernetes API, through the official Python client.

This is the only module that imports ``kubernetes``, and it does so inside
:func:`connect`, so importing this module costs nothing. Objects travel as plain
dicts (the API's own JSON), never as the client's generated models: what the
code compares is exactly what the server sent.

What the client is used for: reading the kubeconfig (file, context, credentials,
TLS) and sending requests. Every request goes through :meth:`Kube.request`,
which builds the REST path by hand, so core objects, custom resources (the
Gateway API's HTTPRoute) and the service proxy all take the same road, and every
failure becomes a :class:`~o11yctl.errors.KubeError` that names the object and
says what to do.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from o11yctl.errors import EXIT_UNREACHABLE, KubeError, PreflightError

#: The field manager o11yctl's server-side applies are recorded under.
FIELD_MANAGER = "o11yctl"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"

#: Kinds o11yctl reads or writes: (apiVersion, kind) -> (plural, namespaced). Others are found by discovery.
KNOWN_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Service"): ("services", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Event"): ("events", True),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("gateway.networking.k8s.io/v1", "Gateway"): ("gateways", True),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ("httproutes", True),
}

#: Metadata the server owns; left out when comparing what an object is.
_VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink")


class _Unread:
    """The type of :data:`UNREAD`."""


#: "Not read yet": the default of arguments that may carry an object read earlier (or None for "absent").
UNREAD = _Unread()


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Which object: apiVersion, kind, name and (for namespaced kinds) namespace."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        """The reference of a manifest or an object the API returned."""
        meta = obj.get("metadata") or {}
        return cls(str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("name", "")),
                   meta.get("namespace"))

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Response:
    """One raw answer: status code, headers and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one server-side apply did to one object."""

    ref: ObjectRef
    outcome: str  # "created", "changed" or "unchanged"
    obj: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ObjectDiff:
    """What applying one manifest would do, read without changing anything."""

    ref: ObjectRef
    outcome: str  # "created", "changed" or "unchanged"
    changes: tuple[str, ...] = ()
    adopted: bool = False  # exists, but o11yctl has never applied it

    def describe(self) -> str:
        if self.outcome == "created":
            return f"{self.ref}: would be created"
        if self.outcome == "unchanged":
            return f"{self.ref}: unchanged" + (" (would be adopted: managed by o11yctl from now on)"
                                               if self.adopted else "")
        head = f"{self.ref}: would change" + (" (made outside o11yctl; would be adopted)" if self.adopted else "")
        return head + "".join(f"\n    {c}" for c in self.changes)


def default_kubeconfig(explicit: str | os.PathLike[str] | None) -> str:
    """The kubeconfig to read: ``--kubeconfig``, else ``$KUBECONFIG`` (may list several), else ~/.kube/config."""
    if explicit:
        return os.path.expanduser(str(explicit))
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    return os.path.expanduser("~/.kube/config")


def connect(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None, *,
            timeout: float = 30.0) -> Kube:
    """Load a kubeconfig and return a client for its cluster (no request is sent yet).

    Args:
        kubeconfig: the file (``--kubeconfig``); default ``$KUBECONFIG``, else ~/.kube/config.
        context: the context (``--context``); default the file's current-context.
        timeout: seconds one request may take.

    Raises:
        PreflightError: the file is missing, unreadable, or has no such context.
    """
    from kubernetes import config as kube_config

    path = default_kubeconfig(kubeconfig)
    files = [p for p in path.split(os.pathsep) if p]
    if not any(Path(p).is_file() for p in files):
        raise PreflightError(
            f"no kubeconfig at {path}",
            hint="pass --kubeconfig FILE (or set KUBECONFIG); on the K3s server it is /etc/rancher/k3s/k3s.yaml",
        )
    try:
        contexts, active = kube_config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        names = [c.get("name") for c in contexts or []]
        if context is not None and context not in names:
            raise PreflightError(
                f"kubeconfig {path} has no context {context!r}",
                hint=f"contexts in it: {', '.join(str(n) for n in names) or 'none'}",
            )
        client = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, persist_config=False)
    except PreflightError:
        raise
    except kube_config.ConfigException as exc:
        raise PreflightError(f"cannot use kubeconfig {path}: {exc}",
                             hint="check the file, or pick a context with --context") from exc
    except (OSError, ValueError) as exc:  # yaml and file errors surface as these
        raise PreflightError(f"cannot read kubeconfig {path}: {exc}", hint="check the file") from exc
    name = context or (active or {}).get("name") or "?"
    return Kube(client, context=str(name), timeout=timeout)


class Kube:
    """A connection to one cluster: typed helpers over raw REST requests."""

    def __init__(self, api_client: Any, *, context: str = "", timeout: float = 30.0) -> None:
        self._client = api_client
        self.context = context
        self.server = str(api_client.configuration.host)
        self.timeout = timeout
        self._plurals: dict[tuple[str, str], tuple[str, bool]] = dict(KNOWN_KINDS)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one road every request takes -----------------------------------------------------

    def request(self, method: str, path: str, *, query: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
                body: Any = None, content_type: str = "application/json", timeout: float | None = None,
                what: str | None = None) -> Response:
        """Send one request to the API server and return its raw answer (any status).

        Args:
            method: GET, POST, PUT, PATCH or DELETE.
            path: the path below the server URL, already escaped, e.g. ``/api/v1/nodes``.
            query: query parameters.
            body: a dict or list (sent as JSON), or str/bytes sent as they are.
            content_type: the body's media type (apply patches use ``application/apply-patch+yaml``).
            timeout: seconds for this request (default: the connection's timeout).
            what: what is being done, for the error message.

        Raises:
            KubeError: the server could not be reached or did not answer in time (exit 3).
        """
        import urllib3

        url = self.server + path
        if query:
            url += "?" + urlencode(list(query.items()) if isinstance(query, Mapping) else list(query))
        headers: dict[str, str] = {"Accept": "application/json", **self._client.default_headers}
        if body is not None:
            headers["Content-Type"] = content_type
            if isinstance(body, dict | list):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode("utf-8")
        self._client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        seconds = timeout or self.timeout
        try:
            # The client's own REST layer re-serializes bodies by media type; the pool it built (TLS,
            # client certificates, proxy) sends exactly these bytes.
            raw = self._client.rest_client.pool_manager.request(
                method, url, body=body, headers=headers, preload_content=True, retries=False,
                timeout=urllib3.Timeout(connect=min(seconds, 10.0), read=seconds))
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            hint = f"is the cluster up? check the kubeconfig's server address and context ({self.context})"
            if isinstance(exc, urllib3.exceptions.SSLError):
                hint = "check the kubeconfig's certificate-authority-data and server address"
            raise KubeError(
                f"cannot reach the Kubernetes API at {self.server}{' (' + what + ')' if what else ''}: {reason}",
                hint=hint, exit_code=EXIT_UNREACHABLE,
            ) from exc
        data = raw.data
        return Response(int(raw.status), dict(raw.headers or {}), bytes(data or b""))

    def _json(self, method: str, path: str, *, what: str, ok: Iterable[int] = (200, 201), **kwargs: Any) -> Any:
        resp = self.request(method, path, what=what, **kwargs)
        if resp.status not in set(ok):
            raise api_error(resp, what)
        return resp.json()

    # --- paths ---------------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) for a kind, from the table of known kinds or from discovery."""
        key = (api_version, kind)
        if key not in self._plurals:
            listing = self.discover(api_version)
            if listing is None:
                raise KubeError(f"the cluster does not serve {api_version}",
                                hint=f"is the API group of {kind} installed (its CRDs)?")
            for res in listing.get("resources", []):
                if res.get("kind") == kind and "/" not in res.get("name", ""):
                    self._plurals[key] = (res["name"], bool(res.get("namespaced")))
                    break
            else:
                raise KubeError(f"the cluster does not serve {kind} in {api_version}",
                                hint="is the CRD installed?")
        return self._plurals[key]

    def path(self, api_version: str, kind: str, name: str | None = None, namespace: str | None = None) -> str:
        """The REST path of one object, or of a collection when ``name`` is None."""
        plural, namespaced = self.resource(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if namespaced:
            if not namespace:
                raise KubeError(f"{kind} {name or ''} needs a namespace", hint="this is a bug in o11yctl's manifests")
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        return base

    # --- reads ---------------------------------------------------------------------------------

    def server_version(self) -> str:
        """The API server's gitVersion, e.g. ``v1.31.4+k3s1``.

        Raises:
            KubeError: the API does not answer, or refuses the credentials.
        """
        doc = self._json("GET", "/version", what="GET /version")
        return str(doc.get("gitVersion", "unknown"))

    def discover(self, group_version: str) -> dict[str, Any] | None:
        """The APIResourceList of a group/version, or None when the cluster does not serve it."""
        path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        resp = self.request("GET", path, what=f"discovery of {group_version}")
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise api_error(resp, f"discovery of {group_version}")
        doc = resp.json()
        return doc if isinstance(doc, dict) else None

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        ref = ObjectRef(api_version, kind, name, namespace)
        resp = self.request("GET", self.path(api_version, kind, name, namespace), what=f"read {ref}")
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise api_error(resp, f"read {ref}")
        return dict(resp.json())

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of a kind (in a namespace, for namespaced kinds), optionally filtered."""
        query: dict[str, str] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        what = f"list {kind}" + (f" in namespace {namespace}" if namespace else "")
        doc = self._json("GET", self.path(api_version, kind, None, namespace), what=what, query=query)
        return [dict(i) for i in doc.get("items") or []]

    def pod_log(self, namespace: str, pod: str, *, container: str | None = None, previous: bool = False,
                tail_lines: int | None = None, since_seconds: int | None = None,
                timeout: float | None = None) -> str | None:
        """What one container of a pod printed (``kubectl logs``), or None when there is no such log.

        The API server answers 404 when the pod does not exist and 400 when the log cannot
        be read: no previous run (``previous``), a container that is still waiting to start,
        an unknown container, or no ``container`` for a pod that has several.

        Args:
            namespace: the pod's namespace.
            pod: the pod's name.
            container: which container; may be left out when the pod has only one.
            previous: the log of the container's previous run (the one that crashed).
            tail_lines: only this many lines from the end.
            since_seconds: only lines written in the last this many seconds.
            timeout: seconds for this request (default: the connection's timeout).

        Raises:
            KubeletUnreachable: the API server answers but cannot reach the kubelet of the pod's node.
            KubeError: the API cannot be reached (exit 3), refuses the read (403), or fails (5xx).
        """
        query: list[tuple[str, str]] = []
        if container:
            query.append(("container", container))
        if previous:
            query.append(("previous", "true"))
        if tail_lines is not None:
            query.append(("tailLines", str(tail_lines)))
        if since_seconds is not None:
            query.append(("sinceSeconds", str(since_seconds)))
        path = f"{self.path('v1', 'Pod', pod, namespace)}/log"
        what = (f"read the {'previous ' if previous else ''}log of pod {namespace}/{pod}"
                + (f", container {container}" if container else ""))
        resp = self.request("GET", path, query=query, timeout=timeout, what=what)
        if resp.status in (400, 404):
            return None
        if resp.status != 200:
            raise stream_error(resp, what)
        return resp.body.decode("utf-8", "replace")

    # --- writes --------------------------------------------------------------------------------

    def apply(self, manifest: Mapping[str, Any], *, dry_run: bool = False, force: bool = True) -> dict[str, Any]:
        """Server-side apply one manifest (field manager ``o11yctl``) and return the object.

        Args:
            manifest: the object as o11yctl wants it (apiVersion, kind, metadata, spec...).
            dry_run: ask the server what the object would become, changing nothing.
            force: take over fields another manager set (how objects made by hand are adopted).

        Raises:
            KubeError: the server refused the object (the message says why: invalid, conflict...).
        """
        ref = ObjectRef.of(manifest)
        query = [("fieldManager", FIELD_MANAGER), ("force", "true" if force else "false")]
        if dry_run:
            query.append(("dryRun", "All"))
        path = self.path(ref.api_version, ref.kind, ref.name, ref.namespace)
        return dict(self._json("PATCH", path, what=f"apply {ref}", query=query,
                               body=json.dumps(manifest), content_type=APPLY_PATCH))

    def apply_manifest(self, manifest: Mapping[str, Any], *,
                       before: Mapping[str, Any] | _Unread | None = UNREAD) -> ApplyResult:
        """Apply one manifest and say whether that created, changed or left the object alone.

        Args:
            manifest: the object as o11yctl wants it.
            before: the live object (None: it does not exist), when the caller read it already.
        """
        ref = ObjectRef.of(manifest)
        if isinstance(before, _Unread):
            before = self.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        after = self.apply(manifest)
        if before is None:
            outcome = "created"
        elif _rv(before) == _rv(after):
            outcome = "unchanged"
        else:
            outcome = "changed"
        return ApplyResult(ref, outcome, after)

    def diff(self, manifest: Mapping[str, Any], *, current: Mapping[str, Any] | None = None,
             exists: bool | None = None) -> ObjectDiff:
        """What :meth:`apply_manifest` would do to one object, read by a server-side dry run.

        Args:
            manifest: the object as o11yctl wants it.
            current: the live object, if already read.
            exists: pass False when the object is known not to exist (skips the read).
        """
        ref = ObjectRef.of(manifest)
        if current is None and exists is not False:
            current = self.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        if current is None:
            return ObjectDiff(ref, "created")
        adopted = not any(m.get("manager") == FIELD_MANAGER for m in (current.get("metadata") or {}).get(
            "managedFields") or [])
        desired = self.apply(manifest, dry_run=True)
        changes = tuple(describe_changes(comparable(current), comparable(desired)))
        return ObjectDiff(ref, "changed" if changes else "unchanged", changes, adopted)

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create one object (``kubectl create``) and return it as the server stored it.

        Unlike :meth:`apply`, this refuses to touch an object that already exists.

        Raises:
            KubeError: the server refused it (409 it exists, 403 forbidden or refused by admission,
                422 invalid), or cannot be reached (exit 3).
        """
        ref = ObjectRef.of(manifest)
        path = self.path(ref.api_version, ref.kind, None, ref.namespace)
        return dict(self._json("POST", path, what=f"create {ref}", body=dict(manifest),
                               query={"fieldManager": FIELD_MANAGER}))

    def merge_patch(self, api_version: str, kind: str, name: str, namespace: str | None,
                    patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) on one object; ``None`` values remove fields."""
        ref = ObjectRef(api_version, kind, name, namespace)
        return dict(self._json("PATCH", self.path(api_version, kind, name, namespace), what=f"patch {ref}",
                               body=dict(patch), content_type=MERGE_PATCH,
                               query={"fieldManager": FIELD_MANAGER}))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation: str = "Background") -> bool:
        """Delete one object. Returns False when it was already gone.

        ``propagation``: ``Background`` (its dependents go after it) or ``Orphan`` (they stay, without
        their owner: ``kubectl delete --cascade=orphan``).
        """
        ref = ObjectRef(api_version, kind, name, namespace)
        resp = self.request("DELETE", self.path(api_version, kind, name, namespace), what=f"delete {ref}",
                            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation})
        if resp.status == 404:
            return False
        if resp.status not in (200, 202):
            raise api_error(resp, f"delete {ref}")
        return True

    # --- the service proxy ---------------------------------------------------------------------

    def proxy_request(self, namespace: str, service: str, port: int | str, method: str = "GET", path: str = "/",
                      query: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
                      body: bytes | str | None = None, timeout: float | None = None,
                      content_type: str = "application/json") -> tuple[int, bytes]:
        """One HTTP request to a Service through the API server's service proxy.

        The path is ``/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/<path>``, as
        ``kubectl get --raw`` would use: no port-forward, no route to the pod network needed.

        Args:
            namespace: the Service's namespace.
            service: the Service's name.
            port: its port number or name.
            method: the HTTP method.
            path: the path at the service, e.g. ``/ready``.
            query: query parameters.
            body: the request body.
            timeout: seconds for this request.
            content_type: the body's media type.

        Returns:
            (status, body bytes) as the service (or the proxy, e.g. 503 "no endpoints") answered.

        Raises:
            KubeError: the API server could not be reached.
        """
        target = f"/api/v1/namespaces/{quote(namespace, safe='')}/services/{quote(service, safe='')}:{port}/proxy"
        target += "/" + path.lstrip("/")
        resp = self.request(method, target, query=query, body=body, content_type=content_type, timeout=timeout,
                            what=f"{method} {path} on service {namespace}/{service}:{port}")
        return resp.status, resp.body


def api_error(resp: Response, what: str) -> KubeError:
    """A KubeError for a refused request: the server's own message and what to do next."""
    message = ""
    reason = ""
    causes: list[Any] = []
    try:
        doc = resp.json()
        if isinstance(doc, dict):
            message = str(doc.get("message") or "")
            reason = str(doc.get("reason") or "")
            causes = list((doc.get("details") or {}).get("causes") or [])
    except ValueError:
        message = resp.body.decode("utf-8", "replace")[:300]
    text = f"{what}: {message or reason or 'HTTP ' + str(resp.status)} (HTTP {resp.status})"
    exit_code = None
    terminating = [c for c in causes if isinstance(c, dict) and c.get("reason") == "NamespaceTerminating"]
    if resp.status == 403 and terminating:
        # The NamespaceLifecycle admission plugin: not a permission problem, the namespace is being deleted.
        hint = ("the namespace is being deleted (Terminating) and takes no new objects until it is gone; wait for "
                "it (kubectl get namespace), then re-run")
    elif resp.status == 401 or (resp.status == 403 and _RBAC_DENIAL.search(message)):
        # Authentication, or authorization's own words (forbiddenMessage: `User "x" cannot <verb> ...`).
        hint = ("the kubeconfig's user is not allowed to do this; use a cluster-admin context "
                "(on K3s: /etc/rancher/k3s/k3s.yaml)")
        exit_code = EXIT_UNREACHABLE
    elif resp.status == 403:
        hint = admission_hint(message)
    elif resp.status == 404:
        hint = "it does not exist (yet); check the names in the config"
    elif resp.status == 409:
        hint = "another client changed it at the same time, or a field is owned by another manager; re-run"
    elif resp.status == 422 and "spec.persistentvolumesource" in message:
        # ValidatePersistentVolumeUpdate: a local volume's path is its source; a new storage.root is a move.
        hint = ("a PersistentVolume's path cannot change after creation: to move the data to the new storage.root, "
                "run `o11yctl move-data --dry-run`, then `o11yctl move-data` (it stops each component that keeps "
                "data, copies its directory on the node and re-creates its volume; the old directories are kept); "
                "or put the old storage.root back in the config")
    elif resp.status == 422:
        hint = ("the cluster refused the object as written; some fields (a PV's path, a PVC's class) cannot "
                "change after creation: delete the object first or put the old value back in the config")
    elif resp.status >= 500:
        hint = "the API server failed; check its health (kubectl get --raw /readyz) and re-run"
    else:
        hint = None
    return KubeError(text, hint=hint, exit_code=exit_code, status=resp.status)


#: Authorization's refusal (apiserver responsewriters.forbiddenMessage): `User "x" cannot patch ...`.
_RBAC_DENIAL = re.compile(r'\bUser "[^"]*" cannot [a-z]+ (resource|path) ')


def admission_hint(message: str) -> str:
    """What to do about a 403 that admission control (not authorization) gave."""
    if "only dynamically provisioned pvc can be resized" in message:
        return ("a claim on a local volume cannot grow: the API server resizes only claims a storage class "
                "provisioned; o11yctl records a new size on the PersistentVolume and keeps the claim's request "
                "(README: changing a volume's size)")
    if "Only bound persistent volume claims can be expanded" in message:
        return "the claim is not Bound yet: `o11yctl doctor` names why; its size can change once it is bound"
    if "exceeded quota" in message:
        return "a ResourceQuota in the namespace limits it: kubectl describe resourcequota -n <namespace>"
    return ("the cluster's admission control refused it (a built-in plugin, a policy or a webhook, named in the "
            "message); change the object or that policy")


def comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object without status and server-owned metadata: what a manifest can set."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_METADATA}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def describe_changes(old: Any, new: Any, path: str = "", *, limit: int = 12) -> list[str]:
    """Dotted paths where two JSON values differ, each as ``path: old -> new`` (at most ``limit``)."""
    out: list[str] = []
    _walk(old, new, path, out)
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more"]
    return out


def _walk(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{sub}: (none) -> {_short(new[key])}")
            elif key not in new:
                out.append(f"{sub}: {_short(old[key])} -> (removed)")
            else:
                _walk(old[key], new[key], sub, out)
        return
    if old != new:
        out.append(f"{path or '(value)'}: {_short(old)} -> {_short(new)}")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


# --- answers of the API server itself: Status bodies, and what it met dialling a kubelet or a pod ---------

#: The port every kubelet listens on for the API server (logs, exec, attach, port-forward).
KUBELET_PORT = 10250

#: What Go's net package says when a TCP dial fails: ``dial tcp HOST:PORT: REASON`` (net.OpError), as the
#: API server passes it on (``Get "URL": dial tcp ...`` from net/http, ``error dialing backend: dial tcp ...``
#: from apimachinery's proxy, ``error trying to reach service: dial tcp ...`` from its proxy transport).
_DIAL = re.compile(r"dial tcp (?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:\]\[\"]+):(?P<port>\d+): "
                   r"(?P<why>[^\";()\n]+?)\s*(?=$|[\";()\n])")
#: The URL of the kubelet request the API server made, when its message carries one (``Get "https://...``).
_KUBELET_URL = re.compile(r'^[A-Z][a-z]+ "?https?://(?P<host>\[[^\]]+\]|[^/:"]+):(?P<port>\d+)'
                          r'(?P<path>/(?:containerLogs|exec|attach|portForward|run)/[^"\s]*)')


@dataclass(frozen=True, slots=True)
class ApiStatus:
    """A ``Status`` the API server answered with (``metav1.Status``): its code, reason and message, whole."""

    code: int
    message: str = ""
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``HTTP 503 ServiceUnavailable: error trying to reach service: ...``, nothing cut."""
        head = f"HTTP {self.code}" + (f" {self.reason}" if self.reason else "")
        return f"{head}: {self.message}" if self.message else head


def read_status(status: int, body: bytes | str) -> ApiStatus | None:
    """The ``Status`` object of an answer, parsed; None when the body is not one (a service's own answer).

    Args:
        status: the HTTP status of the answer (used when the Status carries no ``code``).
        body: the answer's body.
    """
    try:
        doc = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("kind") != "Status" or doc.get("apiVersion") != "v1":
        return None
    code = doc.get("code")
    details = doc.get("details")
    return ApiStatus(code=int(code) if isinstance(code, int) else status, message=str(doc.get("message") or ""),
                     reason=str(doc.get("reason") or ""), details=details if isinstance(details, dict) else {})


@dataclass(frozen=True, slots=True)
class DialError:
    """A TCP dial the API server made and that failed: where to, and Go's reason."""

    host: str
    port: int
    why: str  # e.g. "connect: no route to host", "i/o timeout", "connect: connection refused"
    text: str  # the whole "dial tcp 10.0.0.103:10250: connect: no route to host"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def dial_error(message: str) -> DialError | None:
    """The failed dial inside an API server's message, or None when the message carries none."""
    found = _DIAL.search(message)
    if found is None:
        return None
    host = found.group("host").strip("[]")
    return DialError(host=host, port=int(found.group("port")), why=found.group("why"),
                     text=found.group(0).rstrip())


def kubelet_dial(status: ApiStatus) -> DialError | None:
    """The failed dial to a kubelet in a Status of a pod's log, exec, attach or port-forward request.

    The API server reaches each node's kubelet (port 10250) for these; when the dial fails it
    answers 500 with the dial's error as the message: ``Get "https://HOST:10250/containerLogs/...":
    dial tcp HOST:10250: ...`` for logs (LocationStreamer), ``error dialing backend: dial tcp
    HOST:10250: ...`` for exec and port-forward (UpgradeAwareHandler). A dial to another port is a
    kubelet's only when the message names a kubelet path.
    """
    if status.code < 500:
        return None
    dial = dial_error(status.message)
    if dial is None:
        return None
    url = _KUBELET_URL.search(status.message)
    if dial.port == KUBELET_PORT or url is not None or status.message.startswith("error dialing backend: "):
        return dial
    return None


class KubeletUnreachable(KubeError):
    """The API server answered, but could not open a connection to the kubelet of the pod's node.

    Logs, exec, attach and port-forward go from the API server to the node's kubelet (TCP 10250):
    the API server itself is healthy.
    """

    def __init__(self, message: str, *, hint: str | None, dial: DialError, api_status: ApiStatus) -> None:
        super().__init__(message, hint=hint)
        self.dial = dial
        self.api_status = api_status


def kubelet_hint(address: str, node: str | None = None) -> str:
    """What to do when the API server cannot reach a kubelet at ``address`` (``HOST:PORT``)."""
    who = f"{node}'s kubelet ({address})" if node else f"the kubelet at {address}"
    return (f"the API server is up but cannot connect to {who}: K3s needs TCP {KUBELET_PORT} open from the server "
            "to every node (logs, exec and port-forward go that way); check the node's firewall for the server's "
            "address; `o11yctl doctor` names the node and `o11yctl doctor --fix` opens the port")


def stream_error(resp: Response, what: str) -> KubeError:
    """The error of a failed pod log, exec, attach or port-forward request.

    A dial error to the pod's kubelet becomes :class:`KubeletUnreachable` (with the API server's
    message whole); anything else is :func:`api_error`'s.
    """
    status = read_status(resp.status, resp.body)
    dial = kubelet_dial(status) if status is not None else None
    if status is None or dial is None:
        return api_error(resp, what)
    return KubeletUnreachable(f"{what}: {status.message} ({status.describe().split(':', 1)[0]})",
                              hint=kubelet_hint(dial.address), dial=dial, api_status=status)
