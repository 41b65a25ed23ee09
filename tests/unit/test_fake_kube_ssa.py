"""The fake API server's server-side apply follows the real merge rules, read from the real schemas.

These test the lab itself (tests/lab/smd.py, tests/lab/fake_kube.py): the merge strategy of each
field comes from the OpenAPI documents under tests/data/openapi, and apply, update, conflicts and
removal behave as structured-merge-diff (the library inside the API server) makes them behave.
The requests go to FakeKube.handle in-process, as the HTTP server would pass them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.lab import smd
from tests.lab.fake_kube import TOKEN, FakeKube

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _schema() -> smd.Schema:
    return smd.Schema.load()


def test_claim_ref_is_granular_although_object_reference_is_atomic() -> None:
    schema = _schema()
    assert schema.relationship("", "v1", "PersistentVolume", "spec", "claimRef") == "granular"
    assert schema.relationship("", "v1", "Event", "involvedObject") == "atomic"
    assert schema.named("io.k8s.api.core.v1.ObjectReference").atomic  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind, path, expected", [
    ("PersistentVolume", ("spec", "accessModes"), "atomic"),
    ("Node", ("spec", "taints"), "atomic"),
    ("PersistentVolume", ("metadata", "labels"), "granular"),
    ("PersistentVolume", ("metadata", "finalizers"), "set"),
    ("PersistentVolume", ("metadata", "ownerReferences"), "map"),
    ("Service", ("spec", "ports"), "map"),
    ("PersistentVolume", ("spec", "nodeAffinity", "required", "nodeSelectorTerms"), "atomic"),
])
def test_markers_are_read_from_the_real_schema(kind: str, path: tuple[str, ...], expected: str) -> None:
    assert _schema().relationship("", "v1", kind, *path) == expected


def test_the_httproute_crd_schema_decides_how_its_lists_merge() -> None:
    crd = smd.load_crd("gateway.networking.k8s.io_httproutes.yaml")
    root = _schema().for_kind("gateway.networking.k8s.io", "v1", "HTTPRoute", smd.load_crd_schema(crd, "v1"))
    spec = root.child("spec")  # type: ignore[attr-defined]
    assert isinstance(spec, smd.MapType)
    assert isinstance(spec.fields["parentRefs"], smd.ListType) and spec.fields["parentRefs"].kind == "atomic"
    assert isinstance(spec.fields["rules"], smd.ListType) and spec.fields["rules"].kind == "atomic"


# --- the server's behaviour, request by request ---------------------------------------------------


def _apply(api: FakeKube, obj: dict[str, Any], manager: str, *, force: bool = False) -> tuple[int, dict[str, Any]]:
    path = f"/api/v1/persistentvolumes/{obj['metadata']['name']}?fieldManager={manager}&force={str(force).lower()}"
    status, _type, body = api.handle("PATCH", path, {**AUTH, "Content-Type": "application/apply-patch+yaml"},
                                     json.dumps(obj).encode())
    return status, json.loads(body)


def _update(api: FakeKube, name: str, patch: dict[str, Any], manager: str) -> dict[str, Any]:
    status, _type, body = api.handle("PATCH", f"/api/v1/persistentvolumes/{name}?fieldManager={manager}",
                                     {**AUTH, "Content-Type": "application/merge-patch+json"},
                                     json.dumps(patch).encode())
    assert status == 200, body
    return dict(json.loads(body))


def _pv(**spec: Any) -> dict[str, Any]:
    base = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local-storage",
            "hostPath": {"path": "/data"}}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1", "labels": {"a": "1"}},
            "spec": {**base, **spec}}


def _fields(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    entries = [e for e in obj["metadata"]["managedFields"] if e["manager"] == manager]
    assert len(entries) == 1, obj["metadata"]["managedFields"]
    return dict(entries[0]["fieldsV1"])


def test_a_field_another_manager_added_stays_when_the_applier_reapplies() -> None:
    api = FakeKube()
    ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "ns", "name": "c"}
    status, _created = _apply(api, _pv(claimRef=ref), "o11yctl")
    assert status == 201
    bound = _update(api, "pv1", {"spec": {"claimRef": {"uid": "1234"}}}, "kube-controller-manager")
    assert _fields(bound, "kube-controller-manager") == {"f:spec": {"f:claimRef": {"f:uid": {}}}}
    status, again = _apply(api, _pv(claimRef=ref), "o11yctl")
    assert status == 200
    assert again["spec"]["claimRef"] == {**ref, "uid": "1234"}
    assert again["metadata"]["resourceVersion"] == bound["metadata"]["resourceVersion"], "a no-op apply writes nothing"


def test_leaving_a_field_out_removes_it_unless_another_manager_owns_part_of_it() -> None:
    api = FakeKube()
    ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "ns", "name": "c"}
    _apply(api, _pv(claimRef=ref), "o11yctl")
    _update(api, "pv1", {"spec": {"claimRef": {"uid": "1234"}}}, "kube-controller-manager")
    _status, after = _apply(api, _pv(), "o11yctl")
    assert after["spec"]["claimRef"] == {"uid": "1234"}, "what the real server did to the re-run in the issue"
    _status, relabelled = _apply(api, {**_pv(), "metadata": {"name": "pv1"}}, "o11yctl")
    assert "labels" not in relabelled["metadata"]


def test_a_second_applier_conflicts_and_force_takes_the_field_over() -> None:
    api = FakeKube()
    _apply(api, _pv(), "o11yctl")
    status, doc = _apply(api, _pv(storageClassName="other"), "kubectl")
    assert status == 409 and doc["reason"] == "Conflict"
    assert doc["message"] == 'Apply failed with 1 conflict: conflict with "o11yctl": .spec.storageClassName'
    assert doc["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "o11yctl"',
                                         "field": ".spec.storageClassName"}]
    status, doc = _apply(api, _pv(storageClassName="other"), "kubectl", force=True)
    assert status == 200 and doc["spec"]["storageClassName"] == "other"
    assert "f:storageClassName" not in _fields(doc, "o11yctl")["f:spec"]


def test_the_same_value_from_two_appliers_is_owned_by_both_without_conflict() -> None:
    api = FakeKube()
    _apply(api, _pv(), "o11yctl")
    status, doc = _apply(api, _pv(), "kubectl")
    assert status == 200
    assert "f:storageClassName" in _fields(doc, "o11yctl")["f:spec"]
    assert "f:storageClassName" in _fields(doc, "kubectl")["f:spec"]


def test_an_update_by_another_manager_takes_the_changed_field() -> None:
    api = FakeKube()
    _apply(api, _pv(), "o11yctl")
    doc = _update(api, "pv1", {"spec": {"storageClassName": "by-hand"}}, "kubectl-edit")
    assert "f:storageClassName" not in _fields(doc, "o11yctl")["f:spec"]
    assert _fields(doc, "kubectl-edit") == {"f:spec": {"f:storageClassName": {}}}
    status, _doc = _apply(api, _pv(), "o11yctl")
    assert status == 409, "the field is kubectl-edit's now: applying the old value conflicts"


def test_atomic_lists_are_replaced_whole() -> None:
    api = FakeKube()
    _apply(api, _pv(accessModes=["ReadWriteOnce", "ReadOnlyMany"]), "o11yctl")
    _status, doc = _apply(api, _pv(accessModes=["ReadWriteOnce"]), "o11yctl")
    assert doc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert _fields(doc, "o11yctl")["f:spec"]["f:accessModes"] == {}
