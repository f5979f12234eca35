"""The pure stream-health decisions: time lag, retention headroom and status, on table-driven cases with a fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from airflow_spark_streaming.conditions.stream_health import (
    LAGGING,
    OK,
    REWOUND,
    STALLED,
    STOPPED,
    BatchOffsets,
    HealthInputs,
    HealthMark,
    StreamHealth,
    TimeLagReport,
    assess_time_lag,
    batch_cadence,
    evaluate_stream_health,
    grew_across,
    headroom_seconds,
    time_lag_seconds,
    worst_status,
)
from airflow_spark_streaming.hooks.kafka_broker import (
    CREATE_TIME,
    FOUND,
    NO_RECORD,
    OPEN_TRANSACTION,
    RESET_TO_EARLIEST,
    RecordTimestamp,
    TopicRetention,
    _retention,
    retention_kind,
)

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


# --- status ---------------------------------------------------------------------------------------


def batches(*rows, start_id: int = 0, committed_last: bool = True) -> list[BatchOffsets]:
    """rows: (commit age seconds, end offset, latest offset when planned or None) for partition t:0."""
    out = []
    for i, (age, end, latest) in enumerate(rows):
        out.append(
            BatchOffsets(
                batch_id=start_id + i,
                committed=age is not None,
                commit_time=None if age is None else NOW - age,
                end_offsets={"t:0": end},
                latest_offsets=None if latest is None else {"t:0": latest},
            )
        )
    return out


STEADY = [(50, 10, 10), (40, 20, 20), (30, 30, 30), (20, 40, 40), (10, 50, 50)]  # every 10 s, caught up


@pytest.mark.parametrize(
    ("name", "window", "latest_now", "lease", "previous", "expected"),
    [
        ("caught up and committing", STEADY, 50, True, None, OK),
        ("idle and caught up with a live lease", [(3600 + a, e, late) for a, e, late in STEADY], 50, True, None, OK),
        ("idle, caught up, no lease known", [(3600 + a, e, late) for a, e, late in STEADY], 50, None, None, OK),
        ("idle, caught up, lease gone", [(3600 + a, e, late) for a, e, late in STEADY], 50, False, None, STOPPED),
        (
            "lag and no commit for far longer than the cadence",
            [(900 + a, e, late) for a, e, late in STEADY],
            80,
            True,
            None,
            STALLED,
        ),
        (
            "zero lag mid-window does not hide a stall at the end",
            [(700, 10, 10), (690, 20, 20), (680, 30, 30), (670, 40, 45), (660, 50, 60)],
            90,
            True,
            None,
            STALLED,
        ),
        ("lag and no commit, lease gone", [(900 + a, e, late) for a, e, late in STEADY], 80, False, None, STOPPED),
        ("lag within the cadence", [(a + 5, e, late) for a, e, late in STEADY], 60, True, None, OK),
        (
            "lag grew at every batch",
            [(50, 10, 15), (40, 20, 30), (30, 30, 45), (20, 40, 60), (10, 50, 80)],
            95,
            True,
            None,
            LAGGING,
        ),
        (
            "lag grew then fell",
            [(50, 10, 15), (40, 20, 30), (30, 30, 25), (20, 40, 60), (10, 50, 80)],
            95,
            True,
            None,
            OK,
        ),
        (
            "offsets went back in the window (topic reset, restart)",
            [(50, 10, 10), (40, 20, 20), (30, 5, 5), (20, 8, 8), (10, 9, 9)],
            9,
            True,
            None,
            REWOUND,
        ),
        ("checkpoint beyond the broker's latest (topic recreated)", STEADY, 3, True, None, REWOUND),
        ("checkpoint replaced by an older copy", STEADY[:2], 50, None, HealthMark("q", 4, {"t:0": 50}), REWOUND),
        ("same position as the previous mark", STEADY, 50, True, HealthMark("q", 4, {"t:0": 50}), OK),
    ],
)
def test_status(name, window, latest_now, lease, previous, expected):
    health = evaluate_stream_health(
        HealthInputs("q", batches(*window), {"t:0": latest_now}, lease, NOW, window=10, previous=previous)
    )
    assert health.status == expected, (name, health.reason)
    assert health.partitions[0].status == expected
    assert StreamHealth.from_dict(json.loads(json.dumps(health.to_dict()))) == health


def test_stall_is_timed_from_the_arrival_of_data_after_an_idle_spell():
    idle = batches(*[(3600 + a, e, late) for a, e, late in STEADY])
    fresh = {"t:0": int((NOW - 2) * 1000)}  # the first unprocessed record arrived 2 s ago
    health = evaluate_stream_health(HealthInputs("q", idle, {"t:0": 55}, True, NOW, oldest_unprocessed_ms=fresh))
    assert health.status == OK
    old = {"t:0": int((NOW - 600) * 1000)}  # ... or ten minutes ago: the query should have run by now
    health = evaluate_stream_health(HealthInputs("q", idle, {"t:0": 55}, True, NOW, oldest_unprocessed_ms=old))
    assert health.status == STALLED


def test_window_completeness_and_cadence():
    health = evaluate_stream_health(HealthInputs("q", batches(*STEADY[:3]), {"t:0": 30}, True, NOW, window=10))
    assert (health.window.size, health.window.batches, health.window.committed, health.window.complete) == (
        10,
        3,
        3,
        0.3,
    )
    assert health.window.lag_samples == 4  # three progress events and the broker now
    assert health.cadence_seconds == 10.0 and health.allowance_seconds == 30.0
    assert (health.window.first_batch, health.window.last_batch) == (0, 2)


def test_one_commit_gives_no_cadence_so_lag_is_not_yet_a_stall():
    health = evaluate_stream_health(HealthInputs("q", batches((600, 10, 10)), {"t:0": 40}, True, NOW))
    assert health.cadence_seconds is None and health.status == OK and "cadence" in health.reason


def test_in_flight_batch_counts_in_the_window_but_not_as_a_commit():
    window = batches(*STEADY, (None, 60, 60))
    health = evaluate_stream_health(HealthInputs("q", window, {"t:0": 60}, True, NOW))
    assert health.window.batches == 6 and health.window.committed == 5 and health.last_committed_batch == 4


def test_only_the_newest_window_batches_count():
    window = batches(*[(1000 - i, i, i) for i in range(30)])
    health = evaluate_stream_health(HealthInputs("q", window, {"t:0": 29}, True, NOW, window=10))
    assert (health.window.first_batch, health.window.last_batch, health.window.complete) == (20, 29, 1.0)


def test_query_takes_its_worst_partition():
    window = [
        BatchOffsets(
            i, True, NOW - 50 + 10 * i, {"t:0": 10 * (i + 1), "t:1": 5}, {"t:0": 10 * (i + 1) + 5 * (i + 1), "t:1": 5}
        )
        for i in range(5)
    ]
    health = evaluate_stream_health(HealthInputs("q", window, {"t:0": 80, "t:1": 5}, True, NOW))
    assert health.status == LAGGING
    assert (health.status_of("t:0"), health.status_of("t:1")) == (LAGGING, OK)


@pytest.mark.parametrize(
    ("samples", "grew"),
    [
        ([1, 2, 3], True),
        ([1, 1, 5], True),
        ([0, 0, 5], False),
        ([1, 2], False),
        ([3, 2, 4], False),
        ([2, 2, 2], False),
        ([0, 0, 0], False),
    ],
)
def test_grew_across(samples, grew):
    assert grew_across(samples) is grew


def test_batch_cadence_is_the_median_gap_between_commits():
    assert batch_cadence(batches((100, 1, 1), (90, 2, 2), (80, 3, 3), (20, 4, 4))) == 10.0
    assert batch_cadence(batches((100, 1, 1))) is None


def test_worst_status():
    assert worst_status([OK, LAGGING, STOPPED, STALLED]) == STOPPED and worst_status([]) == OK
