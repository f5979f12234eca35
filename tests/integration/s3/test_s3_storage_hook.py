"""StorageHook against the real local S3 server: named errors in bounded time, atomic conditional create."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest

from airflow_spark_streaming.exceptions import (
    BucketNotFoundError,
    StorageAccessDeniedError,
    StorageConnectionError,
    StorageUnreachableError,
)
from airflow_spark_streaming.hooks.storage import StorageHook, StorageTimeouts

BOUND = StorageTimeouts().worst_case_seconds


def _timed(call):
    started = time.monotonic()
    try:
        call()
    except Exception as err:
        return err, time.monotonic() - started
    return None, time.monotonic() - started


def _delta_open(hook, url):
    from deltalake import DeltaTable

    try:
        DeltaTable(url, storage_options=hook.delta_storage_options())
    except Exception as err:
        raise hook.translate(err, url) from err  # delta-rs says itself how long the failed request took


def _object_storage_list(hook, url):
    path = hook.object_storage_path(url)
    started = time.monotonic()
    try:
        list(path.iterdir())
    except Exception as err:
        raise hook.translate(err, url, elapsed=time.monotonic() - started) from err


ENGINES = {"probe": lambda h, u: h.check(u), "delta-rs": _delta_open, "ObjectStoragePath": _object_storage_list}


@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_secret_is_access_denied_within_seconds(storage_conn, s3_server, s3_bucket, engine):
    hook = StorageHook(storage_conn("bad_secret", password="not-the-secret"))
    err, seconds = _timed(lambda: ENGINES[engine](hook, f"s3://{s3_bucket}/t"))
    assert isinstance(err, StorageAccessDeniedError), repr(err)
    assert str(err).startswith(f"The store at {s3_server.endpoint_url} refused the credentials of connection "
                               f"'bad_secret' for 's3://{s3_bucket}/t' (403 SignatureDoesNotMatch: ")  # fmt: skip
    assert "login/password" in str(err) and "AWS default endpoint" not in str(err)
    assert "not-the-secret" not in str(err)
    assert seconds < BOUND


@pytest.mark.parametrize("engine", ENGINES)
def test_unknown_key_is_access_denied(storage_conn, s3_server, s3_bucket, engine):
    hook = StorageHook(storage_conn("bad_key", login="AKIAUNKNOWNUNKNOWN00"))
    err, _ = _timed(lambda: ENGINES[engine](hook, f"s3://{s3_bucket}/t"))
    assert isinstance(err, StorageAccessDeniedError), repr(err)
    assert f"The store at {s3_server.endpoint_url} refused" in str(err)
    assert "(403 InvalidAccessKeyId: the store knows no such access key)" in str(err)


def test_a_hook_made_only_to_name_the_error_names_the_connections_endpoint(storage_conn, s3_server, s3_bucket):
    """DeltaHook and the maintenance-request hook translate a failure with a new StorageHook (no credentials
    resolved): the message still names the endpoint of the connection, not AWS."""
    from deltalake import DeltaTable

    conn_id, url = storage_conn("refused_key", password="not-the-secret"), f"s3://{s3_bucket}/t"
    with pytest.raises(OSError) as raw:
        DeltaTable(url, storage_options=StorageHook(conn_id).delta_storage_options())
    named = StorageHook(conn_id).translate(raw.value, url)
    assert isinstance(named, StorageAccessDeniedError), repr(raw.value)
    assert str(named).startswith(f"The store at {s3_server.endpoint_url} refused the credentials")
    assert "AWS" not in str(named)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_port_nobody_listens_on_is_a_refused_connection_not_a_timeout(storage_conn, engine):
    endpoint = f"http://127.0.0.1:{_free_port()}"
    hook = StorageHook(storage_conn("nobody_listens", extra={"endpoint_url": endpoint}))
    err, seconds = _timed(lambda: ENGINES[engine](hook, "s3://lake/t"))
    print(f"\n{engine}: {seconds:.2f}s {err}")
    assert isinstance(err, StorageUnreachableError), repr(err)
    text = str(err)
    assert text.startswith(f"Connection refused by storage endpoint {endpoint} of connection 'nobody_listens' "
                           "for 's3://lake/t' after ")  # fmt: skip
    assert f"no server accepts connections at {endpoint.removeprefix('http://')}" in text
    elapsed = float(re.search(r" after ([0-9.]+)s", text).group(1))
    assert elapsed <= seconds + 0.05  # the time the call took, not a configured bound
    assert "timed out" not in text and "within" not in text and f"{BOUND:g}s" not in text  # delta-rs's retry_timeout
    assert seconds < BOUND


@pytest.fixture
def silent_endpoint():
    """An endpoint that accepts connections and never answers (a hung store)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("engine", ENGINES)
