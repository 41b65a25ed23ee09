"""The next thing to do when a check does not pass, in the runbook's own words and commands."""

from __future__ import annotations


def unreachable(component: str, where: str, namespace: str, *, service: str, port: int) -> str:
    """A service did not answer at all."""
    return (
        f"is {component} running? `kubectl get pods -n {namespace} -o wide`; when reaching it directly, check "
        f"the URL ({where}) and the port-forward: `kubectl port-forward -n {namespace} svc/{service} {port}:{port}`"
    )


def loki_not_ready(namespace: str) -> str:
    """The runbook's "Pod running but /ready fails"."""
    return (
        "check Loki's config for errors and that its storage is writable (Permission denied on /var/loki: "
        "`o11yctl install --only storage` fixes the owner): "
        f"`kubectl logs -n {namespace} -l app.kubernetes.io/name=loki --tail=50`, or `o11yctl doctor`"
    )


def warming_up(component: str, seconds: float) -> str:
    return (
        f"{component} answers 503 for a while after it starts (it was still warming up after {seconds:.0f}s); "
        "wait a minute and run verify again, or give it longer with --timeout"
    )


def loki_storage(namespace: str) -> str:
    return (
        "Loki accepted the line but does not return it: check that its storage is writable and the ingester "
        f"is healthy: `kubectl logs -n {namespace} -l app.kubernetes.io/name=loki --tail=50`"
    )


def alloy_not_shipping(namespace: str) -> str:
    """The runbook's "Alloy running but no logs in Loki"."""
    return (
        f"Alloy is not shipping logs: check `kubectl get pods -n {namespace} -l app.kubernetes.io/name=alloy -o wide` "
        "and its logs for \"context deadline exceeded\"; that is usually cross-node networking (Flannel VXLAN, "
        "UDP 8472, blocked between the nodes): run `o11yctl fix-vxlan --check` (`o11yctl doctor` runs it when "
        "Alloy's logs show this)"
    )


def tempo_not_ready(namespace: str) -> str:
    return (
        "check Tempo's logs for errors and that its storage is writable: "
        f"`kubectl logs -n {namespace} tempo-0 --tail=50`, or `o11yctl doctor`"
    )


def tempo_storage(namespace: str) -> str:
    return (
        "Tempo accepted the span but does not return it: check that its storage (/var/tempo) is writable: "
        f"`kubectl logs -n {namespace} tempo-0 --tail=50`"
    )


def otlp_unreachable(namespace: str, where: str) -> str:
    return (
        f"Tempo's OTLP/HTTP receiver listens on port 4318 ({where}): check that the Tempo values enable the "
        f"otlp http receiver and, when reaching it directly, the URL or the port-forward: "
        f"`kubectl port-forward -n {namespace} svc/tempo 4318:4318`"
    )


def grafana_down(namespace: str) -> str:
    return (
        f"check the Grafana pod: `kubectl get pods -n {namespace} -l app.kubernetes.io/name=grafana -o wide` and "
        f"`kubectl logs -n {namespace} -l app.kubernetes.io/name=grafana --tail=50`"
    )


def grafana_credentials() -> str:
    return (
        "Grafana refused the credentials: set O11YCTL_GRAFANA_TOKEN to a service account token with the Admin "
        "role (Administration → Users and access → Service accounts)"
    )


def datasource_missing() -> str:
    return (
        "provision the data sources with the Grafana values: `o11yctl install --only grafana` (the runbook's "
        "`helm upgrade grafana ... --values 04-grafana-values.yaml`)"
    )


def datasource_unhealthy(component: str) -> str:
    return (
        f"Grafana cannot query {component}: is {component} ready (`o11yctl verify --only "
        f"{component.lower()}`)? Grafana and {component} run on different nodes, so this is often cross-node "
        "networking: `o11yctl fix-vxlan --check`"
    )


def correlation() -> str:
    return (
        "trace-to-logs and logs-to-trace links come from the Grafana values: re-apply them with "
        "`o11yctl install --only grafana`"
    )


def route(namespace: str, gateway: str) -> str:
    return (
        f"check the HTTPRoute: `kubectl get httproute -n {namespace} grafana -o yaml` (status.parents: Accepted, "
        f"ResolvedRefs) and the Gateway {gateway}; Envoy answers 404 when no route matches and 503 "
        "\"no healthy upstream\" when Grafana has no ready pod"
    )


def pod_unreachable(component: str, namespace: str, address: str | None) -> str:
    """The API server answered for the Service: it could not connect to the pod (``error trying to reach service``)."""
    at = f" ({address})" if address else ""
    return (
        f"the API server (on the K3s server) connects to {component}'s pod{at} over the pod network: is the pod "
        f"Ready and listening (`kubectl get pods -n {namespace} -o wide`)? A pod on another node is reached over "
        "Flannel's VXLAN (UDP 8472): `o11yctl fix-vxlan --check`; `o11yctl doctor` checks both"
    )


def no_endpoints(component: str, namespace: str) -> str:
    """The Service has no Ready endpoint (``no endpoints available for service``)."""
    return (
        f"no {component} pod is Ready behind the Service: see cluster.pod.{component.lower()} (`o11yctl verify "
        f"--only cluster`, `kubectl get pods -n {namespace} -o wide`); `o11yctl doctor` names the cause"
    )


def store_master_no_endpoints(namespace: str) -> str:
    """The store's master Service has no endpoint: it lists not-Ready pods too, so no master pod has an address."""
    return (
        "no master pod of the object store has an address (its Service lists not-Ready pods too, so none has "
        f"started): `kubectl get pods -n {namespace} -l app.kubernetes.io/name=seaweedfs,"
        "app.kubernetes.io/component=master -o wide`; `o11yctl verify --only cluster` (cluster.pods.store) and "
        "`o11yctl doctor` name the cause"
    )


def store_master_answer(namespace: str) -> str:
    """The store's master answered, but not with its volume status (no leader to proxy to, a whitelist)."""
    return (
        "the masters proxy /vol/status to their Raft leader: is one elected? "
        f"`kubectl logs -n {namespace} -l app.kubernetes.io/name=seaweedfs,app.kubernetes.io/component=master "
        "--tail=50`, or `o11yctl doctor`"
    )


def api_server_answer(component: str, namespace: str) -> str:
    """Another Status from the API server in the service's place."""
    return (
        f"the request did not reach {component}: the API server refused or could not proxy it (its message above); "
        f"check the Service (`kubectl get svc -n {namespace}`) and run `o11yctl doctor`"
    )


def kubelet_unreachable(nodes: str, addresses: str) -> str:
    """The API server could not reach the kubelet of these nodes (logs, exec, port-forward)."""
    return (
        f"the API server is up but cannot connect to the kubelet of {nodes} ({addresses}): K3s needs TCP 10250 open "
        "from the server to every node (logs, exec and port-forward go that way); check that node's firewall for "
        "the server's address; `o11yctl doctor` diagnoses it and `o11yctl doctor --fix` opens the port"
    )


def store_unanswered(error: str | None, default: str) -> str:
    """An external object store that did not answer: an untrusted certificate names ``ca_file``."""
    text = (error or "").lower()
    if "certificate verify failed" in text or "certificate_verify_failed" in text:
        if "hostname mismatch" in text or "ip address mismatch" in text:
            return ("the store's TLS certificate does not name the host in object_storage.endpoint: use the name "
                    "the certificate was issued for")
        return ("the store's TLS certificate is not trusted: set object_storage.ca_file to the CA (PEM) that signed "
                "it; Loki, Tempo and o11yctl's checks then trust that CA")
    return default
