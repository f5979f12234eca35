"""SparkStreamingSubmitOperator with a ``spark_connect`` connection: the bounded run on the shared Connect server.

No spark-submit: the query is the runner's own, started in a Connect session; the lease, the
progress events and the task log's batch lines come from the Airflow side (``hooks/stream_connect.py``).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import (
    CheckpointInUseError,
    SparkConnectUnreachableError,
)
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from tests.support.streaming_helpers import kafka_to_delta_spec, produce_keyed, read_delta

pytestmark = pytest.mark.kafka


def _operator(spec: dict, conn_id: str, **kwargs) -> SparkStreamingSubmitOperator:
    return SparkStreamingSubmitOperator(task_id="ingest", spec=spec, spark_conn_id=conn_id, poll_interval=0.5,
                                        **kwargs)  # fmt: skip


def test_bounded_kafka_ingest_on_the_connect_server_lands_every_record_once(
    kafka_broker, kafka_topic, spark_connect_conn, tmp_path, capfd
):
    conn_id = spark_connect_conn()
    topic = kafka_topic(partitions=3)
    per_partition = produce_keyed(kafka_broker.bootstrap_servers, topic, 900, partitions=3)
    table, checkpoint = tmp_path / "table", tmp_path / "checkpoint"
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=300)

    result = _operator(spec, conn_id).execute({})
    log = capfd.readouterr().out

    assert result["spark_transport"] == "connect" and result["mode"] == "bounded"
    assert (result["batches_committed"], result["first_batch"], result["last_batch"]) == (3, 0, 2)
    assert result["rows_processed"] == 900 and result["progress_events"] == 3
    rows = read_delta(table)
    assert len(rows) == 900
    for partition, count in per_partition.items():  # offsets 0..n-1 of each partition exactly once
        assert sorted(r["kafka_offset"] for r in rows if r["kafka_partition"] == partition) == list(range(count))
    status = CheckpointHook(str(checkpoint)).get_status(include_state=False)
    assert status.latest_committed_batch == 2 and not status.has_uncommitted_batch
    assert result["committed_sources"] == [{topic: {str(p): c for p, c in per_partition.items()}}]
    assert result["query_id"] == status.query_id
    # The task log has one line per committed batch, read from the progress events this run wrote.
    lines = [line.split("] ", 1)[-1] for line in log.splitlines() if "] batch " in line]
    assert [line.split(":")[0] for line in lines] == ["batch 0", "batch 1", "batch 2"], log[-2000:]
    assert "300 rows" in lines[0] and "of 900 records" in lines[0]
    control = RunnerControlHook(str(checkpoint))
    assert control.get_lease() is None  # released at the end
    assert [e["batchId"] for e in control.get_progress()] == [0, 1, 2]

    # The next run reads only what is new: the checkpoint is the one spark-submit runs use.
    more = produce_keyed(kafka_broker.bootstrap_servers, topic, 60, partitions=3)
    again = _operator(spec, conn_id).execute({})
    assert (again["batches_committed"], again["rows_processed"]) == (1, 60)
    assert len(read_delta(table)) == 960
    assert again["committed_sources"] == [{topic: {str(p): per_partition[p] + more[p] for p in per_partition}}]


def test_a_live_lease_refuses_a_second_run_and_a_stop_marker_ends_a_run_cleanly(
    kafka_broker, kafka_topic, spark_connect_conn, tmp_path
):
    conn_id = spark_connect_conn()
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 2000, partitions=2)
    table, checkpoint = tmp_path / "table", tmp_path / "checkpoint"
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=20)
    outcome: dict = {}
    first = threading.Thread(target=lambda: outcome.update(_operator(spec, conn_id).execute({})))
    first.start()
    control = RunnerControlHook(str(checkpoint))
    deadline = time.monotonic() + 120
    while not control.get_progress() and time.monotonic() < deadline:  # the first batch committed
        time.sleep(0.2)
    assert control.get_lease() is not None and control.get_lease().pid is None  # the lease names no process
    refused_at = time.monotonic()
    with pytest.raises(CheckpointInUseError, match="in use by spark-connect"):
        _operator(spec, conn_id).execute({})
    assert time.monotonic() - refused_at < 15  # refused from the live lease at once, not after waiting it out
    control.request_stop()
    first.join(180)
    assert not first.is_alive()
    assert outcome["stopped"] == "marker"
    # Stopped after a committed batch: nothing planned is left uncommitted, the rows match the commits.
    status = CheckpointHook(str(checkpoint)).get_status(include_state=False)
    assert not status.has_uncommitted_batch
    assert 0 < len(read_delta(table)) == 20 * (status.latest_committed_batch + 1) < 2000
    assert not (checkpoint / "_stop").exists() and control.get_lease() is None


def test_a_wrong_server_address_fails_named_and_bounded(kafka_broker, kafka_topic, monkeypatch, tmp_path):
    from devstack.process import free_port

    monkeypatch.setenv("AIRFLOW_CONN_CONNECT_NOWHERE",
                       json.dumps({"conn_type": "spark_connect", "host": "127.0.0.1", "port": free_port()}))  # fmt: skip
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, kafka_topic(), tmp_path / "t", tmp_path / "c")
    started = time.monotonic()
    with pytest.raises(SparkConnectUnreachableError, match="did not answer within 10s"):
        _operator(spec, "connect_nowhere").execute({})
    assert time.monotonic() - started < 20
    assert not (tmp_path / "c" / "_leases").exists()


def test_a_server_stopped_mid_run_ends_named_in_bounded_time(kafka_broker, kafka_topic, tmp_path, monkeypatch):
    from devstack import spark_connect

    server = spark_connect.start(tmp_path / "server", port=0)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_CONNECT_DOOMED",
                           json.dumps({"conn_type": "spark_connect", "host": "127.0.0.1", "port": server.port}))  # fmt: skip
        topic = kafka_topic(partitions=2)
        produce_keyed(kafka_broker.bootstrap_servers, topic, 4000, partitions=2)
        checkpoint = tmp_path / "checkpoint"
        spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, tmp_path / "table", checkpoint,
                                   maxOffsetsPerTrigger=10)  # fmt: skip
        outcome: dict = {}

        def run():
            try:
                _operator(spec, "connect_doomed").execute({})
            except Exception as err:  # noqa: BLE001 - the test asserts what it was
                outcome["error"], outcome["at"] = err, time.monotonic()

        runner = threading.Thread(target=run)
        runner.start()
        control = RunnerControlHook(str(checkpoint))
        deadline = time.monotonic() + 120
        while not control.get_progress() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert control.get_progress(), "the run never committed a batch"
        killed = time.monotonic()
        spark_connect.stop(Path(server.home))
        runner.join(120)
        assert not runner.is_alive()
    finally:
        spark_connect.stop(Path(server.home))
    assert isinstance(outcome.get("error"), SparkConnectUnreachableError), outcome
    assert outcome["at"] - killed < 60
    assert control.get_lease() is None  # released, so a retry on a live server may start at once
