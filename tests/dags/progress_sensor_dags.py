"""Test DAGs: StreamingProgressSensor in poke and deferrable mode (run with dag.test())."""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor

for mode, deferrable in (("poke", False), ("deferred", True)):
    with DAG(
        dag_id=f"progress_sensor_{mode}",
        schedule=None,
        params={"checkpoint": Param("", type="string"), "target": Param(0, type="integer")},
    ) as dag:
        wait = StreamingProgressSensor(
            task_id="wait_for_batch",
            checkpoint="{{ params.checkpoint }}",
            target_batch_id="{{ params.target }}",
            deferrable=deferrable,
            poke_interval=1,
            timeout=120,
        )

        @task
        def report(status: dict) -> int:
            return status["latest_committed_batch"]

        report(wait.output)
    globals()[dag.dag_id] = dag
