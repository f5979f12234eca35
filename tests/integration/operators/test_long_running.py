"""Long-running mode: start a detached query, see it progress, reattach on retry, stop it gracefully."""

from __future__ import annotations

import json
import time

import pytest

from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator, StopStreamingQueryOperator
from tests.support.runner_drivers import kill_leftover_drivers
from tests.support.spark_defaults import use_spark_defaults
from tests.support.streaming_helpers import long_running_kafka_spec, read_delta

pytestmark = pytest.mark.kafka


def test_start_reattach_and_graceful_stop(kafka_broker, kafka_topic, tmp_path, monkeypatch, mocker):
    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "cache"))
    spark_defaults = use_spark_defaults(tmp_path, monkeypatch)  # the cluster's spark-defaults.conf
    topic = kafka_topic(partitions=2)
    spec, table, checkpoint = long_running_kafka_spec(
        kafka_broker.bootstrap_servers, topic, tmp_path, lease_ttl_seconds=10
    )
    start = SparkStreamingSubmitOperator(task_id="start", spec=spec, conf={"spark.ui.enabled": "false"})
    hook = CheckpointHook(str(checkpoint))
    try:
        started = start.execute({})
        assert started["mode"] == "long_running" and not started["reattached"]
        assert started["app_id"].startswith("local-") and started["latest_committed_batch"] >= 0
        assert not list((tmp_path / "cache" / "drivers").glob("*/spec.json"))  # the runner deleted its spec file

        # A retry while the query runs reattaches: nothing is submitted again.
        popen = mocker.spy(spark_submit.subprocess, "Popen")
        again = start.execute({})
        assert again["reattached"] and again["app_id"] == started["app_id"] and popen.call_count == 0
        mocker.stopall()

        # It keeps making progress on its own.
        deadline = time.monotonic() + 90
        while (
            time.monotonic() < deadline
            and hook.get_status().latest_committed_batch < started["latest_committed_batch"] + 2
        ):
            time.sleep(1)
        assert hook.get_status().latest_committed_batch >= started["latest_committed_batch"] + 2
    finally:
        stopped = StopStreamingQueryOperator(task_id="stop", checkpoint=str(checkpoint), timeout=120).execute({})
        kill_leftover_drivers(str(tmp_path))

    assert stopped["was_running"] and not stopped["killed"]
    assert not stopped["has_uncommitted_batch"]  # stopped between batches
    assert RunnerControlHook(str(checkpoint)).get_lease() is None and not (checkpoint / "_stop").exists()
    committed = stopped["latest_committed_batch"]
    rows = read_delta(table)
    assert len(rows) == 50 * (committed + 1)  # maxOffsetsPerTrigger=50 per batch, every batch exactly once
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == len(rows)
    again = StopStreamingQueryOperator(task_id="stop", checkpoint=str(checkpoint)).execute({})
    assert not again["was_running"]
    spark_defaults.assert_reached_the_driver()  # spark-defaults.conf reached the detached driver
