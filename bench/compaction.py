"""Compaction of a table of small files: native (delta-rs) against spark (spark-submit), and the full-scan read.

Builds one partitioned Delta table of at least 2,000 small files with local
Spark, copies it per engine, runs ``DeltaOptimizeOperator`` with each engine,
and times a full-scan read (delta-rs into Arrow) before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_main

FILES, SMOKE_FILES = 2_000, 120
ROWS_PER_FILE = 50


def build_table(path: Path, files: int, spark=None) -> None:
    """Write the table with ``spark`` (or a local session made, and stopped, here)."""
    own_session = spark is None
    if own_session:
        from pyspark.sql import SparkSession

        from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies

        builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
        for key, value in resolve_jvm_dependencies(delta=True, resolver="packages").session_conf().items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    frame = spark.range(files * ROWS_PER_FILE).selectExpr(
        "id", "CAST(id % 4 AS STRING) AS region", "id % 1000 AS amount", "uuid() AS note"
    )
    # One task per file and partition value: files // 4 tasks, each writing into all 4 regions.
    frame.repartition(files // 4).write.format("delta").partitionBy("region").save(str(path))
    if own_session:
        spark.stop()


def full_scan_seconds(path: Path, repeats: int) -> float:
    from deltalake import DeltaTable

    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows = DeltaTable(str(path)).to_pyarrow_table().num_rows
        timings.append(time.perf_counter() - started)
    assert rows > 0
    return statistics.median(timings)


def run(smoke: bool = False, spark=None) -> list[dict]:
    from airflow_spark_streaming.hooks.delta import DeltaTableHook
    from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator

    os.environ.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    files = SMOKE_FILES if smoke else FILES
    repeats = 1 if smoke else 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-compaction-") as work:
        base = Path(work) / "base"
        build_table(base, files, spark)
        for engine in ("native", "spark"):
            table = Path(work) / engine
            shutil.copytree(base, table)
            files_before = DeltaTableHook(str(table)).get_stats().num_files
            scan_before = full_scan_seconds(table, repeats)
            started = time.perf_counter()
            result = DeltaOptimizeOperator(task_id=f"bench_{engine}", table_uri=str(table), engine=engine).execute({})
            seconds = time.perf_counter() - started
            rows.append({
                "engine": engine, "files_before": files_before, "files_after": result["files_after"],
                "optimize_s": round(seconds, 2), "scan_before_s": round(scan_before, 3),
                "scan_after_s": round(full_scan_seconds(table, repeats), 3),
            })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return bench_main(argv, doc=__doc__, name="compaction", title="DeltaOptimizeOperator: native vs spark engine",
                      run=lambda args: run(args.smoke),
                      notes="optimize_s includes spark-submit start-up for the spark engine; scans read with delta-rs")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
