"""`o11yctl fix-vxlan` end to end: the real CLI, over real SSH, against a real VXLAN overlay.

Each test builds a lab of network namespaces (tests/lab/vxlan_lab.py): N nodes on a bridge,
each with a Flannel-style ``flannel.1`` and its own sshd; the CLI runs in a controller
namespace of the same lab. Firewall rules are set inside the node namespaces only.
Without root these tests skip; under CI=true they fail instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.lab.ci import skip_or_fail
from tests.lab.vxlan_lab import PORT, VxlanLab, unavailable_reason

pytestmark = [pytest.mark.root, pytest.mark.sshd, pytest.mark.slow]

LabFactory = Callable[[int], VxlanLab]
TAG = "o11yctl-vxlan"
UNRELATED = ["-A", "INPUT", "-s", "198.18.1.200/32", "-p", "tcp", "-m", "tcp", "--dport", "9100", "-j", "ACCEPT"]


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[LabFactory]:
    """``make_lab(n)`` builds an n-node lab; every lab is torn down after the test, pass or fail."""
    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    labs: list[VxlanLab] = []

    def make(n: int) -> VxlanLab:
        lab = VxlanLab(n=n, workdir=tmp_path / f"lab-{len(labs)}")
        labs.append(lab)
        return lab.start()

    try:
        yield make
    finally:
        for lab in labs:
            lab.close()


def fix_vxlan(lab: VxlanLab, config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run ``o11yctl fix-vxlan --json`` in the lab's controller namespace; exit code and document."""
    done = lab.run_cli(["fix-vxlan", "-c", str(config), "--json", *args])
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON on stdout (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.returncode, doc


def blocked(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(b["from"], b["to"]) for b in doc["blocked"]}


def accept_rule(lab: VxlanLab, source: str) -> str:
    return (f"-A INPUT -s {lab.node(source).address}/32 -p udp -m udp --dport {PORT} "
            f"-m comment --comment {TAG} -j ACCEPT")


def snapshot(lab: VxlanLab) -> dict[str, Any]:
    """Everything o11yctl could change on the nodes."""
    return {n.name: (lab.iptables_rules(n), re.sub(r"counter packets \d+ bytes \d+", "counter", lab.nft_ruleset(n)),
                     sorted(p.name for p in n.etc_dir.iterdir()))
            for n in lab.nodes}


SCENARIOS: dict[str, tuple[int, list[tuple[str, str | None, str]], set[tuple[str, str]]]] = {
    "2 nodes, node-2 drops node-1": (2, [("node-2", "node-1", "DROP")], {("node-1", "node-2")}),
    "2 nodes, node-1 rejects everyone": (2, [("node-1", None, "REJECT")], {("node-2", "node-1")}),
    "2 nodes, both drop everyone": (2, [("node-1", None, "DROP"), ("node-2", None, "DROP")],
                                    {("node-1", "node-2"), ("node-2", "node-1")}),
    "3 nodes, node-3 drops everyone": (3, [("node-3", None, "DROP")], {("node-1", "node-3"), ("node-2", "node-3")}),
    "3 nodes, mixed": (3, [("node-1", "node-2", "REJECT"), ("node-3", "node-1", "DROP")],
                       {("node-2", "node-1"), ("node-1", "node-3")}),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_check_names_exactly_the_blocked_directions_and_changes_nothing(make_lab: LabFactory, tmp_path: Path,
                                                                         scenario: str) -> None:
    n, blocks, expected = SCENARIOS[scenario]
    lab = make_lab(n)
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    for node, source, target in blocks:
        lab.block(node, source=source, target=target)
    before = snapshot(lab)

    code, doc = fix_vxlan(lab, config, "--check")

    assert code == 1, doc
    assert doc["ok"] is False and doc["mode"] == "check"
    assert blocked(doc) == expected
    failing_pairs = {frozenset(pair) for pair in expected}
    for src, row in doc["matrix"].items():
        for dst, cell in row.items():
            assert cell == ("fail" if frozenset((src, dst)) in failing_pairs else "ok"), (src, dst, doc["matrix"])
    for b in doc["blocked"]:
        assert b["source"] == lab.node(b["from"]).address
        assert b["by"] and all("8472" in by for by in b["by"])
    assert snapshot(lab) == before


@pytest.mark.parametrize("n", [2, 3])
def test_fix_adds_only_the_needed_rules_then_a_second_run_changes_nothing(make_lab: LabFactory, tmp_path: Path,
                                                                          n: int) -> None:
    lab = make_lab(n)
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    for node in lab.nodes:  # an unrelated rule and chain every node already has
        lab.iptables(node, "-N", "HOMELAB")
        lab.iptables(node, "-A", "HOMELAB", "-p", "tcp", "--dport", "9100", "-j", "RETURN")
        lab.iptables(node, *UNRELATED)
    lab.block(f"node-{n}", target="DROP")  # the last node drops everyone
    lab.block("node-1", source="node-2", target="REJECT")  # node-1 rejects node-2
    expected = {f"node-{n}": [accept_rule(lab, f"node-{i}") for i in range(1, n)],
                "node-1": [accept_rule(lab, "node-2")]}
    rules_before = {node.name: lab.iptables_rules(node) for node in lab.nodes}

    code, doc = fix_vxlan(lab, config)

    assert code == 0, doc
    assert doc["overlay_ok"] is True and all(lab.ping_matrix().values())
    assert blocked(doc["before"]) == {(f"node-{i}", f"node-{n}") for i in range(1, n)} | {("node-2", "node-1")}
    for node in lab.nodes:
        after = lab.iptables_rules(node)
        added = [r for r in after if r not in rules_before[node.name]]
        assert sorted(added) == sorted(expected.get(node.name, [])), node.name
        # existing rules are all still there, in the same order; ours sit at the top of INPUT
        assert [r for r in after if r not in added] == rules_before[node.name]
        inputs = [r for r in after if r.startswith("-A INPUT")]
        assert inputs[: len(added)] == sorted(added, key=inputs.index)
    steps = [i for i in doc["items"] if "outcome" in i]
    assert sorted((s["host"], s["id"]) for s in steps if s["id"].startswith("allow")) == sorted(
        (dst, f"allow {src}") for src, dst in blocked(doc["before"]))
    assert not any(s["outcome"] == "failed" for s in steps)
    # only o11yctl's rules are saved, per node
    for name, rules in expected.items():
        script = (lab.node(name).etc_dir / "vxlan-firewall.sh").read_text()
        saved = [line for line in script.splitlines() if line.startswith("iptables")]
        assert len(saved) == len(rules)
        for rule in rules:
            assert any(rule.replace("-A INPUT ", "-I INPUT ") in line for line in saved)
        assert "9100" not in script and "DROP" not in script and "REJECT" not in script
    assert not (lab.node("node-2").etc_dir / "vxlan-firewall.sh").exists() or n == 2
    assert not any((node.etc_dir / "restarted").exists() for node in lab.nodes)  # no --restart, overlay works

    rules_fixed = {node.name: lab.iptables_rules(node) for node in lab.nodes}
    files_fixed = {node.name: sorted(p.name for p in node.etc_dir.iterdir()) for node in lab.nodes}
    code, doc = fix_vxlan(lab, config)

    assert code == 0, doc
    assert "nothing to change" in " ".join(lab.run_cli(["fix-vxlan", "-c", str(config)]).stdout.split())
    assert not [i for i in doc["items"] if "outcome" in i]
    assert {node.name: lab.iptables_rules(node) for node in lab.nodes} == rules_fixed
    assert {node.name: sorted(p.name for p in node.etc_dir.iterdir()) for node in lab.nodes} == files_fixed


def test_dry_run_prints_the_exact_commands_and_changes_nothing(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(3)
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    lab.block("node-2", source="node-3", target="DROP")
    before = snapshot(lab)

    code, doc = fix_vxlan(lab, config, "--dry-run")

    assert code == 0, doc
    assert doc["mode"] == "dry-run" and doc["overlay_ok"] is False
    rules = [s for s in doc["plan"]["steps"] if s["kind"] == "rule"]
    assert [(s["node"], s["argv"][:5]) for s in rules] == [("node-2", ["iptables", "-w", "5", "-I", "INPUT"])]
    assert rules[0]["argv"][5:7] == ["-s", f"{lab.node('node-3').address}/32"]
    assert rules[0]["check"][3] == "-C"
    assert snapshot(lab) == before
    assert not lab.ping("node-2", "node-3")

    human = lab.run_cli(["fix-vxlan", "-c", str(config), "--dry-run"])
    assert human.returncode == 0
    text = human.stdout
    assert f"sudo iptables -w 5 -C INPUT -s {lab.node('node-3').address}/32 -p udp" in text
    assert f"|| sudo iptables -w 5 -I INPUT -s {lab.node('node-3').address}/32 -p udp" in text
    assert "node-3 → node-2" in text
    assert snapshot(lab) == before


def test_drop_policy_is_explained_and_only_8472_is_opened(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(2)
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    lab.drop_policy("node-2")
    before = lab.iptables_rules("node-2")

    code, doc = fix_vxlan(lab, config, "--check")
    assert code == 1
    assert blocked(doc) == {("node-1", "node-2")}
    firewall = next(i for i in doc["items"] if i.get("id") == "firewall node-2")
    assert "policy DROP" in firewall["detail"]
    assert "10250" in firewall["hint"] and "10.42.0.0/16" in firewall["hint"]

    code, doc = fix_vxlan(lab, config)
    assert code == 0, doc
    after = lab.iptables_rules("node-2")
    assert [r for r in after if r not in before] == [accept_rule(lab, "node-1")]
    assert "-P INPUT DROP" in after
    assert all(lab.ping_matrix().values())


def test_drop_in_another_nftables_table_gets_an_nft_rule_there(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(2)
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    lab.nft("node-1", "add", "table", "inet", "homelab")
    lab.nft("node-1", "add", "chain", "inet", "homelab", "input",
            "{ type filter hook input priority 10; policy accept; }")
    lab.nft("node-1", "add", "rule", "inet", "homelab", "input", "udp", "dport", str(PORT), "drop")
    ipt_before = {n.name: lab.iptables_rules(n) for n in lab.nodes}

    code, doc = fix_vxlan(lab, config, "--check")
    assert code == 1
    assert blocked(doc) == {("node-2", "node-1")}
    assert any("inet homelab input" in by for by in doc["blocked"][0]["by"])

    code, doc = fix_vxlan(lab, config)
    assert code == 0, doc
    assert all(lab.ping_matrix().values())
    ruleset = lab.nft_ruleset("node-1")
    assert f'ip saddr {lab.node("node-2").address} udp dport {PORT}' in ruleset
    assert f'comment "{TAG}"' in ruleset and f"udp dport {PORT} drop" in ruleset
    assert {n.name: lab.iptables_rules(n) for n in lab.nodes} == ipt_before  # iptables already accepted
    script = (lab.node("node-1").etc_dir / "vxlan-firewall.sh").read_text()
    assert "nft insert rule inet homelab input ip saddr 198.18.0.2 udp dport 8472" in script

    code, doc = fix_vxlan(lab, config)
    assert code == 0 and not [i for i in doc["items"] if "outcome" in i]
    assert lab.nft_ruleset("node-1").count(TAG) == 1


def test_unreachable_node_is_reported_without_hiding_the_others(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(3)
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    lab.block("node-2", source="node-1", target="DROP")
    node3 = lab.node("node-3")
    assert node3.sshd is not None
    node3.sshd.stop()
    before = snapshot(lab)

    code, doc = fix_vxlan(lab, config, "--check")

    assert code == 3, doc
    nodes = doc["nodes"]
    assert nodes["node-3"]["reached"] is False and "node-3" in nodes["node-3"]["error"]
    assert nodes["node-1"]["reached"] and nodes["node-2"]["reached"]
    assert nodes["node-1"]["firewall"] == nodes["node-2"]["firewall"] == "iptables-nft"
    assert ("node-1", "node-2") in blocked(doc)
    assert doc["matrix"]["node-1"]["node-2"] == "fail" and doc["matrix"]["node-1"]["node-3"] == "?"
    ssh = next(i for i in doc["items"] if i.get("id") == "ssh node-3")
    assert ssh["status"] == "FAIL" and node3.address in ssh["detail"]

    code, doc = fix_vxlan(lab, config)
    assert code == 3
    assert "nothing was changed" in json.dumps(doc) or not [i for i in doc["items"] if "outcome" in i]
    assert snapshot(lab) == before


def test_restart_runs_the_configured_command_on_the_nodes_that_changed(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(2)
    config = lab.write_config(tmp_path / "o11yctl.yaml")
    lab.block("node-2", target="DROP")

    code, doc = fix_vxlan(lab, config, "--restart")

    assert code == 0, doc
    restarts = [i for i in doc["items"] if i.get("id") == "restart"]
    assert [(r["host"], r["outcome"]) for r in restarts] == [("node-2", "changed")]
    assert (lab.node("node-2").etc_dir / "restarted").exists()
    assert not (lab.node("node-1").etc_dir / "restarted").exists()


def test_overlay_still_failing_exits_1_and_restarts_only_when_confirmed(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(2)
    config = lab.write_config(tmp_path / "o11yctl.yaml", restart_wait=2)
    a, b = lab.node("node-1"), lab.node("node-2")
    lab.sh(a, ["bridge", "fdb", "del", b.mac, "dev", "flannel.1", "dst", b.address])  # a broken tunnel, no firewall

    code, doc = fix_vxlan(lab, config)
    assert code == 1
    assert not blocked(doc) and doc["overlay_ok"] is False
    assert not (a.etc_dir / "restarted").exists()  # not confirmed (no terminal, no --yes)

    code, doc = fix_vxlan(lab, config, "--yes")
    assert code == 1
    assert (a.etc_dir / "restarted").exists() and (b.etc_dir / "restarted").exists()
    firewall = next(i for i in doc["items"] if i.get("id") == "firewall node-1")
    assert firewall["status"] == "FAIL" and "no firewall rule" in firewall["detail"]


def test_checksum_offload_is_changed_only_when_asked(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(2)
    config = lab.write_config(tmp_path / "o11yctl.yaml")

    def offload(node: str) -> str:
        out = lab.sh(node, ["ethtool", "-k", "flannel.1"]).stdout
        return next(line.split(":")[1].split()[0] for line in out.splitlines() if "tx-checksum-ip-generic" in line)

    code, _ = fix_vxlan(lab, config)
    assert code == 0 and offload("node-1") == "on"

    code, doc = fix_vxlan(lab, config, "--fix-checksum-offload")
    assert code == 0, doc
    assert offload("node-1") == offload("node-2") == "off"
    code, doc = fix_vxlan(lab, config, "--fix-checksum-offload")
    assert not [i for i in doc["items"] if "outcome" in i]


def test_ssh_flags_reach_the_pool(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(2)
    assert lab.users is not None
    lab.block("node-2", target="DROP")

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    config = tmp_path / "new-hosts.yaml"
    config.write_text(lab.config_yaml(known_hosts=empty))
    code, doc = fix_vxlan(lab, config, "--check")
    assert code == 3
    assert all("unknown host key" in node["error"] for node in doc["nodes"].values())
    code, doc = fix_vxlan(lab, config, "--check", "--accept-new-host-keys")
    assert code == 1 and blocked(doc) == {("node-1", "node-2")}
    assert len(empty.read_text().splitlines()) == 2

    config = tmp_path / "sudo-password.yaml"
    config.write_text(lab.config_yaml(sudo_password=True))
    code, doc = fix_vxlan(lab, config, "--check")
    assert code == 1 and not blocked(doc)
    assert all("sudo needs a password" in node["error"] for node in doc["nodes"].values())
    done = lab.run_cli(["fix-vxlan", "-c", str(config), "--json", "--sudo-password-stdin"],
                       input_text=lab.users.sudo_password + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.users.sudo_password not in done.stdout + done.stderr
    assert all(lab.ping_matrix().values())
