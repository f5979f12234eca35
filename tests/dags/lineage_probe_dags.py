"""Test DAG: the provider's own operators, run with dag.test() while the OpenLineage provider writes
its events to a file transport (tests/integration/events/test_lineage.py)."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

with DAG(
    dag_id="lineage_probe",
    schedule=None,
    params={
        "input_uri": Param("", type="string"),
        "table_uri": Param("", type="string"),
        "sink_uri": Param("", type="string"),
    },
) as dag:
    ingest = SparkStreamingSubmitOperator(
        task_id="ingest",
        spec={
            "query_name": "orders_to_delta",
            "checkpoint_location": "{{ params.sink_uri }}/_checkpoint",
            "source": {"format": "json", "path": "{{ params.input_uri }}", "schema": "id INT, region STRING"},
            "sink": {"format": "delta", "path": "{{ params.sink_uri }}"},
            "trigger": {"available_now": True},
        },
    )
    ingest >> DeltaOptimizeOperator(task_id="compact", table_uri="{{ params.table_uri }}", engine="native")