def test_an_endpoint_that_never_answers_is_a_timeout(storage_conn, silent_endpoint, engine):
    timeouts = StorageTimeouts(connect_seconds=1, request_seconds=2, max_attempts=1)
    hook = StorageHook(storage_conn("never_answers", extra={"endpoint_url": silent_endpoint}), timeouts=timeouts)
    err, seconds = _timed(lambda: ENGINES[engine](hook, "s3://lake/t"))
    print(f"\n{engine}: {seconds:.2f}s {err}")
    assert isinstance(err, StorageUnreachableError), repr(err)
    text = str(err)
    assert text.startswith(f"The storage endpoint {silent_endpoint} of connection 'never_answers' did not answer "
                           "for 's3://lake/t': the request timed out after ")  # fmt: skip
    assert "(connect timeout 1s, request timeout 2s, 1 attempt)" in text and "refused" not in text
    assert 2 <= float(re.search(r" after ([0-9.]+)s", text).group(1)) <= seconds + 0.05
    assert seconds < timeouts.worst_case_seconds  # s3fs (ObjectStoragePath) adds no retries of its own


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_bucket_is_named(storage_conn, engine):
    hook = StorageHook(storage_conn())
    err, seconds = _timed(lambda: ENGINES[engine](hook, "s3://no-such-bucket-here/t"))
    assert isinstance(err, BucketNotFoundError), repr(err)
    assert "'no-such-bucket-here'" in str(err) and "create it" in str(err)
    assert seconds < BOUND


@pytest.mark.parametrize("engine", ENGINES)
def test_stopped_server_is_unreachable_within_the_bound(tmp_path, monkeypatch, engine):
    from devstack import s3

    server = s3.start(tmp_path / "s3", port=0)
    server.client().create_bucket(Bucket="gone")
    monkeypatch.setenv("AIRFLOW_CONN_GONE_S3", server.connection_uri())
    hook = StorageHook("gone_s3", timeouts=StorageTimeouts(connect_seconds=2, request_seconds=5, max_attempts=2))
    hook.check("s3://gone/t")
    s3.stop(tmp_path / "s3")
    err, seconds = _timed(lambda: ENGINES[engine](hook, "s3://gone/t"))
    assert isinstance(err, StorageUnreachableError), repr(err)
    assert server.endpoint_url in str(err) and "endpoint_url" in str(err)
    assert str(err).startswith("Connection refused by storage endpoint")
    assert seconds < hook.timeouts.worst_case_seconds


def test_missing_or_wrong_connection_is_named(monkeypatch):
    with pytest.raises(StorageConnectionError, match="'nope' does not exist.*aws"):
        StorageHook("nope").credentials()
    monkeypatch.setenv("AIRFLOW_CONN_NOT_AWS", json.dumps({"conn_type": "kafka", "extra": {}}))
    with pytest.raises(StorageConnectionError, match="type 'kafka'.*'aws' connection"):
        StorageHook("not_aws").credentials()
    with pytest.raises(StorageConnectionError, match="not an S3 path"):
        StorageHook("nope").check("/tmp/local")


def test_raw_storage_options_override_the_connection(storage_conn):
    hook = StorageHook(storage_conn(), storage_options={"AWS_REGION": "eu-west-1", "timeout": "3s"})
    options = hook.delta_storage_options()
    assert options["AWS_REGION"] == "eu-west-1" and options["timeout"] == "3s"
    assert options["AWS_ALLOW_HTTP"] == "true" and options["conditional_put"] == "etag"
    assert "AWS_S3_ALLOW_UNSAFE_RENAME" not in options


def test_secrets_are_registered_with_the_masker(storage_conn, s3_server):
    from airflow.sdk.log import _secrets_masker

    hook = StorageHook(storage_conn())
    hook.credentials()
    secret = s3_server.secret_access_key
    assert secret not in str(_secrets_masker().redact(f"key={secret}"))


