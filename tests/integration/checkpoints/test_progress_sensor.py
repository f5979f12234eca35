"""StreamingProgressSensor in poke mode, deferred through its trigger, and inside dag.test()."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_spark_streaming.exceptions import CheckpointNotFoundError, CorruptCheckpointFileError, StreamStaleError
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger
from devstack.process import wait_for


class _DagRun:
    def __init__(self, start_date):
        self.start_date = start_date


def _context(start_date=None):
    return {"dag_run": _DagRun(start_date or datetime.now(UTC))}


def test_poke_reaches_target_and_returns_the_status(file_source_checkpoint):
    checkpoint = str(file_source_checkpoint["checkpoint"])
    done = StreamingProgressSensor(task_id="p", checkpoint=checkpoint, target_batch_id=3).poke(_context())
    assert done.is_done and done.xcom_value["latest_committed_batch"] == 3
    assert done.xcom_value["query_id"] == file_source_checkpoint["query_id"]
    waiting = StreamingProgressSensor(task_id="p", checkpoint=checkpoint, target_batch_id="4").poke(_context())
    assert not waiting.is_done


def test_committed_after_dag_run_start(checkpoint_copy):
    commit = checkpoint_copy / "commits" / "3"
    sensor = StreamingProgressSensor(task_id="p", checkpoint=str(checkpoint_copy), committed_after="dag_run_start")
    started = datetime.now(UTC)
    os.utime(commit, (started.timestamp() - 60, started.timestamp() - 60))
    assert not sensor.poke(_context(started)).is_done
    os.utime(commit, (started.timestamp() + 1, started.timestamp() + 1))
    assert sensor.poke(_context(started)).is_done


def test_require_fully_committed(checkpoint_copy):
    sensor = StreamingProgressSensor(task_id="p", checkpoint=str(checkpoint_copy), require_fully_committed=True)
    assert sensor.poke(_context()).is_done
    (checkpoint_copy / "commits" / "3").unlink()
    assert not sensor.poke(_context()).is_done


def test_stale_stream_fails_fast(checkpoint_copy):
    hour_ago = time.time() - 3600
    os.utime(checkpoint_copy / "commits" / "3", (hour_ago, hour_ago))
    sensor = StreamingProgressSensor(
        task_id="p", checkpoint=str(checkpoint_copy), target_batch_id=10, max_staleness=timedelta(minutes=5)
    )
    with pytest.raises(StreamStaleError, match=r"last commit \(batch 3\) was 3\d\d\ds ago.*max_staleness 300s"):
        sensor.poke(_context())


def test_corrupt_checkpoint_fails_with_its_named_error(checkpoint_copy):
    (checkpoint_copy / "commits" / "3").write_text("v1\n{torn")
    sensor = StreamingProgressSensor(task_id="p", checkpoint=str(checkpoint_copy), target_batch_id=1)
    with pytest.raises(CorruptCheckpointFileError, match="commits/3"):
        sensor.poke(_context())


def test_missing_checkpoint_waits_or_fails(tmp_path):
    context = _context()
    missing = str(tmp_path / "not-started")
    assert not StreamingProgressSensor(task_id="p", checkpoint=missing).poke(context).is_done
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        StreamingProgressSensor(task_id="p", checkpoint=missing, wait_for_checkpoint=False).poke(context)


def test_deferred_wait_follows_a_running_query(spark, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 10).load()
        .writeStream.format("noop").option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="500 milliseconds").start()
    )  # fmt: skip
    try:
        wait_for(lambda: (checkpoint / "commits" / "0").exists(), timeout=60, what="the first commit", interval=0.2)
        now_committed = CheckpointHook(str(checkpoint)).get_status().latest_committed_batch
        target = now_committed + 3
        sensor = StreamingProgressSensor(
            task_id="p", checkpoint=str(checkpoint), target_batch_id=target, deferrable=True, poke_interval=0.2
        )
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute(_context())
        trigger = deferred.value.trigger
        assert isinstance(trigger, CheckpointProgressTrigger)
        assert deferred.value.method_name == "execute_complete"
        classpath, kwargs = trigger.serialize()
        revived = CheckpointProgressTrigger(**kwargs)
        assert classpath.endswith("triggers.checkpoint.CheckpointProgressTrigger")

        async def first_event():
            return await asyncio.wait_for(revived.run().__anext__(), timeout=60)

        event = asyncio.run(first_event())
    finally:
        query.stop()
    assert event.payload["state"] == "met" and event.payload["payload"]["latest_committed_batch"] >= target
    status = sensor.execute_complete(_context(), event.payload)
    assert status["latest_committed_batch"] >= target


def test_trigger_reports_a_stale_stream_as_one_event(checkpoint_copy):
    hour_ago = time.time() - 3600
    os.utime(checkpoint_copy / "commits" / "3", (hour_ago, hour_ago))
    trigger = CheckpointProgressTrigger(
        str(checkpoint_copy), {"target_batch_id": 9, "max_staleness_seconds": 60}, poll_interval=0.1
    )

    async def events():
        return [event async for event in trigger.run()]

    (event,) = asyncio.run(asyncio.wait_for(events(), timeout=30))
    assert event.payload["state"] == "stale"
    sensor = StreamingProgressSensor(task_id="p", checkpoint=str(checkpoint_copy), target_batch_id=9)
    with pytest.raises(StreamStaleError):
        sensor.execute_complete(_context(), event.payload)


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_sensor_in_dag_test_waits_for_a_running_query(airflow_db, spark, tmp_path, mode, caplog):
    from airflow.dag_processing.dagbag import DagBag

    checkpoint = tmp_path / "checkpoint"
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 10).load()
        .writeStream.format("noop").option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="2 seconds").start()
    )  # fmt: skip
    try:
        wait_for(lambda: (checkpoint / "commits" / "0").exists(), timeout=60, what="the first commit", interval=0.2)
        # Far enough ahead that the task's own first check (after its start-up) is not yet met.
        target = CheckpointHook(str(checkpoint)).get_status().latest_committed_batch + 10
        caplog.set_level(logging.INFO)
        dag = DagBag(dag_folder=str(Path(__file__).parents[2] / "dags")).dags[f"progress_sensor_{mode}"]
        run = dag.test(run_conf={"checkpoint": str(checkpoint), "target": target})
    finally:
        query.stop()
    assert run.state == "success"
    assert run.get_task_instance("report").xcom_pull(task_ids="report") >= target
    status = run.get_task_instance("wait_for_batch").xcom_pull(task_ids="wait_for_batch")
    assert status["query_id"] == str(query.id)
    # Only the deferrable sensor handed its wait to the trigger.
    assert ("running trigger in line" in caplog.text) == (mode == "deferred")
