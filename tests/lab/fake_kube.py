"""A fake Kubernetes API server on 127.0.0.1, for code that talks to a cluster.

No control plane can run on this machine (no kubelet, no container runtime, no
etcd), so tests point the *real* kubernetes Python client (and, for reads, the
real helm) at this server through a generated kubeconfig. It answers on the
wire like the API server does: the same REST paths, the same JSON shapes
(``Status`` objects for errors, ``<Kind>List`` for collections, discovery
documents), the same status codes (401, 403, 404, 409, 415, 422, 503), and a
``resourceVersion`` that changes only when an object really changes.

What it implements:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``;
- core kinds: namespaces, nodes, persistentvolumes (cluster scope); pods,
  services, secrets, configmaps, events, persistentvolumeclaims (namespaced);
- apps/v1 statefulsets with their ``scale`` subresource, a little of the statefulset controller
  (scaling down and up) and of the scheduler for the pods it creates (:class:`_AppsV1`);
- custom resources: a ``CustomResourceDefinition`` stored under
  ``apiextensions.k8s.io/v1`` makes its kind servable (:meth:`FakeKube.install_gateway_api`
  seeds the Gateway API's CRDs), e.g. ``gateways`` and ``httproutes``;
- verbs: get, list (``labelSelector``, ``fieldSelector`` on metadata.name,
  metadata.namespace, status.phase, spec.nodeName), create (POST), replace (PUT,
  with optimistic concurrency), delete, and PATCH as server-side apply
  (``application/apply-patch+yaml``: field managers, ``force``, conflicts, removal of
  fields a manager stops applying, ``dryRun=All``), JSON merge patch, and strategic merge
  patch for built-in kinds (lists merged by the ``x-kubernetes-patch-merge-key`` of the real
  schemas; a 415 for custom resources, as the real server answers);
- deletion as the registries do it (:meth:`FakeKube._delete_object`): a namespace turns
  ``Terminating`` and stays until its content is gone; a pod on a node is deleted gracefully
  (``deletionTimestamp`` + ``deletionGracePeriodSeconds``); an object with finalizers waits for
  them; the answer is the object, or a success ``Status`` for the kinds whose registry does not
  return the deleted object;
- admission: NamespaceLifecycle (no new object in a Terminating namespace: the real 403;
  the immortal namespaces cannot be deleted) and StorageObjectInUseProtection (the
  ``kubernetes.io/pv-protection`` and ``kubernetes.io/pvc-protection`` finalizers);
- a little of the controllers: a namespace is ``Active`` and carries
  ``kubernetes.io/metadata.name``; the persistent volume controller binds claims and
  volumes as ``syncUnboundClaim``/``findByClaim`` do (:meth:`FakeKube._sync_volumes`) and
  leaves a volume ``Released`` when its bound claim goes (its stale claim then blocks a new
  claim of the same name until the claim's ``uid`` is cleared). After every request the
  server answers, the controllers that finish deletions run one pass
  (:meth:`FakeKube._controllers_pass`: the kubelets of Ready nodes, the namespace controller,
  the PVC and PV protection controllers); :meth:`FakeKube.settle` runs passes until nothing
  changes. Each request thus stands for enough time for each controller to act once;
- validation (422 Invalid, built as ``errors.NewInvalid`` builds it, causes with their
  ``FieldValue...`` reasons): names by the rule of their kind, a pod's containers and restart
  policy, a claim's spec after creation, a volume's source, mode and node affinity;
- pods made through the API (POST) start ``Pending`` with no status beyond that, as on a
  cluster whose kubelet has not picked them up; a hook registered with
  :meth:`FakeKube.on_pod_created` plays the kubelet for them in its own thread (waiting, e.g.
  ``ContainerCreating`` or ``ImagePullBackOff``; running; terminated with an exit code and a log,
  which makes the phase ``Succeeded`` or ``Failed``). A deleted pod's logs go with it;
- the pod log subresource ``GET /api/v1/namespaces/<ns>/pods/<name>/log`` with
  ``container``, ``previous``, ``tailLines`` and ``sinceSeconds``, answered from what
  :meth:`FakeKube.set_log` seeded and from the pod's container statuses, as the API
  server and the kubelet answer (see :meth:`FakeKube.set_log`);
- the service proxy ``/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/<path>``:
  404 without the Service, 503 "no endpoints" without a scripted backend, else the
  scripted backend's answer (:meth:`FakeKube.add_service`). The backend gets the
  request headers the API server forwards (all but ``Authorization``, impersonation and
  hop-by-hop headers, plus ``X-Forwarded-For`` and ``X-Forwarded-Uri``) and runs outside
  the fake's lock, so a slow or hung backend holds up only the requests sent to it; a
  backend that cannot be reached (``OSError``) is a 503 "error trying to reach service"
  (:meth:`FakeKube.unreachable_endpoint` scripts Go's dial error for a pod's address);
- a kubelet the API server cannot reach (:meth:`FakeKube.unreachable_kubelet`): the logs, exec,
  attach and port-forward of its node's pods answer the API server's 500 with the dial error.

It speaks HTTPS with a self-signed certificate made at start (the kubeconfig
carries it as ``certificate-authority-data``) and wants a bearer token, as a K3s
server does; client-go (inside helm) sends no credentials over plain HTTP.

Every modelled behaviour names its Kubernetes source; ``tests/data/kube/README.md`` lists the
files and the tag or commit they were read at. What it cannot model faithfully it refuses.

It fails closed: a path, media type or behaviour it does not implement is answered 404/415/501
*and* recorded in :attr:`FakeKube.unexpected`, which the ``fake_kube`` fixture
asserts is empty at teardown. Failures are scripted with :meth:`FakeKube.fail`;
every scripted failure must have happened by teardown too, every pod hook must have
run at least once, and a hook that raises is recorded as unexpected.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import ipaddress
import itertools
import json
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, unquote, urlsplit

import yaml

from tests.lab import smd

TOKEN = "fake-token-for-tests"
GIT_VERSION = "v1.31.4+k3s1"

#: An answer on the wire: (status, content type, body).
Answer = tuple[int, str, bytes]

#: A proxy backend: (method, path, query, body, forwarded headers) -> (status, content type, body).
ProxyHandler = Callable[[str, str, dict[str, list[str]], bytes, Mapping[str, str]], Answer]

#: Headers the API server does not pass on to a proxied service: its own credentials (removed once
#: the request is authenticated), impersonation, and the hop-by-hop headers of RFC 9110 section 7.6.1.
_NOT_FORWARDED = frozenset({
    "authorization", "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})

#: The pod log options the fake implements; any other one is a gap in the fake.
_LOG_OPTIONS = frozenset({"container", "previous", "tailLines", "sinceSeconds"})


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    #: Has a status subresource: writes to the object keep its status; status writes change only the status.
    status: bool = False

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery(self) -> dict[str, Any]:
        return {
            "name": self.plural, "singularName": self.singular or self.kind.lower(), "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        }


CORE_TYPES = (
    ResourceType("", "v1", "namespaces", "Namespace", False, status=True),
    ResourceType("", "v1", "nodes", "Node", False, status=True),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", False, status=True),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, status=True),
    ResourceType("", "v1", "pods", "Pod", True, status=True),
    ResourceType("", "v1", "services", "Service", True, status=True),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True),
    ResourceType("", "v1", "events", "Event", True),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, status=True),  # see _AppsV1
    # Stored and applied by its published schema (no status since v1.27); the policy controller that
    # would enforce it is not modelled: traffic between the fake's backends is never filtered.
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
)


#: Built-in API groups this fake does not implement: a request there is a gap in the fake, not a 404.
BUILTIN_GROUPS = frozenset({
    "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io", "storage.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "admissionregistration.k8s.io",
    "certificates.k8s.io", "scheduling.k8s.io", "node.k8s.io", "flowcontrol.apiserver.k8s.io",
    "apiregistration.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "resource.k8s.io",
})


@dataclass
class PodHook:
    """A registered :meth:`FakeKube.on_pod_created` callback and the pods it was called for."""

    callback: Callable[[KubeletPod], None]
    label_selector: str | None = None
    calls: list[str] = field(default_factory=list)


@dataclass
class KubeletPod:
    """A pod made through the API, as a pod hook drives it: what the kubelet would report.

    Every method returns False, and changes nothing, once the pod is gone (deleted, or
    replaced by another pod of the same name), so a hook can stop there.
    """

    api: FakeKube
    namespace: str
    name: str
    pod: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def node(self) -> str | None:
        return (self.pod.get("spec") or {}).get("nodeName")

    @property
    def containers(self) -> list[str]:
        return _container_names(self.pod, init=False)

    @property
    def deleted(self) -> bool:
        with self.api.lock:
            return self._stored() is None

    def waiting(self, reason: str = "ContainerCreating", message: str = "") -> bool:
        """Phase ``Pending``, every container waiting with ``reason`` (e.g. ``ErrImagePull``)."""
        state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        return self._set("Pending", state, ready=False)

    def running(self, pod_ip: str | None = None) -> bool:
        """Phase ``Running``, every container running and ready, with ``pod_ip`` as the pod's IP."""
        return self._set("Running", {"running": {"startedAt": _now()}}, ready=True, pod_ip=pod_ip)

    def terminated(self, exit_code: int, log: str = "", *, reason: str | None = None, message: str = "",
                   container: str | None = None) -> bool:
        """Every container ended with ``exit_code``; ``log`` is what ``container`` (default: the first) printed.

        The phase follows the restart policy as the kubelet does: ``Succeeded`` on exit 0, else
        ``Failed``. Pods that the kubelet would restart (``Always``, or ``OnFailure`` after a
        failure) are not implemented and raise.
        """
        policy = (self.pod.get("spec") or {}).get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
            raise NotImplementedError(f"the fake kubelet does not restart containers (restartPolicy {policy})")
        with self.api.lock:
            if self._stored() is None:
                return False
            if log:
                self.api.set_log(self.namespace, self.name, log, container=container or self.containers[0])
            state = {"terminated": {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0
                                                                                 else "Error"),
                                    "startedAt": _now(), "finishedAt": _now(),
                                    **({"message": message} if message else {})}}
            return self._set("Succeeded" if exit_code == 0 else "Failed", state, ready=False)

    def wait_deleted(self, timeout: float) -> bool:
        """Wait until the pod is deleted (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.deleted:
                return True
            time.sleep(0.05)
        return self.deleted

    def _stored(self) -> dict[str, Any] | None:
        obj = self.api.store.get(("", "v1", "pods", self.namespace, self.name))
        return obj if obj is not None and obj["metadata"].get("uid") == self.uid else None

    def _set(self, phase: str, state: dict[str, Any], *, ready: bool, pod_ip: str | None = None) -> bool:
        with self.api.lock:
            obj = self._stored()
            if obj is None:
                return False
            old = obj.get("status") or {}
            node = self.api.store.get(("", "v1", "nodes", "", self.node or ""))
            host_ip = next((a["address"] for a in ((node or {}).get("status") or {}).get("addresses") or []
                            if a.get("type") == "InternalIP"), None)
            images = {str(c.get("name")): str(c.get("image")) for c in (obj.get("spec") or {}).get("containers") or []}
            status: dict[str, Any] = {
                "phase": phase, "qosClass": old.get("qosClass", "BestEffort"),
                "startTime": old.get("startTime") or _now(),
                "conditions": [{"type": "PodScheduled", "status": "True"},
                               {"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [
                    {"name": c, "image": images.get(c, ""), "ready": ready, "restartCount": 0,
                     "started": "running" in state, "state": copy.deepcopy(state), "lastState": {}}
                    for c in self.containers],
            }
            if host_ip:
                status["hostIP"] = host_ip
            if pod_ip or old.get("podIP"):
                status["podIP"] = pod_ip or old["podIP"]
            self.api._write_status(("", "v1", "pods", self.namespace, self.name), status, manager="kubelet")
            return True


@dataclass
class Failure:
    """A scripted failure: the next ``times`` requests matching method and path get this answer."""

    method: str
    path: re.Pattern[str]
    status: int
    reason: str
    message: str
    times: int = 1
    hits: int = 0


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}


def status_doc(status: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``Status`` object, as the API server sends with every error."""
    doc: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": reason, "code": status}
    if not reason:  # metav1.StatusReasonUnknown is "", and the field is omitempty
        del doc["reason"]
    if details:
        doc["details"] = details
    return doc


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: Registries that set ``ReturnDeletedObject: true`` (their DELETE answers the object even once it is
#: gone): kubernetes ``pkg/registry/core/{namespace,pod,persistentvolumeclaim,persistentvolume,service}/
#: storage/storage.go``. ConfigMap, Secret, Event and Node registries do not set it, nor does the
#: custom resource registry (apiextensions-apiserver ``pkg/registry/customresource/etcd.go``).
_RETURNS_DELETED_OBJECT = frozenset({("", "namespaces"), ("", "pods"), ("", "persistentvolumeclaims"),
                                     ("", "persistentvolumes"), ("", "services")})

#: NamespaceLifecycle's immortal namespaces (apiserver ``admission/plugin/namespace/lifecycle``, ``Register``).
_IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})

_PVC_PROTECTION = "kubernetes.io/pvc-protection"
_PV_PROTECTION = "kubernetes.io/pv-protection"


#: The patch types a custom resource accepts (apiextensions-apiserver customresource_handler.go; the
#: CBOR apply type only behind the CBORServingAndStorage gate, alpha and off).
_CR_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


class _NotModelled(Exception):
    """A request the fake cannot answer faithfully."""


def _no_directives(value: Any) -> None:
    """Refuse a strategic merge patch value that carries a directive anywhere inside."""
    if isinstance(value, dict):
        for k, v in value.items():
            if str(k).startswith("$"):
                raise _NotModelled(f"directive {k}")
            _no_directives(v)
    elif isinstance(value, list):
        for v in value:
            _no_directives(v)


