"""The fake API server behaves as the Kubernetes source says, where the old fake answered kindly.

These test the lab itself (tests/lab/fake_kube.py), and, at the end, what o11yctl does against the
behaviour found. Each behaviour names, in the fake's docstrings
and in tests/data/kube/README.md, the Kubernetes source it was read from; each test's docstring
says what the fake answered before. Requests go to FakeKube.handle in-process, as the HTTPS server
passes them; like the server, handle runs one pass of the fake's controllers after each request.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from tests.lab.fake_kube import TOKEN, FakeKube, KubeLab

from o11yctl.errors import KubeError

if TYPE_CHECKING:
    from o11yctl.deploy.cluster import Deployer
    from o11yctl.stack.plan import Step

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}


def call(api: FakeKube, method: str, path: str, body: Any = None,
         content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    data = b"" if body is None else json.dumps(body).encode()
    status, _type, raw = api.handle(method, path, {**AUTH, "Content-Type": content_type}, data)
    return status, json.loads(raw)


def namespace(api: FakeKube, name: str) -> None:
    status, doc = call(api, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": name}})
    assert status == 201, doc


def configmap(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": {"a": "1"}}


def pod(name: str, node: str | None = "node-1", claim: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if claim:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def pv(name: str, *, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), claim: str | None = None,
       **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": list(modes),
                            "storageClassName": "local-storage", "persistentVolumeReclaimPolicy": "Retain",
                            "hostPath": {"path": f"/data/{name}"}, **spec}
    if claim:
        body["claimRef"] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "ns", "name": claim}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": body}


def pvc(name: str, *, volume: str | None = None, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",),
        storage_class: str = "local-storage") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def api() -> FakeKube:
    fake = FakeKube()
    fake.add_node("node-1")
    namespace(fake, "ns")
    return fake


def events(api: FakeKube, reason: str) -> list[str]:
    return [e["message"] for e in api.objects("Event") if e.get("reason") == reason]


# --- 1. namespace deletion -----------------------------------------------------------------------


def test_a_deleted_namespace_is_terminating_until_its_content_is_gone(api: FakeKube) -> None:
    """Old fake: DELETE removed the namespace and everything in it at once (a GET right after was a 404)."""
    call(api, "POST", "/api/v1/namespaces/ns/configmaps", configmap("settings"))
    call(api, "POST", "/api/v1/namespaces/ns/pods", pod("worker"))

    status, doc = call(api, "DELETE", "/api/v1/namespaces/ns")
    assert status == 200 and doc["kind"] == "Namespace"
    assert doc["status"]["phase"] == "Terminating" and doc["metadata"]["deletionTimestamp"]
    assert doc["spec"]["finalizers"] == ["kubernetes"]

    status, doc = call(api, "GET", "/api/v1/namespaces/ns")
    assert status == 200 and doc["status"]["phase"] == "Terminating", "the pod's kubelet has not finished yet"
    conditions = {c["type"]: c for c in doc["status"]["conditions"]}
    assert conditions["NamespaceContentRemaining"]["message"] == \
        "Some resources are remaining: pods. has 1 resource instances"
    assert conditions["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert call(api, "GET", "/api/v1/namespaces/ns/configmaps/settings")[0] == 404, "deleted at once"

    api.settle()
    assert call(api, "GET", "/api/v1/namespaces/ns")[0] == 404


def test_creating_in_a_terminating_namespace_is_forbidden_as_namespace_lifecycle_words_it(api: FakeKube) -> None:
    """Old fake: the namespace was gone at once, so a create got 404; a namespace kept by a finalizer did not
    exist in the fake at all."""
    call(api, "POST", "/api/v1/namespaces/ns/configmaps", configmap("held", finalizers=["example.com/hold"]))
    call(api, "DELETE", "/api/v1/namespaces/ns")
    api.settle()

    status, doc = call(api, "POST", "/api/v1/namespaces/ns/configmaps", configmap("new"))
    assert status == 403
    assert doc["reason"] == "Forbidden" and doc["code"] == 403
    assert doc["message"] == ('configmaps "new" is forbidden: unable to create new content in namespace ns '
                              "because it is being terminated")
    assert doc["details"] == {"name": "new", "group": "", "kind": "configmaps", "causes": [
        {"reason": "NamespaceTerminating", "message": "namespace ns is being terminated",
         "field": "metadata.namespace"}]}
    status, doc = call(api, "PATCH", "/api/v1/namespaces/ns/configmaps/new2?fieldManager=o11yctl",
                       configmap("new2"), "application/apply-patch+yaml")
    assert status == 403 and "because it is being terminated" in doc["message"], "an apply that creates, too"

    conditions = {c["type"]: c for c in api.obj("v1", "Namespace", "ns")["status"]["conditions"]}  # type: ignore[index]
    assert conditions["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"

    status, doc = call(api, "PATCH", "/api/v1/namespaces/ns/configmaps/held", {"metadata": {"finalizers": None}},
                       "application/merge-patch+json")
    assert status == 200
    api.settle()
    assert api.obj("v1", "Namespace", "ns") is None


def test_the_immortal_namespaces_cannot_be_deleted() -> None:
    """Old fake: DELETE of namespace default removed it."""
    api = FakeKube()
    namespace(api, "default")
    status, doc = call(api, "DELETE", "/api/v1/namespaces/default")
    assert status == 403
    assert doc["message"] == 'namespaces "default" is forbidden: this namespace may not be deleted'


# --- 2. finalizers and graceful deletion ---------------------------------------------------------


def bound_claim(api: FakeKube) -> None:
    call(api, "POST", "/api/v1/persistentvolumes", pv("data", claim="data"))
    status, doc = call(api, "POST", "/api/v1/namespaces/ns/persistentvolumeclaims", pvc("data", volume="data"))
    assert status == 201 and doc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert api.obj("v1", "PersistentVolume", "data")["metadata"]["finalizers"] == [  # type: ignore[index]
        "kubernetes.io/pv-protection"]
    assert api.obj("v1", "PersistentVolumeClaim", "data", "ns")["status"]["phase"] == "Bound"  # type: ignore[index]


def test_a_claim_in_use_by_a_pod_stays_until_the_pod_is_gone(api: FakeKube) -> None:
    """Old fake: DELETE removed the claim at once, pod or no pod (no pvc-protection finalizer)."""
    bound_claim(api)
    call(api, "POST", "/api/v1/namespaces/ns/pods", pod("user", claim="data"))

    status, doc = call(api, "DELETE", "/api/v1/namespaces/ns/persistentvolumeclaims/data")
    assert status == 200 and doc["kind"] == "PersistentVolumeClaim"
    assert doc["metadata"]["deletionTimestamp"] and doc["metadata"]["deletionGracePeriodSeconds"] == 0
    assert doc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    api.settle()
    assert api.obj("v1", "PersistentVolumeClaim", "data", "ns") is not None, "the pod still uses it"

    call(api, "DELETE", "/api/v1/namespaces/ns/pods/user")
    api.settle()
    assert api.obj("v1", "PersistentVolumeClaim", "data", "ns") is None
    assert api.obj("v1", "PersistentVolume", "data")["status"]["phase"] == "Released"  # type: ignore[index]


def test_a_bound_volume_stays_until_it_is_released(api: FakeKube) -> None:
    """Old fake: DELETE removed a Bound PersistentVolume at once (no pv-protection finalizer)."""
    bound_claim(api)
    status, doc = call(api, "DELETE", "/api/v1/persistentvolumes/data")
    assert status == 200 and doc["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    api.settle()
    assert api.obj("v1", "PersistentVolume", "data") is not None, "still Bound"
    call(api, "DELETE", "/api/v1/namespaces/ns/persistentvolumeclaims/data")
    api.settle()
    assert api.obj("v1", "PersistentVolume", "data") is None


def test_a_pod_on_a_node_is_deleted_gracefully(api: FakeKube) -> None:
    """Old fake: DELETE removed a running pod at once and answered it without deletionTimestamp."""
    status, created = call(api, "POST", "/api/v1/namespaces/ns/pods", pod("worker"))
    assert created["spec"]["terminationGracePeriodSeconds"] == 30, "SetDefaults_PodSpec"
    status, doc = call(api, "DELETE", "/api/v1/namespaces/ns/pods/worker")
    assert status == 200 and doc["kind"] == "Pod"
    assert doc["metadata"]["deletionGracePeriodSeconds"] == 30 and doc["metadata"]["deletionTimestamp"]
    assert call(api, "GET", "/api/v1/namespaces/ns/pods/worker")[0] == 404, "the node's kubelet finished it"


def test_a_pod_on_a_node_that_is_not_ready_stays_terminating(api: FakeKube) -> None:
    """Old fake: the pod was gone at once, whatever its node."""
    api.add_node("node-2")
    api.update_status("v1", "Node", "node-2", "", {"conditions": [{"type": "Ready", "status": "Unknown"}]})
    call(api, "POST", "/api/v1/namespaces/ns/pods", pod("stuck", node="node-2"))
    call(api, "DELETE", "/api/v1/namespaces/ns/pods/stuck?gracePeriodSeconds=5")
    api.settle()
    left = api.obj("v1", "Pod", "stuck", "ns")
    assert left is not None and left["metadata"]["deletionGracePeriodSeconds"] == 5
    status, _doc = call(api, "DELETE", "/api/v1/namespaces/ns/pods/stuck?gracePeriodSeconds=0")
    assert status == 200 and api.obj("v1", "Pod", "stuck", "ns") is None, "a zero grace period forces it"


def test_an_unscheduled_pod_goes_at_once(api: FakeKube) -> None:
    """CheckGracefulDelete: no node, no grace period."""
    call(api, "POST", "/api/v1/namespaces/ns/pods", pod("pending", node=None))
    status, doc = call(api, "DELETE", "/api/v1/namespaces/ns/pods/pending")
    assert status == 200 and doc["metadata"]["deletionGracePeriodSeconds"] == 0
    assert api.obj("v1", "Pod", "pending", "ns") is None


# --- 3. what DELETE answers ----------------------------------------------------------------------


@pytest.mark.parametrize("path, body, plural", [
    ("/api/v1/namespaces/ns/configmaps", configmap("c"), "configmaps"),
    ("/api/v1/namespaces/ns/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}}, "secrets"),
    ("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "c"}}, "nodes"),
])
def test_kinds_without_return_deleted_object_answer_a_success_status(api: FakeKube, path: str, body: dict[str, Any],
                                                                     plural: str) -> None:
    """Old fake: every DELETE answered the deleted object."""
    _status, created = call(api, "POST", path, body)
    status, doc = call(api, "DELETE", f"{path}/c")
    assert status == 200
    assert doc == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                   "details": {"name": "c", "kind": plural, "uid": created["metadata"]["uid"]}}


def test_a_custom_resource_delete_answers_a_status_with_its_group(api: FakeKube) -> None:
    """Old fake: the deleted HTTPRoute itself."""
    api.install_gateway_api()
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
             "spec": {"parentRefs": [{"name": "eg"}]}}
    _status, created = call(api, "POST", "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes", route)
    status, doc = call(api, "DELETE", "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/r")
    assert status == 200 and doc["details"] == {"name": "r", "group": "gateway.networking.k8s.io",
                                                "kind": "httproutes", "uid": created["metadata"]["uid"]}


def test_services_and_unprotected_claims_answer_the_object(api: FakeKube) -> None:
    """ReturnDeletedObject: true in the service and claim registries."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"port": 80}]}}
    call(api, "POST", "/api/v1/namespaces/ns/services", service)
    status, doc = call(api, "DELETE", "/api/v1/namespaces/ns/services/web")
    assert status == 200 and doc["kind"] == "Service" and doc["metadata"]["name"] == "web"


