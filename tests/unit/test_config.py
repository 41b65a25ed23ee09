"""Configuration: lookup order, the built-in default, and strict validation with key paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from o11yctl.cli import app
from o11yctl.config import default_config, go_duration, load_config, parse_config, parse_duration
from o11yctl.errors import ConfigError
from o11yctl.init import default_config_text
from o11yctl.stack.charts import resolve

runner = CliRunner()


def test_default_is_the_runbooks_cluster() -> None:
    cfg = default_config()
    n1, n2 = cfg.nodes
    assert (n1.name, n1.address, n1.role) == ("node-1", "10.0.0.102", "server")
    assert (n2.name, n2.address, n2.role) == ("node-2", "10.0.0.103", "agent")
    assert n2.labels == {"hardware": "heavy"}
    assert [str(t) for t in n2.taints] == ["heavy=true:NoSchedule"]
    assert cfg.storage.node == "node-2" and cfg.storage.root == "/mnt/k8s-storage"
    assert cfg.cluster.namespace == "logging"
    c = cfg.components
    assert (c.loki.size, c.loki.retention, c.tempo.size, c.tempo.retention) == ("200Gi", "7d", "50Gi", "168h")
    assert cfg.charts.set == "runbook"
    charts = {k: resolve(cfg, k) for k in ("loki", "tempo", "alloy", "grafana")}
    assert {k: v.version for k, v in charts.items()} == {"loki": "6.21.0", "tempo": "1.24.4", "alloy": "1.11.1",
                                                         "grafana": "10.5.15"}
    assert {v.repository for v in charts.values()} == {"https://grafana.github.io/helm-charts"}
    assert cfg.route.url == "http://10.0.0.102/grafana"
    assert cfg.components.grafana.node == "node-1"
    assert cfg.ssh.known_hosts.endswith(".ssh/known_hosts")
    assert cfg.images.test_image == "busybox:latest"


def test_init_text_is_exactly_the_default() -> None:
    assert parse_config(default_config_text()).model_dump() == default_config().model_dump()
    # ssh_* keys are written commented out, so they fall through to ~/.ssh/config
    assert "ssh_port: 22" not in [line.strip() for line in default_config_text().splitlines()]


def _keys(doc: object, prefix: str = "") -> list[str]:
    """Every key path of a dumped config; user data under labels is not a key of ours."""
    if isinstance(doc, dict):
        out = []
        for key, value in doc.items():
            out.append(prefix + key)
            if key != "labels":
                out += _keys(value, f"{prefix}{key}.")
        return out
    if isinstance(doc, list) and doc and isinstance(doc[-1], dict):
        return _keys(doc[-1], prefix.rstrip(".") + "[].")
    return []


def test_every_key_in_the_init_file_has_a_comment() -> None:
    text = default_config_text()
    key_lines = [line for line in text.splitlines() if re.match(r"^\s*(#\s*)?(- )?[A-Za-z_]+:", line)]
    uncommented = [line for line in key_lines if "#" not in line.split(":", 1)[1] and not line.lstrip().startswith("#")]
    assert uncommented == []
    # and every key the configuration knows appears, set or commented out, with its comment
    names = {re.sub(r"^\s*(#\s*)?(- )?", "", line).split(":", 1)[0] for line in key_lines}
    missing = sorted(k for k in _keys(default_config().model_dump()) if k.rsplit(".", 1)[-1].split("[")[0] not in names)
    assert missing == []


def test_durations_convert_for_go() -> None:
    assert go_duration(parse_duration("7d")) == "168h"
    assert go_duration(parse_duration("168h")) == "168h"
    assert go_duration(parse_duration("1d12h30m")) == "36h30m"


def test_file_lays_over_default(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("storage:\n  root: /data/k8s\ncomponents:\n  loki:\n    retention: 14d\n")
    cfg, source = load_config(f)
    assert cfg.storage.root == "/data/k8s"
    assert cfg.storage.node == "node-2"
    assert cfg.components.loki.retention == "14d"
    assert cfg.components.loki.size == "200Gi"
    assert source.path == f


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config()[1].how == "default"
    (tmp_path / "o11yctl.yaml").write_text("cluster: {name: from-cwd}\n")
    assert load_config()[0].cluster.name == "from-cwd"
    env = tmp_path / "env.yaml"
    env.write_text("cluster: {name: from-env}\n")
    monkeypatch.setenv("O11YCTL_CONFIG", str(env))
    assert load_config()[0].cluster.name == "from-env"
    flag = tmp_path / "flag.yaml"
    flag.write_text("cluster: {name: from-flag}\n")
    assert load_config(flag)[0].cluster.name == "from-flag"


def test_tilde_expanded_in_local_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = parse_config("nodes:\n - {name: a, address: 10.1.1.1, role: server, ssh_key: ~/.ssh/k}\n"
                       "storage: {node: a}\ncomponents: {grafana: {node: a}}\nssh: {known_hosts: ~/kh}\n")
    assert cfg.nodes[0].ssh_key == str(tmp_path / ".ssh/k")
    assert cfg.ssh.known_hosts == str(tmp_path / "kh")


NODES = "nodes:\n - {name: a, address: 10.1.1.1, role: server}\nstorage: {node: a}\ncomponents: {grafana: {node: a}}\n"

# (config text, the key path the message must name, a fragment of the explanation)
BAD = [
    ("bogus: 1\n", "bogus", "unknown key"),
    ("storage: {rooot: /x}\n", "storage.rooot", "unknown key"),
    ("nodes:\n - {name: a, address: 10.1.1.1, role: server, colour: red}\n", "nodes[0].colour", "unknown key"),
    ("nodes:\n - {name: a, address: 10.1.1.300, role: server}\n", "nodes[0].address", "IP address"),
    ("nodes:\n - {name: a, address: 10.1.1.1, role: boss}\n", "nodes[0].role", "'server' or 'agent'"),
    ("nodes:\n - {name: Node_A, address: 10.1.1.1, role: server}\n", "nodes[0].name", "Kubernetes name"),
    ("nodes:\n - {name: a, address: 10.1.1.1, role: server, ssh_port: 70000}\n", "nodes[0].ssh_port", "65535"),
    ("nodes:\n - {name: a, address: 10.1.1.1, role: server, ssh_port: '22'}\n", "nodes[0].ssh_port", "int"),
    ("nodes:\n - {name: a, address: 10.1.1.1, role: server, ssh_host: 'a;rm -rf'}\n", "nodes[0].ssh_host", "host"),
    ("nodes:\n - {name: a, address: 10.1.1.1, role: agent}\nstorage: {node: a}\ncomponents: {grafana: {node: a}}\n",
     "nodes", "role: server"),
    ("storage: {node: node-9}\n", "storage.node", "not one of nodes[].name"),
    ("storage: {root: relative/dir}\n", "storage.root", "absolute"),
    ("storage: {root: '/mnt/$(reboot)'}\n", "storage.root", "characters"),
    ("storage: {root: '/mnt/a b'}\n", "storage.root", "characters"),
    ("components: {loki: {size: 200}}\n", "components.loki.size", "quantity"),
    ("components: {loki: {size: lots}}\n", "components.loki.size", "quantity"),
    ("components: {tempo: {retention: forever}}\n", "components.tempo.retention", "duration"),
    ("components: {loki: {retention: 36h}}\n", "components.loki.retention", "whole number of days"),
    ("components: {grafana: {node: node-7}}\n", "components.grafana.node", "not one of nodes[].name"),
    ("components: {loki: {chart: {name: loki, version: latest}}}\n", "components.loki.chart.version", "version"),
    ("charts: {repository: 'grafana'}\n", "charts.repository", "URL"),
    ("route: {url: 'ftp://x/grafana'}\n", "route.url", "URL"),
    ("route: {hostnames: ['10.0.0.1']}\n", "route.hostnames", "DNS"),
    ("images: {registry: 'reg istry'}\n", "images.registry", "registry"),
    ("ssh: {connect_timeout: -1}\n", "ssh.connect_timeout", "positive"),
    ("nodes: {name: a}\n", "nodes", "list"),
    (NODES + "storage: {node: a, owner_uid: -5}\n", "storage.owner_uid", "greater than or equal"),
    # A trailing newline must not slip past a pattern (it would split a systemd unit's ExecStart= line).
    ('vxlan: {persist_dir: "/etc/o11yctl\\n"}\n', "vxlan.persist_dir", "characters"),
    ('storage: {root: "/mnt/k8s-storage\\n"}\n', "storage.root", "characters"),
    ('vxlan: {interface: "flannel.1\\n"}\n', "vxlan.interface", "interface name"),
    ('cluster: {namespace: "logging\\n"}\n', "cluster.namespace", "Kubernetes name"),
    ('cluster: {name: "homelab\\n"}\n', "cluster.name", "label value"),
    ('components: {loki: {size: "200Gi\\n"}}\n', "components.loki.size", "quantity"),
    ('components: {tempo: {retention: "168h\\n"}}\n', "components.tempo.retention", "duration"),
    ('nodes:\n - {name: a, address: 10.1.1.1, role: server, ssh_user: "root\\n"}\n', "nodes[0].ssh_user", "user"),
    ('route: {url: "http://10.0.0.102/grafana\\n"}\n', "route.url", "URL"),
]


@pytest.mark.parametrize(("text", "key", "why"), BAD, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD)])
def test_bad_config_names_the_key_and_exits_2(tmp_path: Path, text: str, key: str, why: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert f"{key}:" in info.value.message or f"- {key}:" in info.value.message, info.value.message
    assert why in info.value.message
    result = runner.invoke(app, ["render", "--out", str(tmp_path / "out"), "-c", str(f)])
    assert result.exit_code == 2, result.output
    assert key in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_error_names_the_file_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("cluster:\n  name: homelab\nstorage:\n  node: node-2\n  root: not/absolute\n")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert f"{f}:5" in info.value.message


def test_several_problems_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("storage: {root: x}\ncomponents: {loki: {size: huge}}\n")
    assert "2 problems" in info.value.message
    assert len(info.value.problems) == 2


@pytest.mark.parametrize("text", ["x: [\n", "- just\n- a list\n", "key: value: other\n"])
def test_not_yaml_or_not_a_mapping(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    result = runner.invoke(app, ["install", "--dry-run", "-c", str(f)])
    assert result.exit_code == 2
    assert str(f) in result.output
    assert "Traceback" not in result.output


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["install", "--dry-run", "-c", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "o11yctl init" in result.output


def test_json_error_envelope(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("storage: {node: nowhere}\n")
    result = runner.invoke(app, ["install", "--dry-run", "--json", "-c", str(f)])
    assert result.exit_code == 2
    doc = yaml.safe_load(result.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["command"] == "install"
    assert "storage.node" in doc["error"]["message"]
    assert doc["error"]["hint"]
