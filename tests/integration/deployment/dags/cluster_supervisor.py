"""``streaming_supervisor``'s stream with its driver on a Spark standalone cluster (cluster deploy mode).

The connection ``spark_standalone`` names the cluster; the test that runs this DAG creates it through
the REST API, so the deployment starts without a cluster. The spec, query name, table and checkpoint
follow the example DAG (``live_<topic>``, ``<lake>/<topic>_live``, ``<lake>/_checkpoints/<topic>_live``),
so one test drives either DAG. ``start_stream`` retries and reattaches; ``lag_caught_up`` waits in the
triggerer until every record is read; ``stop_stream`` is the teardown that stops the query gracefully.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator, StopStreamingQueryOperator
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor

LAKE_ROOT = os.environ.get("SPARK_STREAMING_LAKE_ROOT", "s3://lake").rstrip("/")
CHECKPOINT = LAKE_ROOT + "/_checkpoints/{{ params.topic }}_live"
#: One core for the driver, one for its executor: the session cluster's worker has two.
SMALL_DRIVER = {"driver_memory": "1g", "executor_memory": "1g", "total_executor_cores": 1}

SPEC = {
    "query_name": "live_{{ params.topic }}",
    "checkpoint_location": CHECKPOINT,
    "source": {
        "format": "kafka",
        "options": {
            "subscribe": "{{ params.topic }}",
            "startingOffsets": "earliest",
            "maxOffsetsPerTrigger": "{{ params.max_offsets_per_trigger }}",
        },
    },
    "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, "
    "partition AS kafka_partition, offset AS kafka_offset FROM source",
    "sink": {"format": "delta", "path": LAKE_ROOT + "/{{ params.topic }}_live", "output_mode": "append"},
    "trigger": {"processing_time": "{{ params.trigger_interval }}"},
}

with DAG(
    dag_id="cluster_supervisor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["deployment-test"],
    params={
        "topic": Param("orders", type="string"),
        "trigger_interval": Param("2 seconds", type="string"),
        "max_offsets_per_trigger": Param(100, type="integer", minimum=1),
        "max_lag": Param(0, type="integer", minimum=0),
    },
):
    start = SparkStreamingSubmitOperator(
        task_id="start_stream",
        spec=SPEC,
        spark_conn_id="spark_standalone",
        kafka_config_id="kafka_default",
        submit_kwargs=SMALL_DRIVER,
        poll_interval=1,
        retries=2,
    )
    caught_up = KafkaLagSensor(
        task_id="lag_caught_up",
        checkpoint=CHECKPOINT,
        kafka_config_id="kafka_default",
        max_total_lag="{{ params.max_lag }}",
        fail_if_stopped=True,
        deferrable=True,
        poke_interval=2,
        timeout=900,
    )
    stop = StopStreamingQueryOperator(task_id="stop_stream", checkpoint=CHECKPOINT, timeout=120)

    start >> caught_up >> stop.as_teardown(setups=start)
