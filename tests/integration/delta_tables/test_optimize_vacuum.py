"""DeltaOptimizeOperator and DeltaVacuumOperator on real tables, with both engines, and their safety rules.

The Spark engine's spark-submit route is tested by the compaction test here (and on S3 in
tests/integration/s3); the other Spark-engine runs, whose subject is what the job does to the table, go to
the shared Spark Connect server: the same job function, without a spark-submit each (~15 s).
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import pytest

from airflow_spark_streaming.exceptions import (
    DeltaMaintenanceError,
    EngineUnsupportedError,
    NotADeltaTableError,
    PlainParquetSinkError,
    SparkStreamingError,
    UnsafeRetentionError,
    ZOrderColumnError,
)
from airflow_spark_streaming.hooks.delta import DeltaTableHook
from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator, files_outside_root
from tests.support.delta_fixtures import rows_of
from tests.support.spark_defaults import use_spark_defaults


@pytest.fixture
def spark_local_conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))


def _version(table) -> int:
    return DeltaTableHook(str(table)).get_table().version()


@pytest.mark.parametrize("engine", ["native", "spark"])
def test_compaction_keeps_every_row_and_leaves_one_file_per_partition(
    table_copy, engine, spark_local_conn, tmp_path, monkeypatch
):
    spark_defaults = use_spark_defaults(tmp_path, monkeypatch)  # the cluster's spark-defaults.conf
    rows_before, files_before = rows_of(table_copy), DeltaTableHook(str(table_copy)).get_stats().num_files

    result = DeltaOptimizeOperator(task_id="optimize", table_uri=str(table_copy), engine=engine).execute({})

    assert rows_of(table_copy) == rows_before
    stats = DeltaTableHook(str(table_copy)).get_stats()
    assert stats.num_files == 3 == result["files_after"]  # every file is tiny: one bin per partition
    assert result["engine"] == engine and result["files_before"] == files_before
    assert result["num_files_removed"] == files_before and result["num_files_added"] == 3
    assert result["bytes_removed"] > 0 and result["bytes_added"] > 0
    assert stats.last_optimize is not None and stats.last_optimize.version == result["version_after"]
    json.dumps(result)  # XCom-ready
    if engine == "spark":
        spark_defaults.assert_reached_the_driver()  # spark-defaults.conf reached the Spark engine's driver


def test_partition_filter_and_zorder_native(table_copy):
    result = DeltaOptimizeOperator(
        task_id="optimize", table_uri=str(table_copy), engine="native",
        partition_filters=[("region", "=", "eu")], zorder_by=["amount"],
    ).execute({})  # fmt: skip
    stats = DeltaTableHook(str(table_copy)).get_stats()
    files = {p.partition["region"]: p.files for p in stats.partitions}
    assert files["eu"] == 1 and files["us"] > 50 and files["apac"] > 50
    assert result["partitions_optimized"] == 1 and result["zorder_by"] == ["amount"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"zorder_by": ["nope"]}, ZOrderColumnError, r"\['nope'\] are not in"),
        ({"zorder_by": ["region"]}, ZOrderColumnError, "are partition columns"),
        ({"partition_filters": [("amount", "=", 1)]}, DeltaMaintenanceError, "'amount' is not a partition column"),
    ],
)
def test_bad_optimize_input_leaves_the_table_untouched(table_copy, kwargs, error, message):
    version = _version(table_copy)
    with pytest.raises(error, match=message):
        DeltaOptimizeOperator(task_id="optimize", table_uri=str(table_copy), engine="native", **kwargs).execute({})
    assert _version(table_copy) == version


def test_native_engine_refuses_liquid_clustering_and_auto_picks_spark(spark, tmp_path, spark_connect_conn):
    table = tmp_path / "clustered"
    spark.sql(f"CREATE TABLE delta.`{table}` (id BIGINT, name STRING) USING DELTA CLUSTER BY (id)")
    for i in range(3):
        spark.range(i * 10, i * 10 + 10).selectExpr("id", "CAST(id AS STRING) AS name").write.format("delta").mode(
            "append"
        ).save(str(table))
    version = _version(table)
    with pytest.raises(EngineUnsupportedError, match="clustering.*use engine='spark'"):
        DeltaOptimizeOperator(task_id="o", table_uri=str(table), engine="native").execute({})
    assert _version(table) == version
    result = DeltaOptimizeOperator(task_id="o", table_uri=str(table), engine="auto",
                                   spark_conn_id=spark_connect_conn()).execute({})  # fmt: skip
    assert result["engine"] == "spark" and result["spark_transport"] == "connect"
    assert result["version_after"] > version
    assert sorted(r[0] for r in spark.read.format("delta").load(str(table)).collect()) == list(range(30))


def test_compaction_while_a_stream_appends(spark, tmp_path):
    table = tmp_path / "live"
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 200).load()
        .selectExpr("value AS id", "CAST(value % 2 AS STRING) AS region", "CAST(value % 97 AS INT) AS amount")
        .repartition(8)
        .writeStream.format("delta").partitionBy("region")
        .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(processingTime="500 milliseconds")
        .start(str(table))
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        first_commit = table / "_delta_log" / "00000000000000000000.json"  # the folder appears before it
        while time.monotonic() < deadline and (not first_commit.exists() or _version(table) < 6):
            time.sleep(0.3)
        batch_before = query.lastProgress["batchId"]
        result = DeltaOptimizeOperator(task_id="o", table_uri=str(table), engine="native").execute({})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and query.lastProgress["batchId"] < batch_before + 3:
            time.sleep(0.3)
        assert query.isActive and query.exception() is None
    finally:
        query.stop()
    assert result["num_files_removed"] > 0
    ids = sorted(r[0] for r in rows_of(table))
    assert ids == list(range(len(ids)))  # the rate source counts from 0: no gap, no duplicate
    history = DeltaTableHook(str(table)).get_table().history()
    optimize = [h for h in history if h["operation"] == "OPTIMIZE"]
    assert len(optimize) == 1 and optimize[0]["operationParameters"]["targetSize"]
    assert any(h["operation"] == "STREAMING UPDATE" and h["version"] > optimize[0]["version"] for h in history)


@pytest.mark.parametrize("engine", ["native", pytest.param("spark", marks=pytest.mark.connect)])
def test_vacuum_dry_run_then_full_removes_only_old_orphans(table_copy, engine, request):
    # The Spark engine runs on the shared Connect server: the subject is which files the vacuum deletes.
    spark_conn_id = request.getfixturevalue("spark_connect_conn")() if engine == "spark" else "spark_default"
    DeltaOptimizeOperator(task_id="o", table_uri=str(table_copy), engine="native").execute({})
    DeltaTableHook(str(table_copy)).get_table().alter.set_table_properties(
        {"delta.deletedFileRetentionDuration": "interval 1 hours"}
    )
    orphan = table_copy / "region=eu" / "part-99999-orphan.snappy.parquet"
    orphan.write_bytes(b"PAR1 junk from a failed job")
    two_hours_ago = time.time() - 7200
    os.utime(orphan, (two_hours_ago, two_hours_ago))
    rows = rows_of(table_copy)

    dry = DeltaVacuumOperator(task_id="v", table_uri=str(table_copy), mode="full", dry_run=True).execute({})
    assert dry["retention_hours"] == 1 and dry["files_to_delete"] == 1 and dry["files_deleted"] == 0
    assert orphan.exists()
    # LITE through the Spark engine runs the same job function over Connect (test_spark_connect_maintenance);
    # here it stays native, which saves a spark-submit.
    lite = DeltaVacuumOperator(task_id="v", table_uri=str(table_copy), mode="lite", engine="native").execute({})
    assert lite["files_to_delete"] == 0 and orphan.exists()  # removed files are younger than the retention
    # A downstream reader (issue 27) at the newest version, with a 3-hour margin, lengthens the retention to 4 hours:
    # the engine keeps the 2-hour-old orphan and deletes only an older one.
    older = table_copy / "region=eu" / "part-99998-orphan.snappy.parquet"
    older.write_bytes(b"PAR1 older junk")
    os.utime(older, (time.time() - 5 * 3600, time.time() - 5 * 3600))
    reader = _reader_checkpoint(table_copy, table_copy.parent / "reader")
    files = _data_files(table_copy)
    held = DeltaVacuumOperator(task_id="v", table_uri=str(table_copy), mode="full", engine=engine, readers=[reader],
                               reader_margin=timedelta(hours=3), spark_conn_id=spark_conn_id).execute({})  # fmt: skip
    assert held["retention_hours"] == 4 and held["held_back_by"] == reader and held["engine"] == engine
    assert held.get("spark_transport") == ("connect" if engine == "spark" else None)
    assert not older.exists() and orphan.exists()
    assert held["files_deleted"] == len(files - _data_files(table_copy)) == held["files_to_delete"] == 1
    # Once the retention lets it go, the table's removed files (OPTIMIZE's) and the orphan go too.
    files = _data_files(table_copy)
    done = DeltaVacuumOperator(task_id="v", table_uri=str(table_copy), mode="full", engine=engine,
                               spark_conn_id=spark_conn_id, retention=timedelta(0),
                               i_understand_this_can_break_readers=True).execute({})  # fmt: skip
    gone = files - _data_files(table_copy)
    # The table was written by Spark, so each data file has a hidden Hadoop checksum beside it. delta-rs lists
    # and deletes those as orphans of their own; Hadoop's file system deletes one along with its data file.
    checksums = {
        f for f in gone if f.endswith(".crc") and os.path.join(os.path.dirname(f), os.path.basename(f)[1:-4]) in gone
    }
    assert not orphan.exists() and len(gone) > 2 * len(checksums) > 100
    assert done["files_deleted"] == len(gone) - (len(checksums) if engine == "spark" else 0)
    assert done["files_to_delete"] == len(gone)  # the plan (delta-rs's dry run) counts the checksums
    assert rows_of(table_copy) == rows  # readers lose nothing


def _data_files(table) -> set[str]:
    """Every file of the table outside its log (Hadoop's hidden ``.crc`` checksums too)."""
    return {str(p) for p in table.rglob("*") if p.is_file() and "_delta_log" not in p.relative_to(table).parts}


def _reader_checkpoint(table, folder) -> str:
    """A downstream stream's checkpoint whose committed batch read the table up to its newest version."""
    table_info = DeltaTableHook(str(table)).get_table()
    offset = {"sourceVersion": 1, "reservoirId": table_info.metadata().id, "reservoirVersion": table_info.version(),
              "index": -1, "isStartingVersion": False}  # fmt: skip
    (folder / "offsets").mkdir(parents=True)
    (folder / "commits").mkdir()
    (folder / "metadata").write_text('{"id":"downstream"}')
    (folder / "offsets" / "0").write_text(
        f'v1\n{{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":{{}}}}\n{json.dumps(offset)}'
    )
    (folder / "commits" / "0").write_text('v1\n{"nextBatchWatermarkMs":0}')
    return str(folder)


def test_optimize_retries_when_a_concurrent_commit_wins(table_copy, mocker):
    from deltalake.exceptions import CommitFailedError
    from deltalake.table import TableOptimizer

    real_compact = TableOptimizer.compact
    calls = []

    def lose_once(self, *args, **kwargs):  # fault injection: the first commit loses a race
        calls.append(1)
        if len(calls) == 1:
            raise CommitFailedError("Transaction failed: concurrent append")
        return real_compact(self, *args, **kwargs)

    mocker.patch.object(TableOptimizer, "compact", lose_once)
    mocker.patch("airflow_spark_streaming.hooks.delta.time.sleep")
    rows = rows_of(table_copy)
    result = DeltaOptimizeOperator(task_id="o", table_uri=str(table_copy), engine="native").execute({})
    assert result["attempts"] == 2 and result["files_after"] == 3 and rows_of(table_copy) == rows
    mocker.patch.object(TableOptimizer, "compact", side_effect=CommitFailedError("always"))
    with pytest.raises(SparkStreamingError, match="lost to concurrent commits 2 times"):
        DeltaOptimizeOperator(task_id="o", table_uri=str(table_copy), engine="native", max_attempts=2).execute({})


def test_vacuum_retention_safety(table_copy):
    with pytest.raises(UnsafeRetentionError, match="must be positive"):
        DeltaVacuumOperator(task_id="v", table_uri=str(table_copy), retention=timedelta(0))
    with pytest.raises(UnsafeRetentionError, match="must be positive"):
        DeltaVacuumOperator(task_id="v", table_uri=str(table_copy), retention=timedelta(hours=-1))
    short = DeltaVacuumOperator(task_id="v", table_uri=str(table_copy), retention=timedelta(hours=24))
    with pytest.raises(UnsafeRetentionError, match=r"24h is shorter than the table's .* \(168h\)"):
        short.execute({})
    lagging = DeltaVacuumOperator(task_id="v", table_uri=str(table_copy), min_retention=timedelta(days=10))
    with pytest.raises(UnsafeRetentionError, match=r"168h is shorter than min_retention \(240h\)"):
        lagging.execute({})
    forced = DeltaVacuumOperator(
        task_id="v", table_uri=str(table_copy), retention=timedelta(hours=2), i_understand_this_can_break_readers=True
    ).execute({})
    assert forced["retention_hours"] == 2


def test_vacuum_never_deletes_outside_the_root():
    root = "/lake/orders"
    assert files_outside_root(root, ["region=eu/a.parquet", "/lake/orders/b.parquet", "file:///lake/orders/c"]) == []
    assert files_outside_root(root, ["/lake/other/x.parquet", "../x.parquet", "s3://b/x", "/lake/orders2/y"]) == [
        "/lake/other/x.parquet", "../x.parquet", "s3://b/x", "/lake/orders2/y"
    ]  # fmt: skip


@pytest.fixture
def file_sink_output(spark, tmp_path):
    """Output of a real rate → Parquet file-sink query, plus one valid Parquet file its log does not list."""
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 50).load()
        .selectExpr("value", "CAST(value % 2 AS INT) AS bucket")
        .writeStream.format("parquet").partitionBy("bucket").option("checkpointLocation", str(tmp_path / "ckpt"))
        .trigger(processingTime="300 milliseconds").start(str(tmp_path / "out"))
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (query.lastProgress is None or query.lastProgress["batchId"] < 3):
        time.sleep(0.2)
    query.stop()
    out = tmp_path / "out"
    committed = spark.read.parquet(str(out))
    expected = sorted(r.value for r in committed.select("value").collect())
    # A failed batch's leftover: valid Parquet that the sink's log never committed.
    leftover = next((out / "bucket=0").glob("part-*.parquet"))
    (out / "bucket=0" / "part-99999-failed-batch.snappy.parquet").write_bytes(leftover.read_bytes())
    return {"path": out, "values": expected, "files": len(committed.inputFiles())}