# --- 4. binding ------------------------------------------------------------------------------------


def test_a_claim_without_volume_name_binds_to_the_volume_reserved_for_it(api: FakeKube) -> None:
    """Old fake: a volume whose claimRef names the claim was never a candidate, so the claim stayed Pending."""
    call(api, "POST", "/api/v1/persistentvolumes", pv("big", size="5Gi"))
    call(api, "POST", "/api/v1/persistentvolumes", pv("reserved", size="9Gi", claim="data"))
    call(api, "POST", "/api/v1/namespaces/ns/persistentvolumeclaims", pvc("data"))
    claim = api.obj("v1", "PersistentVolumeClaim", "data", "ns")
    assert claim is not None and claim["status"]["phase"] == "Bound"
    assert claim["spec"]["volumeName"] == "reserved"


def test_the_volumes_with_the_fewest_access_modes_are_looked_at_first(api: FakeKube) -> None:
    """Old fake: the smallest volume whose modes include the claim's (here the RWO+ROX one of 1Gi)."""
    call(api, "POST", "/api/v1/persistentvolumes",
         pv("small-many", size="1Gi", modes=("ReadWriteOnce", "ReadOnlyMany")))
    call(api, "POST", "/api/v1/persistentvolumes", pv("large-one", size="8Gi"))
    call(api, "POST", "/api/v1/namespaces/ns/persistentvolumeclaims", pvc("data"))
    claim = api.obj("v1", "PersistentVolumeClaim", "data", "ns")
    assert claim is not None and claim["spec"]["volumeName"] == "large-one"


