"""The sensors on real checkpoints and a real broker: retention headroom and time lag, the stream-health wait."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import timedelta

import pytest

from airflow_spark_streaming.exceptions import KafkaRetentionHeadroomError, StreamUnhealthyError
from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
from tests.integration.stream_health.test_time_lag import caught_up_checkpoint, produce_at
from tests.support.streaming_helpers import produce_keyed, run_available_now

pytestmark = pytest.mark.kafka


async def _first_event(trigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def test_lag_sensor_fails_on_short_retention_headroom_and_waits_on_time_lag(
    spark, kafka_broker, make_topic, kafka_conn, tmp_path
):
    bootstrap = kafka_broker.bootstrap_servers
    topic = make_topic(partitions=1, **{"retention.ms": "600000"})  # 10 minutes
    checkpoint = caught_up_checkpoint(spark, bootstrap, topic, 1, tmp_path)
    started = time.time()
    eight_minutes_ago_ms = int(started * 1000) - 8 * 60_000
    produce_at(bootstrap, topic, 0, 4, eight_minutes_ago_ms)
    conn = kafka_conn()

    report = KafkaLagHook(conn).get_lag(checkpoint, time_lag=True)
    (p0,) = report.partitions
    assert (p0.lag, p0.record_timestamp_ms, p0.timestamp_type, p0.retention_kind) == (
        4, eight_minutes_ago_ms, "CreateTime", "time"
    )  # fmt: skip
    age = report.max_time_lag_seconds
    assert age == p0.time_lag_seconds and age == pytest.approx(480, abs=time.time() - started + 1.0)
    assert report.min_retention_headroom_seconds == pytest.approx(600 - age, abs=0.001) == p0.headroom_seconds
    assert report.round_trips == 4 and report.unbounded_partitions == [] and report.size_bound_partitions == []
    assert KafkaLagHook(conn).get_lag(checkpoint).max_time_lag_seconds is None  # measured only when asked for

    sensor = KafkaLagSensor(task_id="headroom", checkpoint=checkpoint, kafka_config_id=conn,
                            min_retention_headroom=timedelta(minutes=5), poke_interval=0.5)  # fmt: skip
    with pytest.raises(KafkaRetentionHeadroomError, match=r"retention deletes unread records in (1[01]\d|120)s"):
        sensor.poke({})
    event = asyncio.run(_first_event(sensor._trigger({})))  # the deferred half decides the same way
    assert event["state"] == "error" and event["error"] == "KafkaRetentionHeadroomError"
    with pytest.raises(KafkaRetentionHeadroomError):
        sensor.execute_complete({}, event)

    def time_lag_wait(limit: timedelta) -> bool:
        return (
            KafkaLagSensor(task_id="t", checkpoint=checkpoint, kafka_config_id=conn, max_time_lag=limit)
            .poke({})
            .is_done
        )

    assert not time_lag_wait(timedelta(minutes=5))  # 8 minutes behind: waits
    assert time_lag_wait(timedelta(minutes=10))


def test_health_sensor_is_ok_on_a_caught_up_query_and_fails_when_the_checkpoint_is_rewound(
    spark, kafka_broker, kafka_topic, kafka_conn, tmp_path
):
    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic(partitions=2)
    checkpoint, older = tmp_path / "ckpt", tmp_path / "older-copy"
    produce_keyed(bootstrap, topic, 40, partitions=2)
    run_available_now(spark, bootstrap, checkpoint, max_offsets=20, subscribe=topic)  # batches 0, 1
    shutil.copytree(checkpoint, older)
    produce_keyed(bootstrap, topic, 40, partitions=2)
    run_available_now(spark, bootstrap, checkpoint, max_offsets=20, subscribe=topic)  # batches 2, 3
    conn = kafka_conn()

    poking = StreamHealthSensor(checkpoint=str(checkpoint), task_id="poke", kafka_config_id=conn)
    deferred = StreamHealthSensor(
        checkpoint=str(checkpoint), task_id="deferred", kafka_config_id=conn, poke_interval=0.2
    )
    for sensor in (poking, deferred):
        seen = sensor.poke({})
        assert seen.is_done and seen.xcom_value["status"] == "OK"
        assert seen.xcom_value["last_committed_batch"] == 3
    trigger = deferred._trigger({})  # carries the mark of the check the sensor made in the worker
    assert trigger.check.mark["batch_id"] == 3

    shutil.rmtree(checkpoint)
    shutil.copytree(older, checkpoint)
    with pytest.raises(StreamUnhealthyError, match="REWOUND"):
        poking.poke({})
    event = asyncio.run(_first_event(trigger))
    assert event["error"] == "StreamUnhealthyError" and event["payload"]["status"] == "REWOUND"
