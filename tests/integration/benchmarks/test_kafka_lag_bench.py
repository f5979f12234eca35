"""The lag benchmark in smoke mode against the session's broker: batched requests, whatever the size."""

from __future__ import annotations

import pytest

from bench import kafka_lag

pytestmark = pytest.mark.kafka


def test_lag_benchmark_uses_three_round_trips_at_every_size(kafka_broker):
    rows = kafka_lag.run(kafka_broker.bootstrap_servers, smoke=True)
    assert [r["partitions"] for r in rows] == list(kafka_lag.SMOKE_SIZES)
    assert {r["round_trips"] for r in rows} == {3}
    per_partition = kafka_lag.RECORDS_PER_PARTITION - kafka_lag.READ_PER_PARTITION
    assert [r["total_lag"] for r in rows] == [n * per_partition for n in kafka_lag.SMOKE_SIZES]
