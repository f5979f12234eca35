"""Time lag and retention headroom against the real broker, from checkpoints written by real Spark queries."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from airflow_spark_streaming.hooks.kafka_broker import (
    FOUND,
    LOG_APPEND_TIME,
    NO_RECORD,
    OPEN_TRANSACTION,
    RESET_TO_EARLIEST,
    KafkaBrokerHook,
    RecordTimestamps,
)
from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook
from tests.support.streaming_helpers import produce_keyed, run_available_now

pytestmark = pytest.mark.kafka


def produce_at(bootstrap: str, topic: str, partition: int, count: int, timestamp_ms: int, key: str = "k") -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=f"{key}-{i}", value=f"v-{i}", partition=partition, timestamp=timestamp_ms)
    assert producer.flush(30) == 0


def caught_up_checkpoint(spark, bootstrap: str, topic: str, partitions: int, tmp_path, records: int = 20):
    produce_keyed(bootstrap, topic, records, partitions=partitions)
    checkpoint = tmp_path / f"ckpt-{topic}"
    run_available_now(spark, bootstrap, checkpoint, max_offsets=1000, subscribe=topic)
    return str(checkpoint)


def test_time_lag_of_records_produced_an_hour_ago(spark, kafka_broker, make_topic, kafka_conn, tmp_path):
    bootstrap = kafka_broker.bootstrap_servers
    topic = make_topic(partitions=2)
    checkpoint = caught_up_checkpoint(spark, bootstrap, topic, 2, tmp_path)
    started = time.time()
    hour_ago_ms = int(started * 1000) - 3_600_000
    produce_at(bootstrap, topic, 0, 5, hour_ago_ms)  # partition 1 stays caught up

    report = KafkaLagHook(kafka_conn()).get_lag(checkpoint)
    time_lag = KafkaBrokerHook(kafka_conn()).get_time_lag(report.partitions)
    p0, p1 = time_lag.partitions
    assert (p0.lag, p0.outcome, p0.record_offset, p0.timestamp_type) == (5, FOUND, 10, "CreateTime")
    assert p0.record_timestamp_ms == hour_ago_ms
    # Exact at its own measuring time; the test's clock ran on while Spark and the broker answered.
    age = time_lag.measured_at - hour_ago_ms / 1000
    assert time_lag.max_time_lag_seconds == pytest.approx(age, abs=0.001)
    assert age == pytest.approx(3600, abs=time.time() - started + 1.0)
    assert time_lag.max_time_lag_partition == f"{topic}:0"
    assert (p1.lag, p1.time_lag_seconds) == (0, 0.0)
    # Default retention (7 days, by time): the oldest unread record has about 6 days 23 hours left.
    assert time_lag.min_headroom_seconds == pytest.approx(7 * 86400 - age, abs=0.001)
    assert json.loads(json.dumps(time_lag.to_dict()))["max_time_lag_seconds"] == time_lag.max_time_lag_seconds


def test_log_append_time_topic_reports_the_brokers_time(spark, kafka_broker, make_topic, kafka_conn, tmp_path):
    bootstrap = kafka_broker.bootstrap_servers
    topic = make_topic(partitions=1, **{"message.timestamp.type": "LogAppendTime"})
    checkpoint = caught_up_checkpoint(spark, bootstrap, topic, 1, tmp_path)
    before = time.time()
    produce_at(bootstrap, topic, 0, 3, int(time.time() * 1000) - 3_600_000)  # the broker overwrites the hour-old time

    report = KafkaLagHook(kafka_conn()).get_lag(checkpoint)
    time_lag = KafkaBrokerHook(kafka_conn()).get_time_lag(report.partitions)
    (p0,) = time_lag.partitions
    assert p0.timestamp_type == LOG_APPEND_TIME and p0.record_timestamp_ms >= int(before * 1000) - 1000
    assert 0 <= time_lag.max_time_lag_seconds < 30
    assert KafkaBrokerHook(kafka_conn()).get_retention([topic])[topic].message_timestamp_type == LOG_APPEND_TIME


def test_retention_of_ten_minutes_with_eight_minutes_of_lag_leaves_two(
    spark, kafka_broker, make_topic, kafka_conn, tmp_path
):
    bootstrap = kafka_broker.bootstrap_servers
    topic = make_topic(partitions=1, **{"retention.ms": "600000"})
    checkpoint = caught_up_checkpoint(spark, bootstrap, topic, 1, tmp_path)
    started = time.time()
    eight_minutes_ago_ms = int(started * 1000) - 8 * 60_000
    produce_at(bootstrap, topic, 0, 4, eight_minutes_ago_ms)

    report = KafkaLagHook(kafka_conn()).get_lag(checkpoint)
    time_lag = KafkaBrokerHook(kafka_conn()).get_time_lag(report.partitions)
    age = time_lag.measured_at - eight_minutes_ago_ms / 1000
    assert time_lag.max_time_lag_seconds == pytest.approx(age, abs=0.001)
    assert age == pytest.approx(480, abs=time.time() - started + 1.0)
    assert time_lag.min_headroom_seconds == pytest.approx(600 - age, abs=0.001)
    assert time_lag.min_headroom_partition == f"{topic}:0"
    assert time_lag.partitions[0].retention_kind == "time" and time_lag.partitions[0].retention_ms == 600_000


def test_retention_kinds_in_one_describe_configs_call(kafka_conn, make_topic):
    infinite = make_topic(**{"retention.ms": "-1"})
    sized = make_topic(**{"retention.ms": "-1", "retention.bytes": "1048576"})
    compacted = make_topic(**{"cleanup.policy": "compact"})
    timed = make_topic(**{"retention.ms": "600000"})
    retention = KafkaBrokerHook(kafka_conn()).get_retention([infinite, sized, compacted, timed])
    assert {name: r.kind for name, r in retention.items()} == {
        infinite: "infinite", sized: "size", compacted: "compact", timed: "time"
    }  # fmt: skip
    assert retention[infinite].retention_ms == -1 and retention[sized].retention_bytes == 1048576
    assert retention[compacted].cleanup_policy == ["compact"]


def test_deleted_offset_reads_the_earliest_retained_record_and_reports_the_loss(
    spark, kafka_broker, make_topic, kafka_conn, admin, tmp_path
):
    from confluent_kafka import TopicPartition

    bootstrap = kafka_broker.bootstrap_servers
    topic = make_topic(partitions=1)
    checkpoint = caught_up_checkpoint(spark, bootstrap, topic, 1, tmp_path)  # offset 20
    produce_keyed(bootstrap, topic, 30, partitions=1)  # latest 50
    for future in admin.delete_records([TopicPartition(topic, 0, 35)], request_timeout=30).values():
        future.result(30)

    report = KafkaLagHook(kafka_conn()).get_lag(checkpoint)
    (p0,) = KafkaBrokerHook(kafka_conn()).get_time_lag(report.partitions).partitions
    assert (report.partitions[0].lost, report.partitions[0].lag) == (15, 15)
    assert (p0.outcome, p0.record_offset, p0.lost) == (RESET_TO_EARLIEST, 35, 15)
    # Without the earliest offsets, the consumer's out-of-range reset finds the same record and loss.
    alone = KafkaBrokerHook(kafka_conn()).get_record_timestamps({(topic, 0): 20})
    assert (alone.records[0].outcome, alone.records[0].offset, alone.records[0].lost) == (RESET_TO_EARLIEST, 35, 15)


def test_compacted_topic_reads_the_next_surviving_record(spark, kafka_broker, make_topic, kafka_conn, tmp_path):
    """The record at the checkpoint offset was compacted away: the next record that survived is the oldest unread."""
    from confluent_kafka import Consumer, TopicPartition

    bootstrap = kafka_broker.bootstrap_servers
    topic = make_topic(partitions=1, **{"cleanup.policy": "compact", "segment.ms": "100",
                                        "min.cleanable.dirty.ratio": "0.001", "min.compaction.lag.ms": "0",
                                        "delete.retention.ms": "100"})  # fmt: skip
    checkpoint = caught_up_checkpoint(spark, bootstrap, topic, 1, tmp_path)  # offsets 0..19 read
    produce_at(bootstrap, topic, 0, 10, int(time.time() * 1000), key="same")  # 20..29 ...
    produce_at(bootstrap, topic, 0, 10, int(time.time() * 1000), key="same")  # ... 30..39 replace them
    surviving: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # roll the segment and wait for the cleaner to remove offset 20
        time.sleep(0.5)
        produce_at(bootstrap, topic, 0, 1, int(time.time() * 1000), key=f"roll-{time.monotonic_ns()}")
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "check", "enable.partition.eof": True})
        reader.assign([TopicPartition(topic, 0, 20)])
        surviving, done = [], False
        while not done:
            for message in reader.consume(100, 1.0):
                done = done or message.error() is not None
                if message.error() is None:
                    surviving.append(message.offset())
        reader.close()
        if surviving and surviving[0] > 20:
            break
    assert surviving and surviving[0] > 20, "the log cleaner did not compact offset 20 in time"

    report = KafkaLagHook(kafka_conn()).get_lag(checkpoint)
    time_lag = KafkaBrokerHook(kafka_conn()).get_time_lag(report.partitions)
    (p0,) = time_lag.partitions
    assert p0.outcome == FOUND and p0.record_offset == surviving[0] and p0.lost == 0
    assert p0.retention_kind == "compact" and time_lag.unbounded_partitions == [f"{topic}:0"]
    assert time_lag.min_headroom_seconds is None


def test_aborted_transactions_and_markers_are_skipped_an_open_one_is_reported(kafka_broker, make_topic, kafka_conn):
    from confluent_kafka import Producer

    bootstrap = kafka_broker.bootstrap_servers
    topic = make_topic(partitions=2)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
    producer.init_transactions(30)
    # Recent timestamps: records older than the 7-day retention would be deleted with their segment.
    aborted_ms = int(time.time() * 1000) - 2000
    kept_ms = aborted_ms + 1000
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"aborted-{i}", partition=0, timestamp=aborted_ms)
    producer.flush(30)  # in the log before the abort (an abort drops what was not sent yet)
    producer.abort_transaction(30)  # offsets 0..4, abort marker at 5
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=f"kept-{i}", partition=0, timestamp=kept_ms)
    producer.commit_transaction(30)  # offsets 6..8, commit marker at 9
    producer.begin_transaction()
    producer.produce(topic, value="aborted-only", partition=1)
    producer.flush(30)
    producer.abort_transaction(30)  # partition 1: offset 0 aborted, marker at 1
    hook = KafkaBrokerHook(kafka_conn(), timeout=10)

    found = hook.get_record_timestamps({(topic, 0): 0, (topic, 1): 0}, latest={(topic, 0): 10, (topic, 1): 2})
    assert (found.of(topic, 0).outcome, found.of(topic, 0).offset, found.of(topic, 0).timestamp_ms) == (
        FOUND, 6, kept_ms
    )  # fmt: skip
    assert found.of(topic, 1).outcome == NO_RECORD  # nothing committed left to process
    assert RecordTimestamps.from_dict(json.loads(json.dumps(found.to_dict()))) == found

    producer.begin_transaction()
    producer.produce(topic, value="pending", partition=1)
    producer.flush(30)  # in the log, but the transaction stays open
    try:
        pending = hook.get_record_timestamps({(topic, 1): 2}, latest={(topic, 1): 3})
        assert pending.of(topic, 1).outcome == OPEN_TRANSACTION and pending.of(topic, 1).end_offset == 2
    finally:
        producer.abort_transaction(30)
