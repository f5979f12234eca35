"""KafkaLagHook against the real broker and checkpoints written by real Spark queries."""

from __future__ import annotations

import json
import time

import pytest

from airflow_spark_streaming.exceptions import (
    KafkaBrokerUnreachableError,
    KafkaConfigError,
    KafkaTopicDeletedError,
    NoKafkaSourceError,
)
from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook, LagReport, get_kafka_lag
from devstack.process import free_port
from tests.support.streaming_helpers import produce_keyed, run_available_now

pytestmark = pytest.mark.kafka


@pytest.fixture
def admin(kafka_broker):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})


def test_exact_lag_before_and_after_new_records(spark, kafka_broker, kafka_topic, kafka_conn, tmp_path):
    topic = kafka_topic(partitions=4)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 400, partitions=4)
    run_available_now(spark, kafka_broker.bootstrap_servers, tmp_path / "ckpt", max_offsets=150, subscribe=topic)
    hook = KafkaLagHook(kafka_conn())

    caught_up = hook.get_lag(str(tmp_path / "ckpt"))
    assert caught_up.total_lag == 0 and caught_up.max_lag == 0
    assert [(p.partition, p.checkpoint_offset, p.latest_offset) for p in caught_up.partitions] == [
        (0, 100, 100), (1, 100, 100), (2, 100, 100), (3, 100, 100)
    ]  # fmt: skip
    assert caught_up.batch_id == 2 and caught_up.round_trips == 3  # 400 at 150 per trigger

    # 10, 20, 30 and 40 more records on partitions 0..3.
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for partition in range(4):
        for i in range((partition + 1) * 10):
            producer.produce(topic, value=f"more-{i}", partition=partition)
    producer.flush(30)
    behind = hook.get_lag(str(tmp_path / "ckpt"))
    assert {p.partition: p.lag for p in behind.partitions} == {0: 10, 1: 20, 2: 30, 3: 40}
    assert (behind.total_lag, behind.max_lag) == (100, 40)
    assert behind.lag_of(topic, 3) == 40
    assert LagReport.from_dict(json.loads(json.dumps(behind.to_dict()))) == behind
    assert get_kafka_lag(str(tmp_path / "ckpt"))["total_lag"] == 100


def test_planned_basis_counts_from_the_uncommitted_batch(spark, kafka_broker, kafka_topic, kafka_conn, tmp_path):
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 200, partitions=2)
    checkpoint = tmp_path / "ckpt"
    run_available_now(spark, kafka_broker.bootstrap_servers, checkpoint, max_offsets=100, subscribe=topic)
    # The driver was killed after planning its last batch: commits/1 is gone, offsets/1 stays.
    (checkpoint / "commits" / "1").unlink()
    (checkpoint / "commits" / ".1.crc").unlink(missing_ok=True)
    hook = KafkaLagHook(kafka_conn())
    assert hook.get_lag(str(checkpoint)).total_lag == 100 and hook.get_lag(str(checkpoint)).batch_id == 0
    planned = hook.get_lag(str(checkpoint), basis="planned")
    assert planned.total_lag == 0 and planned.batch_id == 1


def test_added_partitions_count_from_their_earliest_offset(
    spark, kafka_broker, kafka_topic, kafka_conn, admin, tmp_path
):
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewPartitions

    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 40, partitions=2)
    run_available_now(spark, kafka_broker.bootstrap_servers, tmp_path / "ckpt", max_offsets=1000, subscribe=topic)
    admin.create_partitions([NewPartitions(topic, 4)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for i in range(7):
        producer.produce(topic, value=f"p3-{i}", partition=3)
    producer.flush(30)

    report = KafkaLagHook(kafka_conn()).get_lag(str(tmp_path / "ckpt"))
    assert report.new_partitions == [f"{topic}:2", f"{topic}:3"]
    assert {p.partition: (p.checkpoint_offset, p.lag) for p in report.partitions} == {
        0: (20, 0), 1: (20, 0), 2: (None, 0), 3: (None, 7)
    }  # fmt: skip
    assert report.total_lag == 7


def test_deleted_records_below_the_checkpoint_are_data_loss(
    spark, kafka_broker, kafka_topic, kafka_conn, admin, tmp_path
):
    from confluent_kafka import TopicPartition

    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 200, partitions=2)
    run_available_now(spark, kafka_broker.bootstrap_servers, tmp_path / "ckpt", max_offsets=1000, subscribe=topic)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 100, partitions=2)  # latest 150 on each
    futures = admin.delete_records([TopicPartition(topic, 0, 130)], request_timeout=30)
    for future in futures.values():
        future.result(30)

    report = KafkaLagHook(kafka_conn()).get_lag(str(tmp_path / "ckpt"))
    p0, p1 = report.partitions
    assert (p0.checkpoint_offset, p0.earliest_offset, p0.latest_offset, p0.lost, p0.lag) == (100, 130, 150, 30, 20)
    assert (p1.lost, p1.lag) == (0, 50)
    assert report.data_loss_partitions == [f"{topic}:0"]


