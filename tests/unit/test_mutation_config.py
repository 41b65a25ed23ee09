"""Config validation, message by message: what `scripts/mutation` showed the other tests leave unpinned.

Every test goes through the public entry points (``parse_config``, ``load_config``, ``find_config``,
the models) with hand-written YAML and asserts the exact message a user reads, or the exact value
kept. Nothing of o11yctl is monkeypatched; only the environment and the working directory are set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from o11yctl.config import (
    ConfigSource,
    Taint,
    default_config,
    find_config,
    go_duration,
    load_config,
    parse_config,
    parse_duration,
)
from o11yctl.errors import ConfigError

HINT = "fix the key named above; `o11yctl init --out example.yaml` writes a commented example"
ONE_NODE = "nodes:\n  - name: node-1\n    address: 10.0.0.1\n    role: server\n"


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "f.yaml")
    return caught.value


@pytest.mark.parametrize(("text", "message"), [
    # value errors: the validator's own words, without pydantic's "Value error, " prefix
    ("vxlan:\n  restart:\n    server: 5\n",
     'vxlan.restart.server: expected a command line like "systemctl restart k3s", got 5 (f.yaml:3)'),
    ("vxlan:\n  restart:\n    server: 'a \"b'\n",
     'vxlan.restart.server: expected a command line like "systemctl restart k3s": No closing quotation (f.yaml:3)'),
    ("vxlan:\n  restart:\n    agent: '  '\n",
     'vxlan.restart.agent: expected a command line like "systemctl restart k3s", got an empty string (f.yaml:3)'),
    ("storage:\n  node: NODE-2\n",
     "storage.node: expected a Kubernetes name: lower-case letters, digits, '-' and '.', e.g. node-2 (f.yaml:2)"),
    ("components:\n  loki:\n    retention: 0d\n",
     "components.loki.retention: expected a positive duration, got '0d' (f.yaml:3)"),
    ("components:\n  tempo:\n    retention: 5\n",
     'components.tempo.retention: expected a duration like "7d" or "168h", got 5 (f.yaml:3)'),
    ("ssh:\n  connect_timeout: true\n",
     "ssh.connect_timeout: expected seconds, a number like 10 (or 30s, 2m, 1h), got True (f.yaml:2)"),
    ("ssh:\n  connect_timeout: abc\n",
     "ssh.connect_timeout: expected seconds, a number like 10 (or 30s, 2m, 1h), got 'abc' (f.yaml:2)"),
    ("ssh:\n  connect_timeout: ''\n",
     "ssh.connect_timeout: expected seconds, a number like 10 (or 30s, 2m, 1h), got '' (f.yaml:2)"),
    ("ssh:\n  command_timeout: [1]\n",
     "ssh.command_timeout: expected seconds, a number like 10 (or 30s, 2m, 1h), got [1] (f.yaml:2)"),
    ("ssh:\n  connect_timeout: 0\n", "ssh.connect_timeout: expected a positive number of seconds, got 0 (f.yaml:2)"),
    ("ssh:\n  connect_timeout: 0s\n",
     "ssh.connect_timeout: expected a positive number of seconds, got '0s' (f.yaml:2)"),
    ("ssh:\n  known_hosts: ' '\n", "ssh.known_hosts: expected a file path (f.yaml:2)"),
    ('ssh:\n  known_hosts: "a\\0b"\n', "ssh.known_hosts: expected a file path (f.yaml:2)"),
    ("storage:\n  root: /a/../b\n",
     "storage.root: '/a/../b' contains characters o11yctl does not put into remote commands; "
     "use letters, digits and . _ - + / only (f.yaml:2)"),
    ("storage:\n  root: /a/..\n",
     "storage.root: '/a/..' contains characters o11yctl does not put into remote commands; "
     "use letters, digits and . _ - + / only (f.yaml:2)"),
    ("components:\n  loki:\n    size: 0Gi\n",
     "components.loki.size: expected a Kubernetes quantity with a unit, like \"200Gi\" or \"50Gi\", got '0Gi' "
     "(f.yaml:3)"),
    ("components:\n  loki:\n    size: '200'\n",
     "components.loki.size: expected a Kubernetes quantity with a unit, like \"200Gi\" or \"50Gi\", got '200' "
     "(f.yaml:3)"),
    ("images:\n  test_image: 'bad image'\n",
     "images.test_image: expected an image reference like busybox:1.36, got 'bad image' (f.yaml:2)"),
    ("object_storage:\n  path_style: {a: 1}\n", "object_storage.path_style: expected bool, got {'a': 1} (f.yaml:2)"),
    ("route:\n  hostnames: [10.0.0.1]\n",
     "route.hostnames: expected DNS host names (not IP addresses), got '10.0.0.1' (f.yaml:2)"),
    # pydantic's own error kinds, in o11yctl's words
    ("unknown: 1\n", "unknown: unknown key (check its spelling; `o11yctl init` lists every key) (f.yaml:1)"),
    ("storage:\n  node: 5\n", "storage.node: expected string, got 5 (f.yaml:2)"),
    ("storage:\n  owner_uid: x\n", "storage.owner_uid: expected int, got 'x' (f.yaml:2)"),
    ("nodes: {a: 1}\n", "nodes: expected list, got {'a': 1} (f.yaml:1)"),
    ("nodes:\n  - name: node-1\n    address: 10.0.0.1\n    role: server\n    labels: [x]\n",
     "nodes[0].labels: expected mapping, got ['x'] (f.yaml:5)"),
    ("vxlan:\n  boot: sometimes\n",
     "vxlan.boot: input should be 'auto', 'systemd' or 'none', got 'sometimes' (f.yaml:2)"),
])
def test_each_mistake_reads_exactly(text: str, message: str) -> None:
    err = _error(text)
    assert str(err) == message
    assert err.hint == HINT
    assert err.problems == [message]


def test_a_missing_key_names_the_line_of_the_item_that_lacks_it() -> None:
    # nodes[1].role is not in the file: the nearest enclosing key that is (the list item) gives the line
    text = ("nodes:\n  - name: node-1\n    address: 10.0.0.1\n    role: server\n"
            "  - name: node-2\n    address: 10.0.0.2\n")
    assert str(_error(text)) == "nodes[1].role: required key is missing (f.yaml:5)"


def test_an_error_inside_a_list_item_names_its_own_line() -> None:
    text = ("nodes:\n  - name: node-1\n    address: 10.0.0.1\n    role: server\n"
            "  - name: node-2\n    role: agent\n    address: nowhere\n")
    assert str(_error(text)) == "nodes[1].address: expected an IP address like 10.0.0.102, got 'nowhere' (f.yaml:7)"


def test_an_error_about_a_key_the_file_does_not_have_names_no_line() -> None:
    # storage.node keeps its default (node-2), which the file's node list no longer has
    assert str(_error(ONE_NODE)) == "storage.node: 'node-2' is not one of nodes[].name (node-1)"


def test_several_problems_are_listed_one_per_line() -> None:
    err = _error("storage:\n  node: NODE\n  class_name: X\n")
    name = "expected a Kubernetes name: lower-case letters, digits, '-' and '.', e.g. node-2"
    assert str(err) == (f"2 problems in f.yaml:\n  - storage.node: {name} (f.yaml:2)\n"
                        f"  - storage.class_name: {name} (f.yaml:3)")
    assert err.problems == [f"storage.node: {name} (f.yaml:2)", f"storage.class_name: {name} (f.yaml:3)"]


@pytest.mark.parametrize(("length", "shown"), [
    (38, "'" + "x" * 38 + "'"),           # repr of 40 characters: shown whole
    (39, "'" + "x" * 36 + "..."),          # 41: cut to 37 and marked
    (60, "'" + "x" * 36 + "..."),
])
def test_a_long_wrong_value_is_cut_in_the_message(length: int, shown: str) -> None:
    message = str(_error(f"storage:\n  owner_uid: {'x' * length}\n"))
    assert message == f"storage.owner_uid: expected int, got {shown} (f.yaml:2)"


def test_yaml_syntax_errors_name_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("a: [\n", "f.yaml")
    assert str(caught.value) == "f.yaml:2: not valid YAML: expected the node content, but found '<stream end>'"
    assert caught.value.hint == "fix the YAML syntax at that line"


def test_a_character_yaml_refuses_is_named_without_a_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("a: b\x07\n", "f.yaml")
    assert str(caught.value) == ('f.yaml: not valid YAML: unacceptable character #x0007: special characters are not '
                                 'allowed\n  in "<unicode string>", position 4')
    assert caught.value.hint == "fix the YAML syntax at that line"


def test_a_document_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("[1, 2]\n")
    assert str(caught.value) == "<config>: expected a mapping of settings at the top level"
    assert caught.value.hint == "see `o11yctl init`"


@pytest.mark.parametrize(("text", "value"), [
    ("ssh:\n  connect_timeout: 1\n", 1.0),
    ("ssh:\n  connect_timeout: 1h\n", 3600.0),
    ("ssh:\n  connect_timeout: 1h2m3s\n", 3723.0),
    ("ssh:\n  connect_timeout: ' 2m '\n", 120.0),
])
def test_timeouts_in_seconds(text: str, value: float) -> None:
    assert parse_config(text).ssh.connect_timeout == value


@pytest.mark.parametrize(("root", "kept"), [("/a/b/", "/a/b"), ("/srv/X/", "/srv/X"), ("/", "/"), ("/a.b/c", "/a.b/c")])
def test_remote_paths_lose_only_their_trailing_slash(root: str, kept: str) -> None:
    assert parse_config(f"storage:\n  root: {root}\n").storage.root == kept


def test_boundaries_that_are_still_valid() -> None:
    cfg = parse_config("components:\n  loki:\n    size: 1Gi\n  tempo:\n    retention: 1s\n"
                       "route:\n  hostnames: [grafana.lan]\n")
    assert (cfg.components.loki.size, cfg.components.tempo.retention) == ("1Gi", "1s")
    assert cfg.route.hostnames == ["grafana.lan"]


def test_a_name_may_be_253_characters_long_and_no_longer() -> None:
    name = "a" * 253
    text = f"nodes:\n  - name: {name}\n    address: 10.0.0.1\n    role: server\nstorage:\n  node: {name}\n"
    assert parse_config(text + f"components:\n  grafana:\n    node: {name}\n").storage.node == name
    longer = "a" * 254
    err = _error(f"storage:\n  node: {longer}\n")
    assert str(err).startswith("storage.node: expected a Kubernetes name")


def test_lookup_names_where_the_file_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(None) == ConfigSource(None, "default")
    (tmp_path / "o11yctl.yaml").write_text("")
    assert find_config(None) == ConfigSource(Path("o11yctl.yaml"), "./o11yctl.yaml")
    monkeypatch.setenv("O11YCTL_CONFIG", str(tmp_path / "env.yaml"))
    assert find_config(None) == ConfigSource(tmp_path / "env.yaml", "$O11YCTL_CONFIG")
    assert find_config("flag.yaml") == ConfigSource(Path("flag.yaml"), "--config")


def test_source_descriptions() -> None:
    assert ConfigSource(Path("c.yaml"), "--config").describe() == "c.yaml (from --config)"
    assert ConfigSource(None, "default").describe() == "the built-in default (the runbook's cluster)"


def test_a_missing_file_hint_fits_where_its_name_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert str(caught.value) == f"config file {missing} (from --config) does not exist"
    assert caught.value.hint == (f"check the path; `o11yctl init --out {missing}` writes one there; without --config, "
                                 "$O11YCTL_CONFIG, ./o11yctl.yaml or the built-in default is used")
    monkeypatch.setenv("O11YCTL_CONFIG", str(missing))
    with pytest.raises(ConfigError) as caught:
        load_config(None)
    assert str(caught.value) == f"config file {missing} (from $O11YCTL_CONFIG) does not exist"
    assert caught.value.hint == (f"$O11YCTL_CONFIG names it: point the variable at an existing file (`o11yctl init "
                                 f"--out {missing}` writes one), or unset it to use ./o11yctl.yaml or the built-in "
                                 "default")


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"cannot read config file {tmp_path}: [Errno 21] Is a directory: '{tmp_path}'"
    assert caught.value.hint == "check the path and its permissions"


def test_a_file_is_read_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("cluster:\n  name: homelab  # Grüße\n", encoding="utf-8")
    cfg, source = load_config(path)
    assert cfg.cluster.name == "homelab" and source == ConfigSource(path, "--config")


def test_durations() -> None:
    assert parse_duration("1w1s") == 7 * 86400 + 1
    assert parse_duration("1d1h1m1s") == 86400 + 3600 + 60 + 1
    assert [go_duration(s) for s in (0, 1, 61, 3600, 3601, 3661)] == ["0s", "1s", "1m1s", "1h", "1h1s", "1h1m1s"]


def test_node_lookup_and_taint_text() -> None:
    cfg = default_config()
    assert cfg.node("node-2") is cfg.storage_node
    with pytest.raises(KeyError) as caught:
        cfg.node("node-9")
    assert caught.value.args == ("node-9",)
    assert str(Taint(key="gpu", effect="NoExecute")) == "gpu:NoExecute"
    assert str(Taint(key="heavy", value="true")) == "heavy=true:NoSchedule"
    assert Taint(key="heavy", value="true").as_toleration() == {"key": "heavy", "operator": "Equal", "value": "true",
                                                                "effect": "NoSchedule"}


# --- profile scalable: the cross-field rules of Config._check_scalable --------------------------------------------

TWO_NODES = ("nodes:\n  - name: node-1\n    address: 10.0.0.102\n    role: server\n"
             "  - name: node-2\n    address: 10.0.0.103\n    role: agent\n")
SCALABLE = "profile: scalable\ncharts:\n  set: current\n"


@pytest.mark.parametrize(("text", "message"), [
    ("profile: scalable\n",
     "profile: scalable runs on the maintained charts: set charts.set: current (it is 'runbook'; "
     "`o11yctl upgrade --to current` moves an installed stack) (f.yaml:8)"),
    (SCALABLE + "object_storage:\n  store: external\n",
     "object_storage.endpoint: required with object_storage.store: external (f.yaml:11)"),
    (SCALABLE + "object_storage:\n  store: in-cluster\n  endpoint: http://s3.lan:9000\n",
     "object_storage.endpoint: only for store: external (the in-cluster store's endpoint is its Service) "
     "(f.yaml:13)"),
    (SCALABLE + "object_storage:\n  nodes: [node-1, node-9]\n",
     "object_storage.nodes: 'node-9' is not one of nodes[].name (node-1, node-2) (f.yaml:12)"),
    (SCALABLE + "components:\n  loki:\n    nodes: [node-7]\n",
     "components.loki.nodes: 'node-7' is not one of nodes[].name (node-1, node-2) (f.yaml:13)"),
    (SCALABLE + "components:\n  tempo:\n    nodes: [node-2, node-8]\n",
     "components.tempo.nodes: 'node-8' is not one of nodes[].name (node-1, node-2) (f.yaml:13)"),
    (SCALABLE + "components:\n  loki:\n    replicas: 3\n",
     "components.loki.replicas: 3 replicas, one per node, need as many nodes; 2 may take Loki "
     "(components.loki.nodes, else nodes) (f.yaml:13)"),
    (SCALABLE + "components:\n  loki:\n    replicas: 2\n    nodes: [node-2]\n",
     "components.loki.replicas: 2 replicas, one per node, need as many nodes; 1 may take Loki "
     "(components.loki.nodes, else nodes) (f.yaml:13)"),
])
def test_scalable_rules_name_the_key_and_the_way_out(text: str, message: str) -> None:
    assert str(_error(TWO_NODES + text)) == message


@pytest.mark.parametrize("text", [
    SCALABLE + "components:\n  loki:\n    replicas: 2\n",  # as many replicas as nodes: one each
    SCALABLE + "components:\n  loki:\n    replicas: 1\n    nodes: [node-2]\n",
    SCALABLE + "object_storage:\n  store: external\n  endpoint: http://s3.lan:9000\n  nodes: [node-1]\n"
               "components:\n  loki:\n    replicas: 2\n",
    # the single-node profile does not read object_storage at all
    "object_storage:\n  store: external\n  nodes: [node-9]\n",
])
def test_scalable_rules_accept_what_fits(text: str) -> None:
    assert parse_config(TWO_NODES + text, "f.yaml").nodes[0].name == "node-1"
