"""A store that accepts connections and never answers: every S3 reader fails in bounded time, named.

The endpoint is a real local socket that accepts and never replies; the readers are the real ones
(s3fs through the Amazon provider, delta-rs), so the time measured is their own timeouts and retries.
Before the bound, s3fs's own 5 retries of botocore's own 5 attempts took 416 s to fail with 1 s, 2 s
and 1 attempt configured (the options never reached s3fs), and a checkpoint read took minutes more. Without a
storage_conn_id a checkpoint read went through Airflow's own s3fs filesystem and still read after 120 s; now it
takes the same bounded, named path (StorageHook(None): boto's default chain and environment).
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


# -- no storage_conn_id: boto's default credential chain and environment --------------------------------------

ENV_KEY, ENV_SECRET = "AKIAENVEXAMPLE", "env-s3cr3t-value"
NO_CONNECTION = "used with the default AWS credentials (no storage_conn_id)"


@pytest.fixture
def default_chain(monkeypatch, tmp_path):
    """The worker's environment as boto reads it without a connection: keys and endpoint in environment
    variables, and nothing else of the machine's (no config files, no instance metadata, no roles)."""
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))

    def endpoint(url: str | None, variable: str = "AWS_ENDPOINT_URL_S3") -> None:
        if url is not None:
            monkeypatch.setenv(variable, url)

    return endpoint


def _assert_no_secret(text: str) -> None:
    assert ENV_SECRET not in text and ENV_KEY not in text


def test_a_hung_endpoint_fails_a_checkpoint_read_without_a_connection_within_the_default_bound(default_chain, silent):
    """No storage_conn_id, the endpoint from AWS_ENDPOINT_URL_S3: the same defaults as a connection, the same
    named error. Before, Airflow's own s3fs filesystem (s3fs's 5 passes of botocore's attempts, 60 s each) read on
    for many minutes."""
    default_chain(silent.url)
    err, seconds = _failure(lambda: _checkpoint_status(None, "s3a://lake/orders"))
    print(f"\nno connection, defaults: {seconds:.2f}s, {len(silent.accepted)} connections: {err}")
    assert type(err) is StorageUnreachableError, repr(err)
    text = str(err)
    assert text.startswith(f"The storage endpoint {silent.url} {NO_CONNECTION} did not answer for 's3://lake/"), text
    assert "(connect timeout 5s, request timeout 10s, 2 attempts)" in text
    assert "AWS_ENDPOINT_URL_S3" in text and "storage_conn_id" in text and "config_kwargs" in text  # the fixes
    _assert_no_secret(text)
    assert 20.0 <= seconds < StorageTimeouts().worst_case_seconds + LOCAL_WORK_SECONDS
    assert len(silent.accepted) == 2  # botocore's 2 attempts, s3fs's own loop once


def _closed_port_url() -> str:
    """An endpoint nobody listens on: a port the kernel just gave out, closed again."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_refused_endpoint_without_a_connection_is_named_quickly(default_chain):
    url = _closed_port_url()
    default_chain(url, "AWS_ENDPOINT_URL")  # the global variable serves S3 too
    err, seconds = _failure(lambda: _checkpoint_status(None, "s3://lake/orders"))
    print(f"\nno connection, refused: {seconds:.2f}s: {err}")
    assert type(err) is StorageUnreachableError, repr(err)
    text = str(err)
    assert text.startswith(f"Connection refused by storage endpoint {url} {NO_CONNECTION} for 's3://lake/orders"), text
    assert f"no server accepts connections at {url.removeprefix('http://')}" in text
    _assert_no_secret(text)
    assert seconds < 5.0  # two refused attempts and one back-off of at most 1 s


class AnsweringStore:
    """A tiny S3 stand-in on 127.0.0.1 that answers every request with one S3 error (code and status)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
            "<RequestId>stub</RequestId></Error>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("status", "code", "message", "expected", "named"),
    [
        (404, "NoSuchBucket", "The specified bucket does not exist", "BucketNotFoundError", "Bucket 'lake' of "),
        (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
         "StorageAccessDeniedError", "refused the default AWS credentials (no storage_conn_id)"),
    ],
)  # fmt: skip
def test_a_store_that_refuses_a_read_without_a_connection_is_named_quickly(
    default_chain, status, code, message, expected, named
):
    store = AnsweringStore(status, code, message)
    try:
        default_chain(store.url)
        err, seconds = _failure(lambda: _checkpoint_status(None, "s3://lake/orders"))
    finally:
        store.close()
    print(f"\nno connection, {code}: {seconds:.2f}s: {err}")
    assert type(err).__name__ == expected, repr(err)
    text = str(err)
    assert named in text and store.url in text and "storage_conn_id" in text
    _assert_no_secret(text)
    assert seconds < 5.0


def test_no_connection_reads_no_connection_and_names_the_environments_endpoint(default_chain, monkeypatch):
    """StorageHook(None): boto's chain with the default bounds; get_connection is never asked (for None or
    'aws_default'), and the endpoint is named without the user info an environment URL may carry."""

    def no_connection_lookup(cls, conn_id):
        pytest.fail(f"get_connection({conn_id!r}) was called for a hook without a connection")

    monkeypatch.setattr(StorageHook, "get_connection", classmethod(no_connection_lookup))
    default_chain("http://keeper:pa55word@127.0.0.1:9", "AWS_ENDPOINT_URL")
    hook = StorageHook(None)
    assert hook.timeouts == StorageTimeouts()
    assert hook.endpoint() == "http://127.0.0.1:9"
    creds = hook.credentials()
    assert (creds.conn_id, creds.region, creds.access_key_id) == (None, "eu-west-1", ENV_KEY)
    assert creds.secret_access_key == ENV_SECRET and ENV_SECRET not in repr(creds)
    fs = hook.object_storage_fs()
    assert fs.fs.retries == 1 and "no storage_conn_id" in repr(fs)

    from airflow.sdk.log import _secrets_masker

    shown = str(_secrets_masker().redact(f"secret {ENV_SECRET} and endpoint password pa55word"))
    assert ENV_SECRET not in shown and "pa55word" not in shown


def test_no_connection_and_no_endpoint_names_aws_s3_in_the_region(default_chain):
    from botocore.exceptions import ReadTimeoutError

    default_chain(None)
    hook = StorageHook(None)
    assert hook.endpoint() == "AWS S3 (https://s3.eu-west-1.amazonaws.com)"
    named = hook.translate(ReadTimeoutError(endpoint_url="https://lake.s3.eu-west-1.amazonaws.com"), "s3://lake/t")
    assert type(named) is StorageUnreachableError
    assert f"storage endpoint AWS S3 (https://s3.eu-west-1.amazonaws.com) {NO_CONNECTION} did not answer" in str(named)
    assert "connection None" not in str(named)
