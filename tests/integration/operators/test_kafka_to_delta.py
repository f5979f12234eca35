"""The foundation's end-to-end check: real Kafka → real spark-submit → real Delta table."""

from __future__ import annotations

import json

import pytest

from tests.support.streaming_helpers import kafka_to_delta_spec, produce_keyed, read_delta, submit_stream_runner

pytestmark = pytest.mark.kafka


@pytest.fixture
def spark_local_conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_LOCAL", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    return "spark_local"


def test_available_now_ingest_writes_every_record_exactly_once(
    kafka_broker, kafka_topic, jvm_dependencies, spark_local_conn, spark_connect_conn, tmp_path
):
    topic = kafka_topic(partitions=4)
    per_partition = produce_keyed(kafka_broker.bootstrap_servers, topic, 1000, partitions=4)
    table, checkpoint = tmp_path / "table", tmp_path / "checkpoint"
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=300)

    submit_stream_runner(spec, jvm_dependencies, spark_local_conn, tmp_path)

    rows = read_delta(table)
    assert len(rows) == 1000
    assert {(r["key"], r["value"]) for r in rows} == {(f"key-{i}", f"value-{i}") for i in range(1000)}
    # Each partition's offsets 0..n-1 arrived exactly once.
    for partition, count in per_partition.items():
        offsets = sorted(r["kafka_offset"] for r in rows if r["kafka_partition"] == partition)
        assert offsets == list(range(count))
    # maxOffsetsPerTrigger=300 splits the 1,000-record backlog into 4 micro-batches.
    assert sorted(p.name for p in (checkpoint / "commits").iterdir() if not p.name.startswith(".")) == [
        "0", "1", "2", "3"
    ]  # fmt: skip

    # A second bounded run with nothing new appends nothing: the checkpoint remembers. That run's subject is the
    # checkpoint, not its submission: it goes to the shared Spark Connect server (one spark-submit less).
    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

    again = SparkStreamingSubmitOperator(task_id="again", spec=spec, spark_conn_id=spark_connect_conn()).execute({})
    assert again["spark_transport"] == "connect"
    assert (again["batches_committed"], again["rows_processed"]) == (0, 0)
    assert len(read_delta(table)) == 1000
