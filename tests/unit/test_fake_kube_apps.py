"""The fake API server's apps/v1 StatefulSets behave as the Kubernetes source says (tests/lab/fake_kube.py,
``_AppsV1``; sources in tests/data/kube/README.md): the scale subresource, the statefulset controller scaling
down and up, the scheduler's binding of the pods it creates, and what the fake refuses.

These test the lab itself. Requests go to FakeKube.handle in-process, as the HTTPS server passes them; like
the server, handle runs one pass of the fake's controllers after each request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.lab.fake_kube import TOKEN, FakeKube, KubeletPod

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NS = "logging"
SCALE = f"/apis/apps/v1/namespaces/{NS}/statefulsets/loki/scale"


def call(api: FakeKube, method: str, path: str, body: Any = None, content_type: str = "application/json",
         query: str = "") -> tuple[int, dict[str, Any]]:
    data = b"" if body is None else json.dumps(body).encode()
    status, _type, raw = api.handle(method, path + (f"?{query}" if query else ""),
                                    {**AUTH, "Content-Type": content_type}, data)
    return status, json.loads(raw)


def cluster(policy: str = "Parallel", replicas: int = 1) -> FakeKube:
    """node-1, node-2 (hardware=heavy, tainted), a bound claim on a volume pinned to node-2, and a StatefulSet
    whose pod loki-0 runs there (made before the set, as an orphan it adopts)."""
    api = FakeKube()
    api.seed_runbook_cluster()
    api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.seed({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "loki-pv"},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                       "storageClassName": "local-storage", "persistentVolumeReclaimPolicy": "Retain",
                       "local": {"path": "/data/loki"},
                       "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": NS,
                                    "name": "loki-pvc"},
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]}]}]}}}})
    api.seed({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "loki-pvc", "namespace": NS},
              "spec": {"storageClassName": "local-storage", "volumeName": "loki-pv", "accessModes": ["ReadWriteOnce"],
                       "resources": {"requests": {"storage": "1Gi"}}}})
    labels = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki"}
    template = {"metadata": {"labels": labels},
                "spec": {"nodeSelector": {"hardware": "heavy"},
                         "tolerations": [{"key": "heavy", "operator": "Equal", "value": "true",
                                          "effect": "NoSchedule"}],
                         "containers": [{"name": "loki", "image": "grafana/loki"}],
                         "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "loki-pvc"}}]}}
    api.add_pod(NS, "loki-0", labels=labels, node="node-2")
    api.add_pod(NS, "loki-canary", labels=labels, node="node-2")  # not named <set>-<ordinal>: not the set's
    api.add_statefulset({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "loki", "namespace": NS},
                         "spec": {"replicas": replicas, "podManagementPolicy": policy, "serviceName": "loki-headless",
                                  "selector": {"matchLabels": labels}, "template": template}})
    api.settle()
    return api


def pods(api: FakeKube) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in api.objects("Pod")}


def test_defaults_adoption_and_the_scale_of_a_statefulset() -> None:
    api = cluster()
    sts = api.obj("apps/v1", "StatefulSet", "loki", NS)
    assert sts is not None
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert sts["spec"]["revisionHistoryLimit"] == 10
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    owners = {n: [r["name"] for r in p["metadata"].get("ownerReferences") or []] for n, p in pods(api).items()}
    assert owners == {"loki-0": ["loki"], "loki-canary": []}
    status, scale = call(api, "GET", SCALE)
    assert status == 200
    assert scale == {"kind": "Scale", "apiVersion": "autoscaling/v1",
                     "metadata": {"name": "loki", "namespace": NS, "uid": sts["metadata"]["uid"],
                                  "resourceVersion": scale["metadata"]["resourceVersion"],
                                  "creationTimestamp": sts["metadata"]["creationTimestamp"]},
                     "spec": {"replicas": 1},
                     "status": {"replicas": 1,
                                "selector": "app.kubernetes.io/instance=loki,app.kubernetes.io/name=loki"}}


def test_scaling_to_zero_deletes_the_pods_and_back_up_creates_them_on_the_node_of_the_volume() -> None:
    api = cluster()
    started: list[str] = []

    def kubelet(pod: KubeletPod) -> None:
        started.append(f"{pod.name} on {pod.node}")
        pod.running(pod_ip="10.42.1.9")

    api.on_pod_created(kubelet, label_selector="app.kubernetes.io/instance=loki")
    status, scale = call(api, "PATCH", SCALE, {"spec": {"replicas": 0}}, "application/merge-patch+json",
                         "fieldManager=o11yctl")
    assert status == 200 and scale["spec"]["replicas"] == 0
    assert pods(api)["loki-0"]["metadata"]["deletionTimestamp"]  # graceful: the kubelet ends it
    api.settle()
    assert set(pods(api)) == {"loki-canary"}
    sts = api.obj("apps/v1", "StatefulSet", "loki", NS)
    assert sts is not None and sts["status"]["replicas"] == 0
    entry = next(m for m in sts["metadata"]["managedFields"] if m["manager"] == "o11yctl")
    assert (entry["operation"], entry["subresource"], entry["fieldsV1"]) == (
        "Update", "scale", {"f:spec": {"f:replicas": {}}})

    status, _ = call(api, "PATCH", SCALE, {"spec": {"replicas": 1}}, "application/merge-patch+json")
    assert status == 200
    api.settle()
    for hook_thread in api._hook_threads:
        hook_thread.join(5)
    pod = pods(api)["loki-0"]
    assert started == ["loki-0 on node-2"]
    assert pod["spec"]["nodeName"] == "node-2" and pod["spec"]["hostname"] == "loki-0"
    assert pod["spec"]["subdomain"] == "loki-headless"
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "loki-pvc"}}]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert pod["status"]["phase"] == "Running"
    api.settle()
    sts = api.obj("apps/v1", "StatefulSet", "loki", NS)
    assert sts is not None and (sts["status"]["replicas"], sts["status"]["readyReplicas"]) == (1, 1)
    api.check_clean()


def test_ordered_ready_creates_one_pod_at_a_time_and_deletes_from_the_highest() -> None:
    api = cluster(policy="OrderedReady")
    call(api, "PATCH", SCALE, {"spec": {"replicas": 3}}, "application/merge-patch+json")
    api.settle()
    assert sorted(pods(api)) == ["loki-0", "loki-1", "loki-canary"]  # loki-1 waits to be Ready before loki-2
    assert pods(api)["loki-1"]["status"]["phase"] == "Pending"
    api.update_status("v1", "Pod", "loki-1", NS, {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]}, manager="kubelet")
    api.settle()
    assert sorted(pods(api)) == ["loki-0", "loki-1", "loki-2", "loki-canary"]
    api.update_status("v1", "Pod", "loki-2", NS, {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]}, manager="kubelet")
    call(api, "PATCH", SCALE, {"spec": {"replicas": 1}}, "application/merge-patch+json")
    assert pods(api)["loki-2"]["metadata"].get("deletionTimestamp")
    assert not pods(api)["loki-1"]["metadata"].get("deletionTimestamp"), "one at a time, from the highest"
    api.settle()
    assert sorted(pods(api)) == ["loki-0", "loki-canary"]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"spec": {"replicas": -1}}, 422,
     'Scale.autoscaling "loki" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'),
    ({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 2}}, 409,
     'Operation cannot be fulfilled on statefulsets.apps "loki": the object has been modified'),
    ({"metadata": {"uid": "other"}, "spec": {"replicas": 2}}, 409, "Precondition failed: UID in precondition: other"),
])
def test_the_scale_subresource_refuses_as_the_registry_does(body: dict[str, Any], status: int, words: str) -> None:
    api = cluster()
    got, doc = call(api, "PATCH", SCALE, body, "application/merge-patch+json")
    assert (got, doc["kind"]) == (status, "Status") and words in doc["message"]
    sts = api.obj("apps/v1", "StatefulSet", "loki", NS)
    assert sts is not None and sts["spec"]["replicas"] == 1


def test_a_put_of_the_scale_without_a_resource_version_is_unconditional() -> None:
    api = cluster()
    status, scale = call(api, "PUT", SCALE, {"apiVersion": "autoscaling/v1", "kind": "Scale",
                                             "metadata": {"name": "loki", "namespace": NS}, "spec": {"replicas": 0}})
    assert status == 200 and scale["spec"]["replicas"] == 0


def test_what_the_fake_does_not_model_is_refused() -> None:
    api = cluster()
    status, _ = call(api, "DELETE", f"/apis/apps/v1/namespaces/{NS}/statefulsets/loki")
    assert status == 501
    status, _ = call(api, "PATCH", f"/apis/apps/v1/namespaces/{NS}/statefulsets/loki",
                     {"spec": {"serviceName": "other"}}, "application/merge-patch+json")
    assert status == 501
    status, _ = call(api, "PATCH", SCALE, [{"op": "replace", "path": "/spec/replicas", "value": 0}],
                     "application/json-patch+json")
    assert status == 415
    assert len(api.unexpected) == 3
    api.unexpected.clear()
    # the set's annotations and replicas may change through the object itself
    status, sts = call(api, "PATCH", f"/apis/apps/v1/namespaces/{NS}/statefulsets/loki",
                       {"metadata": {"annotations": {"a": "1"}}, "spec": {"replicas": 1}},
                       "application/merge-patch+json")
    assert status == 200 and sts["metadata"]["annotations"] == {"a": "1"}
    api.check_clean()


def test_an_orphan_deletion_keeps_the_pods_and_a_new_set_adopts_them() -> None:
    api = cluster()
    pod_uid = api.obj("v1", "Pod", "loki-0", NS)["metadata"]["uid"]  # type: ignore[index]
    set_uid = api.obj("apps/v1", "StatefulSet", "loki", NS)["metadata"]["uid"]  # type: ignore[index]
    # deletionFinalizersForGarbageCollection: the `orphan` finalizer; the object is answered while it waits
    status, answer = call(api, "DELETE", f"/apis/apps/v1/namespaces/{NS}/statefulsets/loki",
                          {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"})
    assert status == 200 and answer["kind"] == "StatefulSet"
    assert answer["metadata"]["finalizers"] == ["orphan"] and answer["metadata"]["deletionTimestamp"]
    # the garbage collector's next pass: the pod loses its owner, the finalizer goes, and with it the set
    api.settle()
    assert api.obj("apps/v1", "StatefulSet", "loki", NS) is None
    pod = api.obj("v1", "Pod", "loki-0", NS)
    assert pod is not None and pod["metadata"]["uid"] == pod_uid and "ownerReferences" not in pod["metadata"]
    assert pod["status"]["phase"] == "Running"
    assert api.obj("v1", "PersistentVolumeClaim", "loki-pvc", NS) is not None
    # a new set of the same name and selector adopts the orphan (ClaimPods), as the next release's would
    labels = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki"}
    api.add_statefulset({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "loki", "namespace": NS},
                         "spec": {"replicas": 1, "podManagementPolicy": "Parallel", "serviceName": "loki-headless",
                                  "selector": {"matchLabels": labels},
                                  "template": {"metadata": {"labels": labels},
                                               "spec": {"containers": [{"name": "loki", "image": "grafana/loki"}]}}}})
    api.settle()
    owner = api.obj("v1", "Pod", "loki-0", NS)["metadata"]["ownerReferences"]  # type: ignore[index]
    new_uid = api.obj("apps/v1", "StatefulSet", "loki", NS)["metadata"]["uid"]  # type: ignore[index]
    assert [r["uid"] for r in owner] == [new_uid] and new_uid != set_uid
    api.check_clean()


def test_a_statefulset_deleted_with_its_pods_is_not_modelled() -> None:
    api = cluster()
    status, _ = call(api, "DELETE", f"/apis/apps/v1/namespaces/{NS}/statefulsets/loki",
                     {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"})
    assert status == 501 and len(api.unexpected) == 1
    assert api.obj("apps/v1", "StatefulSet", "loki", NS) is not None