def test_a_claim_with_no_match_and_no_class_gets_the_failed_binding_event(api: FakeKube) -> None:
    """Old fake: the claim stayed Pending without an event."""
    call(api, "POST", "/api/v1/namespaces/ns/persistentvolumeclaims", pvc("data", storage_class=""))
    assert api.obj("v1", "PersistentVolumeClaim", "data", "ns")["status"]["phase"] == "Pending"  # type: ignore[index]
    assert events(api, "FailedBinding") == [
        "no persistent volumes available for this claim and no storage class is set"]


@pytest.mark.parametrize("volume, why", [
    (pv("data", modes=("ReadOnlyMany",)), "incompatible accessMode"),
    (pv("data", volumeMode="Block"), "incompatible volumeMode"),
    (pv("data", size="512Mi"), "requested PV is too small"),
])
def test_a_claim_naming_an_unfit_volume_stays_pending_with_volume_mismatch(api: FakeKube, volume: dict[str, Any],
                                                                           why: str) -> None:
    """checkVolumeSatisfyClaim, in the order of the source."""
    call(api, "POST", "/api/v1/persistentvolumes", volume)
    call(api, "POST", "/api/v1/namespaces/ns/persistentvolumeclaims", pvc("data", volume="data"))
    assert api.obj("v1", "PersistentVolumeClaim", "data", "ns")["status"]["phase"] == "Pending"  # type: ignore[index]
    assert events(api, "VolumeMismatch") == [f'Cannot bind to requested volume "data": {why}']


