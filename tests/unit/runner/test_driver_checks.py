"""The driver side of the control channel: only signed, fresh, unanswered requests run, and the job re-checks them.

The maintenance watcher and the session-level Delta maintenance it shares with the spark-submit job
(``delta/spark_maintenance.py``) run here against a stand-in for Spark's session and Hadoop's file system, so every refusal is checked without a JVM: what reached
``spark.sql``, what was written back, and the session's settings afterwards.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pytest

from airflow_spark_streaming.delta import spark_maintenance
from airflow_spark_streaming.delta.sql import partition_filters_sql
from airflow_spark_streaming.hooks.control_key import ControlKeyHook
from airflow_spark_streaming.hooks.maintenance_request import MaintenanceRequestHook
from airflow_spark_streaming.runner import control_auth, protocol
from airflow_spark_streaming.runner.jobs.maintenance_handoff import MaintenanceWatcher, watch_maintenance_requests

TABLE = "s3a://lake/orders"
APP = "local-1700000000000"


class _Conf:
    def __init__(self, **settings):
        self.settings = dict(settings)

    def get(self, key, default=None):
        return self.settings.get(key, default)

    def set(self, key, value):
        self.settings[key] = value

    def unset(self, key):
        self.settings.pop(key, None)


class _Row:
    def __init__(self, **fields):
        self.fields = fields

    def asDict(self):  # noqa: N802 - pyspark's name
        return self.fields


class _Spark:
    """What the job asks of a SparkSession: ``sql`` (recorded) and ``conf``."""

    def __init__(self, partitions=("day",), retention="interval 7 days", fail=False):
        self.statements: list[str] = []
        self.conf = _Conf()
        self.seen_during: dict[str, str | None] = {}
        self.detail = {"partitionColumns": list(partitions), "properties": {}}
        if retention:
            self.detail["properties"]["delta.deletedFileRetentionDuration"] = retention
        self.fail = fail

    def sql(self, statement):
        self.statements.append(statement)
        spark = self

        class _Result:
            def collect(self):
                if statement.startswith("DESCRIBE DETAIL"):
                    return [_Row(**spark.detail)]
                spark.seen_during = dict(spark.conf.settings)
                if spark.fail:
                    raise RuntimeError("the store went away")
                return []

        return _Result()

    def ran(self, verb: str) -> list[str]:
        return [s for s in self.statements if s.startswith(verb)]


# --- the job's own checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        [("day", "=", "2026-01-01")],
        [("day", ">=", "2026-01-01"), ("hour", "<", 7)],
        [("we`ird", "!=", "it's \\ a 'value'"), ("day", "in", ["a", "b'c", None]), ("x", "not in", ["1"])],
        [("day", "=", None), ("day", "<=", "é ✓ \n tab\t")],
    ],
)
def test_the_driver_reads_back_exactly_what_the_airflow_side_writes(filters):
    where = partition_filters_sql(filters)
    parsed = spark_maintenance.parse_partition_where(where)

    def text(value):  # the Airflow side quotes every value as a string literal
        return [text(v) for v in value] if isinstance(value, list) else None if value is None else str(value)

    assert [(c, op, text(v)) for c, op, v in filters] == parsed
    assert spark_maintenance.partition_where_sql(parsed) == where
    assert set(spark_maintenance.PARTITION_FILTER_OPERATORS) == set(__import__(
        "airflow_spark_streaming.delta.sql", fromlist=["x"]).PARTITION_FILTER_OPERATORS)  # fmt: skip


@pytest.mark.parametrize(
    "where",
    [
        "1=1",
        "`day` = '1' OR 1=1",
        "`day` = '1'; DROP TABLE x",
        "`day` = (SELECT max(day) FROM t)",
        "`day` = '1' -- comment",
        "`day` = '1' /* c */",
        "`day` = current_date()",
        "`day` = '\\n'",
        "`day` = 'a' AND",
        "`day`  = 'a'",
        "`day` LIKE 'a%'",
        "`day` = 'unterminated",
        "`day` IN ('a' , 'b')",
        "day = 'a'",
        "",
    ],
)
def test_anything_but_a_partition_predicate_is_refused_by_the_driver(where):
    with pytest.raises(spark_maintenance.MaintenanceRefused):
        spark_maintenance.parse_partition_where(where)
    spark = _Spark()
    with pytest.raises(spark_maintenance.MaintenanceRefused):
        spark_maintenance.optimize(spark, {"table": TABLE, "where": where or None, "zorder_by": "a"})
    assert spark.ran("OPTIMIZE") == []


def test_optimize_runs_only_partition_columns_and_quoted_zorder_names():
    spark = _Spark(partitions=["day"])
    with pytest.raises(spark_maintenance.MaintenanceRefused, match="not partition columns"):
        spark_maintenance.optimize(spark, {"table": TABLE, "where": "`value` = '1'"})
    spark_maintenance.optimize(spark, {"table": TABLE, "where": "`day` = '1'", "zorder_by": ["a`) OR (`b", "c"]})
    assert spark.ran("OPTIMIZE") == [
        "OPTIMIZE delta.`s3a://lake/orders` WHERE `day` = '1' ZORDER BY (`a``) OR (``b`, `c`)"
    ]
    for bad in ({"zorder_by": [""]}, {"zorder_by": [1]}, {"max_attempts": 0}, {"max_attempts": True}):
        with pytest.raises(spark_maintenance.MaintenanceRefused):
            spark_maintenance.optimize(_Spark(), {"table": TABLE, **bad})


def test_vacuum_never_goes_below_the_tables_retention_without_the_signed_override():
    spark = _Spark(retention="interval 2 days")
    with pytest.raises(spark_maintenance.MaintenanceRefused, match=r"shorter than the table's .*\(48h\)"):
        spark_maintenance.vacuum(spark, {"table": TABLE, "retain_hours": 0, "mode": "full"})
    with pytest.raises(spark_maintenance.MaintenanceRefused):
        spark_maintenance.vacuum(spark, {"table": TABLE, "retain_hours": 47.9, "retention_override": "yes"})
    assert spark.ran("VACUUM") == [] and spark.conf.settings == {}

    spark_maintenance.vacuum(
        spark, {"table": TABLE, "retain_hours": 48, "mode": "lite"}
    )  # the check stays on in Delta too
    assert spark.seen_during == {
        spark_maintenance.VACUUM_LOGGING: "true",
        spark_maintenance.RETENTION_WINDOW_IGNORE: "false",
    }
    assert spark.conf.settings == {}  # RETAIN is honoured during the VACUUM (delta-spark 4 ignores it by default)

    spark.conf.set(spark_maintenance.RETENTION_CHECK, "true")
    spark_maintenance.vacuum(spark, {"table": TABLE, "retain_hours": 0, "mode": "full", "retention_override": True})
    assert spark.ran("VACUUM")[-1] == "VACUUM delta.`s3a://lake/orders` FULL RETAIN 0.0 HOURS"
    assert spark.seen_during[spark_maintenance.RETENTION_CHECK] == "false"
    assert spark.conf.settings == {spark_maintenance.RETENTION_CHECK: "true"}  # restored as it was

    failing = _Spark(fail=True)
    with pytest.raises(RuntimeError):
        spark_maintenance.vacuum(failing, {"table": TABLE, "retain_hours": 1, "retention_override": True})
    assert failing.conf.settings == {}  # restored after a failure too
    assert spark_maintenance.table_retention_hours(_Spark(retention=None), TABLE) == 168
    for bad in ({"retain_hours": -1}, {"retain_hours": float("inf")}, {"retain_hours": "0"}, {"mode": "fast"},
                {"dry_run": "no"}):  # fmt: skip
        with pytest.raises(spark_maintenance.MaintenanceRefused):
            spark_maintenance.vacuum(_Spark(), {"table": TABLE, "retain_hours": 200, **bad})


# --- the watcher ---------------------------------------------------------------------------------


class _Stream:
    def __init__(self, path, mode):
        self.handle = open(path, mode)  # noqa: SIM115

    def write(self, data):
        self.handle.write(bytes(data))

    def readNBytes(self, n):  # noqa: N802 - Java's name
        return self.handle.read(n)

    def close(self):
        self.handle.close()


class _Status:
    def __init__(self, name):
        self.name = name

    def getPath(self):  # noqa: N802
        return self

    def getName(self):  # noqa: N802
        return self.name


class _LocalFs:
    """Hadoop's FileSystem calls the watcher makes, on local files."""

    def create(self, path, overwrite):
        return _Stream(path, "wb")

    def open(self, path):
        return _Stream(path, "rb")

    def listStatus(self, folder):  # noqa: N802
        return [_Status(n) for n in os.listdir(folder)]

    def delete(self, path, recursive):
        os.remove(path)

    def rename(self, source, target):  # Hadoop's: False (not an error) when the target exists
        if os.path.exists(target):
            return False
        os.rename(source, target)
        return True


