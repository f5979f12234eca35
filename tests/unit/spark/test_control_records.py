"""The Airflow side acts only on control records signed with the control key, for this checkpoint and run.

A planted or altered ``_submission`` or lease is refused with a named error before anything is
written or killed; a kill by pid reaches only the process that carries the submission's tag and
started when the signed record says; a driver log is read and cleaned up only inside the run's
own folder.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid

import pytest

from airflow_spark_streaming.exceptions import (
    ControlKeyMissingError,
    ControlPathOutsideRunError,
    DriverProcessMismatchError,
    UntrustedControlRecordError,
)
from airflow_spark_streaming.hooks.control_key import ControlKeyHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.hooks.submission import SparkSubmission, StreamingSubmitHook
from airflow_spark_streaming.runner import control_auth
from airflow_spark_streaming.runner import lease as L
from airflow_spark_streaming.runner.protocol import SUBMISSION_ENV, location_key
from airflow_spark_streaming.spark.submission.private_files import DRIVER_LOG, SPEC_FILE, driver_folder


@pytest.fixture
def key():
    return ControlKeyHook().get_key()


@pytest.fixture
def local_conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_LOCAL_CTRL", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", os.environ.get("TMPDIR", "/tmp") + f"/cache-{uuid.uuid4().hex}")
    return "spark_local_ctrl"


def _started(command: list[str], **kwargs) -> subprocess.Popen:
    """``command`` started, once its command line shows in /proc (it reads empty for a moment after the fork)."""
    process = subprocess.Popen(command, start_new_session=True, **kwargs)
    deadline = time.monotonic() + 10
    while not open(f"/proc/{process.pid}/cmdline", "rb").read() and time.monotonic() < deadline:
        time.sleep(0.01)
    return process


@pytest.fixture
def sentinel():
    """A process this test started (so its parent is this process), which nothing may kill."""
    process = _started(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def _submission(tag: str, pid: int, **fields) -> dict:
    return {"deployment": "client", "submission_id": f"{socket.gethostname()}:{pid}", "tag": tag,
            "conn_id": "spark_local_ctrl", "master": "local[1]", "submitted_at": time.time(),
            "host": socket.gethostname(), "pid": pid, "pid_start": control_auth.process_start_ticks(pid),
            "owner": "dag.start[-1]", **fields}  # fmt: skip


def _live_lease(checkpoint, tag: str, key=None) -> L.RunnerLease:
    """A live lease naming ``tag`` (signed like the runner's when ``key`` is given)."""
    from airflow_spark_streaming.runner.jobs.stream_runner import SignedLeaseStore

    extra = {"pid_start": control_auth.process_start_ticks(), "checkpoint": location_key(str(checkpoint))}
    store = SignedLeaseStore(L.LocalLeaseStore(str(checkpoint)), key, scope=tag, extra=extra)
    runner = L.RunnerLease(store, ttl_ms=30_000, identity={"app_id": "local-1", "host": socket.gethostname(),
                                                          "pid": os.getpid(), "submission": tag})  # fmt: skip
    runner.acquire()
    return runner


def test_a_signed_submission_verifies_and_a_planted_altered_or_copied_one_is_refused(tmp_path, key):
    tag = uuid.uuid4().hex
    first, other = RunnerControlHook(str(tmp_path / "a")), RunnerControlHook(str(tmp_path / "b"))
    first.put_submission(_submission(tag, 4242), key=key)
    assert first.get_signed_submission(key)["pid"] == 4242
    assert RunnerControlHook("file://" + str(tmp_path / "a") + "/").get_signed_submission(key)["tag"] == tag

    signed = json.loads((tmp_path / "a" / "_submission").read_text())
    body = {k: v for k, v in signed.items() if k != "_auth"}
    foreign = control_auth.ControlKey.from_text("x" * 32, source="another deployment")
    for planted, match in (
        (body, "unsigned"),
        ({**signed, "pid": 1}, "does not match"),
        ({**signed, "driver_log": "/etc/passwd"}, "does not match"),
        (foreign.sign(control_auth.SUBMISSION, body), "does not match"),
        (key.sign(control_auth.LEASE, body, scope=tag), "not as a submission"),
        ("[1, 2]", "not an object"),
    ):
        (tmp_path / "a" / "_submission").write_text(planted if isinstance(planted, str) else json.dumps(planted))
        with pytest.raises(UntrustedControlRecordError, match=match):
            first.get_signed_submission(key)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "_submission").write_text(json.dumps(signed))  # a valid record, replayed elsewhere
    with pytest.raises(UntrustedControlRecordError, match="signed for checkpoint"):
        other.get_signed_submission(key)


