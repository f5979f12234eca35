"""A hostile lake: files planted next to a real running stream are refused, and nothing happens.

One long-running stream (rate source into a Delta table on local disk, started by
``SparkStreamingSubmitOperator``) runs for the whole module; each test plants what a principal
that can only write to the lake could write, then runs the real operators and the real driver:

- a lease naming a sentinel process, beside a checkpoint;
- a ``_submission`` naming the sentinel (and a YARN application), with a driver log pointing at
  a sentinel file;
- a VACUUM ``retain 0 full`` request for the stream's driver;
- validly signed records replayed for another checkpoint, request or process.

Each attempt ends in a named error (or, in the driver, a signed refusal); the sentinel process
survives, the sentinel file is intact and in no error, no table file is deleted and no maintenance
commit happens, and the stream keeps its one lease throughout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import (
    CheckpointInUseError,
    ControlPathOutsideRunError,
    DriverProcessMismatchError,
    MaintenanceHandoffError,
    UntrustedControlRecordError,
)
from airflow_spark_streaming.hooks.control_key import ControlKeyHook
from airflow_spark_streaming.hooks.maintenance_request import MaintenanceRequestHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.hooks.submission import SparkSubmission, StreamingSubmitHook
from airflow_spark_streaming.operators.stop import StopStreamingQueryOperator
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.runner import control_auth, protocol
from tests.support.runner_drivers import kill_leftover_drivers

CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.databricks.delta.snapshotPartitions": "1",
}


class Stream:
    """The shared stream and what every test checks afterwards."""

    def __init__(self, root: Path, spec: dict, started: dict):
        self.root, self.spec, self.started = root, spec, started
        self.checkpoint, self.table = Path(spec["checkpoint_location"]), Path(spec["sink"]["path"])
        self.control = RunnerControlHook(str(self.checkpoint))
        self.key = ControlKeyHook().get_key()
        self.lease_name = self.lease_names()[0]
        self.tag = self.control.get_lease().submission_tag
        self.sentinel = subprocess.Popen(["sleep", "600"], start_new_session=True)
        self.outside = root / "outside"
        self.outside.mkdir()
        self.marker = f"SENTINEL-{uuid.uuid4().hex}"
        self.secret_file = self.outside / "driver.log"
        self.secret_file.write_text(f"{self.marker}\n")
        for name in ("spec.json", "secret.properties"):  # the provider's fixed names, next to the planted log
            (self.outside / name).write_text(self.marker)
        self.orphan = self.table / "part-00000-planted-orphan.snappy.parquet"
        self.orphan.write_bytes(b"PAR1")
        os.utime(self.orphan, (time.time() - 30 * 86400,) * 2)  # what VACUUM FULL RETAIN 0 would delete
        self.files = self.table_files()
        self.killed = False

    def lease_names(self) -> list[str]:
        return sorted(n for n in os.listdir(self.checkpoint / protocol.LEASE_DIR) if n.isdigit())

    def table_files(self) -> set[str]:
        return {str(p.relative_to(self.table)) for p in self.table.rglob("*") if "_delta_log" not in p.parts}

    def signed_lease(self) -> dict:
        return json.loads((self.checkpoint / protocol.LEASE_DIR / self.lease_name).read_text())

    def plant(self, folder: Path, name: str, record) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
        return path

    def submission(self, **fields) -> dict:
        """What a lake writer plants as ``_submission``: the live lease's tag (readable), the sentinel's pid."""
        return {"deployment": "client", "submission_id": f"{socket.gethostname()}:{self.sentinel.pid}",
                "tag": self.tag, "conn_id": "spark_default", "master": "local[1]", "submitted_at": time.time(),
                "host": socket.gethostname(), "pid": self.sentinel.pid, "driver_log": str(self.secret_file),
                "pid_start": control_auth.process_start_ticks(self.sentinel.pid), "owner": "start", **fields}  # fmt: skip

    def assert_nothing_happened(self, *errors: BaseException) -> None:
        assert self.sentinel.poll() is None, "the sentinel process was killed"
        assert self.secret_file.read_text() == f"{self.marker}\n"
        assert all((self.outside / n).read_text() == self.marker for n in ("spec.json", "secret.properties"))
        for error in errors:
            assert self.marker not in str(error), "the sentinel file was read into an error"
        assert self.files <= self.table_files(), "table files were deleted"
        assert self.orphan.exists()
        from deltalake import DeltaTable

        table = DeltaTable(str(self.table))
        operations = {c["operation"] for c in table.history()}
        assert not {op for op in operations if "VACUUM" in op or "OPTIMIZE" in op}, operations
        # The stream keeps its one lease: the same generation, live, its driver's.
        assert self.lease_names() == [self.lease_name], self.lease_names()
        lease = self.control.get_lease()
        assert lease is not None and lease.app_id == self.started["app_id"] and lease.submission_tag == self.tag
        assert not (self.checkpoint / protocol.STOP_FILE).exists()


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"}))
        env.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(root / "cache"))
        spec = {
            "query_name": "hostile_lake",
            "checkpoint_location": str(root / "ckpt"),
            "source": {"format": "rate", "options": {"rowsPerSecond": "5"}},
            "sink": {"format": "delta", "path": str(root / "table"), "output_mode": "append"},
            "trigger": {"processing_time": "2 seconds"},
            "lease_ttl_seconds": 10,
        }
        shared = None
        try:
            started = SparkStreamingSubmitOperator(task_id="start", spec=spec, conf=CONF, poll_interval=1).execute({})
            shared = Stream(root, spec, started)
            yield shared
            if not shared.killed:  # the last test kills it; if it did not run, stop it
                StopStreamingQueryOperator(task_id="stop", checkpoint=spec["checkpoint_location"],
                                           timeout=120).execute({})  # fmt: skip
        finally:
            if shared is not None:
                shared.sentinel.kill()
                shared.sentinel.wait()
            kill_leftover_drivers(str(root))


def _stop(checkpoint: Path | str):
    return StopStreamingQueryOperator(task_id="stop", checkpoint=str(checkpoint), timeout=1, poll_interval=0.2)


def test_a_planted_or_replayed_lease_kills_nothing(stream, tmp_path):
    planted = {"version": 1, "generation": 1, "owner": "x", "heartbeat_ms": int(time.time() * 1000),
               "ttl_ms": 600_000, "released": False, "host": socket.gethostname(), "pid": stream.sentinel.pid,
               "app_id": "app-planted", "submission": stream.tag,
               "pid_start": control_auth.process_start_ticks(stream.sentinel.pid),
               "checkpoint": protocol.location_key(str(tmp_path / "a"))}  # fmt: skip
    signed = stream.signed_lease()
    cases = {
        "a": (planted, "unsigned"),
        "b": (
            {**signed, "pid": stream.sentinel.pid, "checkpoint": protocol.location_key(str(tmp_path / "b"))},
            "does not match",
        ),  # fmt: skip
        "c": (signed, "signed for checkpoint"),  # the stream's own valid lease, replayed beside another checkpoint
    }
    errors = []
    for folder, (record, match) in cases.items():
        record = {**record, "heartbeat_ms": int(time.time() * 1000)} if "_auth" not in record else record
        stream.plant(tmp_path / folder / protocol.LEASE_DIR, stream.lease_name, record)
        with pytest.raises(UntrustedControlRecordError, match=match) as refused:
            _stop(tmp_path / folder).execute({})
        errors.append(refused.value)
    stream.assert_nothing_happened(*errors)


def test_a_planted_submission_is_refused_before_the_stop_marker_or_a_reattach(stream, mocker):
    from airflow_spark_streaming.spark.submission.backends.local import LocalDetachedBackend
    from airflow_spark_streaming.spark.submission.backends.yarn import YarnBackend

    for backend in (LocalDetachedBackend, YarnBackend):
        for method in ("kill", "get_state", "release", "end_hint"):
            mocker.patch.object(backend, method, side_effect=AssertionError(f"{backend.__name__}.{method} ran"))
    real = (stream.checkpoint / protocol.SUBMISSION_FILE).read_bytes()
    errors = []
    try:
        for planted in (
            stream.submission(),
            stream.submission(
                deployment="yarn", submission_id="application_1700000000000_0001", conn_id="spark_yarn_bogus", pid=None
            ),  # fmt: skip
            {**json.loads(real), "pid": stream.sentinel.pid, "driver_log": str(stream.secret_file)},  # altered
        ):
            stream.plant(stream.checkpoint, protocol.SUBMISSION_FILE, planted)
            with pytest.raises(UntrustedControlRecordError) as refused:
                _stop(stream.checkpoint).execute({})
            errors.append(refused.value)
            with pytest.raises(UntrustedControlRecordError) as refused:  # a retry of the start task: no reattach
                SparkStreamingSubmitOperator(task_id="start", spec=stream.spec, conf=CONF).execute({})
            errors.append(refused.value)
    finally:
        (stream.checkpoint / protocol.SUBMISSION_FILE).write_bytes(real)
    mocker.stopall()
    stream.assert_nothing_happened(*errors)


def test_signed_records_replayed_for_another_checkpoint_or_process_change_nothing(stream, tmp_path):
    """The stream's own signed ``_submission`` beside another checkpoint; and a validly signed record (as a key
    holder's mistake) that names the sentinel process and the sentinel file."""
    other = tmp_path / "other"
    stream.plant(other / protocol.LEASE_DIR, stream.lease_name, stream.signed_lease())  # keeps the copy live
    (other / protocol.SUBMISSION_FILE).write_bytes((stream.checkpoint / protocol.SUBMISSION_FILE).read_bytes())
    errors = []
    with pytest.raises(UntrustedControlRecordError, match="signed for checkpoint") as refused:
        _stop(other).execute({})
    errors.append(refused.value)

    RunnerControlHook(str(other)).put_submission(stream.submission(), key=stream.key)
    stream.plant(other / protocol.LEASE_DIR, stream.lease_name, stream.signed_lease())
    with pytest.raises(DriverProcessMismatchError) as refused:
        _stop(other).execute({})  # the sentinel is alive and started when the record says, but carries no tag
    errors.append(refused.value)
    stream.plant(other / protocol.LEASE_DIR, stream.lease_name, stream.signed_lease())
    with pytest.raises(ControlPathOutsideRunError) as refused:  # a retry reattaching to it: no log read, no clean-up
        SparkStreamingSubmitOperator(task_id="start", spec={**stream.spec, "checkpoint_location": str(other)},
                                     conf=CONF, poll_interval=0.2).execute({})  # fmt: skip
    errors.append(refused.value)
    hook = StreamingSubmitHook()
    signed = SparkSubmission.from_dict(RunnerControlHook(str(other)).get_signed_submission(stream.key))
    for action in (lambda: hook.get_driver_log_hint(signed), lambda: hook.release_private_files(signed, None)):
        with pytest.raises(ControlPathOutsideRunError) as refused:
            action()
        errors.append(refused.value)
    stream.assert_nothing_happened(*errors)


