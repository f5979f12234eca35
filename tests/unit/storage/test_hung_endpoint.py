"""A store that accepts connections and never answers: every S3 reader fails in bounded time, named.

The endpoint is a real local socket that accepts and never replies; the readers are the real ones
(s3fs through the Amazon provider, delta-rs), so the time measured is their own timeouts and retries.
Before the bound, s3fs's own 5 retries of botocore's own 5 attempts took 416 s to fail with 1 s, 2 s
and 1 attempt configured (the options never reached s3fs), and a checkpoint read took minutes more.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest

from airflow_spark_streaming.exceptions import StorageConnectionError, StorageUnreachableError
from airflow_spark_streaming.hooks.storage import StorageHook, StorageTimeouts

SECRET = "s3cr3t-hung-value"
# 1 s to connect and to wait for an answer, 2 attempts: at most 2 x (1 + 1) + 1 s of back-off.
TUNED = {"connect_timeout": 1, "read_timeout": 1, "retries": {"total_max_attempts": 2}}
# Plus the reader's own work on a busy machine (the connection, the client), which no timeout bounds.
LOCAL_WORK_SECONDS = 1.0
TUNED_BOUND = StorageTimeouts(1, 1, 2).worst_case_seconds + LOCAL_WORK_SECONDS


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """The readers' libraries loaded before any clock starts: a first import takes seconds on a busy machine."""
    import deltalake  # noqa: F401
    from airflow.providers.amazon.aws.fs import s3  # noqa: F401

    from airflow_spark_streaming.hooks import checkpoint, delta, delta_history  # noqa: F401
    from airflow_spark_streaming.sensors import checkpoint as sensor  # noqa: F401
    from airflow_spark_streaming.triggers import checkpoint as trigger  # noqa: F401


