"""Authenticated Kafka end to end: confluent-kafka and Spark with options translated from one kafka connection."""

from __future__ import annotations

import time

import pytest

from airflow_spark_streaming.kafka.connection import get_spark_kafka_options
from tests.integration.kafka_auth.conftest import produce

pytestmark = pytest.mark.kafka

STYLES = {  # id -> (security protocol, SASL mechanism)
    "scram": ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    "sasl_ssl_plain": ("SASL_SSL", "PLAIN"),
    "sasl_ssl_scram256": ("SASL_SSL", "SCRAM-SHA-256"),
    "mtls": ("SSL", None),
}


def consume_all(config: dict, topic: str, count: int, timeout: float = 30) -> list[tuple[str, str]]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**config, "group.id": f"alice.{topic}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen, deadline = [], time.monotonic() + timeout
    try:
        while len(seen) < count and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None:
                assert message.error() is None, message.error()
                seen.append((message.key().decode(), message.value().decode()))
    finally:
        consumer.close()
    return seen


@pytest.mark.parametrize("style", STYLES)
def test_confluent_produce_and_consume_as_the_test_user(auth_broker, auth_topic, style):
    protocol, mechanism = STYLES[style]
    config = auth_broker.client_config("alice", protocol, mechanism or "SCRAM-SHA-512")
    topic = auth_topic("alice")
    produce(config, topic, 20)
    assert consume_all(config, topic, 20) == [(f"key-{i}", f"value-{i}") for i in range(20)]


@pytest.mark.parametrize("style", STYLES)
def test_spark_batch_read_with_options_from_the_connection(spark, auth_broker, auth_topic, kafka_connection, style):
    protocol, mechanism = STYLES[style]
    config = auth_broker.client_config("alice", protocol, mechanism or "SCRAM-SHA-512")
    topic = auth_topic("alice", partitions=2)
    produce(config, topic, 30, partitions=2)
    options = get_spark_kafka_options(kafka_connection(f"kafka_{style}", config))
    rows = (
        spark.read.format("kafka").options(**options.for_source())
        .option("subscribe", topic).option("startingOffsets", "earliest").load()
        .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "partition", "offset")
        .collect()
    )  # fmt: skip
    assert sorted((r.key, r.value, r.partition, r.offset) for r in rows) == sorted(
        (f"key-{i}", f"value-{i}", i % 2, i // 2) for i in range(30)
    )


def test_kafka_lag_hook_and_sensor_over_sasl_ssl(spark, auth_broker, auth_topic, kafka_connection, tmp_path):
    from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook

    config = auth_broker.client_config("alice", "SASL_SSL", "SCRAM-SHA-512")
    conn_id = kafka_connection("kafka_lag_sasl_ssl", config)
    topic = auth_topic("alice", partitions=2)
    produce(config, topic, 40, partitions=2)
    query = (
        spark.readStream.format("kafka").options(**get_spark_kafka_options(conn_id).for_source())
        .option("subscribe", topic).option("startingOffsets", "earliest").option("maxOffsetsPerTrigger", 30).load()
        .writeStream.format("noop").option("checkpointLocation", str(tmp_path / "ckpt"))
        .trigger(availableNow=True).start()
    )  # fmt: skip
    query.awaitTermination(120)
    produce(config, topic, 10, partitions=2)
    report = KafkaLagHook(conn_id, timeout=10).get_lag(str(tmp_path / "ckpt"))
    assert [(p.partition, p.checkpoint_offset, p.latest_offset, p.lag) for p in report.partitions] == [
        (0, 20, 25, 5), (1, 20, 25, 5)
    ]  # fmt: skip
    assert report.total_lag == 10
    # The sensor reads the same kafka_config_id: not met at 5, met at 10, with the report in XCom.
    from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor

    def sensor(max_total_lag: int) -> KafkaLagSensor:
        return KafkaLagSensor(task_id=f"lag_{max_total_lag}", checkpoint=str(tmp_path / "ckpt"),
                              kafka_config_id=conn_id, max_total_lag=max_total_lag, request_timeout=10)  # fmt: skip

    assert not sensor(5).poke({}).is_done
    met = sensor(10).poke({})
    assert met.is_done and met.xcom_value["total_lag"] == 10
    assert config["sasl.password"] not in str(met.xcom_value)