def test_volume_attributes_class_on_a_named_volume_is_refused_as_unverified(api: FakeKube) -> None:
    """Old fake: it compared volumeAttributesClassName there, which the checkVolumeSatisfyClaim read does not."""
    call(api, "POST", "/api/v1/persistentvolumes", pv("data", volumeAttributesClassName="gold"))
    call(api, "POST", "/api/v1/namespaces/ns/persistentvolumeclaims", pvc("data", volume="data"))
    assert any("volumeAttributesClassName" in u for u in api.unexpected)
    api.unexpected.clear()


# --- 5. 422 Invalid ------------------------------------------------------------------------------


def test_several_errors_are_joined_as_the_aggregate_prints_them_with_their_reasons(api: FakeKube) -> None:
    """Old fake: messages joined with '; ' and every cause reason FieldValueInvalid."""
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"},
           "spec": {"containers": [], "restartPolicy": "Sometimes"}}
    status, doc = call(api, "POST", "/api/v1/namespaces/ns/pods", bad)
    assert status == 422 and doc["reason"] == "Invalid"
    name_error = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    assert doc["message"] == (
        f'Pod "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": {name_error}, '
        'spec.containers: Required value, spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
        '"Always", "OnFailure", "Never"]')
    assert [(c["reason"], c["field"]) for c in doc["details"]["causes"]] == [
        ("FieldValueInvalid", "metadata.name"), ("FieldValueRequired", "spec.containers"),
        ("FieldValueNotSupported", "spec.restartPolicy")]
    assert doc["details"]["causes"][1]["message"] == "Required value"


def test_one_error_is_printed_without_brackets_and_forbidden_is_its_reason(api: FakeKube) -> None:
    """Old fake: the cause reason was FieldValueInvalid for a Forbidden error."""
    call(api, "POST", "/api/v1/persistentvolumes", pv("data"))
    status, doc = call(api, "PATCH", "/api/v1/persistentvolumes/data", {"spec": {"hostPath": {"path": "/other"}}},
                       "application/merge-patch+json")
    assert status == 422
    assert doc["message"] == ('PersistentVolume "data" is invalid: spec.persistentvolumesource: Forbidden: '
                              "spec.persistentvolumesource is immutable after creation")
    assert doc["details"]["causes"] == [{"reason": "FieldValueForbidden", "field": "spec.persistentvolumesource",
                                         "message": "Forbidden: spec.persistentvolumesource is immutable after "
                                                    "creation"}]


