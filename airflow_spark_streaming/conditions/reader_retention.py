"""How long VACUUM must keep removed files so every downstream stream can restart (pure).

A stream reading a Delta table restarts from the version its last committed batch ended at
(:attr:`~airflow_spark_streaming.delta.models.DeltaReader.next_version`). Every file it may
read from there was live at that version or added after it, so it was removed (if at all) by
a later commit. Keeping every file whose removal is newer than that version's commit time, less
a margin for removes stamped when a long transaction began, keeps all of them; VACUUM's
retention is an age, so it becomes ``max(the table's retention, the age of the oldest reader's
next version + margin)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.exceptions import ReaderTableMismatchError

if TYPE_CHECKING:
    from airflow_spark_streaming.checkpoint.models import SourceOffset
    from airflow_spark_streaming.delta.models import DeltaReader

HOUR = 3600.0
#: Default extra retention beyond the oldest reader's position: covers removes that a long OPTIMIZE stamped
#: when it began (before the reader's version was committed) and clock skew between writers and this worker.
DEFAULT_READER_MARGIN_SECONDS = HOUR
#: ``delta.logRetentionDuration`` when the table does not set it.
DEFAULT_LOG_RETENTION = "interval 30 days"
#: Delta marks "every file of this version read" with an index near ``Long.MaxValue`` in some versions
#: (``END_INDEX``); such an offset reads the next version.
END_INDEX_FLOOR = 2**62


def next_version_to_read(sources: list[SourceOffset], table_id: str, where: str) -> int:
    """The oldest table version a restart reads, from one batch's source offsets.

    A query can read the table through several sources (a self-join, a union); the oldest
    of their positions counts. ``reservoirVersion`` is the version being read whatever the
    ``index`` (-1: none of its files read yet; with ``isStartingVersion``: its snapshot).

    :raises ReaderTableMismatchError: no Delta source of the batch reads ``table_id``.
    """
    versions = [
        s.reservoir_version + 1 if (s.delta_index or 0) >= END_INDEX_FLOOR else s.reservoir_version
        for s in sources
        if s.kind == "delta" and s.reservoir_id == table_id and s.reservoir_version is not None
    ]
    if not versions:
        found = sorted({str(s.reservoir_id) for s in sources if s.kind == "delta"})
        reads = f"Delta tables with ids {found}" if found else "no Delta table"
        raise ReaderTableMismatchError(
            f"{where} reads {reads}, not this table (id {table_id}); it is not one of its readers. Remove it from "
            "readers (or list it in exclude_readers); if the table was re-created, the stream must be reset."
        )
    return min(versions)


@dataclass
class ReaderRetention:
    """The retention VACUUM uses once the readers are counted, and who set it. JSON-serialisable.

    ``retention_hours`` is what the engines are given (whole hours, rounded up).
    ``held_back_by`` names the reader whose position set it (``None``: the requested retention
    was already long enough) and ``held_back_seconds`` by how much it exceeds the requested one.
    ``log_retention_warning`` is set when the oldest reader is older than the table's
    ``delta.logRetentionDuration``: a checkpoint may clean up commits it needs to restart.
    """

    requested_seconds: float
    reader_seconds: float
    retention_seconds: float
    retention_hours: int
    held_back_by: str | None
    held_back_seconds: float
    oldest_reader: str | None
    oldest_reader_seconds: float | None
    log_retention_seconds: float
    log_retention_warning: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def whole_hours(seconds: float) -> int:
    """Whole hours, rounded up (never shorter than asked)."""
    return math.ceil(max(0.0, seconds) / HOUR - 1e-9)


def plan_reader_retention(
    *,
    requested_seconds: float,
    requested_hours: int,
    readers: list[DeltaReader],
    margin_seconds: float = DEFAULT_READER_MARGIN_SECONDS,
    log_retention_seconds: float,
) -> ReaderRetention:
    """The retention that keeps every file the ``readers`` may read on restart.

    :param requested_seconds: the retention asked for (or the table's).
    :param requested_hours: the whole hours the operator would use without readers.
    :param readers: the readers' positions; one whose next version is not committed yet needs nothing.
    :param margin_seconds: kept beyond the oldest reader's next version.
    :param log_retention_seconds: the table's ``delta.logRetentionDuration``.
    """
    oldest = _oldest(readers)
    reader_seconds = oldest.lag_seconds + margin_seconds if oldest else 0.0
    retention_seconds = max(requested_seconds, reader_seconds)
    hours = max(requested_hours, whole_hours(reader_seconds)) if oldest else requested_hours
    held_back = oldest is not None and whole_hours(reader_seconds) > requested_hours
    warning = None
    if oldest is not None and oldest.lag_seconds > log_retention_seconds:
        warning = (
            f"reader {oldest.name} is {oldest.lag_seconds / HOUR:.1f}h behind (version {oldest.next_version}), more "
            f"than the table's delta.logRetentionDuration ({log_retention_seconds / HOUR:g}h): the next checkpoint "
            "may clean up commits it needs to restart. Restart it now, or raise delta.logRetentionDuration."
        )
    return ReaderRetention(
        requested_seconds=requested_seconds,
        reader_seconds=reader_seconds,
        retention_seconds=retention_seconds,
        retention_hours=hours,
        held_back_by=oldest.name if held_back else None,
        held_back_seconds=max(0.0, hours * HOUR - requested_seconds) if held_back else 0.0,
        oldest_reader=oldest.name if oldest else None,
        oldest_reader_seconds=oldest.lag_seconds if oldest else None,
        log_retention_seconds=log_retention_seconds,
        log_retention_warning=warning,
    )


def log_retention_headroom(
    readers: list[DeltaReader], log_retention_seconds: float
) -> tuple[DeltaReader, float] | None:
    """The oldest placed reader and how long before the log retention catches it (negative: already past)."""
    oldest = _oldest(readers)
    if oldest is None:
        return None
    return oldest, log_retention_seconds - oldest.lag_seconds


def _oldest(readers: list[DeltaReader]) -> DeltaReader | None:
    """The reader whose next version is the oldest committed one; caught-up and unstarted readers need nothing."""
    placed = [r for r in readers if r.next_version_timestamp_ms is not None and r.lag_seconds is not None]
    return max(placed, key=lambda r: (r.lag_seconds, -(r.next_version or 0)), default=None)