def _delete_during_update(rtype: ResourceType, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """``ShouldDeleteDuringUpdate`` (apiserver ``registry/generic/registry/store.go``): an update that leaves
    no finalizers on an object with a deletion request and no (or a zero) grace period deletes it; a
    namespace also needs an empty ``spec.finalizers`` (``ShouldDeleteNamespaceDuringUpdate``)."""
    if new["metadata"].get("finalizers") or not old["metadata"].get("deletionTimestamp"):
        return False
    if old["metadata"].get("deletionGracePeriodSeconds"):
        return False
    return not (rtype.kind == "Namespace" and not rtype.group and (new.get("spec") or {}).get("finalizers"))


def _proto_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of one protobuf message: varints and length-delimited fields only."""
    out: list[tuple[int, int | bytes]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            size = varint()
            out.append((number, data[i:i + size]))
            i += size
        else:
            raise ApiError(400, "BadRequest", f"protobuf wire type {wire} is not expected in DeleteOptions")
    return out


def _proto_delete_options(body: bytes) -> dict[str, Any]:
    """A DeleteOptions sent as protobuf: the ``k8s\\0`` prefix and a ``runtime.Unknown`` wrapping it
    (apimachinery ``runtime/serializer/protobuf/protobuf.go``, ``runtime/generated.proto``), its fields
    as numbered in ``pkg/apis/meta/v1/generated.proto``. Fields the fake does not model come back
    under their proto number, so the caller refuses them."""
    if not body.startswith(b"k8s\x00"):
        raise ApiError(400, "BadRequest", "the protobuf body lacks the k8s prefix")
    raw = b""
    for number, value in _proto_fields(body[4:]):
        if number == 2 and isinstance(value, bytes):
            raw = value
    out: dict[str, Any] = {}
    for number, value in _proto_fields(raw):
        if number == 1 and isinstance(value, int):
            out["gracePeriodSeconds"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 4 and isinstance(value, bytes):
            out["propagationPolicy"] = value.decode()
        elif number == 5 and isinstance(value, bytes):
            out.setdefault("dryRun", []).append(value.decode())
        else:
            out[f"protobuf field {number}"] = value
    return out


def _protect_storage(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """The StorageObjectInUseProtection admission plugin (kubernetes ``plugin/pkg/admission/storage/
    storageobjectinuseprotection/admission.go``, ``admitPV``, ``admitPVC``): a new PersistentVolume gets
    the ``kubernetes.io/pv-protection`` finalizer, a new claim ``kubernetes.io/pvc-protection``.

    (Who owns the added finalizer in ``managedFields`` is not modelled: no manager does.)
    """
    if rtype.group:
        return
    finalizer = {"PersistentVolume": _PV_PROTECTION, "PersistentVolumeClaim": _PVC_PROTECTION}.get(rtype.kind)
    if finalizer is not None:
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if finalizer not in finalizers:
            finalizers.append(finalizer)


def _delete_options(query: dict[str, list[str]], body: bytes, content_type: str = "") -> dict[str, Any]:
    """The DeleteOptions of a request: its body when it has one, else its query parameters."""
    if body.strip() and content_type.split(";")[0].strip() == "application/vnd.kubernetes.protobuf":
        return _proto_delete_options(body)  # client-go (helm) sends its DeleteOptions so
    if body.strip():
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"error decoding DeleteOptions: {exc}") from None
        return dict(doc) if isinstance(doc, dict) else {}
    out: dict[str, Any] = {}
    for name, values in query.items():
        if name == "dryRun":
            out["dryRun"] = values
        elif name == "gracePeriodSeconds":
            try:
                out[name] = int(values[0])
            except ValueError:
                raise ApiError(400, "BadRequest", f'strconv.ParseInt: parsing "{values[0]}": invalid syntax') from None
        else:
            out[name] = values[0]
    return out


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error`` (k8s.io/apimachinery ``pkg/util/validation/field/errors.go``).

    ``kind`` is its ``ErrorType`` as sent in a Status cause's ``reason`` (``FieldValueRequired``,
    ``FieldValueInvalid``, ``FieldValueNotSupported``, ``FieldValueForbidden``...).
    """

    kind: str
    field: str
    bad_value: Any = ""
    detail: str = ""

    def body(self) -> str:
        """``Error.ErrorBody``: the type's words, the bad value for the types that show it, then the detail."""
        words = _ERROR_WORDS[self.kind]
        if self.kind in ("FieldValueInvalid", "FieldValueNotSupported", "FieldValueNotFound",
                         "FieldValueDuplicate", "FieldValueTooMany", "FieldValueTypeInvalid"):
            value = self.bad_value
            if isinstance(value, bool):
                words += f": {'true' if value else 'false'}"
            elif isinstance(value, int | float):
                words += f": {value}"
            elif isinstance(value, str):
                words += f": {_go_quote(value)}"
            else:
                words += f": {json.dumps(value, separators=(',', ':'))}"
        return words + (f": {self.detail}" if self.detail else "")

    def error(self) -> str:
        """``Error.Error``: ``<field>: <body>``."""
        return f"{self.field}: {self.body()}"


#: ``ErrorType.String`` (field/errors.go).
_ERROR_WORDS = {
    "FieldValueNotFound": "Not found", "FieldValueRequired": "Required value", "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value", "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden", "FieldValueTooLong": "Too long", "FieldValueTooMany": "Too many",
    "InternalError": "Internal error", "FieldValueTypeInvalid": "Invalid value",
}


def _go_quote(text: str) -> str:
    """Go's ``%q`` of a string, for the printable ASCII the fake meets (JSON escapes agree there)."""
    return json.dumps(text, ensure_ascii=False)


def _invalid(rtype: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    """``errors.NewInvalid`` (apimachinery ``pkg/api/errors/errors.go``) over a ``field.ErrorList``.

    Every error becomes a cause (reason = its type, message = its body, field); the message is
    ``<Kind[.group]> "<name>" is invalid: <aggregate>``, where the aggregate
    (``ErrorList.ToAggregate``, ``utilerrors.aggregate.Error``) drops repeated texts, and shows one
    error as it is and several as ``[a, b]``.
    """
    seen: list[str] = []
    for e in errors:
        if e.error() not in seen:
            seen.append(e.error())
    text = seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"
    kind = f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind
    return ApiError(422, "Invalid", f"{kind} {_go_quote(name)} is invalid: {text}",
                    {"name": name, "group": rtype.group, "kind": rtype.kind,
                     "causes": [{"reason": e.kind, "message": e.body(), "field": e.field} for e in errors]})


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """``RegexError`` (apimachinery ``pkg/util/validation/validation.go``)."""
    shown = " or ".join(f"'{e}'" for e in examples)
    return f"{message} (e.g. {shown}, regex used for validation is '{fmt}')"


_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"


def _dns1123_subdomain(value: str) -> list[str]:
    """``IsDNS1123Subdomain``."""
    errs = ["must be no more than 253 characters"] if len(value) > 253 else []
    if not re.fullmatch(_DNS1123_SUBDOMAIN, value):
        errs.append(_regex_error("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                                 "'-' or '.', and must start and end with an alphanumeric character",
                                 _DNS1123_SUBDOMAIN, "example.com"))
    return errs


def _dns1123_label(value: str) -> list[str]:
    """``IsDNS1123Label`` (a namespace's name: ``ValidateNamespaceName``)."""
    errs = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not re.fullmatch(_DNS1123_LABEL, value):
        if re.fullmatch(_DNS1123_SUBDOMAIN, value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                                     "or '-', and must start and end with an alphanumeric character",
                                     _DNS1123_LABEL, "my-name", "123-abc"))
    return errs


def _dns1035_label(value: str) -> list[str]:
    """``IsDNS1035Label`` (a service's name: ``ValidateServiceName``)."""
    errs = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not re.fullmatch(_DNS1035_LABEL, value):
        errs.append(_regex_error("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
                                 "with an alphabetic character, and end with an alphanumeric character",
                                 _DNS1035_LABEL, "my-name", "abc-123"))
    return errs


#: The name rule of the core kinds that do not use ``IsDNS1123Subdomain``.
_NAME_RULES: dict[str, Callable[[str], list[str]]] = {"Namespace": _dns1123_label, "Service": _dns1035_label}

#: The fields of ``PersistentVolumeSource`` (inlined into PersistentVolumeSpec).
_PV_SOURCES = frozenset({
    "gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd", "iscsi", "cinder", "cephfs",
    "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "portworxVolume", "scaleIO", "local", "storageos", "csi",
})


def _pvc_update_errors(obj: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    """``ValidatePersistentVolumeClaimUpdate`` (kubernetes ``pkg/apis/core/validation/validation.go``).

    The spec is immutable except: ``volumeName`` may be set once, the storage request of a
    bound claim may change, and ``volumeAttributesClassName``. A smaller request is refused only
    when it is not above ``status.capacity`` (RecoverVolumeExpansionFailure, GA and locked on since
    v1.34). The storage-class annotation upgrade path is not modelled. The real "spec is
    immutable" detail goes on with a ``cmp.Diff`` of the two specs, which is not reproduced.
    """
    new_spec, old_spec = copy.deepcopy(dict(obj.get("spec") or {})), copy.deepcopy(dict(old.get("spec") or {}))
    for spec in (new_spec, old_spec):  # SetDefaults_PersistentVolumeClaimSpec
        spec["volumeMode"] = spec.get("volumeMode") or "Filesystem"
    if not old_spec.get("volumeName"):
        old_spec.pop("volumeName", None)
        if new_spec.get("volumeName"):
            old_spec["volumeName"] = new_spec["volumeName"]
    old_status = old.get("status") or {}
    old_size = _bytes(((old_spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
    new_size = _bytes(((new_spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
    if old_status.get("phase") == "Bound" and ((new_spec.get("resources") or {}).get("requests")):
        new_spec["resources"]["requests"]["storage"] = ((old_spec.get("resources") or {}).get("requests")
                                                        or {}).get("storage")
    new_spec.pop("volumeAttributesClassName", None)
    old_spec.pop("volumeAttributesClassName", None)
    errors = []
    if _prune_nulls(new_spec) != _prune_nulls(old_spec):
        errors.append(FieldError("FieldValueForbidden", "spec", detail="spec is immutable after creation except "
                                 "resources.requests and volumeAttributesClassName for bound claims"))
    status_size = _bytes(((old_status.get("capacity") or {}).get("storage")) or "0")
    if new_size < old_size and new_size <= status_size:
        errors.append(FieldError("FieldValueForbidden", "spec.resources.requests.storage",
                                 detail="field can not be less than status.capacity"))
    if new_spec["volumeMode"] != old_spec["volumeMode"]:
        errors.append(FieldError("FieldValueInvalid", "volumeMode", new_spec["volumeMode"], "field is immutable"))
    return errors


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value




# --- apps/v1: StatefulSets, their scale subresource, the statefulset controller --------------------------

#: ``statefulPodRegex`` (kubernetes ``pkg/controller/statefulset/stateful_set_utils.go``): a StatefulSet's pod is
#: named ``<set>-<ordinal>``.
_STATEFUL_POD = re.compile(r"(.*)-([0-9]+)$")


def _stateful_ordinal(pod_name: str, set_name: str) -> int:
    """``getParentNameAndOrdinal``: the pod's ordinal in the set, or -1 when it is not the set's member."""
    found = _STATEFUL_POD.fullmatch(pod_name)
    if found is None or found.group(1) != set_name:
        return -1
    return int(found.group(2))


def _running_and_ready(pod: Mapping[str, Any]) -> bool:
    """``isRunningAndReady``: phase Running and the Ready condition True."""
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _selector_string(selector: Mapping[str, Any]) -> str:
    """``metav1.LabelSelectorAsSelector(...).String()`` for ``matchLabels``: ``k=v`` pairs sorted by key."""
    return ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))


def _tolerates(tolerations: list[dict[str, Any]], taint: Mapping[str, Any]) -> bool:
    """``Toleration.ToleratesTaint`` (k8s.io/api core/v1 ``toleration.go``) for the ``Equal`` and ``Exists``
    operators: the same effect (or none), the same key (or none), and the same value unless ``Exists``."""
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("key") and t.get("key") != taint.get("key"):
            continue
        operator = t.get("operator") or "Equal"
        if operator == "Exists" or (operator == "Equal" and t.get("value", "") == taint.get("value", "")):
            return True
    return False


class _AppsV1:
    """apps/v1 StatefulSets for :class:`FakeKube`: the resource, its ``scale`` subresource, and a little of the
    statefulset controller and the scheduler. Where each behaviour comes from (tests/data/kube/README.md):

    - the resource is served as the registry serves it (``pkg/registry/apps/statefulset/storage/storage.go``),
      with the schemas of ``tests/data/openapi/apis__apps__v1.json``; :meth:`add_statefulset` stores one as
      helm would have created it, with ``SetDefaults_StatefulSet`` (``pkg/apis/apps/v1/defaults.go``);
      creating one through the API, changing its spec other than ``replicas``, deleting it (the garbage
      collector) and its ``status`` subresource are not modelled and refused;
    - ``GET``, ``PUT`` and ``PATCH`` (merge and strategic merge) of ``.../statefulsets/<name>/scale`` as
      ``ScaleREST`` does (:meth:`_scale`): an ``autoscaling/v1`` Scale built by ``scaleFromStatefulSet``
      (name, namespace, uid, resourceVersion, creationTimestamp; ``spec.replicas``; ``status.replicas`` and the
      selector as a string), ``ValidateScale`` (422 for negative replicas), a UID precondition (409), the
      resourceVersion of the Scale as the StatefulSet's (409 when stale, unconditional when empty), and the
      manager of the write owning ``spec.replicas`` with subresource ``scale`` (``managedfields.NewScaleHandler``);
    - the statefulset controller (:meth:`_statefulset_pass`, after the other controllers of a pass):
      ``updateStatefulSet`` of ``pkg/controller/statefulset/stateful_set_control.go`` for a set with
      ``OrderedReady`` or ``Parallel`` pods: it adopts orphan pods named ``<set>-<ordinal>`` whose labels match
      its selector (``ClaimPods``), creates the missing ordinals below ``spec.replicas`` from the template
      (``newStatefulSetPod``: the template's labels and annotations, a controller reference, ``hostname`` and
      ``subdomain``), one at a time and only after the lower ones are Running and Ready for ``OrderedReady``, all
      at once for ``Parallel``, deletes the ordinals at or above ``spec.replicas`` from the highest down (one at a
      time, waiting for each to go, for ``OrderedReady``), and writes ``status.replicas``, ``readyReplicas`` and
      ``availableReplicas``. Revisions (``ControllerRevision``, rolling updates), ``volumeClaimTemplates``,
      ``ordinals``, failed pods and ``minReadySeconds`` are not modelled (refused);
    - the scheduler, for the pods the controller creates: bound (``pods/binding``, manager ``kube-scheduler``) to
      the one Ready node that matches the pod's ``nodeSelector``, tolerates the node's ``NoSchedule`` and
      ``NoExecute`` taints and satisfies the node affinity of the volumes its claims are Bound to; none, several
      nodes, an unbound claim or a pod ``affinity`` are not modelled (refused). The pod is then handed to the
      pod hooks (:meth:`FakeKube.on_pod_created`), which play its kubelet; without one it stays ``Pending``.
    """

    def add_statefulset(self, manifest: Mapping[str, Any], *, manager: str = "helm") -> dict[str, Any]:
        """Store a StatefulSet as helm would have created it, with the API server's defaults
        (``SetDefaults_StatefulSet``: ``podManagementPolicy`` OrderedReady, ``updateStrategy`` RollingUpdate with
        partition 0, ``persistentVolumeClaimRetentionPolicy`` Retain and Retain, ``replicas`` 1,
        ``revisionHistoryLimit`` 10). The statefulset controller adopts its pods at the next pass."""
        obj = copy.deepcopy(dict(manifest))
        spec = obj.setdefault("spec", {})
        spec.setdefault("podManagementPolicy", "OrderedReady")
        strategy = spec.setdefault("updateStrategy", {})
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            strategy.setdefault("rollingUpdate", {})
        if strategy["type"] == "RollingUpdate" and "rollingUpdate" in strategy:
            strategy["rollingUpdate"].setdefault("partition", 0)
        retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})
        return self.seed(obj, manager=manager)  # type: ignore[attr-defined,no-any-return]

    # --- requests -----------------------------------------------------------------------------------

    def _apps_route(self, rtype: ResourceType, method: str, namespace: str, name: str | None, sub: list[str],
                    query: dict[str, list[str]], headers: Mapping[str, str], body: bytes,
                    path: str) -> Answer | None:
        """Requests to apps/v1 the generic handling does not answer (None: it does)."""
        fake: Any = self
        if rtype.kind != "StatefulSet":
            return None
        if name and sub == ["scale"]:
            return self._scale(rtype, method, namespace, name, query, headers, body, path)
        if method == "DELETE" and not sub and _delete_options(query, body, headers.get("Content-Type", "")).get(
                "propagationPolicy") != "Orphan":
            raise fake._unexpected(method, path, 501, why="deleting a StatefulSet with its pods (the garbage "
                                                          "collector's cascade) is not modelled; only Orphan is")
        return None

    def _apps_validate(self, rtype: ResourceType, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        """Refuse the StatefulSet writes the fake does not model: creating one through the API (its defaults),
        or changing its spec other than ``replicas`` (``ValidateStatefulSetUpdate``, revisions)."""
        fake: Any = self
        if rtype.kind != "StatefulSet" or rtype.group != "apps":
            return
        where = f"StatefulSet {(obj.get('metadata') or {}).get('namespace')}/{(obj.get('metadata') or {}).get('name')}"
        if old is None:
            raise fake._unexpected("POST", where, 501, why="creating a StatefulSet through the API is not modelled "
                                                          "(seed it with FakeKube.add_statefulset)")
        new_spec = {k: v for k, v in (obj.get("spec") or {}).items() if k != "replicas"}
        old_spec = {k: v for k, v in (old.get("spec") or {}).items() if k != "replicas"}
        if new_spec != old_spec:
            raise fake._unexpected("PATCH", where, 501, why="a change of a StatefulSet's spec other than replicas "
                                                           "(ValidateStatefulSetUpdate, revisions) is not modelled")
        replicas = (obj.get("spec") or {}).get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            raise _invalid(rtype, str(obj["metadata"]["name"]),
                           [FieldError("FieldValueInvalid", "spec.replicas", replicas,
                                       "must be greater than or equal to 0")])

    def _scale(self, rtype: ResourceType, method: str, namespace: str, name: str, query: dict[str, list[str]],
               headers: Mapping[str, str], body: bytes, path: str) -> Answer:
        """``ScaleREST.Get`` and ``ScaleREST.Update`` (``scaleUpdatedObjectInfo``) of a StatefulSet."""
        fake: Any = self
        key = fake._key(rtype, namespace, name)
        sts = fake._get(rtype, namespace, name)
        old_scale = self._scale_of(sts, path)
        if method == "GET":
            return _json_answer(200, old_scale)
        if method == "PUT":
            new_scale = _parse_body(headers, body)
        elif method == "PATCH":
            media = headers.get("Content-Type", "").split(";")[0].strip()
            if media not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                raise fake._unexpected(method, path, 415 if media != "application/apply-patch+yaml" else 501,
                                       why=f"{media} on the scale subresource")
            try:
                patch = json.loads(body or b"{}")
            except ValueError as exc:
                raise ApiError(400, "BadRequest", f"error decoding patch: {exc}") from None
            # The Scale has no list to merge: a strategic merge patch is a merge patch here.
            new_scale = _merge_patch(copy.deepcopy(old_scale), patch)
        else:
            raise fake._unexpected(method, path, 405)
        scale_type = ResourceType("autoscaling", "v1", "scale", "Scale", True)
        replicas = (new_scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int):
            raise ApiError(400, "BadRequest", f"spec.replicas: expected an integer, got {replicas!r}")
        if replicas < 0:
            raise _invalid(scale_type, name, [FieldError("FieldValueInvalid", "spec.replicas", replicas,
                                                         "must be greater than or equal to 0")])
        meta = new_scale.get("metadata") or {}
        if meta.get("uid") and meta["uid"] != sts["metadata"]["uid"]:
            raise ApiError(409, "Conflict", "Operation cannot be fulfilled on statefulsets/scale.apps "
                                            f"{_go_quote(name)}: Precondition failed: UID in precondition: "
                                            f"{meta['uid']}, UID in object meta: {sts['metadata']['uid']}",
                           {"name": name, "group": "apps", "kind": "statefulsets/scale"})
        if meta.get("resourceVersion") and meta["resourceVersion"] != sts["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f"Operation cannot be fulfilled on statefulsets.apps {_go_quote(name)}: "
                                            "the object has been modified; please apply your changes to the latest "
                                            "version and try again",
                           {"name": name, "group": "apps", "kind": "statefulsets"})
        new = copy.deepcopy(sts)
        new["spec"]["replicas"] = replicas
        new = fake._keep_status(rtype, sts, new)
        managers = fake._managers.get(key, smd.Managers()).copy()
        managers.update(_without_managed_fields(sts), _without_managed_fields(new), fake._root(rtype),
                        _manager(query, "unknown"), api_version=rtype.group_version, subresource="scale",
                        ignore=_STATUS)
        dry = "All" in query.get("dryRun", [])
        stored = fake._store_write(rtype, key, sts, new, managers, dry=dry, method=method)
        return _json_answer(200, self._scale_of(stored, path))

    def _scale_of(self, sts: Mapping[str, Any], path: str) -> dict[str, Any]:
        """``scaleFromStatefulSet``."""
        fake: Any = self
        selector = (sts.get("spec") or {}).get("selector") or {}
        if selector.get("matchExpressions"):
            raise fake._unexpected("GET", path, 501, why="a StatefulSet selector with matchExpressions")
        meta = sts["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                             "resourceVersion": meta.get("resourceVersion"),
                             "creationTimestamp": meta.get("creationTimestamp")},
                "spec": {"replicas": (sts.get("spec") or {}).get("replicas")},
                "status": {"replicas": (sts.get("status") or {}).get("replicas", 0),
                           "selector": _selector_string(selector)}}

    # --- the statefulset controller and the scheduler ---------------------------------------------------

    def _statefulset_pass(self) -> None:
        """One pass of the statefulset controller over every StatefulSet (see the class docstring)."""
        fake: Any = self
        for key, sts in list(fake.store.items()):
            if key[:3] != ("apps", "v1", "statefulsets") or key not in fake.store:
                continue
            if sts["metadata"].get("deletionTimestamp"):
                continue
            self._sync_statefulset(key, sts)

    def _sync_statefulset(self, key: tuple[str, str, str, str, str], sts: dict[str, Any]) -> None:
        fake: Any = self
        ns, name = key[3], key[4]
        spec = sts.get("spec") or {}
        where = f"StatefulSet {ns}/{name}"
        for field_name in ("volumeClaimTemplates", "ordinals"):
            if spec.get(field_name):
                note = f"{where} has spec.{field_name}: not modelled by the fake"
                if note not in fake.unexpected:
                    fake.unexpected.append(note)
                return
        selector = spec.get("selector") or {}
        if selector.get("matchExpressions"):
            note = f"{where}: a selector with matchExpressions is not modelled by the fake"
            if note not in fake.unexpected:
                fake.unexpected.append(note)
            return
        pods = self._claim_pods(ns, name, sts, selector)
        replicas = int(spec.get("replicas", 1))
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        slots: dict[int, dict[str, Any]] = {}
        condemned: list[dict[str, Any]] = []
        for pod in pods:
            ordinal = _stateful_ordinal(pod["metadata"]["name"], name)
            if 0 <= ordinal < replicas:
                slots[ordinal] = pod
            elif ordinal >= replicas:
                condemned.append(pod)
        condemned.sort(key=lambda p: _stateful_ordinal(p["metadata"]["name"], name))
        unhealthy = [p for p in [*slots.values(), *condemned]
                     if not _running_and_ready(p) or p["metadata"].get("deletionTimestamp")]
        first_unhealthy = min(unhealthy, key=lambda p: _stateful_ordinal(p["metadata"]["name"], name), default=None)
        blocked = False
        for ordinal in range(replicas):
            pod = slots.get(ordinal)
            if pod is not None and (pod.get("status") or {}).get("phase") == "Failed":
                note = f"{where}: recreating the failed pod {pod['metadata']['name']} is not modelled by the fake"
                if note not in fake.unexpected:
                    fake.unexpected.append(note)
                return
            if pod is None:
                self._create_stateful_pod(ns, name, sts, ordinal)
                if monotonic:
                    blocked = True
                    break
                continue
            if monotonic and (pod["metadata"].get("deletionTimestamp") or not _running_and_ready(pod)):
                blocked = True
                break
        if not blocked:
            for pod in reversed(condemned):
                if pod["metadata"].get("deletionTimestamp"):
                    if monotonic:
                        break
                    continue
                if monotonic and not _running_and_ready(pod) and pod is not first_unhealthy:
                    break
                pod_key = ("", "v1", "pods", ns, pod["metadata"]["name"])
                fake._delete_object(fake.types[pod_key[:3]], pod_key, None)
                if monotonic:
                    break
        self._statefulset_status(key, name, selector)

    def _claim_pods(self, ns: str, name: str, sts: dict[str, Any], selector: Mapping[str, Any]
                    ) -> list[dict[str, Any]]:
        """``ClaimPods``: the set's pods (by controller reference), adopting matching orphans named after the set."""
        fake: Any = self
        uid = sts["metadata"]["uid"]
        match = selector.get("matchLabels") or {}
        out = []
        for pkey, pod in list(fake.store.items()):
            if pkey[:4] != ("", "v1", "pods", ns):
                continue
            refs = pod["metadata"].get("ownerReferences") or []
            controller = next((r for r in refs if r.get("controller")), None)
            if controller is not None:
                if controller.get("uid") == uid:
                    out.append(pod)
                continue
            labels = pod["metadata"].get("labels") or {}
            if not match or any(labels.get(k) != v for k, v in match.items()):
                continue
            if _stateful_ordinal(pod["metadata"]["name"], name) < 0 or pod["metadata"].get("deletionTimestamp"):
                continue
            adopted = copy.deepcopy(pod)
            adopted["metadata"]["ownerReferences"] = [*refs, self._controller_ref(sts)]
            out.append(fake._update(fake.types[pkey[:3]], pkey, pod, adopted, "kube-controller-manager"))
        return out

    @staticmethod
    def _controller_ref(sts: Mapping[str, Any]) -> dict[str, Any]:
        """``newControllerRef``."""
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": sts["metadata"]["name"],
                "uid": sts["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}

    def _create_stateful_pod(self, ns: str, name: str, sts: dict[str, Any], ordinal: int) -> None:
        """``newStatefulSetPod`` and ``CreateStatefulPod``, then the scheduler's binding and the pod hooks."""
        fake: Any = self
        template = copy.deepcopy((sts.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        pod_name = f"{name}-{ordinal}"
        meta: dict[str, Any] = {"name": pod_name, "namespace": ns, "labels": dict(tmeta.get("labels") or {}),
                                "ownerReferences": [self._controller_ref(sts)]}
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        pod_spec = dict(template.get("spec") or {})
        pod_spec["hostname"] = pod_name
        pod_spec["subdomain"] = (sts.get("spec") or {}).get("serviceName", "")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}
        pod_type = fake.types[("", "v1", "pods")]
        pod_key = ("", "v1", "pods", ns, pod_name)
        fake._init_new(pod_type, pod)
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        managers = smd.Managers()
        managers.update({}, {k: v for k, v in _without_managed_fields(pod).items() if k != "status"},
                        fake._root(pod_type), "kube-controller-manager", api_version="v1")
        fake.store[pod_key] = pod
        fake._set_managers(pod_key, managers)
        node = self._schedule(ns, pod)
        if node is None:
            return
        bound = copy.deepcopy(fake.store[pod_key])
        bound["spec"]["nodeName"] = node
        managers = fake._managers.get(pod_key, smd.Managers()).copy()
        managers.update(_without_managed_fields(fake.store[pod_key]), _without_managed_fields(bound),
                        fake._root(pod_type), "kube-scheduler", api_version="v1", subresource="binding",
                        ignore=_STATUS)
        fake._store_write(pod_type, pod_key, fake.store[pod_key], bound, managers, dry=False, method=None)
        fake._write_status(pod_key, {**fake.store[pod_key]["status"],
                                     "conditions": [{"type": "PodScheduled", "status": "True"}]},
                           manager="kube-scheduler")
        fake._start_pod_hooks(ns, pod_name, copy.deepcopy(fake.store[pod_key]))

    def _schedule(self, ns: str, pod: Mapping[str, Any]) -> str | None:
        """The node the scheduler binds ``pod`` to (see the class docstring), or None (recorded as unexpected)."""
        fake: Any = self
        spec = pod.get("spec") or {}
        name = f"{ns}/{pod['metadata']['name']}"

        def refuse(why: str) -> None:
            note = f"scheduling pod {name}: {why} is not modelled by the fake"
            if note not in fake.unexpected:
                fake.unexpected.append(note)

        if spec.get("affinity"):
            refuse("a pod affinity")
            return None
        volume_terms: list[list[dict[str, Any]]] = []
        for volume in spec.get("volumes") or []:
            claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim_name:
                continue
            claim = fake.store.get(("", "v1", "persistentvolumeclaims", ns, claim_name))
            if claim is None or (claim.get("status") or {}).get("phase") != "Bound":
                refuse(f"a claim {claim_name} that is missing or not Bound")
                return None
            pv = fake.store.get(("", "v1", "persistentvolumes", "", claim["spec"].get("volumeName", ""))) or {}
            terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
                "nodeSelectorTerms")
            if terms:
                volume_terms.append(terms)
        fits = []
        for key, node in fake.store.items():
            if key[:3] != ("", "v1", "nodes"):
                continue
            labels = node["metadata"].get("labels") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (node.get("status") or {}).get("conditions") or [])
            if not ready or any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
                continue
            taints = [t for t in (node.get("spec") or {}).get("taints") or []
                      if t.get("effect") in ("NoSchedule", "NoExecute")]
            if not all(_tolerates(spec.get("tolerations") or [], t) for t in taints):
                continue
            if not all(any(_node_term_matches(term, labels) for term in terms) for terms in volume_terms):
                continue
            fits.append(key[4])
        if len(fits) != 1:
            refuse(f"{len(fits)} fitting nodes ({', '.join(fits) or 'none'}): choosing among several, or reporting "
                   "an unschedulable pod,")
            return None
        return fits[0]

    def _statefulset_status(self, key: tuple[str, str, str, str, str], name: str, selector: Mapping[str, Any]) -> None:
        """What ``updateStatefulSetStatus`` writes (replicas, readyReplicas, availableReplicas), when it changed."""
        fake: Any = self
        sts = fake.store[key]
        uid = sts["metadata"]["uid"]
        pods = [p for k, p in fake.store.items() if k[:4] == ("", "v1", "pods", key[3])
                and any(r.get("controller") and r.get("uid") == uid
                        for r in p["metadata"].get("ownerReferences") or [])]
        ready = sum(1 for p in pods if _running_and_ready(p))
        status = {**(sts.get("status") or {}), "replicas": len(pods), "readyReplicas": ready,
                  "availableReplicas": ready}
        if status != sts.get("status"):
            fake._write_status(key, status, manager="kube-controller-manager")


def _node_term_matches(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A ``NodeSelectorTerm`` with ``matchExpressions`` (In, NotIn, Exists, DoesNotExist) against a node's labels;
    other operators and ``matchFields`` count as not matching."""
    if term.get("matchFields"):
        return False
    for expr in term.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


class FakeKube(_AppsV1):
    """The server and its in-memory object store. Use :meth:`start`/:meth:`stop` (or the fixture)."""

    def __init__(self, *, token: str = TOKEN, latency: float = 0.0) -> None:
        self.token = token
        #: Seconds every answer waits (outside the lock), as a network between client and server adds.
        self.latency = latency
        self.types: dict[tuple[str, str, str], ResourceType] = {(t.group, t.version, t.plural): t for t in CORE_TYPES}
        self.store: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
        #: Who owns which field of each object (its managedFields), by the real server-side apply rules.
        self._managers: dict[tuple[str, str, str, str, str], smd.Managers] = {}
        self.schema = _schema()
        self._crd_schemas: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        self._roots: dict[tuple[str, str, str], smd.Type] = {}
        self._rv = itertools.count(1000)
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str, str]] = []
        self.mutations: list[tuple[str, str]] = []
        self.unexpected: list[str] = []
        self.failures: list[Failure] = []
        self.proxies: dict[tuple[str, str, str], ProxyHandler] = {}
        #: Seeded logs: (namespace, pod, container, previous run?) -> [(when written, epoch seconds; line)].
        self.logs: dict[tuple[str, str, str, bool], list[tuple[float, str]]] = {}
        self.pod_hooks: list[PodHook] = []
        #: How the API server's dial to a node's kubelet ends: (node, address, port) -> Go's error, or None.
        self.kubelet_dialer: Callable[[str, str, int], str | None] = self._kubelet_dial
        self._kubelets_down: dict[str, str] = {}
        self._hook_threads: list[threading.Thread] = []
        self.ca_pem = b""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeKube:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.ca_pem, key_pem = _self_signed_cert()
        with tempfile.TemporaryDirectory() as tmp:
            cert_file, key_file = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert_file.write_bytes(self.ca_pem)
            key_file.write_bytes(key_pem)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kube", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._hook_threads:
            thread.join(timeout=15)
            if thread.is_alive():
                self.unexpected.append(f"pod hook {thread.name} still running 15s after the server stopped")

    @property
    def url(self) -> str:
        assert self._server is not None, "call start() first"
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}"

    def write_kubeconfig(self, path: Path, *, context: str = "fake", namespace: str = "default") -> Path:
        """Write a kubeconfig whose only context points at this server with its bearer token."""
        doc = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": context, "cluster": {
                "server": self.url, "certificate-authority-data": base64.b64encode(self.ca_pem).decode()}}],
            "users": [{"name": context, "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
            "current-context": context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path

    # --- scripting -----------------------------------------------------------------------------

    def fail(self, method: str, path: str, *, status: int = 500, reason: str = "InternalError",
             message: str = "an error on the server (\"internal error\") has prevented the request from succeeding",
             times: int = 1) -> Failure:
        """Answer the next ``times`` requests whose method matches and whose path fully matches regex ``path``."""
        failure = Failure(method.upper(), re.compile(path), status, reason, message, times)
        with self.lock:
            self.failures.append(failure)
        return failure

    def on_pod_created(self, callback: Callable[[KubeletPod], None], *,
                       label_selector: str | None = None) -> PodHook:
        """Play the kubelet for pods made through the API from now on.

        ``callback`` is called once per pod created with POST, or by the statefulset controller once the
        scheduler bound it (:class:`_AppsV1`), and matching ``label_selector``,
        in a thread of its own, with a :class:`KubeletPod` to move the pod along, e.g.::

            def ping(pod: KubeletPod) -> None:
                pod.running(pod_ip="10.42.1.7")
                pod.terminated(0, log="3 packets transmitted, 3 packets received, 0% packet loss\n")

            api.on_pod_created(ping)

        Without a hook, a created pod stays ``Pending``. A hook that never ran, or that raised,
        fails the test at teardown (:meth:`check_clean`).
        """
        hook = PodHook(callback, label_selector)
        with self.lock:
            self.pod_hooks.append(hook)
        return hook

    def seed(self, obj: Mapping[str, Any], *, manager: str = "kubectl-client-side-apply") -> dict[str, Any]:
        """Store an object as if a person had created it (e.g. with kubectl), bypassing validation."""
        obj = copy.deepcopy(dict(obj))
        rtype = self._type_of(obj)
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "") if rtype.namespaced else ""
        with self.lock:
            self._init_new(rtype, obj)
            key = (rtype.group, rtype.version, rtype.plural, ns, meta["name"])
            managers = smd.Managers()
            body = _without_managed_fields(obj)
            root = self._root(rtype)
            if rtype.status:
                managers.update({}, {k: v for k, v in body.items() if k != "status"}, root, manager,
                                api_version=rtype.group_version)
                if "status" in body:
                    managers.update({}, {"status": body["status"]}, root, manager, api_version=rtype.group_version,
                                    subresource="status")
            else:
                managers.update({}, body, root, manager, api_version=rtype.group_version)
            self.store[key] = obj
            self._set_managers(key, managers)
            if rtype.kind == "CustomResourceDefinition":
                self._register_crd(obj)
            self._reconcile()
            return copy.deepcopy(self.store[key])

    def obj(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        """A stored object (a copy), or None."""
        rtype = self._type_by_kind(api_version, kind)
        with self.lock:
            found = self.store.get((rtype.group, rtype.version, rtype.plural, namespace if rtype.namespaced else "",
                                    name))
            return copy.deepcopy(found) if found else None

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """Every stored object of a kind (copies)."""
        with self.lock:
            return [copy.deepcopy(o) for k, o in self.store.items() if self.types[k[:3]].kind == kind]

    def update_status(self, api_version: str, kind: str, name: str, namespace: str, status: dict[str, Any], *,
                      manager: str = "kube-controller-manager") -> None:
        """Replace an object's status, as a controller or the kubelet does (a write to its status subresource)."""
        rtype = self._type_by_kind(api_version, kind)
        with self.lock:
            key = (rtype.group, rtype.version, rtype.plural, namespace if rtype.namespaced else "", name)
            self._write_status(key, status, manager=manager)

    def add_node(self, name: str, *, labels: Mapping[str, str] | None = None,
                 taints: list[dict[str, str]] | None = None, address: str = "10.0.0.1",
                 pod_cidr: str | None = None) -> dict[str, Any]:
        """A Ready node, labelled like K3s labels its nodes.

        Its ``spec.podCIDR`` is the next /24 of K3s's default cluster CIDR 10.42.0.0/16, as the
        controller manager's node IPAM (range allocator) hands them out in order of arrival,
        unless ``pod_cidr`` says otherwise.
        """
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})}
        if pod_cidr is None:
            taken = sum(1 for k in self.store if k[2] == "nodes")
            pod_cidr = f"10.42.{taken}.0/24"
        spec: dict[str, Any] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
        if taints:
            spec["taints"] = list(taints)
        return self.seed({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": node_labels},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": address},
                                     {"type": "Hostname", "address": name}],
                       "nodeInfo": {"kubeletVersion": GIT_VERSION}},
        }, manager="k3s")

    def add_pod(self, namespace: str, name: str, *, ready: bool = True, phase: str = "Running",
                labels: Mapping[str, str] | None = None, node: str = "node-1", reason: str | None = None
                ) -> dict[str, Any]:
        """A pod with the given phase and readiness (what the kubelet would report)."""
        container_status: dict[str, Any] = {"name": "main", "ready": ready, "restartCount": 0,
                                            "state": {"running": {"startedAt": _now()}}}
        if reason:
            container_status["state"] = {"waiting": {"reason": reason}}
        return self.seed({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "example"}]},
            "status": {"phase": phase,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [container_status]},
        }, manager="kubelet")

    def add_service(self, namespace: str, name: str, port: int,
                    backend: ProxyHandler | tuple[int, str, bytes] | None = None) -> None:
        """A Service; with ``backend``, the service proxy answers for its port (else 503, no endpoints)."""
        self.seed({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                   "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}},
                  manager="helm")
        if backend is not None:
            self.set_backend(namespace, name, port, backend)

    def set_backend(self, namespace: str, name: str, port: int | str,
                    backend: ProxyHandler | tuple[int, str, bytes] | None) -> None:
        """Script (or with None, remove) what the service proxy answers for ``namespace/name:port``."""
        with self.lock:
            key = (namespace, name, str(port))
            if backend is None:
                self.proxies.pop(key, None)
            elif callable(backend):
                self.proxies[key] = backend
            else:
                fixed = backend
                self.proxies[key] = lambda method, path, query, body, headers: fixed

    def set_log(self, namespace: str, pod: str, text: str, container: str | None = None, previous: bool = False,
                *, age: float = 0.0, append: bool = False) -> None:
        """What a container printed, for ``GET .../pods/<pod>/log`` (``kubectl logs``).

        The answer follows the API server and the kubelet, reading the pod as seeded: 404
        without the pod; 400 without ``container`` when the pod has several, or for a
        container it does not have; an empty log while the pod has no node. Which run of
        the container answers depends on its status: the current run when it is
        ``running`` or ``terminated``; with ``previous=true``, the run in
        ``lastState.terminated`` (else 400 "previous terminated container ... not found");
        a container ``waiting`` to restart shows its last run (what ``kubectl logs`` shows
        in a crash loop), one that never ran is a 400 "waiting to start". Container IDs are
        not needed. ``tailLines`` keeps the last lines, then ``sinceSeconds`` the recent ones.

        Args:
            namespace: the pod's namespace.
            pod: the pod's name.
            text: the lines (a log never seeded is empty).
            container: which container; may be left out for a pod already seeded with one container.
            previous: the container's previous run (``lastState.terminated`` in its status) instead.
            age: how many seconds ago the lines were written (for ``sinceSeconds``).
            append: add to what was seeded before instead of replacing it.

        Raises:
            ValueError: ``container`` left out, and the pod is not seeded or has several containers.
        """
        with self.lock:
            if container is None:
                found = self.store.get(("", "v1", "pods", namespace, pod))
                names = _container_names(found, init=False) if found else []
                if len(names) != 1:
                    raise ValueError(f"set_log: name the container of pod {namespace}/{pod} "
                                     f"(it {'has ' + ', '.join(names) if names else 'is not seeded yet'})")
                container = names[0]
            written = time.time() - age
            lines = [(written, line) for line in text.splitlines(keepends=True)]
            key = (namespace, pod, container, previous)
            self.logs[key] = (self.logs.get(key, []) if append else []) + lines

    def unreachable_kubelet(self, node: str, why: str | None = "connect: no route to host") -> None:
        """Make the API server's dials to ``node``'s kubelet fail with Go's ``why`` (None: they succeed again).

        Logs, exec, attach and port-forward of the node's pods then answer as the API server does
        (:meth:`_dial_kubelet`; the shapes in ``tests/data/kube/kubelet-unreachable.json``). A test may
        instead set :attr:`kubelet_dialer` to dial for real (the network-namespace lab does).
        """
        with self.lock:
            if why is None:
                self._kubelets_down.pop(node, None)
            else:
                self._kubelets_down[node] = why

    def _kubelet_dial(self, node: str, address: str, port: int) -> str | None:
        return self._kubelets_down.get(node)

    def unreachable_endpoint(self, namespace: str, service: str, port: int | str, address: str,
                             why: str = "connect: no route to host") -> None:
        """The service proxy's dial to the Service's pod (``address`` is ``IP:PORT``) fails with Go's ``why``.

        The answer is the 503 of apimachinery's proxy transport: ``error trying to reach service:
        dial tcp IP:PORT: why`` (``tests/data/kube/kubelet-unreachable.json``).
        """
        text = f"dial tcp {address}: {why}"

        def dial(*_request: Any) -> Answer:
            raise DialFailure(text)

        self.set_backend(namespace, service, port, dial)

    def install_gateway_api(self) -> None:
        """Seed the Gateway API's standard CRDs (gateway.networking.k8s.io/v1).

        Gateway and HTTPRoute are the real CRDs kept under ``tests/data/openapi`` (their schemas decide
        how applies merge); GatewayClass and GRPCRoute are served without a schema.
        """
        for file_name in ("gateway.networking.k8s.io_gateways.yaml", "gateway.networking.k8s.io_httproutes.yaml"):
            self.seed(smd.load_crd(file_name), manager="helm")
        for plural, kind, namespaced in (("gatewayclasses", "GatewayClass", False),
                                         ("grpcroutes", "GRPCRoute", True)):
            self.seed({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.gateway.networking.k8s.io"},
                "spec": {"group": "gateway.networking.k8s.io",
                         "names": {"plural": plural, "kind": kind, "singular": kind.lower()},
                         "scope": "Namespaced" if namespaced else "Cluster",
                         "versions": [{"name": "v1", "served": True, "storage": True}]},
            }, manager="helm")

    def add_gateway(self, name: str = "eg", namespace: str = "default", *,
                    listeners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A Gateway (install the CRDs first); default: one HTTP listener ``http`` on port 80."""
        return self.seed({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": "eg",
                     "listeners": listeners if listeners is not None else
                     [{"name": "http", "protocol": "HTTP", "port": 80}]},
        }, manager="helm")

    def seed_runbook_cluster(self) -> None:
        """Seed the runbook's cluster: node-1, node-2 (hardware=heavy, heavy=true:NoSchedule), the Gateway API
        CRDs and Gateway default/eg with an HTTP listener admitting all namespaces."""
        self.add_node("node-1", address="10.0.0.102", labels={"node-role.kubernetes.io/control-plane": "true"})
        self.add_node("node-2", address="10.0.0.103", labels={"hardware": "heavy"},
                      taints=[{"key": "heavy", "value": "true", "effect": "NoSchedule"}])
        self.install_gateway_api()
        self.add_gateway("eg", "default", listeners=[
            {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}}])

    def check_clean(self) -> None:
        """Raise if an unimplemented request came in or a scripted failure never happened."""
        problems = [f"unexpected request: {u}" for u in self.unexpected]
        problems += [f"scripted failure never happened: {f.method} {f.path.pattern}" for f in self.failures
                     if f.hits < f.times]
        problems += [f"pod hook {getattr(h.callback, '__name__', h.callback)!s} never ran: no matching pod was created"
                     for h in self.pod_hooks if not h.calls]
        if problems:
            raise AssertionError("fake Kubernetes API:\n" + "\n".join(problems))

    # --- the store -----------------------------------------------------------------------------

    def _type_of(self, obj: Mapping[str, Any]) -> ResourceType:
        return self._type_by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))

    def _type_by_kind(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        for t in self.types.values():
            if t.group == group and t.version == version and t.kind == kind:
                return t
        raise KeyError(f"the fake API does not serve {kind} in {api_version}")

    def _register_crd(self, crd: Mapping[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for v in spec.get("versions") or []:
            if v.get("served", True):
                t = ResourceType(spec["group"], v["name"], names["plural"], names["kind"],
                                 spec.get("scope") == "Namespaced", names.get("singular", ""),
                                 status="status" in (v.get("subresources") or {}))
                self.types[(t.group, t.version, t.plural)] = t
                schema = smd.load_crd_schema(crd, v["name"])
                if schema is not None:
                    self._crd_schemas[(t.group, t.version, t.kind)] = schema
                self._roots.pop((t.group, t.version, t.kind), None)

    def _init_new(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        obj["apiVersion"] = rtype.group_version if rtype.group else "v1"
        obj["kind"] = rtype.kind
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta["resourceVersion"] = str(next(self._rv))
        if rtype.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        elif rtype.kind == "PersistentVolume":
            obj.setdefault("status", {"phase": "Available"})
        elif rtype.kind == "PersistentVolumeClaim":
            obj.setdefault("status", {"phase": "Pending"})
        elif rtype.kind == "Pod" and isinstance(obj.get("spec"), dict):
            # SetDefaults_PodSpec (pkg/apis/core/v1/defaults.go): DefaultTerminationGracePeriodSeconds.
            obj["spec"].setdefault("terminationGracePeriodSeconds", 30)

    # --- managed fields -----------------------------------------------------------------------

    def _root(self, rtype: ResourceType) -> smd.Type:
        """The merge type of a kind: its real OpenAPI schema (a CRD's own schema for custom resources)."""
        gvk = (rtype.group, rtype.version, rtype.kind)
        if gvk not in self._roots:
            self._roots[gvk] = self.schema.for_kind(*gvk, crd_schema=self._crd_schemas.get(gvk))
        return self._roots[gvk]

    def _set_managers(self, key: tuple[str, str, str, str, str], managers: smd.Managers) -> None:
        """Store an object's owners and write them into its ``metadata.managedFields``."""
        self._managers[key] = managers
        obj = self.store.get(key)
        if obj is not None:
            entries = managers.entries(_now())
            if entries:
                obj["metadata"]["managedFields"] = entries
            else:
                obj["metadata"].pop("managedFields", None)

    def _update(self, rtype: ResourceType, key: tuple[str, str, str, str, str], old: dict[str, Any],
                new: dict[str, Any], manager: str, *, dry: bool = False, method: str | None = None
                ) -> dict[str, Any]:
        """A write of the object (operation Update): ``manager`` owns what it changed, others lose it.

        The object's resourceVersion moves only when the object or its owners changed, as the
        API server skips writes that change nothing. ``method`` (a client's request) records
        the write in :attr:`mutations`; the fake's own controllers pass None.
        """
        new = self._keep_status(rtype, old, new)
        managers = self._managers.get(key, smd.Managers()).copy()
        managers.update(_without_managed_fields(old), _without_managed_fields(new), self._root(rtype), manager,
                        api_version=rtype.group_version, ignore=_STATUS if rtype.status else ())
        return self._store_write(rtype, key, old, new, managers, dry=dry, method=method)

    def _write_status(self, key: tuple[str, str, str, str, str], status: dict[str, Any], *,
                      manager: str = "kube-controller-manager") -> None:
        """A write to the status subresource (a controller, the kubelet): only the status changes."""
        obj = self.store.get(key)
        if obj is None:
            return
        rtype = self.types[key[:3]]
        new = copy.deepcopy(obj)
        new["status"] = copy.deepcopy(status)
        managers = self._managers.get(key, smd.Managers()).copy()
        managers.update({"status": _without_managed_fields(obj).get("status") or {}}, {"status": new["status"]},
                        self._root(rtype), manager, api_version=rtype.group_version, subresource="status")
        self._store_write(rtype, key, obj, new, managers, dry=False, method=None)

    def _store_write(self, rtype: ResourceType, key: tuple[str, str, str, str, str], old: dict[str, Any],
                     new: dict[str, Any], managers: smd.Managers, *, dry: bool, method: str | None
                     ) -> dict[str, Any]:
        before = self._managers.get(key, smd.Managers())
        unchanged = (_strip(new) == _strip(old) and managers.sets == before.sets)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if unchanged:
            new["metadata"]["managedFields"] = old["metadata"].get("managedFields", [])
            if not new["metadata"]["managedFields"]:
                new["metadata"].pop("managedFields")
        if dry:
            if not unchanged:
                new["metadata"]["managedFields"] = managers.entries(_now())
            return new
        if unchanged:
            return copy.deepcopy(old)
        if _delete_during_update(rtype, old, new):
            self._remove(key, method=method)
            return copy.deepcopy(new)
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self.store[key] = new
        self._set_managers(key, managers)
        if method is not None:
            self.mutations.append((method, "/".join(k for k in key if k)))
        if rtype.kind == "CustomResourceDefinition":
            self._register_crd(new)
        if method is not None:  # a client's write; the controllers' own writes are already in their loop
            self._reconcile()
        return copy.deepcopy(self.store[key])

    @staticmethod
    def _keep_status(rtype: ResourceType, old: Mapping[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
        """A write to an object with a status subresource leaves its status as it was (ResetFields)."""
        if not rtype.status:
            return new
        new = dict(new)
        if old is not None and "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
        return new

    # --- controllers ---------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """What the namespace and persistent volume controllers do after a write."""
        ns_type = ("", "v1", "namespaces")
        for key, obj in self.store.items():
            if key[:3] == ns_type:
                obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = key[4]
        self._sync_volumes()

    def _sync_volumes(self) -> None:
        """The persistent volume controller (pv_controller.go, syncVolume and syncUnboundClaim), for static PVs.

        - A claim naming a volume (``syncUnboundClaim``, volumeName set) that is reserved for it
          (``IsVolumeBoundToClaim``) binds to it; a free volume must satisfy the claim first
          (:func:`_unsatisfied`), else the claim stays ``Pending`` with the event ``VolumeMismatch``
          "Cannot bind to requested volume ...: <why>"; a volume reserved for another claim gives
          ``FailedBinding`` "volume ... already bound to a different claim.".
        - A claim naming no volume takes the one :func:`_find_by_claim` picks; with none and no
          storage class, the event ``FailedBinding`` "no persistent volumes available for this claim
          and no storage class is set". With a storage class the real controller would provision
          (``provisionClaim``); the fake serves no StorageClass, so such a claim stays ``Pending``.
        - Not modelled, refused (recorded as unexpected): a claim with ``spec.selector``; a claim
          naming a volume where either side has ``volumeAttributesClassName`` (the version of
          ``checkVolumeSatisfyClaim`` read has no such check; later ones were not verified); the
          ``Delete`` and ``Recycle`` reclaim policies of a Released volume.
        - Binding is two writes by manager ``kube-controller-manager``, as the real controller
          makes them: an update of the volume's ``claimRef`` (it adds the claim's ``uid`` and
          ``resourceVersion``), then the volume's status (``Bound``); the claim gets the
          ``pv.kubernetes.io/bind-completed`` annotation, then its status.
        - A bound volume whose claim is gone (or was re-created, another uid) is ``Released``;
          a volume whose ``claimRef`` has no uid is ``Available`` (reserved).
        """
        pv_type = ("", "v1", "persistentvolumes")
        pvc_type = ("", "v1", "persistentvolumeclaims")
        for _ in range(50):  # each pass makes at most one binding, then looks again
            progressed = False
            pvs = {k[4]: (k, o) for k, o in self.store.items() if k[:3] == pv_type}
            pvcs = {(k[3], k[4]): (k, o) for k, o in self.store.items() if k[:3] == pvc_type}
            for key, pv in pvs.values():
                ref = (pv.get("spec") or {}).get("claimRef")
                phase = (pv.get("status") or {}).get("phase")
                if ref and ref.get("uid"):
                    found = pvcs.get((ref.get("namespace", ""), ref.get("name", "")))
                    if found is None or found[1]["metadata"]["uid"] != ref["uid"]:
                        if phase == "Bound":
                            progressed |= self._set_phase(key, pv, "Released")
                            policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
                            if policy != "Retain":
                                self.unexpected.append(f"PersistentVolume {key[4]} was Released with reclaim policy "
                                                       f"{policy}: reclaiming is not modelled by the fake")
                    elif phase != "Bound":
                        progressed |= self._set_phase(key, pv, "Bound")
                elif phase in ("Released", "Bound"):
                    progressed |= self._set_phase(key, pv, "Available")
            for (ns, name), (ckey, pvc) in pvcs.items():
                if (pvc.get("status") or {}).get("phase") == "Bound":
                    continue
                if (pvc.get("spec") or {}).get("selector") is not None:
                    note = f"PersistentVolumeClaim {ns}/{name} has spec.selector: matching volumes by label is not " \
                           "modelled by the fake"
                    if note not in self.unexpected:
                        self.unexpected.append(note)
                    continue
                volume = (pvc.get("spec") or {}).get("volumeName")
                if volume:
                    found_pv = pvs.get(volume)
                    if found_pv is None:
                        continue
                    pkey, pv = found_pv
                    ref = (pv.get("spec") or {}).get("claimRef")
                    if ref and not _bound_to_claim(pv, pvc):
                        self._event(pvc, "Warning", "FailedBinding",
                                    f"volume \"{volume}\" already bound to a different claim.")
                        continue
                    if not ref:
                        if _has_vac(pv, pvc):
                            note = f"PersistentVolumeClaim {ns}/{name} names volume {volume} and one of them has " \
                                   "volumeAttributesClassName: whether checkVolumeSatisfyClaim compares it was not " \
                                   "verified for the fake"
                            if note not in self.unexpected:
                                self.unexpected.append(note)
                            continue
                        problem = _unsatisfied(pv, pvc)
                        if problem:
                            self._event(pvc, "Warning", "VolumeMismatch",
                                        f"Cannot bind to requested volume \"{volume}\": {problem}")
                            continue
                else:
                    match = _find_by_claim(pvc, [v for _k, v in pvs.values()])
                    if match is None:
                        if not (pvc.get("spec") or {}).get("storageClassName"):
                            self._event(pvc, "Normal", "FailedBinding",
                                        "no persistent volumes available for this claim and no storage class is set")
                        continue
                    pkey, pv = pvs[match["metadata"]["name"]]
                self._bind(pkey, pv, ckey, pvc)
                progressed = True
                break
            if not progressed:
                return

    def _bind(self, pkey: tuple[str, str, str, str, str], pv: dict[str, Any], ckey: tuple[str, str, str, str, str],
              pvc: dict[str, Any]) -> None:
        """The controller's binding writes (bindVolumeToClaim, then bindClaimToVolume), as Updates."""
        ref = {"kind": "PersistentVolumeClaim", "namespace": pvc["metadata"]["namespace"],
               "name": pvc["metadata"]["name"], "uid": pvc["metadata"]["uid"], "apiVersion": "v1",
               "resourceVersion": pvc["metadata"]["resourceVersion"]}
        new_pv = copy.deepcopy(pv)
        new_pv["spec"]["claimRef"] = ref
        if not (pv.get("spec") or {}).get("claimRef"):
            new_pv["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bound-by-controller"] = "yes"
        pv = self._update(self.types[pkey[:3]], pkey, pv, new_pv, "kube-controller-manager")
        self._write_status(pkey, {"phase": "Bound"})
        new_pvc = copy.deepcopy(pvc)
        new_pvc["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bind-completed"] = "yes"
        if not (pvc.get("spec") or {}).get("volumeName"):
            new_pvc["spec"]["volumeName"] = pv["metadata"]["name"]
            new_pvc["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = "yes"
        self._update(self.types[ckey[:3]], ckey, pvc, new_pvc, "kube-controller-manager")
        self._write_status(ckey, {"phase": "Bound", "accessModes": list(pv["spec"].get("accessModes", [])),
                                  "capacity": dict(pv["spec"].get("capacity", {}))})

    def _set_phase(self, key: tuple[str, str, str, str, str], obj: dict[str, Any], phase: str) -> bool:
        if (obj.get("status") or {}).get("phase") == phase:
            return False
        self._write_status(key, {**(obj.get("status") or {}), "phase": phase})
        return True

    def _event(self, obj: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        """An event about ``obj`` from the persistent volume controller (counted, not repeated)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        ev_type = self.types[("", "v1", "events")]
        for key, ev in self.store.items():
            if key[:3] == ("", "v1", "events") and key[3] == namespace and ev.get("reason") == reason and \
                    (ev.get("involvedObject") or {}).get("uid") == meta["uid"] and ev.get("message") == message:
                return
        ns = self.store.get(("", "v1", "namespaces", "", namespace))
        if ns is None or (ns.get("status") or {}).get("phase") == "Terminating":
            return  # NamespaceLifecycle refuses the event, and the recorder drops it
        name = f"{meta['name']}.{uuid.uuid4().hex[:16]}"
        event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": namespace},
                 "involvedObject": {"kind": obj.get("kind"), "namespace": namespace, "name": meta["name"],
                                    "uid": meta["uid"], "apiVersion": obj.get("apiVersion"),
                                    "resourceVersion": meta.get("resourceVersion")},
                 "reason": reason, "message": message, "type": kind, "count": 1,
                 "source": {"component": "persistentvolume-controller"},
                 "firstTimestamp": _now(), "lastTimestamp": _now()}
        self._init_new(ev_type, event)
        key = (ev_type.group, ev_type.version, ev_type.plural, namespace, name)
        self.store[key] = event
        managers = smd.Managers()
        managers.update({}, _without_managed_fields(event), self._root(ev_type), "kube-controller-manager",
                        api_version="v1")
        self._set_managers(key, managers)

    # --- controllers that act between requests -------------------------------------------------

    def settle(self, max_passes: int = 100) -> int:
        """Run the controllers until they have nothing left to do; return how many passes that took.

        The server runs one pass after every request it answers (:meth:`handle`), so a client that
        polls sees a deletion progress; a test that wants the end state at once calls this.
        """
        with self.lock:
            for n in range(1, max_passes + 1):
                if not self._controllers_pass():
                    return n - 1
            raise AssertionError(f"the fake's controllers still change things after {max_passes} passes")

    def _controllers_pass(self) -> bool:
        """One pass of the controllers that finish deletions, each acting once on what it finds; True if
        anything changed. Order: the kubelet, the namespace controller, the PVC protection controller,
        the persistent volume controller, the PV protection controller, the statefulset controller (with the
        scheduler's binding of the pods it creates: :class:`_AppsV1`)."""
        before = dict((k, o["metadata"].get("resourceVersion")) for k, o in self.store.items())
        self._kubelet_pass()
        self._namespace_pass()
        self._pvc_protection_pass()
        self._sync_volumes()
        self._pv_protection_pass()
        self._statefulset_pass()
        self._garbage_collector_pass()
        after = dict((k, o["metadata"].get("resourceVersion")) for k, o in self.store.items())
        return before != after

    def _kubelet_pass(self) -> None:
        """The kubelet ends a graceful deletion: its containers stop (as if they exit on SIGTERM at once)
        and it deletes the pod with a grace period of 0 (the pod goes, or waits for its finalizers).

        Only a kubelet on a node that exists and is Ready does that; a pod on a NotReady node stays
        as it is, as on a real cluster. A pod on a node that does not exist would be removed by the
        pod garbage collector after its quarantine (``gcOrphaned``), which is not modelled: recorded as
        unexpected.
        """
        for key, pod in list(self.store.items()):
            if key[:3] != ("", "v1", "pods") or not pod["metadata"].get("deletionTimestamp"):
                continue
            if not pod["metadata"].get("deletionGracePeriodSeconds"):
                continue
            node_name = (pod.get("spec") or {}).get("nodeName", "")
            node = self.store.get(("", "v1", "nodes", "", node_name))
            if node is None:
                note = f"pod {key[3]}/{key[4]} is being deleted on node {node_name!r}, which does not exist: the " \
                       "pod garbage collector's orphan removal is not modelled"
                if note not in self.unexpected:
                    self.unexpected.append(note)
                continue
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (node.get("status") or {}).get("conditions") or [])
            if ready:
                self._delete_object(self.types[key[:3]], key, 0)

    def _namespace_pass(self) -> None:
        """The namespace controller (kubernetes ``pkg/controller/namespace/deletion/
        namespaced_resources_deleter.go``, ``Delete`` and ``deleteAllContent``; conditions from
        ``status_condition_utils.go``) for every namespace with a ``deletionTimestamp``:

        - it deletes everything in the namespace (background propagation; pods gracefully), then
          counts what is left and writes the five deletion conditions to the namespace's status
          (``NamespaceContentRemaining``: "Some resources are remaining: pods. has 2 resource
          instances"; ``NamespaceFinalizersRemaining``: "Some content in the namespace has finalizers
          remaining: kubernetes.io/pvc-protection in 1 resource instances");
        - when nothing is left it removes ``kubernetes`` from ``spec.finalizers`` (the ``finalize``
          subresource), and the namespace, with no finalizers left, is deleted.

        Discovery failures and the other failure conditions do not happen in the fake.
        """
        for key, ns in list(self.store.items()):
            if key[:3] != ("", "v1", "namespaces") or not ns["metadata"].get("deletionTimestamp"):
                continue
            if "kubernetes" not in ((ns.get("spec") or {}).get("finalizers") or []):
                continue
            name = key[4]
            content = [k for k in self.store if k[3] == name and self.types[k[:3]].namespaced]
            for k in content:
                if k in self.store and not self.store[k]["metadata"].get("deletionTimestamp"):
                    self._delete_object(self.types[k[:3]], k, None)
            left = [k for k in self.store if k[3] == name and self.types[k[:3]].namespaced]
            if left:
                by_resource: dict[str, int] = {}
                by_finalizer: dict[str, int] = {}
                for k in left:
                    t = self.types[k[:3]]
                    by_resource[f"{t.plural}.{t.group}"] = by_resource.get(f"{t.plural}.{t.group}", 0) + 1
                    for f in self.store[k]["metadata"].get("finalizers") or []:
                        by_finalizer[f] = by_finalizer.get(f, 0) + 1
                self._namespace_conditions(key, by_resource, by_finalizer)
                continue
            new = copy.deepcopy(self.store[key])
            new["spec"]["finalizers"] = [f for f in new["spec"]["finalizers"] if f != "kubernetes"]
            if not new["spec"]["finalizers"] and not new["metadata"].get("finalizers"):
                self._remove(key, method=None)  # ShouldDeleteNamespaceDuringUpdate
            else:
                self._raw_write(self.types[key[:3]], key, new, dry=False, method=None)

    def _namespace_conditions(self, key: tuple[str, str, str, str, str], by_resource: Mapping[str, int],
                              by_finalizer: Mapping[str, int]) -> None:
        """``namespaceConditionUpdater.ProcessContentTotals`` and ``updateConditions``."""
        ns = self.store[key]
        found: dict[str, tuple[str, str, str]] = {
            "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered",
                                                  "All resources successfully discovered"),
            "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                            "All legacy kube types successfully parsed"),
            "NamespaceDeletionContentFailure": ("False", "ContentDeleted",
                                                "All content successfully deleted, may be waiting on finalization"),
            "NamespaceContentRemaining": ("False", "ContentRemoved", "All content successfully removed"),
            "NamespaceFinalizersRemaining": ("False", "ContentHasNoFinalizers",
                                             "All content-preserving finalizers finished"),
        }
        if by_resource:
            found["NamespaceContentRemaining"] = (
                "True", "SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                    sorted(f"{r} has {n} resource instances" for r, n in by_resource.items())))
        if by_finalizer:
            found["NamespaceFinalizersRemaining"] = (
                "True", "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: " + ", ".join(
                    sorted(f"{f} in {n} resource instances" for f, n in by_finalizer.items())))
        status = copy.deepcopy(ns.get("status") or {})
        conditions = status.setdefault("conditions", [])
        changed = False
        for ctype, (cstatus, reason, message) in found.items():
            old = next((c for c in conditions if c.get("type") == ctype), None)
            if old is None:
                conditions.append({"type": ctype, "status": cstatus, "lastTransitionTime": _now(), "reason": reason,
                                   "message": message})
                changed = True
            elif (old.get("status"), old.get("reason"), old.get("message")) != (cstatus, reason, message):
                if old.get("status") != cstatus:
                    old["lastTransitionTime"] = _now()
                old.update({"status": cstatus, "reason": reason, "message": message})
                changed = True
        if changed:
            self._write_status(key, status, manager="kube-controller-manager")

    def _garbage_collector_pass(self) -> None:
        """The garbage collector's orphaning (kubernetes ``pkg/controller/garbagecollector/garbagecollector.go``,
        ``attemptToOrphanWorker``, ``orphanDependents``, ``removeFinalizer``): for an object being deleted with
        the ``orphan`` finalizer, every object in its namespace that names it in ``metadata.ownerReferences``
        (by uid) loses that reference, then the finalizer is removed (and the object goes with its last one).
        The cascade of a Background or Foreground deletion is not modelled (refused where it matters)."""
        for key, owner in list(self.store.items()):
            meta = owner["metadata"]
            if key not in self.store or not meta.get("deletionTimestamp") or "orphan" not in (
                    meta.get("finalizers") or []):
                continue
            uid = meta.get("uid")
            for dkey, dependent in list(self.store.items()):
                refs = dependent["metadata"].get("ownerReferences") or []
                if dkey[3] != key[3] or not any(r.get("uid") == uid for r in refs):
                    continue
                new = copy.deepcopy(dependent)
                kept = [r for r in refs if r.get("uid") != uid]
                if kept:
                    new["metadata"]["ownerReferences"] = kept
                else:
                    new["metadata"].pop("ownerReferences", None)
                self._update(self.types[dkey[:3]], dkey, dependent, new, "generic-garbage-collector")
            self._update_finalizers(key, [f for f in meta["finalizers"] if f != "orphan"],
                                    manager="generic-garbage-collector")

    def _pvc_protection_pass(self) -> None:
        """The PVC protection controller (kubernetes ``pkg/controller/volume/pvcprotection/
        pvc_protection_controller.go``, ``processPVC``, ``isBeingUsed``, ``podUsesPVC``): a claim being
        deleted keeps ``kubernetes.io/pvc-protection`` while a pod that is bound to a node (any
        phase, terminating or not) names it in ``spec.volumes[].persistentVolumeClaim.claimName``;
        then the controller removes the finalizer. (Generic ephemeral volumes are not modelled.)"""
        for key, pvc in list(self.store.items()):
            if key[:3] != ("", "v1", "persistentvolumeclaims") or key not in self.store:
                continue
            meta = pvc["metadata"]
            if not meta.get("deletionTimestamp") or _PVC_PROTECTION not in (meta.get("finalizers") or []):
                continue
            used = any(k[:4] == ("", "v1", "pods", key[3]) and (p.get("spec") or {}).get("nodeName") and any(
                ((v.get("persistentVolumeClaim") or {}).get("claimName") == key[4])
                for v in (p.get("spec") or {}).get("volumes") or []) for k, p in self.store.items())
            if not used:
                self._update_finalizers(key, [f for f in meta["finalizers"] if f != _PVC_PROTECTION],
                                        manager="kube-controller-manager")

    def _pv_protection_pass(self) -> None:
        """The PV protection controller (kubernetes ``pkg/controller/volume/pvprotection/
        pv_protection_controller.go``, ``processPV``, ``isBeingUsed``): a volume being deleted keeps
        ``kubernetes.io/pv-protection`` while its phase is ``Bound``."""
        for key, pv in list(self.store.items()):
            if key[:3] != ("", "v1", "persistentvolumes") or key not in self.store:
                continue
            meta = pv["metadata"]
            if not meta.get("deletionTimestamp") or _PV_PROTECTION not in (meta.get("finalizers") or []):
                continue
            if (pv.get("status") or {}).get("phase") != "Bound":
                self._update_finalizers(key, [f for f in meta["finalizers"] if f != _PV_PROTECTION],
                                        manager="kube-controller-manager")

    # --- request handling ----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes, *,
               client: str = "127.0.0.1") -> Answer:
        split = urlsplit(raw_path)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        with self.lock:
            self.requests.append((method, path, split.query))
            for f in self.failures:
                if f.hits < f.times and f.method == method and f.path.fullmatch(path):
                    f.hits += 1
                    return _json_answer(f.status, status_doc(f.status, f.reason, f.message))
        if headers.get("Authorization") != f"Bearer {self.token}":
            return _json_answer(401, status_doc(401, "Unauthorized", "Unauthorized"))
        try:
            with self.lock:
                try:
                    routed = self._route(method, path, query, headers, body)
                finally:
                    self._controllers_pass()  # what the controllers do before the next request comes
            if isinstance(routed, _Forward):  # the service proxy: wait for the backend without the lock
                return routed.send(_forwarded_headers(headers, client, path))
            return routed
        except ApiError as exc:
            return _json_answer(exc.status, status_doc(exc.status, exc.reason, exc.message, exc.details))
        except Exception as exc:  # a bug in the fake: answer, and fail the test at teardown
            import traceback

            self.unexpected.append(f"{method} {path}: the fake crashed: {traceback.format_exc()}")
            return _json_answer(500, status_doc(500, "InternalError", f"fake API crashed: {exc!r}"))

    def _unexpected(self, method: str, path: str, status: int = 404, why: str = "") -> ApiError:
        self.unexpected.append(f"{method} {path}" + (f" ({why})" if why else ""))
        if status == 415:
            return ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - {why}")
        if status == 501:  # a behaviour the fake does not model: refused, and the test fails at teardown
            return ApiError(501, "NotImplemented", f"not implemented by the fake API server: {why}")
        if status == 405:
            return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                                                     f"resource ({method} {path})")
        return ApiError(404, "NotFound", "the server could not find the requested resource")

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
               body: bytes) -> Answer | _Forward:
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if method == "GET" and path == "/version":
            return _json_answer(200, {"major": "1", "minor": "31", "gitVersion": GIT_VERSION,
                                      "gitCommit": "0" * 40, "gitTreeState": "clean",
                                      "buildDate": "2024-12-12T00:00:00Z",
                                      "goVersion": "go1.22.9", "compiler": "gc", "platform": "linux/amd64"})
        if method == "GET" and parts == ["api"]:
            return _json_answer(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.removeprefix("https://")}]})
        if method == "GET" and parts == ["apis"]:
            return _json_answer(200, self._group_list())
        if not parts or parts[0] not in ("api", "apis"):
            raise self._unexpected(method, path)
        if parts[0] == "api":
            group, rest = "", parts[1:]
        else:
            if len(parts) < 2:
                raise self._unexpected(method, path)
            group, rest = parts[1], parts[2:]
        if not rest:
            if method == "GET" and group and any(t.group == group for t in self.types.values()):
                return _json_answer(200, self._group(group))
            raise self._unexpected(method, path)
        version, rest = rest[0], rest[1:]
        if not rest:
            resources = [t.discovery() for t in self.types.values() if t.group == group and t.version == version]
            if method == "GET" and resources:
                gv = f"{group}/{version}" if group else version
                return _json_answer(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                          "resources": resources})
            if method == "GET" and group and group not in BUILTIN_GROUPS:
                return _json_answer(404, status_doc(404, "NotFound", "the server could not find the requested "
                                                                      "resource"))
            raise self._unexpected(method, path)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2:]
        rtype = self.types.get((group, version, plural))
        if rtype is None:
            if group and group not in BUILTIN_GROUPS and method == "GET":  # a CRD that is not installed: 404 too
                return _json_answer(404, status_doc(404, "NotFound", "the server could not find the requested "
                                                                      "resource"))
            raise self._unexpected(method, path, why="unknown resource")
        if rtype.namespaced != bool(namespace) and not (rtype.namespaced and name is None and method == "GET"):
            raise self._unexpected(method, path, why="scope")
        if plural == "services" and sub and sub[0] == "proxy" and name:
            # The proxy keeps a trailing slash (net.JoinPreservingTrailingSlash in the registry's proxy
            # location; apimachinery util/net), which backends such as a directory listing care about.
            rest_path = "/" + "/".join(sub[1:])
            if path.endswith("/") and rest_path != "/":
                rest_path += "/"
            return self._proxy(method, namespace, name, rest_path, query, body)
        if rtype.kind == "Pod" and not group and name and sub == ["log"] and method == "GET":
            return self._pod_log(namespace, name, query, path)
        if rtype.kind == "Pod" and not group and name and sub in (["exec"], ["attach"], ["portforward"]) \
                and method in ("GET", "POST"):
            return self._pod_stream(namespace, name, sub[0], query, path)
        apps = self._apps_route(rtype, method, namespace, name, sub, query, headers, body, path) \
            if rtype.group == "apps" else None
        if apps is not None:
            return apps
        if sub:
            raise self._unexpected(method, path, why=f"subresource {'/'.join(sub)}")
        if name is None:
            if method == "GET":
                return _json_answer(200, self._list(rtype, namespace, query))
            if method == "POST":
                return self._create(rtype, namespace, _parse_body(headers, body), query)
            raise self._unexpected(method, path, 405)
        if method == "GET":
            return _json_answer(200, copy.deepcopy(self._get(rtype, namespace, name)))
        if method == "PUT":
            return self._replace(rtype, namespace, name, _parse_body(headers, body), query)
        if method == "PATCH":
            return self._patch(rtype, namespace, name, headers.get("Content-Type", ""), body, query, path)
        if method == "DELETE":
            return self._delete(rtype, namespace, name, query, headers, body, path)
        raise self._unexpected(method, path, 405)

    def _group_list(self) -> dict[str, Any]:
        groups = sorted({t.group for t in self.types.values() if t.group})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g) for g in groups]}

    def _group(self, group: str) -> dict[str, Any]:
        versions = sorted({t.version for t in self.types.values() if t.group == group})
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[-1]}

    def _key(self, rtype: ResourceType, namespace: str, name: str) -> tuple[str, str, str, str, str]:
        return (rtype.group, rtype.version, rtype.plural, namespace, name)

    def _get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(self._key(rtype, namespace, name))
        if obj is None:
            raise ApiError(404, "NotFound", f"{rtype.plural}{'.' + rtype.group if rtype.group else ''} "
                                            f"\"{name}\" not found",
                           {"name": name, "group": rtype.group, "kind": rtype.plural})
        return obj

    def _list(self, rtype: ResourceType, namespace: str, query: dict[str, list[str]]) -> dict[str, Any]:
        items = [copy.deepcopy(o) for k, o in self.store.items()
                 if k[:3] == (rtype.group, rtype.version, rtype.plural) and (not namespace or k[3] == namespace)]
        for selector in query.get("labelSelector", []):
            items = [o for o in items if _labels_match(selector, (o.get("metadata") or {}).get("labels") or {})]
        for selector in query.get("fieldSelector", []):
            items = [o for o in items if _fields_match(selector, o)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return {"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version,
                "metadata": {"resourceVersion": str(next(self._rv))}, "items": items}

    def _check_namespace(self, rtype: ResourceType, namespace: str, creating: str | None = None) -> None:
        """The NamespaceLifecycle admission plugin (apiserver ``pkg/admission/plugin/namespace/lifecycle/
        admission.go``, ``Lifecycle.Admit``): no object in a namespace that does not exist (its NotFound),
        and no new object (``creating``: its name) in a namespace whose phase is ``Terminating``."""
        if not rtype.namespaced:
            return
        ns = self.store.get(("", "v1", "namespaces", "", namespace))
        if ns is None:
            raise ApiError(404, "NotFound", f"namespaces \"{namespace}\" not found",
                           {"name": namespace, "kind": "namespaces"})
        if creating is not None and (ns.get("status") or {}).get("phase") == "Terminating":
            resource = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            raise ApiError(403, "Forbidden", f"{resource} {_go_quote(creating)} is forbidden: unable to create new "
                                             f"content in namespace {namespace} because it is being terminated",
                           {"name": creating, "group": rtype.group, "kind": rtype.plural,
                            "causes": [{"reason": "NamespaceTerminating",
                                        "message": f"namespace {namespace} is being terminated",
                                        "field": "metadata.namespace"}]})

    def _validate(self, rtype: ResourceType, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        """The registry's validation (422 Invalid), for the fields the fake checks.

        Each error is a ``field.Error`` of k8s.io/apimachinery (``pkg/util/validation/field/errors.go``);
        :func:`_invalid` turns them into the Status ``errors.NewInvalid`` builds. Sources:
        ``ValidateObjectMetaAccessor`` (apimachinery ``pkg/api/validation/objectmeta.go``) with the name
        rule of each kind (``IsDNS1123Subdomain``; ``IsDNS1123Label`` for namespaces, ``IsDNS1035Label``
        for services: ``pkg/util/validation/validation.go``); kubernetes ``pkg/apis/core/validation/
        validation.go``: ``validateContainers``, ``validateRestartPolicy``,
        ``ValidatePersistentVolumeClaimUpdate``, ``ValidatePersistentVolumeUpdate``.
        """
        name = (obj.get("metadata") or {}).get("name", "")
        errors: list[FieldError] = []
        if not name:
            errors.append(FieldError("FieldValueRequired", "metadata.name", detail="name or generateName is required"))
        else:
            rule = _NAME_RULES.get(rtype.kind, _dns1123_subdomain) if not rtype.group else _dns1123_subdomain
            errors += [FieldError("FieldValueInvalid", "metadata.name", name, msg) for msg in rule(name)]
        if rtype.kind == "Pod" and not rtype.group and old is None:
            spec = obj.get("spec") or {}
            containers = spec.get("containers") or []
            if not containers:
                errors.append(FieldError("FieldValueRequired", "spec.containers"))
            for i, c in enumerate(containers):
                for f in ("name", "image"):
                    if not c.get(f):
                        errors.append(FieldError("FieldValueRequired", f"spec.containers[{i}].{f}"))
            policy = spec.get("restartPolicy", "Always")
            if policy not in ("Always", "OnFailure", "Never"):
                errors.append(FieldError("FieldValueNotSupported", "spec.restartPolicy", policy,
                                         'supported values: "Always", "OnFailure", "Never"'))
        if old is not None and rtype.kind == "PersistentVolumeClaim" and not rtype.group:
            errors += _pvc_update_errors(obj, old)
        if old is not None and rtype.kind == "PersistentVolume" and not rtype.group:
            errors += self._pv_update_errors(obj, old)
        self._apps_validate(rtype, obj, old)
        if errors:
            raise _invalid(rtype, name, errors)
        self._validating_admission(rtype, obj, old)

    def _validating_admission(self, rtype: ResourceType, obj: Mapping[str, Any], old: Mapping[str, Any] | None
                              ) -> None:
        """The validating admission plugins the fake models, run after validation (and on dry runs too).

        PersistentVolumeClaimResize (kubernetes plugin/pkg/admission/storage/persistentvolume/resize/
        admission.go, ``Validate`` and ``allowResize``): a larger storage request is refused unless the
        old claim is Bound and both claims name a StorageClass that allows expansion. The fake serves no
        StorageClass, so every growth is refused, as for the runbook's static local volumes. The 403's
        wording is apimachinery's ``NewForbidden`` via admission's ``NewForbidden``
        (``<resource> "<name>" is forbidden: <reason>``), kept in tests/data/kube/admission-403.json.
        """
        if old is None or rtype.kind != "PersistentVolumeClaim" or rtype.group:
            return
        def request(o: Mapping[str, Any]) -> int:
            return _bytes(((((o.get("spec") or {}).get("resources") or {}).get("requests") or {})
                           .get("storage")) or "0")
        if request(obj) <= request(old):
            return
        name = str((obj.get("metadata") or {}).get("name", ""))
        if (old.get("status") or {}).get("phase") != "Bound":
            reason = "Only bound persistent volume claims can be expanded"
        else:
            reason = ("only dynamically provisioned pvc can be resized and the storageclass that provisions "
                      "the pvc must support resize")
        raise ApiError(403, "Forbidden", f"persistentvolumeclaims {_go_quote(name)} is forbidden: {reason}",
                       {"name": name, "kind": "persistentvolumeclaims"})

    def _pv_update_errors(self, obj: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
        """``ValidatePersistentVolumeUpdate``: the volume source may not change; nor may volumeMode."""
        new_spec, old_spec = dict(obj.get("spec") or {}), dict(old.get("spec") or {})
        errors = []
        if {k: v for k, v in new_spec.items() if k in _PV_SOURCES} != \
                {k: v for k, v in old_spec.items() if k in _PV_SOURCES}:
            # The real detail goes on with a cmp.Diff of the two sources, which is not reproduced.
            errors.append(FieldError("FieldValueForbidden", "spec.persistentvolumesource",
                                     detail="spec.persistentvolumesource is immutable after creation"))
        new_mode, old_mode = new_spec.get("volumeMode") or "Filesystem", old_spec.get("volumeMode") or "Filesystem"
        if new_mode != old_mode:  # both defaulted by SetDefaults_PersistentVolume
            errors.append(FieldError("FieldValueInvalid", "volumeMode", new_mode, "field is immutable"))
        if old_spec.get("nodeAffinity") is not None and new_spec.get("nodeAffinity") != old_spec.get("nodeAffinity"):
            # validatePvNodeAffinity: which changes it lets through was not read; refuse, and say so.
            self.unexpected.append(f"PersistentVolume {old['metadata']['name']}: a change of spec.nodeAffinity "
                                   "(validatePvNodeAffinity) is not modelled by the fake")
            errors.append(FieldError("FieldValueForbidden", "spec.nodeAffinity",
                                     detail="not modelled by the fake API server"))
        return errors

    def _commit(self, rtype: ResourceType, key: tuple[str, str, str, str, str], obj: dict[str, Any],
                dry_run: bool, method: str) -> dict[str, Any]:
        if dry_run:
            return obj
        self.store[key] = obj
        if rtype.kind == "CustomResourceDefinition":
            self._register_crd(obj)
        self._reconcile()
        self.mutations.append((method, "/".join(k for k in key if k)))
        return copy.deepcopy(self.store[key])

    def _create(self, rtype: ResourceType, namespace: str, obj: dict[str, Any],
                query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            meta["namespace"] = namespace
            self._check_namespace(rtype, namespace, creating=str(meta.get("name") or meta.get("generateName") or ""))
        key = self._key(rtype, namespace, meta.get("name", ""))
        self._validate(rtype, obj, None)
        if key in self.store:
            raise ApiError(409, "AlreadyExists", f"{rtype.plural} \"{meta['name']}\" already exists",
                           {"name": meta["name"], "group": rtype.group, "kind": rtype.plural})
        self._init_new(rtype, obj)
        if rtype.kind == "Pod":  # the API server ignores a posted status; the kubelet reports it
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        dry = "All" in query.get("dryRun", [])
        managers = smd.Managers()
        managers.update({}, {k: v for k, v in _without_managed_fields(obj).items() if k != "status"},
                        self._root(rtype), _manager(query, "unknown"), api_version=rtype.group_version)
        _protect_storage(rtype, obj)
        if not dry:
            self.store[key] = obj
            self._set_managers(key, managers)
        else:
            obj["metadata"]["managedFields"] = managers.entries(_now())
        answer = _json_answer(201, self._commit(rtype, key, obj, dry, "POST"))
        if rtype.kind == "Pod" and not dry:
            self._start_pod_hooks(namespace, meta["name"], obj)
        return answer

    def _start_pod_hooks(self, namespace: str, name: str, pod: dict[str, Any]) -> None:
        for hook in self.pod_hooks:
            if hook.label_selector and not _labels_match(hook.label_selector, pod["metadata"].get("labels") or {}):
                continue
            hook.calls.append(f"{namespace}/{name}")
            started = KubeletPod(self, namespace, name, copy.deepcopy(pod))
            thread = threading.Thread(target=self._run_pod_hook, args=(hook, started), daemon=True,
                                      name=f"kubelet-{namespace}-{name}")
            self._hook_threads.append(thread)
            thread.start()

    def _run_pod_hook(self, hook: PodHook, pod: KubeletPod) -> None:
        try:
            hook.callback(pod)
        except Exception:
            import traceback

            with self.lock:
                self.unexpected.append(f"pod hook for {pod.namespace}/{pod.name} raised: {traceback.format_exc()}")

    def _replace(self, rtype: ResourceType, namespace: str, name: str, obj: dict[str, Any],
                 query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        old = self._get(rtype, namespace, name)
        meta = obj.setdefault("metadata", {})
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f"Operation cannot be fulfilled on {rtype.plural} \"{name}\": the object "
                                            "has been modified; please apply your changes to the latest version and "
                                            "try again", {"name": name, "kind": rtype.plural})
        self._validate(rtype, obj, old)
        for f in ("uid", "creationTimestamp", "managedFields"):
            meta[f] = old["metadata"].get(f)
        if rtype.namespaced:
            meta["namespace"] = namespace
        obj["apiVersion"], obj["kind"] = old["apiVersion"], old["kind"]
        if "status" not in obj and "status" in old:
            obj["status"] = old["status"]
        dry = "All" in query.get("dryRun", [])
        key = self._key(rtype, namespace, name)
        return _json_answer(200, self._update(rtype, key, old, obj, _manager(query, "unknown"), dry=dry,
                                              method="PUT"))

    def _patch(self, rtype: ResourceType, namespace: str, name: str, content_type: str, body: bytes,
               query: dict[str, list[str]], path: str) -> tuple[int, str, bytes]:
        """PATCH (apiserver ``endpoints/handlers/patch.go``, ``PatchResource``).

        The media types a resource accepts are the installer's (``endpoints/installer.go``): JSON
        patch, merge patch, strategic merge patch and apply for built-in kinds; custom resources
        leave strategic merge patch out (apiextensions-apiserver ``pkg/apiserver/
        customresource_handler.go``, ``serveResource``), so it is a 415 naming the accepted types
        (``negotiation.NewUnsupportedMediaTypeError``). JSON patch is not implemented (recorded).
        """
        media = content_type.split(";")[0].strip()
        custom = rtype not in CORE_TYPES
        if media == "application/strategic-merge-patch+json" and custom:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                                                        "media types include: " + ", ".join(_CR_PATCH_TYPES))
        if media == "application/apply-patch+yaml":
            return self._apply(rtype, namespace, name, body, query)
        if media in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            old = self._get(rtype, namespace, name)
            try:
                patch = json.loads(body or b"{}")
            except ValueError as exc:
                raise ApiError(400, "BadRequest", f"error decoding patch: {exc}") from None
            if media == "application/merge-patch+json":
                new = _merge_patch(copy.deepcopy(old), patch)
            else:
                try:
                    new = self._strategic_merge(copy.deepcopy(old), patch, self._schema_root(rtype))
                except _NotModelled as exc:
                    raise self._unexpected("PATCH", path, 501, why=f"strategic merge patch: {exc}") from None
            self._validate(rtype, new, old)
            dry = "All" in query.get("dryRun", [])
            key = self._key(rtype, namespace, name)
            return _json_answer(200, self._update(rtype, key, old, new, _manager(query, "unknown"), dry=dry,
                                                  method="PATCH"))
        raise self._unexpected("PATCH", path, 415, why=media)

    def _schema_root(self, rtype: ResourceType) -> Mapping[str, Any] | None:
        """The OpenAPI schema of a built-in kind (tests/data/openapi), or None when it is not kept there."""
        name = self.schema.by_gvk.get((rtype.group, rtype.version, rtype.kind))
        return self.schema.schemas.get(name) if name else None

    def _resolve(self, node: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """A schema node with its ``$ref`` (or single ``allOf`` reference) followed; None when unknown."""
        if node is None:
            return None
        ref = node.get("$ref")
        if ref is None and len(node.get("allOf") or []) == 1:
            ref = node["allOf"][0].get("$ref")
        if ref is not None:
            return self.schema.schemas.get(str(ref).rsplit("/", 1)[-1])
        return node

    def _strategic_merge(self, original: Any, patch: Any, node: Mapping[str, Any] | None) -> Any:
        """A strategic merge patch of a map (apimachinery ``pkg/util/strategicpatch/patch.go``, ``mergeMap``).

        ``null`` removes a key; a key the original lacks, or whose value has another type, takes the
        patch's value; maps merge key by key; a list merges only when its field says
        ``x-kubernetes-patch-strategy: merge`` (``mergeSliceHandler``), by its
        ``x-kubernetes-patch-merge-key`` for lists of maps, as a union for scalars, and in the order
        ``mergeSlice`` gives (``normalizeElementOrder``, ``mergeSortedSlice``); any other list is
        replaced. The strategies come from the OpenAPI documents under tests/data/openapi. Not
        modelled (refused): directives (``$patch``, ``$retainKeys``, ``$setElementOrder/...``,
        ``$deleteFromPrimitiveList/...``) and lists whose schema is not kept there.
        """
        if not isinstance(patch, dict):
            return copy.deepcopy(patch)
        out = dict(original) if isinstance(original, dict) else {}
        resolved = self._resolve(node)
        props = (resolved or {}).get("properties") or {}
        extra = (resolved or {}).get("additionalProperties")
        for k, value in patch.items():
            if k.startswith("$"):
                raise _NotModelled(f"directive {k}")
            child = props.get(k) if k in props else (extra if isinstance(extra, dict) else None)
            if value is None:
                out.pop(k, None)
                continue
            _no_directives(value)
            current = out.get(k)
            if k not in out or type(current) is not type(value):
                out[k] = _prune_nulls(copy.deepcopy(value))  # IgnoreUnmatchedNulls: discardNullValuesFromPatch
            elif isinstance(value, dict):
                out[k] = self._strategic_merge(current, value, child)
            elif isinstance(value, list):
                if child is None or resolved is None:
                    raise _NotModelled(f"list {k!r} has no schema in tests/data/openapi")
                strategy = str(child.get("x-kubernetes-patch-strategy") or "")
                if "merge" in strategy.split(","):
                    out[k] = self._merge_list(current, value, child.get("x-kubernetes-patch-merge-key"),
                                              child.get("items"))
                else:
                    out[k] = copy.deepcopy(value)
            else:
                out[k] = value
        return out

    def _merge_list(self, original: list[Any], patch: list[Any], key: str | None,
                    items: Mapping[str, Any] | None) -> list[Any]:
        """``mergeSlice``: merge two lists by merge key (maps) or as a union (scalars), then order them."""
        if not original and not patch:
            return original
        maps = any(isinstance(v, dict) for v in [*original, *patch])

        def ident(v: Any) -> Any:
            return json.dumps(v.get(key) if maps else v, sort_keys=True)

        if maps:
            if not key:
                raise _NotModelled("a list of maps with patch strategy merge and no merge key")
            merged = copy.deepcopy(original)
            for item in patch:
                if key not in item:
                    raise _NotModelled(f"a list item without its merge key {key!r}")
                at = next((i for i, m in enumerate(merged) if isinstance(m, dict) and m.get(key) == item[key]), None)
                if at is None:
                    merged.append(_prune_nulls(copy.deepcopy(item)))
                else:
                    merged[at] = self._strategic_merge(merged[at], item, items)
        else:
            merged = []
            for v in [*original, *patch]:
                if v not in merged:
                    merged.append(v)
        in_patch = {ident(v) for v in patch}
        patch_items = sorted((m for m in merged if ident(m) in in_patch),
                             key=lambda m: [ident(v) for v in patch].index(ident(m)))
        order = [ident(v) for v in original]
        server_only = sorted((m for m in merged if ident(m) not in in_patch), key=lambda m: order.index(ident(m)))
        out: list[Any] = []
        i = j = 0
        while i < len(server_only) or j < len(patch_items):  # mergeSortedSlice
            if j >= len(patch_items):
                out.append(server_only[i])
                i += 1
            elif i >= len(server_only):
                out.append(patch_items[j])
                j += 1
            else:
                li, ri = ident(server_only[i]), ident(patch_items[j])
                if li in order and ri in order and order.index(li) < order.index(ri):
                    out.append(server_only[i])
                    i += 1
                else:
                    out.append(patch_items[j])
                    j += 1
        return out

    def _apply(self, rtype: ResourceType, namespace: str, name: str, body: bytes,
               query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        manager = _manager(query, "")
        if not manager:
            raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                           "is required for apply patch")
        try:
            config = yaml.safe_load(body or b"") or {}
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"error decoding YAML: {exc}") from None
        meta = config.get("metadata") or {}
        if meta.get("name") != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the "
                                              f"name on the URL ({name})")
        if config.get("kind") != rtype.kind or config.get("apiVersion") != (rtype.group_version):
            raise ApiError(400, "BadRequest", f"apply patch kind/apiVersion {config.get('apiVersion')}/"
                                              f"{config.get('kind')} does not match {rtype.group_version}/{rtype.kind}")
        if rtype.namespaced:
            meta_ns = meta.get("namespace")
            if meta_ns and meta_ns != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                                  "sent on the request")
            self._check_namespace(rtype, namespace,
                                  creating=name if self.store.get(self._key(rtype, namespace, name)) is None else None)
        force = query.get("force", ["false"])[0] == "true"
        dry = "All" in query.get("dryRun", [])
        key = self._key(rtype, namespace, name)
        root = self._root(rtype)
        old = self.store.get(key)
        managers = self._managers.get(key, smd.Managers()).copy() if old is not None else smd.Managers()
        live = _without_managed_fields(old) if old is not None else {}
        try:
            new = managers.apply(live, config, root, manager, force=force, api_version=rtype.group_version,
                                 ignore=_STATUS if rtype.status else ())
        except smd.Conflict as exc:
            raise _conflict(exc, managers) from None
        new["apiVersion"], new["kind"] = rtype.group_version, rtype.kind
        new.setdefault("metadata", {})["name"] = name
        if rtype.namespaced:
            new["metadata"]["namespace"] = namespace
        new = self._keep_status(rtype, old, new)
        self._validate(rtype, new, old)
        if old is None:
            self._init_new(rtype, new)
            _protect_storage(rtype, new)
            if dry:
                new["metadata"]["managedFields"] = managers.entries(_now())
                return _json_answer(201, new)
            self.store[key] = new
            self._set_managers(key, managers)
            return _json_answer(201, self._commit(rtype, key, new, False, "PATCH"))
        for f in ("uid", "creationTimestamp"):
            new["metadata"][f] = old["metadata"].get(f)
        return _json_answer(200, self._store_write(rtype, key, old, new, managers, dry=dry, method="PATCH"))

    def _delete(self, rtype: ResourceType, namespace: str, name: str, query: dict[str, list[str]],
                headers: Mapping[str, str], body: bytes, path: str) -> tuple[int, str, bytes]:
        """``DELETE`` (k8s.io/apiserver ``endpoints/handlers/delete.go`` ``DeleteResource``).

        The options come from the body (a DeleteOptions) or, without a body, from the query.
        What the answer is follows ``registry/generic/registry/store.go`` (``Store.Delete``,
        ``finalizeDelete``): while the deletion waits (a grace period, finalizers) the object as
        it is now; once the object is gone, the object for the kinds whose registry sets
        ``ReturnDeletedObject`` (:data:`_RETURNS_DELETED_OBJECT`), else a ``Status`` with
        ``status: Success`` and ``details`` (name, group, kind = the resource, uid).
        """
        options = _delete_options(query, body, headers.get("Content-Type", ""))
        unsupported = sorted(set(options) - {"gracePeriodSeconds", "propagationPolicy", "dryRun", "kind",
                                             "apiVersion"})
        if options.get("propagationPolicy") not in (None, "Background", "Orphan") or unsupported:
            raise self._unexpected("DELETE", path, 501, why="delete options the fake does not model (the garbage "
                                   f"collector's finalizers, preconditions): {options}")
        if rtype.kind == "CustomResourceDefinition":
            raise self._unexpected("DELETE", path, 501, why="deleting a CRD (its customresourcecleanup finalizer "
                                   "and the instances' deletion) is not modelled")
        if rtype.kind == "Namespace" and name in _IMMORTAL_NAMESPACES:
            raise ApiError(403, "Forbidden", f"namespaces {_go_quote(name)} is forbidden: this namespace may not be "
                                             "deleted", {"name": name, "group": "", "kind": "namespaces"})
        key = self._key(rtype, namespace, name)
        self._get(rtype, namespace, name)
        dry = "All" in (options.get("dryRun") or [])
        out, _gone = self._delete_object(rtype, key, options.get("gracePeriodSeconds"), dry=dry, method="DELETE",
                                         orphan=options.get("propagationPolicy") == "Orphan")
        return _json_answer(200, out)

    def _delete_object(self, rtype: ResourceType, key: tuple[str, str, str, str, str], grace: int | None, *,
                       dry: bool = False, method: str | None = None, orphan: bool = False
                       ) -> tuple[dict[str, Any], bool]:
        """Delete one stored object as the registry does; (what DELETE answers, whether it is gone).

        - a Namespace (``pkg/registry/core/namespace/storage/storage.go``, ``REST.Delete``): the first
          delete sets ``deletionTimestamp`` and phase ``Terminating`` and returns the namespace; it
          goes when the namespace controller has removed ``kubernetes`` from ``spec.finalizers``;
        - a Pod (``pkg/registry/core/pod/strategy.go``, ``CheckGracefulDelete``; apiserver
          ``registry/rest/delete.go``, ``BeforeDelete``): the grace period is the request's
          ``gracePeriodSeconds``, else ``spec.terminationGracePeriodSeconds``; 0 when the pod has no
          node or has ended (Succeeded, Failed). A graceful delete sets ``deletionTimestamp`` (now +
          grace) and ``deletionGracePeriodSeconds``; the kubelet finishes it (:meth:`_kubelet_pass`);
        - any object with finalizers (``Store.updateForGracefulDeletionAndFinalizers``,
          ``markAsDeleting``): ``deletionTimestamp`` now, ``deletionGracePeriodSeconds`` 0; it goes
          when the last finalizer is removed;
        - ``propagationPolicy: Orphan`` (``deletionFinalizersForGarbageCollection``, ``shouldOrphanDependents``):
          the ``orphan`` finalizer replaces ``orphan``/``foregroundDeletion`` among the object's finalizers, so
          the deletion waits as above until the garbage collector has orphaned the dependents
          (:meth:`_garbage_collector_pass`);
        - else the object goes at once.
        """
        obj = self.store[key]
        if orphan:
            obj = copy.deepcopy(obj)
            kept = [f for f in obj["metadata"].get("finalizers") or [] if f not in ("orphan", "foregroundDeletion")]
            obj["metadata"]["finalizers"] = [*kept, "orphan"]
        meta = obj["metadata"]
        if rtype.kind == "Namespace" and not rtype.group:
            if not meta.get("deletionTimestamp"):
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = _now()
                new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
                return self._raw_write(rtype, key, new, dry=dry, method=method), False
            if (obj.get("spec") or {}).get("finalizers"):
                return copy.deepcopy(obj), False
        pending_grace = meta.get("deletionTimestamp") and (meta.get("deletionGracePeriodSeconds") or 0) > 0
        if pending_grace and (grace is None or grace >= meta["deletionGracePeriodSeconds"]):
            return self._deleted_answer(rtype, obj), False  # BeforeDelete: graceful deletion already pending
        if rtype.kind == "Pod" and not rtype.group:
            period = grace if grace is not None else int((obj.get("spec") or {}).get("terminationGracePeriodSeconds")
                                                         or 0)
            if not (obj.get("spec") or {}).get("nodeName") or (obj.get("status") or {}).get("phase") in (
                    "Succeeded", "Failed"):
                period = 0
            if period > 0:
                new = copy.deepcopy(obj)
                when = datetime.now(UTC) + dt.timedelta(seconds=period)
                if not meta.get("deletionTimestamp"):
                    new["metadata"]["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
                new["metadata"]["deletionGracePeriodSeconds"] = period
                return self._raw_write(rtype, key, new, dry=dry, method=method), False
        if meta.get("finalizers"):
            new = copy.deepcopy(obj)
            new["metadata"].setdefault("deletionTimestamp", _now())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._raw_write(rtype, key, new, dry=dry, method=method), False
        if rtype.kind == "Pod" and not rtype.group:  # BeforeDelete wrote the zero grace period first
            obj = copy.deepcopy(obj)
            obj["metadata"].setdefault("deletionTimestamp", _now())
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
        answer = self._deleted_answer(rtype, obj)
        if not dry:
            self._remove(key, method=method)
        return answer, True

    def _deleted_answer(self, rtype: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        """``Store.finalizeDelete``: the object, or a success Status naming it."""
        if (rtype.group, rtype.plural) in _RETURNS_DELETED_OBJECT:
            return copy.deepcopy(dict(obj))
        details = {"name": obj["metadata"]["name"], **({"group": rtype.group} if rtype.group else {}),
                   "kind": rtype.plural, "uid": obj["metadata"].get("uid", "")}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _raw_write(self, rtype: ResourceType, key: tuple[str, str, str, str, str], new: dict[str, Any], *,
                   dry: bool, method: str | None, manager: str = "") -> dict[str, Any]:
        """Store a new state of an object that the registry changed itself (no field manager moves)."""
        if dry:
            return new
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self.store[key] = new
        if method is not None:
            self.mutations.append((method, "/".join(k for k in key if k)))
        return copy.deepcopy(new)

    def _remove(self, key: tuple[str, str, str, str, str], *, method: str | None) -> None:
        """The object leaves storage (and a pod's logs with it)."""
        del self.store[key]
        self._managers.pop(key, None)
        if key[:3] == ("", "v1", "pods"):
            self._drop_logs(key[3], key[4])
        if method is not None:
            self.mutations.append((method, "/".join(k for k in key if k)))

    def _update_finalizers(self, key: tuple[str, str, str, str, str], finalizers: list[str], *,
                           manager: str) -> None:
        """A controller's update of ``metadata.finalizers`` (an object being deleted goes with its last one)."""
        obj = self.store[key]
        new = copy.deepcopy(obj)
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
        else:
            new["metadata"].pop("finalizers", None)
        self._update(self.types[key[:3]], key, obj, new, manager)

    def _drop_logs(self, namespace: str, pod: str) -> None:
        for k in [k for k in self.logs if k[:2] == (namespace, pod)]:
            del self.logs[k]

    def _pod_log(self, namespace: str, name: str, query: dict[str, list[str]], path: str) -> Answer:
        unknown = sorted(set(query) - _LOG_OPTIONS)
        if unknown:
            raise self._unexpected("GET", path, why=f"log options {', '.join(unknown)}")
        container = _option(query, "container")
        previous = _log_bool(_option(query, "previous") or "false")
        tail = _log_int(query, "tailLines")
        since = _log_int(query, "sinceSeconds")
        problems = []
        if tail is not None and tail < 0:
            problems.append(f"tailLines: Invalid value: {tail}: must be greater than or equal to 0")
        if since is not None and since < 1:
            problems.append(f"sinceSeconds: Invalid value: {since}: must be greater than 0")
        if problems:
            listed = problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]"
            raise ApiError(422, "Invalid", f"PodLogOptions \"{name}\" is invalid: {listed}",
                           {"name": name, "kind": "PodLogOptions"})
        pod = self._get(self.types[("", "v1", "pods")], namespace, name)
        names = _container_names(pod)
        if not container:
            main = _container_names(pod, init=False)
            if len(main) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}"
                                                  + (f", choose one of: [{' '.join(names)}]" if main else ""))
            container = main[0]
        elif container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if not (pod.get("spec") or {}).get("nodeName"):
            return 200, "text/plain", b""  # no node: the API server has no kubelet to ask
        self._dial_kubelet(pod, f"/containerLogs/{namespace}/{name}/{container}", query)
        run_previous = self._run_to_read(pod, name, container, previous)
        lines = self.logs.get((namespace, name, container, run_previous), [])
        if tail is not None:
            lines = lines[len(lines) - tail:] if tail else []
        if since is not None:
            oldest = time.time() - since
            lines = [entry for entry in lines if entry[0] >= oldest]
        return 200, "text/plain", "".join(line for _at, line in lines).encode()

    @staticmethod
    def _run_to_read(pod: Mapping[str, Any], name: str, container: str, previous: bool) -> bool:
        """Which run the kubelet reads the log of (True: the previous one), or its 400."""
        status = pod.get("status") or {}
        statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
        found = next((c for c in statuses if c.get("name") == container), None)
        if found is None:
            raise ApiError(400, "BadRequest", f"container \"{container}\" in pod \"{name}\" is not available")
        state = found.get("state") or {}
        last_run = bool((found.get("lastState") or {}).get("terminated"))
        if previous:
            if not last_run:
                raise ApiError(400, "BadRequest", f"previous terminated container \"{container}\" in pod "
                                                  f"\"{name}\" not found")
            return True
        if state.get("running") is not None or state.get("terminated") is not None:
            return False
        if last_run:
            return True  # waiting to restart: the log of the run that ended
        reason = (state.get("waiting") or {}).get("reason")
        if reason == "ErrImagePull":
            reason = "image can't be pulled"
        elif reason == "ImagePullBackOff":
            reason = "trying and failing to pull image"
        if reason is None:
            raise ApiError(400, "BadRequest", f"container \"{container}\" in pod \"{name}\" is waiting to start "
                                              "- no logs yet")
        raise ApiError(400, "BadRequest", f"container \"{container}\" in pod \"{name}\" is waiting to start: "
                                          f"{reason}")

    def _proxy(self, method: str, namespace: str, target: str, path: str, query: dict[str, list[str]],
               body: bytes) -> _Forward:
        parts = target.split(":")
        name, port = (parts[-2], parts[-1]) if len(parts) >= 2 else (parts[0], "")
        service = self.store.get(("", "v1", "services", namespace, name))
        if service is None:
            raise ApiError(404, "NotFound", f"services \"{name}\" not found", {"name": name, "kind": "services"})
        handler = self.proxies.get((namespace, name, port))
        if handler is None:
            raise ApiError(503, "ServiceUnavailable", f"no endpoints available for service \"{name}\"")
        return _Forward(handler, method, path, query, body)

    def _dial_kubelet(self, pod: Mapping[str, Any], kubelet_path: str | None, query: dict[str, list[str]]) -> None:
        """Raise the API server's answer when it cannot reach the kubelet of ``pod``'s node.

        The address is the node's first of InternalIP, ExternalIP, Hostname (K3s sets
        ``--kubelet-preferred-address-types`` so), the port its kubelet endpoint's (default 10250).
        A log (``kubelet_path``) fails in ``LocationStreamer.InputStream`` with net/http's error,
        ``Get "URL": dial tcp ...``; exec, attach and port-forward (``kubelet_path`` None) fail in
        ``UpgradeAwareHandler.tryUpgrade`` with ``error dialing backend: dial tcp ...``. Both are
        plain errors, so ``ErrorToAPIStatus`` makes them a 500 Status without a reason.
        """
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        node = self.store.get(("", "v1", "nodes", "", node_name)) or {}
        status = node.get("status") or {}
        addresses = {str(a.get("type")): str(a.get("address")) for a in status.get("addresses") or []}
        address = next((addresses[t] for t in ("InternalIP", "ExternalIP", "Hostname") if t in addresses), node_name)
        port = int(((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250)
        why = self.kubelet_dialer(node_name, address, port)
        if why is None:
            return
        host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        dial = f"dial tcp {host}: {why}"
        if kubelet_path is None:
            raise ApiError(500, "", f"error dialing backend: {dial}")
        params = {k: v for k, v in query.items() if k != "container"}
        encoded = "&".join(f"{k}={quote_plus(v[-1])}" for k, v in sorted(params.items()))  # url.Values.Encode
        url = f"https://{host}{kubelet_path}" + (f"?{encoded}" if encoded else "")
        raise ApiError(500, "", f'Get "{url}": {dial}')

    def _pod_stream(self, namespace: str, name: str, what: str, query: dict[str, list[str]], path: str) -> Answer:
        """exec, attach, port-forward: modelled only as far as the dial to the kubelet (which fails).

        As ``streamLocation``: exec and attach name a container of the pod (or it has one); a pod
        without a node is a 400.
        """
        pod = self._get(self.types[("", "v1", "pods")], namespace, name)
        container = _option(query, "container")
        main = _container_names(pod, init=False)
        if what != "portforward" and not container and len(main) != 1:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}"
                           + (f", choose one of: [{' '.join(_container_names(pod))}]" if main else ""))
        if what != "portforward" and container and container not in _container_names(pod):
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if not (pod.get("spec") or {}).get("nodeName"):
            raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
        self._dial_kubelet(pod, None, {})
        raise self._unexpected("POST", path, 501, f"{what} to a reachable kubelet (a stream upgrade)")


