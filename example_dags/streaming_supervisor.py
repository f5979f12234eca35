"""Supervise a long-running stream: start it, watch freshness and lag with deferrable sensors, stop it gracefully.

The query (Kafka → Delta, a micro-batch every 30 seconds by default) runs
where the ``spark_default`` connection says: with ``{"deploy-mode": "cluster"}``
on a standalone, YARN or Kubernetes master its driver runs in the cluster;
on a local master it is a detached driver on the worker. Either way it holds its
checkpoint's lease, and a retry of ``start_stream`` reattaches to it (the
submission is kept in Airflow's task state store). The sensors wait in the
triggerer, not in a worker slot. ``stream_is_healthy`` waits on the stream's
status, not on a count of new batches: on a quiet topic Spark runs no batches,
and an idle, caught-up query with a live lease is ``OK``.
``stop_stream`` is a teardown: it always runs, so a failed check never leaves
the query behind, and the checks still decide whether the run failed.

A long-running stream needs the control key connection
(``spark_streaming_control_default``; see "Running streams"): it signs the
records beside the checkpoint that a stop acts on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator, StopStreamingQueryOperator
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor

with DAG(
    dag_id="streaming_supervisor",
    description="Start a long-running Kafka to Delta stream, watch it, stop it gracefully",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["spark-streaming", "example"],
    params={
        "topic": Param("orders", type="string"),
        "trigger_interval": Param("30 seconds", type="string"),
        "max_offsets_per_trigger": Param(10_000, type="integer", minimum=1),
        "max_lag": Param(0, type="integer", minimum=0, description="lag at or below which the stream has caught up"),
    },
) as dag:

    @task
    def stream_spec(params: dict | None = None) -> dict:
        from airflow.sdk import Variable

        topic = params["topic"]
        lake_root = Variable.get("spark_streaming_lake_root").rstrip("/")
        checkpoint = f"{lake_root}/_checkpoints/{topic}_live"
        spec = {
            "query_name": f"live_{topic}",
            "checkpoint_location": checkpoint,
            "source": {
                "format": "kafka",
                "options": {
                    "subscribe": topic,
                    "startingOffsets": "earliest",
                    "maxOffsetsPerTrigger": params["max_offsets_per_trigger"],
                },
            },
            "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, "
            "partition AS kafka_partition, offset AS kafka_offset FROM source",
            "sink": {"format": "delta", "path": f"{lake_root}/{topic}_live", "output_mode": "append"},
            "trigger": {"processing_time": params["trigger_interval"]},
        }
        return {"spec": json.dumps(spec), "checkpoint": checkpoint}

    stream = stream_spec()
    # One kafka connection for the stream and the lag sensor.
    start = SparkStreamingSubmitOperator(
        task_id="start_stream", spec=stream["spec"], kafka_config_id="kafka_default", retries=2
    )

    healthy = StreamHealthSensor(
        task_id="stream_is_healthy",
        checkpoint=stream["checkpoint"],
        wait_for=("OK",),
        fail_on=("STALLED", "STOPPED", "REWOUND"),  # LAGGING keeps waiting
        deferrable=True,
        poke_interval=5,
        timeout=3600,
    )
    caught_up = KafkaLagSensor(
        task_id="lag_caught_up",
        checkpoint=stream["checkpoint"],
        kafka_config_id="kafka_default",
        max_total_lag="{{ params.max_lag }}",
        min_retention_headroom=timedelta(minutes=30),  # fail before retention deletes unread records
        fail_if_stopped=True,  # a query that died cannot catch up: fail now, not at the timeout
        deferrable=True,
        poke_interval=5,
        timeout=3600,
    )
    stop = StopStreamingQueryOperator(task_id="stop_stream", checkpoint=stream["checkpoint"])

    # A teardown: it runs even when a check fails, and the checks still decide the run's state.
    start >> [healthy, caught_up] >> stop.as_teardown(setups=start)