class _Query:
    isActive = True
    status = {"isTriggerActive": False}


def _watcher(folder, spark, key) -> MaintenanceWatcher:
    watcher = object.__new__(MaintenanceWatcher)
    folder.mkdir(parents=True, exist_ok=True)
    watcher.__dict__.update(spark=spark, query=_Query(), table=TABLE, batch_done=threading.Event(), stop_event=None,
                            interval=0.01, key=key, checkpoint=str(folder.parent), app_id=APP, folder=str(folder),
                            _path=lambda *parts: os.path.join(*map(str, parts)), fs=_LocalFs(), seen=set())  # fmt: skip
    return watcher


@pytest.fixture
def key():
    return ControlKeyHook().get_key()


def _plant(folder, body, *, key=None, scope=APP, name=None) -> str:
    request_id = name or uuid.uuid4().hex
    body = {"request_id": request_id, "table": TABLE, "expires_at_ms": int(time.time() * 1000) + 60_000, **body}
    record = key.sign(control_auth.MAINTENANCE_REQUEST, body, scope=scope) if key else body
    (folder / protocol.maintenance_request_file(name or request_id)).write_text(json.dumps(record))
    return name or request_id


def _result(folder, request_id, key) -> dict:
    record = json.loads((folder / protocol.maintenance_result_file(request_id)).read_text())
    return key.verify(control_auth.MAINTENANCE_RESULT, record, scope=request_id)


