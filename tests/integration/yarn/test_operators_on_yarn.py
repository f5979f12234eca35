"""The provider's operators on a real ResourceManager and NodeManager, the driver in cluster deploy mode.

Four applications cover the YARN paths: a bounded Kafka ingest; one long-running query
that serves start, a worker lost mid-wait and its reattaching retry, the secrets check
and a graceful stop; one whose stop times out and is killed through the RM; one whose
driver fails on a bad column. test_example_dag_on_yarn.py runs the supervisor example DAG.
Delta and the Kafka connector reach the containers as ``local:`` jars (jvm_resolver=maven).
"""

from __future__ import annotations

import json
import time

import pytest

from airflow_spark_streaming.exceptions import StreamingRunIncompleteError
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator, StopStreamingQueryOperator
from tests.integration.spark.test_cluster_deploy import TaskStateStore
from tests.integration.yarn.conftest import TIMINGS
from tests.support.spark_defaults import use_spark_defaults
from tests.support.streaming_helpers import (
    kafka_to_delta_spec,
    long_running_kafka_spec,
    produce_keyed,
    read_delta,
    slow_batch_spec,
)

pytestmark = [pytest.mark.kafka]

SMALL = {"driver_memory": "768m", "executor_memory": "768m", "num_executors": 1, "executor_cores": 1}
# Delta reads its log in 50 tasks by default: minutes per batch on a loaded 2-core machine, 2 are enough here.
CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
}
SECRET = "s3a-SECRET-4e1b"


def _operator(spec, conn, **kwargs):
    # A bare path would mean the cluster's fs.defaultFS (HDFS) to the driver: name the shared local disk.
    spec = {**spec, "checkpoint_location": f"file://{spec['checkpoint_location']}",
            "sink": {**spec["sink"], "path": f"file://{spec['sink']['path']}"}}  # fmt: skip
    return SparkStreamingSubmitOperator(task_id=kwargs.pop("task_id", "start"), spec=spec, spark_conn_id=conn,
                                        conf={**CONF, **kwargs.pop("conf", {})}, submit_kwargs=SMALL,
                                        jvm_resolver="maven", poll_interval=1, startup_timeout=300, **kwargs)  # fmt: skip


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _final(yarn_cluster, app_id: str) -> tuple[str, str]:
    report = yarn_cluster.application(app_id)
    return report["state"], report["finalStatus"]


def test_bounded_kafka_ingest_in_cluster_mode(
    yarn_cluster, yarn_conn, kafka_broker, kafka_topic, tmp_path, monkeypatch
):
    spark_defaults = use_spark_defaults(tmp_path, monkeypatch)  # the cluster's spark-defaults.conf
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 400, partitions=2)
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, tmp_path / "table", tmp_path / "ckpt",
                               maxOffsetsPerTrigger=150)  # fmt: skip
    started = time.monotonic()
    result = _operator(spec, yarn_conn).execute({"task_state_store": TaskStateStore()})
    TIMINGS["bounded_ingest_s"] = time.monotonic() - started

    assert result["deployment"] == "yarn" and result["submission_id"].startswith("application_")
    assert (result["batches_committed"], result["rows_processed"]) == (3, 400)  # 150 + 150 + 100
    assert sorted(int(r["key"].removeprefix("key-")) for r in read_delta(tmp_path / "table")) == list(range(400))
    assert _final(yarn_cluster, result["submission_id"]) == ("FINISHED", "SUCCEEDED")
    assert not CheckpointHook(str(tmp_path / "ckpt")).get_status().has_uncommitted_batch
    # spark-defaults.conf reached the driver in its YARN container; the job's own settings won over it.
    spark_defaults.assert_reached_the_driver({"spark.sql.shuffle.partitions": "2"})


