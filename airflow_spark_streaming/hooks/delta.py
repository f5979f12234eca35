"""Delta table health from the Delta log: file counts, sizes, small files per partition, maintenance history.

The log is read by delta-rs (``deltalake``): its add actions give every live
file's size and partition values, its history the last OPTIMIZE and VACUUM.
Nothing here parses the log's JSON by hand, and no JVM is needed.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from airflow.sdk import BaseHook

from airflow_spark_streaming.conditions.compaction import DEFAULT_SMALL_FILE_BYTES, MIB
from airflow_spark_streaming.delta.models import (  # their home; importable from here too
    DeltaTableStats,
    MaintenanceRecord,
    PartitionFileStats,
    SizeBucket,
)
from airflow_spark_streaming.delta.sql import (  # noqa: F401 - their home; importable from here too
    PARTITION_FILTER_OPERATORS,
    PartitionFilters,
    check_partition_filters,
    parse_interval,
    partition_filters_sql,
    sql_string_literal,
)
from airflow_spark_streaming.exceptions import (
    DeltaMaintenanceError,
    NotADeltaTableError,
    PlainParquetSinkError,
)
from airflow_spark_streaming.storage.locations import is_local_uri, is_s3_uri, is_spark_file_sink_output, local_path

HISTOGRAM_BOUNDS = (1 * MIB, 8 * MIB, 32 * MIB, 64 * MIB, 128 * MIB, 256 * MIB, 512 * MIB, 1024 * MIB)


def _histogram(sizes: list[int]) -> list[SizeBucket]:
    buckets = [SizeBucket(bound, 0, 0) for bound in HISTOGRAM_BOUNDS] + [SizeBucket(None, 0, 0)]
    for size in sizes:
        bucket = next(b for b in buckets if b.upper_bytes is None or size < b.upper_bytes)
        bucket.files += 1
        bucket.bytes += size
    return buckets


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def refuse_spark_file_sink_output(table_uri: str) -> None:
    """Raise :class:`PlainParquetSinkError` for Spark's Parquet file-sink output, with the safe alternatives."""
    if is_spark_file_sink_output(table_uri):
        raise PlainParquetSinkError(
            f"{table_uri} is the output of Spark's Parquet file sink: its _spark_metadata log lists the files readers "
            "use. Compacting in place would write files that Spark readers never see and delete files they still "
            "read, and vacuuming would remove files the log names. Safe paths instead: stop the stream and run "
            "CONVERT TO DELTA (Delta honours _spark_metadata), or copy-compact the data into a new location "
            "(spark.read.parquet on this path reads through the log) and switch the readers over; then write the "
            "stream to a Delta sink (ConvertFileSinkToDeltaOperator does either)."
        )


