"""Test DAGs: credentials of every recognised kind in a stream submission and in the Delta operators and sensor;
none may reach ps, the log, XCom or the rendered fields.

The credentials come from the environment when the DAG is parsed (a fresh random value per kind and run, set by
``tests/integration/operators/test_secrets_sealed.py`` and ``tests/integration/kafka_auth/test_kafka_auth_operator.py``);
the tables are local, so only the Kafka connection's are used.
"""

from __future__ import annotations

import json
import os

from airflow.sdk import DAG, Param

from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor

#: Environment variables holding, as JSON, the Spark settings, delta-rs storage options and Kafka source options.
SPARK_CONF_ENV, STORAGE_OPTIONS_ENV, SENSOR_STORAGE_OPTIONS_ENV, SOURCE_OPTIONS_ENV = (
    "SEALED_SPARK_CONF", "SEALED_STORAGE_OPTIONS", "SEALED_SENSOR_STORAGE_OPTIONS", "SEALED_SOURCE_OPTIONS",
)  # fmt: skip
#: The ``kafka`` connection of the ingest (the test defines it), and its key only the lag hook would use.
KAFKA_CONN_ID, KAFKA_CLIENT_ONLY_KEYS = "kafka_sealed_ingest", ("schema.registry.basic.auth.user.info",)


def _settings(variable: str) -> dict[str, str]:
    return json.loads(os.environ.get(variable) or "{}")


with DAG("secrets_sealed_delta", schedule=None, params={"table_uri": Param("", type="string")}):
    optimize = DeltaOptimizeOperator(
        task_id="optimize", table_uri="{{ params.table_uri }}", engine="spark",
        spark_conf={"spark.ui.enabled": "false", **_settings(SPARK_CONF_ENV)},
        storage_options=_settings(STORAGE_OPTIONS_ENV),
        # A value that would end the SQL literal if quotes were doubled and backslashes left alone.
        partition_filters=[("region", "in", ["eu", "x\\' OR 1=1 --"])],
    )  # fmt: skip
    small_files = DeltaSmallFilesSensor(
        task_id="small_files", table_uri="{{ params.table_uri }}", min_small_files=2, poke_interval=1, timeout=60,
        storage_options=_settings(SENSOR_STORAGE_OPTIONS_ENV),
    )  # fmt: skip
    optimize >> small_files  # the us partition keeps its three small files, so the sensor's condition is met

with DAG(
    "secrets_sealed_ingest", schedule=None,
    params={"topic": Param("", type="string"), "query_name": Param("q", type="string"),
            "root": Param("", type="string")},
):  # fmt: skip
    SparkStreamingSubmitOperator(
        task_id="ingest", kafka_config_id=KAFKA_CONN_ID, kafka_ignore_keys=KAFKA_CLIENT_ONLY_KEYS,
        conf={"spark.ui.enabled": "false", **_settings(SPARK_CONF_ENV)},
        submit_kwargs={"verbose": True},  # spark-submit prints every setting, as Spark's redaction shows it
        spec={
            "query_name": "{{ params.query_name }}",  # spark-submit's --name
            "checkpoint_location": "{{ params.root }}/ckpt",
            "source": {"format": "kafka", "options": {
                "subscribe": "{{ params.topic }}", "startingOffsets": "earliest", "maxOffsetsPerTrigger": 25,
                "groupIdPrefix": "alice.spark", **_settings(SOURCE_OPTIONS_ENV)}},
            "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, partition, offset "
                             "FROM source",
            "sink": {"format": "delta", "path": "{{ params.root }}/table"},
            "trigger": {"available_now": True},
        },
    )  # fmt: skip
