"""Test DAGs: KafkaLagSensor in poke and deferrable mode (run with dag.test())."""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor

for mode, deferrable in (("poke", False), ("deferred", True)):
    with DAG(
        dag_id=f"kafka_lag_sensor_{mode}",
        schedule=None,
        params={"checkpoint": Param("", type="string"), "max_lag": Param(0, type="integer")},
    ) as dag:
        lag = KafkaLagSensor(
            task_id="lag_is_low",
            checkpoint="{{ params.checkpoint }}",
            max_total_lag="{{ params.max_lag }}",
            deferrable=deferrable,
            poke_interval=1,
            timeout=180,
        )

        @task
        def total(report: dict) -> int:
            return report["total_lag"]

        total(lag.output)
    globals()[dag.dag_id] = dag
