"""Moving a single-node install to profile scalable, as data (o11yctl.stack.migrate): the day Loki's bucket
period starts, when the move may finish, where a namespace stands, and the plans of both stages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from o11yctl.config import Config, parse_config
from o11yctl.stack.migrate import (
    Record,
    bridge_day,
    bridged_releases,
    finish_after,
    finish_plan,
    leftovers,
    next_day,
    stage_lines,
    stage_of,
)
from o11yctl.stack.plan import build_plan
from o11yctl.stack.render import render_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scalable.yaml"


@pytest.fixture
def cfg() -> Config:
    return parse_config(EXAMPLE.read_text(), str(EXAMPLE))


def test_the_bucket_period_starts_on_the_next_utc_day_at_least_an_hour_ahead() -> None:
    assert bridge_day(datetime(2026, 12, 5, 10, 0, tzinfo=UTC)) == "2026-12-06"
    assert bridge_day(datetime(2026, 12, 5, 22, 59, tzinfo=UTC)) == "2026-12-06"
    assert bridge_day(datetime(2026, 12, 5, 23, 0, 1, tzinfo=UTC)) == "2026-12-07"
    # a local clock is read in UTC: 01:30 at UTC+2 on the 6th is 23:30 UTC on the 5th
    assert bridge_day(datetime(2026, 12, 6, 1, 30, tzinfo=timezone(timedelta(hours=2)))) == "2026-12-07"


def test_the_move_may_finish_one_retention_after_the_period_starts(cfg: Config) -> None:
    assert cfg.components.loki.retention == "7d"
    assert finish_after(cfg, "2026-12-06") == datetime(2026, 12, 13, tzinfo=UTC)


def test_where_a_namespace_stands(cfg: Config) -> None:
    bridged = Record("bridged", "2026-12-06", ("loki-pvc",))
    before, after = datetime(2026, 12, 12, 23, 59, tzinfo=UTC), datetime(2026, 12, 13, tzinfo=UTC)
    assert stage_of(cfg, None, before) == "bridge"
    assert stage_of(cfg, bridged, before) == "waiting"
    assert stage_of(cfg, bridged, before, early=True) == "finish"
    assert stage_of(cfg, bridged, after) == "finish"
    # an interrupted finish goes on, whatever the time
    assert stage_of(cfg, Record("finishing", "2026-12-06"), before) == "finish"
    assert stage_of(cfg, Record("finished", "2026-12-06"), after, early=True) == "finished"


def test_a_rerun_keeps_the_recorded_day_while_it_is_usable() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    ahead = Record("bridged", "2026-12-06")
    passed = Record("bridged", "2026-12-04")
    assert next_day(None, [], now) == "2026-12-06"
    assert next_day(ahead, [], now) == "2026-12-06"
    # Loki never ran with a day now past: its logs of that day are on the volume, so a new day is chosen
    assert next_day(passed, [], now) == "2026-12-06"
    assert next_day(passed, ["tempo"], now) == "2026-12-06"
    # once Loki writes to the bucket from that day, the day is fixed
    assert next_day(passed, ["loki"], now) == "2026-12-04"
    assert next_day(Record("bridged", "2026-12-05"), [], datetime(2026, 12, 4, 23, 30, tzinfo=UTC)) == "2026-12-06"


def test_which_releases_run_the_bridge_values() -> None:
    loki = {"loki": {"schemaConfig": {"configs": [
        {"from": "2024-04-01", "object_store": "filesystem"}, {"from": "2026-12-06", "object_store": "s3"}]}}}
    tempo = {"tempo": {"storage": {"trace": {"backend": "s3"}}}}
    assert bridged_releases({"loki": loki, "tempo": tempo}, "2026-12-06") == ["loki", "tempo"]
    assert bridged_releases({"loki": loki, "tempo": tempo}, "2026-12-07") == ["tempo"]
    assert bridged_releases({"loki": loki, "tempo": {"tempo": {"storage": {"trace": {"backend": "local"}}}}},
                            "2026-12-06") == ["loki"]
    assert bridged_releases({}, "2026-12-06") == []


def test_the_record_reads_back_what_it_writes_and_ignores_what_is_not_one() -> None:
    record = Record("finished", "2026-12-06", ("loki-pvc", "tempo-pvc"), "2026-12-13T00:00:00Z")
    doc = record.manifest("logging")
    assert doc["metadata"] == {"name": "o11yctl-migration", "namespace": "logging",
                               "labels": {"app.kubernetes.io/managed-by": "o11yctl"}}
    assert Record.of(doc) == record
    assert Record.of(None) is None
    assert Record.of({"data": {"stage": "bridged", "s3-from": "tomorrow"}}) is None
    assert Record.of({"data": {"stage": "started", "s3-from": "2026-12-06"}}) is None
    assert Record.of({"data": {"stage": "bridged", "s3-from": "2026-12-06"}}) == Record("bridged", "2026-12-06")


def test_the_bridge_keeps_the_single_node_install_and_records_the_day_before_loki_and_tempo_change(
        cfg: Config) -> None:
    bridged = cfg.bridged("2026-12-06")
    assert cfg.bridge_from is None and bridged.bridge_from == "2026-12-06"
    plan = build_plan(bridged)
    steps = {s.id: s for s in plan.steps}
    for c in ("loki", "tempo"):
        assert {"migration", f"volumes.{c}", "credentials"} <= set(steps[f"helm.{c}"].depends_on)
        assert steps[f"storage.{c}"].host == "node-2"
    assert steps["helm.store"].helm is not None
    files = render_config(bridged)
    record = yaml.safe_load(files["11-migration-record.yaml"])
    assert record["data"] == {"stage": "bridged", "s3-from": "2026-12-06", "claims": "loki-pvc,tempo-pvc"}
    loki = yaml.safe_load(files["02-loki-values.yaml"])
    assert [(c["from"], c["object_store"]) for c in loki["loki"]["schemaConfig"]["configs"]] == [
        ("2024-04-01", "filesystem"), ("2026-12-06", "s3")]
    assert loki["singleBinary"]["replicas"] == 1
    assert loki["loki"]["compactor"]["delete_request_store"] == "filesystem"
    assert [e["valueFrom"]["secretKeyRef"]["name"] for e in loki["singleBinary"]["extraEnv"]] == [
        "o11yctl-object-storage"] * 2
    tempo = yaml.safe_load(files["07-tempo-values.yaml"])
    assert tempo["tempo"]["storage"]["trace"]["backend"] == "s3"
    assert tempo["extraVolumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "tempo-pvc"}}]
    # the single-node files stay as they were, and the profile scalable ones do not know the move
    assert "11-migration-record.yaml" not in render_config(cfg)


def test_the_finish_releases_the_statefulsets_before_their_charts_change(cfg: Config) -> None:
    plan = finish_plan(cfg, "2026-12-06")
    ids = [s.id for s in plan.steps]
    record = yaml.safe_load(render_config(cfg.finishing("2026-12-06"))["11-migration-record.yaml"])
    assert record["data"] == {"stage": "finishing", "s3-from": "2026-12-06", "claims": "loki-pvc,tempo-pvc"}
    for c in ("loki", "tempo"):
        orphan = plan.step(f"migration.release.{c}")
        assert orphan.action == "orphan" and orphan.kind == "apply"
        assert orphan.target == f"StatefulSet logging/{c}"
        assert orphan.display_lines() == [f"delete StatefulSet logging/{c} with propagationPolicy Orphan "
                                          "(kubectl delete --cascade=orphan)"]
        assert ids.index(orphan.id) < ids.index(f"helm.{c}")
        assert orphan.id in plan.step(f"helm.{c}").depends_on
        # the record says finishing before anything of Loki's or Tempo's changes
        assert "migration" in orphan.depends_on and "migration" in plan.step(f"helm.{c}").depends_on
    assert len(plan.steps) == len(build_plan(cfg).steps) + 3


def test_what_the_move_keeps_is_named_with_how_to_delete_it(cfg: Config) -> None:
    kept = leftovers(cfg, ["loki-pvc"])
    assert kept == ["Loki's old data: claim logging/loki-pvc, volume loki-pv, /mnt/k8s-storage/loki on node-2; "
                    "once satisfied: kubectl delete pvc -n logging loki-pvc && kubectl delete pv loki-pv, then remove "
                    "the directory on the node"]


def test_during_the_bridge_the_commands_judge_what_runs(cfg: Config) -> None:
    from o11yctl.stack.context import stack_of
    from o11yctl.stack.migrate import running

    bridged = running(cfg, Record("bridged", "2026-12-06"))
    assert bridged.bridge_from == "2026-12-06"
    assert [c.name for c in stack_of(bridged).data] == ["loki", "tempo"]  # the single-node claims
    assert stack_of(bridged).has("store")
    assert running(cfg, Record("finished", "2026-12-06")) is cfg
    assert running(cfg, None) is cfg
    single = parse_config("charts:\n  set: current\n")
    assert running(single, Record("bridged", "2026-12-06")) is single  # a single-node config stays what it says


def test_what_preflight_says_of_a_single_node_install_at_each_point_of_a_move(cfg: Config) -> None:
    from o11yctl.deploy.preflight import judge_migrated, judge_single_node_data

    claims = ["loki-pvc", "tempo-pvc"]
    (fresh,) = judge_single_node_data(cfg, claims, None)
    assert "holds a single-node install" in fresh.message and "`o11yctl migrate --dry-run`" in fresh.hint
    (moving,) = judge_single_node_data(cfg, claims, Record("bridged", "2026-12-06"))
    assert "is being moved to profile scalable" in moving.message and "since 2026-12-06" in moving.message
    assert judge_single_node_data(cfg, claims, Record("finishing", "2026-12-06")) != []  # install is not migrate
    assert judge_single_node_data(cfg, claims, Record("finished", "2026-12-06")) == []  # the kept old data
    assert judge_single_node_data(cfg.bridged("2026-12-06"), claims, None) == []  # migrate's own stages
    assert judge_single_node_data(cfg.finishing("2026-12-06"), claims, Record("bridged", "2026-12-06")) == []
    assert judge_single_node_data(cfg, [], None) == []

    single = parse_config("charts:\n  set: current\n")
    assert judge_migrated(single, None) == []
    (back,) = judge_migrated(single, Record("finished", "2026-12-06"))
    assert "was moved to profile scalable" in back.message and "take Loki and Tempo off the bucket" in back.message


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time is UTC+9: every day is a UTC day all the same."""
    import time as clock

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    clock.tzset()
    yield
    monkeypatch.undo()
    clock.tzset()


