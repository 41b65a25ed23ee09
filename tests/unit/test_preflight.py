"""Preflight judgements: plain dicts in (what the API returned), problems out."""

from __future__ import annotations

from typing import Any

import pytest

from o11yctl.config import default_config, parse_config
from o11yctl.deploy.preflight import (
    Problem,
    judge_gateway,
    judge_node_fix,
    judge_nodes,
    judge_pending,
    listener_admits,
    node_fix,
    raise_problems,
)
from o11yctl.errors import PreflightError
from o11yctl.executors.helm import Release
from o11yctl.stack.nodes import NodeTaint


def _node(name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None
          ) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def _gateway(*listeners: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "eg", "namespace": "default"}, "spec": {"listeners": list(listeners)}}


def test_every_configured_node_must_exist() -> None:
    cfg = default_config()
    assert judge_nodes(cfg, [_node("node-1"), _node("node-2")]) == []
    (problem,) = judge_nodes(cfg, [_node("node-1"), _node("worker")])
    assert problem.message == ("node node-2 (nodes[].name in the config) is not in the cluster; it has: "
                               "node-1, worker")


def test_missing_label_and_taint_name_the_kubectl_commands() -> None:
    cfg = default_config()
    fix = node_fix(cfg, _node("node-2"))
    assert fix is not None
    assert fix.commands() == ["kubectl label node node-2 hardware=heavy --overwrite",
                              "kubectl taint node node-2 heavy=true:NoSchedule --overwrite"]
    (problem,) = judge_node_fix(fix, label_nodes=False)
    assert "lacks the label hardware=heavy and taint heavy=true:NoSchedule" in problem.message
    assert "--label-nodes" in (problem.hint or "")
    assert judge_node_fix(fix, label_nodes=True) == []
    ok = _node("node-2", {"hardware": "heavy"}, [{"key": "heavy", "value": "true", "effect": "NoSchedule"}])
    assert node_fix(cfg, ok) is None
    wrong_effect = _node("node-2", {"hardware": "heavy"}, [{"key": "heavy", "value": "true", "effect": "NoExecute"}])
    fix = node_fix(cfg, wrong_effect)
    assert fix is not None and not fix.labels
    assert fix.removed == (NodeTaint("heavy", "true", "NoExecute"),)  # the config owns the taint key heavy
    assert fix.taints == (NodeTaint("heavy", "true", "NoSchedule"),)
    assert fix.commands() == ["kubectl taint node node-2 heavy:NoExecute-",
                              "kubectl taint node node-2 heavy=true:NoSchedule --overwrite"]