@pytest.mark.parametrize("transport", ["spark-submit", "connect"])
def test_file_sink_copy_compaction_reads_through_the_log(spark, file_sink_output, tmp_path, request, transport):
    from airflow_spark_streaming.operators.delta import ConvertFileSinkToDeltaOperator

    # The spark-submit job and the Connect session run the same copy (Connect once refused its write mode).
    if transport == "spark-submit":
        request.getfixturevalue("spark_local_conn")
        conn_id = "spark_default"
    else:
        conn_id = request.getfixturevalue("spark_connect_conn")()
    before = sorted(p.name for p in file_sink_output["path"].rglob("*"))
    result = ConvertFileSinkToDeltaOperator(
        task_id="c",
        table_uri=str(file_sink_output["path"]),
        target_uri=str(tmp_path / "delta"),
        partition_by=["bucket"],
        spark_conn_id=conn_id,
    ).execute({})
    assert result["mode"] == "copy" and result["files"] == 2 and result["rows"] == len(file_sink_output["values"])
    assert result["spark_transport"] == transport
    values = sorted(r.value for r in spark.read.format("delta").load(str(tmp_path / "delta")).collect())
    assert values == file_sink_output["values"]  # the uncommitted leftover is not copied
    assert sorted(p.name for p in file_sink_output["path"].rglob("*")) == before  # the source is untouched


