"""What a Structured Streaming checkpoint says, as JSON-serialisable dataclasses (no I/O)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

#: Which batch of a checkpoint a reading counts from: the last committed one, or the newest planned one.
from airflow_spark_streaming.runner.protocol import BATCH_BASES  # noqa: E402,F401 - re-exported


@dataclass
class SourceOffset:
    """One source's offset in one batch, as written in ``offsets/<batch>``.

    ``kind`` is told from the offset's shape: ``kafka`` (topic → partition →
    next offset to read), ``file`` (``logOffset``), ``delta``
    (``reservoirVersion`` and ``index``), ``rate`` (seconds since start),
    ``rate-micro-batch``, ``none`` (``-``: no offset yet) or ``unknown``.
    """

    index: int
    source_id: str
    kind: str
    offset: Any
    kafka: dict[str, dict[str, int]] | None = None
    log_offset: int | None = None
    reservoir_id: str | None = None
    reservoir_version: int | None = None
    delta_index: int | None = None
    #: Delta's ``isStartingVersion``: the query is still reading the snapshot at ``reservoir_version``.
    delta_is_starting_version: bool | None = None
    rate_value: int | None = None

    def kafka_partitions(self) -> dict[tuple[str, int], int]:
        """``{(topic, partition): next offset}`` of a Kafka source (empty for others)."""
        return {(t, int(p)): o for t, parts in (self.kafka or {}).items() for p, o in parts.items()}


@dataclass
class StatefulOperator:
    """A stateful operator found under ``state/<operator id>``."""

    operator_id: int
    operator_name: str | None
    store_names: list[str]
    num_partitions: int | None
    state_bytes: int | None
    state_files: int | None


@dataclass
class BatchRecord:
    """One retained batch: when it was planned and whether (and when) it committed."""

    batch_id: int
    batch_timestamp_ms: int | None
    committed: bool
    commit_time: float | None


@dataclass
class CheckpointStatus:
    """Where a streaming query stands, read from its checkpoint. JSON-serialisable.

    ``latest_planned_batch`` is the newest ``offsets/`` entry (written before a
    batch runs); ``latest_committed_batch`` the newest ``commits/`` entry
    (written after the sink committed). A planned batch above the committed one
    is in flight, or was killed; ``incomplete_offsets_file`` says the newest
    offsets file was still being written, which Spark also treats as not yet
    planned-and-durable.
    """

    checkpoint: str
    query_id: str
    latest_planned_batch: int | None
    latest_committed_batch: int | None
    has_uncommitted_batch: bool
    incomplete_offsets_file: bool
    oldest_retained_batch: int | None
    offsets_log_version: int | None
    commits_log_version: int | None
    batch_timestamp_ms: int | None
    batch_watermark_ms: int | None
    committed_batch_timestamp_ms: int | None
    next_watermark_ms: int | None
    last_commit_time: float | None
    planned_sources: list[SourceOffset]
    committed_sources: list[SourceOffset]
    initial_offsets: dict[str, Any]
    stateful_operators: list[StatefulOperator]
    conf: dict[str, str]
    read_at: float = field(default_factory=time.time)

    @property
    def uncommitted_batch(self) -> int | None:
        return self.latest_planned_batch if self.has_uncommitted_batch else None

    def seconds_since_last_commit(self, now: float | None = None) -> float | None:
        if self.last_commit_time is None:
            return None
        return max(0.0, (now if now is not None else time.time()) - self.last_commit_time)

    def sources_at(self, basis: str) -> tuple[int | None, list[SourceOffset]]:
        """The batch id and source offsets of the ``committed`` or ``planned`` batch (see :data:`BATCH_BASES`)."""
        if basis == "committed":
            return self.latest_committed_batch, self.committed_sources
        return self.latest_planned_batch, self.planned_sources

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointStatus:
        data = dict(data)
        for key in ("planned_sources", "committed_sources"):
            data[key] = [SourceOffset(**s) for s in data[key]]
        data["stateful_operators"] = [StatefulOperator(**s) for s in data["stateful_operators"]]
        return cls(**data)


@dataclass
class CheckpointHistory:
    """The last batches of a query, oldest first, with derived rates."""

    checkpoint: str
    batches: list[BatchRecord]
    read_at: float = field(default_factory=time.time)

    @property
    def committed(self) -> list[BatchRecord]:
        return [b for b in self.batches if b.committed and b.commit_time is not None]

    def batches_per_minute(self) -> float | None:
        """Committed batches per minute over the span of the listed commits."""
        done = self.committed
        if len(done) < 2:
            return None
        span = done[-1].commit_time - done[0].commit_time
        return None if span <= 0 else (len(done) - 1) * 60.0 / span

    def seconds_since_last_commit(self, now: float | None = None) -> float | None:
        done = self.committed
        if not done:
            return None
        return max(0.0, (now if now is not None else time.time()) - done[-1].commit_time)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "batches_per_minute": self.batches_per_minute()}


@dataclass
class OffsetsEntry:
    """One parsed ``offsets/<batch>`` file."""

    batch_id: int
    version: int
    batch_timestamp_ms: int | None
    batch_watermark_ms: int | None
    conf: dict[str, str]
    sources: list[SourceOffset]


@dataclass
class CommittedBatch:
    """One committed micro-batch, as the commit event trigger reports it. JSON-serialisable via :meth:`to_dict`.

    ``sources`` summarise the offsets the batch committed (``index``, ``source_id``, ``kind``,
    ``offset``). ``rows`` and ``output_rows`` come from the progress event the provider's runner
    writes (``_progress/<batch>.json``); ``None`` for queries without them. Spark's Delta sink
    reports no output count, so there ``output_rows`` is the one of the Delta commit the batch wrote.
    """

    batch_id: int
    query_id: str
    commit_time: float | None
    batch_timestamp_ms: int | None
    sources: list[dict[str, Any]] = field(default_factory=list)
    rows: int | None = None
    output_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CommittedBatches:
    """One read of a checkpoint's committed batches (:meth:`CheckpointHook.get_committed_batches`).

    ``position`` is the newest batch the read covers (``None``: nothing committed yet); ``query_id`` is the
    checkpoint's ``metadata`` id, which Spark writes once when it creates a checkpoint: another value at the same
    location means the checkpoint was deleted and created again.
    """

    position: int | None
    batches: list[CommittedBatch]
    query_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "batches": [b.to_dict() for b in self.batches], "query_id": self.query_id}
