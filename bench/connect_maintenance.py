"""Spark-engine OPTIMIZE of small files: spark-submit per task against a warm Spark Connect server, and native.

Builds one partitioned Delta table of at least 2,000 small files with local Spark (the compaction
benchmark's builder), copies it per path, and runs ``DeltaOptimizeOperator`` three ways in one run:
``engine="native"`` (delta-rs), ``engine="spark"`` through a ``spark`` connection (a spark-submit and
a fresh JVM per task) and ``engine="spark"`` through a ``spark_connect`` connection to a local Connect
server (:mod:`devstack.spark_connect`) that was started, and warmed with one OPTIMIZE of another copy,
before the clock starts. Every figure is end to end: the operator's ``execute``, reading the table's
stats before and after included.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import add_speed_up, bench_main, local_connect_server
from bench.compaction import FILES, SMOKE_FILES, build_table


def _optimize(path: Path, engine: str, conn_id: str) -> tuple[float, dict]:
    from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator

    task = DeltaOptimizeOperator(task_id=f"bench_{engine}", table_uri=str(path), engine=engine, spark_conn_id=conn_id)
    started = time.perf_counter()
    result = task.execute({})
    return time.perf_counter() - started, result


def run(smoke: bool = False) -> list[dict]:
    files = SMOKE_FILES if smoke else FILES
    os.environ.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-connect-") as work:
        base = Path(work) / "base"
        build_table(base, files)
        with local_connect_server(Path(work) / "server", "spark_connect_bench") as server_start:
            shutil.copytree(base, Path(work) / "warm-up")
            warm_up, _ = _optimize(Path(work) / "warm-up", "spark", "spark_connect_bench")
            cases = (("native", "native", "spark_default"), ("spark-submit", "spark", "spark_default"),
                     ("spark-connect", "spark", "spark_connect_bench"))  # fmt: skip
            for name, engine, conn_id in cases:
                table = Path(work) / name
                shutil.copytree(base, table)
                seconds, result = _optimize(table, engine, conn_id)
                rows.append({"path": name, "files_before": result["files_before"],
                             "files_after": result["files_after"], "optimize_s": round(seconds, 2),
                             "transport": result.get("spark_transport", "-")})  # fmt: skip
    add_speed_up(rows, "optimize_s")
    rows.append({"path": "(connect server start, once)", "optimize_s": round(server_start, 2)})
    rows.append({"path": "(connect first OPTIMIZE after start)", "optimize_s": round(warm_up, 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return bench_main(argv, doc=__doc__, name="connect_maintenance",
                      title="DeltaOptimizeOperator engine=spark: spark-submit vs Spark Connect (warm), and native",
                      run=lambda args: run(args.smoke),
                      notes="end to end execute(); the Connect server is started and warmed before timing")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
