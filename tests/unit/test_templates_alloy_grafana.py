"""Alloy and Grafana: the Helm values (03, 04) and Grafana's HTTPRoute (05).

These tests parse the rendered files and check the properties the runbook relies
on, down to the Alloy configuration inside the values. What the real charts make
of the values is checked in tests/charts/test_chart_alloy_grafana.py. The last
test scans all eight files for anything that looks like a credential.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from o11yctl.stack.render import render_files

ALLOY_VALUES = "03-alloy-values.yaml"
GRAFANA_VALUES = "04-grafana-values.yaml"
ROUTE = "05-grafana-httproute.yaml"
REGISTRY = "registry.lan:5000"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _parse(files: dict[str, str]) -> dict[str, list[Any]]:
    return {name: [d for d in yaml.safe_load_all(text) if d is not None] for name, text in files.items()}


def _values(rendered: dict[str, list[Any]], name: str) -> dict[str, Any]:
    docs = rendered[name]
    assert len(docs) == 1, f"{name} should be a single YAML document"
    assert isinstance(docs[0], dict)
    return docs[0]


def _render(context: dict[str, Any]) -> dict[str, list[Any]]:
    return _parse(render_files(context))


# --- a small reader for the Alloy configuration ------------------------------------------------------------------


def _code(text: str) -> str:
    """The configuration with // comments blanked out (string literals kept), braces checked."""
    out: list[str] = []
    depth, i, in_string = 0, 0, False
    while i < len(text):
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\":
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0, "unbalanced '}' in the Alloy configuration"
            out.append(ch)
        i += 1
    assert not in_string, "unterminated string in the Alloy configuration"
    assert depth == 0, "unbalanced '{' in the Alloy configuration"
    return "".join(out)