def test_a_forged_submission_claiming_the_live_driver_is_refused_before_anything_else(tmp_path, key, sentinel):
    checkpoint = tmp_path / "ckpt"
    tag = uuid.uuid4().hex
    runner = _live_lease(checkpoint, tag, key)
    try:
        control = RunnerControlHook(str(checkpoint))
        control.put_submission(_submission(tag, sentinel.pid))  # unsigned: what a lake writer can write
        with pytest.raises(UntrustedControlRecordError, match="unsigned"):
            StreamingSubmitHook.get_lease_holder(control, key=key)
        assert StreamingSubmitHook.get_lease_holder(control)[1] is None  # without a key nothing is trusted

        from airflow_spark_streaming.operators.stop import StopStreamingQueryOperator

        with pytest.raises(UntrustedControlRecordError, match="unsigned"):
            StopStreamingQueryOperator(task_id="stop", checkpoint=str(checkpoint), timeout=1).execute({})
        assert not (checkpoint / "_stop").exists() and sentinel.poll() is None  # nothing written, nothing killed

        control.put_submission(_submission(tag, sentinel.pid), key=key)  # signed: ours
        lease, ours = StreamingSubmitHook.get_lease_holder(control, key=key)
        assert lease.submission_tag == tag and ours.pid == sentinel.pid
    finally:
        runner.release()


def test_a_signed_record_naming_a_process_that_lacks_the_tag_kills_nothing(tmp_path, key, sentinel, local_conn):
    """Even a validly signed record (a key holder's mistake, a reused pid) kills only the driver the provider
    started: the sentinel is this process's child and started when the record says, but carries no tag."""
    tag = uuid.uuid4().hex
    hook = StreamingSubmitHook(spark_conn_id=local_conn)
    submission = SparkSubmission.from_dict(_submission(tag, sentinel.pid))
    with pytest.raises(DriverProcessMismatchError, match="not driver"):
        hook.kill_driver(submission)
    assert sentinel.poll() is None

    tagged = _started(["sleep", "600"], env={**os.environ, SUBMISSION_ENV: tag})
    try:
        own = SparkSubmission.from_dict(_submission(tag, tagged.pid))
        with pytest.raises(DriverProcessMismatchError):
            hook.kill_driver(SparkSubmission.from_dict({**own.to_dict(), "pid_start": own.pid_start + 1}))
        assert tagged.poll() is None
        hook.kill_driver(own)
        assert tagged.wait(20) is not None
    finally:
        tagged.kill()
        tagged.wait()


def test_a_lease_is_acted_on_only_when_signed_for_this_checkpoint(tmp_path, key, sentinel, local_conn):
    checkpoint = tmp_path / "ckpt"
    tag = uuid.uuid4().hex
    hook = StreamingSubmitHook(spark_conn_id=local_conn)
    runner = _live_lease(checkpoint, tag)  # unsigned, as a runner without a key (or a planted file) writes it
    control = RunnerControlHook(str(checkpoint))
    try:
        with pytest.raises(UntrustedControlRecordError, match="unsigned"):
            hook.kill_lease_holder(control.get_lease(), checkpoint=control, key=key)
        with pytest.raises(ControlKeyMissingError, match="control key"):
            hook.kill_lease_holder(control.get_lease(), checkpoint=control, key=None)
    finally:
        runner.release()
    signed = _live_lease(tmp_path / "other", tag, key)
    try:
        record = RunnerControlHook(str(tmp_path / "other")).get_lease().record
        assert control_auth.is_signed(record) and record["checkpoint"] == location_key(str(tmp_path / "other"))
        copied = RunnerControlHook(str(tmp_path / "other")).get_lease()
        with pytest.raises(UntrustedControlRecordError, match="signed for checkpoint"):
            hook.kill_lease_holder(copied, checkpoint=control, key=key)  # replayed beside another checkpoint
        # The runner's own pid (this process) carries no tag: a signed lease is not enough on its own.
        with pytest.raises(DriverProcessMismatchError):
            hook.kill_lease_holder(copied, checkpoint=RunnerControlHook(str(tmp_path / "other")), key=key)
    finally:
        signed.release()
    assert sentinel.poll() is None


