"""What a Delta table's log says: file statistics, maintenance commits, and commits since a version (pure).

JSON-serialisable dataclasses. :class:`~airflow_spark_streaming.hooks.delta.DeltaTableHook`
and :class:`~airflow_spark_streaming.hooks.delta_history.DeltaHistoryHook` fill them in with
delta-rs; :mod:`airflow_spark_streaming.conditions.compaction` decides on them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SizeBucket:
    """Files whose size is below ``upper_bytes`` (and at or above the previous bucket's bound)."""

    upper_bytes: int | None
    files: int
    bytes: int


@dataclass
class PartitionFileStats:
    """Live files of one partition (``partition`` is ``{}`` for an unpartitioned table)."""

    partition: dict[str, str | None]
    files: int
    bytes: int
    small_files: int
    small_bytes: int

    @property
    def small_file_share(self) -> float:
        return self.small_files / self.files if self.files else 0.0


@dataclass
class MaintenanceRecord:
    """One OPTIMIZE or VACUUM commit from the table history."""

    version: int
    operation: str
    timestamp_ms: int | None
    parameters: dict[str, Any]
    metrics: dict[str, Any]


@dataclass
class DeltaTableStats:
    """A Delta table's file statistics and maintenance state. JSON-serialisable."""

    table_uri: str
    version: int
    partition_columns: list[str]
    num_files: int
    total_bytes: int
    num_records: int | None
    small_file_bytes: int
    small_files: int
    small_file_share: float
    size_histogram: list[SizeBucket]
    partitions: list[PartitionFileStats]
    min_reader_version: int
    min_writer_version: int
    reader_features: list[str]
    writer_features: list[str]
    properties: dict[str, str]
    last_optimize: MaintenanceRecord | None
    last_vacuum: MaintenanceRecord | None
    read_at: float = field(default_factory=time.time)
    #: The table's id (``metaData.id``), which a streaming reader's offsets carry as ``reservoirId``.
    table_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for partition, stats in zip(data["partitions"], self.partitions, strict=True):
            partition["small_file_share"] = stats.small_file_share
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeltaTableStats:
        data = dict(data)
        data["size_histogram"] = [SizeBucket(**b) for b in data["size_histogram"]]
        data["partitions"] = [
            PartitionFileStats(**{k: v for k, v in p.items() if k != "small_file_share"}) for p in data["partitions"]
        ]
        for key in ("last_optimize", "last_vacuum"):
            data[key] = MaintenanceRecord(**data[key]) if data[key] else None
        return cls(**data)


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class DeltaCommit:
    """One table version as its commit info describes it. JSON-serialisable via :meth:`to_dict`.

    ``rows_added`` / ``files_added`` / ``files_removed`` come from the commit's
    ``operationMetrics`` (delta-spark and delta-rs name them differently; both are
    read); ``None`` when the writer recorded no such metric.
    """

    version: int
    timestamp_ms: int | None
    operation: str | None
    rows_added: int | None
    files_added: int | None
    files_removed: int | None
    bytes_added: int | None
    operation_parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_commit_info(cls, info: dict[str, Any]) -> DeltaCommit:
        metrics = info.get("operationMetrics") or {}

        def metric(*names: str) -> int | None:
            return next((v for v in (_int(metrics.get(n)) for n in names) if v is not None), None)

        params = info.get("operationParameters") or {}
        return cls(
            version=int(info["version"]),
            timestamp_ms=_int(info.get("timestamp")),
            operation=info.get("operation"),
            rows_added=metric("numOutputRows", "num_added_rows", "numTargetRowsInserted"),
            files_added=metric("numFiles", "numAddedFiles", "numFilesAdded", "num_added_files", "numTargetFilesAdded"),
            files_removed=metric("numRemovedFiles", "numFilesRemoved", "num_removed_files", "numTargetFilesRemoved"),
            bytes_added=metric("numOutputBytes", "numAddedBytes", "num_added_bytes"),
            operation_parameters={
                str(k): v if isinstance(v, str | int | float | bool) else str(v) for k, v in params.items()
            },  # fmt: skip
        )


@dataclass
class DeltaCommitRange:
    """One read of a table's log: its newest version, its id and the commits after a version, oldest first.

    ``table_id`` is the table's ``metaData.id``: it stays the same across writes, overwrites and schema
    changes, and is new when the table is deleted and created again at the same location.
    """

    table_uri: str
    version: int
    table_id: str
    commits: list[DeltaCommit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeltaReader:
    """Where one downstream stream reading a Delta table stands, from its checkpoint. JSON-serialisable.

    ``next_version`` is the oldest table version a restart of the stream may read: the
    ``reservoirVersion`` of the Delta source's offset in the last committed batch (a restart
    replays from there; with ``isStartingVersion`` it re-reads that version's snapshot).
    ``None``: the stream has no committed batch and no planned one, so it needs nothing yet.
    ``next_version_timestamp_ms`` is that version's commit time; ``None`` when the version is
    not committed yet (the stream is caught up). ``lag_versions`` counts the table versions
    committed from ``next_version`` on; ``lag_seconds`` is the age of ``next_version``.
    """

    name: str
    checkpoint: str
    query_id: str
    batch_id: int | None
    basis: str
    next_version: int | None
    next_version_timestamp_ms: int | None
    lag_versions: int
    lag_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
