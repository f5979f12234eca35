"""Cluster deploy mode on a real standalone Master and Worker: the driver runs on the Worker, not here.

The stream runner is a Python program, which a standalone Master refuses in
cluster mode; the hook starts it through Spark's own PythonRunner. Status and
kill go through the Master's REST server.
"""

from __future__ import annotations

import json
import time

import pytest

from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator, StopStreamingQueryOperator
from tests.support.spark_defaults import use_spark_defaults
from tests.support.streaming_helpers import (
    kafka_to_delta_spec,
    long_running_kafka_spec,
    produce_keyed,
    read_delta,
    slow_batch_spec,
)

pytestmark = [pytest.mark.cluster]

SMALL_DRIVER = {"driver_memory": "1g", "executor_memory": "1g", "total_executor_cores": 1}
CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}


class TaskStateStore:
    """The part of Airflow's task state store that ResumableJobMixin uses: get and set by key."""

    def __init__(self):
        self.values = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value, **_):
        self.values[key] = json.loads(json.dumps(value))  # what Airflow stores is JSON


@pytest.fixture
def cluster_conn(spark_cluster, monkeypatch):
    conn = {
        "conn_type": "spark",
        "host": spark_cluster.master_url,
        "extra": {"deploy-mode": "cluster", "rest-port": spark_cluster.rest_port},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_CLUSTER", json.dumps(conn))
    return "spark_cluster"


def _driver(spark_cluster, driver_id: str) -> dict:
    state = spark_cluster.master_state()
    for driver in state.get("activedrivers", []) + state.get("completeddrivers", []):
        if driver["id"] == driver_id:
            return driver
    raise AssertionError(f"the Master does not know {driver_id}")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.kafka
def test_bounded_kafka_to_delta_with_the_driver_on_the_worker(
    spark_cluster, cluster_conn, kafka_broker, kafka_topic, tmp_path, monkeypatch
):
    spark_defaults = use_spark_defaults(tmp_path, monkeypatch)  # the cluster's spark-defaults.conf
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 400, partitions=2)
    spec = kafka_to_delta_spec(
        kafka_broker.bootstrap_servers, topic, tmp_path / "table", tmp_path / "ckpt", maxOffsetsPerTrigger=150
    )
    store = TaskStateStore()
    result = SparkStreamingSubmitOperator(
        task_id="ingest", spec=spec, spark_conn_id=cluster_conn, conf=CONF, submit_kwargs=SMALL_DRIVER, poll_interval=1
    ).execute({"task_state_store": store})

    assert result["deployment"] == "standalone" and result["submission_id"].startswith("driver-")
    assert store.values["spark_streaming_submission"]["submission_id"] == result["submission_id"]
    assert result["batches_committed"] == 3 and result["rows_processed"] == 400  # 150 + 150 + 100
    rows = read_delta(tmp_path / "table")
    assert sorted(int(r["key"].removeprefix("key-")) for r in rows) == list(range(400))
    assert _driver(spark_cluster, result["submission_id"])["state"] == "FINISHED"
    # The driver read its spec from the checkpoint's staging folder and deleted it.
    assert not list((tmp_path / "ckpt" / "_staging").glob("spec-*.json"))
    # spark-defaults.conf reached the driver on the Worker; the job's own settings won over it.
    spark_defaults.assert_reached_the_driver({"spark.sql.shuffle.partitions": "2"})


@pytest.mark.kafka
def test_long_running_on_the_cluster_reattaches_on_retry_and_stops_gracefully(
    spark_cluster, cluster_conn, kafka_broker, kafka_topic, tmp_path, mocker
):
    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    topic = kafka_topic(partitions=2)
    spec, table, checkpoint = long_running_kafka_spec(
        kafka_broker.bootstrap_servers, topic, tmp_path, lease_ttl_seconds=15
    )

    def start_task():
        return SparkStreamingSubmitOperator(
            task_id="start",
            spec=spec,
            spark_conn_id=cluster_conn,
            conf=CONF,
            submit_kwargs=SMALL_DRIVER,
            poll_interval=1,
        )

    store = TaskStateStore()
    hook = CheckpointHook(str(checkpoint))
    stopped = None
    try:
        started = start_task().execute({"task_state_store": store})
        assert started["mode"] == "long_running" and not started["reattached"]
        assert started["deployment"] == "standalone" and started["app_id"].startswith("app-")
        assert _driver(spark_cluster, started["submission_id"])["state"] == "RUNNING"

        # A retry (a new operator instance, as in a new worker process) finds the driver in the task
        # state store, still RUNNING on the Master: it reattaches and submits nothing.
        popen = mocker.spy(spark_submit.subprocess, "Popen")
        again = start_task().execute({"task_state_store": store})
        assert again["reattached"] and again["submission_id"] == started["submission_id"]
        assert popen.call_count == 0
        mocker.stopall()

        _wait(
            lambda: hook.get_status().latest_committed_batch >= started["latest_committed_batch"] + 2,
            120,
            "the query to commit two more batches",
        )
        stopped = StopStreamingQueryOperator(task_id="stop", checkpoint=str(checkpoint), timeout=120).execute({})
    finally:
        if stopped is None and (record := RunnerControlHook(str(checkpoint)).get_submission()):
            from airflow_spark_streaming.hooks.submission import SparkSubmission, StreamingSubmitHook

            StreamingSubmitHook(spark_conn_id=cluster_conn).kill_driver(SparkSubmission.from_dict(record))

    assert stopped["was_running"] and not stopped["killed"] and not stopped["has_uncommitted_batch"]
    assert stopped["submission_id"] == started["submission_id"] and stopped["deployment"] == "standalone"
    _wait(lambda: _driver(spark_cluster, started["submission_id"])["state"] == "FINISHED", 60, "the driver to end")
    rows = read_delta(table)
    assert len(rows) == 50 * (stopped["latest_committed_batch"] + 1)  # every batch exactly once
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == len(rows)


