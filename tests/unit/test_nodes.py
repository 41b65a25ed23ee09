"""The one rule for a node's labels and taints, shared by install's --label-nodes and doctor --fix."""

from __future__ import annotations

from o11yctl.stack.nodes import NodeChange, NodeTaint, node_change, node_change_for

HEAVY = NodeTaint("heavy", "true", "NoSchedule")


def test_nothing_to_do_when_the_node_carries_what_the_config_names() -> None:
    assert node_change("node-2", want_labels={"hardware": "heavy"}, want_taints=[HEAVY],
                       have_labels={"hardware": "heavy", "other": "x"},
                       have_taints=[NodeTaint("gpu", "", "PreferNoSchedule"), HEAVY]) is None


def test_missing_label_and_taint_are_added_and_other_keys_kept() -> None:
    gpu = NodeTaint("gpu", "", "PreferNoSchedule")
    change = node_change("node-2", want_labels={"hardware": "heavy"}, want_taints=[HEAVY],
                         have_labels={"zone": "attic"}, have_taints=[gpu])
    assert change == NodeChange("node-2", {"hardware": "heavy"}, (gpu, HEAVY), (), (HEAVY,))
    assert change.patch() == {"metadata": {"labels": {"hardware": "heavy"}},
                              "spec": {"taints": [{"key": "gpu", "effect": "PreferNoSchedule"},
                                                  {"key": "heavy", "value": "true", "effect": "NoSchedule"}]}}
    assert change.commands() == ["kubectl label node node-2 hardware=heavy --overwrite",
                                 "kubectl taint node node-2 heavy=true:NoSchedule --overwrite"]
    assert change.what() == "label hardware=heavy and taint heavy=true:NoSchedule"


def test_a_taint_with_a_configured_key_but_another_value_or_effect_is_replaced() -> None:
    for odd in (NodeTaint("heavy", "yes", "NoSchedule"), NodeTaint("heavy", "true", "NoExecute")):
        change = node_change("node-2", want_labels={}, want_taints=[HEAVY], have_labels={}, have_taints=[odd])
        assert change is not None
        assert change.removed == (odd,) and change.added == (HEAVY,) and change.taints == (HEAVY,)
        assert change.commands()[0] == f"kubectl taint node node-2 heavy:{odd.effect}-"


def test_a_label_with_another_value_is_overwritten() -> None:
    change = node_change("node-2", want_labels={"hardware": "heavy"}, want_taints=[], have_labels={"hardware": "x"},
                         have_taints=[])
    assert change == NodeChange("node-2", {"hardware": "heavy"})
    assert change.patch() == {"metadata": {"labels": {"hardware": "heavy"}}}, "taints stay out of the patch"


def test_read_from_the_apis_node_and_checked_against_the_patched_node() -> None:
    live = {"metadata": {"name": "node-2", "labels": {}}, "spec": {"taints": [{"key": "heavy", "value": "no",
                                                                             "effect": "NoSchedule"}]}}
    change = node_change_for("node-2", {"hardware": "heavy"}, [HEAVY], live)
    assert change is not None
    assert change.remaining(live) == ["label hardware=heavy", "taint heavy=true:NoSchedule",
                                      "still has taint heavy=no:NoSchedule"]
    patched = {"metadata": {"labels": {"hardware": "heavy"}},
               "spec": {"taints": [{"key": "heavy", "value": "true", "effect": "NoSchedule"}]}}
    assert change.remaining(patched) == []
