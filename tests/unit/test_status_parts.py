"""`status`'s pure parts: rows from API objects, Loki's metrics, the storage-sizing arithmetic."""

from __future__ import annotations

import pytest

from o11yctl.stack.components import LOKI, TEMPO
from o11yctl.status.read import (
    human_age,
    ingestion,
    parse_metric,
    password_command,
    pod_row,
    quantity_bytes,
    volume_row,
)

# The lines Loki 3.3 exposes for the two metrics (other metrics trimmed).
METRICS = """\
# HELP loki_distributor_bytes_received_total The total number of uncompressed bytes received per tenant.
# TYPE loki_distributor_bytes_received_total counter
loki_distributor_bytes_received_total{retention_hours="168",tenant="fake"} 3.221225472e+09
loki_distributor_bytes_received_totally_different 5
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.7e+09
"""


def test_quantities_and_ages() -> None:
    assert quantity_bytes("200Gi") == 200 * 1024**3
    assert quantity_bytes("50G") == 50 * 1000**3
    assert quantity_bytes("oops") is None and quantity_bytes(None) is None
    assert [human_age(s) for s in (5, 90, 7200, 3 * 86400)] == ["5s", "1m", "2h", "3d"]


def test_parse_metric_sums_samples_and_ignores_longer_names() -> None:
    assert parse_metric(METRICS, "loki_distributor_bytes_received_total") == 3 * 1024**3
    assert parse_metric(METRICS, "process_start_time_seconds") == 1.7e9
    assert parse_metric(METRICS, "nope") is None


def test_ingestion_is_the_runbooks_arithmetic() -> None:
    now = 1.7e9 + 3 * 86400  # three days after start: 1 GiB/day
    rate = ingestion(METRICS, now, capacity_bytes=200 * 1024**3, retention_days=7)
    assert rate["bytes_per_day"] == pytest.approx(1024**3)
    assert rate["days_held"] == pytest.approx(200)
    assert rate["note"] == "holds ~200 days at this rate, retention is 7 days"
    small = ingestion(METRICS, now, capacity_bytes=5 * 1024**3, retention_days=7)
    assert "fills up before retention deletes" in small["note"]
    young = ingestion(METRICS, 1.7e9 + 10, capacity_bytes=1, retention_days=7)
    assert young["bytes_per_day"] is None


def test_pod_and_volume_rows() -> None:
    pod = {"metadata": {"name": "loki-0", "creationTimestamp": "2025-01-01T00:00:00Z"},
           "spec": {"nodeName": "node-2", "containers": [{"name": "loki"}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"ready": False, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    row = pod_row(pod, now=1735693200.0)  # one hour later
    assert row == {"name": "loki-0", "node": "node-2", "status": "CrashLoopBackOff", "ready": "0/1",
                   "restarts": 4, "age": "60m"}
    pv = {"spec": {"capacity": {"storage": "200Gi"}, "local": {"path": "/mnt/k8s-storage/loki"}},
          "status": {"phase": "Bound"}}
    pvc = {"spec": {"volumeName": "loki-pv"}, "status": {"phase": "Bound", "capacity": {"storage": "200Gi"}}}
    row = volume_row(LOKI, pv, pvc)
    assert (row["pvc_status"], row["bound_to"], row["capacity_bytes"], row["path"]) == (
        "Bound", "loki-pv", 200 * 1024**3, "/mnt/k8s-storage/loki")
    assert volume_row(TEMPO, None, None)["pvc_status"] == "missing"


def test_the_password_is_never_read_only_the_command_to_read_it() -> None:
    assert password_command("logging", "grafana") == (
        "kubectl get secret -n logging grafana -o jsonpath='{.data.admin-password}' | base64 -d; echo")


@pytest.mark.parametrize(("bytes_per_day", "shown"), [
    (2 * 1024**3, "2.00 GiB/day"),
    (0.01 * 1024**3, "0.01 GiB/day"),
    (0.0099 * 1024**3, "10.14 MiB/day"),  # below 0.01 GiB: a near-idle Loki is not shown as 0.00 GiB/day
    (358 * 1024, "0.35 MiB/day"),
    (300, "300 bytes/day"),
    (0, "0 bytes/day"),
])
def test_an_ingestion_rate_is_shown_in_a_unit_that_keeps_it_readable(bytes_per_day: float, shown: str) -> None:
    from o11yctl.ui import per_day

    assert per_day(bytes_per_day) == shown