class DialFailure(OSError):
    """A dial that fails as Go's net package says it (``dial tcp IP:PORT: connect: no route to host``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Forward:
    """A proxied request, found under the lock and sent to its backend after the lock is released."""

    handler: ProxyHandler
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def send(self, headers: Mapping[str, str]) -> Answer:
        try:
            return self.handler(self.method, self.path, self.query, self.body, headers)
        except OSError as exc:  # what the API server says when the endpoint does not answer
            raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: {exc}") from None


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeKube
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # As Go's net/http (the API server) does: no Nagle delay between the headers and the body of an answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        headers = {("Authorization" if k.lower() == "authorization" else
                    "Content-Type" if k.lower() == "content-type" else k): v for k, v in headers.items()}
        if self.server_fake.latency:
            time.sleep(self.server_fake.latency)
        status, content_type, data = self.server_fake.handle(self.command, self.path, headers, body,
                                                             client=self.client_address[0])
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (its timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


# --- helpers -------------------------------------------------------------------------------------


def _self_signed_cert() -> tuple[bytes, bytes]:
    """A throwaway key and a self-signed certificate for 127.0.0.1 (PEM), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kube")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


#: Where the status lives: left out of what a write to the object itself may own (ResetFields).
_STATUS: tuple[smd.FieldPath, ...] = ((("f", "status"),),)


