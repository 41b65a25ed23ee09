"""verify's judges, verdict by verdict: the exact status, detail and hint for each branch.

Facts are built by hand in the shapes the Kubernetes API, Loki, Tempo and Grafana answer with; each
case names one situation and pins the whole Verdict a user would read. These are the judges
`scripts/mutation` mutates (see its target ``verify-judges``). Nothing of o11yctl is monkeypatched.
"""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from o11yctl.executors.http import HttpResponse
from o11yctl.model import CommandResult
from o11yctl.verify import grafana, loki, ready, tempo
from o11yctl.verify.alloy import UnreadableLog, judge_alloy_logs, judge_alloy_pods
from o11yctl.verify.base import Polled, Verdict
from o11yctl.verify.cluster import (
    DataDirFacts,
    judge_data_dir,
    judge_httproute,
    judge_namespace,
    judge_pod,
    judge_volume,
)

NS = "logging"


def resp(status: int | None, body: Any = b"", *, error: str | None = None) -> HttpResponse:
    data = json.dumps(body).encode() if isinstance(body, dict | list) else (
        body.encode() if isinstance(body, str) else body)
    return HttpResponse("GET", "http://x", status, body=data, error=error, error_kind="connect" if error else None)


def polled(*answers: HttpResponse, seconds: float = 1.0) -> Polled:
    return Polled(tuple(answers), seconds, False)


def status_doc(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason,
            "code": code}


# --- cluster ------------------------------------------------------------------------------------

def _volume(pvc: Any, pv: Any) -> Any:
    return judge_volume(pvc, pv, pvc_name="loki-pvc", pv_name="loki-pv", namespace=NS, storage_node="node-2",
                        storage_class="local-storage")


def pv(phase: str = "Available", claim: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": "200Gi"}}
    if claim is not None:
        spec["claimRef"] = claim
    return {"spec": spec, "status": {"phase": phase, **extra}}


def pvc(phase: str | None, volume: str | None = "loki-pv", capacity: str | None = "200Gi") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if capacity is not None:
        status["capacity"] = {"storage": capacity}
    return {"spec": {"volumeName": volume} if volume else {}, "status": status}


def pod(name: str = "loki-0", phase: str = "Running", ready: bool = True, node: str | None = "node-2",
        claim: str | None = "loki-pvc", waiting: tuple[str, ...] = (), restarts: tuple[int, ...] = (0,),
        scheduled: str | None = None) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", "status": "False", "message": scheduled})
    statuses = [{"name": f"c{i}", "restartCount": r,
                 "state": {"waiting": {"reason": waiting[i]}} if i < len(waiting) else {"running": {}}}
                for i, r in enumerate(restarts)]
    spec: dict[str, Any] = {"volumes": [{"name": "config", "configMap": {"name": "x"}}]}
    if claim:
        spec["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": claim}})
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec,
            "status": {"phase": phase, "conditions": conditions, "containerStatuses": statuses}}


def _pod(pods: list[dict[str, Any]], *, pvc_name: str | None = "loki-pvc", node: str | None = "node-2",
         component: str = "Loki") -> Any:
    return judge_pod(pods, component=component, namespace=NS, node=node, pvc=pvc_name, owner="10001:10001")


def route(*parents: dict[str, Any]) -> dict[str, Any]:
    return {"status": {"parents": list(parents)}}


def parent(name: str = "eg", namespace: str | None = "default", **conditions: dict[str, str]) -> dict[str, Any]:
    ref: dict[str, str] = {"name": name}
    if namespace is not None:
        ref["namespace"] = namespace
    return {"parentRef": ref, "conditions": [{"type": k, **v} for k, v in conditions.items()]}


def _route(r: Any, gateway_ns: str = "default") -> Any:
    return judge_httproute(r, namespace=NS, name="grafana", gateway="eg", gateway_ns=gateway_ns)


def out(exit_code: int, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(("x",), exit_code, stdout, stderr, 0.1)


def _dir(ls: CommandResult, du: CommandResult | None = None, component: str = "loki",
         expected: tuple[str, ...] = ("wal", "tsdb-")) -> Any:
    facts = DataDirFacts("/mnt/k8s-storage/loki", "node-2", du or out(0, "1.5G\t/mnt/k8s-storage/loki\n"), ls)
    return judge_data_dir(facts, component=component, owner="10001:10001", expected=expected)


def node(name: str, *taints: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"taints": list(taints)} if taints else {}}


def alloy(name: str, on: str, is_ready: bool = True) -> dict[str, Any]:
    return pod(name, ready=is_ready, node=on, claim=None)


UNREAD = UnreadableLog("alloy-b", "node-2", "10.0.0.103:10250",
                       'HTTP 500: Get "https://10.0.0.103:10250/containerLogs/logging/alloy-b/alloy": dial tcp '
                       "10.0.0.103:10250: connect: no route to host")
TIMEOUT_LINE = 'level=warn msg="error sending batch" error="context deadline exceeded"'