def test_file_sink_in_place_conversion_then_optimize(spark, file_sink_output, spark_connect_conn):
    from airflow_spark_streaming.operators.delta import ConvertFileSinkToDeltaOperator

    path = str(file_sink_output["path"])
    result = ConvertFileSinkToDeltaOperator(task_id="c", table_uri=path, partition_by=["bucket"],
                                            spark_conn_id=spark_connect_conn()).execute({})  # fmt: skip
    assert result["mode"] == "in_place" and result["files"] == file_sink_output["files"]
    assert result["spark_transport"] == "connect"
    optimized = DeltaOptimizeOperator(task_id="o", table_uri=path, engine="native").execute({})
    assert optimized["files_after"] == 2
    values = sorted(r.value for r in spark.read.format("delta").load(path).collect())
    assert values == file_sink_output["values"]


def test_conversion_refuses_a_folder_that_is_not_file_sink_output(table_copy, tmp_path):
    from airflow_spark_streaming.operators.delta import ConvertFileSinkToDeltaOperator

    with pytest.raises(DeltaMaintenanceError, match="has no _spark_metadata"):
        ConvertFileSinkToDeltaOperator(task_id="c", table_uri=str(table_copy)).execute({})
    with pytest.raises(DeltaMaintenanceError, match="use engine='spark'"):
        ConvertFileSinkToDeltaOperator(task_id="c", table_uri=str(table_copy), engine="native")


def test_plain_parquet_sink_output_is_refused_with_the_safe_paths(spark, tmp_path):
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 50).load()
        .writeStream.format("parquet").option("checkpointLocation", str(tmp_path / "ckpt"))
        .trigger(processingTime="300 milliseconds").start(str(tmp_path / "out"))
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (query.lastProgress is None or query.lastProgress["batchId"] < 2):
        time.sleep(0.2)
    query.stop()
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    for operator in (
        DeltaOptimizeOperator(task_id="o", table_uri=str(tmp_path / "out")),
        DeltaVacuumOperator(task_id="v", table_uri=str(tmp_path / "out")),
    ):
        with pytest.raises(PlainParquetSinkError, match="CONVERT TO DELTA.*copy-compact"):
            operator.execute({})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == files  # untouched
    with pytest.raises(NotADeltaTableError, match="_spark_metadata"):
        DeltaTableHook(str(tmp_path / "out")).get_stats()