class SilentEndpoint:
    """A TCP server on 127.0.0.1 that accepts every connection, keeps it open and never sends a byte."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent():
    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def hung_conn(silent, monkeypatch):
    """An ``aws`` connection to the silent endpoint; ``config_kwargs`` in its extra, as a user tunes it."""

    def define(config_kwargs: dict | None = None) -> str:
        extra = {"endpoint_url": silent.url, "region_name": "us-east-1"}
        if config_kwargs is not None:
            extra["config_kwargs"] = config_kwargs
        connection = {"conn_type": "aws", "login": "AKIAHUNGEXAMPLE", "password": SECRET, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_HUNG_S3", json.dumps(connection))
        return "hung_s3"

    return define


def _checkpoint_status(conn_id: str, url: str) -> None:
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    CheckpointHook(url, storage_conn_id=conn_id).get_status()


def _progress_sensor(conn_id: str, url: str) -> None:
    from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor

    # wait_for_checkpoint: a store that does not answer must not read as "no checkpoint yet"
    StreamingProgressSensor(task_id="progress", checkpoint=url, storage_conn_id=conn_id).poke({})


def _delta_stats(conn_id: str, url: str) -> None:
    from airflow_spark_streaming.hooks.delta import DeltaTableHook

    DeltaTableHook(url, storage_conn_id=conn_id).get_stats()


def _delta_version(conn_id: str, url: str) -> None:
    from airflow_spark_streaming.hooks.delta_history import DeltaHistoryHook

    DeltaHistoryHook(url, storage_conn_id=conn_id).latest_version()


def _object_storage_path(conn_id: str, url: str) -> None:
    list((StorageHook(conn_id).object_storage_path(url) / "_delta_log").iterdir())


READERS = {
    "checkpoint": _checkpoint_status,
    "progress sensor": _progress_sensor,
    "delta-rs table": _delta_stats,
    "delta-rs history": _delta_version,
    "ObjectStoragePath": _object_storage_path,
}
# s3fs readers: the number of connections shows that botocore's attempts are the only retries.
S3FS_READERS = {"checkpoint", "progress sensor", "ObjectStoragePath"}


def _failure(call) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        call()
    return raised.value, time.monotonic() - started


@pytest.mark.parametrize("reader", READERS)
def test_a_hung_endpoint_fails_each_reader_within_the_tuned_bound(hung_conn, silent, reader):
    conn_id, url = hung_conn(TUNED), "s3a://lake/orders"
    err, seconds = _failure(lambda: READERS[reader](conn_id, url))
    print(f"\n{reader}: {seconds:.2f}s, {len(silent.accepted)} connections: {err}")
    assert type(err) is StorageUnreachableError, repr(err)
    text = str(err)
    assert text.startswith(f"The storage endpoint {silent.url} of connection 'hung_s3' did not answer for 's3://lake/")
    assert "the request timed out after " in text and "(connect timeout 1s, request timeout 1s, 2 attempts)" in text
    assert "endpoint_url" in text and "read_timeout in config_kwargs" in text  # the fixes
    assert SECRET not in text and "AKIAHUNGEXAMPLE" not in text
    assert 2.0 <= seconds < TUNED_BOUND  # both attempts waited out their timeout, and nothing waited longer
    if reader in S3FS_READERS:
        assert len(silent.accepted) == 2  # was 25: s3fs's 5 passes of botocore's 5 attempts


def test_a_hung_endpoint_fails_a_checkpoint_read_within_the_default_bound(hung_conn, silent):
    """No config_kwargs: the defaults (5 s connect, 10 s per request, 2 attempts) end a read in about 20 s."""
    defaults = StorageTimeouts()
    assert (defaults.connect_seconds, defaults.request_seconds, defaults.max_attempts) == (5, 10, 2)
    assert defaults.worst_case_seconds == 31
    conn_id = hung_conn()
    err, seconds = _failure(lambda: _checkpoint_status(conn_id, "s3://lake/orders"))
    print(f"\ndefaults: {seconds:.2f}s: {err}")
    assert type(err) is StorageUnreachableError, repr(err)
    assert "(connect timeout 5s, request timeout 10s, 2 attempts)" in str(err)
    assert 20.0 <= seconds < defaults.worst_case_seconds + LOCAL_WORK_SECONDS


def test_the_deferred_progress_wait_ends_with_the_named_error(hung_conn, silent):
    """The trigger runs the same check: its event carries the error, raised again in the worker as the same class."""
    import asyncio

    from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState
    from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger

    trigger = CheckpointProgressTrigger("s3://lake/orders", {}, storage_conn_id=hung_conn(TUNED), poll_interval=60)

    async def first_event():
        return await anext(trigger.run())

    started = time.monotonic()
    event = asyncio.run(first_event())
    seconds = time.monotonic() - started
    verdict = Verdict(**event.payload)
    assert verdict.state == VerdictState.ERROR and verdict.error == "StorageUnreachableError", event.payload
    assert seconds < TUNED_BOUND
    with pytest.raises(StorageUnreachableError, match=f"storage endpoint {silent.url} of connection 'hung_s3'"):
        verdict.raise_for_state()


@pytest.mark.parametrize(
    ("config_kwargs", "expected"),
    [
        ({}, StorageTimeouts(5, 10, 2)),
        ({"connect_timeout": 2, "read_timeout": "30"}, StorageTimeouts(2, 30, 2)),
        ({"retries": {"total_max_attempts": 1}}, StorageTimeouts(5, 10, 1)),
        ({"retries": {"max_attempts": 3, "mode": "adaptive"}}, StorageTimeouts(5, 10, 4)),  # botocore: retries only
    ],
)
def test_the_connection_tunes_every_engine(hung_conn, config_kwargs, expected):
    hook = StorageHook(hung_conn(config_kwargs))
    assert hook.timeouts == expected
    options = hook.delta_storage_options()
    assert options["timeout"] == f"{expected.request_seconds:g}s"
    assert options["max_retries"] == str(expected.max_attempts - 1)
    assert hook.object_storage_options()["retries"]["total_max_attempts"] == expected.max_attempts
    s3a = hook.spark_conf().settings
    assert s3a["spark.hadoop.fs.s3a.connection.establish.timeout"] == f"{int(expected.connect_seconds * 1000)}ms"
    assert s3a["spark.hadoop.fs.s3a.attempts.maximum"] == str(expected.max_attempts)


@pytest.mark.parametrize(
    ("config_kwargs", "message"),
    [
        ({"read_timeout": 0}, "read_timeout=0 in its extra is not a number of seconds above 0"),
        ({"connect_timeout": "soon"}, "connect_timeout='soon' in its extra is not a number of seconds above 0"),
        (
            {"retries": {"total_max_attempts": 0}},
            r"retries\.total_max_attempts=0 in its extra is not a whole number of at least 1",
        ),
        (
            {"retries": {"max_attempts": 1.5}},
            r"retries\.max_attempts=1\.5 in its extra is not a whole number of at least 0",
        ),
    ],
)
def test_a_timeout_that_is_not_a_number_is_named(hung_conn, config_kwargs, message):
    with pytest.raises(
        StorageConnectionError, match=rf"^Connection 'hung_s3': config_kwargs {message}; fix it there\.$"
    ):
        StorageHook(hung_conn(config_kwargs)).delta_storage_options()


def test_an_endpoint_is_named_without_credentials_in_its_url(monkeypatch):
    from botocore.exceptions import ReadTimeoutError

    extra = {"endpoint_url": "http://keeper:pa55word@127.0.0.1:9", "region_name": "us-east-1"}
    monkeypatch.setenv("AIRFLOW_CONN_USERINFO_S3", json.dumps({"conn_type": "aws", "extra": extra}))
    named = StorageHook("userinfo_s3").translate(ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), "s3://lake/t")
    assert type(named) is StorageUnreachableError
    assert "storage endpoint http://127.0.0.1:9 of connection 'userinfo_s3'" in str(named)
    assert not re.search("keeper|pa55word", str(named))