CLUSTER: dict[str, Any] = {
    "namespace missing": lambda: judge_namespace(None, namespace=NS),
    "namespace terminating": lambda: judge_namespace({"status": {"phase": "Terminating"}}, namespace=NS),
    "namespace without status": lambda: judge_namespace({"metadata": {"name": NS}, "status": None}, namespace=NS),
    "volume pv missing": lambda: _volume(pvc("Pending"), None),
    "volume pv released": lambda: _volume(pvc("Pending"), pv("Released", {"namespace": NS, "name": "loki-pvc"})),
    "volume pv failed": lambda: _volume(pvc("Pending"), pv("Failed", message="recycler failed")),
    "volume pv failed without message": lambda: _volume(pvc("Pending"), pv("Failed")),
    "volume claim missing": lambda: _volume(None, pv()),
    "volume bound elsewhere": lambda: _volume(pvc("Bound", "other-pv"), pv("Bound")),
    "volume bound": lambda: _volume(pvc("Bound", capacity="210Gi"), pv("Bound")),
    "volume bound size from pv": lambda: _volume(pvc("Bound", capacity=None), pv("Bound")),
    "volume bound size unknown": lambda: _volume(pvc("Bound", capacity=None), {"status": {"phase": "Bound"}}),
    "volume waiting for consumer": lambda: _volume(pvc(None, volume=None, capacity=None), pv()),
    "volume waiting for consumer, reserved": lambda: _volume(pvc("Pending", volume=None),
                                                             pv(claim={"namespace": NS, "name": "loki-pvc"})),
    "volume pv reserved for another": lambda: _volume(pvc("Pending", volume=None),
                                                      pv(claim={"namespace": NS, "name": "other"})),
    "volume pv phase unknown": lambda: _volume(pvc("Lost"), {"spec": {}}),
    "pod none mounting": lambda: _pod([pod(claim="other-pvc")]),
    "pod none labelled": lambda: _pod([], pvc_name=None, node="node-1", component="Grafana"),
    "pod pending scheduled message": lambda: _pod([pod(phase="Pending", ready=False, node=None,
                                                       scheduled="0/2 nodes are available")]),
    "pod pending waiting": lambda: _pod([pod(phase="Pending", ready=False, node=None,
                                             waiting=("ContainerCreating",))]),
    "pod pending nothing said": lambda: _pod([pod(phase="Pending", ready=False, node=None)]),
    "pod crashloop": lambda: _pod([pod(ready=False, waiting=("CrashLoopBackOff",), restarts=(4, 3))]),
    "pod error": lambda: _pod([pod(ready=False, waiting=("Error",), restarts=(1,))]),
    "pod waiting": lambda: _pod([pod(ready=False, waiting=("ImagePullBackOff", "ErrImagePull"), restarts=(0, 0))]),
    "pod wrong node": lambda: _pod([pod(node="node-1")]),
    "pod no node": lambda: _pod([pod(node=None)]),
    "pod not ready": lambda: _pod([pod(ready=False)]),
    "pod succeeded is not ready": lambda: _pod([pod(phase="Succeeded", ready=True)]),
    "pod ready one preferred": lambda: _pod([pod("loki-old", ready=False), pod("loki-0", restarts=(2, 1))]),
    "pod without a phase or conditions": lambda: _pod([{"metadata": {}, "spec": {"nodeName": "node-2",
                                                                             "volumes": [{"persistentVolumeClaim": {
                                                                                 "claimName": "loki-pvc"}}]}}]),
    "pod running without a ready condition": lambda: _pod([{"metadata": {"name": "loki-0"}, "spec": {
        "nodeName": "node-2", "volumes": [{"persistentVolumeClaim": {"claimName": "loki-pvc"}}]},
        "status": {"phase": "Running"}}]),
    "pod without claim": lambda: _pod([pod("grafana-1", node="node-1", claim=None)], pvc_name=None, node=None,
                                      component="Grafana"),
    "route missing": lambda: _route(None),
    "route no parents": lambda: _route({"status": {}}),
    "route other gateway": lambda: _route(route(parent("other"), parent("eg", "elsewhere"))),
    "route gateway in its namespace": lambda: _route(route(parent("eg", None, Accepted={"status": "True"})),
                                                     gateway_ns=NS),
    "route not accepted": lambda: _route(route(parent(Accepted={"status": "False", "reason": "NotAllowedByListeners",
                                                                "message": "no listener allows namespace logging"}))),
    "route not accepted silently": lambda: _route(route(parent())),
    "route backend not resolved": lambda: _route(route(parent(
        Accepted={"status": "True"}, ResolvedRefs={"status": "False", "reason": "BackendNotFound",
                                                   "message": "service grafana not found"}))),
    "route backend not resolved silently": lambda: _route(route(parent(
        Accepted={"status": "True"}, ResolvedRefs={"status": "Unknown"}))),
    "route not accepted, message ending in X": lambda: _route(route(parent(Accepted={
        "status": "False", "reason": "Invalid", "message": "listener HTTPX"}))),
    "route accepted": lambda: _route(route(parent("eg", "default", Accepted={"status": "True"},
                                                  ResolvedRefs={"status": "True"}))),
    "dir missing": lambda: _dir(out(2, stderr="ls: cannot access '/mnt/k8s-storage/loki': No such file or "
                                              "directory\n")),
    "dir denied": lambda: _dir(out(2, stderr="warning\nls: cannot open directory '/mnt/k8s-storage/loki': "
                                             "Permission denied\n")),
    "dir other error": lambda: _dir(out(2, stderr="ls: I/O error\n")),
    "dir error without words": lambda: _dir(out(137, stderr="  \n")),
    "dir empty": lambda: _dir(out(0, "\n")),
    "dir empty tempo": lambda: _dir(out(0, ""), component="tempo", expected=("wal",)),
    "dir unexpected": lambda: _dir(out(0, "lost+found\nnotes\n")),
    "dir unexpected, no du": lambda: _dir(out(0, "a\nb\nc\nd\ne\nf\ng\n"), du=out(1, ""), expected=("wal",)),
    "dir loki before the first flush": lambda: _dir(out(0, "wal\ntsdb-shipper-active\n")),
    "dir loki by prefix": lambda: _dir(out(0, "chunks\ntsdb-shipper-cache\n")),
    "dir six entries": lambda: _dir(out(0, "a\nb\nc\nd\ne\nwal\n")),
    "dir entry with a space": lambda: _dir(out(0, "wal\nmy notes\n"), component="tempo", expected=("wal",)),
    "dir tempo": lambda: _dir(out(0, "wal\nblocks\n"), component="tempo", expected=("wal",)),
    "dir nothing expected": lambda: _dir(out(0, "x\n"), component="tempo", expected=()),
    "alloy pods all ready": lambda: judge_alloy_pods([node("node-1"), node("node-2")],
                                                     [alloy("a", "node-1"), alloy("b", "node-2")], namespace=NS),
    "alloy pods missing on tainted": lambda: judge_alloy_pods(
        [node("node-1"), node("node-2", {"key": "heavy", "value": "true", "effect": "NoSchedule"},
                              {"key": "gpu", "effect": "NoExecute"})],
        [alloy("a", "node-1"), alloy("b", "node-2", is_ready=False)], namespace=NS),
    "alloy pods on a nameless node": lambda: judge_alloy_pods([{"spec": {}}], [], namespace=NS),
    "alloy pods missing untainted": lambda: judge_alloy_pods([node("node-1"), node("node-2"), node("node-3")],
                                                             [alloy("a", "node-2")], namespace=NS),
    "alloy logs none": lambda: judge_alloy_logs({}, namespace=NS),
    "alloy logs clean": lambda: judge_alloy_logs({"a": "ok\n", "b": "level=info\n"}, namespace=NS),
    "alloy logs timeouts": lambda: judge_alloy_logs(
        {"b": f"ok\n{TIMEOUT_LINE}\n{TIMEOUT_LINE.upper()}\n", "a": TIMEOUT_LINE, "c": "fine"}, namespace=NS),
    "alloy logs timeouts and unreadable": lambda: judge_alloy_logs({"a": TIMEOUT_LINE}, namespace=NS,
                                                                   unreadable=[UNREAD]),
    "alloy logs unreadable only": lambda: judge_alloy_logs({}, namespace=NS, unreadable=[UNREAD]),
    "alloy logs some unreadable": lambda: judge_alloy_logs(
        {"alloy-a": "ok", "alloy-c": "ok"}, namespace=NS,
        unreadable=[UNREAD, UnreadableLog("alloy-d", "node-1", "10.0.0.102:10250", "HTTP 500: other")]),
}


# --- readiness and HTTP judges ------------------------------------------------------------------

NO_ENDPOINTS = status_doc(503, "ServiceUnavailable", 'no endpoints available for service "loki"')
UNREACHABLE = status_doc(503, "ServiceUnavailable",
                         "error trying to reach service: dial tcp 10.42.1.5:3100: i/o timeout")
LONG = "x" * 81
NOT_FOUND = status_doc(404, "NotFound", 'services "loki" not found')


def _ready(*answers: HttpResponse, seconds: float = 12.4) -> Any:
    facts = ready.ReadyFacts("Loki", "http://loki:3100", polled(*answers, seconds=seconds))
    return ready.judge_ready(facts, namespace=NS, not_ready_hint="NOT-READY", service="loki", port=3100)


def _health(r: HttpResponse) -> Any:
    return grafana.judge_health(r, where="http://g", hint="HINT", via="through the route: ")


def ds(component: str, plugin: str, uid: str, get: HttpResponse, health: HttpResponse | None = None) -> Any:
    return grafana.DatasourceFacts(uid, plugin, component, get, health)


def _ok_ds(plugin: str, uid: str, json_data: dict[str, Any] | None = None) -> HttpResponse:
    return resp(200, {"uid": uid, "type": plugin, "jsonData": json_data or {}})


def _datasources(*facts: Any) -> Any:
    return grafana.judge_datasources(tuple(facts), where="http://g", namespace=NS)


def _loki_ds(get: HttpResponse, health: HttpResponse | None = None) -> Any:
    return ds("Loki", "loki", "loki-ds", get, health)


HEALTH_OK = resp(200, {"status": "OK", "message": "Data source successfully connected."})
TEMPO_OK = ds("Tempo", "tempo", "tempo-ds", _ok_ds("tempo", "tempo-ds"), resp(200, {"status": "OK", "message": "ok"}))


def _correlation(tempo_json: dict[str, Any], loki_json: dict[str, Any], tempo_get: HttpResponse | None = None) -> Any:
    facts = (ds("Loki", "loki", "loki-ds", _ok_ds("loki", "loki-ds", loki_json)),
             ds("Tempo", "tempo", "tempo-ds", tempo_get or _ok_ds("tempo", "tempo-ds", tempo_json)))
    return grafana.judge_correlation(facts, where="http://g", namespace=NS)


LINKED = {"derivedFields": [{"name": "x", "datasourceUid": "other"}, "junk",
                            {"name": "TraceID", "datasourceUid": "tempo-ds"}]}

