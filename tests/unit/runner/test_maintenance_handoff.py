"""The maintenance hand-off's decisions and its request/result files, on a local checkpoint with a real lease."""

from __future__ import annotations

import json
import threading
import time

import pytest

from airflow_spark_streaming.exceptions import (
    MaintenanceHandoffError,
    MaintenanceHandoffTimeoutError,
    UnprotectedConcurrentWriteError,
)
from airflow_spark_streaming.hooks.control_key import ControlKeyHook
from airflow_spark_streaming.hooks.maintenance_request import MaintenanceRequestHook, plan_maintenance, same_table
from airflow_spark_streaming.runner import control_auth, protocol
from airflow_spark_streaming.runner import lease as L

TABLE = "s3://lake/orders"


def _key():
    """The session's control key (tests/conftest.py), which the runner would get in its spec."""
    return ControlKeyHook().get_key()


def _answer(checkpoint, request_id, **outcome):
    """What the runner writes: its outcome, signed for the request."""
    body = {"request_id": request_id, **outcome}
    result = checkpoint / protocol.MAINTENANCE_DIR / protocol.maintenance_result_file(request_id)
    result.write_text(json.dumps(_key().sign(control_auth.MAINTENANCE_RESULT, body, scope=request_id)))


class _History:
    """The table side: only its newest commits matter to the decision (delta-rs's history() shape)."""

    def __init__(self, *commits):
        self.commits = list(commits)

    def get_table(self):
        return self

    def history(self, limit):
        return self.commits[:limit]


def _live_runner(checkpoint, app_id="app-1", table="s3a://lake/orders", advertise=True):
    runner = L.RunnerLease(L.LocalLeaseStore(str(checkpoint)), ttl_ms=10_000, identity={"app_id": app_id, "host": "h"})
    runner.acquire()
    if advertise:
        folder = checkpoint / protocol.MAINTENANCE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        body = {"protocol": protocol.MAINTENANCE_PROTOCOL, "app_id": app_id, "table": table,
                "checkpoint": protocol.location_key(str(checkpoint))}  # fmt: skip
        (folder / protocol.MAINTENANCE_HANDOFF_FILE).write_text(json.dumps(_key().sign(control_auth.HANDOFF, body)))
    return runner


def _plan(checkpoint, engine="auto", history=None, table=TABLE, no_concurrent_writers=False):
    return plan_maintenance(table_uri=table, action="optimize", engine=engine,
                            stream_checkpoint=str(checkpoint) if checkpoint else None, storage_conn_id=None,
                            table_hook=history or _History(), task_id="t",
                            no_concurrent_writers=no_concurrent_writers)  # fmt: skip


def test_tables_off_s3_and_s3_tables_whose_writer_is_known_and_not_live_run_here(tmp_path):
    assert _plan(tmp_path / "ckpt", table=str(tmp_path / "table")) is None
    assert _plan(None, table=str(tmp_path / "table")) is None  # local disk: the store's create-if-absent guards
    assert _plan(tmp_path / "ckpt") is None  # the named stream's lease was never taken
    old = {"version": 3, "operation": "STREAMING UPDATE", "timestamp": (time.time() - 7200) * 1000}
    assert _plan(None, history=_History(old), no_concurrent_writers=True) is None


def test_an_s3_table_whose_writer_is_unknown_is_refused_even_with_no_stream_in_its_log():
    """The old look-back missed an idle stream and any other Spark writer; now the writer must be known."""
    quiet = _History({"version": 10, "operation": "WRITE", "timestamp": 0})  # no streaming commit at all
    with pytest.raises(UnprotectedConcurrentWriteError, match="knows of no writer. Set stream_checkpoint .* or "
                                                              "no_concurrent_writers=True"):  # fmt: skip
        _plan(None, history=quiet)
    with pytest.raises(UnprotectedConcurrentWriteError, match="give one of them"):
        _plan("s3://lake/_checkpoints/orders", no_concurrent_writers=True)


def test_a_recent_streaming_commit_contradicts_no_concurrent_writers():
    recent = {"version": 9, "operation": "STREAMING UPDATE", "timestamp": time.time() * 1000}
    with pytest.raises(UnprotectedConcurrentWriteError, match="no_concurrent_writers=True, but a stream committed"):
        _plan(None, history=_History({"version": 10, "operation": "WRITE", "timestamp": 0}, recent),
              no_concurrent_writers=True)  # fmt: skip