def test_driver_logs_are_read_and_cleaned_up_only_inside_the_runs_own_folder(tmp_path, local_conn):
    hook = StreamingSubmitHook(spark_conn_id=local_conn)
    tag = uuid.uuid4().hex
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / DRIVER_LOG).write_text("SENTINEL-CONTENT\n")
    (outside / SPEC_FILE).write_text("{}")
    folder = driver_folder("q", tag)
    folder.mkdir(parents=True)
    (folder / DRIVER_LOG).write_text("the driver's own words\n")
    (folder / SPEC_FILE).write_text("{}")
    escape = driver_folder("link", tag)
    escape.symlink_to(outside)

    for planted in (outside / DRIVER_LOG, folder / ".." / ".." / "outside" / DRIVER_LOG, escape / DRIVER_LOG,
                    driver_folder("q", uuid.uuid4().hex) / DRIVER_LOG):  # fmt: skip
        submission = SparkSubmission.from_dict(_submission(tag, 1, driver_log=str(planted)))
        with pytest.raises(ControlPathOutsideRunError) as refused:
            hook.get_driver_log_hint(submission)
        assert "SENTINEL-CONTENT" not in str(refused.value)
        with pytest.raises(ControlPathOutsideRunError):
            hook.release_private_files(submission, None)
    assert (outside / SPEC_FILE).exists() and (outside / DRIVER_LOG).read_text() == "SENTINEL-CONTENT\n"

    own = SparkSubmission.from_dict(_submission(tag, 1, driver_log=str(folder / DRIVER_LOG)))
    assert "the driver's own words" in hook.get_driver_log_hint(own)
    hook.release_private_files(own, None)
    assert not (folder / SPEC_FILE).exists() and (folder / DRIVER_LOG).exists()


def test_the_control_key_comes_from_its_connection_masked_and_a_missing_one_is_named(monkeypatch, mocker):
    masked = mocker.patch("airflow.sdk.log.mask_secret")
    key = ControlKeyHook().get_key()
    secret = json.loads(os.environ["AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT"])["password"]
    assert key.secret == secret.encode() and masked.call_args.args == (secret,) and secret not in repr(key)

    monkeypatch.setenv("AIRFLOW_CONN_WEAK_CTRL", json.dumps({"conn_type": "generic", "password": "short"}))
    with pytest.raises(ControlKeyMissingError, match="shorter than 16") as weak:
        ControlKeyHook("weak_ctrl").get_key(required=False)
    assert "short'" not in str(weak.value)
    assert ControlKeyHook("no_such_ctrl").get_key(required=False) is None
    with pytest.raises(ControlKeyMissingError, match=r"'no_such_ctrl' does not exist.*airflow connections add"):
        ControlKeyHook("no_such_ctrl").get_key(purpose="a long-running stream")


def test_a_long_running_stream_without_the_key_is_refused_before_anything_runs(tmp_path, monkeypatch, local_conn):
    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

    monkeypatch.delenv("AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT")
    popen = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: popen.append(a))
    spec = {"query_name": "q", "checkpoint_location": str(tmp_path / "ckpt"), "source": {"format": "rate"},
            "sink": {"format": "delta", "path": str(tmp_path / "t")}, "trigger": {"processing_time": "1 second"}}  # fmt: skip
    task = SparkStreamingSubmitOperator(task_id="start", spec=spec, spark_conn_id=local_conn)
    with pytest.raises(ControlKeyMissingError, match="spark_streaming_control_default"):
        task.execute({})
    assert popen == [] and not (tmp_path / "ckpt").exists()


def test_the_key_reaches_the_runner_only_in_its_private_spec(tmp_path, key):
    from airflow_spark_streaming.operators.streaming import _with_control_key

    spec = _with_control_key({"query_name": "q", control_auth.SPEC_KEY: "planted-in-the-dag-0000"}, key)
    assert spec[control_auth.SPEC_KEY] == key.secret.decode()
    assert control_auth.SPEC_KEY not in _with_control_key({"query_name": "q", control_auth.SPEC_KEY: "x" * 20}, None)
    from airflow_spark_streaming.runner.spec import redact_spec

    assert key.secret.decode() not in json.dumps(redact_spec(spec))
