"""CheckpointHook against checkpoints written by real Spark 4.2 queries."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from airflow_spark_streaming.hooks.checkpoint import CheckpointHook, CheckpointStatus
from tests.support.checkpoint_fixtures import write_json_files
from tests.support.streaming_helpers import produce_keyed


def _end_offset(progress: dict, index: int = 0):
    value = progress["sources"][index]["endOffset"]
    return json.loads(value) if isinstance(value, str) else value


def _run_to_end(frame, checkpoint, sink_format: str = "delta", path=None, output_mode: str = "append") -> dict:
    """Write ``frame`` with an availableNow trigger until it ends; return the last progress as JSON."""
    writer = (
        frame.writeStream.format(sink_format)
        .outputMode(output_mode)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
    )
    query = writer.start(str(path)) if path else writer.start()
    query.awaitTermination()
    return json.loads(query.lastProgress.json)


def test_file_source_checkpoint(file_source_checkpoint):
    checkpoint = file_source_checkpoint["checkpoint"]
    status = CheckpointHook(str(checkpoint)).get_status()

    assert status.query_id == file_source_checkpoint["query_id"]
    assert (status.latest_planned_batch, status.latest_committed_batch, status.oldest_retained_batch) == (3, 3, 0)
    assert not status.has_uncommitted_batch and status.uncommitted_batch is None
    assert status.offsets_log_version == 1 and status.commits_log_version == 1
    (source,) = status.committed_sources
    assert source.kind == "file" and source.log_offset == 3
    assert source.offset == _end_offset(file_source_checkpoint["last_progress"])
    assert status.batch_timestamp_ms and abs(status.batch_timestamp_ms / 1000 - time.time()) < 3600
    assert status.last_commit_time == pytest.approx((checkpoint / "commits" / "3").stat().st_mtime)
    assert status.conf["spark.sql.shuffle.partitions"] == "2"
    # Hadoop's local file system left .crc side files; they are not batches.
    assert (checkpoint / "offsets" / ".3.crc").exists()
    # The status survives a round trip through JSON (XCom).
    assert CheckpointStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status


def test_history_lists_batches_with_times(file_source_checkpoint):
    history = CheckpointHook(str(file_source_checkpoint["checkpoint"])).get_history(last=3)
    assert [b.batch_id for b in history.batches] == [1, 2, 3]
    assert all(b.committed and b.commit_time for b in history.batches)
    times = [b.batch_timestamp_ms for b in history.batches]
    assert times == sorted(times)
    assert history.seconds_since_last_commit() < 3600
    assert history.to_dict()["batches_per_minute"] is None or history.batches_per_minute() > 0


def test_kafka_checkpoint_matches_the_last_progress(spark, kafka_broker, kafka_topic, tmp_path):
    topic = kafka_topic(partitions=3)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 300, partitions=3)
    frame = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka_broker.bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 120)
        .load()
        .selectExpr("CAST(value AS STRING) AS value")
    )
    progress = _run_to_end(frame, tmp_path / "checkpoint", path=tmp_path / "table")

    status = CheckpointHook(str(tmp_path / "checkpoint")).get_status()

    (source,) = status.committed_sources
    assert source.kind == "kafka"
    assert source.kafka == _end_offset(progress)
    assert source.kafka_partitions() == {(topic, 0): 100, (topic, 1): 100, (topic, 2): 100}
    assert status.latest_committed_batch == 2  # 300 records at 120 per trigger
    # sources/0/0 starts with a NUL byte; the initial offsets are still read.
    assert (tmp_path / "checkpoint" / "sources" / "0" / "0").read_bytes()[:1] == b"\x00"
    assert status.initial_offsets["0"] == {topic: {"0": 0, "1": 0, "2": 0}}


def test_stateful_windowed_aggregation_with_watermark(spark, tmp_path):
    from pyspark.sql import functions

    write_json_files(tmp_path / "input", files=3, rows_per_file=40)
    frame = (
        spark.readStream.schema("id LONG, event_time TIMESTAMP")
        .option("maxFilesPerTrigger", 1)
        .json(str(tmp_path / "input"))
        .withWatermark("event_time", "30 seconds")
        .groupBy(functions.window("event_time", "1 minute"))
        .count()
    )
    progress = _run_to_end(frame, tmp_path / "checkpoint", path=tmp_path / "table")

    status = CheckpointHook(str(tmp_path / "checkpoint")).get_status()

    (operator,) = status.stateful_operators
    assert operator.operator_id == 0 and operator.operator_name == "stateStoreSave"
    assert operator.store_names == ["default"] and operator.num_partitions == 2
    assert operator.state_bytes > 0 and operator.state_files > 0
    assert status.next_watermark_ms and status.next_watermark_ms > 0
    watermark = progress["eventTime"]["watermark"]
    assert status.next_watermark_ms >= datetime.fromisoformat(watermark.replace("Z", "+00:00")).timestamp() * 1000


def test_offsets_v2_and_commits_v2(spark, tmp_path):
    from pyspark.sql import functions

    write_json_files(tmp_path / "input", files=2, rows_per_file=10)
    settings = {
        "spark.sql.streaming.offsetLog.formatVersion": "2",
        "spark.sql.streaming.stateStore.checkpointFormatVersion": "2",
        "spark.sql.streaming.stateStore.providerClass": (
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
        ),
    }
    previous = {k: spark.conf.get(k, None) for k in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        query = (
            spark.readStream.schema("id LONG, event_time TIMESTAMP")
            .option("maxFilesPerTrigger", 1)
            .json(str(tmp_path / "input"))
            .groupBy((functions.col("id") % 3).alias("bucket"))
            .count()
            .writeStream.format("memory")
            .queryName(f"v2_{tmp_path.name.replace('-', '_')}")
            .outputMode("complete")
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
    finally:
        for key, value in previous.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)

    assert (tmp_path / "checkpoint" / "offsets" / "1").read_text().startswith("v2\n")
    status = CheckpointHook(str(tmp_path / "checkpoint")).get_status()
    assert status.offsets_log_version == 2 and status.commits_log_version == 2
    (source,) = status.committed_sources
    assert source.source_id == "0" and source.kind == "file" and source.log_offset == 1
    assert status.stateful_operators and status.stateful_operators[0].state_files > 0


def test_delta_source(spark, tmp_path):
    table = tmp_path / "upstream"
    spark.range(10).write.format("delta").save(str(table))
    spark.range(10, 20).write.format("delta").mode("append").save(str(table))
    progress = _run_to_end(
        spark.readStream.format("delta").load(str(table)), tmp_path / "checkpoint", path=tmp_path / "downstream"
    )

    status = CheckpointHook(str(tmp_path / "checkpoint")).get_status()
    (source,) = status.committed_sources
    assert source.kind == "delta"
    end = _end_offset(progress)
    assert (source.reservoir_id, source.reservoir_version, source.delta_index) == (
        end["reservoirId"],
        end["reservoirVersion"],
        end["index"],
    )


def test_rate_source_running_query(spark, tmp_path):
    query = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 5)
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(processingTime="300 milliseconds")
        .start()
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (query.lastProgress is None or query.lastProgress["batchId"] < 2):
            time.sleep(0.2)
        status = CheckpointHook(str(tmp_path / "checkpoint")).get_status()
    finally:
        query.stop()
    assert status.latest_committed_batch >= 2
    (source,) = status.committed_sources
    assert source.kind == "rate" and isinstance(source.rate_value, int)
    assert isinstance(status.initial_offsets["0"], int)  # sources/0/0: the rate source's creation time


def test_compacted_file_source_log(spark, tmp_path):
    # File sources compact their log every 10 batches: sources/0/9.compact.
    write_json_files(tmp_path / "input", files=12, rows_per_file=2)
    frame = spark.readStream.schema("id LONG, event_time TIMESTAMP").option("maxFilesPerTrigger", 1)
    _run_to_end(frame.json(str(tmp_path / "input")), tmp_path / "checkpoint", "parquet", tmp_path / "out")
    hook = CheckpointHook(str(tmp_path / "checkpoint"))
    assert (tmp_path / "checkpoint" / "sources" / "0" / "9.compact").exists()
    assert sorted(hook._log("sources/0")) == list(range(12))
    status = hook.get_status()
    assert status.latest_committed_batch == 11 and status.committed_sources[0].log_offset == 11
