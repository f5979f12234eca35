"""A live stream on S3: the lease is exclusive, and maintenance goes through the stream's own driver or is refused.

Two stream runners are spark-submitted at the same moment on one ``s3a://``
checkpoint; exactly one runs. That one appends about twice a second to an S3
Delta table while OPTIMIZE is handed to it. Then: 0 rows lost or duplicated,
contiguous versions, the stream still committing after; and every unprotected
configuration is refused before any file is written.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from airflow_spark_streaming.exceptions import UnprotectedConcurrentWriteError
from airflow_spark_streaming.hooks.control_key import ControlKeyHook
from airflow_spark_streaming.hooks.maintenance_request import MaintenanceRequestHook
from airflow_spark_streaming.hooks.storage import StorageHook
from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator
from airflow_spark_streaming.runner.protocol import MAINTENANCE_DIR, MAINTENANCE_HANDOFF_FILE
from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies
from tests.support.runner_drivers import driver_log, kill_drivers, spawn_stream_runner, wait_while_running


def _spark_submit(spec: dict, properties, tmp_path, name: str):
    return spawn_stream_runner(spec, tmp_path, name, "--master", "local[2]", "--properties-file", str(properties))


def _keys(client, bucket: str) -> set[str]:
    keys, token = set(), None
    while True:
        page = client.list_objects_v2(Bucket=bucket, **({"ContinuationToken": token} if token else {}))
        keys |= {o["Key"] for o in page.get("Contents", [])}
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


@pytest.fixture
def s3_stream_properties(s3_server, storage_conn, java_major, tmp_path):
    """A 0600 spark-submit properties file: Delta + hadoop-aws jars and the connection's S3A settings."""
    conn_id = storage_conn("stream_s3")
    hook = StorageHook(conn_id)
    deps = resolve_jvm_dependencies(s3=True, resolver="maven")
    conf = {**deps.session_conf(), **hook.spark_conf().all(), "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "1", "spark.databricks.delta.snapshotPartitions": "1"}  # fmt: skip
    properties = tmp_path / "spark.properties"
    properties.touch(mode=0o600)
    properties.write_text("".join(f"{k} {v}\n" for k, v in conf.items()))
    return conn_id, hook, properties


def _hostile_lake_on_s3(client, bucket, conn_id, checkpoint, control, table_uri, options) -> None:
    """What a principal that can only write to the bucket plants beside the live stream is refused, and nothing
    happens: a lease naming a sentinel process (beside another checkpoint) kills nothing, and VACUUM RETAIN 0
    requests for the stream's driver, unsigned or signed with another key, are refused by the driver itself."""
    import json
    import socket
    import subprocess
    import uuid

    from deltalake import DeltaTable

    from airflow_spark_streaming.exceptions import UntrustedControlRecordError
    from airflow_spark_streaming.operators.stop import StopStreamingQueryOperator
    from airflow_spark_streaming.runner import control_auth, protocol

    def put(key: str, record: dict) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())

    def table_files() -> set[str]:
        return {k for k in _keys(client, bucket) if k.startswith("orders/") and "/_delta_log/" not in k}

    files_before = table_files()
    sentinel = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        other = f"s3a://{bucket}/_checkpoints/planted"
        put(f"_checkpoints/planted/{protocol.LEASE_DIR}/{1:020d}",
            {"version": 1, "generation": 1, "owner": "x", "heartbeat_ms": int(time.time() * 1000), "ttl_ms": 600_000,
             "released": False, "host": socket.gethostname(), "pid": sentinel.pid, "app_id": "app-planted",
             "submission": uuid.uuid4().hex,
             "pid_start": control_auth.process_start_ticks(sentinel.pid),
             "checkpoint": protocol.location_key(other)})  # fmt: skip
        stop = StopStreamingQueryOperator(task_id="stop", checkpoint=other, storage_conn_id=conn_id, timeout=1,
                                          poll_interval=0.2)  # fmt: skip
        with pytest.raises(UntrustedControlRecordError, match="unsigned"):
            stop.execute({})
        assert sentinel.poll() is None, "a planted lease on S3 killed a process"

        handoff = control.get_handoff()
        now_ms = int(time.time() * 1000)
        vacuum = {"action": "vacuum", "table": table_uri.replace("s3://", "s3a://"), "retain_hours": 0, "mode": "full",
                  "dry_run": False, "retention_override": True, "expires_at_ms": now_ms + 300_000}  # fmt: skip
        foreign = control_auth.ControlKey.from_text("f" * 32, source="another deployment")
        planted = {}
        for key, match in ((None, "unsigned"), (foreign, "does not match")):
            request_id = uuid.uuid4().hex
            body = {**vacuum, "request_id": request_id}
            record = key.sign(control_auth.MAINTENANCE_REQUEST, body, scope=handoff["app_id"]) if key else body
            put(f"_checkpoints/orders/{MAINTENANCE_DIR}/{protocol.maintenance_request_file(request_id)}", record)
            planted[request_id] = match
        wait_while_running(lambda: all(control.get_result(i) for i in planted), 180, "the driver's refusals",
                           interval=0.5)  # fmt: skip
        for request_id, match in planted.items():
            result = control.get_result(request_id)  # signed by the runner
            assert result["status"] == "refused" and match in result["error"], (match, result)
        assert files_before <= table_files(), "table files were deleted"
        table = DeltaTable(table_uri, storage_options=options)
        assert not [c for c in table.history(table.version() + 1) if "VACUUM" in c["operation"]]
    finally:
        sentinel.kill()
        sentinel.wait()
        for key in [k for k in _keys(client, bucket) if k.startswith("_checkpoints/planted/")]:
            client.delete_object(Bucket=bucket, Key=key)