def test_subscribe_pattern_covers_every_matched_topic(spark, kafka_broker, kafka_topic, kafka_conn, tmp_path):
    prefix = f"pat{int(time.time() * 1000) % 100000}"
    first, second = kafka_topic(partitions=1, prefix=prefix), kafka_topic(partitions=2, prefix=prefix)
    produce_keyed(kafka_broker.bootstrap_servers, first, 10, partitions=1)
    produce_keyed(kafka_broker.bootstrap_servers, second, 20, partitions=2)
    run_available_now(
        spark, kafka_broker.bootstrap_servers, tmp_path / "ckpt", max_offsets=1000, subscribePattern=f"{prefix}-.*"
    )
    produce_keyed(kafka_broker.bootstrap_servers, second, 6, partitions=2)
    report = KafkaLagHook(kafka_conn()).get_lag(str(tmp_path / "ckpt"))
    assert {(p.topic, p.partition): p.lag for p in report.partitions} == {
        (first, 0): 0, (second, 0): 3, (second, 1): 3
    }  # fmt: skip


def test_deleted_topic(spark, kafka_broker, kafka_topic, kafka_conn, admin, tmp_path):
    topic = kafka_topic(partitions=1)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 5, partitions=1)
    run_available_now(spark, kafka_broker.bootstrap_servers, tmp_path / "ckpt", max_offsets=10, subscribe=topic)
    admin.delete_topics([topic])[topic].result(30)
    time.sleep(1)
    with pytest.raises(KafkaTopicDeletedError, match=rf"reads {topic}, but no such topic exists"):
        KafkaLagHook(kafka_conn()).get_lag(str(tmp_path / "ckpt"))


def test_checkpoint_without_kafka_source(file_source_checkpoint, kafka_conn):
    with pytest.raises(NoKafkaSourceError, match=r"no Kafka source offsets.*its sources: file"):
        KafkaLagHook(kafka_conn()).get_lag(str(file_source_checkpoint["checkpoint"]))


def test_unreachable_broker_fails_within_the_timeout(
    spark, kafka_broker, kafka_topic, kafka_conn, tmp_path, monkeypatch
):
    topic = kafka_topic(partitions=1)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 5, partitions=1)
    run_available_now(spark, kafka_broker.bootstrap_servers, tmp_path / "ckpt", max_offsets=10, subscribe=topic)
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_DOWN",
        json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{free_port()}"}}),
    )
    started = time.monotonic()
    with pytest.raises(KafkaBrokerUnreachableError, match=r"Kafka connection 'kafka_down' did not answer"):
        KafkaLagHook("kafka_down", timeout=3).get_lag(str(tmp_path / "ckpt"))
    assert time.monotonic() - started < 30  # bounded: never a hang


def test_wrong_connection_config_names_the_connection(file_source_checkpoint, kafka_conn):
    conn = kafka_conn("kafka_bad", **{"bootstrap.serverz": "x", "sasl.password": "s3cr3t-value"})
    with pytest.raises(KafkaConfigError, match="Kafka connection 'kafka_bad' has an invalid client config") as err:
        KafkaLagHook(conn).admin  # noqa: B018
    assert "s3cr3t-value" not in str(err.value)
