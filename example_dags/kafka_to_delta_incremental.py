"""Every hour, a bounded (availableNow) ingest of a Kafka topic into a Delta table.

The ingest runs the provider's declarative stream runner with spark-submit
(``SparkStreamingSubmitOperator``) through the ``spark_default`` connection. The
``kafka_default`` connection (the Kafka provider's, with SASL/TLS settings if the
brokers need them) serves both the stream (``kafka_config_id``) and the lag
sensor. Where the table and its checkpoint live is a DAG param, so nothing here
names a machine path.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, conf, task

from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor

# The lake's storage connection ('aws', for a lake root on S3, s3:// or s3a://); none for local disk.
STORAGE_CONN_ID = conf.get("spark_streaming", "example_storage_conn_id", fallback="") or None

with DAG(
    dag_id="kafka_to_delta_incremental",
    description="Hourly availableNow ingest from Kafka into Delta Lake",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # two runs must never share the checkpoint
    tags=["spark-streaming", "example"],
    params={
        "topic": Param("orders", type="string", description="Kafka topic to ingest"),
        "table_uri": Param(None, type=["null", "string"], description="Delta table; default <lake root>/<topic>"),
        "checkpoint_uri": Param(
            None, type=["null", "string"], description="Query checkpoint; default <lake root>/_checkpoints/<topic>"
        ),
        "max_offsets_per_trigger": Param(10_000, type="integer", minimum=1),
    },
) as dag:

    @task
    def build_spec(params: dict | None = None) -> dict:
        """The stream runner's spec, built at run time from params and a Variable."""
        from airflow.sdk import Variable

        topic = params["topic"]
        lake_root = None
        if not (params["table_uri"] and params["checkpoint_uri"]):
            lake_root = Variable.get("spark_streaming_lake_root").rstrip("/")
        table_uri = params["table_uri"] or f"{lake_root}/{topic}"
        checkpoint_uri = params["checkpoint_uri"] or f"{lake_root}/_checkpoints/{topic}"
        spec = {
            "query_name": f"ingest_{topic}",
            "checkpoint_location": checkpoint_uri,
            "source": {
                "format": "kafka",
                "options": {
                    "subscribe": topic,
                    "startingOffsets": "earliest",
                    "maxOffsetsPerTrigger": params["max_offsets_per_trigger"],
                },
            },
            "transform_sql": (
                "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, topic, "
                "partition AS kafka_partition, offset AS kafka_offset, timestamp AS kafka_timestamp FROM source"
            ),
            "sink": {"format": "delta", "path": table_uri, "output_mode": "append"},
            "trigger": {"available_now": True},
        }
        return {"spec": json.dumps(spec), "table_uri": table_uri, "checkpoint_uri": checkpoint_uri}

    locations = build_spec()

    # Bounded: works through the backlog and ends; succeeds only with every batch committed.
    # The broker and its credentials come from the kafka connection; they reach the driver only in the private spec.
    ingest = SparkStreamingSubmitOperator(
        task_id="ingest",
        spec=locations["spec"],
        spark_conn_id="spark_default",
        kafka_config_id="kafka_default",
        storage_conn_id=STORAGE_CONN_ID,
    )

    @task
    def table_summary(table_uri: str) -> dict:
        """What the table holds after the ingest, read from the Delta log without a JVM."""
        from airflow_spark_streaming.hooks.delta import DeltaTableHook

        stats = DeltaTableHook(table_uri, storage_conn_id=STORAGE_CONN_ID).get_stats()
        return {"table_version": stats.version, "rows": stats.num_records, "files": stats.num_files}

    # The bounded run must have committed everything it planned, and the stream
    # must not have stood still for two schedule intervals.
    progress_check = StreamingProgressSensor(
        task_id="progress_check",
        checkpoint=locations["checkpoint_uri"],
        storage_conn_id=STORAGE_CONN_ID,
        require_fully_committed=True,
        max_staleness=timedelta(hours=2),
        poke_interval=30,
        timeout=600,
    )

    # Spark commits no consumer-group offsets: lag is the broker's latest offsets
    # minus the checkpoint's. After a bounded run it should be under one trigger's worth.
    lag_check = KafkaLagSensor(
        task_id="lag_check",
        checkpoint=locations["checkpoint_uri"],
        storage_conn_id=STORAGE_CONN_ID,
        kafka_config_id="kafka_default",
        max_total_lag="{{ params.max_offsets_per_trigger }}",
        poke_interval=30,
        timeout=600,
    )

    ingest >> [progress_check, lag_check] >> table_summary(locations["table_uri"])
