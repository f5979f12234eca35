"""Time lag and retention headroom of a query's Kafka partitions, from lag, record timestamps and retention (pure).

* **Time lag** of a partition is the age of the oldest record the query has not
  processed: ``now`` minus the timestamp of the record at the checkpoint
  offset, 0 when the partition has no lag.
* **Retention headroom** is how long until time-based retention may delete
  that record: ``retention.ms`` minus its age.

:meth:`~airflow_spark_streaming.hooks.kafka_broker.KafkaBrokerHook.get_time_lag`
reads the records and retention; ``now`` is always passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from airflow_spark_streaming.kafka.models import NO_RECORD, RecordTimestamp, TopicRetention, partition_name


class PartitionLagLike(Protocol):
    """What time lag needs of a lag measurement (``PartitionLag`` has it)."""

    topic: str
    partition: int
    lag: int


@dataclass
class PartitionTimeLag:
    """Time lag of one partition and, when retention is time-based, its headroom.

    ``time_lag_seconds`` is ``None`` when the record's time is unknown (an open
    transaction, a record without timestamp, no answer in time); ``outcome``
    says which. ``headroom_seconds`` is ``None`` for topics whose retention is
    not time-based (``retention_kind`` says which kind).
    """

    topic: str
    partition: int
    lag: int
    time_lag_seconds: float | None
    record_offset: int | None = None
    record_timestamp_ms: int | None = None
    timestamp_type: str | None = None
    outcome: str | None = None
    lost: int = 0
    retention_kind: str | None = None
    retention_ms: int | None = None
    headroom_seconds: float | None = None


@dataclass
class TimeLagReport:
    """Time lag and retention headroom of every partition. JSON-serialisable.

    ``min_headroom_seconds`` is the least headroom over the lagging partitions
    of time-retained topics (negative: the oldest unread record is already
    older than retention allows and may go at the broker's next cleanup).
    ``unbounded_partitions`` are lagging partitions of topics that never delete
    by time (infinite retention, compaction only); ``size_bound_partitions``
    lose records by size (``retention.bytes``), which headroom cannot time.
    """

    partitions: list[PartitionTimeLag]
    max_time_lag_seconds: float | None
    max_time_lag_partition: str | None
    min_headroom_seconds: float | None
    min_headroom_partition: str | None
    unbounded_partitions: list[str]
    size_bound_partitions: list[str]
    unknown_partitions: list[str]
    measured_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimeLagReport:
        return cls(**{**data, "partitions": [PartitionTimeLag(**p) for p in data["partitions"]]})


def time_lag_seconds(lag: int, timestamp_ms: int | None, now: float) -> float | None:
    """Age of the oldest unprocessed record; 0 without lag, never negative (producer clocks run ahead)."""
    if lag <= 0:
        return 0.0
    if timestamp_ms is None:
        return None
    return max(0.0, now - timestamp_ms / 1000.0)


def headroom_seconds(retention: TopicRetention | None, age_seconds: float | None) -> float | None:
    """``retention.ms`` minus the age of the oldest unprocessed record; ``None`` unless retention is by time."""
    if retention is None or age_seconds is None or retention.kind not in ("time", "time_and_size"):
        return None
    return retention.retention_ms / 1000.0 - age_seconds


def assess_time_lag(
    partitions: Iterable[PartitionLagLike],
    records: Iterable[RecordTimestamp],
    retention: Mapping[str, TopicRetention],
    now: float,
) -> TimeLagReport:
    """Join lag, the first unprocessed records and retention into a :class:`TimeLagReport`.

    ``records`` needs an entry only for lagging partitions. A lagging partition
    whose remaining offsets hold no committed record (aborted transactions,
    markers) has nothing to process: its time lag is 0.
    """
    by_key = {(r.topic, r.partition): r for r in records}
    rows = []
    for p in partitions:
        record = by_key.get((p.topic, p.partition)) if p.lag > 0 else None
        policy = retention.get(p.topic)
        if p.lag > 0 and record is not None and record.outcome == NO_RECORD:
            age = 0.0
        else:
            age = time_lag_seconds(p.lag, record.timestamp_ms if record else None, now)
        rows.append(
            PartitionTimeLag(
                topic=p.topic,
                partition=p.partition,
                lag=p.lag,
                time_lag_seconds=age,
                record_offset=record.offset if record else None,
                record_timestamp_ms=record.timestamp_ms if record else None,
                timestamp_type=record.timestamp_type if record else None,
                outcome=record.outcome if record else None,
                lost=record.lost if record else 0,
                retention_kind=policy.kind if policy else None,
                retention_ms=policy.retention_ms if policy else None,
                headroom_seconds=headroom_seconds(policy, age) if p.lag > 0 else None,
            )
        )
    lagging = [r for r in rows if r.lag > 0]
    known = [r for r in rows if r.time_lag_seconds is not None]
    oldest = max(known, key=lambda r: r.time_lag_seconds, default=None)
    timed = [r for r in lagging if r.headroom_seconds is not None]
    tightest = min(timed, key=lambda r: r.headroom_seconds, default=None)
    return TimeLagReport(
        partitions=rows,
        max_time_lag_seconds=oldest.time_lag_seconds if oldest else None,
        max_time_lag_partition=partition_name(oldest.topic, oldest.partition) if oldest and oldest.lag else None,
        min_headroom_seconds=tightest.headroom_seconds if tightest else None,
        min_headroom_partition=partition_name(tightest.topic, tightest.partition) if tightest else None,
        unbounded_partitions=[
            partition_name(r.topic, r.partition) for r in lagging if r.retention_kind in ("infinite", "compact")
        ],  # fmt: skip
        size_bound_partitions=[
            partition_name(r.topic, r.partition) for r in lagging if r.retention_kind in ("size", "time_and_size")
        ],  # fmt: skip
        unknown_partitions=[partition_name(r.topic, r.partition) for r in lagging if r.time_lag_seconds is None],
        measured_at=now,
    )
