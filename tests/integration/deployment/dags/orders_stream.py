"""Deployment-test DAGs around one long-running stream of orders into the lake's ``orders`` Delta table.

* ``orders_stream_start`` starts the stream (``SparkStreamingSubmitOperator``, long-running:
  Kafka JSON orders → ``order_id``, ``region``, ``amount``), ``orders_stream_stop`` stops it.
* ``on_orders_batch`` runs on the micro-batches its checkpoint commits: the ``orders_batches``
  asset is watched by ``CheckpointCommitEventTrigger``. Its task reads ``triggering_asset_events``,
  checks each event against the Delta table (the version written by that batch, its row count)
  and against the previous event (no gap), and returns what it checked.

The table is ``$SPARK_STREAMING_LAKE_ROOT/orders``, the one the example DAG
``downstream_on_commit`` watches through ``DeltaVersionEventTrigger``; its checkpoint is
``$SPARK_STREAMING_LAKE_ROOT/_checkpoints/orders``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher, Param, task

from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator, StopStreamingQueryOperator
from airflow_spark_streaming.triggers.events import CheckpointCommitEventTrigger

LAKE_ROOT = os.environ.get("SPARK_STREAMING_LAKE_ROOT", "s3://lake").rstrip("/")
ORDERS_TABLE = f"{LAKE_ROOT}/orders"
CHECKPOINT = f"{LAKE_ROOT}/_checkpoints/orders"
POLL_INTERVAL = float(os.environ.get("SPARK_STREAMING_EVENT_POLL_INTERVAL", "30"))

orders_batches = Asset(
    name="orders_batches",
    uri=CHECKPOINT if "://" in CHECKPOINT else f"file://{CHECKPOINT}",
    watchers=[
        AssetWatcher(
            name="orders_commits",
            trigger=CheckpointCommitEventTrigger(CHECKPOINT, poll_interval=POLL_INTERVAL, progress_grace_seconds=30),
        )
    ],
)

SPEC = {
    "query_name": "orders_live",
    "checkpoint_location": CHECKPOINT,
    "source": {
        "format": "kafka",
        "options": {
            "subscribe": "{{ params.topic }}",
            "startingOffsets": "earliest",
            "maxOffsetsPerTrigger": "{{ params.max_offsets_per_trigger }}",
        },
    },
    "transform_sql": (
        "SELECT CAST(key AS STRING) AS order_id, get_json_object(CAST(value AS STRING), '$.region') AS region, "
        "CAST(get_json_object(CAST(value AS STRING), '$.amount') AS BIGINT) AS amount FROM source"
    ),
    "sink": {"format": "delta", "path": ORDERS_TABLE, "output_mode": "append"},
    "trigger": {"processing_time": "{{ params.trigger_interval }}"},
    # The deferred-sensor test pauses the driver (SIGSTOP) for up to a minute: its lease must outlive that.
    "lease_ttl_seconds": 300,
}

with DAG(
    dag_id="orders_stream_start",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "topic": Param("orders", type="string"),
        "trigger_interval": Param("2 seconds", type="string"),
        "max_offsets_per_trigger": Param(1000, type="integer", minimum=1),
    },
):
    SparkStreamingSubmitOperator(
        task_id="start_stream",
        spec=SPEC,
        kafka_config_id="kafka_default",
        conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"},
        poll_interval=1,
    )

with DAG(dag_id="orders_stream_stop", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    StopStreamingQueryOperator(task_id="stop_stream", checkpoint=CHECKPOINT, timeout=120)


def batches_in_table(table_uri: str) -> dict[int, dict]:
    """Batch id → the Delta version the streaming sink wrote for it and its row count (from the commit info)."""
    from deltalake import DeltaTable

    found = {}
    for info in DeltaTable(table_uri).history():
        parameters = info.get("operationParameters") or {}
        if info.get("operation") == "STREAMING UPDATE" and "epochId" in parameters:
            metrics = info.get("operationMetrics") or {}
            found[int(parameters["epochId"])] = {
                "version": int(info["version"]),
                "rows": int(metrics.get("numOutputRows", 0)),
            }
    return found


with DAG(
    dag_id="on_orders_batch",
    schedule=[orders_batches],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["deployment-test"],
):

    @task(inlets=[orders_batches])
    def check_batches(triggering_asset_events=None) -> list[dict]:
        payloads = sorted(
            (e.extra["payload"] for e in triggering_asset_events[orders_batches]), key=lambda p: p["batch_id"]
        )
        in_table = batches_in_table(ORDERS_TABLE)
        checked = []
        for payload in payloads:
            batch, previous = payload["batch_id"], payload["previous_event_batch_id"]
            if previous is not None and previous != batch - 1:
                raise ValueError(f"gap before batch {batch}: the watcher's previous event was batch {previous}")
            written = in_table.get(batch)
            if written is None:
                raise ValueError(f"batch {batch} is committed in the checkpoint but wrote no Delta version")
            # Spark's Delta sink reports no output count; the trigger reads it from the batch's Delta commit.
            if payload["rows"] != written["rows"] or payload["output_rows"] != written["rows"]:
                raise ValueError(
                    f"batch {batch}: the event says {payload['rows']} rows ({payload['output_rows']} out), "
                    f"Delta {written['rows']}"
                )
            checked.append(
                {"batch_id": batch, "rows": payload["rows"], "previous_event_batch_id": previous,
                 "delta_version": written["version"], "query_id": payload["query_id"]}
            )  # fmt: skip
        return checked

    check_batches()