HTTP: dict[str, Any] = {
    "ready at once": lambda: _ready(resp(200, "ready")),
    "ready after warming up": lambda: _ready(resp(503, "Ingester not ready"), resp(503, "x"), resp(200, "ready")),
    "ready unreachable": lambda: _ready(resp(None, error="connection refused")),
    "ready no endpoints": lambda: _ready(resp(503, NO_ENDPOINTS)),
    "ready service missing": lambda: _ready(resp(404, NOT_FOUND)),
    "ready still warming": lambda: _ready(resp(503, "Ingester not ready: waiting for 15s after being ready")),
    "ready through a broken proxy": lambda: _ready(resp(503, UNREACHABLE)),
    "ready other status": lambda: _ready(resp(500, "boom\nmore")),
    "health unreachable": lambda: _health(resp(None, error="timed out")),
    "health not grafana": lambda: _health(resp(200, "<html>hello</html>")),
    "health json without database": lambda: _health(resp(200, {"version": "12.3.1"})),
    "health through a broken proxy": lambda: _health(resp(503, UNREACHABLE)),
    "health 200 but database failing": lambda: _health(resp(200, {"database": "failing"})),
    "health long answer": lambda: _health(resp(200, LONG)),
    "health ok": lambda: _health(resp(200, {"database": "ok", "version": "12.3.1"})),
    "health ok without version": lambda: _health(resp(200, {"database": "ok"})),
    "health database failing": lambda: _health(resp(503, {"database": "failing", "version": "12.3.1"})),
    "datasource unreachable": lambda: _datasources(_loki_ds(resp(None, error="refused"))),
    "datasource unauthorised": lambda: _datasources(_loki_ds(resp(401, {"message": "Unauthorized"}))),
    "datasource forbidden without message": lambda: _datasources(_loki_ds(resp(403, "denied"))),
    "datasource unauthorised, long answer": lambda: _datasources(_loki_ds(resp(401, LONG))),
    "datasource missing": lambda: _datasources(_loki_ds(resp(404, {"message": "Data source not found"}))),
    "datasource api missing": lambda: _datasources(_loki_ds(resp(404, "404 page not found"))),
    "datasource api missing, long answer": lambda: _datasources(_loki_ds(resp(404, LONG))),
    "datasource server error": lambda: _datasources(_loki_ds(resp(500, "oops"))),
    "datasource not json": lambda: _datasources(_loki_ds(resp(200, "[1]"))),
    "datasource wrong type": lambda: _datasources(_loki_ds(resp(200, {"type": "prometheus"}))),
    "datasource no health": lambda: _datasources(_loki_ds(_ok_ds("loki", "loki-ds"))),
    "datasource health unreachable": lambda: _datasources(_loki_ds(_ok_ds("loki", "loki-ds"),
                                                                   resp(None, error="reset"))),
    "datasource health unauthorised": lambda: _datasources(_loki_ds(_ok_ds("loki", "loki-ds"), resp(403, "{}"))),
    "datasource health 401": lambda: _datasources(_loki_ds(_ok_ds("loki", "loki-ds"), resp(401, "{}"))),
    "datasource health failing": lambda: _datasources(_loki_ds(_ok_ds("loki", "loki-ds"), resp(
        400, {"status": "ERROR", "message": "Unable to connect with Loki"}))),
    "datasource health not OK": lambda: _datasources(_loki_ds(_ok_ds("loki", "loki-ds"), resp(200, "plain"))),
    "datasources healthy": lambda: _datasources(_loki_ds(_ok_ds("loki", "loki-ds"), HEALTH_OK), TEMPO_OK),
    "correlation problem": lambda: _correlation({}, {}, tempo_get=resp(500, "x")),
    "correlation unreachable": lambda: grafana.judge_correlation(
        (ds("Loki", "loki", "loki-ds", resp(None, error="refused")), TEMPO_OK), where="http://g", namespace=NS),
    "correlation json data not a mapping": lambda: _correlation({}, LINKED, tempo_get=resp(
        200, {"type": "tempo", "jsonData": "x"})),
    "correlation derived fields not a list": lambda: _correlation({"tracesToLogsV2": {"datasourceUid": "loki-ds"}},
                                                                  {"derivedFields": 5}),
    "correlation unset": lambda: _correlation({}, LINKED),
    "correlation elsewhere": lambda: _correlation({"tracesToLogsV2": {"datasourceUid": "other"}}, LINKED),
    "correlation not a mapping": lambda: _correlation({"tracesToLogsV2": "loki-ds"}, LINKED),
    "correlation no derived field": lambda: _correlation({"tracesToLogsV2": {"datasourceUid": "loki-ds"}},
                                                         {"derivedFields": "x"}),
    "correlation unnamed field": lambda: _correlation({"tracesToLogsV2": {"datasourceUid": "loki-ds"}},
                                                      {"derivedFields": [{"datasourceUid": "tempo-ds"}]}),
    "correlation linked": lambda: _correlation({"tracesToLogsV2": {"datasourceUid": "loki-ds"}}, LINKED),
}


# --- Loki and Tempo end to end ----------------------------------------------------------------

TOKEN = "o11yctl-verify-abc"


