"""Profile scalable: the object store's buckets, and each release's pods spread as the config says.

- ``store.buckets`` (the in-cluster store, SeaweedFS): the filer's directory listing of ``/buckets``
  through the API server's service proxy (``GET /buckets/`` with ``Accept: application/json``:
  ``{"Path", "Entries": [{"FullPath": "/buckets/<name>", ...}], ...}``, seaweedfs
  weed/server/filer_server_handlers_read_dir.go at tag 4.44; Service ``seaweedfs-filer`` port 8888,
  k8s/charts/seaweedfs templates/filer/filer-service.yaml). The proxy strips ``Authorization``,
  so a signed S3 request cannot travel this way; the listing needs none.
- ``cluster.buckets`` (an external store): a signed ``ListObjectsV2`` per bucket, straight to the
  endpoint, with the keys of the credentials Secret read into memory.
- ``cluster.pods.<component>``: every pod of a release Running and Ready, on the nodes the config
  allows, and (Loki) one per node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from o11yctl.config import Config
from o11yctl.stack.components import Component
from o11yctl.verify import hints
from o11yctl.verify.base import Check, CheckContext, Verdict, failed, passed, warned

#: The SeaweedFS filer's Service and HTTP port (chart values filer.port).
FILER_SERVICE = "seaweedfs-filer"
FILER_PORT = 8888


def _buckets(cfg: Config) -> list[str]:
    return list(dict.fromkeys(cfg.object_storage.buckets.model_dump().values()))


def judge_listing(status: int | None, body: str, wanted: Sequence[str], *, namespace: str) -> Verdict:
    """The filer's ``/buckets`` listing holds every bucket the config names."""
    if status != 200:
        return failed(f"the store's filer answered {status or 'nothing'} for /buckets/",
                      f"are the store's pods Ready? `kubectl get pods -n {namespace} -l "
                      "app.kubernetes.io/name=seaweedfs`; `o11yctl doctor` names the cause")
    try:
        entries = json.loads(body).get("Entries") or []
    except (ValueError, AttributeError):
        return failed("the store's filer did not answer its JSON listing", "is svc/seaweedfs-filer the filer?")
    present = {str(e.get("FullPath", "")).rsplit("/", 1)[-1] for e in entries if isinstance(e, Mapping)}
    missing = [b for b in wanted if b not in present]
    if missing:
        return failed(f"bucket(s) missing in the store: {', '.join(missing)}",
                      "the store's chart makes them in its post-install/post-upgrade hook: "
                      "`o11yctl install --only store` runs it again")
    return passed(f"buckets {', '.join(wanted)} exist in the store")


def judge_probes(answers: Sequence[Any], endpoint: str) -> Verdict:
    """An external store: every bucket answered 200 to a signed listing."""
    bad = [a for a in answers if not a.ok]
    if not bad:
        return passed(f"{len(answers)} bucket(s) readable at {endpoint} with the Secret's keys")
    a = bad[0]
    if a.status is None:
        return failed(f"{endpoint} does not answer: {a.error}",
                      hints.store_unanswered(a.error, "check object_storage.endpoint and the network between the "
                                                      "cluster and the store"))
    if a.code == "NoSuchBucket":
        return failed(f"bucket {a.bucket} does not exist at {endpoint}", "create it on the store, or name an "
                                                                         "existing one in object_storage.buckets")
    if a.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return failed(f"{endpoint} refused the keys for {a.bucket}: {a.code}: {a.message}",
                      "the keys in the credentials Secret are wrong: fix the Secret, then restart Loki and Tempo")
    return failed(f"{endpoint} answered HTTP {a.status} for {a.bucket}: {a.code}: {a.message}".rstrip(": "),
                  "the keys need to list and write the bucket (a store policy?)")


def bucket_check(cfg: Config) -> Check:
    """``cluster.buckets`` for an external store: the buckets answer to the Secret's keys."""
    def run(ctx: CheckContext) -> Verdict:
        from o11yctl.executors.s3 import probe_bucket
        from o11yctl.secrets import Secret
        from o11yctl.stack.context import read_keys

        store = cfg.object_storage
        assert ctx.targets.kube is not None and store.endpoint is not None
        secret = ctx.targets.kube.get("v1", "Secret", store.credentials_secret, ctx.namespace)
        keys = read_keys(secret)
        if keys is None:
            return failed(f"Secret {ctx.namespace}/{store.credentials_secret} is missing or has no access_key_id "
                          "and secret_access_key", "`o11yctl install` makes it from $O11YCTL_S3_ACCESS_KEY_ID and "
                                                   "$O11YCTL_S3_SECRET_ACCESS_KEY")
        timeout = ctx.deadline.timeout(ctx.request_timeout)
        answers = [probe_bucket(store.endpoint, b, access_key=Secret(keys[0]), secret_key=Secret(keys[1]),
                                region=store.region, verify_tls=store.ca_file or True, timeout=timeout)
                   for b in _buckets(cfg)]
        return judge_probes(answers, store.endpoint)

    return Check("cluster.buckets", "cluster", "the object store's buckets answer to the Secret's keys", ("kube",),
                 run)