def test_long_running_start_reattach_secrets_and_graceful_stop(
    yarn_cluster, yarn_conn, kafka_broker, kafka_topic, tmp_path, mocker
):
    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    topic = kafka_topic(partitions=2)
    spec, table, checkpoint = long_running_kafka_spec(
        kafka_broker.bootstrap_servers, topic, tmp_path, lease_ttl_seconds=20
    )
    secret_conf = {"spark.hadoop.fs.s3a.secret.key": SECRET}
    store = TaskStateStore()

    # The first try's worker dies while it waits for the query: the submission is already in the store.
    mocker.patch.object(SparkStreamingSubmitOperator, "poll_until_complete", side_effect=RuntimeError("worker died"))
    with pytest.raises(RuntimeError, match="worker died"):
        _operator(spec, yarn_conn, conf=secret_conf).execute({"task_state_store": store})
    mocker.stopall()
    app_id = store.values["spark_streaming_submission"]["submission_id"]
    stopped = None
    try:
        popen = mocker.spy(spark_submit.subprocess, "Popen")
        started = time.monotonic()
        again = _operator(spec, yarn_conn, conf=secret_conf).execute({"task_state_store": store})
        TIMINGS["reattach_until_streaming_s"] = time.monotonic() - started
        assert popen.call_count == 0, "the retry ran spark-submit again"
        mocker.stopall()
        assert again["mode"] == "long_running" and again["reattached"]
        assert again["deployment"] == "yarn" and again["submission_id"] == app_id
        assert again["app_id"] == app_id  # the driver's own Spark application id is YARN's
        running = yarn_cluster.applications(states="RUNNING")
        assert [a["id"] for a in running] == [app_id]

        _assert_secret_absent(yarn_cluster, app_id)

        hook = CheckpointHook(str(checkpoint))
        _wait(lambda: hook.get_status().latest_committed_batch >= again["latest_committed_batch"] + 2, 420,
              "two more batches")  # fmt: skip
        stopped = StopStreamingQueryOperator(task_id="stop", checkpoint=str(checkpoint), timeout=180).execute({})
    finally:
        if stopped is None:
            yarn_cluster.kill(app_id)
    assert stopped["was_running"] and not stopped["killed"] and not stopped["has_uncommitted_batch"]
    assert stopped["deployment"] == "yarn" and stopped["submission_id"] == app_id
    _wait(lambda: _final(yarn_cluster, app_id)[0] == "FINISHED", 120, "the application to end")
    assert _final(yarn_cluster, app_id) == ("FINISHED", "SUCCEEDED")
    rows = read_delta(table)
    assert len(rows) == 50 * (stopped["latest_committed_batch"] + 1)  # every batch exactly once
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == len(rows)


def _assert_secret_absent(yarn_cluster, app_id: str) -> None:
    """A secret in conf went through the properties file: not in the RM's report nor in any launch script."""
    scripts = [s for s in yarn_cluster.nodemanager_dirs.rglob("launch_container.sh")
               if app_id.removeprefix("application_") in str(s)]  # fmt: skip
    assert len(scripts) >= 2, f"expected the AM's and an executor's launch scripts, found {scripts}"
    for script in scripts:
        assert SECRET not in script.read_text(errors="replace"), f"the secret is in {script}"
    report = json.dumps(yarn_cluster.rm_get(f"/apps/{app_id}")) + json.dumps(
        yarn_cluster.rm_get(f"/apps/{app_id}/appattempts")
    )
    assert SECRET not in report
    # It did reach the driver: the properties file travels in __spark_conf__.zip, private to the user.
    copies = [p for p in yarn_cluster.nodemanager_dirs.rglob("__spark_conf__.properties") if SECRET in p.read_text()]
    assert copies and all(p.stat().st_mode & 0o077 == 0 for p in copies)


def test_a_stop_that_times_out_kills_through_the_resource_manager(yarn_cluster, yarn_conn, tmp_path):
    checkpoint = tmp_path / "ckpt"
    spec = slow_batch_spec(tmp_path, lease_ttl_seconds=20)  # a batch takes far longer than the stop's timeout
    started = _operator(spec, yarn_conn).execute({})
    app_id = started["submission_id"]
    try:
        hook = CheckpointHook(str(checkpoint))
        _wait(lambda: hook.get_status().has_uncommitted_batch, 120, "a slow batch to start")
        stopped = StopStreamingQueryOperator(task_id="stop", checkpoint=str(checkpoint), timeout=3).execute({})
    finally:
        if _final(yarn_cluster, app_id)[0] not in ("FINISHED", "FAILED", "KILLED"):
            yarn_cluster.kill(app_id)
    assert stopped["killed"] and stopped["submission_id"] == app_id
    assert _final(yarn_cluster, app_id) == ("KILLED", "KILLED")  # the kill waits until the RM has killed it
    assert not (checkpoint / "_stop").exists()


def test_a_failing_driver_fails_the_task_with_yarn_diagnostics_and_its_cause(
    yarn_cluster, yarn_conn, kafka_broker, kafka_topic, tmp_path
):
    topic = kafka_topic(partitions=1)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 10, partitions=1)
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, tmp_path / "table", tmp_path / "ckpt")
    spec["transform_sql"] = "SELECT no_such_column FROM source"
    with pytest.raises(StreamingRunIncompleteError) as failed:
        _operator(spec, yarn_conn).execute({"task_state_store": TaskStateStore()})
    message = str(failed.value)
    assert "YARN reports FINISHED/FAILED" in message and "User application exited with status" in message
    assert "no_such_column" in message.split("driver's stdout", 1)[1]  # the Python cause, from the AM's stdout