def test_planted_copied_expired_or_foreign_requests_get_a_signed_refusal_and_change_nothing(tmp_path, key):
    folder, spark = tmp_path / "ckpt" / protocol.MAINTENANCE_DIR, _Spark()
    watcher = _watcher(folder, spark, key)
    vacuum = {"action": "vacuum", "retain_hours": 0, "mode": "full", "retention_override": True}
    foreign = control_auth.ControlKey.from_text("f" * 32, source="another deployment")
    signed_id = _plant(folder, vacuum, key=key)
    planted = {
        _plant(folder, vacuum): "unsigned",
        _plant(folder, vacuum, key=foreign): "does not match",
        _plant(folder, vacuum, key=key, scope="local-another-run"): "does not match",
        _plant(folder, {**vacuum, "expires_at_ms": int(time.time() * 1000) - 1}, key=key): "expired",
        _plant(folder, {**vacuum, "request_id": signed_id}, key=key): "another request id",
        _plant(folder, {**vacuum, "table": "s3a://lake/other"}, key=key): "not s3a://lake/other",
        _plant(folder, {**vacuum, "action": "drop"}, key=key): "unknown maintenance action",
        _plant(folder, {**vacuum, "expires_at_ms": None}, key=key): "expired",
    }
    (folder / protocol.maintenance_request_file(uuid.uuid4().hex)).write_text("{" * 100_000)
    (folder / protocol.maintenance_request_file(signed_id)).unlink()
    for request_id in watcher.pending():
        watcher.run_request(request_id)
    for request_id, match in planted.items():
        result = _result(folder, request_id, key)
        assert result["status"] == "refused" and match in result["error"], (match, result)
    assert spark.statements == [] and spark.conf.settings == {}
    assert watcher.pending() == []


def test_a_signed_request_runs_once_and_its_where_and_retention_are_checked_again(tmp_path, key):
    folder, spark = tmp_path / "ckpt" / protocol.MAINTENANCE_DIR, _Spark()
    watcher = _watcher(folder, spark, key)
    below = _plant(folder, {"action": "vacuum", "retain_hours": 0, "mode": "full"}, key=key)
    injected = _plant(folder, {"action": "optimize", "where": "`day` = '1' OR true"}, key=key)
    fine = _plant(folder, {"action": "optimize", "where": "`day` = '1'", "target_file_bytes": 1024}, key=key)
    for request_id in watcher.pending():
        watcher.run_request(request_id)
    assert _result(folder, below, key)["status"] == "refused"
    assert "MaintenanceRefused" in _result(folder, injected, key)["error"]
    assert _result(folder, fine, key)["status"] == "succeeded"
    assert spark.ran("OPTIMIZE") == ["OPTIMIZE delta.`s3a://lake/orders` WHERE `day` = '1'"]
    assert spark.ran("VACUUM") == [] and spark.conf.settings == {}

    # Answered requests never run again: not with their result in place, nor replayed after removing it.
    assert watcher.pending() == []
    (folder / protocol.maintenance_result_file(fine)).unlink()
    assert watcher.pending() == []


def test_requests_signed_by_the_airflow_hook_are_what_the_runner_accepts(tmp_path, key):
    from tests.unit.runner.test_maintenance_handoff import _live_runner

    checkpoint = tmp_path / "ckpt"
    _live_runner(checkpoint, app_id=APP, table=TABLE)
    hook = MaintenanceRequestHook(str(checkpoint))
    request_id = hook.submit({"action": "optimize", "table": TABLE, "zorder_by": ["v"]}, expires_in=60)
    spark = _Spark()
    watcher = _watcher(checkpoint / protocol.MAINTENANCE_DIR, spark, key)
    assert watcher.pending() == [request_id]
    assert watcher.run_request(request_id)["status"] == "succeeded"
    assert hook.get_result(request_id)["status"] == "succeeded"
    assert spark.ran("OPTIMIZE") == ["OPTIMIZE delta.`s3a://lake/orders` ZORDER BY (`v`)"]


