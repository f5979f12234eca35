"""The retention VACUUM needs so every downstream stream can restart: pure decisions (issue 27)."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.checkpoint.models import SourceOffset
from airflow_spark_streaming.conditions.reader_retention import (
    END_INDEX_FLOOR,
    log_retention_headroom,
    next_version_to_read,
    plan_reader_retention,
    whole_hours,
)
from airflow_spark_streaming.delta.models import DeltaReader
from airflow_spark_streaming.exceptions import ReaderTableMismatchError

HOUR = 3600.0
DAY = 24 * HOUR


def _delta(table_id: str, version: int, index: int = -1, index_in_plan: int = 0) -> SourceOffset:
    return SourceOffset(index=index_in_plan, source_id=str(index_in_plan), kind="delta", offset={},
                        reservoir_id=table_id, reservoir_version=version, delta_index=index)  # fmt: skip


def _reader(name: str, lag_seconds: float | None, version: int | None = 3, committed: bool = True) -> DeltaReader:
    return DeltaReader(name=name, checkpoint=name, query_id="q", batch_id=1, basis="committed", next_version=version,
                       next_version_timestamp_ms=1_000 if committed else None, lag_versions=2,
                       lag_seconds=lag_seconds)  # fmt: skip


def test_the_next_version_is_the_oldest_one_any_source_of_the_table_reads():
    kafka = SourceOffset(index=0, source_id="0", kind="kafka", offset={"t": {"0": 1}})
    sources = [kafka, _delta("t1", 9, 3, 1), _delta("t1", 7, -1, 2), _delta("other", 2, -1, 3)]
    assert next_version_to_read(sources, "t1", "reader") == 7
    # "every file of version 8 read" written as END_INDEX: the restart reads version 9
    assert next_version_to_read([_delta("t1", 8, END_INDEX_FLOOR + 5)], "t1", "reader") == 9


def test_a_checkpoint_of_another_table_is_named_not_skipped():
    with pytest.raises(ReaderTableMismatchError, match=r"Reader /ck reads Delta tables with ids \['other'\], not"):
        next_version_to_read([_delta("other", 2)], "t1", "Reader /ck")
    with pytest.raises(ReaderTableMismatchError, match="reads no Delta table"):
        next_version_to_read([SourceOffset(index=0, source_id="0", kind="file", offset={})], "t1", "Reader /ck")


def test_the_oldest_reader_raises_the_retention_and_is_named():
    readers = [_reader("/ck/fresh", 600.0), _reader("/ck/slow", 10 * DAY + 30), _reader("/ck/new", None, None)]
    plan = plan_reader_retention(requested_seconds=7 * DAY, requested_hours=168, readers=readers,
                                 margin_seconds=HOUR, log_retention_seconds=30 * DAY)  # fmt: skip
    assert plan.held_back_by == "/ck/slow" == plan.oldest_reader
    assert plan.retention_hours == 10 * 24 + 2  # 10 days + 30 s + the margin, rounded up to whole hours
    assert plan.held_back_seconds == (10 * 24 + 2 - 168) * HOUR
    assert plan.log_retention_warning is None


def test_readers_inside_the_table_retention_change_nothing():
    plan = plan_reader_retention(requested_seconds=7 * DAY, requested_hours=168, readers=[_reader("/ck/a", 2 * DAY)],
                                 margin_seconds=HOUR, log_retention_seconds=30 * DAY)  # fmt: skip
    assert plan.retention_hours == 168 and plan.held_back_by is None and plan.oldest_reader == "/ck/a"


def test_caught_up_and_unstarted_readers_need_nothing_even_with_a_zero_retention():
    caught_up = _reader("/ck/a", 0.0, version=12, committed=False)  # version 12 is not committed yet
    plan = plan_reader_retention(requested_seconds=0, requested_hours=0, readers=[caught_up, _reader("/ck/b", None)],
                                 margin_seconds=HOUR, log_retention_seconds=30 * DAY)  # fmt: skip
    assert plan.retention_hours == 0 and plan.held_back_by is None and plan.oldest_reader is None
    held = plan_reader_retention(requested_seconds=0, requested_hours=0, readers=[_reader("/ck/c", 5.0)],
                                 margin_seconds=0, log_retention_seconds=30 * DAY)  # fmt: skip
    assert held.retention_hours == 1 and held.held_back_by == "/ck/c"  # seconds round up to a whole hour


def test_a_reader_older_than_the_log_retention_is_warned_about():
    plan = plan_reader_retention(requested_seconds=7 * DAY, requested_hours=168, readers=[_reader("/ck/a", 31 * DAY)],
                                 margin_seconds=HOUR, log_retention_seconds=30 * DAY)  # fmt: skip
    assert "reader /ck/a is 744.0h behind (version 3)" in plan.log_retention_warning
    assert "delta.logRetentionDuration (720h)" in plan.log_retention_warning
    oldest, headroom = log_retention_headroom([_reader("/ck/a", 29 * DAY), _reader("/ck/b", DAY)], 30 * DAY)
    assert oldest.name == "/ck/a" and headroom == DAY
    assert log_retention_headroom([_reader("/ck/new", None, None)], 30 * DAY) is None


def test_whole_hours_round_up():
    assert [whole_hours(s) for s in (0, 1, 3600, 3601, -5)] == [0, 1, 1, 2, 0]
