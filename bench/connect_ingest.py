"""Bounded Kafka ingest of 100,000 records: spark-submit per task against a warm Spark Connect server.

Starts a local Kafka broker (:mod:`devstack.kafka`) and a local Connect server
(:mod:`devstack.spark_connect`), fills one 4-partition topic, and runs
``SparkStreamingSubmitOperator`` with the same ``availableNow`` Kafka → Delta spec (25,000 records a
micro-batch) into a fresh table and checkpoint, once through a ``spark`` connection (``local[2]``: a
spark-submit and a fresh JVM) and once through the ``spark_connect`` connection. The server is warmed
with one small ingest of another topic before the clock starts.

For each path: the task's wall time (``execute``, end to end), the Spark work (from the first micro-batch's
start to the last one's end, from the query's own progress events) and the overhead (wall time minus Spark
work: JVM start, session, planning, the lease, reading the checkpoint). Target: Connect's overhead at most
1 s.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.common import add_speed_up, bench_main, local_connect_server

RECORDS, SMOKE_RECORDS = 100_000, 10_000
PARTITIONS = 4


def _produce(bootstrap: str, topic: str, count: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000})
    for i in range(count):
        producer.produce(topic, key=f"key-{i}", value=f"value-{i}-" + "x" * 60, partition=i % PARTITIONS)
        if i % 50_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def _spec(bootstrap: str, topic: str, root: Path, per_batch: int) -> dict:
    return {
        "query_name": f"bench_{root.name}",
        "checkpoint_location": str(root / "checkpoint"),
        "source": {"format": "kafka", "options": {"kafka.bootstrap.servers": bootstrap, "subscribe": topic,
                                                  "startingOffsets": "earliest", "maxOffsetsPerTrigger": per_batch}},
        "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, partition, offset "
                         "FROM source",
        "sink": {"format": "delta", "path": str(root / "table")},
        "trigger": {"available_now": True},
    }  # fmt: skip


def _spark_seconds(checkpoint: Path) -> float:
    """From the first batch's start to the last batch's end, by the query's own progress events."""
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    events = RunnerControlHook(str(checkpoint)).get_progress()

    def at(event: dict) -> float:
        return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()

    first, last = events[0], events[-1]
    return at(last) + last["durationMs"]["triggerExecution"] / 1000 - at(first)


def _ingest(spec: dict, conn_id: str) -> tuple[float, dict]:
    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

    task = SparkStreamingSubmitOperator(task_id="bench_ingest", spec=spec, spark_conn_id=conn_id, poll_interval=0.5)
    started = time.perf_counter()
    result = task.execute({})
    return time.perf_counter() - started, result


def run(smoke: bool = False) -> list[dict]:
    from devstack import kafka

    records = SMOKE_RECORDS if smoke else RECORDS
    per_batch = records // 4
    os.environ["AIRFLOW_CONN_SPARK_BENCH_LOCAL"] = json.dumps({"conn_type": "spark", "host": "local[2]"})
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-connect-ingest-") as work:
        work = Path(work)
        broker = kafka.start(work / "kafka", port=0)
        try:
            with local_connect_server(work / "server", "spark_connect_bench") as server_start:
                _produce(broker.bootstrap_servers, "warmup", 1000)
                warm_up, _ = _ingest(_spec(broker.bootstrap_servers, "warmup", work / "warmup", 1000),
                                     "spark_connect_bench")  # fmt: skip
                _produce(broker.bootstrap_servers, "orders", records)
                for name, conn_id in (("spark-submit", "spark_bench_local"), ("spark-connect", "spark_connect_bench")):
                    root = work / name
                    wall, result = _ingest(_spec(broker.bootstrap_servers, "orders", root, per_batch), conn_id)
                    assert result["rows_processed"] == records, result
                    spark = _spark_seconds(root / "checkpoint")
                    rows.append({"path": name, "records": result["rows_processed"],
                                 "batches": result["batches_committed"], "task_s": round(wall, 2),
                                 "spark_work_s": round(spark, 2), "overhead_s": round(wall - spark, 2)})  # fmt: skip
        finally:
            kafka.stop(Path(broker.home))
    add_speed_up(rows, "task_s")
    rows.append({"path": "(connect server start, once)", "task_s": round(server_start, 2)})
    rows.append({"path": "(connect warm-up ingest, 1,000 records)", "task_s": round(warm_up, 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return bench_main(argv, doc=__doc__, name="connect_ingest",
                      title="Bounded Kafka ingest: spark-submit vs Spark Connect (warm)",
                      run=lambda args: run(args.smoke),
                      notes="end to end execute(); overhead = task wall time - Spark work from the query's progress")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
