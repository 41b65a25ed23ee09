"""Profile scalable: how much each bucket holds in the in-cluster store, from its master's ``/vol/status``. Pure.

SeaweedFS keeps objects in volumes (files of up to ``volumeSizeLimitMB``), each volume in one
collection, each copy of it on a volume server. The S3 gateway writes a bucket's objects under the
filer's ``/buckets/<bucket>/``, and the filer puts what is written there in the collection named
after the bucket (seaweedfs at tag 4.44: weed/server/filer_server_handlers_write.go
``detectStorageOption`` takes ``Filer.DetectBucket`` of the path when neither the request nor a
filer.conf rule names a collection; weed/s3api/filer_util.go ``getCollectionName`` is
``<filerGroup>_<bucket>`` only with a filer group, which the chart leaves empty). The store's
own metadata log is in collection ``""``; no bucket names it.

The master's ``GET /vol/status`` (weed/server/master_server_handlers_admin.go
``volumeStatusHandler``, weed/topology/topology_info.go ``ToVolumeMap``) answers::

    {"Version": "...",
     "Volumes": {"Max": <slots>, "Free": <slots>,
                 "DataCenters": {<dc>: {<rack>: {<volume server>: [<VolumeInfo>, ...]}}}}}

one ``VolumeInfo`` (weed/storage/volume_info.go, no JSON tags, so Go's field names) per copy:
a volume kept on two nodes (replication ``001``) is listed under both. What a bucket "uses" here
is ``Size``, the size of the volume's data file: it still counts what was deleted
(``DeletedByteCount``) until the master vacuums the volume (by default once over 30% of it is
garbage). ``FileCount`` and ``DeleteCount`` count the store's files (needles): an S3 object is one
or more of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from o11yctl.errors import O11yError

#: The master's Service and HTTP port (chart 4.44.0: templates/master/master-service.yaml, values
#: master.port; the Service is named ``<release>-master`` and the release is ``seaweedfs``).
MASTER_SERVICE = "seaweedfs-master"
MASTER_PORT = 9333
VOL_STATUS_PATH = "/vol/status"


def collection_of(bucket: str, filer_group: str = "") -> str:
    """The volume collection that holds a bucket's objects: the bucket's name (``<group>_<bucket>`` in a
    filer group, as weed/s3api/filer_util.go ``getCollectionName``)."""
    return f"{filer_group}_{bucket}" if filer_group else bucket


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def volume_servers(doc: Mapping[str, Any]) -> Iterator[tuple[str, list[Mapping[str, Any]]]]:
    """Every volume server in a ``/vol/status`` document, with the volume copies it holds.

    Raises:
        O11yError: the document is not the master's ``/vol/status`` answer.
    """
    volumes = doc.get("Volumes") if isinstance(doc, Mapping) else None
    centers = volumes.get("DataCenters") if isinstance(volumes, Mapping) else None
    if not isinstance(centers, Mapping):
        raise O11yError("the store's master did not answer its /vol/status document (no Volumes.DataCenters)",
                        hint=f"is svc/{MASTER_SERVICE}:{MASTER_PORT} the SeaweedFS master?")
    for racks in centers.values():
        if not isinstance(racks, Mapping):
            continue
        for servers in racks.values():
            if not isinstance(servers, Mapping):
                continue
            for server, copies in servers.items():
                listed = copies if isinstance(copies, list) else []
                yield str(server), [c for c in listed if isinstance(c, Mapping) and isinstance(c.get("Id"), int)]


def bucket_usage(doc: Mapping[str, Any], buckets: Sequence[str], *, filer_group: str = "") -> dict[str, Any]:
    """Each bucket's share of the store, from the master's ``/vol/status`` document.

    Per bucket (in the order given, each once): ``volumes`` (distinct volume ids), ``copies``
    (volume copies listed), ``logical_bytes`` (each volume's ``Size`` once: one copy of the data,
    deleted data included until vacuumed), ``bytes_with_copies`` (``Size`` of every copy: what the
    volume servers' disks hold), ``deleted_bytes`` (``DeletedByteCount``: held until vacuumed),
    ``files`` (``FileCount - DeleteCount``: the store's files, not S3 objects) and
    ``read_only_volumes`` (volumes with a copy that takes no writes). Where the copies of one
    volume disagree (a heartbeat apart), the largest copy speaks for the volume. A bucket without
    a volume yet shows zeros. Volumes of other collections are left out.

    Also ``volume_slots`` (``{"max", "free"}``: how many volume copies the volume servers can hold,
    and how many more they can take; None when the document has no counts) and ``volume_servers`` (how many the master
    lists; none means it knows of none yet, so every bucket reads 0).

    Raises:
        O11yError: the document is not the master's ``/vol/status`` answer.
    """
    names = list(dict.fromkeys(buckets))
    wanted = {collection_of(b, filer_group): b for b in names}
    servers = 0
    copies: dict[str, dict[int, list[Mapping[str, Any]]]] = {b: {} for b in names}
    for _server, held in volume_servers(doc):
        servers += 1
        for copy in held:
            bucket = wanted.get(str(copy.get("Collection") or ""))
            if bucket is not None:
                copies[bucket].setdefault(copy["Id"], []).append(copy)
    rows = []
    for bucket in names:
        by_id = copies[bucket]
        chosen = [max(listed, key=lambda c: _int(c.get("Size"))) for listed in by_id.values()]
        rows.append({
            "bucket": bucket,
            "collection": collection_of(bucket, filer_group),
            "volumes": len(by_id),
            "copies": sum(len(listed) for listed in by_id.values()),
            "logical_bytes": sum(_int(c.get("Size")) for c in chosen),
            "bytes_with_copies": sum(_int(c.get("Size")) for listed in by_id.values() for c in listed),
            "deleted_bytes": sum(_int(c.get("DeletedByteCount")) for c in chosen),
            "files": sum(max(0, _int(c.get("FileCount")) - _int(c.get("DeleteCount"))) for c in chosen),
            "read_only_volumes": sum(1 for listed in by_id.values() if any(c.get("ReadOnly") is True for c in listed)),
        })
    volumes = doc["Volumes"]
    slots = None
    if isinstance(volumes.get("Max"), int) and isinstance(volumes.get("Free"), int):
        slots = {"max": volumes["Max"], "free": volumes["Free"]}
    return {"buckets": rows, "volume_slots": slots, "volume_servers": servers}


#: What "used" means, said with every reading.
USED = ("used is one copy of each volume, deleted data included until the store vacuums the volume; "
        "on disk counts every copy")


def in_cluster_part(doc: Mapping[str, Any], buckets: Sequence[str], *, source: str) -> dict[str, Any]:
    """``status``'s buckets part for the in-cluster store: :func:`bucket_usage` of the master's document.

    Raises:
        O11yError: the document is not the master's ``/vol/status`` answer.
    """
    usage = bucket_usage(doc, buckets)
    note = USED if usage["volume_servers"] else (
        "the store's master lists no volume server yet, so every bucket reads 0")
    return {"store": "in-cluster", "reported": True, "source": source, "buckets": list(dict.fromkeys(buckets)),
            "usage": usage["buckets"], "volume_slots": usage["volume_slots"],
            "volume_servers": usage["volume_servers"], "note": note}


def external_part(endpoint: str | None, buckets: Sequence[str]) -> dict[str, Any]:
    """``status``'s buckets part for an external store: S3 has no call that says how much a bucket holds
    (short of listing every object), so the usage is not reported; not a failure."""
    return {"store": "external", "reported": False, "source": endpoint, "buckets": list(dict.fromkeys(buckets)),
            "usage": None, "volume_slots": None, "volume_servers": None,
            "note": f"the external store ({endpoint}) does not report bucket usage; its own console or metrics do"}
