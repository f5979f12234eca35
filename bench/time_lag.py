"""Extra cost of time lag and retention headroom over a lag poke, for 1, 64 and 1,024 lagging partitions.

Starts the local Kafka broker (devstack), makes one topic per size whose
records carry timestamps an hour old, writes a checkpoint in Spark's layout
that trails the broker on every partition, then times the lag poke
(``KafkaLagHook.get_lag()``) and, on its report, ``KafkaBrokerHook.get_time_lag()``
(one fetch for the first unprocessed record of every partition, with the
describe-configs request for retention answered while it runs).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench import kafka_lag
from bench.common import bench_main
from bench.kafka_lag import write_checkpoint

SIZES = (1, 64, 1024)
SMOKE_SIZES = (1, 4)
RECORDS_PER_PARTITION = 20  # the checkpoint has read 15 of them (bench.kafka_lag's layout)
AGE_SECONDS = 3600


def prepare_topic(bootstrap: str, partitions: int) -> tuple[str, int]:
    """A topic whose records are an hour old; returns it and the first record's timestamp (ms)."""
    old = int(time.time() * 1000) - AGE_SECONDS * 1000
    return kafka_lag.prepare_topic(bootstrap, partitions, prefix="bench-time-lag", timestamp_ms=old, timeout=60), old


def run(bootstrap: str, smoke: bool = False) -> list[dict]:
    from airflow_spark_streaming.hooks.kafka_broker import KafkaBrokerHook
    from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook

    conn_id = kafka_lag.use_broker(bootstrap)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-time-lag-") as work:
        for partitions in SMOKE_SIZES if smoke else SIZES:
            topic, produced_ms = prepare_topic(bootstrap, partitions)
            checkpoint = Path(work) / f"ckpt-{partitions}"
            write_checkpoint(checkpoint, topic, partitions)
            lag_hook, broker = KafkaLagHook(conn_id), KafkaBrokerHook(conn_id, timeout=60)
            lag_hook.admin, broker.admin  # connect once, outside the timing  # noqa: B018
            report = lag_hook.get_lag(str(checkpoint))  # metadata warm-up
            broker.get_time_lag(report.partitions)
            poke, extra, time_lag = [], [], None
            for _ in range(3 if smoke else 10):
                started = time.perf_counter()
                report = lag_hook.get_lag(str(checkpoint))
                measured = time.perf_counter()
                time_lag = broker.get_time_lag(report.partitions)
                done = time.perf_counter()
                poke.append(measured - started)
                extra.append(done - measured)
            lagging = {(p.topic, p.partition): p.checkpoint_offset for p in report.partitions}
            fetches = broker.get_record_timestamps(lagging, count_requests=True).fetch_requests
            assert len(time_lag.partitions) == partitions
            expected = time_lag.measured_at - produced_ms / 1000  # the oldest record's age when measured
            assert abs(time_lag.max_time_lag_seconds - expected) < 1, (time_lag.max_time_lag_seconds, expected)
            rows.append({
                "partitions": partitions,
                "lag_poke_ms": round(statistics.median(poke) * 1000, 2),
                "time_lag_extra_ms": round(statistics.median(extra) * 1000, 2),
                "total_ms": round(statistics.median([a + b for a, b in zip(poke, extra, strict=True)]) * 1000, 2),
                "fetch_requests": fetches,
                "describe_configs_requests": 1,
                "max_time_lag_s": round(time_lag.max_time_lag_seconds, 1),
                "expected_s": round(expected, 1),
                "unknown_partitions": len(time_lag.unknown_partitions),
            })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, doc=__doc__, name="time_lag", title="Time lag over a lag poke vs lagging partitions",
                      run=kafka_lag.with_broker(run), add_arguments=kafka_lag.add_broker_argument,
                      notes="local single-node KRaft broker on 127.0.0.1; medians of 10; fetch_requests counted "
                            "from librdkafka statistics (Fetch requests the peek consumer sent, all partitions "
                            "in each); describe-configs runs concurrently with the fetch")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
