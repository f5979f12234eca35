"""Time lag, retention headroom and retention kinds of Kafka partitions (pure), on table-driven cases with a fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from airflow_spark_streaming.hooks.kafka_broker import _retention
from airflow_spark_streaming.kafka.models import (
    CREATE_TIME,
    FOUND,
    NO_RECORD,
    OPEN_TRANSACTION,
    RESET_TO_EARLIEST,
    RecordTimestamp,
    TopicRetention,
    retention_kind,
)
from airflow_spark_streaming.kafka.time_lag import TimeLagReport, assess_time_lag, headroom_seconds, time_lag_seconds

NOW = 1_800_000_000.0


@dataclass
class Lag:
    topic: str
    partition: int
    lag: int


def record(
    partition: int, age_s: float | None, outcome: str = FOUND, lost: int = 0, topic: str = "t"
) -> RecordTimestamp:
    ts = None if age_s is None else int((NOW - age_s) * 1000)
    return RecordTimestamp(topic, partition, 100, outcome, 100 + lost, ts, CREATE_TIME if ts else None, lost)


def policy(kind: str, retention_ms: int | None = 600_000, topic: str = "t") -> TopicRetention:
    bytes_ = 10**9 if kind in ("size", "time_and_size") else -1
    ms = retention_ms if kind in ("time", "time_and_size") else -1
    cleanup = ["compact"] if kind == "compact" else ["delete"]
    return TopicRetention(topic, ms, bytes_, cleanup, CREATE_TIME, kind)


@pytest.mark.parametrize(
    ("lag", "timestamp_ms", "expected"),
    [
        (0, None, 0.0),  # no lag: 0, whatever the record
        (0, int((NOW - 50) * 1000), 0.0),
        (5, int((NOW - 3600) * 1000), 3600.0),
        (5, int((NOW + 30) * 1000), 0.0),  # producer clock ahead: never negative
        (5, None, None),  # unknown time
    ],
)
def test_time_lag_seconds(lag, timestamp_ms, expected):
    assert (
        time_lag_seconds(lag, timestamp_ms, NOW) == pytest.approx(expected)
        if expected is not None
        else (time_lag_seconds(lag, timestamp_ms, NOW) is None)
    )


@pytest.mark.parametrize(
    ("retention_ms", "retention_bytes", "cleanup", "kind"),
    [
        (600_000, -1, ["delete"], "time"),
        (-1, -1, ["delete"], "infinite"),
        (-1, 10**9, ["delete"], "size"),
        (600_000, 10**9, ["delete"], "time_and_size"),
        (600_000, -1, ["compact"], "compact"),
        (600_000, -1, ["compact", "delete"], "time"),  # compact,delete also deletes by time
    ],
)
def test_retention_kind(retention_ms, retention_bytes, cleanup, kind):
    assert retention_kind(retention_ms, retention_bytes, cleanup) == kind


def test_retention_parsed_from_broker_config_strings():
    parsed = _retention("t", {"retention.ms": "600000", "retention.bytes": "-1", "cleanup.policy": "compact,delete",
                              "message.timestamp.type": "LogAppendTime"})  # fmt: skip
    assert (parsed.retention_ms, parsed.cleanup_policy, parsed.kind) == (600_000, ["compact", "delete"], "time")
    assert parsed.message_timestamp_type == "LogAppendTime"


@pytest.mark.parametrize(
    ("kind", "age", "expected"),
    [("time", 480.0, 120.0), ("time", 700.0, -100.0), ("time_and_size", 60.0, 540.0), ("infinite", 480.0, None),
     ("size", 480.0, None), ("compact", 480.0, None), ("time", None, None)],
)  # fmt: skip
def test_headroom_seconds(kind, age, expected):
    assert headroom_seconds(policy(kind), age) == expected


def test_assess_time_lag_reports_oldest_tightest_and_the_kinds_headroom_cannot_time():
    partitions = [Lag("t", 0, 0), Lag("t", 1, 40), Lag("t", 2, 7), Lag("u", 0, 3), Lag("v", 0, 9), Lag("w", 0, 2)]
    records = [record(1, 480.0), record(2, 60.0), record(0, 9000.0, topic="u"), record(0, None, OPEN_TRANSACTION, topic="v"),
               record(0, None, NO_RECORD, topic="w")]  # fmt: skip
    retention = {"t": policy("time"), "u": policy("infinite", topic="u"), "v": policy("size", topic="v"),
                 "w": policy("time", topic="w")}  # fmt: skip
    report = assess_time_lag(partitions, records, retention, NOW)
    by = {(p.topic, p.partition): p for p in report.partitions}
    assert by[("t", 0)].time_lag_seconds == 0.0 and by[("t", 0)].headroom_seconds is None
    assert by[("t", 1)].time_lag_seconds == pytest.approx(480.0)
    assert by[("t", 1)].headroom_seconds == pytest.approx(120.0)
    assert by[("w", 0)].time_lag_seconds == 0.0  # only aborted records or markers left: nothing to process
    assert report.max_time_lag_seconds == pytest.approx(9000.0) and report.max_time_lag_partition == "u:0"
    assert report.min_headroom_seconds == pytest.approx(120.0) and report.min_headroom_partition == "t:1"
    assert report.unbounded_partitions == ["u:0"] and report.size_bound_partitions == ["v:0"]
    assert report.unknown_partitions == ["v:0"]
    assert TimeLagReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_assess_time_lag_carries_the_loss_of_a_deleted_offset():
    report = assess_time_lag([Lag("t", 0, 10)], [record(0, 30.0, RESET_TO_EARLIEST, lost=25)], {}, NOW)
    (row,) = report.partitions
    assert (row.outcome, row.lost, row.record_offset) == (RESET_TO_EARLIEST, 25, 125)
    assert report.min_headroom_seconds is None  # no retention known


def test_caught_up_report_has_zero_time_lag_and_no_headroom():
    report = assess_time_lag([Lag("t", 0, 0), Lag("t", 1, 0)], [], {"t": policy("time")}, NOW)
    assert report.max_time_lag_seconds == 0.0 and report.min_headroom_seconds is None
