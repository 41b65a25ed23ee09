"""The NetworkPolicies' selectors against the pods the real charts render, for every chart set.

A policy whose podSelector matches no pod protects nothing; a client selector that matches no
pod locks Alloy or Grafana out. Both are read here from `helm template` of the real charts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from o11yctl.config import parse_config
from o11yctl.stack.context import build_context
from o11yctl.stack.render import render_files

pytestmark = pytest.mark.charts

HelmTemplate = Callable[..., list[dict[str, Any]]]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
VALUES = {"loki": "02-loki-values.yaml", "alloy": "03-alloy-values.yaml", "grafana": "04-grafana-values.yaml",
          "tempo": "07-tempo-values.yaml"}


def _pod_labels(helm_template: HelmTemplate, ctx: dict[str, Any], chart: str) -> list[dict[str, str]]:
    files = render_files(ctx)
    objects = helm_template(chart, files[VALUES[chart]], release=ctx[chart]["release"], namespace=ctx["namespace"])
    return [o["spec"]["template"]["metadata"]["labels"] for o in objects if o["kind"] in WORKLOADS]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_policies_select_the_charts_pods(helm_template: HelmTemplate, chart_set: str) -> None:
    cfg = parse_config(f"charts:\n  set: {chart_set}\n"
                       "nodes:\n  - {name: node-1, address: 198.18.0.1, role: server, pod_cidr: 10.42.0.0/24}\n"
                       "  - {name: node-2, address: 198.18.0.2, role: agent, labels: {hardware: heavy}}\n"
                       "network_policy:\n  enabled: true\n")
    ctx = build_context(cfg)
    pods = {chart: _pod_labels(helm_template, ctx, chart) for chart in VALUES}
    policies = [d for d in yaml.safe_load_all(render_files(ctx)["08-network-policies.yaml"]) if d]
    assert {p["metadata"]["name"] for p in policies} == {"loki-ingress", "tempo-ingress"}
    for policy in policies:
        protected = policy["metadata"]["name"].removesuffix("-ingress")
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert pods[protected] and all(_matches(selector, labels) for labels in pods[protected]), (selector, pods)
        for other in VALUES:  # it selects nothing else
            if other != protected:
                assert not any(_matches(selector, labels) for labels in pods[other])
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                if "podSelector" in peer:
                    client = peer["podSelector"]["matchLabels"]
                    assert any(_matches(client, labels) for chart in VALUES for labels in pods[chart]), client