def _body_at(code: str, open_brace: int) -> str:
    depth, in_string, i = 0, False, open_brace
    while True:
        ch = code[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return code[open_brace + 1 : i]
        i += 1


def _components(code: str) -> dict[str, str]:
    """Top-level components: 'discovery.kubernetes.pods' -> block body."""
    found = {}
    for m in re.finditer(r'^([a-z_]+(?:\.[a-z_]+)+)\s+"([A-Za-z0-9_]+)"\s*\{', code, re.M):
        key = f"{m.group(1)}.{m.group(2)}"
        assert key not in found, f"component {key} is declared twice"
        found[key] = _body_at(code, m.end() - 1)
    return found


def _blocks(body: str, name: str) -> list[str]:
    return [_body_at(body, m.end() - 1) for m in re.finditer(rf"(?<![\w.]){name}\s*\{{", body)]


def _top_level(body: str) -> str:
    """The body without its nested blocks."""
    out: list[str] = []
    depth, in_string, i = 0, False, 0
    while i < len(body):
        ch = body[i]
        if in_string:
            if ch == "\\":
                if depth == 0:
                    out.append(ch + body[i + 1])
                i += 2
                continue
            in_string = ch != '"'
        elif ch == '"':
            in_string = True
        elif ch in "{}":
            depth += 1 if ch == "{" else -1
            i += 1
            continue
        if depth == 0:
            out.append(ch)
        i += 1
    return "".join(out)


def _attr(body: str, name: str) -> str:
    matches = re.findall(rf"^\s*{name}\s*=\s*(.+?)\s*$", _top_level(body), re.M)
    assert len(matches) == 1, f"expected one {name} attribute, found {matches}"
    return str(matches[0])


def _literal(expr: str) -> Any:
    """A string or list-of-strings literal (Alloy and JSON agree on these)."""
    return json.loads(expr)


def _alloy(rendered: dict[str, list[Any]]) -> dict[str, str]:
    content = _values(rendered, ALLOY_VALUES)["alloy"]["configMap"]["content"]
    assert isinstance(content, str)
    return _components(_code(content))


def _relabel_rules(components: dict[str, str]) -> dict[str, dict[str, Any]]:
    """target_label -> the rule's other attributes, for the one discovery.relabel component."""
    relabels = [body for key, body in components.items() if key.startswith("discovery.relabel.")]
    assert len(relabels) == 1
    rules: dict[str, dict[str, Any]] = {}
    for rule in _blocks(relabels[0], "rule"):
        attrs = dict(re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", rule, re.M))
        target = _literal(attrs.pop("target_label"))
        assert target not in rules, f"two rules write {target}"
        rules[target] = {k: _literal(v) for k, v in attrs.items()}
    return rules


# --- 03: Alloy ---------------------------------------------------------------------------------------------------


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    """Kubernetes' rule: does any toleration match this taint?"""
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol["key"] == taint["key"]:
                return True
        elif tol.get("key") == taint["key"] and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def test_alloy_is_a_daemonset_on_every_node(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    controller = _values(rendered, ALLOY_VALUES)["controller"]
    assert controller["type"] == "daemonset"
    assert not controller.get("nodeSelector") and not controller.get("affinity")
    # The storage node's taint (heavy=true:NoSchedule), and any taint added later.
    storage_taints = [{"key": t["key"], "value": t.get("value", ""), "effect": t["effect"]}
                      for t in context["heavy_tolerations"]]
    later_taints = [{"key": "node-role.kubernetes.io/control-plane", "value": "", "effect": "NoSchedule"},
                    {"key": "gpu", "value": "a100", "effect": "NoExecute"}]
    for taint in [*storage_taints, *later_taints]:
        assert _tolerates(controller["tolerations"], taint), taint


def test_alloy_discovers_only_the_pods_of_its_own_node(rendered: dict[str, list[Any]]) -> None:
    components = _alloy(rendered)
    discovery = [body for key, body in components.items() if key.startswith("discovery.kubernetes.")]
    assert len(discovery) == 1
    assert _literal(_attr(discovery[0], "role")) == "pod"
    (selector,) = _blocks(discovery[0], "selectors")
    assert _literal(_attr(selector, "role")) == "pod"
    # The chart sets HOSTNAME from spec.nodeName (checked against the chart in tests/charts).
    assert re.fullmatch(r'"spec\.nodeName=" \+ coalesce\(sys\.env\("HOSTNAME"\), constants\.hostname\)',
                        _attr(selector, "field"))


def test_alloy_labels_namespace_pod_container_node_and_cluster(
    rendered: dict[str, list[Any]], context: dict[str, Any]
) -> None:
    rules = _relabel_rules(_alloy(rendered))
    assert rules == {
        "namespace": {"source_labels": ["__meta_kubernetes_namespace"]},
        "pod": {"source_labels": ["__meta_kubernetes_pod_name"]},
        "container": {"source_labels": ["__meta_kubernetes_pod_container_name"]},
        "node": {"source_labels": ["__meta_kubernetes_pod_node_name"]},
        # No source label: the default regex (.*) matches "", so the label is set to the replacement.
        "cluster": {"replacement": context["cluster"]},
    }


def test_alloy_pipeline_runs_from_discovery_to_loki(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    components = _alloy(rendered)
    assert set(components) == {
        "discovery.kubernetes.pods", "discovery.relabel.pod_logs", "loki.source.kubernetes.pod_logs",
        "loki.write.default",
    }
    assert _attr(components["discovery.relabel.pod_logs"], "targets") == "discovery.kubernetes.pods.targets"
    source = components["loki.source.kubernetes.pod_logs"]
    assert _attr(source, "targets") == "discovery.relabel.pod_logs.output"
    assert _attr(source, "forward_to") == "[loki.write.default.receiver]"
    (endpoint,) = _blocks(components["loki.write.default"], "endpoint")
    assert _literal(_attr(endpoint, "url")) == context["loki"]["push_url"]
    # Every exported field the configuration reads belongs to a declared component.
    code = "\n".join(components.values())
    for ref in re.findall(r"\b([a-z_]+(?:\.[a-z_]+)+)\.(?:targets|output|receiver)\b", code):
        assert ref in components, f"{ref} is referenced but not declared"


def test_alloy_reads_logs_through_the_api_with_least_privilege(rendered: dict[str, list[Any]]) -> None:
    values = _values(rendered, ALLOY_VALUES)
    # loki.source.kubernetes: no host path, no root needed.
    assert values["alloy"]["mounts"] == {"varlog": False, "dockercontainers": False}
    assert "volumes" not in values["controller"]
    rules = values["rbac"]["rules"] + values["rbac"]["clusterRules"]

    def allows(resource: str, verb: str) -> bool:
        return any("" in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)

    assert values["rbac"]["create"] is True
    assert all(allows("pods", verb) for verb in ("get", "list", "watch"))
    assert allows("pods/log", "get")
    granted = {res for r in rules for res in r.get("resources", [])}
    assert granted == {"pods", "pods/log"}, "nothing beyond what the configuration uses (no secrets, no configmaps)"
    assert values["crds"]["create"] is False


def test_alloy_config_follows_the_context(context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["cluster"] = 'lab "two"'
    ctx["loki"]["push_url"] = "http://logs.example.svc:3100/loki/api/v1/push"
    components = _alloy(_render(ctx))
    assert _relabel_rules(components)["cluster"] == {"replacement": 'lab "two"'}
    (endpoint,) = _blocks(components["loki.write.default"], "endpoint")
    assert _literal(_attr(endpoint, "url")) == "http://logs.example.svc:3100/loki/api/v1/push"


# --- 04: Grafana -------------------------------------------------------------------------------------------------


def _datasources(rendered: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    provisioning = _values(rendered, GRAFANA_VALUES)["datasources"]
    assert list(provisioning) == ["datasources.yaml"]
    doc = provisioning["datasources.yaml"]
    assert doc["apiVersion"] == 1
    by_type = {ds["type"]: ds for ds in doc["datasources"]}
    assert sorted(by_type) == ["loki", "tempo"]
    return by_type


def test_grafana_runs_on_its_node(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    values = _values(rendered, GRAFANA_VALUES)
    assert values["nodeSelector"] == {"kubernetes.io/hostname": context["grafana"]["node"]}
    assert not values.get("tolerations")


def test_grafana_datasources_are_loki_and_tempo(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    ds = _datasources(rendered)
    assert ds["loki"]["uid"] == context["datasources"]["loki_uid"]
    assert ds["loki"]["url"] == context["loki"]["url"]
    assert ds["tempo"]["uid"] == context["datasources"]["tempo_uid"]
    assert ds["tempo"]["url"] == context["tempo"]["url"]
    assert [d["name"] for d in ds.values() if d.get("isDefault")] == ["Loki"]
    for d in ds.values():
        assert d["access"] == "proxy"
        assert "secureJsonData" not in d and "basicAuth" not in d


def test_trace_to_logs_points_at_loki(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    t2l = _datasources(rendered)["tempo"]["jsonData"]["tracesToLogsV2"]
    assert t2l["datasourceUid"] == context["datasources"]["loki_uid"]
    assert t2l["filterByTraceID"] is True
    assert t2l["spanStartTimeShift"].startswith("-") and not t2l["spanEndTimeShift"].startswith("-")
    # The custom query links every span: every stream carries the cluster label (see the Alloy config).
    assert t2l["customQuery"] is True
    assert t2l["query"] == f'{{cluster="{context["cluster"]}"}} |= "$${{__trace.traceId}}"'


def test_logs_to_trace_points_at_tempo(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    (field,) = _datasources(rendered)["loki"]["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == context["datasources"]["tempo_uid"]
    assert field["matcherType"] == "regex"
    # Escaped for Grafana's provisioning: it becomes ${__value.raw} once loaded.
    assert field["url"] == "$${__value.raw}"
    regex = re.compile(field["matcherRegex"])
    for line in (f"INFO handled request trace_id={TRACE_ID} span_id=00f067aa0ba902b7",
                 f'{{"level": "info", "trace_id": "{TRACE_ID}", "msg": "ok"}}',
                 f'{{"traceId":"{TRACE_ID}"}}', f"traceID={TRACE_ID}"):
        match = regex.search(line)
        assert match and match.group(1) == TRACE_ID, line
    assert not regex.search("span_id=00f067aa0ba902b7 request_id=42")


def test_provisioning_has_no_unescaped_variables(rendered: dict[str, list[Any]]) -> None:
    """Grafana expands $VAR and ${VAR} in provisioning files from its environment; $$ keeps a literal $."""
    text = yaml.safe_dump(_values(rendered, GRAFANA_VALUES)["datasources"])
    assert "$" in text
    assert "$" not in text.replace("$$", ""), "a single $ would be expanded from Grafana's environment"


def test_grafana_is_served_from_the_sub_path(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    server = _values(rendered, GRAFANA_VALUES)["grafana.ini"]["server"]
    assert server["root_url"] == context["grafana"]["root_url"]
    assert server["serve_from_sub_path"] is True
    assert server["root_url"].rstrip("/").endswith(context["grafana"]["sub_path"])


def test_grafana_service_is_the_routes_backend(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    values = _values(rendered, GRAFANA_VALUES)
    assert values["fullnameOverride"] == context["grafana"]["service_name"]
    assert values["service"] == {"type": "ClusterIP", "port": context["grafana"]["service_port"]}


def test_grafana_values_hold_no_password(rendered: dict[str, list[Any]]) -> None:
    values = _values(rendered, GRAFANA_VALUES)
    assert "adminPassword" not in values
    assert not values.get("admin", {}).get("existingSecret")
    assert not any("GF_SECURITY_ADMIN_PASSWORD" in k for k in values.get("env", {}))
    assert not list(_secret_like(values))


def test_grafana_persistence_is_off(rendered: dict[str, list[Any]]) -> None:
    assert _values(rendered, GRAFANA_VALUES)["persistence"] == {"enabled": False}


# --- 05: HTTPRoute -----------------------------------------------------------------------------------------------


def _route(rendered: dict[str, list[Any]]) -> dict[str, Any]:
    docs = rendered[ROUTE]
    assert len(docs) == 1
    route: dict[str, Any] = docs[0]
    return route


def test_route_attaches_to_the_gateway(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    route = _route(rendered)
    r = context["route"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["kind"] == "HTTPRoute"
    assert route["metadata"] == {"name": r["name"], "namespace": context["namespace"], "labels": context["labels"]}
    assert route["spec"]["parentRefs"] == [{
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": r["gateway_name"],
        "namespace": r["gateway_namespace"], "sectionName": r["section_name"],
    }]
    assert "hostnames" not in route["spec"], "no hostnames: the route answers on the Gateway's address"


def test_route_sends_the_sub_path_unchanged_to_grafana(rendered: dict[str, list[Any]], context: dict[str, Any]) -> None:
    (rule,) = _route(rendered)["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": context["route"]["path"]}}]
    assert "filters" not in rule, "no URLRewrite: Grafana serves from the sub-path itself"
    grafana = _values(rendered, GRAFANA_VALUES)
    assert rule["backendRefs"] == [{
        "group": "", "kind": "Service", "name": grafana["fullnameOverride"], "port": grafana["service"]["port"],
    }]
    assert context["route"]["path"] == context["grafana"]["sub_path"]


def test_route_section_and_hostnames_are_optional(context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["route"].update(section_name=None, hostnames=["grafana.lan", "obs.lan"])
    route = _route(_render(ctx))
    assert "sectionName" not in route["spec"]["parentRefs"][0]
    assert route["spec"]["hostnames"] == ["grafana.lan", "obs.lan"]


# --- the context drives Grafana and the route --------------------------------------------------------------------


def test_grafana_and_route_follow_the_context(context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["cluster"] = "lab"
    ctx["grafana"].update(node="yes", root_url="https://obs.lan/dash", sub_path="/dash", service_name="viz",
                          service_port=8080)
    ctx["route"].update(path="/dash", gateway_name="edge", gateway_namespace="gw", name="viz")
    ctx["datasources"].update(loki_uid="logs-1", tempo_uid="traces-1")
    ctx["loki"]["url"] = "http://loki.obs.svc:3100"
    ctx["tempo"]["url"] = "http://tempo.obs.svc:3200"
    rendered = _render(ctx)

    values = _values(rendered, GRAFANA_VALUES)
    assert values["nodeSelector"] == {"kubernetes.io/hostname": "yes"}, "a node called yes stays a string"
    assert values["grafana.ini"]["server"]["root_url"] == "https://obs.lan/dash"
    ds = _datasources(rendered)
    assert (ds["loki"]["uid"], ds["loki"]["url"]) == ("logs-1", "http://loki.obs.svc:3100")
    assert (ds["tempo"]["uid"], ds["tempo"]["url"]) == ("traces-1", "http://tempo.obs.svc:3200")
    assert ds["tempo"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "logs-1"
    assert ds["tempo"]["jsonData"]["tracesToLogsV2"]["query"].startswith('{cluster="lab"}')
    assert ds["loki"]["jsonData"]["derivedFields"][0]["datasourceUid"] == "traces-1"

    route = _route(rendered)
    assert route["metadata"]["name"] == "viz"
    assert route["spec"]["parentRefs"][0]["name"] == "edge"
    assert route["spec"]["parentRefs"][0]["namespace"] == "gw"
    (rule,) = route["spec"]["rules"]
    assert rule["matches"][0]["path"]["value"] == "/dash"
    assert rule["backendRefs"][0]["name"] == "viz" and rule["backendRefs"][0]["port"] == 8080


# --- image registry override -------------------------------------------------------------------------------------


def test_no_registry_override_keeps_the_chart_defaults(rendered: dict[str, list[Any]]) -> None:
    alloy = _values(rendered, ALLOY_VALUES)
    assert "image" not in alloy and "configReloader" not in alloy
    assert "global" not in _values(rendered, GRAFANA_VALUES)


def test_registry_override_reaches_alloy_and_grafana_images(context: dict[str, Any]) -> None:
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = REGISTRY
    rendered = _render(ctx)
    alloy = _values(rendered, ALLOY_VALUES)
    assert alloy["image"] == {"registry": REGISTRY}
    assert alloy["configReloader"] == {"image": {"registry": REGISTRY}}
    # The chart's global registry replaces the registry of every image it renders.
    assert _values(rendered, GRAFANA_VALUES)["global"] == {"imageRegistry": REGISTRY}


# --- no secret in any rendered file ------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"pass(word|wd)?\b|passw|secret|token|api[_-]?key|credential|private[_-]?key|bearer", re.I)
_SECRET_IN_TEXT = re.compile(
    r"(password|passwd|secret|token|api[_-]?key|bearer_token|client_secret)\s*[:=]\s*\S"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----|Authorization:\s*(Basic|Bearer)\s+\S",
    re.I,
)


def _secret_like(obj: Any, path: str = "") -> Iterator[str]:
    """Paths of keys that name a credential and carry a value, and of texts that embed one."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            here = f"{path}.{key}" if path else str(key)
            scalar = isinstance(value, (str, int, float)) and not isinstance(value, bool)
            if _SECRET_KEY.search(str(key)) and scalar and str(value).strip():
                yield here
            yield from _secret_like(value, here)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _secret_like(item, f"{path}[{i}]")
    elif isinstance(obj, str) and _SECRET_IN_TEXT.search(obj):
        yield path


def test_secret_scan_catches_credentials() -> None:
    assert list(_secret_like({"adminPassword": "hunter2"})) == ["adminPassword"]
    assert list(_secret_like({"a": [{"api_key": "x"}]})) == ["a[0].api_key"]
    assert list(_secret_like({"content": 'basic_auth {\n  password = "x"\n}'})) == ["content"]
    assert list(_secret_like({"automountServiceAccountToken": True, "existingSecret": ""})) == []


@pytest.mark.parametrize("registry", [None, REGISTRY])
def test_no_rendered_file_holds_a_secret(context: dict[str, Any], registry: str | None) -> None:
    ctx = copy.deepcopy(context)
    ctx["images"]["registry"] = registry
    files = render_files(ctx)
    assert len(files) == 8
    for name, docs in _parse(files).items():
        assert list(_secret_like(docs)) == [], name
