"""The opt-in NetworkPolicies: what they let in, parsed from the rendered file; the config that turns them on."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from o11yctl.config import parse_config
from o11yctl.errors import ConfigError
from o11yctl.stack.plan import build_plan
from o11yctl.stack.render import render_config

NODES = """\
nodes:
  - name: node-1
    address: 198.18.0.1
    role: server
    pod_cidr: 10.42.0.0/24
  - name: node-2
    address: 198.18.0.2
    role: agent
    labels: {hardware: heavy}
    taints: [{key: heavy, value: "true", effect: NoSchedule}]
"""
ON = NODES + "network_policy:\n  enabled: true\n  allow_namespaces: [apps, shop]\n"


def _policies(text: str) -> dict[str, dict[str, Any]]:
    files = render_config(parse_config(text))
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(files["08-network-policies.yaml"]) if d}


def _peers(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return list(rule["from"])


def _ports(rule: dict[str, Any]) -> list[int] | None:
    return None if "ports" not in rule else [p["port"] for p in rule["ports"]]


def test_off_by_default_nothing_is_rendered_or_planned() -> None:
    cfg = parse_config(NODES)
    assert "08-network-policies.yaml" not in render_config(cfg)
    assert "policy" not in [s.id for s in build_plan(cfg).steps]


def test_loki_takes_alloy_grafana_the_named_namespaces_and_the_api_server() -> None:
    loki = _policies(ON)["loki-ingress"]
    assert loki["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "loki",
                                                          "app.kubernetes.io/instance": "loki"}
    assert loki["spec"]["policyTypes"] == ["Ingress"]
    own, clients, namespaces, api = loki["spec"]["ingress"]
    assert _peers(own) == [{"podSelector": {"matchLabels": loki["spec"]["podSelector"]["matchLabels"]}}]
    assert _ports(own) is None  # its own pods on every port: memberlist
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in _peers(clients)] == [
        "alloy", "grafana"]
    assert _ports(clients) == [3100]
    assert [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in _peers(namespaces)] == [
        "apps", "shop"]
    assert [p["ipBlock"]["cidr"] for p in _peers(api)] == ["198.18.0.1/32", "10.42.0.0/32", "10.42.0.1/32"]
    assert _ports(api) == [3100]


def test_tempo_takes_otlp_from_the_named_namespaces_and_only_queries_from_grafana() -> None:
    tempo = _policies(ON)["tempo-ingress"]
    _own, clients, namespaces, api = tempo["spec"]["ingress"]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in _peers(clients)] == ["grafana"]
    assert _ports(clients) == [3200]
    assert _ports(namespaces) == [3200, 4317, 4318]
    assert _ports(api) == [3200, 4317, 4318]  # verify's span goes in through the service proxy


def test_no_named_namespaces_means_no_namespace_rule() -> None:
    tempo = _policies(NODES + "network_policy:\n  enabled: true\n")["tempo-ingress"]
    assert not any("namespaceSelector" in peer for rule in tempo["spec"]["ingress"] for peer in rule["from"])


def test_the_policy_step_comes_right_after_the_namespace() -> None:
    step = build_plan(parse_config(ON)).step("policy")
    assert (step.action, step.manifest, step.depends_on) == ("apply", "08-network-policies.yaml", ("namespace",))


@pytest.mark.parametrize(("text", "message"), [
    ("network_policy:\n  enabled: true\n", "nodes[0].pod_cidr: required on a server node when network_policy.enabled"),
    (NODES.replace("10.42.0.0/24", "10.42.0.7/24") + "network_policy:\n  enabled: true\n",
     "nodes[0].pod_cidr: expected a network like 10.42.0.0/24"),
    (ON.replace("[apps, shop]", "[Apps]"), "network_policy.allow_namespaces[0]"),
])
def test_bad_settings_name_their_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert message in str(info.value)
