"""The pure stream-health status decisions, on table-driven cases with a fake clock."""

from __future__ import annotations

import json

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
    batch_cadence,
    evaluate_stream_health,
    grew_across,
    worst_status,
)

NOW = 1_800_000_000.0


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
