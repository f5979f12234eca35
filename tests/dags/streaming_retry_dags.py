"""Test DAG: a worker dies while the start task waits for its query; the retry must reattach (dag.test())."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param

from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator, StopStreamingQueryOperator


class CrashAfterSubmitOperator(SparkStreamingSubmitOperator):
    """Fault injection: the first try dies after the submission was stored, as a worker crash would."""

    def poll_until_complete(self, external_id, context):
        if context["ti"].try_number == 1:
            raise RuntimeError("injected fault: the worker died while waiting for the query")
        return super().poll_until_complete(external_id, context)


with DAG(
    dag_id="streaming_start_retry",
    schedule=None,
    params={"spec": Param({}, type="object"), "checkpoint": Param("", type="string")},
) as dag:
    start = CrashAfterSubmitOperator(
        task_id="start",
        spec="{{ params.spec | tojson }}",
        conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"},
        retries=1,
        retry_delay=timedelta(seconds=0),
        poll_interval=1,
    )
    stop = StopStreamingQueryOperator(task_id="stop", checkpoint="{{ params.checkpoint }}", timeout=120)
    start >> stop.as_teardown(setups=start)
