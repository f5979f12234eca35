"""The time-lag benchmark in smoke mode against the session's broker: exact hour-old lag, one describe-configs."""

from __future__ import annotations

import pytest

from bench import time_lag

pytestmark = pytest.mark.kafka


def test_time_lag_benchmark_reads_every_partition_in_few_fetches(kafka_broker):
    rows = time_lag.run(kafka_broker.bootstrap_servers, smoke=True)
    assert [r["partitions"] for r in rows] == list(time_lag.SMOKE_SIZES)
    assert all(abs(r["max_time_lag_s"] - time_lag.AGE_SECONDS) < 30 for r in rows)
    # Every partition is in each fetch request: the count does not grow with the partitions.
    assert all(1 <= r["fetch_requests"] <= 6 for r in rows)