def test_names_follow_the_rule_of_their_kind_and_groups_show_in_the_kind() -> None:
    """Old fake: one subdomain rule for every kind, and the kind without its group."""
    api = FakeKube()
    status, doc = call(api, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": "a.b"}})
    assert status == 422 and doc["message"] == 'Namespace "a.b" is invalid: metadata.name: Invalid value: "a.b": ' \
                                               "must not contain dots"
    namespace(api, "ns")
    api.install_gateway_api()
    status, doc = call(api, "POST", "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes",
                       {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "X"}})
    assert status == 422 and doc["message"].startswith('HTTPRoute.gateway.networking.k8s.io "X" is invalid: ')


# --- 6. strategic merge patch --------------------------------------------------------------------


SMP = "application/strategic-merge-patch+json"


def test_strategic_merge_patch_merges_service_ports_by_port(api: FakeKube) -> None:
    """Old fake: a strategic merge patch replaced the whole list, dropping port 80."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                  {"name": "admin", "port": 8080, "protocol": "TCP"}]}}
    call(api, "POST", "/api/v1/namespaces/ns/services", service)
    status, doc = call(api, "PATCH", "/api/v1/namespaces/ns/services/web",
                       {"spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP"},
                                           {"port": 80, "name": "web"}]}}, SMP)
    assert status == 200, doc
    # mergeSlice's order: the patch's items in its order, the others where mergeSortedSlice puts them.
    assert doc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP"},
                                    {"name": "web", "port": 80, "protocol": "TCP"},
                                    {"name": "admin", "port": 8080, "protocol": "TCP"}]


def test_strategic_merge_patch_merges_containers_by_name_and_replaces_lists_without_a_strategy(api: FakeKube) -> None:
    """Old fake: containers replaced whole (the sidecar was lost)."""
    two = pod("web")
    two["spec"]["containers"].append({"name": "sidecar", "image": "envoy"})
    call(api, "POST", "/api/v1/namespaces/ns/pods", two)
    status, doc = call(api, "PATCH", "/api/v1/namespaces/ns/pods/web",
                       {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}}, SMP)
    assert status == 200
    assert [(c["name"], c["image"]) for c in doc["spec"]["containers"]] == [("main", "busybox:2"),
                                                                             ("sidecar", "envoy")]
    api.seed({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
              "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}})
    status, doc = call(api, "PATCH", "/api/v1/nodes/n", {"spec": {"taints": [{"key": "b", "effect": "NoSchedule"}]}},
                       SMP)
    assert status == 200 and doc["spec"]["taints"] == [{"key": "b", "effect": "NoSchedule"}]


def test_strategic_merge_patch_of_a_custom_resource_is_415(api: FakeKube) -> None:
    """Old fake: applied it as a merge patch and answered 200."""
    api.install_gateway_api()
    api.add_gateway("eg", "ns")
    status, doc = call(api, "PATCH", "/apis/gateway.networking.k8s.io/v1/namespaces/ns/gateways/eg",
                       {"spec": {"gatewayClassName": "other"}}, SMP)
    assert status == 415 and doc["reason"] == "UnsupportedMediaType"
    assert doc["message"] == ("the body of the request was in an unknown format - accepted media types include: "
                              "application/json-patch+json, application/merge-patch+json, "
                              "application/apply-patch+yaml")
    assert api.unexpected == [], "a faithful answer, not a gap of the fake"


def test_strategic_merge_patch_directives_are_refused_as_not_modelled(api: FakeKube) -> None:
    """Old fake: '$patch' was stored as a field."""
    call(api, "POST", "/api/v1/namespaces/ns/configmaps", configmap("c"))
    status, _doc = call(api, "PATCH", "/api/v1/namespaces/ns/configmaps/c", {"data": {"$patch": "replace"}}, SMP)
    assert status == 501 and len(api.unexpected) == 1
    api.unexpected.clear()


def test_what_o11yctl_sends_still_works(api: FakeKube) -> None:
    """o11yctl's own PATCHes: apply (apply-patch+yaml) and merge patch (clearing a stale claim uid)."""
    bound_claim(api)
    call(api, "DELETE", "/api/v1/namespaces/ns/persistentvolumeclaims/data")
    assert api.obj("v1", "PersistentVolume", "data")["status"]["phase"] == "Released"  # type: ignore[index]
    status, doc = call(api, "PATCH", "/api/v1/persistentvolumes/data?fieldManager=o11yctl",
                       {"spec": {"claimRef": {"uid": None, "resourceVersion": None}}}, "application/merge-patch+json")
    assert status == 200 and "uid" not in doc["spec"]["claimRef"]
    assert api.obj("v1", "PersistentVolume", "data")["status"]["phase"] == "Available"  # type: ignore[index]


