"""The session SparkSession writes real Delta tables that the JVM-free reader agrees with."""

from __future__ import annotations

from tests.support.streaming_helpers import read_delta


def test_session_fixture_has_delta_and_few_shuffle_partitions(spark, tmp_path):
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.ui.enabled") == "false"
    table = tmp_path / "numbers"
    spark.range(100).selectExpr("id", "id % 3 AS bucket").write.format("delta").partitionBy("bucket").save(str(table))
    spark.sql(f"DELETE FROM delta.`{table}` WHERE id >= 90")
    rows = read_delta(table)
    assert sorted(r["id"] for r in rows) == list(range(90))
    assert {r["bucket"] for r in rows} == {0, 1, 2}
    history = spark.sql(f"DESCRIBE HISTORY delta.`{table}`").select("operation").collect()
    assert [h.operation for h in history] == ["DELETE", "WRITE"]
