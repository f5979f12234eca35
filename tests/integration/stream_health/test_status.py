"""Stream status from real checkpoints, a real broker and a real driver: OK when idle, STALLED, STOPPED, REWOUND."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from airflow_spark_streaming.checks.progress import ProgressCheck
from airflow_spark_streaming.conditions.progress import ProgressCriteria
from airflow_spark_streaming.conditions.stream_health import OK, REWOUND, STALLED, STOPPED
from airflow_spark_streaming.exceptions import StreamUnhealthyError
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.stream_health import get_stream_health, read_batch_window
from airflow_spark_streaming.runner.protocol import LEASE_DIR
from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
from tests.support.runner_drivers import kill_leftover_drivers
from tests.support.streaming_helpers import kafka_to_delta_spec, produce_keyed, run_available_now

pytestmark = pytest.mark.kafka


def test_checkpoint_replaced_by_an_older_copy_is_rewound(spark, kafka_broker, kafka_topic, kafka_conn, tmp_path):
    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic(partitions=2)
    checkpoint, older = tmp_path / "ckpt", tmp_path / "older-copy"
    produce_keyed(bootstrap, topic, 100, partitions=2)
    run_available_now(spark, bootstrap, checkpoint, max_offsets=50, subscribe=topic)  # batches 0, 1
    shutil.copytree(checkpoint, older)
    produce_keyed(bootstrap, topic, 100, partitions=2)
    run_available_now(spark, bootstrap, checkpoint, max_offsets=50, subscribe=topic)  # batches 2, 3

    seen = get_stream_health(str(checkpoint), kafka_config_id=kafka_conn())
    assert seen.status != REWOUND and seen.last_committed_batch == 3
    assert seen.mark.offsets == {f"{topic}:0": 100, f"{topic}:1": 100}
    assert (seen.window.batches, seen.window.committed, seen.window.complete) == (4, 4, 0.4)

    shutil.rmtree(checkpoint)
    shutil.copytree(older, checkpoint)
    replaced = get_stream_health(str(checkpoint), kafka_config_id=kafka_conn(), previous=seen.mark)
    assert replaced.status == REWOUND, replaced.reason
    assert "older copy" in replaced.reason and replaced.last_committed_batch == 1
    assert {p.status for p in replaced.partitions} == {REWOUND}
    # Without the previous mark the older copy looks like a query that is just behind: the caller must keep it.
    assert get_stream_health(str(checkpoint), kafka_config_id=kafka_conn()).status != REWOUND


def test_recreated_topic_below_the_checkpoint_is_rewound(spark, kafka_broker, kafka_topic, kafka_conn, tmp_path):
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic(partitions=1)
    produce_keyed(bootstrap, topic, 40, partitions=1)
    run_available_now(spark, bootstrap, tmp_path / "ckpt", max_offsets=1000, subscribe=topic)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 60
    while True:  # the deletion completes asynchronously
        try:
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    produce_keyed(bootstrap, topic, 5, partitions=1)

    health = get_stream_health(str(tmp_path / "ckpt"), kafka_config_id=kafka_conn())
    assert health.status == REWOUND and "beyond the broker's latest 5" in health.reason


def _driver_pids(checkpoint: Path) -> list[int]:
    """The runner's Python driver (it writes the lease) and its parent JVM."""
    newest = max((checkpoint / LEASE_DIR).glob("[0-9]*"), key=lambda path: int(path.name))
    lease = json.loads(newest.read_text())
    pid = int(lease["pid"])
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return [pid, parent]


def _wait_for_status(checkpoint: Path, conn: str, wanted: str, seconds: float):
    deadline, seen = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        health = get_stream_health(str(checkpoint), kafka_config_id=conn)
        seen.append(health.status)
        if health.status == wanted:
            return health
        time.sleep(0.5)
    raise AssertionError(f"never {wanted} within {seconds}s; saw {seen[-10:]}: {health.reason}")


def test_live_idle_query_is_ok_paused_driver_stalls_then_stops(
    kafka_broker, kafka_topic, kafka_conn, tmp_path, monkeypatch
):
    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "cache"))
    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic(partitions=2)
    produce_keyed(bootstrap, topic, 60, partitions=2)
    checkpoint = tmp_path / "ckpt"
    spec = kafka_to_delta_spec(bootstrap, topic, tmp_path / "table", checkpoint, maxOffsetsPerTrigger=20)
    spec["trigger"] = {"processing_time": "1 second"}
    spec["lease_ttl_seconds"] = 60  # longer than the allowance (STALLED shows first); STOPPED waits for it to lapse
    conn = kafka_conn()
    pids: list[int] = []
    try:
        SparkStreamingSubmitOperator(task_id="start", spec=spec, conf={"spark.ui.enabled": "false"}).execute({})
        hook = CheckpointHook(str(checkpoint))
        deadline = time.monotonic() + 300  # a loaded machine starts a driver slowly
        while time.monotonic() < deadline and (hook.get_status().latest_committed_batch or -1) < 2:
            time.sleep(0.5)
        assert hook.get_status().latest_committed_batch >= 2  # 60 records at 20 per batch

        # Caught up, no new data, no batches: idle is healthy while the lease lives.
        idle = _wait_for_status(checkpoint, conn, OK, 60)
        assert idle.lease_alive and sum(p.lag for p in idle.partitions) == 0
        # Progress events give lag samples. Spark's listener bus writes a batch's event just after its commit.
        deadline = time.monotonic() + 15
        while not all(b.latest_offsets for b in read_batch_window(hook)[1] if b.committed):
            assert time.monotonic() < deadline, f"committed batches without a progress event: {read_batch_window(hook)}"
            time.sleep(0.5)
        time.sleep(idle.allowance_seconds + 1)  # idle for longer than the cadence allows: still OK
        still = get_stream_health(str(checkpoint), kafka_config_id=conn)
        assert still.status == OK, still.reason
        # The sensors agree: the status wait is over, and a wait for more batches counts idle as progress.
        assert StreamHealthSensor(checkpoint=str(checkpoint), task_id="h", kafka_config_id=conn).poke({}).is_done
        last = hook.get_status().latest_committed_batch
        more = ProgressCriteria(target_batch_id=last + 3)
        assert ProgressCheck(checkpoint=str(checkpoint), criteria=more).evaluate().state == "met"
        more.idle_is_progress = False
        assert ProgressCheck(checkpoint=str(checkpoint), criteria=more).evaluate().state == "waiting"

        pids = _driver_pids(checkpoint)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        produce_keyed(bootstrap, topic, 60, partitions=2)
        # STALLED: lag, a live lease, and no commit for the allowance since the new records arrived.
        # The lease must outlive that: it was renewed at most a third of its TTL before the SIGSTOP.
        assert idle.allowance_seconds < 35, f"batches {idle.cadence_seconds:.0f}s apart: machine too loaded"
        stalled = _wait_for_status(checkpoint, conn, STALLED, idle.allowance_seconds + 15)
        assert stalled.lease_alive and {p.status for p in stalled.partitions} == {STALLED}
        assert "no commit for" in stalled.reason
        with pytest.raises(StreamUnhealthyError, match="STALLED|STOPPED"):
            StreamHealthSensor(checkpoint=str(checkpoint), task_id="h", kafka_config_id=conn).poke({})

        stopped = _wait_for_status(checkpoint, conn, STOPPED, 90)  # the lease expires: nobody renews it
        assert stopped.lease_alive is False and "no live lease" in stopped.reason
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill_leftover_drivers(str(tmp_path))
