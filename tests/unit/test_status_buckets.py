"""`status`'s object store part: each bucket's usage from the SeaweedFS master's `/vol/status`, and the
master's failures said as the API server or the master said them.

Pure: the document of tests/data/seaweedfs/vol-status.json (built from SeaweedFS's source at tag 4.44),
and variations of it, in; the buckets part (also `status --json`'s) out.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from o11yctl.errors import O11yError
from o11yctl.status.buckets import bucket_usage, collection_of, external_part, in_cluster_part, volume_servers
from o11yctl.status.read import master_error

DATA = Path(__file__).resolve().parents[1] / "data"
VOL_STATUS = json.loads((DATA / "seaweedfs" / "vol-status.json").read_text())
KUBE = json.loads((DATA / "kube" / "kubelet-unreachable.json").read_text())
BUCKETS = ("loki-chunks", "loki-ruler", "tempo-traces")
#: weed/storage/volume_info.go at tag 4.44: the fields of VolumeInfo, in order (no JSON tags).
VOLUME_INFO_FIELDS = ["Collection", "DiskType", "RemoteStorageName", "ReplicaPlacement", "Ttl", "Size",
                      "DeletedByteCount", "ModifiedAtSecond", "Id", "DiskId", "CompactRevision", "FileCount",
                      "DeleteCount", "Version", "ReadOnly"]
NODE = "seaweedfs-volume-node-{}-0.seaweedfs-volume-node-{}.logging:8080"


def volume(vid: int, collection: str, size: int, *, files: int = 10, deletes: int = 0, deleted: int = 0,
           read_only: bool = False) -> dict[str, Any]:
    """One VolumeInfo as the master lists it (replication 001)."""
    return {"Collection": collection, "DiskType": "", "RemoteStorageName": "", "ReplicaPlacement": {"node": 1},
            "Ttl": {"Count": 0, "Unit": 0}, "Size": size, "DeletedByteCount": deleted,
            "ModifiedAtSecond": 1767254400, "Id": vid, "DiskId": 0, "CompactRevision": 0, "FileCount": files,
            "DeleteCount": deletes, "Version": 3, "ReadOnly": read_only}


def document(*servers: list[dict[str, Any]], max_slots: int = 300) -> dict[str, Any]:
    listed = {NODE.format(n, n): vols for n, vols in enumerate(servers, 1)}
    held = sum(len(v) for v in servers)
    return {"Version": "30GB 4.44 3563738", "Volumes": {"DataCenters": {"DefaultDataCenter": {"DefaultRack": listed}},
                                                        "Free": max_slots - held, "Max": max_slots}}


def by_bucket(usage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["bucket"]: row for row in usage["buckets"]}


def test_the_test_document_has_the_shape_the_source_gives() -> None:
    """Every copy carries exactly VolumeInfo's fields; the slot counts agree with the copies listed
    (weed/topology/disk.go DiskUsageCounts.FreeSpace: max + remote - volumes - EC slots)."""
    copies = [c for _server, held in volume_servers(VOL_STATUS) for c in held]
    assert copies and all(list(c) == VOLUME_INFO_FIELDS for c in copies)
    assert VOL_STATUS["Volumes"]["Max"] - VOL_STATUS["Volumes"]["Free"] == len(copies)
    assert {c["Collection"] for c in copies} == {"loki-chunks", "tempo-traces", ""}


def test_each_volume_counts_once_for_the_logical_size_and_every_copy_for_the_disks() -> None:
    usage = bucket_usage(VOL_STATUS, BUCKETS)
    rows = by_bucket(usage)
    assert [r["bucket"] for r in usage["buckets"]] == list(BUCKETS)
    chunks = rows["loki-chunks"]
    # volumes 1 and 2, each on two nodes
    assert (chunks["volumes"], chunks["copies"]) == (2, 4)
    assert chunks["logical_bytes"] == 83886432 + 79692016
    assert chunks["bytes_with_copies"] == 2 * (83886432 + 79692016)
    assert chunks["deleted_bytes"] == 7340640
    assert chunks["files"] == (412 - 37) + 398
    traces = rows["tempo-traces"]
    assert (traces["volumes"], traces["logical_bytes"], traces["bytes_with_copies"]) == (
        2, 31457800 + 29360136, 2 * (31457800 + 29360136))
    assert (traces["deleted_bytes"], traces["files"]) == (3932200, (64 - 8) + 60)
    assert usage["volume_slots"] == {"max": 300, "free": 288}
    assert usage["volume_servers"] == 3


def test_a_bucket_without_a_volume_yet_reads_zero() -> None:
    ruler = by_bucket(bucket_usage(VOL_STATUS, BUCKETS))["loki-ruler"]
    assert ruler == {"bucket": "loki-ruler", "collection": "loki-ruler", "volumes": 0, "copies": 0,
                     "logical_bytes": 0, "bytes_with_copies": 0, "deleted_bytes": 0, "files": 0,
                     "read_only_volumes": 0}


def test_volumes_of_other_collections_are_left_out() -> None:
    # collection "" (the filer's metadata log) and a bucket made by hand; "loki" is no prefix match
    doc = document([volume(1, "", 5000), volume(2, "scratch", 7000), volume(3, "loki-chunks", 100)],
                   [volume(1, "", 5000), volume(3, "loki-chunks", 100)])
    rows = by_bucket(bucket_usage(doc, ["loki-chunks", "loki"]))
    assert (rows["loki-chunks"]["logical_bytes"], rows["loki-chunks"]["bytes_with_copies"]) == (100, 200)
    assert rows["loki"]["volumes"] == 0 and rows["loki"]["logical_bytes"] == 0


def test_copies_a_heartbeat_apart_the_larger_copy_speaks_for_the_volume() -> None:
    behind = volume(7, "tempo-traces", 1000, files=9, deletes=1, deleted=50)
    ahead = volume(7, "tempo-traces", 1200, files=11, deletes=2, deleted=80)
    row = by_bucket(bucket_usage(document([behind], [ahead]), ["tempo-traces"]))["tempo-traces"]
    assert (row["volumes"], row["copies"]) == (1, 2)
    assert row["logical_bytes"] == 1200 and row["bytes_with_copies"] == 2200
    assert (row["files"], row["deleted_bytes"]) == (9, 80)


def test_deleted_data_counts_in_the_size_until_vacuumed_and_files_never_go_negative() -> None:
    doc = document([volume(1, "loki-chunks", 9000, files=100, deletes=40, deleted=3600),
                    volume(2, "loki-chunks", 8, files=3, deletes=5)])
    row = by_bucket(bucket_usage(doc, ["loki-chunks"]))["loki-chunks"]
    assert row["logical_bytes"] == 9008  # Size still holds the 3600 deleted bytes
    assert row["deleted_bytes"] == 3600
    assert row["files"] == 60


def test_a_volume_with_a_read_only_copy_is_counted_read_only() -> None:
    doc = document([volume(1, "loki-chunks", 10, read_only=True), volume(2, "loki-chunks", 10)],
                   [volume(1, "loki-chunks", 10), volume(2, "loki-chunks", 10)])
    assert by_bucket(bucket_usage(doc, ["loki-chunks"]))["loki-chunks"]["read_only_volumes"] == 1


def test_a_bucket_named_twice_is_one_row() -> None:
    usage = bucket_usage(VOL_STATUS, ["loki-chunks", "loki-chunks", "tempo-traces"])
    assert [r["bucket"] for r in usage["buckets"]] == ["loki-chunks", "tempo-traces"]


def test_a_filer_group_prefixes_the_collection() -> None:
    assert collection_of("loki-chunks") == "loki-chunks"
    assert collection_of("loki-chunks", "g1") == "g1_loki-chunks"
    doc = document([volume(1, "g1_loki-chunks", 10), volume(2, "loki-chunks", 99)])
    row = bucket_usage(doc, ["loki-chunks"], filer_group="g1")["buckets"][0]
    assert (row["collection"], row["logical_bytes"]) == ("g1_loki-chunks", 10)


def test_a_master_that_knows_no_volume_server_yet_says_so() -> None:
    empty = {"Version": "30GB 4.44 3563738", "Volumes": {"DataCenters": {}, "Free": 0, "Max": 0}}
    part = in_cluster_part(empty, BUCKETS, source="svc/seaweedfs-master:9333/vol/status")
    assert part["reported"] and part["volume_servers"] == 0
    assert all(r["logical_bytes"] == 0 and r["volumes"] == 0 for r in part["usage"])
    assert part["note"] == "the store's master lists no volume server yet, so every bucket reads 0"
    assert part["volume_slots"] == {"max": 0, "free": 0}
    read = in_cluster_part(VOL_STATUS, BUCKETS, source="s")
    assert "deleted data included until the store vacuums the volume" in read["note"]


def test_a_document_without_slot_counts_has_none() -> None:
    doc = copy.deepcopy(VOL_STATUS)
    del doc["Volumes"]["Max"]
    assert bucket_usage(doc, BUCKETS)["volume_slots"] is None


@pytest.mark.parametrize("doc", [{"error": "no leader"}, {"Volumes": {"Max": 3}}, [],
                                 json.loads((DATA / "seaweedfs" / "filer-list-buckets.json").read_text())])
def test_anything_but_the_masters_volume_document_is_refused(doc: Any) -> None:
    with pytest.raises(O11yError, match="did not answer its /vol/status document"):
        bucket_usage(doc, BUCKETS)


def test_an_external_store_does_not_report_usage_and_that_is_no_failure() -> None:
    part = external_part("https://s3.lan:9000", ["loki-chunks", "loki-ruler", "tempo-traces", "loki-chunks"])
    assert part["reported"] is False and part["usage"] is None
    assert part["buckets"] == list(BUCKETS)
    assert part["note"] == ("the external store (https://s3.lan:9000) does not report bucket usage; its own console "
                            "or metrics do")


def _status(name: str, **values: str) -> bytes:
    doc = json.loads(json.dumps(KUBE["answers"][name]["body"]))
    doc["message"] = doc["message"].format(**values)
    return json.dumps(doc).encode()


def test_the_masters_failures_are_said_as_the_api_server_or_the_master_said_them() -> None:
    service = "svc/seaweedfs-master:9333"
    none = master_error(503, _status("service_proxy_no_endpoints", service="seaweedfs-master"),
                        namespace="logging", service=service)
    assert none.message == ("the Kubernetes API server answered for svc/seaweedfs-master:9333: HTTP 503 "
                            'ServiceUnavailable: no endpoints available for service "seaweedfs-master"')
    assert none.hint is not None and "app.kubernetes.io/component=master" in none.hint
    assert "cluster.pods.store" in none.hint
    unreachable = master_error(503, _status("service_proxy_unreachable", pod_address="10.42.1.7:9333",
                                            why="i/o timeout"), namespace="logging", service=service)
    assert "dial tcp 10.42.1.7:9333: i/o timeout" in unreachable.message
    assert unreachable.hint is not None and "fix-vxlan" in unreachable.hint
    missing = master_error(404, b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services '
                                b'\\"seaweedfs-master\\" not found","reason":"NotFound","code":404}',
                           namespace="logging", service=service)
    assert missing.message.endswith('HTTP 404 NotFound: services "seaweedfs-master" not found')
    assert missing.hint is not None and "o11yctl install" in missing.hint
    # the master's own answers (weed/server/master_server.go proxyToLeader): httputil.ReverseProxy's empty 502
    # when the leader does not answer, writeJsonError's {"error": ...} when the leader's address does not parse
    assert master_error(502, b"", namespace="logging", service=service).message == (
        "the store's master answered HTTP 502 for /vol/status")
    error = "Leader URL http://[fd00::1:9333 Parse Error: parse \"http://[fd00::1:9333\": missing ']' in host"
    said = master_error(500, json.dumps({"error": error}).encode(), namespace="logging", service=service)
    assert said.message == f"the store's master answered HTTP 500 for /vol/status: {error}"
    assert said.hint is not None and "Raft leader" in said.hint
