"""The Connect route on S3: a bounded ingest into an ``s3://`` table and checkpoint, then its maintenance.

The shared Connect server reaches the bucket with its own S3A settings (given at its start); the
tasks send no storage credential. The Airflow side (the lease, progress events, delta-rs statistics
and VACUUM planning) uses the ``aws`` connection.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.hooks.storage import StorageHook
from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from tests.support.streaming_helpers import kafka_to_delta_spec, produce_keyed

pytestmark = [pytest.mark.kafka]


def test_s3_ingest_then_optimize_and_vacuum_over_connect(
    kafka_broker, kafka_topic, s3_server, s3_bucket, storage_conn, spark_connect_conn
):
    from deltalake import DeltaTable

    conn_id, lake = storage_conn(), f"s3://{s3_bucket}/lake"
    connect = spark_connect_conn()
    topic = kafka_topic(partitions=2)
    per_partition = produce_keyed(kafka_broker.bootstrap_servers, topic, 400, partitions=2)
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, f"{lake}/orders", f"{lake}/_checkpoints/orders",
                               maxOffsetsPerTrigger=40)  # fmt: skip
    result = SparkStreamingSubmitOperator(task_id="ingest", spec=spec, spark_conn_id=connect,
                                          storage_conn_id=conn_id).execute({})  # fmt: skip

    assert result["spark_transport"] == "connect"
    assert (result["batches_committed"], result["rows_processed"]) == (10, 400)
    assert result["committed_sources"] == [{topic: {str(p): n for p, n in per_partition.items()}}]
    options = StorageHook(conn_id).delta_storage_options()
    table = DeltaTable(f"{lake}/orders", storage_options=options)
    rows = table.to_pyarrow_table().to_pylist()
    assert sorted((r["kafka_partition"], r["kafka_offset"]) for r in rows) == sorted(
        (p, o) for p, n in per_partition.items() for o in range(n)
    )
    control = RunnerControlHook(f"{lake}/_checkpoints/orders", storage_conn_id=conn_id)
    assert control.get_lease() is None and len(control.get_progress()) == 10
    keys = {o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert not any("_lease_probe" in key for key in keys)  # the conditional-create proof cleaned up
    files_before = len(table.file_uris())
    # The stream's checkpoint is named: its lease is free (the bounded run ended), so the maintenance runs here.
    assert files_before >= 10

    optimized = DeltaOptimizeOperator(task_id="optimize", table_uri=f"{lake}/orders", engine="spark",
                                      spark_conn_id=connect, storage_conn_id=conn_id,
                                      stream_checkpoint=f"{lake}/_checkpoints/orders").execute({})  # fmt: skip
    assert optimized["spark_transport"] == "connect"
    assert (optimized["files_before"], optimized["files_after"]) == (files_before, 1)
    vacuumed = DeltaVacuumOperator(task_id="vacuum", table_uri=f"{lake}/orders", engine="spark",
                                   spark_conn_id=connect, storage_conn_id=conn_id, retention=timedelta(0),
                                   i_understand_this_can_break_readers=True,
                                   stream_checkpoint=f"{lake}/_checkpoints/orders").execute({})  # fmt: skip
    assert vacuumed["spark_transport"] == "connect" and vacuumed["files_to_delete"] == files_before
    parquet = [k for k in {o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
               if k.startswith("lake/orders/") and k.endswith(".parquet") and "/_delta_log/" not in k]  # fmt: skip
    assert len(parquet) == 1
    after = DeltaTable(f"{lake}/orders", storage_options=options).to_pyarrow_table().to_pylist()
    assert sorted((r["kafka_partition"], r["kafka_offset"]) for r in after) == sorted(
        (r["kafka_partition"], r["kafka_offset"]) for r in rows
    )
