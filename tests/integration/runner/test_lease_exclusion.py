"""The checkpoint lease against real Spark: simultaneous takers, two spark-submits at once, a paused driver."""

from __future__ import annotations

import os
import signal
import time

import pytest

from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.runner import lease as L
from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies
from tests.support.lease_race import race_two_takers
from tests.support.runner_drivers import driver_log, kill_drivers, spawn_stream_runner, wait_while_running
from tests.support.streaming_helpers import kafka_to_delta_spec, produce_keyed, read_delta


def _spark_submit(spec: dict, tmp_path, name: str):
    deps = resolve_jvm_dependencies(delta=True, kafka=True, resolver="packages")
    conf = [arg for key, value in deps.conf.items() for arg in ("--conf", f"{key}={value}")]
    return spawn_stream_runner(
        spec, tmp_path, name, "--master", "local[1]", "--packages", ",".join(deps.packages), *conf,
        "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=1",
        "--conf", "spark.databricks.delta.snapshotPartitions=1",
    )  # fmt: skip


def test_twenty_simultaneous_takers_through_the_runners_store(spark, tmp_path):
    """The store the runner opens through Spark's Hadoop configuration, raced by two takers 20 times."""
    for trial in range(20):
        checkpoint = str(tmp_path / f"ckpt-{trial}")
        store = L.open_store(spark, checkpoint)
        outcomes = race_two_takers(store)
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


def test_without_conditional_create_the_s3a_path_refuses_unless_best_effort(spark, tmp_path, capsys):
    """The S3A calls through py4j (hasPathCapability, createFile().must()) against a file system without the
    capability (the local one, posing as s3a): refused by name, nothing written; best_effort says so and takes it."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(str(tmp_path))
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    store = L.HadoopLeaseStore(jvm, fs, fs.makeQualified(root))
    store.scheme = "s3a"
    with pytest.raises(L.ConditionalCreateUnavailable, match=r"reports no fs\.option\.create\.conditional\.overwrite "
                       r"capability .* lease_consistency='best_effort'"):  # fmt: skip
        L.RunnerLease(store, ttl_ms=2_000).acquire()
    assert store.list_names(L.LEASE_DIR) == []  # refused before anything was written
    with pytest.raises(Exception, match="Unknown mandatory key"):  # what .must() does without the capability
        store._conditional_stream(store._path(L.generation_name(1)))

    best = L.HadoopLeaseStore(jvm, fs, fs.makeQualified(root), consistency="best_effort")
    best.scheme = "s3a"
    assert L.RunnerLease(best, ttl_ms=2_000).acquire().generation == 1
    assert "lease_consistency=best_effort" in capsys.readouterr().err
    assert not best.create_exclusive(L.generation_name(1), b"{}")  # an existing file still refuses the create


@pytest.mark.kafka
def test_two_spark_submits_at_the_same_moment_exactly_one_runs(kafka_broker, kafka_topic, tmp_path):
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 200, partitions=2)
    table, checkpoint = tmp_path / "table", tmp_path / "ckpt"
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, table, checkpoint, maxOffsetsPerTrigger=100)
    spec.update(trigger={"processing_time": "1 second"}, lease_ttl_seconds=10)
    first, second = _spark_submit(spec, tmp_path, "first"), _spark_submit(spec, tmp_path, "second")
    try:
        wait_while_running(lambda: first.poll() is not None or second.poll() is not None, 600, "one driver to give way")
        loser, winner = (first, second) if first.poll() is not None else (second, first)
        assert loser.wait(30) == 3, driver_log(loser)[-3000:]
        assert "refusing to start: the checkpoint is in use by Spark application" in driver_log(loser)
        wait_while_running(lambda: (checkpoint / "commits" / "1").exists(), 600, "both batches", winner)
        RunnerControlHook(str(checkpoint)).request_stop()
        assert winner.wait(300) == 0, driver_log(winner)[-3000:]
    finally:
        kill_drivers(first, second)
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
        wait_while_running(lambda: (checkpoint / "commits" / "0").exists(), 600, "a committed batch", paused)
        os.killpg(paused.pid, signal.SIGSTOP)  # the whole driver: JVM and Python, heartbeat included
        wait_while_running(lambda: hook.get_lease() is None, 60, "the paused driver's lease to go stale")

        taker = _spark_submit(bounded, tmp_path, "taker")  # takes the stale lease over, runs to the end
        assert taker.wait(900) == 0, driver_log(taker)[-3000:]

        os.killpg(paused.pid, signal.SIGCONT)
        assert paused.wait(300) == 4, driver_log(paused)[-3000:]
        assert "lost the checkpoint lease" in driver_log(paused)
    finally:
        kill_drivers(paused, *(d for d in (taker,) if d))
    rows = read_delta(table)
    assert len(rows) == 300  # every record exactly once: the resumed driver wrote nothing twice
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in rows}) == 300
    state = L.read_lease_state(L.LocalLeaseStore(str(checkpoint)))
    assert state.reason == "released" and state.generation == 2  # the taker's generation, untouched