def test_days_are_utc_days_whatever_the_local_time(tokyo: None) -> None:
    # 20:00 UTC is 05:00 the next day in Tokyo: the next UTC day is still the 6th
    assert bridge_day(datetime(2026, 12, 5, 20, 0, tzinfo=UTC)) == "2026-12-06"
    assert next_day(Record("bridged", "2026-12-06"), [], datetime(2026, 12, 5, 20, 0, tzinfo=UTC)) == "2026-12-06"


def test_the_lead_is_an_hour_or_more() -> None:
    assert bridge_day(datetime(2026, 12, 5, 23, 0, 0, tzinfo=UTC)) == "2026-12-06"  # exactly an hour ahead: fine
    now = datetime(2026, 12, 5, 23, 0, 0, tzinfo=UTC)
    assert next_day(Record("bridged", "2026-12-06"), [], now) == "2026-12-06"


def test_the_record_of_each_stage(cfg: Config) -> None:
    finishing = Record("finishing", "2026-12-06", ("loki-pvc",))
    assert Record.of(finishing.manifest("logging")) == finishing
    assert Record("bridged", "2026-12-06", ("loki-pvc", "tempo-pvc")).manifest("obs") == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "o11yctl-migration", "namespace": "obs",
                     "labels": {"app.kubernetes.io/managed-by": "o11yctl"}},
        "data": {"stage": "bridged", "s3-from": "2026-12-06", "claims": "loki-pvc,tempo-pvc"}}


