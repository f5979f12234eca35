"""The compaction benchmark in smoke mode: both engines compact the same table to the same files."""

from __future__ import annotations

from bench import compaction


def test_both_engines_compact_to_one_file_per_partition(spark, spark_connect_conn):
    # The smoke run's spark engine uses the shared Spark Connect server (the benchmark itself, run from bench/,
    # spark-submits): the subject here is that both engines leave the same files.
    spark_connect_conn("spark_default")
    rows = compaction.run(smoke=True, spark=spark)
    assert [r["engine"] for r in rows] == ["native", "spark"]
    assert all(r["files_before"] == compaction.SMOKE_FILES and r["files_after"] == 4 for r in rows)
    assert all(r["scan_before_s"] > 0 and r["scan_after_s"] > 0 for r in rows)