class DeltaTableHook(BaseHook):
    """Read a Delta table's file statistics and maintenance history with delta-rs.

    :param table_uri: the table location: a local path or a URI (``s3://``, ``gs://``, ``abfss://``).
    :param storage_options: delta-rs object store options (credentials, endpoints)
        for remote tables; never logged. With ``storage_conn_id`` they override the connection's.
    :param storage_conn_id: an ``aws`` connection for ``s3://``/``s3a://`` tables
        (see :class:`~airflow_spark_streaming.hooks.storage.StorageHook`).
    """

    conn_name_attr = "storage_conn_id"
    default_conn_name = None
    hook_name = "Delta Lake table"

    def __init__(
        self, table_uri: str, *, storage_options: dict[str, str] | None = None, storage_conn_id: str | None = None
    ) -> None:
        super().__init__()
        from airflow_spark_streaming.storage.locations import DELTA_RS, uri_for

        self.table_uri = uri_for(table_uri, DELTA_RS)  # s3a:// is Spark's spelling; delta-rs reads s3://
        self.storage_conn_id = storage_conn_id
        self._storage_options_override = storage_options
        self._storage_options: dict[str, str] | None = None

    @property
    def storage_options(self) -> dict[str, str] | None:
        """delta-rs options: the connection's (resolved once, secrets masked), raw ``storage_options`` on top."""
        if self._storage_options is None:
            from airflow_spark_streaming.storage.access import delta_rs_options

            self._storage_options = (
                delta_rs_options(self.table_uri, self.storage_conn_id, self._storage_options_override) or {}
            )
        return self._storage_options or None

    def get_table(self):
        """The ``deltalake.DeltaTable``; raises :class:`NotADeltaTableError` for a missing path or non-Delta folder."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        if is_local_uri(self.table_uri):
            if not local_path(self.table_uri).exists():
                raise NotADeltaTableError(f"{self.table_uri} does not exist; check the table path.")
            refuse_spark_file_sink_output(self.table_uri)
        try:
            return DeltaTable(self.table_uri, storage_options=self.storage_options)
        except TableNotFoundError as err:
            self._probe_storage()  # a missing bucket or a refused key reads as "no table" in delta-rs
            raise NotADeltaTableError(
                f"{self.table_uri} is not a Delta table (no readable _delta_log): {err}. Check the path."
            ) from err
        except Exception as err:
            named = self._translate(err)
            if named is err:
                raise
            raise named from err

    def _translate(self, err: BaseException) -> BaseException:
        """A named storage error (access denied, missing bucket, unreachable) for an S3 failure."""
        if not (self.storage_conn_id and is_s3_uri(self.table_uri)):
            return err
        from airflow_spark_streaming.hooks.storage import StorageHook

        return StorageHook(self.storage_conn_id).translate(err, self.table_uri)

    def _probe_storage(self) -> None:
        """One bounded listing of an S3 table's bucket; raises the named storage error it meets."""
        if self.storage_conn_id and is_s3_uri(self.table_uri):
            from airflow_spark_streaming.hooks.storage import StorageHook

            StorageHook(self.storage_conn_id).check(self.table_uri)

    def _history(self, table, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` commits. delta-rs 1.6 cannot parse the commitInfo of a table made by
        delta-spark's CONVERT TO DELTA (``readVersion: -1``); that first commit is then left out."""
        from deltalake.exceptions import DeltaError

        try:
            return table.history(limit)
        except DeltaError as err:
            newer = min(limit, table.version())
            if newer <= 0:
                self.log.warning("History of %s is unreadable by delta-rs (%s); reporting none", self.table_uri, err)
                return []
            try:
                return table.history(newer)
            except DeltaError as again:
                raise DeltaMaintenanceError(f"delta-rs cannot read the history of {self.table_uri}: {again}") from again

    def get_stats(self, *, small_file_bytes: int = DEFAULT_SMALL_FILE_BYTES, history: int = 1000) -> DeltaTableStats:
        """File statistics of the table's current version.

        :param small_file_bytes: files below this size count as small.
        :param history: how many recent commits to search for the last OPTIMIZE and VACUUM.
        """
        import pyarrow

        if small_file_bytes <= 0:
            raise DeltaMaintenanceError(f"small_file_bytes must be positive, got {small_file_bytes!r}.")
        table = self.get_table()
        metadata, protocol = table.metadata(), table.protocol()
        partition_columns = list(metadata.partition_columns)
        actions = pyarrow.table(table.get_add_actions(flatten=True)).to_pylist()
        per_partition: dict[tuple, PartitionFileStats] = defaultdict(lambda: PartitionFileStats({}, 0, 0, 0, 0))
        sizes, records = [], 0
        for action in actions:
            size = int(action["size_bytes"])
            sizes.append(size)
            if action.get("num_records") is not None and records is not None:
                records += int(action["num_records"])
            else:
                records = None
            values = {c: action.get(f"partition.{c}") for c in partition_columns}
            key = tuple(values.get(c) for c in partition_columns)
            stats = per_partition[key]
            stats.partition = {c: None if v is None else str(v) for c, v in values.items()}
            stats.files += 1
            stats.bytes += size
            if size < small_file_bytes:
                stats.small_files += 1
                stats.small_bytes += size
        small = sum(1 for s in sizes if s < small_file_bytes)
        last = {"OPTIMIZE": None, "VACUUM END": None}
        for entry in self._history(table, history):  # newest first
            operation = entry.get("operation")
            if operation in last and last[operation] is None:
                last[operation] = MaintenanceRecord(
                    version=int(entry.get("version", -1)),
                    operation=operation,
                    timestamp_ms=entry.get("timestamp"),
                    parameters=_as_dict(entry.get("operationParameters")),
                    metrics=_as_dict(entry.get("operationMetrics")),
                )
        return DeltaTableStats(
            table_uri=self.table_uri,
            version=table.version(),
            partition_columns=partition_columns,
            num_files=len(sizes),
            total_bytes=sum(sizes),
            num_records=records,
            small_file_bytes=small_file_bytes,
            small_files=small,
            small_file_share=small / len(sizes) if sizes else 0.0,
            size_histogram=_histogram(sizes),
            partitions=sorted(per_partition.values(), key=lambda p: json.dumps(p.partition, sort_keys=True)),
            min_reader_version=protocol.min_reader_version,
            min_writer_version=protocol.min_writer_version,
            reader_features=sorted(protocol.reader_features or []),
            writer_features=sorted(protocol.writer_features or []),
            properties=dict(metadata.configuration),
            last_optimize=last["OPTIMIZE"],
            last_vacuum=last["VACUUM END"],
            table_id=metadata.id,
        )

    def get_retention_seconds(self) -> float:
        """The table's ``delta.deletedFileRetentionDuration`` (default one week), in seconds."""
        configuration = self.get_table().metadata().configuration
        return parse_interval(configuration.get("delta.deletedFileRetentionDuration", DEFAULT_DELETED_FILE_RETENTION))

    def get_log_retention_seconds(self) -> float:
        """The table's ``delta.logRetentionDuration`` (default 30 days), in seconds."""
        from airflow_spark_streaming.conditions.reader_retention import DEFAULT_LOG_RETENTION

        configuration = self.get_table().metadata().configuration
        return parse_interval(configuration.get("delta.logRetentionDuration", DEFAULT_LOG_RETENTION))

    def commit_timestamps(self, versions: set[int], *, latest: int) -> dict[int, int]:
        """The commit time (epoch ms) of each of ``versions`` (all at most ``latest``), from the table history.

        One history read when the versions are recent; else the table is loaded at each version (a
        replay from its nearest checkpoint), so a reader far behind costs a few reads, not the whole log.

        :raises DeltaMaintenanceError: a version is no longer in the log (its commits were cleaned up).
        """
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        if not versions:
            return {}
        found: dict[int, int] = {}
        span = latest - min(versions) + 1
        try:
            if span <= HISTORY_SPAN_READ_AT_ONCE:
                entries = self.get_table().history(span)
            else:
                entries = [
                    entry
                    for version in sorted(versions)
                    for entry in DeltaTable(
                        self.table_uri, version=version, storage_options=self.storage_options
                    ).history(1)
                ]
        except (DeltaError, OSError) as err:
            raise DeltaMaintenanceError(
                f"The log of {self.table_uri} no longer holds version {min(versions)} ({err}): its commits were "
                "cleaned up (delta.logRetentionDuration)."
            ) from err
        for entry in entries:
            version, timestamp = entry.get("version"), entry.get("timestamp")
            if version in versions and isinstance(timestamp, int):
                found[int(version)] = timestamp
        missing = sorted(versions - set(found))
        if missing:
            raise DeltaMaintenanceError(
                f"The history of {self.table_uri} has no commit time for versions {missing[:5]}: their commits were "
                "cleaned up (delta.logRetentionDuration) or carry no timestamp."
            )
        return found

    def optimize_native(
        self,
        *,
        partition_filters: PartitionFilters | None = None,
        zorder_by: list[str] | None = None,
        target_file_bytes: int | None = None,
        max_attempts: int = 5,
        retry_delay: float = 2.0,
    ) -> dict[str, Any]:
        """Compact (or Z-order) with delta-rs; commits are ``dataChange=false``.

        A concurrent writer's commit makes delta-rs fail with
        ``CommitFailedError``; the whole optimize is then re-planned on the new
        version, up to ``max_attempts`` times.
        """
        from deltalake.exceptions import CommitFailedError

        for attempt in range(1, max_attempts + 1):
            table = self.get_table()
            try:
                if zorder_by:
                    metrics = table.optimize.z_order(
                        zorder_by, partition_filters=partition_filters, target_size=target_file_bytes
                    )
                else:
                    metrics = table.optimize.compact(partition_filters=partition_filters, target_size=target_file_bytes)
            except CommitFailedError as err:
                if attempt == max_attempts:
                    raise DeltaMaintenanceError(
                        f"OPTIMIZE of {self.table_uri} lost to concurrent commits {max_attempts} times ({err}); "
                        "run it on colder partitions (partition_filters) or when writers are idle."
                    ) from err
                self.log.warning(
                    "OPTIMIZE of %s conflicted (%s); retrying (%d/%d)", self.table_uri, err, attempt, max_attempts
                )
                time.sleep(retry_delay * attempt)
                continue
            return {**_native_metrics(metrics), "attempts": attempt, "raw": metrics}
        raise AssertionError("unreachable")

    def maintenance_commits_after(
        self, version: int, operations: tuple[str, ...], *, limit: int | None = None
    ) -> list[MaintenanceRecord]:
        """The commits after ``version`` whose operation is one of ``operations``, oldest first; at most the
        newest ``limit`` commits (default :data:`HISTORY_SPAN_READ_AT_ONCE`) are read."""
        table = self.get_table()
        span = min(table.version() - version, limit or HISTORY_SPAN_READ_AT_ONCE)
        if span <= 0:
            return []
        records = [
            MaintenanceRecord(
                version=int(entry.get("version", -1)),
                operation=entry["operation"],
                timestamp_ms=entry.get("timestamp"),
                parameters=_as_dict(entry.get("operationParameters")),
                metrics=_as_dict(entry.get("operationMetrics")),
            )
            for entry in self._history(table, span)
            if entry.get("operation") in operations and int(entry.get("version", -1)) > version
        ]
        return sorted(records, key=lambda r: r.version)

    def vacuum_native(self, *, retention_hours: int, dry_run: bool, full: bool) -> list[str]:
        """Files VACUUM deletes (or would delete, with ``dry_run``); retention is checked by the caller."""
        return self.get_table().vacuum(
            retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False, full=full
        )


# --- maintenance with delta-rs (the "native" engine) ---------------------------------------------

#: Writer features delta-rs 1.x cannot write; tables using them need the Spark engine.
NATIVE_UNSUPPORTED_WRITER_FEATURES = frozenset(
    {"clustering", "domainMetadata", "rowTracking", "inCommitTimestamp", "identityColumns", "typeWidening"}
)
DEFAULT_DELETED_FILE_RETENTION = "interval 1 week"
#: Readers within this many versions of the newest are timed with one history read.
HISTORY_SPAN_READ_AT_ONCE = 1000


def _native_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    added, removed = _as_dict(metrics.get("filesAdded")), _as_dict(metrics.get("filesRemoved"))
    return {
        "num_files_added": int(metrics.get("numFilesAdded", 0)),
        "num_files_removed": int(metrics.get("numFilesRemoved", 0)),
        "bytes_added": int(added.get("totalSize", 0)),
        "bytes_removed": int(removed.get("totalSize", 0)),
        "partitions_optimized": int(metrics.get("partitionsOptimized", 0)),
    }


def spark_optimize_metrics(history_metrics: dict[str, Any]) -> dict[str, Any]:
    """The OPTIMIZE commit's ``operationMetrics`` as written by delta-spark, in the same shape."""
    return {
        "num_files_added": int(history_metrics.get("numAddedFiles", 0)),
        "num_files_removed": int(history_metrics.get("numRemovedFiles", 0)),
        "bytes_added": int(history_metrics.get("numAddedBytes", 0)),
        "bytes_removed": int(history_metrics.get("numRemovedBytes", 0)),
        "partitions_optimized": int(history_metrics.get("partitionsOptimized", 0) or 0),
    }


def _count(value: Any) -> int | None:
    """A non-negative count from a commit's metrics (delta-spark writes them as strings), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = value if isinstance(value, str) else ""
    return int(text) if 0 < len(text) <= 19 and text.isascii() and text.isdigit() else None


def spark_vacuum_metrics(records: list[MaintenanceRecord], retention_hours: float) -> dict[str, Any] | None:
    """What a Spark VACUUM logged (``spark.databricks.delta.vacuum.logging.enabled``), from the table's
    VACUUM START and VACUUM END commits after it began, oldest first: the first START whose retention is
    ``retention_hours`` and the END after it. ``None`` when they are not both there."""
    wanted_ms = round(retention_hours * 3600 * 1000)
    start = None
    for record in records:
        if record.operation == "VACUUM START" and start is None:
            retention = _count(record.parameters.get("specifiedRetentionMillis"))
            if retention is None or retention == wanted_ms:  # another VACUUM's retention: not this one
                start = record
        elif record.operation == "VACUUM END" and start is not None:
            return {
                "files_deleted": _count(record.metrics.get("numDeletedFiles")),
                "status": record.parameters.get("status"),
                "versions": [start.version, record.version],
                "raw": {"start": start.metrics, "end": record.metrics},
            }
    return None
