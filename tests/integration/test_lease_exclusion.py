"""The checkpoint lease against real Spark: simultaneous takers, two spark-submits at once, a paused driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from airflow_spark_streaming import lease as L
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.jobs import job_path
from airflow_spark_streaming.jvm import resolve_jvm_dependencies
from tests.integration.streaming_helpers import kafka_to_delta_spec, produce_keyed, read_delta


def _wait_for(condition, timeout: float, what: str, *drivers) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        for driver in drivers:
            assert driver.poll() is None, f"driver ended early while waiting for {what}:\n{_log(driver)[-3000:]}"
        time.sleep(0.2)


def _log(driver) -> str:
    return open(driver.log_path, encoding="utf-8", errors="replace").read()


def _spark_submit(spec: dict, tmp_path, name: str) -> subprocess.Popen:
    spec_file = tmp_path / f"{name}-spec.json"
    spec_file.write_text(json.dumps(spec))
    deps = resolve_jvm_dependencies(delta=True, kafka=True, resolver="packages")
    conf = [arg for key, value in deps.conf.items() for arg in ("--conf", f"{key}={value}")]
    command = [
        os.path.join(os.environ["SPARK_HOME"], "bin", "spark-submit"), "--master", "local[1]",
        "--packages", ",".join(deps.packages), *conf, "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.shuffle.partitions=1", "--conf", "spark.databricks.delta.snapshotPartitions=1", job_path("stream_runner"), "--spec-file", str(spec_file),
    ]  # fmt: skip
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    driver.log_path = log_path
    return driver


def _kill(*drivers) -> None:
    for driver in drivers:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGCONT)
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(30)


def test_twenty_simultaneous_takers_through_the_runners_store(spark, tmp_path):
    """The store the runner opens through Spark's Hadoop configuration, raced by two takers 20 times."""
    for trial in range(20):
        checkpoint = str(tmp_path / f"ckpt-{trial}")
        store = L.open_store(spark, checkpoint)
        barrier, outcomes = threading.Barrier(2), []

        def take(store=store, barrier=barrier, outcomes=outcomes):
            runner = L.RunnerLease(store, ttl_ms=10_000)
            barrier.wait()
            try:
                outcomes.append(runner.acquire().generation)
            except L.CheckpointInUse:
                outcomes.append(None)

        threads = [threading.Thread(target=take) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes, key=str) == [1, None], f"trial {trial}: {outcomes}"


def test_the_hadoop_store_through_py4j(spark, tmp_path):
    """HadoopLeaseStore's calls work against a real Hadoop FileSystem (sequentially: on file: it is not atomic)."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(str(tmp_path))
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    store = L.HadoopLeaseStore(jvm, fs, fs.makeQualified(root))
    assert store.list_names(L.LEASE_DIR) == [] and store.read(L.generation_name(1), 100) is None
    runner = L.RunnerLease(store, ttl_ms=2_000, identity={"app_id": spark.sparkContext.applicationId})
    assert runner.acquire().generation == 1
    assert not store.create_exclusive(L.generation_name(1), b"{}")  # FileAlreadyExistsException: taken
    with pytest.raises(L.CheckpointInUse, match=spark.sparkContext.applicationId):
        L.RunnerLease(store, ttl_ms=2_000).acquire()
    data, written_ms = store.read(L.generation_name(1), 10)
    assert len(data) == 11 and abs(written_ms - time.time() * 1000) < 60_000  # capped read, store mtime
    runner.renew_once()
    runner.release()
    assert L.read_lease_state(store).reason == "released"
    assert L.RunnerLease(store, ttl_ms=2_000).acquire().generation == 2
    assert L.generations(store.list_names(L.LEASE_DIR)) == [2]


def test_the_conditional_create_path_s3a_takes(spark, tmp_path, capsys):
    """The builder calls S3A gets (createFile, overwrite(false), the conditional option) resolve through py4j;
    a store without the capability is reported, and an existing file still refuses the create."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(str(tmp_path))
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    store = L.HadoopLeaseStore(jvm, fs, fs.makeQualified(root))
    store.scheme = "s3a"
    assert store.create_exclusive(L.generation_name(1), b"{}")
    assert "offers no conditional create" in capsys.readouterr().out
    assert not store.create_exclusive(L.generation_name(1), b"{}")


@pytest.mark.kafka
def test_two_spark_submits_at_the_same_moment_exactly_one_runs(kafka_broker, kafka_topic, tmp_path):
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 200, partitions=2)
    table, checkpoint = tmp_path / "table", tmp_path / "ckpt"
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=100)
    spec.update(trigger={"processing_time": "1 second"}, lease_ttl_seconds=10)
    first, second = _spark_submit(spec, tmp_path, "first"), _spark_submit(spec, tmp_path, "second")
    try:
        _wait_for(lambda: first.poll() is not None or second.poll() is not None, 600, "one driver to give way")
        loser, winner = (first, second) if first.poll() is not None else (second, first)
        assert loser.wait(30) == 3, _log(loser)[-3000:]
        assert "refusing to start: the checkpoint is in use by Spark application" in _log(loser)
        _wait_for(lambda: (checkpoint / "commits" / "1").exists(), 600, "both batches", winner)
        RunnerControlHook(str(checkpoint)).request_stop()
        assert winner.wait(300) == 0, _log(winner)[-3000:]
    finally:
        _kill(first, second)
    rows = read_delta(table)
    assert len(rows) == 200 and len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == 200
    assert RunnerControlHook(str(checkpoint)).get_lease() is None


@pytest.mark.kafka
def test_a_driver_paused_past_its_ttl_stops_itself_and_every_record_lands_once(kafka_broker, kafka_topic, tmp_path):
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 300, partitions=2)
    table, checkpoint = tmp_path / "table", tmp_path / "ckpt"
    bounded = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=100)
    bounded["lease_ttl_seconds"] = 8
    hook = RunnerControlHook(str(checkpoint))
    paused = _spark_submit({**bounded, "trigger": {"processing_time": "1 second"}}, tmp_path, "paused")
    taker = None
    try:
        _wait_for(lambda: (checkpoint / "commits" / "0").exists(), 600, "a committed batch", paused)
        os.killpg(paused.pid, signal.SIGSTOP)  # the whole driver: JVM and Python, heartbeat included
        _wait_for(lambda: hook.get_lease() is None, 60, "the paused driver's lease to go stale")

        taker = _spark_submit(bounded, tmp_path, "taker")  # takes the stale lease over, runs to the end
        assert taker.wait(900) == 0, _log(taker)[-3000:]

        os.killpg(paused.pid, signal.SIGCONT)
        assert paused.wait(300) == 4, _log(paused)[-3000:]
        assert "lost the checkpoint lease" in _log(paused)
    finally:
        _kill(paused, *(d for d in (taker,) if d))
    rows = read_delta(table)
    assert len(rows) == 300  # every record exactly once: the resumed driver wrote nothing twice
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == 300
    state = L.read_lease_state(L.LocalLeaseStore(str(checkpoint)))
    assert state.reason == "released" and state.generation == 2  # the taker's generation, untouched