@functools.cache
def _schema() -> smd.Schema:
    """The real OpenAPI schemas of the core and networking kinds (tests/data/openapi), loaded once."""
    return smd.Schema.load()


def _without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


def _conflict(exc: smd.Conflict, managers: smd.Managers) -> ApiError:
    """The 409 of an apply that would change another manager's fields, worded as the API server words it.

    Source: k8s.io/apiserver ``fieldmanager`` (``NewConflictError``, ``printManager``) and
    structured-merge-diff ``merge/conflict.go`` (``Conflicts.Error``).
    """
    by_manager: dict[str, list[str]] = {}
    causes = []
    for manager, paths in exc.fields.items():
        key = next((k for k in managers.sets if k[0] == manager), (manager, "Apply", ""))
        shown = f'"{manager}"' + (f" using {managers.api_version.get(key, 'v1')}" if key[1] == "Update" else "")
        for path in paths:
            text = smd.path_string(path)
            by_manager.setdefault(shown, []).append(text)
            causes.append({"reason": "FieldManagerConflict", "message": f"conflict with {shown}", "field": text})
    count = len(causes)
    if count == 1:
        ((shown, (path_text,)),) = by_manager.items()
        message = f"Apply failed with 1 conflict: conflict with {shown}: {path_text}"
    elif len(by_manager) == 1:
        ((shown, paths_text),) = by_manager.items()
        message = f"Apply failed with {count} conflicts: conflicts with {shown}" + "".join(
            f"\n- {t}" for t in paths_text)
    else:
        message = f"Apply failed with {count} conflicts: conflicts with" + "".join(
            f"\n{shown}:" + "".join(f"\n- {t}" for t in paths_text) for shown, paths_text in by_manager.items())
    return ApiError(409, "Conflict", message, {"causes": causes})