def test_a_planted_result_is_refused_and_the_request_withdrawn(tmp_path):
    from airflow_spark_streaming.exceptions import UntrustedControlRecordError
    from tests.unit.runner.test_maintenance_handoff import _live_runner

    checkpoint = tmp_path / "ckpt"
    _live_runner(checkpoint)
    hook = MaintenanceRequestHook(str(checkpoint))
    request_id = hook.submit({"action": "optimize", "table": TABLE})
    folder = checkpoint / protocol.MAINTENANCE_DIR
    (folder / protocol.maintenance_result_file(request_id)).write_text(json.dumps({"status": "succeeded"}))
    with pytest.raises(UntrustedControlRecordError, match="unsigned"):
        hook.wait_for_result(request_id, timeout=5, poll=0.1)
    assert not (folder / protocol.maintenance_request_file(request_id)).exists()


def test_a_runner_without_a_key_takes_no_requests_and_signs_nothing(tmp_path):
    assert control_auth.key_from_spec({"query_name": "q"}) is None
    with pytest.raises(control_auth.ControlKeyError):
        control_auth.key_from_spec({control_auth.SPEC_KEY: "short"})
    assert watch_maintenance_requests(None, None, str(tmp_path), {"format": "delta", "path": TABLE}, None) is None
    assert not (tmp_path / protocol.MAINTENANCE_DIR).exists()


def test_the_runner_signs_its_lease_for_its_submission_and_checkpoint(tmp_path, key):
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.runner import lease as L
    from airflow_spark_streaming.runner.jobs.stream_runner import SignedLeaseStore

    tag = uuid.uuid4().hex
    extra = {"pid_start": control_auth.process_start_ticks(), "checkpoint": protocol.location_key(str(tmp_path))}
    store = SignedLeaseStore(L.LocalLeaseStore(str(tmp_path)), key, scope=tag, extra=extra)
    runner = L.RunnerLease(store, ttl_ms=3_000, identity={"pid": os.getpid(), "submission": tag, "host": "h"})
    runner.acquire()
    runner.renew_once()  # a renewal is signed again
    control = RunnerControlHook(str(tmp_path))
    body = control.verified_lease(control.get_lease(), key)
    assert body["pid"] == os.getpid() and body["pid_start"] == extra["pid_start"] and body["submission"] == tag
    runner.release()
    assert control.get_lease() is None


# --- sizing Delta's state rebuild to the table ------------------------------------------------------


@pytest.mark.parametrize(("files", "partitions"), [(0, 1), (2_000, 1), (5_001, 2), (100_000, 20), (10**7, 50)])
def test_the_state_rebuild_is_sized_to_the_table_and_the_session_is_left_as_it_was(files, partitions):
    spark = _Spark()
    spark_maintenance.run(spark, {"action": "optimize", "table": TABLE, "table_files": files})
    assert spark.ran("OPTIMIZE") == [f"OPTIMIZE delta.`{TABLE}`"]
    assert spark.seen_during[spark_maintenance.SNAPSHOT_PARTITIONS] == str(partitions)
    assert spark_maintenance.SNAPSHOT_PARTITIONS not in spark.conf.settings  # unset again afterwards


def test_a_state_rebuild_setting_of_the_users_or_servers_wins_and_no_hint_changes_nothing():
    spark = _Spark()
    spark.conf.set(spark_maintenance.SNAPSHOT_PARTITIONS, "8")
    spark_maintenance.run(spark, {"action": "vacuum", "table": TABLE, "retain_hours": 200, "table_files": 2_000})
    assert spark.seen_during[spark_maintenance.SNAPSHOT_PARTITIONS] == "8"
    assert spark.conf.settings[spark_maintenance.SNAPSHOT_PARTITIONS] == "8"
    quiet = _Spark()
    spark_maintenance.run(quiet, {"action": "optimize", "table": TABLE})
    assert spark_maintenance.SNAPSHOT_PARTITIONS not in quiet.seen_during


@pytest.mark.parametrize("hint", [-1, "2000", 2.5, True, 10**10])
def test_a_bad_file_count_or_action_is_refused_before_any_sql(hint):
    spark = _Spark()
    with pytest.raises(spark_maintenance.MaintenanceRefused, match="table_files"):
        spark_maintenance.run(spark, {"action": "optimize", "table": TABLE, "table_files": hint})
    with pytest.raises(spark_maintenance.MaintenanceRefused, match="action"):
        spark_maintenance.run(spark, {"action": "drop", "table": TABLE})
    assert spark.statements == []
