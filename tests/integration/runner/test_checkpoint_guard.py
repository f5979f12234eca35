"""The checkpoint lease: a live query's checkpoint is refused to a second one; a killed driver's lease expires,
and the next run completes the stream exactly once.

The next run goes to the shared Spark Connect server: its subject is the checkpoint the killed driver left, not
its own submission (the same resume through spark-submit, on a standalone cluster, is in
tests/integration/spark/test_cluster_deploy.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from airflow_spark_streaming.exceptions import CheckpointInUseError
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.runner.jobs import job_path
from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies
from devstack.process import wait_for
from tests.support.streaming_helpers import kafka_to_delta_spec, produce_keyed, read_delta

pytestmark = pytest.mark.kafka


def _spark_submit(spec: dict, tmp_path) -> subprocess.Popen:
    spec_file = tmp_path / "long-running-spec.json"
    spec_file.write_text(json.dumps(spec))
    deps = resolve_jvm_dependencies(delta=True, kafka=True, resolver="packages")
    conf = [arg for key, value in deps.conf.items() for arg in ("--conf", f"{key}={value}")]
    command = [
        os.path.join(os.environ["SPARK_HOME"], "bin", "spark-submit"), "--master", "local[2]",
        "--packages", ",".join(deps.packages), *conf, "--conf", "spark.ui.enabled=false",
        job_path("stream_runner"), "--spec-file", str(spec_file),
    ]  # fmt: skip
    log = open(tmp_path / "long-running.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_lease_guards_a_live_checkpoint_and_expires_after_sigkill(
    kafka_broker, kafka_topic, spark_connect_conn, tmp_path, monkeypatch, mocker
):
    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    topic = kafka_topic(partitions=4)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 2000, partitions=4)
    table, checkpoint = tmp_path / "table", tmp_path / "ckpt"
    bounded = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=100)
    bounded["lease_ttl_seconds"] = 6
    long_running = {**bounded, "trigger": {"processing_time": "1 second"}}
    driver = _spark_submit(long_running, tmp_path)
    try:
        deadline = time.monotonic() + 180
        hook = CheckpointHook(str(checkpoint))
        while time.monotonic() < deadline and not (checkpoint / "commits" / "2").exists():
            assert driver.poll() is None, (tmp_path / "long-running.log").read_text()[-3000:]
            time.sleep(0.5)
        assert (checkpoint / "commits" / "2").exists(), "no third commit within 180 s"
        lease = RunnerControlHook(str(checkpoint)).get_lease()
        assert lease is not None and lease.ttl_seconds == 6 and lease.app_id.startswith("local-")

        popen = mocker.spy(spark_submit.subprocess, "Popen")
        with pytest.raises(CheckpointInUseError, match=r"in use by Spark application local-.*Stop that query first"):
            SparkStreamingSubmitOperator(task_id="second", spec=bounded).execute({})
        assert popen.call_count == 0  # refused before anything was submitted

        # The driver dies mid-stream, without any chance to clean up.
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert RunnerControlHook(str(checkpoint)).get_lease() is not None  # its last heartbeat is still fresh
    rows_before = len(read_delta(table))
    assert 0 < rows_before < 2000
    # The lease must lapse once its 6 s time-to-live has passed since the last heartbeat.
    wait_for(lambda: RunnerControlHook(str(checkpoint)).get_lease() is None, timeout=30,
             what="the killed driver's lease to expire", interval=0.2)  # fmt: skip

    # Bigger batches for the rest: the guarantee does not depend on the batch size, and it saves ~15 batches.
    resume = json.loads(json.dumps(bounded))
    resume["source"]["options"]["maxOffsetsPerTrigger"] = 1000
    resumed = SparkStreamingSubmitOperator(task_id="resume", spec=resume, spark_conn_id=spark_connect_conn())
    result = resumed.execute({})

    rows = read_delta(table)
    assert len(rows) == 2000  # every record exactly once, despite the SIGKILL
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == 2000
    assert result["rows_processed"] + rows_before >= 2000 and not hook.get_status().has_uncommitted_batch
    assert result["spark_transport"] == "connect"
    assert RunnerControlHook(str(checkpoint)).get_lease() is None  # the bounded run released its lease
