"""The compaction benchmark in smoke mode: both engines compact the same table to the same files."""

from __future__ import annotations

import json

from bench import compaction


def test_both_engines_compact_to_one_file_per_partition(spark, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    rows = compaction.run(smoke=True, spark=spark)
    assert [r["engine"] for r in rows] == ["native", "spark"]
    assert all(r["files_before"] == compaction.SMOKE_FILES and r["files_after"] == 4 for r in rows)
    assert all(r["scan_before_s"] > 0 and r["scan_after_s"] > 0 for r in rows)
