"""`status`'s storage sizing reads well (not enough data yet, and which; days; or more than N years), and
Loki's metrics behind the API server's 503 say what it said.

Pure: Loki's metrics as text in, the ingestion document (also `status --json`'s) out.
"""

from __future__ import annotations

import pytest

from o11yctl.status.read import MAX_YEARS, MIN_RATE_BYTES, MIN_RATE_SECONDS, ingestion, metrics_error

START = 1.7e9
GIB = 1024**3


def metrics(received: float) -> str:
    return (f'loki_distributor_bytes_received_total{{tenant="fake"}} {received:.6e}\n'
            f"process_start_time_seconds {START:.6e}\n")


def test_too_little_time_says_not_enough_data_and_how_long_loki_ran() -> None:
    rate = ingestion(metrics(50 * GIB), START + 20 * 60, capacity_bytes=200 * GIB, retention_days=7)
    assert rate["days_held"] is None and rate["bytes_per_day"] is None
    assert rate["days_held_reason"] == rate["note"] == (
        "not enough data yet: Loki started 20m ago, and a rate needs at least 1 hour of it")
    assert MIN_RATE_SECONDS == 3600


def test_too_little_data_says_not_enough_data_and_how_much_came() -> None:
    # The cluster: Loki up for days, next to nothing received: no "~3855966 days".
    rate = ingestion(metrics(12 * 1024), START + 3 * 86400, capacity_bytes=200 * GIB, retention_days=7)
    assert rate["days_held"] is None and rate["bytes_per_day"] == pytest.approx(4096)
    assert rate["note"] == ("not enough data yet: Loki has received 12K in 3d, and a rate needs at least "
                            f"{MIN_RATE_BYTES // 1024**2}.0M")
    assert rate["days_held_reason"] == rate["note"]


def test_a_rate_that_lasts_for_years_is_more_than_n_years() -> None:
    rate = ingestion(metrics(2 * 1024**2), START + 30 * 86400, capacity_bytes=200 * GIB, retention_days=7)
    assert rate["days_held"] is None and rate["days_held_over"] == MAX_YEARS * 365
    assert rate["days_held_reason"] == f"more than {MAX_YEARS} years at this rate"
    assert rate["note"] == f"holds more than {MAX_YEARS} years at this rate, retention is 7 days"


def test_otherwise_days_as_a_number_with_no_reason() -> None:
    rate = ingestion(metrics(3 * GIB), START + 3 * 86400, capacity_bytes=200 * GIB, retention_days=7)
    assert rate["days_held"] == pytest.approx(200) and rate["days_held_reason"] is None
    assert rate["days_held_over"] is None
    assert rate["note"] == "holds ~200 days at this rate, retention is 7 days"


def test_no_metrics_is_a_reason_too() -> None:
    rate = ingestion("up 1\n", START, capacity_bytes=200 * GIB, retention_days=7)
    assert rate["days_held"] is None and rate["days_held_reason"] == "Loki's metrics do not give an ingestion rate"


def test_without_a_volume_the_rate_is_given_and_the_reason_for_no_days_is_the_callers() -> None:
    why = "Loki keeps its chunks in the object store's bucket loki-chunks, not on a volume: see the buckets' usage"
    rate = ingestion(metrics(4 * GIB), START + 2 * 86400, capacity_bytes=None, retention_days=7, no_capacity=why)
    assert rate["bytes_per_day"] == pytest.approx(2 * GIB)
    assert rate["days_held"] is None and rate["days_held_reason"] == rate["note"] == why
    assert ingestion(metrics(4 * GIB), START + 2 * 86400, capacity_bytes=None, retention_days=7)["note"] == (
        "the size of Loki's volume is not known")


def test_lokis_metrics_behind_the_api_servers_503_say_what_it_said() -> None:
    body = (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"error trying to reach '
            b'service: dial tcp 10.42.1.10:3100: i/o timeout","reason":"ServiceUnavailable","code":503}')
    error = metrics_error(503, body, namespace="logging", service="svc/loki:3100")
    assert error.message == ("the Kubernetes API server answered for svc/loki:3100: HTTP 503 ServiceUnavailable: "
                             "error trying to reach service: dial tcp 10.42.1.10:3100: i/o timeout")
    assert error.hint is not None and "fix-vxlan" in error.hint
    assert metrics_error(500, b"oops", namespace="logging", service="svc/loki:3100").message == (
        "Loki's /metrics answered HTTP 500")