@pytest.mark.parametrize("allowed, gateway_ns, labels, admits", [
    (None, "default", {}, False),  # the default is Same: only the Gateway's own namespace
    (None, "logging", {}, True),
    ({"namespaces": {"from": "All"}}, "default", {}, True),
    ({"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "o11y"}}}}, "default",
     {"team": "o11y"}, True),
    ({"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "o11y"}}}}, "default", {}, False),
    ({"namespaces": {"from": "Selector", "selector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["logging"]}]}}}, "default",
     {"kubernetes.io/metadata.name": "logging"}, True),
    ({"namespaces": {"from": "All"}, "kinds": [{"kind": "GRPCRoute"}]}, "default", {}, False),
])
def test_listener_allowed_routes(allowed: dict[str, Any] | None, gateway_ns: str, labels: dict[str, str],
                                 admits: bool) -> None:
    listener: dict[str, Any] = {"name": "http", "protocol": "HTTP", "port": 80}
    if allowed is not None:
        listener["allowedRoutes"] = allowed
    assert (listener_admits(listener, gateway_ns, "logging", labels) is None) is admits


def test_gateway_problems() -> None:
    cfg = default_config()
    (p,) = judge_gateway(cfg, has_crds=False, gateway=None, namespace_labels={})
    assert "Gateway API CRDs are not installed" in p.message and "--skip route" in (p.hint or "")
    (p,) = judge_gateway(cfg, has_crds=True, gateway=None, namespace_labels={})
    assert p.message == "Gateway default/eg (route.gateway in the config) does not exist"
    (p,) = judge_gateway(cfg, has_crds=True, gateway=_gateway({"name": "https", "protocol": "HTTPS"}),
                         namespace_labels={})
    assert p.message == "Gateway default/eg has no listener 'http' (it has: https)"
    (p,) = judge_gateway(cfg, has_crds=True, gateway=_gateway({"name": "http", "protocol": "HTTP"}),
                         namespace_labels={})
    assert "admits routes only from its own namespace default" in p.message
    assert "allowedRoutes.namespaces.from: All" in (p.hint or "")
    any_listener = parse_config("route:\n  gateway:\n    listener: null\n")
    gw = _gateway({"name": "a", "protocol": "TCP"},
                  {"name": "b", "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}})
    assert judge_gateway(any_listener, has_crds=True, gateway=gw, namespace_labels={}) == []


def test_an_https_route_url_needs_an_https_listener() -> None:
    admitting = {"namespaces": {"from": "All"}}
    https = parse_config("route:\n  url: https://grafana.lan/grafana\n  gateway:\n    listener: https\n")
    assert judge_gateway(https, has_crds=True, gateway=_gateway(
        {"name": "https", "protocol": "HTTPS", "allowedRoutes": admitting}), namespace_labels={}) == []
    (p,) = judge_gateway(https, has_crds=True, gateway=_gateway(
        {"name": "https", "protocol": "HTTP", "allowedRoutes": admitting}), namespace_labels={})
    assert p.message == ("route.url is https:// but the route attaches to Gateway default/eg listener(s) "
                         "https (HTTP), none of which speaks HTTPS")
    assert "certificateRefs" in (p.hint or "")
    # an http:// URL on an HTTPS-only listener: Grafana would write http:// links behind TLS
    plain = parse_config("route:\n  gateway:\n    listener: null\n")
    (p,) = judge_gateway(plain, has_crds=True, gateway=_gateway(
        {"name": "https", "protocol": "HTTPS", "allowedRoutes": admitting}), namespace_labels={})
    assert "route.url is http://" in p.message
    # with every listener, one that speaks the URL's scheme is enough
    assert judge_gateway(plain, has_crds=True, gateway=_gateway(
        {"name": "https", "protocol": "HTTPS", "allowedRoutes": admitting},
        {"name": "http", "protocol": "HTTP", "allowedRoutes": admitting}), namespace_labels={}) == []


def test_pod_cidrs_must_be_the_clusters() -> None:
    from o11yctl.deploy.preflight import judge_pod_cidrs

    cfg = parse_config("nodes:\n  - {name: node-1, address: 198.18.0.1, role: server, pod_cidr: 10.42.0.0/24}\n"
                       "storage:\n  node: node-1\ncomponents:\n  grafana:\n    node: node-1\n")
    node = {"metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.42.0.0/24"}}
    assert judge_pod_cidrs(cfg, [node]) == []
    (p,) = judge_pod_cidrs(cfg, [{"metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.42.3.0/24"}}])
    assert p.message.startswith("nodes[0].pod_cidr is 10.42.0.0/24 but the cluster gave node node-1 10.42.3.0/24")
    assert "jsonpath='{.spec.podCIDR}'" in (p.hint or "")
    (p,) = judge_pod_cidrs(cfg, [{"metadata": {"name": "node-1"}, "spec": {}}])
    assert "no podCIDR" in p.message


def test_pending_release_needs_recover() -> None:
    rel = Release("loki", "logging", 3, "pending-upgrade", "loki-6.21.0", updated="2025-01-01 10:00:00 +0000 UTC")
    (p,) = judge_pending({"loki": rel}, ["loki", "tempo"], recover=False, namespace="logging")
    assert p.message.startswith("helm release logging/loki is pending-upgrade (revision 3")
    assert "--recover" in (p.hint or "")
    assert judge_pending({"loki": rel}, ["loki"], recover=True, namespace="logging") == []
    assert judge_pending({"loki": rel}, ["tempo"], recover=False, namespace="logging") == []


def test_problems_become_one_preflight_error() -> None:
    raise_problems([])
    with pytest.raises(PreflightError) as one:
        raise_problems([Problem("a is wrong", "fix a")])
    assert one.value.exit_code == 3
    assert one.value.message == "preflight: a is wrong; nothing was changed" and one.value.hint == "fix a"
    with pytest.raises(PreflightError) as two:
        raise_problems([Problem("a is wrong", "fix a"), Problem("b is wrong")])
    assert two.value.message.splitlines() == ["preflight found 2 problems; nothing was changed:",
                                              "  - a is wrong", "  - b is wrong"]
