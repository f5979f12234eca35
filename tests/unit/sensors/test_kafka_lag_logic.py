"""Lag thresholds, the ceiling alert and the trigger's serialisation (no broker)."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.conditions.lag import LagCriteria, evaluate_lag
from airflow_spark_streaming.conditions.verdict import Verdict
from airflow_spark_streaming.exceptions import (
    InvalidParameterError,
    KafkaLagCeilingError,
    KafkaLagError,
    SparkStreamingError,
)
from airflow_spark_streaming.kafka.models import LagReport, PartitionLag
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger


def _report(*lags: int) -> LagReport:
    partitions = [PartitionLag("t", i, 100, 0, 100 + lag, lag) for i, lag in enumerate(lags)]
    return LagReport(
        checkpoint="file:///c", query_id="q", basis="committed", batch_id=3, partitions=partitions,
        total_lag=sum(lags), max_lag=max(lags), new_partitions=[], deleted_partitions=[], deleted_topics=[],
        data_loss_partitions=[], round_trips=3, measured_at=0.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "criteria, lags, state",
    [
        (LagCriteria(max_total_lag=10), (3, 7), "met"),
        (LagCriteria(max_total_lag=9), (3, 7), "waiting"),
        (LagCriteria(max_partition_lag=7), (3, 7), "met"),
        (LagCriteria(max_partition_lag=6), (3, 7), "waiting"),
        (LagCriteria(max_total_lag=100, max_partition_lag=5), (3, 7), "waiting"),
        (LagCriteria(ceiling=5, ceiling_seconds=60), (3, 1), "waiting"),
    ],
)
def test_thresholds(criteria, lags, state):
    verdict, _ = evaluate_lag(_report(*lags), criteria, None, now=1000.0)
    assert verdict.state == state
    assert verdict.payload["total_lag"] == sum(lags)


def test_ceiling_alerts_only_when_lag_stays_high():
    criteria = LagCriteria(max_total_lag=0, ceiling=50, ceiling_seconds=60)
    verdict, since = evaluate_lag(_report(80), criteria, None, now=1000.0)
    assert (verdict.state, since) == ("waiting", 1000.0)
    verdict, since = evaluate_lag(_report(90), criteria, since, now=1050.0)
    assert (verdict.state, since) == ("waiting", 1000.0)
    verdict, reset = evaluate_lag(_report(10), criteria, since, now=1055.0)
    assert (verdict.state, reset) == ("waiting", None)  # dipped below: the clock restarts
    verdict, since = evaluate_lag(_report(90), criteria, 1000.0, now=1061.0)
    assert verdict.state == "alert" and "above the ceiling 50 for 61s" in verdict.message
    with pytest.raises(KafkaLagCeilingError):
        verdict.raise_for_state()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "nothing to wait for"),
        ({"max_total_lag": -1}, "max_total_lag must be zero or more"),
        ({"ceiling": 5}, "ceiling and ceiling_seconds go together"),
        ({"max_total_lag": 1, "basis": "latest"}, "basis must be one of"),
    ],
)
def test_bad_criteria(kwargs, message):
    with pytest.raises(KafkaLagError, match=message):
        LagCriteria(**kwargs)


def test_sensor_without_threshold_fails_at_parse_time():
    with pytest.raises(SparkStreamingError, match="nothing to wait for"):
        KafkaLagSensor(task_id="lag", checkpoint="/c")
    sensor = KafkaLagSensor(task_id="lag", checkpoint="/c", max_total_lag="{{ params.x }}")
    sensor.max_total_lag = "ten"
    with pytest.raises(SparkStreamingError, match="'ten' is not an integer"):
        sensor._criteria()


def test_trigger_round_trip_and_validation():
    trigger = KafkaLagTrigger("s3://b/c", {"max_total_lag": 5}, kafka_config_id="k", poll_interval=10, above_since=3.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_spark_streaming.triggers.kafka_lag.KafkaLagTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs and kwargs["above_since"] == 3.0
    assert KafkaLagTrigger(**kwargs).serialize() == (classpath, kwargs)
    with pytest.raises(KafkaLagError, match="nothing to wait for"):
        KafkaLagTrigger("/c", {})
    with pytest.raises(InvalidParameterError, match="timeout=0 must be more than zero seconds"):
        KafkaLagTrigger("/c", {"max_total_lag": 1}, timeout=0)


def test_report_round_trip():
    report = _report(1, 2)
    assert LagReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert Verdict(**Verdict("met", "m", report.to_dict()).to_dict()).payload["max_lag"] == 2


@pytest.mark.parametrize(
    "running, lags, fail_if_stopped, state",
    [
        (False, (3, 7), True, "error"),  # lag above the threshold and nothing will lower it
        (False, (3, 7), False, "waiting"),  # the default: a scheduled run may lower it later
        (None, (3, 7), True, "waiting"),  # a query the provider never ran: liveness unknown
        (True, (3, 7), True, "waiting"),  # a live query: it may catch up
        (False, (0, 0), True, "met"),  # stopped but caught up: the wait is over
    ],
)
def test_a_stopped_query_fails_the_wait_only_when_asked_and_behind(running, lags, fail_if_stopped, state):
    from airflow_spark_streaming.exceptions import LaggingQueryStoppedError

    report = _report(*lags)
    report.query_running = running
    verdict, _ = evaluate_lag(report, LagCriteria(max_total_lag=0, fail_if_stopped=fail_if_stopped), None, now=1.0)
    assert verdict.state == state
    if state == "error":
        assert "not running" in verdict.message and "fail_if_stopped" in verdict.message
        with pytest.raises(LaggingQueryStoppedError, match="total lag 10"):
            verdict.raise_for_state()


def test_fail_if_stopped_travels_to_the_trigger_and_must_be_a_bool():
    sensor = KafkaLagSensor(task_id="lag", checkpoint="/c", max_total_lag=0, fail_if_stopped=True)
    assert sensor._criteria().fail_if_stopped is True
    trigger = KafkaLagTrigger(checkpoint="/c", criteria=sensor._criteria().to_dict())
    revived = KafkaLagTrigger(**json.loads(json.dumps(trigger.serialize()[1])))
    assert revived.check.criteria.fail_if_stopped is True
    with pytest.raises(InvalidParameterError, match="fail_if_stopped must be True or False, got 'yes'"):
        KafkaLagSensor(task_id="lag", checkpoint="/c", max_total_lag=0, fail_if_stopped="yes")
    with pytest.raises(InvalidParameterError, match="criteria.fail_if_stopped must be true or false"):
        KafkaLagTrigger(checkpoint="/c", criteria={"max_total_lag": 0, "fail_if_stopped": "yes"})