# --- o11yctl against the real behaviour ----------------------------------------------------------


NAMESPACE_YAML = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n"


def deployer(lab: KubeLab, **options: Any) -> Deployer:
    from o11yctl.deploy.cluster import Deployer, DeployOptions
    from o11yctl.executors.kube import connect

    kube = connect(str(lab.kubeconfig))
    return Deployer(None, kube, None, {"00-namespace.yaml": NAMESPACE_YAML},  # type: ignore[arg-type]
                    options=DeployOptions(**options), sleep=lambda _s: None)


def ns_step(action: str) -> Step:
    from o11yctl.stack.plan import Step

    return Step("namespace", "namespace", action, "namespace ns", manifest="00-namespace.yaml")  # type: ignore[arg-type]


def test_deleting_the_namespace_waits_until_it_is_gone(fake_kube: KubeLab) -> None:
    """Before, the delete step returned while the namespace was still Terminating (a next install's claims got
    403). Now it polls until the API says 404."""
    api = fake_kube.api
    api.add_node("node-1")
    namespace(api, "ns")
    call(api, "POST", "/api/v1/namespaces/ns/pods", pod("loki-0"))
    result = deployer(fake_kube).delete_step(ns_step("delete"))
    assert result.outcome == "changed"
    assert api.obj("v1", "Namespace", "ns") is None


def test_a_namespace_that_does_not_go_is_named_with_what_holds_it(fake_kube: KubeLab) -> None:
    api = fake_kube.api
    namespace(api, "ns")
    call(api, "POST", "/api/v1/namespaces/ns/configmaps", configmap("held", finalizers=["example.com/hold"]))
    with pytest.raises(KubeError) as error:
        deployer(fake_kube, delete_timeout=0.0).delete_step(ns_step("delete"))
    assert "Namespace ns is still being deleted" in error.value.message
    assert "example.com/hold in 1 resource instances" in error.value.message


def test_installing_into_a_terminating_namespace_stops_before_changing_anything(fake_kube: KubeLab) -> None:
    """Before, the namespace apply succeeded and the claims then failed with a 403 that o11yctl explained as
    missing permissions."""
    api = fake_kube.api
    namespace(api, "ns")
    call(api, "POST", "/api/v1/namespaces/ns/configmaps", configmap("held", finalizers=["example.com/hold"]))
    call(api, "DELETE", "/api/v1/namespaces/ns")
    with pytest.raises(KubeError) as error:
        deployer(fake_kube).apply_step(ns_step("apply"))
    assert "namespace ns is being deleted (Terminating)" in error.value.message
    assert api.mutations[-1] == ("DELETE", "v1/namespaces/ns"), "nothing applied"


def test_the_403_of_a_terminating_namespace_is_not_explained_as_permissions(fake_kube: KubeLab) -> None:
    from o11yctl.executors.kube import connect

    api = fake_kube.api
    namespace(api, "ns")
    call(api, "POST", "/api/v1/namespaces/ns/configmaps", configmap("held", finalizers=["example.com/hold"]))
    call(api, "DELETE", "/api/v1/namespaces/ns")
    with pytest.raises(KubeError) as error:
        connect(str(fake_kube.kubeconfig)).create(configmap("new", namespace="ns"))
    assert "because it is being terminated (HTTP 403)" in error.value.message
    assert "being deleted (Terminating)" in (error.value.hint or "")
    assert error.value.exit_code != 3
