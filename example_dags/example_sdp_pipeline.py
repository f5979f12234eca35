"""A Spark Declarative Pipeline (Kafka to a Delta streaming table) watched and compacted as a first-class stream.

``run_pipeline`` is the Spark provider's ``SparkPipelinesOperator`` on a ``spark_connect`` connection: it runs
``spark-pipelines`` (``pyspark.pipelines.cli``) against a warm Spark Connect server. The pipeline lives in
``sdp_orders/`` beside this file; ``stage_pipeline`` copies it beside the lake and writes its spec's ``storage`` and
the topic, table and brokers into the spec's configuration. The lag sensor and OPTIMIZE then name the pipeline and
its flow, not a checkpoint path: the provider finds the flow's checkpoint under the pipeline's storage
(``_checkpoints/<catalog>/<database>/<table>/<flow>/<version>``, see docs/sdp-pipelines.md), and OPTIMIZE asks the
Connect server's catalog where the flow's table lives (``DESCRIBE DETAIL``).

Reads the ``kafka_default`` connection (its ``bootstrap.servers`` only: credentials belong to the Connect server,
not to a spec file), the ``spark_connect_default`` connection, and the ``spark_streaming_lake_root`` Variable (a
local folder: spark-pipelines reads the staged spec from this machine's disk).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_pipelines import SparkPipelinesOperator
from airflow.sdk import DAG, Param, task

from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor

PIPELINE = Path(__file__).parent / "sdp_orders"
SPEC = "{{ ti.xcom_pull(task_ids='stage_pipeline') }}"

with DAG(
    dag_id="example_sdp_pipeline",
    description="An SDP pipeline from Kafka into Delta, its flow's lag watched, its table compacted",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # two runs of one pipeline must never share its checkpoints
    tags=["spark-streaming", "example", "sdp"],
    params={
        "topic": Param("orders", type="string", description="Kafka topic the flow reads"),
        "table": Param("orders", type="string", pattern="^[A-Za-z0-9_]+$", description="the streaming table"),
    },
) as dag:

    @task
    def stage_pipeline(params: dict | None = None) -> str:
        """Copy the pipeline beside the lake and write its spec; return the staged spec's path."""
        import shutil

        import yaml
        from airflow.sdk import BaseHook, Variable

        from airflow_spark_streaming.pipelines.spec import parse_pipeline_spec

        spec = parse_pipeline_spec((PIPELINE / "spark-pipeline.yml").read_bytes(), source=str(PIPELINE))
        staged = Path(Variable.get("spark_streaming_lake_root")).resolve() / "sdp" / params["table"]
        shutil.copytree(PIPELINE / "transformations", staged / "transformations", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        brokers = BaseHook.get_connection("kafka_default").extra_dejson["bootstrap.servers"]
        configuration = {**spec.configuration, "sdp.orders.table": params["table"], "sdp.orders.topic": params["topic"],
                         "sdp.orders.bootstrap_servers": brokers}  # fmt: skip
        document = {"name": f"{spec.name}_{params['table']}", "storage": (staged / "storage").as_uri(),
                    "configuration": configuration, "libraries": [{"glob": {"include": i}} for i in spec.libraries]}  # fmt: skip
        (staged / "spark-pipeline.yml").write_text(yaml.safe_dump(document, sort_keys=False))
        return str(staged / "spark-pipeline.yml")

    staged_spec = stage_pipeline()

    # spark-pipelines over Spark Connect: SPARK_REMOTE from the connection, one triggered run of every flow.
    run_pipeline = SparkPipelinesOperator(task_id="run_pipeline", pipeline_spec=SPEC, conn_id="spark_connect_default")

    # The flow's checkpoint, found from the spec: the flow is named after its table.
    lag_check = KafkaLagSensor(
        task_id="lag_check",
        pipeline_spec=SPEC,
        flow="{{ params.table }}",
        kafka_config_id="kafka_default",
        max_total_lag=0,
        poke_interval=10,
        timeout=300,
    )

    # No table_uri: the flow names the table and its writer; the Connect server's catalog locates the table.
    compact = DeltaOptimizeOperator(
        task_id="compact",
        pipeline_spec=SPEC,
        flow="{{ params.table }}",
        engine="spark",
        spark_conn_id="spark_connect_default",
    )

    staged_spec >> run_pipeline >> lag_check >> compact
