"""Test DAGs: the whole provider with its checkpoint and table on S3, through one ``aws`` connection.

``s3_ingest``: Kafka -> Delta (availableNow) and Kafka -> Parquet file sink, both on
``s3a://``; then the progress and lag sensors read the ``s3://`` checkpoint in poke
and deferred mode. ``s3_maintenance``: small-files sensor, OPTIMIZE with both
engines, VACUUM (dry run, refusal, run) and the file-sink conversion, all on S3.
The connection ids come in as params; nothing here names a bucket or a secret.
"""

from __future__ import annotations

import json
from datetime import timedelta

from airflow.sdk import DAG, Param, task

from airflow_spark_streaming.operators.delta import (
    ConvertFileSinkToDeltaOperator,
    DeltaOptimizeOperator,
    DeltaVacuumOperator,
)
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor

STORAGE = "lake_s3"

with DAG(
    dag_id="s3_ingest",
    schedule=None,
    params={
        "topic": Param("", type="string"),
        "bootstrap": Param("", type="string"),
        "root": Param("", type="string"),  # s3a://<bucket>/<prefix>
        "max_offsets": Param(100, type="integer"),
    },
) as ingest_dag:

    @task
    def specs(params: dict | None = None) -> dict:
        root, topic = params["root"], params["topic"]

        def spec(name: str, sink: dict) -> str:
            return json.dumps({
                "query_name": f"{name}_{topic}",
                "checkpoint_location": f"{root}/_checkpoints/{name}",
                "source": {"format": "kafka", "options": {
                    "kafka.bootstrap.servers": params["bootstrap"], "subscribe": topic,
                    "startingOffsets": "earliest", "maxOffsetsPerTrigger": params["max_offsets"]}},
                "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, "
                                 "partition AS kafka_partition, offset AS kafka_offset FROM source",
                "sink": sink,
                "trigger": {"available_now": True},
            })  # fmt: skip

        return {
            "delta": spec("delta", {"format": "delta", "path": f"{root}/table", "output_mode": "append",
                                    "partition_by": ["kafka_partition"]}),
            "parquet": spec("parquet", {"format": "parquet", "path": f"{root}/raw", "output_mode": "append"}),
        }  # fmt: skip

    built = specs()
    checkpoint = "{{ params.root }}/_checkpoints/delta"
    # Either spelling works: the progress sensors read s3://, the lag sensors s3a://.
    checkpoint_s3 = "{{ params.root | replace('s3a://', 's3://') }}/_checkpoints/delta"
    ingest = SparkStreamingSubmitOperator(task_id="ingest", spec=built["delta"], storage_conn_id=STORAGE)
    ingest_raw = SparkStreamingSubmitOperator(task_id="ingest_raw", spec=built["parquet"], storage_conn_id=STORAGE)
    sensors = []
    for mode, deferrable in (("poke", False), ("deferred", True)):
        sensors.append(StreamingProgressSensor(
            task_id=f"progress_{mode}", checkpoint=checkpoint_s3, storage_conn_id=STORAGE,
            require_fully_committed=True, deferrable=deferrable, poke_interval=1, timeout=120,
        ))  # fmt: skip
        sensors.append(KafkaLagSensor(
            task_id=f"lag_{mode}", checkpoint=checkpoint, storage_conn_id=STORAGE, max_total_lag=0,
            deferrable=deferrable, poke_interval=1, timeout=120,
        ))  # fmt: skip
    ingest >> ingest_raw >> sensors


with DAG(
    dag_id="s3_maintenance",
    schedule=None,
    params={"root": Param("", type="string")},
) as maintenance_dag:
    table = "{{ params.root }}/table"
    # The ingest's stream wrote this table: naming its checkpoint lets maintenance run here once it has stopped.
    stream = "{{ params.root }}/_checkpoints/delta"
    small_files = DeltaSmallFilesSensor(
        task_id="small_files", table_uri=table, storage_conn_id=STORAGE, min_small_files=3, poke_interval=1, timeout=60
    )
    optimize_native = DeltaOptimizeOperator(
        task_id="optimize_native", table_uri=table, storage_conn_id=STORAGE, stream_checkpoint=stream, engine="native",
        partition_filters=[("kafka_partition", "=", "0")],
    )  # fmt: skip
    optimize_spark = DeltaOptimizeOperator(
        task_id="optimize_spark", table_uri=table, storage_conn_id=STORAGE, stream_checkpoint=stream, engine="spark",
        partition_filters=[("kafka_partition", "=", "1")],
    )  # fmt: skip
    vacuum_dry_run = DeltaVacuumOperator(
        task_id="vacuum_dry_run", table_uri=table, storage_conn_id=STORAGE, dry_run=True
    )
    vacuum_refused = DeltaVacuumOperator(
        task_id="vacuum_refused",
        table_uri=table,
        storage_conn_id=STORAGE,
        stream_checkpoint=stream,
        retention=timedelta(hours=1),
        retries=0,
    )
    vacuum_run = DeltaVacuumOperator(
        task_id="vacuum_run", table_uri=table, storage_conn_id=STORAGE, stream_checkpoint=stream, retention=timedelta(hours=1), mode="full",
        i_understand_this_can_break_readers=True, engine="native", trigger_rule="all_done",
    )  # fmt: skip
    convert = ConvertFileSinkToDeltaOperator(
        task_id="convert", table_uri="{{ params.root }}/raw", target_uri="{{ params.root }}/converted",
        storage_conn_id=STORAGE, trigger_rule="all_done",
    )  # fmt: skip
    small_files >> optimize_native >> optimize_spark >> vacuum_dry_run >> vacuum_refused >> vacuum_run >> convert
