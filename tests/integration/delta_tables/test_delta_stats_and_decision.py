"""DeltaTableHook statistics and the compaction decision on a real streaming-written table."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_spark_streaming.conditions.compaction import CompactionPolicy, decide_compaction
from airflow_spark_streaming.exceptions import NotADeltaTableError, SparkStreamingError
from airflow_spark_streaming.hooks.delta import DeltaTableHook, DeltaTableStats
from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor


def test_stats_match_spark_describe_detail(spark, small_files_table):
    stats = DeltaTableHook(str(small_files_table)).get_stats()
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{small_files_table}`").collect()[0]
    assert stats.num_files == detail.numFiles and stats.total_bytes == detail.sizeInBytes
    assert stats.num_files > 300  # hundreds of small files from two micro-batches
    assert stats.num_records == 6000 and stats.partition_columns == ["region"]
    assert stats.small_files == stats.num_files and stats.small_file_share == 1.0
    assert sum(b.files for b in stats.size_histogram) == stats.num_files
    assert [p.partition for p in stats.partitions] == [{"region": "apac"}, {"region": "eu"}, {"region": "us"}]
    assert sum(p.files for p in stats.partitions) == stats.num_files
    assert stats.min_reader_version == detail.minReaderVersion and stats.version == 1
    assert stats.last_optimize is None and stats.last_vacuum is None
    assert DeltaTableStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats


@pytest.mark.parametrize(
    "policy, warranted",
    [
        (CompactionPolicy.from_rule("delta"), True),  # >= 50 files under 64 MiB in a partition
        (CompactionPolicy.from_rule("iceberg"), True),  # >= 5 files under 96 MiB
        (CompactionPolicy.from_rule("delta", min_small_files=1000), False),
        (CompactionPolicy.from_rule("iceberg", small_file_bytes=100), False),  # no file under 100 bytes
    ],
)
def test_decision_thresholds(small_files_table, policy, warranted):
    stats = DeltaTableHook(str(small_files_table)).get_stats(small_file_bytes=policy.small_file_bytes)
    decision = decide_compaction(stats, policy)
    assert decision.warranted is warranted
    assert len(decision.partitions) == (3 if warranted else 0)
    assert decision.candidate_files == (stats.num_files if warranted else 0)


def test_policy_rules_and_bad_thresholds():
    assert CompactionPolicy.from_rule("iceberg", target_file_bytes=512 * 2**20).small_file_bytes == 384 * 2**20
    assert CompactionPolicy.from_rule("delta").min_small_files == 50
    with pytest.raises(SparkStreamingError, match="Unknown compaction rule"):
        CompactionPolicy.from_rule("hudi")
    with pytest.raises(SparkStreamingError, match="min_small_files at least 2"):
        CompactionPolicy.from_rule("delta", min_small_files=1)


class _TaskInstance:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_sensor_skips_when_compaction_does_not_pay_off(small_files_table):
    ti = _TaskInstance()
    sensor = DeltaSmallFilesSensor(task_id="s", table_uri=str(small_files_table), min_small_files=10_000)
    with pytest.raises(AirflowSkipException, match="not needed: no partition holds 10000 files"):
        sensor.poke({"ti": ti})
    assert ti.pushed["small_files"]["decision"]["warranted"] is False
    ready = DeltaSmallFilesSensor(task_id="s", table_uri=str(small_files_table)).poke({"ti": ti})
    assert ready.is_done and ready.xcom_value["stats"]["num_files"] > 300


def test_missing_and_non_delta_paths(tmp_path):
    with pytest.raises(NotADeltaTableError, match="does not exist"):
        DeltaTableHook(str(tmp_path / "nope")).get_stats()
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "part-0.parquet").write_bytes(b"PAR1")
    with pytest.raises(NotADeltaTableError, match="is not a Delta table"):
        DeltaTableHook(str(tmp_path / "plain")).get_stats()