def test_a_driver_that_does_not_stop_in_time_is_killed_through_the_master(spark_cluster, cluster_conn, tmp_path):
    checkpoint = tmp_path / "ckpt"
    spec = slow_batch_spec(tmp_path, lease_ttl_seconds=15)  # a batch takes far longer than the stop's timeout
    started = SparkStreamingSubmitOperator(
        task_id="start", spec=spec, spark_conn_id=cluster_conn, conf=CONF, submit_kwargs=SMALL_DRIVER, poll_interval=1
    ).execute({})
    hook = CheckpointHook(str(checkpoint))
    _wait(lambda: hook.get_status().has_uncommitted_batch, 60, "a slow batch to start")

    stopped = StopStreamingQueryOperator(task_id="stop", checkpoint=str(checkpoint), timeout=3).execute({})

    assert stopped["killed"] and stopped["submission_id"] == started["submission_id"]
    _wait(lambda: _driver(spark_cluster, started["submission_id"])["state"] == "KILLED", 60, "the Master to kill it")
    assert not (checkpoint / "_stop").exists()


def _driver_processes(driver_id: str) -> list[int]:
    """The driver's JVM on the Worker (its command line names its work folder) and the Python it runs."""
    from pathlib import Path

    jvms = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if driver_id in (proc / "cmdline").read_bytes().decode(errors="replace"):
                jvms.append(int(proc.name))
        except OSError:
            continue
    children = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) in jvms:
                children.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return jvms + children


@pytest.mark.kafka
def test_sigkilled_cluster_driver_then_a_new_run_leaves_every_record_exactly_once(
    spark_cluster, cluster_conn, kafka_broker, kafka_topic, tmp_path
):
    import os
    import signal

    from airflow_spark_streaming.exceptions import CheckpointInUseError

    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 1000, partitions=2)
    table, checkpoint = tmp_path / "table", tmp_path / "ckpt"
    bounded = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=100)
    bounded["lease_ttl_seconds"] = 8
    long_running = {**bounded, "trigger": {"processing_time": "1 second"}}

    def task(spec):
        return SparkStreamingSubmitOperator(
            task_id="ingest",
            spec=spec,
            spark_conn_id=cluster_conn,
            conf=CONF,
            submit_kwargs=SMALL_DRIVER,
            poll_interval=1,
        )

    started = task(long_running).execute({})
    hook = CheckpointHook(str(checkpoint))
    _wait(lambda: (hook.get_status().latest_committed_batch or 0) >= 2, 120, "three committed batches")
    processes = _driver_processes(started["submission_id"])
    assert processes, "the driver's processes were not found on the Worker"
    for pid in processes:
        os.kill(pid, signal.SIGKILL)  # a crash: no shutdown hook, no lease release
    _wait(lambda: _driver(spark_cluster, started["submission_id"])["state"] in ("FAILED", "ERROR"), 60, "the Master")

    assert hook.get_status().latest_committed_batch < 9  # killed mid-stream, with records left
    with pytest.raises(CheckpointInUseError):  # the dead driver's lease is still fresh
        task(bounded).execute({})
    _wait(lambda: RunnerControlHook(str(checkpoint)).get_lease() is None, 30, "the dead driver's lease to expire")

    resume = {**bounded, "source": {**bounded["source"], "options": {**bounded["source"]["options"]}}}
    resume["source"]["options"]["maxOffsetsPerTrigger"] = 1000  # the rest in one batch: a shorter test
    finished = task(resume).execute({})

    assert finished["deployment"] == "standalone" and not hook.get_status().has_uncommitted_batch
    rows = read_delta(table)
    assert sorted(int(r["key"].removeprefix("key-")) for r in rows) == list(range(1000))  # each exactly once
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == 1000
