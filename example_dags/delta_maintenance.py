"""Daily Delta maintenance: a small-files check, then OPTIMIZE, then VACUUM (a dry run first).

Compaction runs only when the small-file statistics say it pays off: the
sensor skips itself, and with it everything downstream, otherwise. VACUUM keeps
the table's own retention, so lagging readers never lose files. The table is
``<spark_streaming_lake_root>/<table>`` unless the run passes ``table_uri``.

On S3, pass ``stream_checkpoint``, the checkpoint of the stream that writes the
table: while that stream runs, its runner does the OPTIMIZE and VACUUM between
micro-batches (Delta's S3 log store is safe within one driver only); once it has
stopped, they run here. Without it, OPTIMIZE and VACUUM on S3 are refused before
anything is written: a table that nothing else writes says so with
``no_concurrent_writers=True`` on both operators instead.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, conf

from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator
from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor

# The lake's storage connection ('aws', for a lake root on S3); none for local disk.
STORAGE_CONN_ID = conf.get("spark_streaming", "example_storage_conn_id", fallback="") or None
TABLE_URI = "{{ params.table_uri or (var.value.spark_streaming_lake_root ~ '/' ~ params.table) }}"
STREAM_CHECKPOINT = "{{ params.stream_checkpoint }}"

with DAG(
    dag_id="delta_maintenance",
    description="Compact a streaming Delta table when it pays off, then vacuum it safely",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["spark-streaming", "delta", "example"],
    params={
        "table": Param("orders", type="string", description="table name under the lake root"),
        "table_uri": Param(None, type=["null", "string"], description="full table location, overriding table"),
        "stream_checkpoint": Param(
            None, type=["null", "string"], description="checkpoint of the stream writing the table (needed on S3)"
        ),
        "min_small_files": Param(50, type="integer", minimum=2, description="small files a partition needs"),
    },
    render_template_as_native_obj=True,
) as dag:
    small_files = DeltaSmallFilesSensor(
        task_id="small_files_check",
        table_uri=TABLE_URI,
        storage_conn_id=STORAGE_CONN_ID,
        rule="delta",
        min_small_files="{{ params.min_small_files }}",
        poke_interval=60,
        timeout=60,
    )

    optimize = DeltaOptimizeOperator(
        task_id="optimize",
        table_uri=TABLE_URI,
        engine="auto",
        storage_conn_id=STORAGE_CONN_ID,
        stream_checkpoint=STREAM_CHECKPOINT,
    )

    vacuum_dry_run = DeltaVacuumOperator(
        task_id="vacuum_dry_run", table_uri=TABLE_URI, dry_run=True, storage_conn_id=STORAGE_CONN_ID
    )

    vacuum = DeltaVacuumOperator(
        task_id="vacuum",
        table_uri=TABLE_URI,
        mode="lite",
        storage_conn_id=STORAGE_CONN_ID,
        stream_checkpoint=STREAM_CHECKPOINT,
    )

    small_files >> optimize >> vacuum_dry_run >> vacuum
