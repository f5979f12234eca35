"""Delta maintenance on a warm Spark Connect server (the shared ``spark_connect_server``): no spark-submit per task.

The operators take the Connect path when ``spark_conn_id`` names a ``spark_connect`` connection; the
SQL and its checks are the maintenance job's own, run on the server's session.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import SparkConnectUnreachableError, UnsafeRetentionError
from airflow_spark_streaming.hooks.delta import DeltaTableHook
from airflow_spark_streaming.hooks.spark_connect import DeltaConnectHook
from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator
from devstack.process import free_port
from tests.support.delta_fixtures import rows_of


@pytest.fixture
def small_table(tmp_path) -> Path:
    """A Delta table partitioned by region, 30 appends of 2 partitions: 60 small files (delta-rs, no JVM)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    table = tmp_path / "table"
    for batch in range(30):
        ids = list(range(batch * 20, batch * 20 + 20))
        rows = pa.table({"id": pa.array(ids, pa.int64()), "region": ["eu", "us"] * 10,
                         "amount": pa.array([i % 97 for i in ids], pa.int32())})  # fmt: skip
        write_deltalake(str(table), rows, mode="append", partition_by=["region"])
    return table


def _parquet_files(table: Path) -> set[str]:
    return {str(p.relative_to(table)) for p in table.rglob("*.parquet") if "_delta_log" not in p.parts}


def test_optimize_zorder_then_vacuum_run_on_the_connect_server(small_table, spark_connect_conn):
    conn_id = spark_connect_conn()
    rows = rows_of(small_table)
    assert len(_parquet_files(small_table)) == 60

    optimized = DeltaOptimizeOperator(task_id="o", table_uri=str(small_table), engine="spark", spark_conn_id=conn_id,
                                      zorder_by=["amount"]).execute({})  # fmt: skip
    assert optimized["spark_transport"] == "connect"
    assert (optimized["files_before"], optimized["files_after"]) == (60, 2)
    assert optimized["num_files_removed"] == 60 and optimized["num_files_added"] == 2
    last = DeltaTableHook(str(small_table)).get_stats().last_optimize
    assert json.loads(last.parameters["zOrderBy"]) == ["amount"]  # delta-spark's Z-ORDER, not a bin-packing
    assert rows_of(small_table) == rows
    before = _parquet_files(small_table)
    assert len(before) == 62  # the removed files stay until VACUUM

    vacuumed = DeltaVacuumOperator(task_id="v", table_uri=str(small_table), engine="spark", spark_conn_id=conn_id,
                                   retention=timedelta(0), i_understand_this_can_break_readers=True).execute({})  # fmt: skip
    assert vacuumed["spark_transport"] == "connect"
    assert vacuumed["files_to_delete"] == 60
    # What Spark deleted, from its VACUUM END commit, is what left the disk.
    after = _parquet_files(small_table)
    assert len(after) == 2 and vacuumed["files_deleted"] == len(before - after) == 60
    assert rows_of(small_table) == rows


def test_vacuum_below_the_tables_retention_is_refused_over_connect(small_table, spark_connect_conn):
    conn_id = spark_connect_conn()
    DeltaOptimizeOperator(task_id="o", table_uri=str(small_table), engine="native").execute({})
    files = _parquet_files(small_table)
    assert len(files) == 62

    with pytest.raises(UnsafeRetentionError, match="shorter than the table's delta.deletedFileRetentionDuration"):
        DeltaVacuumOperator(task_id="v", table_uri=str(small_table), engine="spark", spark_conn_id=conn_id,
                            retention=timedelta(hours=1)).execute({})  # fmt: skip
    # The server-side check holds too when a caller skips the operator's (the job's own rule, on the Connect session).
    with pytest.raises(UnsafeRetentionError, match="retention of 0h is shorter.*168h"):
        DeltaConnectHook(conn_id).run({"action": "vacuum", "table": str(small_table), "retain_hours": 0})
    assert _parquet_files(small_table) == files


def test_a_wrong_server_address_fails_fast_with_a_named_error(small_table, monkeypatch):
    nobody = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_SC_NOWHERE",
                       json.dumps({"conn_type": "spark_connect", "host": "127.0.0.1", "port": nobody}))  # fmt: skip
    files = _parquet_files(small_table)
    started = time.monotonic()
    with pytest.raises(SparkConnectUnreachableError, match=f"127.0.0.1:{nobody} did not answer within 10s"):
        DeltaOptimizeOperator(task_id="o", table_uri=str(small_table), engine="spark",
                              spark_conn_id="sc_nowhere").execute({})  # fmt: skip
    assert time.monotonic() - started < 30
    assert _parquet_files(small_table) == files
