"""Downstream readers of a Delta table, placed from their checkpoints; VACUUM's and the sensor's use of them (issue 27).

Real delta-rs tables (no JVM); the checkpoints are files in Spark's format, written here, so each case
(another table, no commit yet, a starting snapshot, an unreadable checkpoint) is exact.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from airflow_spark_streaming.exceptions import (
    DeltaReaderError,
    InvalidParameterError,
    ReaderLogRetentionError,
    ReaderTableMismatchError,
)
from airflow_spark_streaming.hooks.delta import DeltaTableHook
from airflow_spark_streaming.hooks.delta_readers import DeltaReadersHook
from airflow_spark_streaming.operators.delta import DeltaVacuumOperator


@pytest.fixture
def table(tmp_path):
    """Versions 0..3, 50 ms apart; the log retention is one second (so a reader soon outlives it)."""
    path = tmp_path / "orders"
    for version in range(4):
        write_deltalake(str(path), pa.table({"id": [version]}), mode="append",
                        configuration={"delta.logRetentionDuration": "interval 1 seconds"} if version == 0 else None)  # fmt: skip
        time.sleep(0.05)
    return path


def _table_id(table) -> str:
    return DeltaTable(str(table)).metadata().id


def write_checkpoint(folder, table_id: str | None, version: int | None = None, *, committed: bool = True,
                     starting: bool = False) -> str:  # fmt: skip
    """A Spark checkpoint whose batch 0 read ``table_id`` up to ``version`` (``None``: no batch yet)."""
    (folder / "offsets").mkdir(parents=True)
    (folder / "commits").mkdir()
    (folder / "metadata").write_text(json.dumps({"id": f"query-{folder.name}"}))
    if version is not None:
        offset = {"sourceVersion": 1, "reservoirId": table_id, "reservoirVersion": version, "index": -1,
                  "isStartingVersion": starting}  # fmt: skip
        meta = {"batchWatermarkMs": 0, "batchTimestampMs": 1, "conf": {}}
        (folder / "offsets" / "0").write_text(f"v1\n{json.dumps(meta)}\n{json.dumps(offset)}")
        if committed:
            (folder / "commits" / "0").write_text('v1\n{"nextBatchWatermarkMs":0}')
    return str(folder)


def _hook(table) -> DeltaReadersHook:
    return DeltaReadersHook(DeltaTableHook(str(table)))


def test_each_reader_is_placed_at_its_next_version_with_its_commit_time(table, tmp_path):
    table_id = _table_id(table)
    slow = write_checkpoint(tmp_path / "ck" / "slow", table_id, 1)
    current = write_checkpoint(tmp_path / "ck" / "current", table_id, 4)  # read everything: version 4 is not there
    history = {h["version"]: h["timestamp"] for h in DeltaTable(str(table)).history()}
    now = history[3] / 1000 + 10
    readers = _hook(table).get_readers([current, slow], now=now)
    assert [r.name for r in readers] == [slow, current]  # the oldest first
    assert (readers[0].next_version, readers[0].lag_versions, readers[0].basis) == (1, 3, "committed")
    assert readers[0].next_version_timestamp_ms == history[1]
    assert readers[0].lag_seconds == pytest.approx(now - history[1] / 1000)
    assert (readers[1].next_version, readers[1].lag_versions, readers[1].lag_seconds) == (4, 0, 0.0)
    assert readers[1].next_version_timestamp_ms is None and readers[1].query_id == "query-current"


def test_a_reader_of_another_table_or_an_unreadable_one_is_an_error_unless_excluded(table, tmp_path):
    other = write_checkpoint(tmp_path / "ck" / "other", "another-table-id", 1)
    with pytest.raises(ReaderTableMismatchError, match="another-table-id"):
        _hook(table).get_readers([other])
    missing = str(tmp_path / "ck" / "gone")
    with pytest.raises(DeltaReaderError, match=r"Reader .*gone: its checkpoint cannot be read.*exclude_readers"):
        _hook(table).get_readers([missing])
    torn = write_checkpoint(tmp_path / "ck" / "torn", _table_id(table), 1)
    (tmp_path / "ck" / "torn" / "offsets" / "0").write_text("v1\n{not json")
    with pytest.raises(DeltaReaderError, match="torn"):
        _hook(table).get_readers([torn])
    ahead = write_checkpoint(tmp_path / "ck" / "ahead", _table_id(table), 9)  # the table's newest version is 3
    with pytest.raises(DeltaReaderError, match=r"reads version 9 next, but .* has versions 0\.\.3"):
        _hook(table).get_readers([ahead])
    assert _hook(table).get_readers([other, missing, torn], exclude=[other, missing + "/", "file://" + torn]) == []


def test_reader_roots_find_only_the_table_readers(table, tmp_path):
    table_id = _table_id(table)
    ours = write_checkpoint(tmp_path / "root" / "team" / "ours", table_id, 2)
    write_checkpoint(tmp_path / "root" / "team" / "theirs", "another-table-id", 1)  # reads another table: left out
    fresh = write_checkpoint(tmp_path / "root" / "fresh", None)  # no batch yet
    (tmp_path / "root" / "_spark_metadata").mkdir()
    hook = _hook(table)
    assert hook.discover([str(tmp_path / "root")]) == sorted([ours, fresh, str(tmp_path / "root/team/theirs")])
    readers = hook.get_readers(roots=[str(tmp_path / "root")])
    assert [r.name for r in readers] == [ours]
    with pytest.raises(DeltaReaderError, match="does not exist"):
        hook.get_readers(roots=[str(tmp_path / "nowhere")])


def test_a_stream_without_a_committed_batch(table, tmp_path):
    table_id = _table_id(table)
    snapshot = write_checkpoint(tmp_path / "snapshot", table_id, 2, committed=False, starting=True)
    option = write_checkpoint(tmp_path / "option", table_id, 2, committed=False, starting=False)
    unstarted = write_checkpoint(tmp_path / "unstarted", None)
    readers = {r.name: r for r in _hook(table).get_readers([snapshot, option, unstarted])}
    assert (readers[snapshot].next_version, readers[snapshot].basis) == (2, "planned")  # re-reads that snapshot
    assert readers[option].next_version == 0  # from its startingVersion option, which the checkpoint does not hold
    assert readers[unstarted].next_version is None and readers[unstarted].lag_versions == 0


def test_vacuum_result_names_the_reader_and_warns_past_the_log_retention(table, tmp_path):
    reader = write_checkpoint(tmp_path / "ck" / "slow", _table_id(table), 1)
    time.sleep(1.1)  # older than the table's one-second delta.logRetentionDuration
    result = DeltaVacuumOperator(task_id="vacuum", table_uri=str(table), engine="native", readers=[reader],
                                 reader_margin=timedelta(0), dry_run=True).execute({})  # fmt: skip
    assert result["retention_hours"] == 168 and result["held_back_by"] is None  # a week covers it
    assert result["oldest_reader"] == reader and result["readers"][0]["lag_versions"] == 3
    assert f"reader {reader} is 0.0h behind (version 1)" in result["log_retention_warning"]
    assert result["log_retention_seconds"] == 1.0
    json.dumps(result)  # XCom-ready


def test_the_sensor_reports_reader_lag_and_fails_early_near_the_log_retention(table, tmp_path):
    from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor

    reader = write_checkpoint(tmp_path / "ck" / "slow", _table_id(table), 1)
    sensor = DeltaSmallFilesSensor(task_id="s", table_uri=str(table), readers=[reader], rule="iceberg")
    verdict = sensor._new_check().evaluate()
    assert verdict.payload["readers"][0]["name"] == reader and verdict.payload["readers"][0]["lag_versions"] == 3
    assert f"readers: {reader} 3 versions / 0.0h behind" in verdict.message
    strict = DeltaSmallFilesSensor(task_id="s", table_uri=str(table), readers=[reader],
                                   min_log_retention_headroom=timedelta(hours=1))  # fmt: skip
    with pytest.raises(ReaderLogRetentionError, match=r"Reader .*slow.*less than min_log_retention_headroom \(1h\)"):
        strict._new_check().evaluate()
    with pytest.raises(InvalidParameterError, match="needs readers or reader_roots"):
        DeltaSmallFilesSensor(task_id="s", table_uri=str(table), min_log_retention_headroom=timedelta(hours=1))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"readers": "/ck/a"}, "not a single string"),
        ({"readers": ["ck/a"]}, "is a relative path"),
        ({"reader_roots": ["relative"]}, "is a relative path"),
        ({"exclude_readers": [""]}, "non-empty strings"),
        ({"reader_margin": 3600}, "must be a datetime.timedelta"),
    ],
)
def test_reader_parameters_are_refused_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        DeltaVacuumOperator(task_id="v", table_uri="/lake/t", **kwargs)
    assert DeltaVacuumOperator(task_id="v", table_uri="/t", readers=["{{ var.value.ck }}", "s3://b/ck"]).readers
