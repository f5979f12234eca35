"""spark-submit against a real standalone Master and Worker, with jars from the Maven fallback."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies
from tests.support.streaming_helpers import kafka_to_delta_spec, produce_keyed, read_delta, submit_stream_runner

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]


def test_kafka_to_delta_on_standalone_cluster_with_maven_jars(
    spark_cluster, kafka_broker, kafka_topic, tmp_path, monkeypatch
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_CLUSTER", json.dumps({"conn_type": "spark", "host": spark_cluster.master_url})
    )
    deps = resolve_jvm_dependencies(delta=True, kafka=True, resolver="maven")
    assert not deps.packages and any("delta-spark_4.2_2.13" in jar for jar in deps.jars)

    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 500, partitions=2)
    spec = kafka_to_delta_spec(kafka_broker.bootstrap_servers, topic, tmp_path / "table", tmp_path / "ckpt")
    submit_stream_runner(spec, deps, "spark_cluster", tmp_path, executor_memory="1g", total_executor_cores=1)

    rows = read_delta(tmp_path / "table")
    assert sorted(int(r["key"].removeprefix("key-")) for r in rows) == list(range(500))
    apps = spark_cluster.master_state()["completedapps"]
    assert [a["state"] for a in apps if a["name"] == spec["query_name"]] == ["FINISHED"]