def _bound_to_claim(pv: Mapping[str, Any], pvc: Mapping[str, Any]) -> bool:
    """``IsVolumeBoundToClaim`` (component-helpers ``storage/volume/pv_helpers.go``): the volume's claimRef
    names the claim, with no uid or the claim's."""
    ref = (pv.get("spec") or {}).get("claimRef")
    meta = pvc["metadata"]
    if not ref or (ref.get("name"), ref.get("namespace")) != (meta.get("name"), meta.get("namespace")):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def _has_vac(*objs: Mapping[str, Any]) -> bool:
    return any((o.get("spec") or {}).get("volumeAttributesClassName") for o in objs)


def _find_by_claim(pvc: Mapping[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The volume the controller picks for a claim that names none (``findBestMatchForClaim``).

    ``persistentVolumeOrderedIndex.findByClaim`` (kubernetes ``pkg/controller/volume/persistentvolume/
    index.go``) looks at the volumes grouped by their access modes, the groups that hold every mode the
    claim asks for, fewest modes first (``allPossibleMatchingAccessModes``; groups of equal size in
    the order of their names here, an unordered map there); in each it calls ``FindMatchingVolume``
    (component-helpers ``storage/volume/pv_helpers.go``, with no node, delayBinding false and the
    VolumeAttributesClass gate on), which skips volumes reserved for another claim, too small, of
    another volumeMode or volumeAttributesClassName, or being deleted; returns a volume reserved
    for this claim (claimRef) at once; else takes the smallest ``Available`` one of the claim's
    storage class.
    """
    pvc_spec = pvc.get("spec") or {}
    wanted = set(pvc_spec.get("accessModes") or [])
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for v in volumes:
        groups.setdefault(tuple(sorted(set((v.get("spec") or {}).get("accessModes") or []))), []).append(v)
    requested = _bytes(((pvc_spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
    for modes in sorted((m for m in groups if wanted <= set(m)), key=lambda m: (len(m), m)):
        smallest: dict[str, Any] | None = None
        for v in sorted(groups[modes], key=lambda o: o["metadata"]["name"]):
            spec = v.get("spec") or {}
            if spec.get("claimRef") and not _bound_to_claim(v, pvc):
                continue
            size = _bytes((spec.get("capacity") or {}).get("storage", "0"))
            if size < requested:
                continue
            if (spec.get("volumeMode") or "Filesystem") != (pvc_spec.get("volumeMode") or "Filesystem"):
                continue
            if (spec.get("volumeAttributesClassName") or "") != (pvc_spec.get("volumeAttributesClassName") or ""):
                continue
            if v["metadata"].get("deletionTimestamp"):
                continue
            if _bound_to_claim(v, pvc):
                return v
            if (v.get("status") or {}).get("phase") != "Available":
                continue
            if (spec.get("storageClassName") or "") != (pvc_spec.get("storageClassName") or ""):
                continue
            if smallest is None or size < _bytes(smallest["spec"]["capacity"]["storage"]):
                smallest = v
        if smallest is not None:
            return smallest
    return None


def _unsatisfied(pv: Mapping[str, Any], pvc: Mapping[str, Any]) -> str | None:
    """Why a volume cannot take the claim that names it (pv_controller.go, ``checkVolumeSatisfyClaim``), or None.

    In the order of the source: being deleted, size, storage class, volumeMode
    (``CheckVolumeModeMismatches``), access modes (``CheckAccessModes``: every mode of the claim).
    """
    pv_spec, pvc_spec = pv.get("spec") or {}, pvc.get("spec") or {}
    if (pv.get("metadata") or {}).get("deletionTimestamp"):
        return f"the volume is marked for deletion \"{pv['metadata']['name']}\""
    requested = _bytes(((pvc_spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
    if _bytes((pv_spec.get("capacity") or {}).get("storage", "0")) < requested:
        return "requested PV is too small"
    if (pv_spec.get("storageClassName") or "") != (pvc_spec.get("storageClassName") or ""):
        return "storageClassName does not match"
    if (pv_spec.get("volumeMode") or "Filesystem") != (pvc_spec.get("volumeMode") or "Filesystem"):
        return "incompatible volumeMode"
    if not set(pvc_spec.get("accessModes") or []) <= set(pv_spec.get("accessModes") or []):
        return "incompatible accessMode"
    return None


def _json_answer(status: int, doc: Any) -> Answer:
    return status, "application/json", json.dumps(doc).encode()


def _forwarded_headers(headers: Mapping[str, str], client: str, path: str) -> dict[str, str]:
    """The request headers as the API server passes them to a proxied service."""
    out = {k: v for k, v in headers.items()
           if k.lower() not in _NOT_FORWARDED and not k.lower().startswith("impersonate-")}
    out["X-Forwarded-For"] = client
    out["X-Forwarded-Uri"] = path
    return out


def _container_names(pod: Mapping[str, Any], *, init: bool = True) -> list[str]:
    """The names of a pod's containers, after its init containers (unless ``init`` is False)."""
    spec = pod.get("spec") or {}
    return [str(c.get("name")) for c in [*(spec.get("initContainers") or [] if init else []),
                                         *(spec.get("containers") or [])]]


def _option(query: dict[str, list[str]], name: str) -> str:
    return (query.get(name) or [""])[0]


def _log_bool(value: str) -> bool:
    truth = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}
    if value.lower() not in truth:
        raise ApiError(400, "BadRequest", f'strconv.ParseBool: parsing "{value}": invalid syntax')
    return truth[value.lower()]


def _log_int(query: dict[str, list[str]], name: str) -> int | None:
    value = _option(query, name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def _parse_body(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        try:
            doc = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"error decoding body: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "BadRequest", "the body is not an object")
    return doc


def _manager(query: dict[str, list[str]], default: str) -> str:
    return query.get("fieldManager", [default])[0]


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        if not isinstance(value, dict) or p not in value:
            return None
        value = value[p]
    return value


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


def _strip(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    for f in ("resourceVersion", "managedFields"):
        out.get("metadata", {}).pop(f, None)
    return out


def _labels_match(selector: str, labels: Mapping[str, str]) -> bool:
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace"),
           "status.phase": ("status", "phase"), "spec.nodeName": ("spec", "nodeName")}


def _fields_match(selector: str, obj: Mapping[str, Any]) -> bool:
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        negate = "!=" in term
        k, v = term.split("!=" if negate else ("==" if "==" in term else "="), 1)
        path = _FIELDS.get(k.strip())
        if path is None:
            raise ApiError(400, "BadRequest", f"\"{k}\" is not a known field selector: only \"metadata.name\", "
                                              "\"metadata.namespace\"")
        actual = _at(dict(obj), path) or ""
        if (actual == v.strip()) == negate:
            return False
    return True


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "k": 10**3, "M": 10**6, "G": 10**9,
          "T": 10**12, "": 1}


def _bytes(quantity: str) -> float:
    m = re.match(r"^([0-9.]+)([A-Za-z]*)$", str(quantity))
    if not m or m.group(2) not in _UNITS:
        return 0.0
    return float(m.group(1)) * _UNITS[m.group(2)]


class _Server(ThreadingHTTPServer):
    """A client that goes away mid-answer (a killed process) is not a server error."""

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | ssl.SSLError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class KubeLab:
    """What the ``fake_kube`` fixture hands a test: the server and a kubeconfig pointing at it."""

    api: FakeKube
    kubeconfig: Path
    extra: dict[str, Any] = field(default_factory=dict)


def running(tmp_path: Path) -> Iterator[KubeLab]:
    """Start a fake API server with a kubeconfig in ``tmp_path``; stop it and check it afterwards."""
    api = FakeKube().start()
    try:
        yield KubeLab(api, api.write_kubeconfig(tmp_path / "kubeconfig"))
    finally:
        api.stop()
    api.check_clean()