def test_planted_and_replayed_maintenance_requests_change_nothing(stream):
    folder = stream.checkpoint / protocol.MAINTENANCE_DIR
    control = MaintenanceRequestHook(str(stream.checkpoint))
    handoff = control.get_handoff()  # signed by the runner, for this checkpoint
    assert handoff["app_id"] == stream.started["app_id"]
    now_ms = int(time.time() * 1000)
    vacuum = {"action": "vacuum", "table": str(stream.table), "retain_hours": 0, "mode": "full", "dry_run": False,
              "retention_override": True, "expires_at_ms": now_ms + 300_000}  # fmt: skip
    foreign = control_auth.ControlKey.from_text("f" * 32, source="another deployment")

    def request(body, key=None, scope=handoff["app_id"], name=None):
        request_id = uuid.uuid4().hex
        body = {**body, "request_id": body.get("request_id", request_id)}
        stream.plant(folder, protocol.maintenance_request_file(name or request_id),
                     key.sign(control_auth.MAINTENANCE_REQUEST, body, scope=scope) if key else body)  # fmt: skip
        return name or request_id

    planted = {
        request(vacuum): "unsigned",
        request(vacuum, key=foreign): "does not match",
        request(vacuum, key=stream.key, scope="local-another-run"): "does not match",
        request({**vacuum, "expires_at_ms": now_ms - 1}, key=stream.key): "expired",
        request({**vacuum, "request_id": uuid.uuid4().hex}, key=stream.key): "another request id",
        request({**vacuum, "action": "optimize", "where": "1=1) OR (true"}, key=stream.key): "partition predicate",
    }
    # A request the operator side really signs, below the table's retention and without the override.
    signed_id = control.submit({k: v for k, v in vacuum.items() if k not in ("retention_override", "expires_at_ms")},
                               expires_in=300)  # fmt: skip
    with pytest.raises(MaintenanceHandoffError, match="refused.*shorter than the table's"):
        control.wait_for_result(signed_id, timeout=180, poll=0.5)
    # The same valid request replayed under a new name once answered: refused as a copy.
    copied = json.loads((folder / protocol.maintenance_request_file(signed_id)).read_text())
    replayed = uuid.uuid4().hex
    stream.plant(folder, protocol.maintenance_request_file(replayed), copied)
    planted[replayed] = "another request id"

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(control.get_result(i) for i in planted):
        time.sleep(0.5)
    for request_id, match in planted.items():
        result = control.get_result(request_id)  # the runner's refusals are signed too
        assert result is not None and result["status"] == "refused" and match in result["error"], (match, result)
    stream.assert_nothing_happened()


def test_the_stream_keeps_its_one_lease_and_refuses_a_second_starter(stream):
    with pytest.raises(CheckpointInUseError):
        SparkStreamingSubmitOperator(task_id="intruder", spec=stream.spec, conf=CONF).execute({})
    status = RunnerControlHook(str(stream.checkpoint))
    assert status.get_lease().app_id == stream.started["app_id"]
    stream.assert_nothing_happened()


def test_last_the_provider_kills_its_own_driver_by_its_signed_lease(stream):
    """The positive case of the checks above: the stream's own driver is killed by the pid its signed lease
    names, because that process carries the submission's tag and the start time the lease recorded."""
    lease = stream.control.get_lease()
    pid = stream.control.verified_lease(lease, stream.key)["pid"]
    assert StreamingSubmitHook().kill_lease_holder(lease, checkpoint=stream.control, key=stream.key) is True
    stream.killed = True
    state = Path(f"/proc/{pid}/stat")
    assert not state.exists() or state.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    assert stream.sentinel.poll() is None