def test_one_runner_on_an_s3_checkpoint_and_compaction_through_it(s3_server, s3_bucket, s3_stream_properties, tmp_path):
    conn_id, hook, properties = s3_stream_properties
    client = s3_server.client()
    table, checkpoint = f"s3a://{s3_bucket}/orders", f"s3a://{s3_bucket}/_checkpoints/orders"
    spec = {
        "query_name": "rate_to_s3",
        "checkpoint_location": checkpoint,
        "source": {"format": "rate", "options": {"rowsPerSecond": 20, "numPartitions": 1}},
        "sink": {"format": "delta", "path": table},
        "trigger": {"processing_time": "500 milliseconds"},
        "lease_ttl_seconds": 10,
        # The session's control key, as the submit operator hands it over: the runner signs its hand-off and
        # results and runs only requests signed with it.
        "control_key": ControlKeyHook().get_key().secret.decode(),
    }
    options = hook.delta_storage_options()
    control = MaintenanceRequestHook(checkpoint.replace("s3a://", "s3://"), conn_id)
    # Item 5: two runners at the same moment on one s3a:// checkpoint; the conditional create picks one.
    first, second = (
        _spark_submit(spec, properties, tmp_path, "first"),
        _spark_submit(spec, properties, tmp_path, "second"),
    )
    try:
        wait_while_running(
            lambda: first.poll() is not None or second.poll() is not None, 600, "one runner to give way", interval=0.5
        )
        loser, winner = (first, second) if first.poll() is not None else (second, first)
        assert loser.wait(30) == 3, driver_log(loser)[-3000:]
        assert "refusing to start: the checkpoint is in use by Spark application" in driver_log(loser)
        leases = [k for k in _keys(client, s3_bucket) if "/_leases/" in k]
        assert len(leases) == 1, leases  # one generation: the loser's create never landed
        assert not [k for k in _keys(client, s3_bucket) if ".lease-probe." in k]  # both proofs cleaned up
        assert "lease_consistency=best_effort" not in driver_log(winner)  # the conditional create was proven

        from deltalake import DeltaTable

        def versions() -> int:
            try:
                return DeltaTable(table.replace("s3a://", "s3://"), storage_options=options).version()
            except Exception:  # noqa: BLE001 - not created yet
                return -1

        wait_while_running(
            lambda: versions() >= 8 and control.get_handoff() is not None, 900, "eight commits", winner, interval=0.5
        )

        # Unprotected configurations are refused before anything is written.
        before = _keys(client, s3_bucket)
        common = {"table_uri": table.replace("s3a://", "s3://"), "storage_options": options}
        with pytest.raises(UnprotectedConcurrentWriteError, match="knows of no writer"):
            DeltaOptimizeOperator(task_id="unnamed", **common)  # no writer named nor ruled out: refused when parsed
        for refused, match in (
            (DeltaOptimizeOperator(task_id="native", engine="native", stream_checkpoint=checkpoint, **common),
             "delta-rs cannot commit safely"),
            (DeltaOptimizeOperator(task_id="mistaken", no_concurrent_writers=True, **common),
             "no_concurrent_writers=True, but a stream committed"),  # the look-back catches a wrong statement
        ):  # fmt: skip
            refused.storage_conn_id = conn_id
            with pytest.raises(UnprotectedConcurrentWriteError, match=match):
                refused.execute({})
        new = _keys(client, s3_bucket) - before
        assert not [k for k in new if MAINTENANCE_DIR in k], new
        newest = DeltaTable(common["table_uri"], storage_options=options)
        assert {c["operation"] for c in newest.history(newest.version() + 1)} == {"STREAMING UPDATE"}

        _hostile_lake_on_s3(client, s3_bucket, conn_id, checkpoint, control, common["table_uri"], options)

        # The hand-off: the stream's driver runs the OPTIMIZE between its batches.
        optimize = DeltaOptimizeOperator(task_id="compact", stream_checkpoint=checkpoint, **common)
        optimize.storage_conn_id = conn_id
        started = time.monotonic()
        result = optimize.execute({})
        took = time.monotonic() - started
        assert result["engine"] == "spark" and result["version_after"] > result["version_before"], result
        assert int(result["raw"]["numRemovedFiles"]) > 1, result
        optimize_version = next(
            c["version"] for c in DeltaTable(common["table_uri"], storage_options=options).history(50)
            if c["operation"] == "OPTIMIZE"
        )  # fmt: skip
        wait_while_running(
            lambda: versions() >= optimize_version + 3, 300, "the stream to keep committing", winner, interval=0.5
        )

        # A VACUUM handed off too (lite: only the files OPTIMIZE removed, never a batch in flight); what it
        # deleted comes from the VACUUM END commit the runner's Spark logged, and is what left the bucket.
        data = lambda: {k for k in _keys(client, s3_bucket) if k.startswith("orders/") and "/_delta_log/" not in k}  # noqa: E731
        before_vacuum = data()
        vacuum = DeltaVacuumOperator(task_id="vacuum", stream_checkpoint=checkpoint, retention=timedelta(0),
                                     i_understand_this_can_break_readers=True, **common)  # fmt: skip
        vacuum.storage_conn_id = conn_id
        vacuumed = vacuum.execute({})
        assert vacuumed["engine"] == "spark" and vacuumed["files_to_delete"] > 1, vacuumed
        assert vacuumed["files_deleted"] == len(before_vacuum - data()) == vacuumed["files_to_delete"], vacuumed
        vacuum_version = versions()
        wait_while_running(
            lambda: versions() >= vacuum_version + 2, 300, "the stream to commit after the VACUUM", winner, interval=0.5
        )

        # A runner that takes no requests (simulated by withdrawing its hand-off record) is refused.
        client.delete_object(Bucket=s3_bucket, Key=f"_checkpoints/orders/{MAINTENANCE_DIR}/{MAINTENANCE_HANDOFF_FILE}")
        no_handoff = DeltaOptimizeOperator(task_id="user_app", stream_checkpoint=checkpoint, **common)
        no_handoff.storage_conn_id = conn_id
        with pytest.raises(UnprotectedConcurrentWriteError, match="does not take maintenance requests"):
            no_handoff.execute({})

        control.request_stop()
        assert winner.wait(300) == 0, driver_log(winner)[-3000:]
    finally:
        kill_drivers(first, second)

    final = DeltaTable(table.replace("s3a://", "s3://"), storage_options=options)
    history = final.history(final.version() + 1)
    operations = [c["operation"] for c in sorted(history, key=lambda c: c["version"])]
    assert operations.count("OPTIMIZE") == 1 and operations[-1] == "STREAMING UPDATE", operations
    assert operations.count("VACUUM START") == operations.count("VACUUM END") == 1, operations
    commits = sorted(int(k.rsplit("/", 1)[1][:20]) for k in _keys(client, s3_bucket)
                     if k.startswith("orders/_delta_log/") and k.endswith(".json"))  # fmt: skip
    assert commits == list(range(final.version() + 1))  # contiguous: no commit overwrote another
    values = sorted(final.to_pandas()["value"])
    assert values == list(range(len(values))), "rows lost or duplicated"  # the rate source counts 0, 1, 2, ...
    print(f"handed-off OPTIMIZE took {took:.1f}s; {len(values)} rows, {len(commits)} commits")
