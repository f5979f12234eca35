"""Lag computation against partition count: broker round trips and time, for 1, 8 and 64 partitions.

Starts the local Kafka broker (devstack), makes one topic per size with a few
records per partition, writes a checkpoint in Spark's layout whose Kafka
offsets trail the broker by a known amount, and times ``KafkaLagHook.get_lag()``.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import bench_main

SIZES = (1, 8, 64)
SMOKE_SIZES = (1, 4)
RECORDS_PER_PARTITION = 20
READ_PER_PARTITION = 15


def write_checkpoint(root: Path, topic: str, partitions: int) -> None:
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    (root / "metadata").write_text(json.dumps({"id": str(uuid.uuid4())}))
    offsets = {topic: {str(p): READ_PER_PARTITION for p in range(partitions)}}
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": int(time.time() * 1000), "conf": {}}
    (root / "offsets" / "0").write_text(f"v1\n{json.dumps(meta)}\n{json.dumps(offsets)}")
    (root / "commits" / "0").write_text('v1\n{"nextBatchWatermarkMs":0}')


def prepare_topic(
    bootstrap: str, partitions: int, *, prefix: str = "bench-lag", timestamp_ms: int | None = None,
    timeout: float = 30,
) -> str:  # fmt: skip
    """A new topic with ``RECORDS_PER_PARTITION`` records in every partition, stamped from ``timestamp_ms`` if given."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"{prefix}-{partitions}-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep a reference until the future resolves
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition in range(partitions):
        for i in range(RECORDS_PER_PARTITION):
            stamp = {} if timestamp_ms is None else {"timestamp": timestamp_ms + i}
            producer.produce(topic, value=b"x", key=str(i), partition=partition, **stamp)
    producer.flush(timeout)
    return topic


def use_broker(bootstrap: str) -> str:
    """Point the ``kafka_bench`` connection at ``bootstrap``; returns its id."""
    os.environ["AIRFLOW_CONN_KAFKA_BENCH"] = json.dumps(
        {"conn_type": "kafka", "extra": {"bootstrap.servers": bootstrap}}
    )
    return "kafka_bench"


def add_broker_argument(parser) -> None:
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting the local one")


def with_broker(run: Callable[[str, bool], list[dict]]) -> Callable[[Any], list[dict]]:
    """``run(bootstrap, smoke)`` on ``--bootstrap-servers``, or on a local broker started for it and then stopped."""

    def run_on_a_broker(args) -> list[dict]:
        if args.bootstrap_servers:
            return run(args.bootstrap_servers, args.smoke)
        from devstack import kafka

        with tempfile.TemporaryDirectory(prefix="bench-kafka-") as home:
            broker = kafka.start(Path(home), port=0)
            try:
                return run(broker.bootstrap_servers, args.smoke)
            finally:
                kafka.stop(Path(home))

    return run_on_a_broker


def run(bootstrap: str, smoke: bool = False) -> list[dict]:
    from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook

    conn_id = use_broker(bootstrap)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lag-") as work:
        for partitions in SMOKE_SIZES if smoke else SIZES:
            topic = prepare_topic(bootstrap, partitions)
            checkpoint = Path(work) / f"ckpt-{partitions}"
            write_checkpoint(checkpoint, topic, partitions)
            hook = KafkaLagHook(conn_id)
            hook.admin  # connect once, outside the timing  # noqa: B018
            timings, report = [], None
            for _ in range(3 if smoke else 10):
                started = time.perf_counter()
                report = hook.get_lag(str(checkpoint))
                timings.append(time.perf_counter() - started)
            expected = partitions * (RECORDS_PER_PARTITION - READ_PER_PARTITION)
            assert report.total_lag == expected, (report.total_lag, expected)
            rows.append({"partitions": partitions, "round_trips": report.round_trips,
                         "median_ms": round(statistics.median(timings) * 1000, 2), "total_lag": report.total_lag})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, doc=__doc__, name="kafka_lag", title="KafkaLagHook.get_lag() vs partitions",
                      run=with_broker(run), add_arguments=add_broker_argument,
                      notes="local single-node KRaft broker on 127.0.0.1; round_trips counts admin requests")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