def judge_store_ca(configmap: Mapping[str, Any] | None, want: str, *, namespace: str, name: str, key: str,
                   ca_file: str) -> Verdict:
    """The ConfigMap Loki and Tempo read the store's CA from holds the certificates of ``ca_file``."""
    fix = f"`o11yctl install --only store-ca` puts {ca_file} there (Loki and Tempo restart with it)"
    if configmap is None:
        return failed(f"ConfigMap {namespace}/{name} is missing: Loki's and Tempo's pods cannot start without it",
                      fix)
    held = str(((configmap.get("data") or {}).get(key)) or "")
    if held != want:
        return failed(f"ConfigMap {namespace}/{name} holds another CA than object_storage.ca_file ({ca_file}): "
                      "Loki and Tempo trust what it holds", fix)
    count = want.count("-----BEGIN CERTIFICATE-----")
    return passed(f"ConfigMap {namespace}/{name} holds the {count} certificate(s) of {ca_file}")


def store_ca_check(cfg: Config) -> Check:
    """``cluster.store-ca``: the CA Loki and Tempo trust is the one the config names."""
    from o11yctl.config import ca_certificates
    from o11yctl.stack.context import STORE_CA

    ca_file = cfg.object_storage.ca_file
    assert ca_file is not None

    def run(ctx: CheckContext) -> Verdict:
        assert ctx.targets.kube is not None
        try:
            want = ca_certificates(ca_file)
        except ValueError as exc:
            return failed(f"object_storage.ca_file: {exc}", "the file changed since the config was read")
        configmap = ctx.targets.kube.get("v1", "ConfigMap", STORE_CA["configmap"], ctx.namespace)
        return judge_store_ca(configmap, want, namespace=ctx.namespace, name=STORE_CA["configmap"],
                              key=STORE_CA["key"], ca_file=ca_file)

    return Check("cluster.store-ca", "cluster", "Loki and Tempo trust the store's CA named by object_storage.ca_file",
                 ("kube",), run)


def judge_release_pods(pods: Sequence[Mapping[str, Any]], *, title: str, release: str, want: int,
                       allowed: Sequence[str], one_per_node: bool) -> Verdict:
    """A release's pods: ``want`` of them Running and Ready, on allowed nodes, one per node when asked."""
    hint = f"`o11yctl doctor` names the cause; kubectl get pods -l app.kubernetes.io/instance={release} -o wide"
    pods = [p for p in pods if (p.get("status") or {}).get("phase") != "Succeeded"]  # a finished hook Job's pod
    if not pods:
        return failed(f"no pod of release {release}", hint)
    ready = [p for p in pods if _ready(p)]
    nodes = [str((p.get("spec") or {}).get("nodeName") or "") for p in ready]
    elsewhere = sorted({n for n in nodes if allowed and n not in allowed})
    if len(ready) < want:
        waiting = [str(p["metadata"]["name"]) for p in pods if not _ready(p)]
        return failed(f"{len(ready)} of {want} {title} pod(s) Ready; not Ready: {', '.join(waiting) or 'none yet'}",
                      hint)
    if elsewhere:
        return failed(f"{title} runs on {', '.join(elsewhere)}, outside {', '.join(allowed)}", hint)
    if one_per_node and len(set(nodes)) < len(nodes):
        return warned(f"{len(ready)} {title} pods Ready, but some share a node ({', '.join(sorted(nodes))}): "
                      "one node down takes more than one replica", "check the pods' anti-affinity")
    return passed(f"{len(ready)}/{want} {title} pod(s) Ready on {', '.join(sorted(set(nodes)))}")


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return status.get("phase") == "Running" and conditions.get("Ready") == "True"


def release_pods_check(cfg: Config, c: Component, want: int, allowed: Sequence[str], *,
                       one_per_node: bool) -> Check:
    """``cluster.pods.<component>``: every pod of its release Ready where the config allows it."""
    release = c.release or c.name

    def run(ctx: CheckContext) -> Verdict:
        assert ctx.targets.kube is not None
        pods = ctx.targets.kube.list("v1", "Pod", ctx.namespace, label_selector=f"app.kubernetes.io/instance={release}")
        return judge_release_pods(pods, title=c.title, release=release, want=want, allowed=allowed,
                                  one_per_node=one_per_node)

    return Check(f"cluster.pods.{c.name}", "cluster", f"{c.title}'s pods are Ready where the config says",
                 ("kube",), run)


def checks(cfg: Config, component: Component) -> list[Check]:
    """The in-cluster store's own checks (group ``store``)."""
    from o11yctl.executors.http import ServiceProxyTransport

    wanted = _buckets(cfg)

    def run(ctx: CheckContext) -> Verdict:
        assert ctx.targets.kube is not None
        transport = ServiceProxyTransport(ctx.targets.kube, ctx.namespace, FILER_SERVICE, FILER_PORT)
        resp = transport.request("GET", "/buckets/", timeout=ctx.deadline.timeout(ctx.request_timeout),
                                 headers={"Accept": "application/json"})
        return judge_listing(resp.status, resp.text if resp.status else "", wanted, namespace=ctx.namespace)

    return [Check("store.buckets", component.name, f"buckets {', '.join(wanted)} exist in the store", ("kube",), run)]
