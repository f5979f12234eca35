"""Spark s3a://, Airflow ObjectStoragePath s3:// and delta-rs read and write one bucket, all from one aws connection.

The Spark side runs once per session in its own process (``spark_s3_probe.py``),
with hadoop-aws resolved through jvm.py and the S3A settings from StorageHook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import (
    BucketNotFoundError,
    StorageAccessDeniedError,
    StorageUnreachableError,
)
from airflow_spark_streaming.hooks.storage import StorageHook, classify_storage_failure
from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies
from devstack.process import free_port

PROBE = Path(__file__).with_name("spark_s3_probe.py")
PREFIX = "interop"


@pytest.fixture(scope="module")
def interop(s3_server, java_major, tmp_path_factory):
    """Prepare the bucket from Airflow and delta-rs, run the Spark probe, return (hook, bucket, result)."""
    import pandas as pd
    from deltalake import write_deltalake

    bucket = "interop-lake"
    s3_server.client().create_bucket(Bucket=bucket)
    conn_id = "interop_s3"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = s3_server.connection_uri()
    try:
        hook = StorageHook(conn_id)
        root = f"s3://{bucket}/{PREFIX}"
        hook.object_storage_path(f"{root}/from_airflow.txt").write_text("written by ObjectStoragePath")
        write_deltalake(
            f"{root}/rs_table", pd.DataFrame({"id": list(range(10))}), storage_options=hook.delta_storage_options()
        )
        deps = resolve_jvm_dependencies(s3=True, resolver="maven")
        creds = hook.credentials()
        plan = {
            "bucket": bucket,
            "prefix": PREFIX,
            "conf": {**deps.session_conf(), **hook.spark_conf().all()},
            "dead_endpoint": f"http://127.0.0.1:{free_port()}",
            "boto": {
                "endpoint_url": creds.endpoint_url,
                "aws_access_key_id": creds.access_key_id,
                "aws_secret_access_key": creds.secret_access_key,
                "region_name": creds.region,
            },
        }
        done = subprocess.run(
            [sys.executable, str(PROBE)], input=json.dumps(plan), capture_output=True, text=True, timeout=600,
            check=False,
        )  # fmt: skip
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert done.returncode == 0 and lines, done.stderr[-4000:]
        yield hook, bucket, json.loads(lines[-1].removeprefix("RESULT "))
    finally:
        os.environ.pop(f"AIRFLOW_CONN_{conn_id.upper()}", None)


def test_spark_reads_and_appends_the_delta_rs_table_and_delta_rs_reads_both(interop):
    from deltalake import DeltaTable

    hook, bucket, result = interop
    options = hook.delta_storage_options()
    assert result["rs_table_ids"] == list(range(10))
    rs_table = DeltaTable(f"s3://{bucket}/{PREFIX}/rs_table", storage_options=options)
    assert rs_table.version() == 1  # delta-rs wrote version 0, Spark appended version 1
    assert sorted(rs_table.to_pandas()["id"]) == list(range(20))
    spark_table = DeltaTable(f"s3://{bucket}/{PREFIX}/spark_table", storage_options=options)
    assert sorted(spark_table.to_pandas()["id"]) == list(range(100, 110))


def test_object_storage_path_and_spark_see_each_others_files(interop):
    hook, bucket, result = interop
    assert result["airflow_file"] == ["written by ObjectStoragePath"]
    assert {"from_airflow.txt", "rs_table", "spark_table"} <= set(result["listing"])
    listed = {p.name for p in hook.object_storage_path(f"s3a://{bucket}/{PREFIX}").iterdir()}
    assert {"from_airflow.txt", "rs_table", "spark_table"} <= listed
    log = hook.object_storage_path(f"s3://{bucket}/{PREFIX}/spark_table/_delta_log")
    assert (log / "00000000000000000000.json").exists()


def test_s3a_create_is_atomic_only_through_the_conditional_create_builder(interop):
    """Delta 4.4's S3 log store commits with create(path, false): not atomic across processes."""
    _, _, result = interop
    on, off = result["race_conditional"], result["race_plain"]
    assert on["error"] and "RemoteFileChangedException" in on["error"], on
    assert on["content"] == "other writer"  # the earlier writer's object survives
    assert off["error"] is None and off["content"] == "spark"  # the hazard: silently replaced


def test_the_lease_on_s3a_has_exactly_one_winner_and_refuses_a_store_without_conditional_create(interop):
    """Item 3 of the lake-is-untrusted issue, on real S3A (Hadoop 3.5.0) and the local S3 server."""
    _, _, result = interop
    lease = result["lease"]
    for trial, race in enumerate(lease["races"]):
        assert race["outcomes"] == [1, None], (trial, race)  # exactly one taker, every round
        assert race["proven"] == [True, True], (trial, race)  # each client proved If-None-Match first
        assert race["names"] == ["00000000000000000001"], (trial, race)  # one generation
        assert race["root"] == ["_leases"], (trial, race)  # no probe key left beside it
    assert "reports no fs.option.create.conditional.overwrite capability" in lease["refused"], lease
    assert "lease_consistency='best_effort'" in lease["refused"] and lease["names_after_refusal"] == [], lease
    assert lease["best_effort"] == 1 and "lease_consistency=best_effort" in lease["best_effort_warning"], lease
    print(f"lease on S3A: {len(lease['races'])} races and the refusal took {lease['seconds']}s")


def test_spark_failures_are_named_and_bounded(interop):
    hook, _, result = interop
    bound = hook.timeouts.worst_case_seconds
    assert classify_storage_failure(result["wrong_secret"]["error"]) is StorageAccessDeniedError, result
    assert classify_storage_failure(result["missing_bucket"]["error"]) is BucketNotFoundError, result
    assert classify_storage_failure(result["dead_endpoint"]["error"]) is StorageUnreachableError, result
    assert max(result[k]["seconds"] for k in ("wrong_secret", "missing_bucket", "dead_endpoint")) < bound, result


def test_delta_rs_and_spark_settings_keep_secrets_apart(interop):
    hook, _, _ = interop
    conf = hook.spark_conf()
    secret = hook.credentials().secret_access_key
    assert secret not in json.dumps(conf.settings)
    assert conf.secret_settings["spark.hadoop.fs.s3a.secret.key"] == secret
    assert secret not in repr(hook.credentials()) and secret not in repr(conf)
    started = time.monotonic()
    hook.check(f"s3a://{interop[1]}/{PREFIX}")
    assert time.monotonic() - started < 5