def test_the_finish_steps_say_what_they_release_and_belong_to_their_component(cfg: Config) -> None:
    plan = finish_plan(cfg, "2026-12-06")
    for c in ("loki", "tempo"):
        step = plan.step(f"migration.release.{c}")
        assert (step.component, step.owner, step.depends_on) == (c, c, ("namespace", "migration"))
        assert step.description == (f"delete StatefulSet logging/{c}, its pods and claims kept (propagation Orphan): "
                                    "its volume claim templates change, which the API server does not update")


def test_only_the_claims_present_are_named_as_kept(cfg: Config) -> None:
    (tempo,) = leftovers(cfg, ["tempo-pvc"])
    assert tempo.startswith("Tempo's old data: claim logging/tempo-pvc, volume tempo-pv, /mnt/k8s-storage/tempo on "
                            "node-2")
    assert leftovers(cfg, []) == []


def test_what_each_stage_says(cfg: Config) -> None:
    before = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    bridge = stage_lines(cfg, "bridge", day="2026-12-06", now=before)
    assert bridge == [
        "Loki keeps its volume and writes to the bucket from 2026-12-06 (UTC); logs before that day are read from "
        "the volume as before",
        "Tempo writes its blocks to the bucket from now on; the traces on its volume are no longer shown (they stay "
        "on the volume)",
        "after 2026-12-13 00:00 UTC (that day plus the retention, 7d) `o11yctl migrate` finishes the move"]
    early = stage_lines(cfg, "finish", day="2026-12-06", now=before)
    assert early[0] == ("Loki and Tempo move to profile scalable: 3 Loki replica(s) on the bucket, Tempo on the "
                        "bucket; their StatefulSets are replaced (pods and claims kept until then)")
    assert early[1] == ("finishing before 2026-12-13 00:00 UTC: logs from before 2026-12-06 stay on the volume and "
                        "are no longer shown")
    assert stage_lines(cfg, "waiting", day="2026-12-06", now=before) == early
    assert stage_lines(cfg, "finish", day="2026-12-06", now=datetime(2026, 12, 13, tzinfo=UTC)) == early[:1]
    assert stage_lines(cfg, "finished", day="2026-12-06", now=before) == []
