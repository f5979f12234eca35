"""VACUUM that knows its readers: a lagging downstream readStream restarts after OPTIMIZE and VACUUM (issue 27).

One upstream writer appends to a real Delta table whose deletedFileRetentionDuration is one second. Two real
``readStream.format("delta")`` queries read it: one catches up, the other stops five versions behind. OPTIMIZE
removes every small file. A VACUUM that only knows the table's retention deletes files the lagging reader still
needs, and its restart fails; the same VACUUM given the readers keeps them, and the restart finishes with
exactly the expected rows.
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta

import pytest

from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator


def _append(spark, table, start: int, count: int) -> None:
    spark.range(start, start + count, numPartitions=3).write.format("delta").mode("append").save(str(table))


def _read_available(spark, table, checkpoint, out) -> None:
    """Run a Delta → Delta readStream until it has read everything there is (availableNow), then stop."""
    query = (
        spark.readStream.format("delta").load(str(table))
        .writeStream.format("delta").option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True).start(str(out))
    )  # fmt: skip
    query.awaitTermination(180)  # raises the query's error if it failed


def _ids(spark, path) -> list[int]:
    return sorted(r.id for r in spark.read.format("delta").load(str(path)).collect())


@pytest.fixture
def lagging_reader_lake(spark, tmp_path):
    """A table after OPTIMIZE, a caught-up reader and a reader five versions behind, older than the retention."""
    table, checkpoints = tmp_path / "orders", tmp_path / "checkpoints"
    spark.sql(
        f"CREATE TABLE delta.`{table}` (id BIGINT) USING DELTA "
        "TBLPROPERTIES ('delta.deletedFileRetentionDuration' = 'interval 1 seconds')"
    )
    for batch in range(3):
        _append(spark, table, batch * 10, 10)
    caught_up, lagging = checkpoints / "caught_up", checkpoints / "lagging"
    for name in ("caught_up", "lagging"):
        _read_available(spark, table, checkpoints / name, tmp_path / f"{name}_out")
    for batch in range(3, 8):  # versions 4..8: the lagging reader stops before them
        _append(spark, table, batch * 10, 10)
    _read_available(spark, table, caught_up, tmp_path / "caught_up_out")
    time.sleep(1.5)  # the lagging reader's position is now older than the table's retention
    optimized = DeltaOptimizeOperator(task_id="optimize", table_uri=str(table), engine="native").execute({})
    assert optimized["num_files_removed"] >= 24  # every small file, including those the lagging reader needs
    return {"table": table, "caught_up": caught_up, "lagging": lagging, "out": tmp_path / "lagging_out",
            "root": checkpoints, "tmp": tmp_path}  # fmt: skip


def test_vacuum_with_readers_keeps_what_a_lagging_stream_needs(spark, lagging_reader_lake):
    lake = lagging_reader_lake
    table, lagging = lake["table"], lake["lagging"]
    # The same lake, copied: the table id (reservoirId) travels with its log, so the checkpoint reads the copy.
    copy = {key: lake["tmp"] / f"copy_{key}" for key in ("table", "lagging", "out")}
    for key, target in copy.items():
        shutil.copytree(lake[key], target)

    # Without readers, only the table's one-second retention counts: VACUUM deletes what the lagging reader needs.
    blind = DeltaVacuumOperator(
        task_id="vacuum", table_uri=str(copy["table"]), engine="native",
        retention=timedelta(0), i_understand_this_can_break_readers=True,
    ).execute({})  # fmt: skip
    assert blind["files_deleted"] >= 24 and "readers" not in blind
    with pytest.raises(Exception, match=r"(?i)FILE_NOT_EXIST|FileNotFound|does not exist") as failure:
        _read_available(spark, copy["table"], copy["lagging"], copy["out"])
    assert ".parquet" in str(failure.value)

    # With readers, the lagging one holds the retention back, and its restart reads every row exactly once.
    result = DeltaVacuumOperator(
        task_id="vacuum", table_uri=str(table), engine="native",
        retention=timedelta(0), i_understand_this_can_break_readers=True,
        readers=[str(lake["caught_up"]), str(lagging)],
    ).execute({})  # fmt: skip
    assert result["held_back_by"] == str(lagging) and result["oldest_reader"] == str(lagging)
    assert result["retention_hours"] >= 1 and result["files_to_delete"] == 0 == result["files_deleted"]
    by_name = {r["name"]: r for r in result["readers"]}
    # Its offset is (4, index -1): version 4 is unread. Behind it: five appends and the OPTIMIZE.
    assert by_name[str(lagging)]["next_version"] == 4 and by_name[str(lagging)]["lag_versions"] == 6
    assert by_name[str(lagging)]["lag_seconds"] > 1.0
    assert by_name[str(lake["caught_up"])]["lag_versions"] == 1  # it has still to read the OPTIMIZE commit
    assert result["log_retention_warning"] is None  # thirty days by default
    # reader_roots finds the same readers by the table id; the dry run plans the same retention.
    found = DeltaVacuumOperator(
        task_id="vacuum", table_uri=str(table), retention=timedelta(0), i_understand_this_can_break_readers=True,
        reader_roots=[str(lake["root"])], exclude_readers=[str(lake["caught_up"])], dry_run=True,
    ).execute({})  # fmt: skip
    assert [r["name"] for r in found["readers"]] == [str(lagging)] and found["held_back_by"] == str(lagging)

    _read_available(spark, table, lagging, lake["out"])
    assert _ids(spark, lake["out"]) == list(range(80))
