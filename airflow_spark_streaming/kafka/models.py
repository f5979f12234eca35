"""What the brokers say about a query's partitions, as plain JSON-serialisable records (pure, no I/O).

Lag (:class:`LagReport`, filled by
:class:`~airflow_spark_streaming.hooks.kafka_lag.KafkaLagHook`), record
timestamps and topic retention (filled by
:class:`~airflow_spark_streaming.hooks.kafka_broker.KafkaBrokerHook`).
:mod:`airflow_spark_streaming.kafka.time_lag` and :mod:`airflow_spark_streaming.conditions`
decide on them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

CREATE_TIME, LOG_APPEND_TIME, NO_TIMESTAMP = "CreateTime", "LogAppendTime", "NoTimestamp"
# How the first record at or after the asked offset was found.
FOUND = "found"  # a record at or after the offset (the gap, if any, is compaction, markers or aborted records)
RESET_TO_EARLIEST = "reset_to_earliest"  # the offset was deleted (retention, delete-records): earliest retained record
NO_RECORD = "no_record"  # nothing committed to read between the offset and the end of the partition
OPEN_TRANSACTION = "open_transaction"  # records follow, but inside a transaction not yet committed
TIMED_OUT = "timed_out"  # no answer for this partition before the deadline
OFFSET_BEYOND_END = "offset_beyond_end"  # the partition ends below the offset: topic reset or recreated
RETENTION_KINDS = ("time", "infinite", "size", "time_and_size", "compact")


def partition_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


@dataclass
class RecordTimestamp:
    """The first record a consumer reads at or after ``requested_offset`` in one partition.

    ``offset`` is where that record really is: above ``requested_offset`` when
    compaction removed the asked record, when transaction markers or aborted
    records sat there, or when retention deleted it (``outcome``
    ``reset_to_earliest``; ``lost`` then counts the deleted records, as
    :class:`PartitionLag` does).
    ``timestamp_ms`` is the record's timestamp, set by the producer
    (``CreateTime``) or by the broker when it appended it (``LogAppendTime``).
    """

    topic: str
    partition: int
    requested_offset: int
    outcome: str
    offset: int | None = None
    timestamp_ms: int | None = None
    timestamp_type: str | None = None
    lost: int = 0
    end_offset: int | None = None  # the consumer's view of the partition end (last stable offset)

    @property
    def name(self) -> str:
        return partition_name(self.topic, self.partition)


@dataclass
class RecordTimestamps:
    """The answer to one batched timestamp fetch. JSON-serialisable."""

    records: list[RecordTimestamp]
    isolation_level: str
    elapsed_seconds: float
    fetch_requests: int | None = None  # counted from client statistics when asked for
    measured_at: float = field(default_factory=time.time)

    def of(self, topic: str, partition: int) -> RecordTimestamp:
        for record in self.records:
            if (record.topic, record.partition) == (topic, partition):
                return record
        raise KeyError(partition_name(topic, partition))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordTimestamps:
        return cls(**{**data, "records": [RecordTimestamp(**r) for r in data["records"]]})


@dataclass
class TopicRetention:
    """A topic's deletion policy, as the broker resolves it (topic override, else broker default).

    ``kind``: ``time`` (records older than ``retention_ms`` go), ``infinite``
    (``retention.ms`` -1 and no size limit), ``size`` (only ``retention.bytes``
    per partition limits it), ``time_and_size`` (both; whichever first), or
    ``compact`` (``cleanup.policy=compact`` without ``delete``: records go only
    when a newer record has the same key).
    """

    topic: str
    retention_ms: int | None
    retention_bytes: int | None
    cleanup_policy: list[str]
    message_timestamp_type: str | None
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retention_kind(retention_ms: int | None, retention_bytes: int | None, cleanup_policy: Iterable[str]) -> str:
    """Classify a topic's deletion policy (pure)."""
    policy = set(cleanup_policy)
    if "delete" not in policy:
        return "compact"
    timed = retention_ms is not None and retention_ms >= 0
    sized = retention_bytes is not None and retention_bytes >= 0
    if timed and sized:
        return "time_and_size"
    if timed:
        return "time"
    return "size" if sized else "infinite"


@dataclass
class PartitionLag:
    """Lag of one topic-partition.

    ``lag`` counts the records the query can still read:
    ``latest - max(checkpoint offset, earliest)``. A partition the checkpoint has
    not seen yet (``new``) counts from its earliest offset. ``lost`` counts the
    records deleted (by retention or delete-records) before the query read them.
    """

    topic: str
    partition: int
    checkpoint_offset: int | None
    earliest_offset: int
    latest_offset: int
    lag: int
    lost: int = 0
    new: bool = False
    # Filled by get_lag(time_lag=True); None otherwise (and in reports from older releases).
    time_lag_seconds: float | None = None
    record_timestamp_ms: int | None = None
    timestamp_type: str | None = None
    headroom_seconds: float | None = None
    retention_kind: str | None = None


@dataclass
class LagReport:
    """The lag of every Kafka partition a streaming query reads. JSON-serialisable."""

    checkpoint: str
    query_id: str
    basis: str
    batch_id: int | None
    partitions: list[PartitionLag]
    total_lag: int
    max_lag: int
    new_partitions: list[str]
    deleted_partitions: list[str]
    deleted_topics: list[str]
    data_loss_partitions: list[str]
    round_trips: int
    measured_at: float = field(default_factory=time.time)
    # Filled by get_lag(time_lag=True) (see TimeLagReport); None when not measured.
    max_time_lag_seconds: float | None = None
    min_retention_headroom_seconds: float | None = None
    unbounded_partitions: list[str] | None = None
    size_bound_partitions: list[str] | None = None
    unknown_time_lag_partitions: list[str] | None = None
    # Filled by get_lag(liveness=True) (RunnerControlHook.query_running); None when not asked or unknown.
    query_running: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LagReport:
        return cls(**{**data, "partitions": [PartitionLag(**p) for p in data["partitions"]]})

    def lag_of(self, topic: str, partition: int) -> int:
        for p in self.partitions:
            if (p.topic, p.partition) == (topic, partition):
                return p.lag
        raise KeyError(f"{topic}:{partition}")
