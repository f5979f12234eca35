"""StorageHook.translate names the connection's endpoint and the real cause of a failure (no store needed).

The failures are the exception shapes boto3, s3fs and delta-rs raise (see the integration tests in
tests/integration/s3 for the same against a real S3-compatible server).
"""

from __future__ import annotations

import json
import socket

import pytest

from airflow_spark_streaming.exceptions import (
    BucketNotFoundError,
    StorageAccessDeniedError,
    StorageUnreachableError,
)
from airflow_spark_streaming.hooks.storage import StorageHook, StorageTimeouts, classify_storage_failure

ENDPOINT = "http://127.0.0.1:9"
URL = "s3://lake/t"


@pytest.fixture
def local_conn(monkeypatch):
    extra = {"endpoint_url": ENDPOINT, "region_name": "us-east-1"}
    monkeypatch.setenv("AIRFLOW_CONN_LOCAL_S3", json.dumps({"conn_type": "aws", "login": "AKIAEXAMPLE",
                                                            "password": "s3cr3t-value", "extra": extra}))  # fmt: skip
    return "local_s3"


def _client_error(code: str, status: int, message: str):
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "ListObjectsV2",
    )


def _refused_by_boto():
    from botocore.exceptions import EndpointConnectionError
    from urllib3.exceptions import NewConnectionError

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as refused:
            raise NewConnectionError(None, f"Failed to establish a new connection: {refused}") from refused
    except NewConnectionError as wrapped:
        return EndpointConnectionError(endpoint_url=f"{ENDPOINT}/lake?list-type=2", error=wrapped)


DELTA_RS_REFUSED = (
    "Kernel error -> Generic S3 error\n  Error performing GET http://127.0.0.1:9/lake/t/_delta_log/_last_checkpoint "
    "in 102.622332ms, after 1 retries, max_retries\n 1, retry_timeout\n 70s  - HTTP error\n error sending request\n"
    " client error (Connect)\n tcp connect error\n Connection refused (os error 111)\n"
)
DELTA_RS_TIMEOUT = (
    "Kernel error -> Generic S3 error\n  Error performing GET http://127.0.0.1:9/lake/t/_delta_log/_last_checkpoint "
    "in 2.001150258s - HTTP error\n error sending request\n operation timed out\n"
)


def test_a_fresh_hook_names_the_connections_own_endpoint(local_conn):
    """DeltaHook and the maintenance hook translate with a new StorageHook: it must still know the endpoint."""
    err = StorageHook(local_conn).translate(_client_error("InvalidAccessKeyId", 403, "no such key"), URL)
    assert isinstance(err, StorageAccessDeniedError)
    assert f"The store at {ENDPOINT} refused the credentials of connection 'local_s3'" in str(err)
    assert "AWS default endpoint" not in str(err)
    assert "403 InvalidAccessKeyId: the store knows no such access key" in str(err)
    assert "s3cr3t-value" not in str(err)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("SignatureDoesNotMatch", "403 SignatureDoesNotMatch: the secret access key does not match"),
        ("InvalidAccessKeyId", "403 InvalidAccessKeyId: the store knows no such access key"),
        ("ExpiredToken", "the session token has expired"),
        ("AccessDenied", "403 AccessDenied: the key has no permission"),
    ],
)
def test_the_refusal_says_which_credential_is_wrong(local_conn, code, reason):
    err = StorageHook(local_conn).translate(_client_error(code, 403, "refused"), URL)
    assert isinstance(err, StorageAccessDeniedError) and reason in str(err) and ENDPOINT in str(err)


def test_an_aws_connection_without_endpoint_names_aws_s3_and_its_region(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_EU", json.dumps({"conn_type": "aws", "login": "AKIAEXAMPLE",
                                                          "password": "x", "extra": {"region_name": "eu-west-1"}}))  # fmt: skip
    err = StorageHook("aws_eu").translate(_client_error("NoSuchBucket", 404, "The bucket does not exist"), URL)
    assert isinstance(err, BucketNotFoundError)
    assert "does not exist at AWS S3 (https://s3.eu-west-1.amazonaws.com)" in str(err)


def test_a_missing_connection_still_gives_the_named_error(monkeypatch):
    err = StorageHook("no_such_conn").translate(_refused_by_boto(), URL)
    assert isinstance(err, StorageUnreachableError)
    assert "the endpoint of connection 'no_such_conn'" in str(err)


def test_a_refused_connection_is_named_refused_with_its_time_not_a_timeout(local_conn):
    err = StorageHook(local_conn).translate(_refused_by_boto(), URL, elapsed=0.12)
    assert isinstance(err, StorageUnreachableError)
    text = str(err)
    assert text.startswith(f"Connection refused by storage endpoint {ENDPOINT} of connection 'local_s3'")
    assert "after 0.1s" in text and "no server accepts connections at 127.0.0.1:9" in text
    assert "timed out" not in text and "within" not in text


def test_delta_rs_reports_its_own_elapsed_time(local_conn):
    refused = StorageHook(local_conn).translate(OSError(DELTA_RS_REFUSED), URL)
    assert str(refused).startswith("Connection refused by") and "after 0.1s" in str(refused)
    assert "timed out" not in str(refused)  # "retry_timeout 70s" in delta-rs's text is a setting, not the cause
    slow = StorageHook(local_conn, timeouts=StorageTimeouts(1, 2, 1)).translate(OSError(DELTA_RS_TIMEOUT), URL)
    assert isinstance(slow, StorageUnreachableError)
    assert "the request timed out after 2.0s (connect timeout 1s, request timeout 2s, 1 attempt)" in str(slow)


def test_timeouts_and_unknown_hosts_are_named(local_conn):
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    hook = StorageHook(local_conn)
    for err in (ConnectTimeoutError(endpoint_url=ENDPOINT), ReadTimeoutError(endpoint_url=ENDPOINT)):
        named = hook.translate(err, URL, elapsed=10.04)
        assert isinstance(named, StorageUnreachableError)
        assert "did not answer for 's3://lake/t': the request timed out after 10.0s" in str(named)
    try:
        raise OSError("Could not connect to the endpoint URL") from socket.gaierror(-2, "Name or service not known")
    except OSError as unresolved:
        named = hook.translate(unresolved, URL)
    assert isinstance(named, StorageUnreachableError) and "could not be resolved" in str(named)


def test_an_unreachable_endpoint_of_unknown_cause_claims_no_timeout(local_conn):
    named = StorageHook(local_conn).translate(OSError("error sending request"), URL)
    assert isinstance(named, StorageUnreachableError)
    assert "could not be reached" in str(named) and "timed out" not in str(named)


def test_spark_s3a_texts_are_still_classified():
    assert classify_storage_failure("java.net.ConnectException: Connection refused") is StorageUnreachableError
    assert classify_storage_failure("AccessDeniedException: 403 Forbidden") is StorageAccessDeniedError
