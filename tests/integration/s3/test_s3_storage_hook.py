"""StorageHook against the real local S3 server: named errors in bounded time, atomic conditional create."""

from __future__ import annotations

import json
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
        raise hook.translate(err, url) from err


def _object_storage_list(hook, url):
    try:
        list(hook.object_storage_path(url).iterdir())
    except Exception as err:
        raise hook.translate(err, url) from err


ENGINES = {"probe": lambda h, u: h.check(u), "delta-rs": _delta_open, "ObjectStoragePath": _object_storage_list}


@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_secret_is_access_denied_within_seconds(storage_conn, s3_bucket, engine):
    hook = StorageHook(storage_conn("bad_secret", password="not-the-secret"))
    err, seconds = _timed(lambda: ENGINES[engine](hook, f"s3://{s3_bucket}/t"))
    assert isinstance(err, StorageAccessDeniedError), repr(err)
    assert "bad_secret" in str(err) and "login/password" in str(err)
    assert "not-the-secret" not in str(err)
    assert seconds < BOUND


@pytest.mark.parametrize("engine", ENGINES)
def test_unknown_key_is_access_denied(storage_conn, s3_bucket, engine):
    hook = StorageHook(storage_conn("bad_key", login="AKIAUNKNOWNUNKNOWN00"))
    err, _ = _timed(lambda: ENGINES[engine](hook, f"s3://{s3_bucket}/t"))
    assert isinstance(err, StorageAccessDeniedError), repr(err)


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
