"""Shared steps of integration tests: produce keyed records, submit the stream runner."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_spark_streaming.runner.jobs import job_path
from airflow_spark_streaming.spark.jvm import JvmDependencies


def produce_keyed(bootstrap_servers: str, topic: str, count: int, partitions: int) -> dict[int, int]:
    """Produce ``count`` records ``key-i`` → ``value-i`` round-robin over partitions; return per-partition counts."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5, "enable.idempotence": True})
    per_partition: dict[int, int] = {}
    for i in range(count):
        partition = i % partitions
        producer.produce(topic, key=f"key-{i}", value=f"value-{i}", partition=partition)
        per_partition[partition] = per_partition.get(partition, 0) + 1
    assert producer.flush(30) == 0, "records were left unsent"
    return per_partition


def kafka_to_delta_spec(bootstrap_servers: str, topic: str, table: Path, checkpoint: Path, **source_options) -> dict:
    return {
        "query_name": f"{topic}_to_delta",
        "checkpoint_location": str(checkpoint),
        "source": {
            "format": "kafka",
            "options": {
                "kafka.bootstrap.servers": bootstrap_servers,
                "subscribe": topic,
                "startingOffsets": "earliest",
                **source_options,
            },
        },
        "transform_sql": (
            "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, "
            "partition AS kafka_partition, offset AS kafka_offset FROM source"
        ),
        "sink": {"format": "delta", "path": str(table), "output_mode": "append"},
        "trigger": {"available_now": True},
    }


def long_running_kafka_spec(bootstrap_servers: str, topic: str, tmp_path: Path, *, lease_ttl_seconds: int):
    """600 keyed records on ``topic`` (2 partitions) and a spec reading 50 a batch every 2 seconds into a Delta table.

    Returns ``(spec, table, checkpoint)``, both folders under ``tmp_path``.
    """
    produce_keyed(bootstrap_servers, topic, 600, partitions=2)
    table, checkpoint = tmp_path / "table", tmp_path / "ckpt"
    spec = kafka_to_delta_spec(bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=50)
    spec["trigger"] = {"processing_time": "2 seconds"}
    spec["lease_ttl_seconds"] = lease_ttl_seconds
    return spec, table, checkpoint


def slow_batch_spec(tmp_path: Path, *, lease_ttl_seconds: int) -> dict:
    """A rate → Delta query whose batches take far longer than a short stop timeout (each row spins for seconds).

    The spin is pure SQL (36 million lambda steps per row, depending on the row so that Spark cannot fold it):
    transform_sql refuses Java reflection, so ``reflect('java.lang.Thread', 'sleep', ...)`` is no longer a way.
    """
    return {
        "query_name": "slow_rate",
        "checkpoint_location": str(tmp_path / "ckpt"),
        "source": {"format": "rate", "options": {"rowsPerSecond": "2"}},
        "transform_sql": (
            "SELECT value, aggregate(sequence(1, 6000 + CAST(value % 2 AS INT)), 0L,"
            " (a, x) -> a + aggregate(sequence(1, 6000), 0L, (b, y) -> b + y)) AS spun FROM source"
        ),
        "sink": {"format": "delta", "path": str(tmp_path / "table"), "output_mode": "append"},
        "trigger": {"processing_time": "1 second"},
        "lease_ttl_seconds": lease_ttl_seconds,
    }


def submit_stream_runner(spec: dict, deps: JvmDependencies, conn_id: str, tmp_path: Path, **hook_kwargs) -> None:
    """Run the bundled stream runner through the Spark provider's SparkSubmitHook."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    spec_file = tmp_path / f"spec-{spec['query_name']}.json"
    spec_file.write_text(json.dumps(spec))
    submit = deps.submit_kwargs()
    conf = {**submit.pop("conf"), "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}
    hook = SparkSubmitHook(
        conn_id=conn_id,
        conf=conf,
        application_args=["--spec-file", str(spec_file)],
        name=spec["query_name"],
        **submit,
        **hook_kwargs,
    )
    hook.submit(job_path("stream_runner"))


def read_delta(table: Path) -> list[dict]:
    from deltalake import DeltaTable

    return DeltaTable(str(table)).to_pyarrow_table().to_pylist()


def run_available_now(spark, bootstrap: str, checkpoint, *, max_offsets: int, **subscription) -> dict:
    """One bounded run of a Kafka → noop query; returns its last progress."""
    reader = spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
    for key, value in subscription.items():
        reader = reader.option(key, value)
    query = (
        reader.option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", max_offsets)
        .option("failOnDataLoss", "false")
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    return json.loads(query.lastProgress.json) if query.lastProgress else {}
