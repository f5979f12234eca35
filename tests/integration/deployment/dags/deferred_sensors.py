"""Deployment-test DAG: three deferrable sensors on the orders stream, each waiting for what the test controls.

* ``next_batch``: ``StreamingProgressSensor`` until batch ``params.target_batch`` has committed;
* ``caught_up``: ``KafkaLagSensor`` until the stream's Kafka lag is 0;
* ``stream_stopped``: ``StreamHealthSensor`` until the stream is ``STOPPED``.

The stream is the one ``orders_stream_start`` runs (checkpoint ``$SPARK_STREAMING_LAKE_ROOT/_checkpoints/orders``).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor

CHECKPOINT = f"{os.environ.get('SPARK_STREAMING_LAKE_ROOT', 's3://lake').rstrip('/')}/_checkpoints/orders"

with DAG(
    dag_id="deferred_sensors",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"target_batch": Param(1, type="integer", minimum=0)},
    render_template_as_native_obj=True,
):
    StreamingProgressSensor(
        task_id="next_batch",
        checkpoint=CHECKPOINT,
        target_batch_id="{{ params.target_batch }}",
        idle_is_progress=False,
        deferrable=True,
        poke_interval=1,
        timeout=900,
    )
    KafkaLagSensor(
        task_id="caught_up",
        checkpoint=CHECKPOINT,
        kafka_config_id="kafka_default",
        max_total_lag=0,
        deferrable=True,
        poke_interval=1,
        timeout=900,
    )
    StreamHealthSensor(
        task_id="stream_stopped",
        checkpoint=CHECKPOINT,
        kafka_config_id="kafka_default",
        wait_for=("STOPPED",),
        fail_on=("REWOUND",),
        deferrable=True,
        poke_interval=1,
        timeout=900,
    )