def streams(*entries: tuple[str, str, dict[str, str]]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": labels, "values": [[ts, line]]} for ts, line, labels in entries]}}


def _loki_e2e(push: HttpResponse, query: HttpResponse | None = None, seconds: float = 2.0) -> Any:
    facts = loki.E2eFacts("http://loki:3100", TOKEN, polled(push, seconds=1.25),
                          polled(query, seconds=seconds) if query is not None else None)
    return loki.judge_e2e(facts, namespace=NS)


def _cluster_logs(r: HttpResponse) -> Any:
    return loki.judge_cluster_logs(loki.ClusterLogsFacts("http://loki:3100", NS, polled(r), 100 * 10**9))


def _tempo_e2e(send: HttpResponse, fetch: HttpResponse | None = None) -> Any:
    facts = tempo.TraceFacts("http://tempo:4318", "http://tempo:3200", "ab" * 16, "cd" * 8,
                             polled(send, seconds=0.5), polled(fetch, seconds=3.0) if fetch is not None else None)
    return tempo.judge_e2e(facts, namespace=NS)


def trace(*span_ids: str) -> dict[str, Any]:
    return {"batches": [{"scopeSpans": [{"spans": [{"spanId": s} for s in span_ids]}]}]}


def _search(r: HttpResponse) -> Any:
    return tempo.judge_search(tempo.SearchFacts("http://tempo:3200", polled(r)), namespace=NS)


E2E: dict[str, Any] = {
    "loki push unreachable": lambda: _loki_e2e(resp(None, error="connection refused")),
    "loki push refused": lambda: _loki_e2e(resp(500, "internal")),
    "loki push too old": lambda: _loki_e2e(resp(400, "entry for stream has timestamp too old")),
    "loki push too far behind": lambda: _loki_e2e(resp(400, "entry too far behind")),
    "loki push too new": lambda: _loki_e2e(resp(400, "entry has timestamp too new")),
    "loki push through a broken proxy": lambda: _loki_e2e(resp(503, UNREACHABLE)),
    "loki query through a broken proxy": lambda: _loki_e2e(resp(204), resp(503, UNREACHABLE)),
    "loki found": lambda: _loki_e2e(resp(204), resp(200, streams(("1", f"probe token={TOKEN}", {})))),
    "loki query unreachable": lambda: _loki_e2e(resp(204), resp(None, error="reset")),
    "loki query failing": lambda: _loki_e2e(resp(204), resp(500, "query failed")),
    "loki line never found": lambda: _loki_e2e(resp(204), resp(200, streams(("1", "other line", {}))), 30.4),
    "cluster logs unreachable": lambda: _cluster_logs(resp(None, error="refused")),
    "cluster logs failing": lambda: _cluster_logs(resp(502, "bad gateway")),
    "cluster logs through a broken proxy": lambda: _cluster_logs(resp(503, UNREACHABLE)),
    "cluster logs none": lambda: _cluster_logs(resp(200, streams())),
    "cluster logs many pods": lambda: _cluster_logs(resp(200, streams(
        (str(40 * 10**9), "a", {"pod": "p4"}), (str(90 * 10**9), "b", {"pod": "p1"}),
        (str(95 * 10**9), "c", {"pod": "p2"}), (str(10 * 10**9), "d", {"pod": "p3"})))),
    "cluster logs few pods": lambda: _cluster_logs(resp(200, streams(
        (str(60 * 10**9), "a", {"pod": "p2"}), (str(70 * 10**9), "b", {"pod": "p1"}),
        (str(80 * 10**9), "c", {"pod": "p3"})))),
    "cluster logs one and a half seconds old": lambda: _cluster_logs(resp(200, streams(
        (str(98_500_000_000), "a", {})))),
    "cluster logs with odd values": lambda: _cluster_logs(resp(200, {"data": {"resultType": "streams", "result": [
        {"stream": {"pod": "p1"}, "values": [5, {"a": 1, "b": 2}, ["x", "bad ts"], [str(90 * 10**9), "ok"]]}]}})),
    "cluster logs without pods": lambda: _cluster_logs(resp(200, streams((str(101 * 10**9), "a", {"job": "x"})))),
    "tempo send unreachable": lambda: _tempo_e2e(resp(None, error="refused")),
    "tempo send refused": lambda: _tempo_e2e(resp(500, "no")),
    "tempo send partly rejected": lambda: _tempo_e2e(resp(200, {"partialSuccess": {"rejectedSpans": 1,
                                                                                   "errorMessage": "too old"}})),
    "tempo send rejected silently": lambda: _tempo_e2e(resp(200, {"partialSuccess": {"rejectedSpans": "2"}})),
    "tempo send nothing rejected": lambda: _tempo_e2e(resp(200, {"partialSuccess": {"rejectedSpans": 0}}),
                                                      resp(200, trace("cd" * 8))),
    "tempo send through a broken proxy": lambda: _tempo_e2e(resp(503, UNREACHABLE)),
    "tempo fetch through a broken proxy": lambda: _tempo_e2e(resp(200), resp(503, UNREACHABLE)),
    "tempo found": lambda: _tempo_e2e(resp(200, "{}"), resp(200, trace(
        base64.b64encode(bytes.fromhex("cd" * 8)).decode()))),
    "tempo found in otlp shape": lambda: _tempo_e2e(resp(200, ""), resp(200, {"trace": {"resourceSpans": [
        {"instrumentationLibrarySpans": [{"spans": [{"spanId": "CD" * 8}]}]}]}})),
    "tempo trace without the span": lambda: _tempo_e2e(resp(200), resp(200, trace("ef" * 8, "", 5, "!!"))),
    "tempo fetch unreachable": lambda: _tempo_e2e(resp(200), resp(None, error="refused")),
    "tempo not found": lambda: _tempo_e2e(resp(200), resp(404, "trace not found")),
    "tempo fetch failing": lambda: _tempo_e2e(resp(200), resp(500, "oops")),
    "search unreachable": lambda: _search(resp(None, error="refused")),
    "search failing": lambda: _search(resp(500, "oops")),
    "search without traces": lambda: _search(resp(200, {"metrics": {}})),
    "search not json": lambda: _search(resp(200, "nope")),
    "search through a broken proxy": lambda: _search(resp(503, UNREACHABLE)),
    "search long answer": lambda: _search(resp(200, LONG)),
    "search four services": lambda: _search(resp(200, {"traces": [{"rootServiceName": s} for s in "dcba"]})),
    "search empty": lambda: _search(resp(200, {"traces": []})),
    "search few": lambda: _search(resp(200, {"traces": [{"rootServiceName": "b"}, {"rootServiceName": "a"},
                                                        {"traceID": "x"}, "junk"]})),
    "search many": lambda: _search(resp(200, {"traces": [{"rootServiceName": s} for s in "edcbaa"]})),
}

CASES = {**CLUSTER, **HTTP, **E2E}


EXPECTED: dict[str, Verdict] = {
    'namespace missing': Verdict(
            'FAIL',
            'namespace logging does not exist',
            'create it: `o11yctl install --only namespace`'),
    'namespace terminating': Verdict(
            'FAIL',
            'namespace logging is Terminating',
            'it is being deleted; wait until it is gone, then `o11yctl install`'),
    'namespace without status': Verdict(
            'PASS',
            'namespace logging is Active'),
    'volume pv missing': Verdict(
            'FAIL',
            'PersistentVolume loki-pv does not exist',
            'create it: `o11yctl install --only volumes`'),
    'volume pv released': Verdict(
            'FAIL',
            'loki-pv is Released: the claim it was bound to (logging/loki-pvc) was deleted, and a Released PV '
            'never binds again by itself',
            'the data is still on node-2; free the PV for the new claim: `kubectl patch pv loki-pv --type json '
            '-p \'[{"op":"remove","path":"/spec/claimRef/uid"}]\'`'),
    'volume pv failed': Verdict(
            'FAIL',
            'loki-pv is Failed: recycler failed',
            'the runbook\'s "PVC stays in Pending": check PV loki-pv exists (`kubectl get pv loki-pv`), that '
            "both use storage class local-storage, and that the PV's nodeAffinity names node-2's hostname; "
            '`o11yctl doctor` names the cause'),
    'volume pv failed without message': Verdict(
            'FAIL',
            'loki-pv is Failed: ',
            'the runbook\'s "PVC stays in Pending": check PV loki-pv exists (`kubectl get pv loki-pv`), that '
            "both use storage class local-storage, and that the PV's nodeAffinity names node-2's hostname; "
            '`o11yctl doctor` names the cause'),
    'volume claim missing': Verdict(
            'FAIL',
            'PersistentVolumeClaim logging/loki-pvc does not exist',
            'create it: `o11yctl install --only volumes`'),
    'volume bound elsewhere': Verdict(
            'FAIL',
            'loki-pvc is Bound to other-pv, not to loki-pv',
            'the claim took another volume; delete loki-pvc and re-run `o11yctl install --only volumes`'),
    'volume bound': Verdict(
            'PASS',
            'loki-pvc is Bound to loki-pv (210Gi)'),
    'volume bound size from pv': Verdict(
            'PASS',
            'loki-pvc is Bound to loki-pv (200Gi)'),
    'volume bound size unknown': Verdict(
            'PASS',
            'loki-pvc is Bound to loki-pv (?)'),
    'volume waiting for consumer': Verdict(
            'WARN',
            'loki-pvc is Pending, waiting for its first consumer (loki-pv is Available)',
            'it binds when the pod that mounts it is scheduled; if that pod stays Pending, see its cluster.pod '
            'check'),
    'volume waiting for consumer, reserved': Verdict(
            'WARN',
            'loki-pvc is Pending, waiting for its first consumer (loki-pv is Available)',
            'it binds when the pod that mounts it is scheduled; if that pod stays Pending, see its cluster.pod '
            'check'),
    'volume pv reserved for another': Verdict(
            'FAIL',
            'loki-pvc is Pending (loki-pv is Available)',
            'the runbook\'s "PVC stays in Pending": check PV loki-pv exists (`kubectl get pv loki-pv`), that '
            "both use storage class local-storage, and that the PV's nodeAffinity names node-2's hostname; "
            '`o11yctl doctor` names the cause'),
    'volume pv phase unknown': Verdict(
            'FAIL',
            'loki-pvc is Lost (loki-pv is unknown)',
            'the runbook\'s "PVC stays in Pending": check PV loki-pv exists (`kubectl get pv loki-pv`), that '
            "both use storage class local-storage, and that the PV's nodeAffinity names node-2's hostname; "
            '`o11yctl doctor` names the cause'),
    'pod none mounting': Verdict(
            'FAIL',
            'no Loki pod mounting loki-pvc in namespace logging',
            'install it: `o11yctl install --only loki`'),
    'pod none labelled': Verdict(
            'FAIL',
            'no Grafana pod labelled app.kubernetes.io/name=grafana in namespace logging',
            'install it: `o11yctl install --only grafana`'),
    'pod pending scheduled message': Verdict(
            'FAIL',
            'loki-0 is Pending: 0/2 nodes are available',
            'the runbook\'s "Pod stuck in Pending": the pod must select node-2 (node selector and toleration for '
            'its taint) and its claim must be Bound (`kubectl get pvc -n logging`); `o11yctl doctor` names the '
            'cause'),
    'pod pending waiting': Verdict(
            'FAIL',
            'loki-0 is Pending: ContainerCreating',
            'the runbook\'s "Pod stuck in Pending": the pod must select node-2 (node selector and toleration for '
            'its taint) and its claim must be Bound (`kubectl get pvc -n logging`); `o11yctl doctor` names the '
            'cause'),
    'pod pending nothing said': Verdict(
            'FAIL',
            'loki-0 is Pending: not scheduled',
            'the runbook\'s "Pod stuck in Pending": the pod must select node-2 (node selector and toleration for '
            'its taint) and its claim must be Bound (`kubectl get pvc -n logging`); `o11yctl doctor` names the '
            'cause'),
    'pod crashloop': Verdict(
            'FAIL',
            'loki-0 is in CrashLoopBackOff (7 restarts)',
            'check `kubectl logs -n logging loki-0 --tail=50`; "Permission denied" on the data directory means '
            'it does not belong to 10001:10001: `o11yctl install --only storage` fixes that; `o11yctl doctor` '
            'confirms the owner and names other causes'),
    'pod error': Verdict(
            'FAIL',
            'loki-0 is in CrashLoopBackOff (1 restarts)',
            'check `kubectl logs -n logging loki-0 --tail=50`; "Permission denied" on the data directory means '
            'it does not belong to 10001:10001: `o11yctl install --only storage` fixes that; `o11yctl doctor` '
            'confirms the owner and names other causes'),
    'pod waiting': Verdict(
            'FAIL',
            'loki-0 is waiting: ImagePullBackOff, ErrImagePull',
            '`kubectl describe pod -n logging loki-0`'),
    'pod wrong node': Verdict(
            'FAIL',
            'loki-0 runs on node-1, not on node-2',
            'its values must select node-2 (node selector and toleration); re-apply them with `o11yctl install '
            '--only loki`'),
    'pod no node': Verdict(
            'FAIL',
            'loki-0 runs on no node, not on node-2',
            'its values must select node-2 (node selector and toleration); re-apply them with `o11yctl install '
            '--only loki`'),
    'pod not ready': Verdict(
            'FAIL',
            'loki-0 is Running but not Ready',
            'its readiness probe fails: `kubectl logs -n logging loki-0 --tail=50`; `o11yctl doctor` looks for '
            'config and storage errors'),
    'pod succeeded is not ready': Verdict(
            'FAIL',
            'loki-0 is Succeeded but not Ready',
            'its readiness probe fails: `kubectl logs -n logging loki-0 --tail=50`; `o11yctl doctor` looks for '
            'config and storage errors'),
    'pod ready one preferred': Verdict(
            'PASS',
            'loki-0 Running and Ready on node-2, mounts loki-pvc (3 restarts)'),
    'pod without a phase or conditions': Verdict(
            'FAIL',
            '? is Unknown but not Ready',
            'its readiness probe fails: `kubectl logs -n logging ? --tail=50`; `o11yctl doctor` looks for config '
            'and storage errors'),
    'pod running without a ready condition': Verdict(
            'FAIL',
            'loki-0 is Running but not Ready',
            'its readiness probe fails: `kubectl logs -n logging loki-0 --tail=50`; `o11yctl doctor` looks for '
            'config and storage errors'),
    'pod without claim': Verdict(
            'PASS',
            'grafana-1 Running and Ready on node-1 (0 restarts)'),
    'route missing': Verdict(
            'FAIL',
            'HTTPRoute logging/grafana does not exist',
            'create it: `o11yctl install --only route`'),
    'route no parents': Verdict(
            'FAIL',
            'Gateway default/eg has not reported on HTTPRoute logging/grafana',
            'is the gateway controller (Envoy Gateway) running, and does Gateway default/eg exist? `kubectl get '
            'gateway -A`'),
    'route other gateway': Verdict(
            'FAIL',
            'Gateway default/eg has not reported on HTTPRoute logging/grafana',
            'is the gateway controller (Envoy Gateway) running, and does Gateway default/eg exist? `kubectl get '
            'gateway -A`'),
    'route gateway in its namespace': Verdict(
            'PASS',
            'Accepted by Gateway logging/eg'),
    'route not accepted': Verdict(
            'FAIL',
            'not Accepted by default/eg: NotAllowedByListeners: no listener allows namespace logging',
            'the listener must allow routes from namespace logging; `kubectl describe httproute -n logging grafana`'),
    'route not accepted silently': Verdict(
            'FAIL',
            'not Accepted by default/eg: ?',
            'the listener must allow routes from namespace logging; `kubectl describe httproute -n logging grafana`'),
    'route backend not resolved': Verdict(
            'FAIL',
            'Accepted, but its backend is not resolved: BackendNotFound: service grafana not found',
            'does Service grafana exist on port 80? `kubectl get svc -n logging`'),
    'route backend not resolved silently': Verdict(
            'FAIL',
            'Accepted, but its backend is not resolved: ?: ',
            'does Service grafana exist on port 80? `kubectl get svc -n logging`'),
    'route not accepted, message ending in X': Verdict(
            'FAIL',
            'not Accepted by default/eg: Invalid: listener HTTPX',
            'the listener must allow routes from namespace logging; `kubectl describe httproute -n logging grafana`'),
    'route accepted': Verdict(
            'PASS',
            'Accepted by Gateway default/eg'),
    'dir missing': Verdict(
            'FAIL',
            'node-2:/mnt/k8s-storage/loki does not exist',
            'create it: `o11yctl install --only storage`'),
    'dir denied': Verdict(
            'WARN',
            "cannot list node-2:/mnt/k8s-storage/loki: ls: cannot open directory '/mnt/k8s-storage/loki': "
            'Permission denied',
            'the SSH user cannot read it (it belongs to 10001:10001)'),
    'dir other error': Verdict(
            'FAIL',
            'ls node-2:/mnt/k8s-storage/loki: ls: I/O error'),
    'dir error without words': Verdict(
            'FAIL',
            'ls node-2:/mnt/k8s-storage/loki: exit 137'),
    'dir empty': Verdict(
            'FAIL',
            'node-2:/mnt/k8s-storage/loki is empty: Loki is not writing there',
            'its pod must mount loki-pvc and the directory must belong to 10001:10001 (`o11yctl install --only '
            'storage`); see the cluster.pod check'),
    'dir empty tempo': Verdict(
            'FAIL',
            'node-2:/mnt/k8s-storage/loki is empty: Tempo is not writing there',
            'its pod must mount tempo-pvc and the directory must belong to 10001:10001 (`o11yctl install --only '
            'storage`); see the cluster.pod check'),
    'dir unexpected': Verdict(
            'WARN',
            '1.5G in node-2:/mnt/k8s-storage/loki (lost+found/, notes/), but no wal/ or tsdb-*',
            "is this Loki's data? check the pod's volume mount"),
    'dir unexpected, no du': Verdict(
            'WARN',
            '? in node-2:/mnt/k8s-storage/loki (a/, b/, c/, d/, e/, f/, …), but no wal/',
            "is this Loki's data? check the pod's volume mount"),
    'dir loki before the first flush': Verdict(
            'PASS',
            '1.5G in node-2:/mnt/k8s-storage/loki (tsdb-shipper-active/, wal/); chunks/ appears after the first '
            'flush'),
    'dir loki by prefix': Verdict(
            'PASS',
            '1.5G in node-2:/mnt/k8s-storage/loki (chunks/, tsdb-shipper-cache/)'),
    'dir six entries': Verdict(
            'PASS',
            '1.5G in node-2:/mnt/k8s-storage/loki (a/, b/, c/, d/, e/, wal/); chunks/ appears after the first flush'),
    'dir entry with a space': Verdict(
            'PASS',
            '1.5G in node-2:/mnt/k8s-storage/loki (my notes/, wal/)'),
    'dir tempo': Verdict(
            'PASS',
            '1.5G in node-2:/mnt/k8s-storage/loki (blocks/, wal/)'),
    'dir nothing expected': Verdict(
            'PASS',
            '1.5G in node-2:/mnt/k8s-storage/loki (x/)'),
    'alloy pods all ready': Verdict(
            'PASS',
            '2/2 nodes run a Ready Alloy pod'),
    'alloy pods missing on tainted': Verdict(
            'FAIL',
            '1/2 nodes run a Ready Alloy pod; none on node-2',
            "node-2 carries the taint heavy=true:NoSchedule, gpu=:NoExecute: Alloy's DaemonSet needs a "
            'toleration for it (the Alloy values); re-apply them with `o11yctl install --only alloy`; then '
            '`kubectl get pods -n logging -l app.kubernetes.io/name=alloy -o wide`'),
    'alloy pods on a nameless node': Verdict(
            'FAIL',
            '0/1 nodes run a Ready Alloy pod; none on ?',
            '`kubectl get pods -n logging -l app.kubernetes.io/name=alloy -o wide`'),
    'alloy pods missing untainted': Verdict(
            'FAIL',
            '1/3 nodes run a Ready Alloy pod; none on node-1, node-3',
            '`kubectl get pods -n logging -l app.kubernetes.io/name=alloy -o wide`'),
    'alloy logs none': Verdict(
            'FAIL',
            'no running Alloy pod in namespace logging',
            'see alloy.pods; install it with `o11yctl install --only alloy`'),
    'alloy logs clean': Verdict(
            'PASS',
            'no "context deadline exceeded" in the last 15 minutes of 2 Alloy pod(s)'),
    'alloy logs timeouts': Verdict(
            'FAIL',
            '"context deadline exceeded" in Alloy\'s logs (a: 1, b: 2)',
            'Alloy is not shipping logs: check `kubectl get pods -n logging -l app.kubernetes.io/name=alloy -o '
            'wide` and its logs for "context deadline exceeded"; that is usually cross-node networking (Flannel '
            'VXLAN, UDP 8472, blocked between the nodes): run `o11yctl fix-vxlan --check` (`o11yctl doctor` runs '
            "it when Alloy's logs show this)"),
    'alloy logs timeouts and unreadable': Verdict(
            'FAIL',
            '"context deadline exceeded" in Alloy\'s logs (a: 1); the logs of alloy-b could not be read: the API '
            'server could not reach the kubelet of node-2: HTTP 500: Get '
            '"https://10.0.0.103:10250/containerLogs/logging/alloy-b/alloy": dial tcp 10.0.0.103:10250: connect: '
            'no route to host',
            'Alloy is not shipping logs: check `kubectl get pods -n logging -l app.kubernetes.io/name=alloy -o '
            'wide` and its logs for "context deadline exceeded"; that is usually cross-node networking (Flannel '
            'VXLAN, UDP 8472, blocked between the nodes): run `o11yctl fix-vxlan --check` (`o11yctl doctor` runs '
            "it when Alloy's logs show this)"),
    'alloy logs unreadable only': Verdict(
            'FAIL',
            'the logs of alloy-b could not be read: the API server could not reach the kubelet of node-2: HTTP '
            '500: Get "https://10.0.0.103:10250/containerLogs/logging/alloy-b/alloy": dial tcp 10.0.0.103:10250: '
            'connect: no route to host',
            'the API server is up but cannot connect to the kubelet of node-2 (10.0.0.103:10250): K3s needs TCP '
            '10250 open from the server to every node (logs, exec and port-forward go that way); check that '
            "node's firewall for the server's address; `o11yctl doctor` diagnoses it and `o11yctl doctor --fix` "
            'opens the port'),
    'alloy logs some unreadable': Verdict(
            'FAIL',
            'the logs of alloy-b, alloy-d could not be read: the API server could not reach the kubelet of '
            'node-1, node-2: HTTP 500: Get "https://10.0.0.103:10250/containerLogs/logging/alloy-b/alloy": dial '
            'tcp 10.0.0.103:10250: connect: no route to host (the 2 other log(s) show no failed push)',
            'the API server is up but cannot connect to the kubelet of node-1, node-2 (10.0.0.102:10250, '
            '10.0.0.103:10250): K3s needs TCP 10250 open from the server to every node (logs, exec and '
            "port-forward go that way); check that node's firewall for the server's address; `o11yctl doctor` "
            'diagnoses it and `o11yctl doctor --fix` opens the port'),
    'ready at once': Verdict(
            'PASS',
            'ready'),
    'ready after warming up': Verdict(
            'PASS',
            'ready after warming up for 12.4s (2 answers 503)'),
    'ready unreachable': Verdict(
            'FAIL',
            'http://loki:3100: connection refused',
            'is Loki running? `kubectl get pods -n logging -o wide`; when reaching it directly, check the URL '
            '(http://loki:3100) and the port-forward: `kubectl port-forward -n logging svc/loki 3100:3100`'),
    'ready no endpoints': Verdict(
            'FAIL',
            'no Ready pod behind the Service after 12s: HTTP 503 ServiceUnavailable: no endpoints available for '
            'service "loki"',
            'the Loki pod is not Ready: see cluster.pod.loki (`o11yctl verify --only cluster`); `o11yctl doctor` '
            'names the cause'),
    'ready service missing': Verdict(
            'FAIL',
            'svc/loki:3100: HTTP 404 NotFound: services "loki" not found',
            'the Service does not exist: `o11yctl install --only loki`'),
    'ready still warming': Verdict(
            'FAIL',
            'still warming up after 12s: HTTP 503: Ingester not ready: waiting for 15s after being ready',
            'Loki answers 503 for a while after it starts (it was still warming up after 12s); wait a minute and '
            'run verify again, or give it longer with --timeout; if it stays so, NOT-READY'),
    'ready through a broken proxy': Verdict(
            'FAIL',
            "the Kubernetes API server could not connect to Loki's pod at 10.42.1.5:3100 behind svc/loki:3100: "
            'HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp 10.42.1.5:3100: i/o timeout',
            "the API server (on the K3s server) connects to Loki's pod (10.42.1.5:3100) over the pod network: is "
            'the pod Ready and listening (`kubectl get pods -n logging -o wide`)? A pod on another node is '
            "reached over Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"),
    'ready other status': Verdict(
            'FAIL',
            '/ready answered HTTP 500: boom',
            'NOT-READY'),
    'health unreachable': Verdict(
            'FAIL',
            'http://g: timed out',
            'HINT'),
    'health not grafana': Verdict(
            'FAIL',
            "http://g/api/health answered HTTP 200: <html>hello</html> (not Grafana's health JSON)",
            'HINT'),
    'health json without database': Verdict(
            'FAIL',
            'http://g/api/health answered HTTP 200: {"version": "12.3.1"} (not Grafana\'s health JSON)',
            'HINT'),
    'health through a broken proxy': Verdict(
            'FAIL',
            "the Kubernetes API server could not connect to Grafana's pod at 10.42.1.5:3100 behind "
            'svc/grafana:80: HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp '
            '10.42.1.5:3100: i/o timeout',
            "the API server (on the K3s server) connects to Grafana's pod (10.42.1.5:3100) over the pod network: "
            'is the pod Ready and listening (`kubectl get pods -n logging -o wide`)? A pod on another node is '
            "reached over Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"),
    'health 200 but database failing': Verdict(
            'FAIL',
            'Grafana ?: HTTP 200, database failing',
            'HINT'),
    'health long answer': Verdict(
            'FAIL',
            'http://g/api/health answered HTTP 200: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
            "xxxxxxxxxxxxxxxxxx… (not Grafana's health JSON)",
            'HINT'),
    'health ok': Verdict(
            'PASS',
            'through the route: Grafana 12.3.1, database ok'),
    'health ok without version': Verdict(
            'PASS',
            'through the route: Grafana ?, database ok'),
    'health database failing': Verdict(
            'FAIL',
            'Grafana 12.3.1: HTTP 503, database failing',
            'HINT'),
    'datasource unreachable': Verdict(
            'FAIL',
            'http://g: refused',
            'check the Grafana pod: `kubectl get pods -n logging -l app.kubernetes.io/name=grafana -o wide` and '
            '`kubectl logs -n logging -l app.kubernetes.io/name=grafana --tail=50`'),
    'datasource unauthorised': Verdict(
            'FAIL',
            'Grafana answered HTTP 401 (Unauthorized) for the data source API',
            'Grafana refused the credentials: set O11YCTL_GRAFANA_TOKEN to a service account token with the '
            'Admin role (Administration → Users and access → Service accounts)'),
    'datasource forbidden without message': Verdict(
            'FAIL',
            'Grafana answered HTTP 403 (HTTP 403: denied) for the data source API',
            'Grafana refused the credentials: set O11YCTL_GRAFANA_TOKEN to a service account token with the '
            'Admin role (Administration → Users and access → Service accounts)'),
    'datasource unauthorised, long answer': Verdict(
            'FAIL',
            'Grafana answered HTTP 401 (HTTP 401: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
            'xxxxxxxxxxxxxxxx…) for the data source API',
            'Grafana refused the credentials: set O11YCTL_GRAFANA_TOKEN to a service account token with the '
            'Admin role (Administration → Users and access → Service accounts)'),
    'datasource missing': Verdict(
            'FAIL',
            "no Loki data source with uid 'loki-ds'",
            "provision the data sources with the Grafana values: `o11yctl install --only grafana` (the runbook's "
            '`helm upgrade grafana ... --values 04-grafana-values.yaml`)'),
    'datasource api missing': Verdict(
            'FAIL',
            'http://g/api/datasources answered HTTP 404: 404 page not found',
            "is that Grafana's URL? It is served under a sub path (for example /grafana): include it in "
            '--grafana-url'),
    'datasource api missing, long answer': Verdict(
            'FAIL',
            'http://g/api/datasources answered HTTP 404: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
            'xxxxxxxxxxxxxxxxxxxxxxx…',
            "is that Grafana's URL? It is served under a sub path (for example /grafana): include it in "
            '--grafana-url'),
    'datasource server error': Verdict(
            'FAIL',
            "data source 'loki-ds': HTTP 500: oops",
            'check the Grafana pod: `kubectl get pods -n logging -l app.kubernetes.io/name=grafana -o wide` and '
            '`kubectl logs -n logging -l app.kubernetes.io/name=grafana --tail=50`'),
    'datasource not json': Verdict(
            'FAIL',
            "data source 'loki-ds': answer is not JSON",
            'check the Grafana pod: `kubectl get pods -n logging -l app.kubernetes.io/name=grafana -o wide` and '
            '`kubectl logs -n logging -l app.kubernetes.io/name=grafana --tail=50`'),
    'datasource wrong type': Verdict(
            'FAIL',
            "data source 'loki-ds' is of type 'prometheus', expected 'loki'",
            "provision the data sources with the Grafana values: `o11yctl install --only grafana` (the runbook's "
            '`helm upgrade grafana ... --values 04-grafana-values.yaml`)'),
    'datasource no health': Verdict(
            'FAIL',
            'Loki (loki-ds): no health answer',
            'check the Grafana pod: `kubectl get pods -n logging -l app.kubernetes.io/name=grafana -o wide` and '
            '`kubectl logs -n logging -l app.kubernetes.io/name=grafana --tail=50`'),
    'datasource health unreachable': Verdict(
            'FAIL',
            'Loki health check: reset',
            'check the Grafana pod: `kubectl get pods -n logging -l app.kubernetes.io/name=grafana -o wide` and '
            '`kubectl logs -n logging -l app.kubernetes.io/name=grafana --tail=50`'),
    'datasource health unauthorised': Verdict(
            'FAIL',
            "Grafana answered HTTP 403 for the health check of 'loki-ds'",
            'Grafana refused the credentials: set O11YCTL_GRAFANA_TOKEN to a service account token with the '
            'Admin role (Administration → Users and access → Service accounts)'),
    'datasource health 401': Verdict(
            'FAIL',
            "Grafana answered HTTP 401 for the health check of 'loki-ds'",
            'Grafana refused the credentials: set O11YCTL_GRAFANA_TOKEN to a service account token with the '
            'Admin role (Administration → Users and access → Service accounts)'),
    'datasource health failing': Verdict(
            'FAIL',
            "Loki (loki-ds): Grafana's health check says ERROR: Unable to connect with Loki",
            'Grafana cannot query Loki: is Loki ready (`o11yctl verify --only loki`)? Grafana and Loki run on '
            'different nodes, so this is often cross-node networking: `o11yctl fix-vxlan --check`'),
    'datasource health not OK': Verdict(
            'FAIL',
            "Loki (loki-ds): Grafana's health check says 200: HTTP 200: plain",
            'Grafana cannot query Loki: is Loki ready (`o11yctl verify --only loki`)? Grafana and Loki run on '
            'different nodes, so this is often cross-node networking: `o11yctl fix-vxlan --check`'),
    'datasources healthy': Verdict(
            'PASS',
            'Loki (loki-ds): Data source successfully connected.; Tempo (tempo-ds): ok'),
    'correlation problem': Verdict(
            'FAIL',
            "data source 'tempo-ds': HTTP 500: x",
            'check the Grafana pod: `kubectl get pods -n logging -l app.kubernetes.io/name=grafana -o wide` and '
            '`kubectl logs -n logging -l app.kubernetes.io/name=grafana --tail=50`'),
    'correlation unreachable': Verdict(
            'FAIL',
            'http://g: refused',
            'check the Grafana pod: `kubectl get pods -n logging -l app.kubernetes.io/name=grafana -o wide` and '
            '`kubectl logs -n logging -l app.kubernetes.io/name=grafana --tail=50`'),
    'correlation json data not a mapping': Verdict(
            'FAIL',
            "Tempo's trace-to-logs (tracesToLogsV2.datasourceUid) is not set, expected 'loki-ds'",
            'trace-to-logs and logs-to-trace links come from the Grafana values: re-apply them with `o11yctl '
            'install --only grafana`'),
    'correlation derived fields not a list': Verdict(
            'FAIL',
            "no derived field of Loki links to Tempo (derivedFields[].datasourceUid == 'tempo-ds')",
            'trace-to-logs and logs-to-trace links come from the Grafana values: re-apply them with `o11yctl '
            'install --only grafana`'),
    'correlation unset': Verdict(
            'FAIL',
            "Tempo's trace-to-logs (tracesToLogsV2.datasourceUid) is not set, expected 'loki-ds'",
            'trace-to-logs and logs-to-trace links come from the Grafana values: re-apply them with `o11yctl '
            'install --only grafana`'),
    'correlation elsewhere': Verdict(
            'FAIL',
            "Tempo's trace-to-logs (tracesToLogsV2.datasourceUid) points at 'other', expected 'loki-ds'",
            'trace-to-logs and logs-to-trace links come from the Grafana values: re-apply them with `o11yctl '
            'install --only grafana`'),
    'correlation not a mapping': Verdict(
            'FAIL',
            "Tempo's trace-to-logs (tracesToLogsV2.datasourceUid) is not set, expected 'loki-ds'",
            'trace-to-logs and logs-to-trace links come from the Grafana values: re-apply them with `o11yctl '
            'install --only grafana`'),
    'correlation no derived field': Verdict(
            'FAIL',
            "no derived field of Loki links to Tempo (derivedFields[].datasourceUid == 'tempo-ds')",
            'trace-to-logs and logs-to-trace links come from the Grafana values: re-apply them with `o11yctl '
            'install --only grafana`'),
    'correlation unnamed field': Verdict(
            'PASS',
            "trace → logs: Tempo → loki-ds; logs → trace: Loki's derived field → tempo-ds"),
    'correlation linked': Verdict(
            'PASS',
            "trace → logs: Tempo → loki-ds; logs → trace: Loki's TraceID → tempo-ds"),
    'loki push unreachable': Verdict(
            'FAIL',
            'push to http://loki:3100: connection refused',
            'is Loki running? `kubectl get pods -n logging -o wide`; when reaching it directly, check the URL '
            '(http://loki:3100) and the port-forward: `kubectl port-forward -n logging svc/loki 3100:3100`'),
    'loki push refused': Verdict(
            'FAIL',
            'push refused: HTTP 500: internal',
            "check Loki's config for errors and that its storage is writable (Permission denied on /var/loki: "
            '`o11yctl install --only storage` fixes the owner): `kubectl logs -n logging -l '
            'app.kubernetes.io/name=loki --tail=50`, or `o11yctl doctor`'),
    'loki push too old': Verdict(
            'FAIL',
            'push refused: HTTP 400: entry for stream has timestamp too old',
            "Loki rejects the line's timestamp: check this machine's clock (and the nodes'), then run again"),
    'loki push too far behind': Verdict(
            'FAIL',
            'push refused: HTTP 400: entry too far behind',
            "Loki rejects the line's timestamp: check this machine's clock (and the nodes'), then run again"),
    'loki push too new': Verdict(
            'FAIL',
            'push refused: HTTP 400: entry has timestamp too new',
            "Loki rejects the line's timestamp: check this machine's clock (and the nodes'), then run again"),
    'loki push through a broken proxy': Verdict(
            'FAIL',
            "the Kubernetes API server could not connect to Loki's pod at 10.42.1.5:3100 behind svc/loki:3100: "
            'HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp 10.42.1.5:3100: i/o timeout',
            "the API server (on the K3s server) connects to Loki's pod (10.42.1.5:3100) over the pod network: is "
            'the pod Ready and listening (`kubectl get pods -n logging -o wide`)? A pod on another node is '
            "reached over Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"),
    'loki query through a broken proxy': Verdict(
            'FAIL',
            "the Kubernetes API server could not connect to Loki's pod at 10.42.1.5:3100 behind svc/loki:3100: "
            'HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp 10.42.1.5:3100: i/o timeout',
            "the API server (on the K3s server) connects to Loki's pod (10.42.1.5:3100) over the pod network: is "
            'the pod Ready and listening (`kubectl get pods -n logging -o wide`)? A pod on another node is '
            "reached over Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"),
    'loki found': Verdict(
            'PASS',
            'pushed a line to {job="o11yctl-verify"} and read it back in 3.2s'),
    'loki query unreachable': Verdict(
            'FAIL',
            'query_range: reset',
            'is Loki running? `kubectl get pods -n logging -o wide`; when reaching it directly, check the URL '
            '(http://loki:3100) and the port-forward: `kubectl port-forward -n logging svc/loki 3100:3100`'),
    'loki query failing': Verdict(
            'FAIL',
            'query_range answered HTTP 500: query failed',
            "check Loki's config for errors and that its storage is writable (Permission denied on /var/loki: "
            '`o11yctl install --only storage` fixes the owner): `kubectl logs -n logging -l '
            'app.kubernetes.io/name=loki --tail=50`, or `o11yctl doctor`'),
    'loki line never found': Verdict(
            'FAIL',
            'pushed line (token o11yctl-verify-abc) not returned by query_range within 30s',
            'Loki accepted the line but does not return it: check that its storage is writable and the ingester '
            'is healthy: `kubectl logs -n logging -l app.kubernetes.io/name=loki --tail=50`'),
    'cluster logs unreachable': Verdict(
            'FAIL',
            'query_range: refused',
            'is Loki running? `kubectl get pods -n logging -o wide`; when reaching it directly, check the URL '
            '(http://loki:3100) and the port-forward: `kubectl port-forward -n logging svc/loki 3100:3100`'),
    'cluster logs failing': Verdict(
            'FAIL',
            'query_range answered HTTP 502: bad gateway',
            "check Loki's config for errors and that its storage is writable (Permission denied on /var/loki: "
            '`o11yctl install --only storage` fixes the owner): `kubectl logs -n logging -l '
            'app.kubernetes.io/name=loki --tail=50`, or `o11yctl doctor`'),
    'cluster logs through a broken proxy': Verdict(
            'FAIL',
            "the Kubernetes API server could not connect to Loki's pod at 10.42.1.5:3100 behind svc/loki:3100: "
            'HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp 10.42.1.5:3100: i/o timeout',
            "the API server (on the K3s server) connects to Loki's pod (10.42.1.5:3100) over the pod network: is "
            'the pod Ready and listening (`kubectl get pods -n logging -o wide`)? A pod on another node is '
            "reached over Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"),
    'cluster logs none': Verdict(
            'FAIL',
            'no log lines from {namespace="logging"} in the last 15 minutes',
            'Alloy is not shipping logs: check `kubectl get pods -n logging -l app.kubernetes.io/name=alloy -o '
            'wide` and its logs for "context deadline exceeded"; that is usually cross-node networking (Flannel '
            'VXLAN, UDP 8472, blocked between the nodes): run `o11yctl fix-vxlan --check` (`o11yctl doctor` runs '
            "it when Alloy's logs show this)"),
    'cluster logs many pods': Verdict(
            'PASS',
            '{namespace="logging"} has logs; the newest is 5s old (from p1, p2, p3, …)'),
    'cluster logs few pods': Verdict(
            'PASS',
            '{namespace="logging"} has logs; the newest is 20s old (from p1, p2, p3)'),
    'cluster logs one and a half seconds old': Verdict(
            'PASS',
            '{namespace="logging"} has logs; the newest is 2s old'),
    'cluster logs with odd values': Verdict(
            'PASS',
            '{namespace="logging"} has logs; the newest is 10s old (from p1)'),
    'cluster logs without pods': Verdict(
            'PASS',
            '{namespace="logging"} has logs; the newest is 0s old'),
    'tempo send unreachable': Verdict(
            'FAIL',
            'OTLP/HTTP http://tempo:4318: refused',
            "Tempo's OTLP/HTTP receiver listens on port 4318 (http://tempo:4318): check that the Tempo values "
            'enable the otlp http receiver and, when reaching it directly, the URL or the port-forward: `kubectl '
            'port-forward -n logging svc/tempo 4318:4318`'),
    'tempo send refused': Verdict(
            'FAIL',
            'OTLP/HTTP export refused: HTTP 500: no',
            "check Tempo's logs for errors and that its storage is writable: `kubectl logs -n logging tempo-0 "
            '--tail=50`, or `o11yctl doctor`'),
    'tempo send partly rejected': Verdict(
            'FAIL',
            'OTLP/HTTP export partly rejected: too old',
            "check Tempo's logs for errors and that its storage is writable: `kubectl logs -n logging tempo-0 "
            '--tail=50`, or `o11yctl doctor`'),
    'tempo send rejected silently': Verdict(
            'FAIL',
            'OTLP/HTTP export partly rejected: 2 span(s) rejected',
            "check Tempo's logs for errors and that its storage is writable: `kubectl logs -n logging tempo-0 "
            '--tail=50`, or `o11yctl doctor`'),
    'tempo send nothing rejected': Verdict(
            'PASS',
            'sent a span over OTLP/HTTP and fetched trace abababababababababababababababab back in 3.5s'),
    'tempo send through a broken proxy': Verdict(
            'FAIL',
            "the Kubernetes API server could not connect to Tempo's pod at 10.42.1.5:3100 behind svc/tempo:4318: "
            'HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp 10.42.1.5:3100: i/o timeout',
            "the API server (on the K3s server) connects to Tempo's pod (10.42.1.5:3100) over the pod network: "
            'is the pod Ready and listening (`kubectl get pods -n logging -o wide`)? A pod on another node is '
            "reached over Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"),
    'tempo fetch through a broken proxy': Verdict(
            'FAIL',
            "the Kubernetes API server could not connect to Tempo's pod at 10.42.1.5:3100 behind svc/tempo:3200: "
            'HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp 10.42.1.5:3100: i/o timeout',
            "the API server (on the K3s server) connects to Tempo's pod (10.42.1.5:3100) over the pod network: "
            'is the pod Ready and listening (`kubectl get pods -n logging -o wide`)? A pod on another node is '
            "reached over Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"),
    'tempo found': Verdict(
            'PASS',
            'sent a span over OTLP/HTTP and fetched trace abababababababababababababababab back in 3.5s'),
    'tempo found in otlp shape': Verdict(
            'PASS',
            'sent a span over OTLP/HTTP and fetched trace abababababababababababababababab back in 3.5s'),
    'tempo trace without the span': Verdict(
            'FAIL',
            'trace abababababababababababababababab came back without the span that was sent (cdcdcdcdcdcdcdcd)',
            'Tempo accepted the span but does not return it: check that its storage (/var/tempo) is writable: '
            '`kubectl logs -n logging tempo-0 --tail=50`'),
    'tempo fetch unreachable': Verdict(
            'FAIL',
            '/api/traces: refused',
            'is Tempo running? `kubectl get pods -n logging -o wide`; when reaching it directly, check the URL '
            '(http://tempo:3200) and the port-forward: `kubectl port-forward -n logging svc/tempo 3200:3200`'),
    'tempo not found': Verdict(
            'FAIL',
            'trace abababababababababababababababab still not found 3s after Tempo accepted it',
            'Tempo accepted the span but does not return it: check that its storage (/var/tempo) is writable: '
            '`kubectl logs -n logging tempo-0 --tail=50`'),
    'tempo fetch failing': Verdict(
            'FAIL',
            '/api/traces answered HTTP 500: oops',
            "check Tempo's logs for errors and that its storage is writable: `kubectl logs -n logging tempo-0 "
            '--tail=50`, or `o11yctl doctor`'),
    'search unreachable': Verdict(
            'FAIL',
            '/api/search: refused',
            'is Tempo running? `kubectl get pods -n logging -o wide`; when reaching it directly, check the URL '
            '(http://tempo:3200) and the port-forward: `kubectl port-forward -n logging svc/tempo 3200:3200`'),
    'search failing': Verdict(
            'FAIL',
            '/api/search answered HTTP 500: oops',
            "check Tempo's logs for errors and that its storage is writable: `kubectl logs -n logging tempo-0 "
            '--tail=50`, or `o11yctl doctor`'),
    'search without traces': Verdict(
            'FAIL',
            '/api/search answered 200 without a traces list: HTTP 200: {"metrics": {}}',
            "check Tempo's logs for errors and that its storage is writable: `kubectl logs -n logging tempo-0 "
            '--tail=50`, or `o11yctl doctor`'),
    'search not json': Verdict(
            'FAIL',
            '/api/search answered 200 without a traces list: HTTP 200: nope',
            "check Tempo's logs for errors and that its storage is writable: `kubectl logs -n logging tempo-0 "
            '--tail=50`, or `o11yctl doctor`'),
    'search through a broken proxy': Verdict(
            'FAIL',
            "the Kubernetes API server could not connect to Tempo's pod at 10.42.1.5:3100 behind svc/tempo:3200: "
            'HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp 10.42.1.5:3100: i/o timeout',
            "the API server (on the K3s server) connects to Tempo's pod (10.42.1.5:3100) over the pod network: "
            'is the pod Ready and listening (`kubectl get pods -n logging -o wide`)? A pod on another node is '
            "reached over Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"),
    'search long answer': Verdict(
            'FAIL',
            '/api/search answered 200 without a traces list: HTTP 200: '
            'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…',
            "check Tempo's logs for errors and that its storage is writable: `kubectl logs -n logging tempo-0 "
            '--tail=50`, or `o11yctl doctor`'),
    'search four services': Verdict(
            'PASS',
            'answers; 4 recent trace(s): a, b, c, d'),
    'search empty': Verdict(
            'PASS',
            'answers; 0 recent trace(s)'),
    'search few': Verdict(
            'PASS',
            'answers; 4 recent trace(s): a, b'),
    'search many': Verdict(
            'PASS',
            'answers; 6 recent trace(s): a, b, c, d, …'),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_situation_gets_its_verdict(case: str) -> None:
    assert CASES[case]() == EXPECTED[case]


def test_every_case_has_an_expected_verdict() -> None:
    assert set(CASES) == set(EXPECTED)


@pytest.mark.parametrize(("value", "expected"), [
    ("0123456789ABCDEF", "0123456789abcdef"),  # OTLP JSON: a span id in hex
    ("0123456789abcdef0123456789ABCDEF", "0123456789abcdef0123456789abcdef"),  # a trace id in hex
    ("AQIDBAUGBwg=", "0102030405060708"),  # Tempo's trace JSON: base64
    ("AQIDBAUGBwgJCgsM", "0102030405060708090a0b0c"),  # 16 characters, base64 but not hex
    ("XXXXXXXXXXXXXXXX", "5d75d75d75d75d75d75d75d7"),
    ("AQID BAUG", None),  # not base64: a space is not skipped
    ("!!!!", None),
    ("", None),
    (5, None),
])
def test_span_ids_are_read_as_hex_or_base64(value: Any, expected: str | None) -> None:
    assert tempo._hex_id(value) == expected
