"""The Delta domain's models and SQL helpers (pure), and the hook modules that still export them."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.delta import models, sql
from airflow_spark_streaming.delta.models import DeltaCommit, DeltaTableStats, MaintenanceRecord, PartitionFileStats
from airflow_spark_streaming.exceptions import DeltaMaintenanceError, PartitionFilterError


def test_the_hook_modules_export_the_models_and_helpers_from_their_new_homes():
    from airflow_spark_streaming.hooks import delta, delta_history, kafka_lag
    from airflow_spark_streaming.kafka import models as kafka_models

    for name in ("SizeBucket", "PartitionFileStats", "MaintenanceRecord", "DeltaTableStats"):
        assert getattr(delta, name) is getattr(models, name)
    for name in ("parse_interval", "check_partition_filters", "sql_string_literal", "partition_filters_sql",
                 "PARTITION_FILTER_OPERATORS", "PartitionFilters"):  # fmt: skip
        assert getattr(delta, name) is getattr(sql, name)
    assert delta_history.DeltaCommit is DeltaCommit
    assert (kafka_lag.LagReport, kafka_lag.PartitionLag) == (kafka_models.LagReport, kafka_models.PartitionLag)


def test_table_stats_round_trip_through_json():
    stats = DeltaTableStats(
        table_uri="/t", version=2, partition_columns=["day"], num_files=3, total_bytes=300, num_records=9,
        small_file_bytes=200, small_files=2, small_file_share=2 / 3,
        size_histogram=[models.SizeBucket(1024, 3, 300), models.SizeBucket(None, 0, 0)],
        partitions=[PartitionFileStats({"day": "1"}, 3, 300, 2, 150)], min_reader_version=1, min_writer_version=2,
        reader_features=[], writer_features=[], properties={"delta.appendOnly": "false"},
        last_optimize=MaintenanceRecord(1, "OPTIMIZE", 5, {}, {"numAddedFiles": 1}), last_vacuum=None, read_at=1.0,
    )  # fmt: skip
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["partitions"][0]["small_file_share"] == pytest.approx(2 / 3)
    assert DeltaTableStats.from_dict(data) == stats


def test_a_commit_reads_the_metrics_of_either_writer():
    spark = DeltaCommit.from_commit_info(
        {"version": "4", "timestamp": 7, "operation": "WRITE", "operationMetrics": {"numOutputRows": "10",
         "numFiles": "2", "numOutputBytes": "300"}, "operationParameters": {"mode": "Append", "partitionBy": []}}
    )  # fmt: skip
    assert (spark.version, spark.rows_added, spark.files_added, spark.bytes_added) == (4, 10, 2, 300)
    assert spark.operation_parameters == {"mode": "Append", "partitionBy": "[]"}
    rs = DeltaCommit.from_commit_info(
        {"version": 5, "operationMetrics": {"num_added_rows": 3, "num_removed_files": "x"}}
    )
    assert (rs.rows_added, rs.files_removed, rs.timestamp_ms) == (3, None, None)


@pytest.mark.parametrize(
    "text, seconds",
    [("interval 7 days", 604800.0), ("interval 1 week", 604800.0), ("interval 2 hours 30 minutes", 9000.0)],
)
def test_parse_interval(text, seconds):
    assert sql.parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["7 days 3", "interval 1 fortnight", "interval x days", ""])
def test_parse_interval_refuses_what_it_cannot_read(text):
    with pytest.raises(DeltaMaintenanceError):
        sql.parse_interval(text)


def test_partition_filters_become_a_quoted_where():
    where = sql.partition_filters_sql([("day", "=", "it's"), ("h`r", "IN", ["1", None])])
    assert where == r"`day` = 'it\'s' AND `h``r` IN ('1', NULL)"
    assert sql.partition_filters_sql([]) is None
    with pytest.raises(PartitionFilterError, match="operator 'like'"):
        sql.check_partition_filters([("day", "like", "x")])


def _record(version, operation, parameters=None, metrics=None):
    return MaintenanceRecord(version, operation, 1, parameters or {}, metrics or {})


def test_what_a_spark_vacuum_deleted_is_read_from_its_vacuum_end_commit():
    from airflow_spark_streaming.hooks.delta import spark_vacuum_metrics

    start = _record(8, "VACUUM START", {"specifiedRetentionMillis": 7200000, "defaultRetentionMillis": 604800000},
                    {"numFilesToDelete": "5"})  # fmt: skip
    end = _record(9, "VACUUM END", {"status": "COMPLETED"}, {"numDeletedFiles": "4", "numVacuumedDirectories": "2"})
    logged = spark_vacuum_metrics([_record(7, "WRITE"), start, end], 2)
    assert logged["files_deleted"] == 4 and logged["status"] == "COMPLETED" and logged["versions"] == [8, 9]
    # Another VACUUM (another retention) before this one's START is passed over; its END too.
    other = _record(6, "VACUUM START", {"specifiedRetentionMillis": 0})
    other_end = _record(7, "VACUUM END", {"status": "COMPLETED"}, {"numDeletedFiles": "30"})
    assert spark_vacuum_metrics([other, other_end, start, end], 2)["files_deleted"] == 4
    # Nothing logged, an END without its START, or a count that is not one: unknown.
    assert spark_vacuum_metrics([], 2) is None
    assert spark_vacuum_metrics([end], 2) is None
    for count in ("-1", "4.0", "", True, None):
        broken = _record(9, "VACUUM END", {"status": "COMPLETED"}, {"numDeletedFiles": count})
        assert spark_vacuum_metrics([start, broken], 2)["files_deleted"] is None, count