def test_maintenance_operators_refuse_an_unknown_writer_on_s3_when_the_dag_is_parsed():
    from airflow_spark_streaming.exceptions import InvalidParameterError
    from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator

    for make in (DeltaOptimizeOperator, DeltaVacuumOperator):
        with pytest.raises(UnprotectedConcurrentWriteError, match="s3a://lake/orders is on S3"):
            make(task_id="t", table_uri="s3a://lake/orders")
        with pytest.raises(InvalidParameterError, match="give one of them"):
            make(task_id="t", table_uri="s3://lake/orders", stream_checkpoint="s3://c", no_concurrent_writers=True)
        with pytest.raises(InvalidParameterError, match="no_concurrent_writers"):
            make(task_id="t", table_uri="s3://lake/orders", no_concurrent_writers="yes")
        assert make(task_id="t", table_uri="s3://lake/orders", no_concurrent_writers=True).no_concurrent_writers
        assert make(task_id="t", table_uri="s3://lake/orders", stream_checkpoint="s3://c").stream_checkpoint
        assert make(task_id="t", table_uri="/lake/orders").no_concurrent_writers is False  # local: no choice needed
        assert make(task_id="t", table_uri="{{ params.table }}").table_uri  # templated: checked once rendered
    assert DeltaVacuumOperator(task_id="t", table_uri="s3://lake/orders", dry_run=True).dry_run  # writes nothing


def test_a_live_runner_gets_the_request_unless_native_or_it_takes_none(tmp_path):
    runner = _live_runner(tmp_path / "ckpt")
    target = _plan(tmp_path / "ckpt")
    assert target is not None and target.app_id == "app-1"
    with pytest.raises(UnprotectedConcurrentWriteError, match="delta-rs cannot commit safely"):
        _plan(tmp_path / "ckpt", engine="native")
    runner.release()
    assert _plan(tmp_path / "ckpt", engine="native") is None  # released: nobody else writes

    _live_runner(tmp_path / "user-app", advertise=False)
    with pytest.raises(UnprotectedConcurrentWriteError, match="does not take maintenance requests"):
        _plan(tmp_path / "user-app")
    _live_runner(tmp_path / "other", table="s3a://lake/other")
    with pytest.raises(UnprotectedConcurrentWriteError, match="not this table"):
        _plan(tmp_path / "other")


def test_requests_are_created_once_and_answered(tmp_path):
    checkpoint = tmp_path / "ckpt"
    _live_runner(checkpoint)
    hook = MaintenanceRequestHook(str(checkpoint))
    request_id = hook.submit({"action": "optimize", "table": TABLE})
    assert protocol.maintenance_request_id(protocol.maintenance_request_file(request_id)) == request_id
    with pytest.raises(FileExistsError):
        with hook.root.fs.open(
            hook._path(protocol.MAINTENANCE_DIR, protocol.maintenance_request_file(request_id)), "xb"
        ):
            pass  # the exclusive create refuses an existing request

    def answer():
        time.sleep(0.5)
        _answer(checkpoint, request_id, status="succeeded")

    threading.Thread(target=answer).start()
    assert hook.wait_for_result(request_id, timeout=10, poll=0.1)["status"] == "succeeded"

    failed = hook.submit({"action": "vacuum", "table": TABLE})
    _answer(checkpoint, failed, status="failed", error="boom")
    with pytest.raises(MaintenanceHandoffError, match="boom"):
        hook.wait_for_result(failed, timeout=5, poll=0.1)


def test_no_answer_times_out_and_a_stopped_stream_fails_fast(tmp_path):
    checkpoint = tmp_path / "ckpt"
    runner = _live_runner(checkpoint)
    hook = MaintenanceRequestHook(str(checkpoint))
    request_id = hook.submit({"action": "optimize", "table": TABLE})
    with pytest.raises(MaintenanceHandoffTimeoutError, match="withdrawn"):
        hook.wait_for_result(request_id, timeout=0.3, poll=0.1)
    assert not (checkpoint / protocol.MAINTENANCE_DIR / protocol.maintenance_request_file(request_id)).exists()

    request_id = hook.submit({"action": "optimize", "table": TABLE})
    runner.release()
    started = time.monotonic()
    with pytest.raises(MaintenanceHandoffError, match="stopped before it answered"):
        hook.wait_for_result(request_id, timeout=60, poll=0.1)
    assert time.monotonic() - started < 5


def test_table_names_match_across_s3_schemes():
    assert same_table("s3a://lake/orders/", "s3://lake/orders")
    assert not same_table("s3://lake/orders", "s3://lake/orders2")
    assert protocol.maintenance_request_id("_handoff") is None
    assert protocol.maintenance_request_id("0" * 32 + ".result.json") is None


def test_runner_shipped_alone_still_finds_the_handoff(tmp_path):
    """In cluster deploy mode spark-submit copies stream_runner.py alone into the driver's container."""
    import importlib.util
    import shutil

    from airflow_spark_streaming.runner.jobs import job_path

    shipped = tmp_path / "container" / "stream_runner.py"
    shipped.parent.mkdir()
    shutil.copy(job_path("stream_runner"), shipped)
    spec = importlib.util.spec_from_file_location("shipped_stream_runner", shipped)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    assert callable(runner._maintenance_handoff().watch_maintenance_requests)