def test_conditional_create_lets_exactly_one_of_many_racing_writers_win(s3_server, s3_bucket):
    """If-None-Match: * on the local server: what the checkpoint lease will rely on."""
    from botocore.exceptions import ClientError

    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="lease", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=s3_bucket, Key="lease", Body=b"second", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert client.get_object(Bucket=s3_bucket, Key="lease")["Body"].read() == b"first"

    writers, rounds, doubles = 6, 15, []
    clients = [s3_server.client() for _ in range(writers)]
    for n in range(rounds):
        wins, barrier = [], threading.Barrier(writers)

        def create(i, n=n, wins=wins, barrier=barrier):
            barrier.wait()
            try:
                clients[i].put_object(Bucket=s3_bucket, Key=f"race/{n}", Body=str(i).encode(), IfNoneMatch="*")
                wins.append(i)
            except ClientError as err:
                assert err.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict")

        threads = [threading.Thread(target=create, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        body = client.get_object(Bucket=s3_bucket, Key=f"race/{n}")["Body"].read().decode()
        if len(wins) != 1 or body != str(wins[0]):
            doubles.append((n, wins, body))
    assert doubles == []


def test_two_delta_rs_writers_never_overwrite_each_others_commits(storage_conn, s3_bucket):
    """delta-rs commits N.json with a put-if-absent copy: concurrent appends all land, versions contiguous."""
    import pandas as pd
    from deltalake import DeltaTable, write_deltalake

    hook = StorageHook(storage_conn())
    url = f"s3://{s3_bucket}/concurrent"
    options = hook.delta_storage_options()
    write_deltalake(url, pd.DataFrame({"writer": [-1], "n": [-1]}), storage_options=options)
    errors = []

    def append(writer):
        for n in range(6):
            try:
                write_deltalake(url, pd.DataFrame({"writer": [writer], "n": [n]}), mode="append",
                                storage_options=options)  # fmt: skip
            except Exception as err:  # a lost race must surface, never vanish
                errors.append(repr(err))

    threads = [threading.Thread(target=append, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    table = DeltaTable(url, storage_options=options)
    rows = table.to_pandas()
    committed = len(rows) - 1
    assert committed + len(errors) == 12
    assert table.version() == committed  # one version per committed append, none overwritten
    assert sorted(h["version"] for h in table.history()) == list(range(committed + 1))
    assert committed >= 10, errors


@pytest.fixture
def environment_credentials(s3_server, monkeypatch, tmp_path):
    """The worker's environment as boto reads it without an Airflow connection: the server's endpoint and keys in
    environment variables, nothing else of the machine's (no config files, no instance metadata)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return monkeypatch


def test_a_checkpoint_read_without_a_connection_uses_the_environment_and_names_its_refusals(
    s3_server, s3_bucket, environment_credentials
):
    """No storage_conn_id: the keys and endpoint come from the environment, through the same bounded, named reads."""
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    client = s3_server.client()
    files = {
        "metadata": '{"id":"0b6f9d3e-2c1a-4a57-9a43-7d2f0f6f1c11"}',
        "offsets/0": 'v1\n{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":{}}\n{"orders":{"0":7,"1":5}}',
        "offsets/1": 'v1\n{"batchWatermarkMs":0,"batchTimestampMs":2,"conf":{}}\n{"orders":{"0":9,"1":8}}',
        "commits/0": 'v1\n{"nextBatchWatermarkMs":0}',
        "commits/1": 'v1\n{"nextBatchWatermarkMs":0}',
    }
    for name, text in files.items():
        client.put_object(Bucket=s3_bucket, Key=f"ckpt/{name}", Body=text.encode())

    status = CheckpointHook(f"s3a://{s3_bucket}/ckpt").get_status(include_state=False)
    assert (status.query_id, status.latest_committed_batch) == ("0b6f9d3e-2c1a-4a57-9a43-7d2f0f6f1c11", 1)
    assert [(s.kind, s.offset) for s in status.committed_sources] == [("kafka", {"orders": {"0": 9, "1": 8}})]

    err, seconds = _timed(lambda: CheckpointHook("s3://no-such-bucket-here/ckpt").get_status())
    assert isinstance(err, BucketNotFoundError), repr(err)
    assert "no storage_conn_id" in str(err) and seconds < BOUND

    wrong = "wrong-" + s3_server.secret_access_key[::-1]
    environment_credentials.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    err, seconds = _timed(lambda: CheckpointHook(f"s3://{s3_bucket}/ckpt").get_status())
    assert isinstance(err, StorageAccessDeniedError), repr(err)
    assert str(err).startswith(f"The store at {s3_server.endpoint_url} refused the default AWS credentials "
                               "(no storage_conn_id)"), str(err)  # fmt: skip
    assert wrong not in str(err) and s3_server.secret_access_key not in str(err) and seconds < BOUND
