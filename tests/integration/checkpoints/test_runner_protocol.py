"""The runner's control protocol, both sides: what the stream runner writes, the Airflow-side hooks read.

The Spark side is the runner's own code (``Lease``, ``run``, ``watch_stop_marker``) in a real
SparkSession; the Airflow side is the hook that operators and sensors use.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.runner import protocol
from airflow_spark_streaming.runner.jobs import job_path, stream_runner


def _until(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_the_lease_the_runner_writes_is_the_lease_the_hook_reads(spark, tmp_path):
    checkpoint = str(tmp_path / "ckpt")
    spark.conf.set(protocol.SUBMISSION_CONF, "tag-42")
    try:
        lease = stream_runner.Lease(spark, checkpoint, ttl_ms=7_000)
    finally:
        spark.conf.unset(protocol.SUBMISSION_CONF)
    control = RunnerControlHook(checkpoint)
    assert control.get_lease() is None
    lease.acquire()
    try:
        seen = control.get_lease()
        assert seen is not None
        assert seen.app_id == spark.sparkContext.applicationId
        assert seen.submission_tag == "tag-42"
        assert seen.ttl_seconds == 7.0 and seen.heartbeat_age_seconds < 7.0
        assert seen.pid == os.getpid() and seen.host == socket.gethostname()
        # A second runner on the same checkpoint is refused while the hook sees the lease live.
        try:
            stream_runner.Lease(spark, checkpoint).acquire()
            raise AssertionError("a second lease was granted")
        except stream_runner.CheckpointInUse as err:
            assert seen.app_id in str(err)
        # Past its TTL the same lease reads as free on the hook side too.
        assert control.get_lease(now=time.time() + 8) is None
    finally:
        lease.release()
    assert control.get_lease() is None
    # The newest generation stays, marked released, so generation numbers are never reused.
    newest = sorted((tmp_path / "ckpt" / protocol.LEASE_DIR).iterdir())[-1]
    assert json.loads(newest.read_text())["released"] is True


def test_progress_events_the_runner_writes_are_what_the_hook_reads(spark, tmp_path, monkeypatch):
    source, table, checkpoint = tmp_path / "in", tmp_path / "out", tmp_path / "ckpt"
    source.mkdir()
    (source / "part-0.json").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(7)))
    spec = {
        "query_name": "protocol_progress",
        "checkpoint_location": str(checkpoint),
        "source": {"format": "json", "path": str(source), "schema": "id INT"},
        "sink": {"format": "parquet", "path": str(table)},
        "trigger": {"available_now": True},
    }
    added, make_listener = [], stream_runner.progress_listener
    monkeypatch.setattr(
        stream_runner, "progress_listener", lambda *a, **k: added.append(make_listener(*a, **k)) or added[-1]
    )
    assert stream_runner.run(spec, spark) == 0
    try:
        events = RunnerControlHook(str(checkpoint)).get_progress()
        status = CheckpointHook(str(checkpoint)).get_status(include_state=False)
        assert [e["batchId"] for e in events] == list(range(status.latest_committed_batch + 1))
        assert sum(e["numInputRows"] for e in events) == 7
        assert all(e["name"] == "protocol_progress" for e in events)
        assert RunnerControlHook(str(checkpoint)).get_progress(after_batch=events[-1]["batchId"]) == []
        # Each event was written aside and renamed into place: no staging file is left behind.
        written = sorted(p.name for p in (checkpoint / protocol.PROGRESS_DIR).iterdir() if not p.name.endswith(".crc"))
        assert written == sorted(protocol.progress_file(e["batchId"]) for e in events)
    finally:
        for listener in added:  # run() leaves its listener on the session, which other tests share
            spark.streams.removeListener(listener)


def test_the_stop_marker_the_hook_writes_stops_the_runners_query(spark, tmp_path):
    checkpoint = str(tmp_path / "ckpt")
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 5).load()
        .writeStream.format("noop").option("checkpointLocation", checkpoint)
        .trigger(processingTime="200 milliseconds").start()
    )  # fmt: skip
    try:
        batch_done = threading.Event()
        requested = stream_runner.watch_stop_marker(spark, query, checkpoint, batch_done, interval=0.2)
        _until(lambda: query.lastProgress is not None)
        control = RunnerControlHook(checkpoint)
        control.request_stop()
        assert (tmp_path / "ckpt" / protocol.STOP_FILE).exists()
        batch_done.set()  # no progress listener here: let the watcher stop between batches at once
        _until(lambda: not query.isActive)
        assert requested.is_set()
        _until(lambda: not (tmp_path / "ckpt" / protocol.STOP_FILE).exists())
        control.clear_stop_request()  # idempotent once the runner removed it
    finally:
        query.stop()


def test_the_runner_file_finds_the_protocol_without_the_package_installed(tmp_path):
    """spark-submit runs the runner by path; a driver Python without the provider still imports the protocol."""
    probe = (
        "import runpy, sys; "
        f"module = runpy.run_path({job_path('stream_runner')!r}, run_name='probe'); "
        "print(module['protocol'].__file__)"
    )
    # -I ignores PYTHONPATH, -S skips site-packages: the provider is not importable the usual way.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("airflow_spark_streaming/runner/protocol.py")
