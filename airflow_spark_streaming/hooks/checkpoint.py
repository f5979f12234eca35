"""Read a Structured Streaming checkpoint from Airflow: how far the query got, and whether it moves.

The checkpoint is read through Airflow's :class:`~airflow.sdk.ObjectStoragePath`, so
``file://``, ``s3://``, ``gs://`` and ``abfs://`` work with the user's storage
connections. Reading a status costs one listing of the checkpoint root, one of
``offsets/`` and one of ``commits/``, then the few latest files, however many
batches Spark has retained. The format itself is parsed by
:mod:`airflow_spark_streaming.checkpoint`; the stream runner's side files are
:mod:`airflow_spark_streaming.hooks.runner_control`'s.
"""

from __future__ import annotations

import posixpath
import time
from typing import Any

from airflow_spark_streaming.checkpoint import (
    BATCH_FILE,
    BatchRecord,
    CheckpointHistory,
    CheckpointStatus,
    OffsetsEntry,
    StatefulOperator,
    contiguous_batches,
    delta_sink_table,
    parse_commit_file,
    parse_offsets_file,
    parse_operator_metadata,
    parse_query_metadata,
    parse_source_head,
)
from airflow_spark_streaming.checkpoint.models import CommittedBatch, CommittedBatches, SourceOffset
from airflow_spark_streaming.exceptions import (
    CheckpointMetadataMissingError,
    CheckpointNotFoundError,
    CorruptCheckpointFileError,
)
from airflow_spark_streaming.hooks.checkpoint_storage import CheckpointStorageHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.runner.protocol import PROGRESS_DIR
from airflow_spark_streaming.storage.locations import same_store

# Enough for the initial offsets of thousands of Kafka partitions; a file
# source's sources/<n>/0 (a list of files) is never read further than this.
_SOURCE_HEAD_BYTES = 256 * 1024
#: The most batches one :meth:`CheckpointHook.get_committed_batches` call returns; the caller resumes after the last.
MAX_BATCHES_PER_READ = 1000


def _source_summary(source: SourceOffset) -> dict[str, Any]:
    return {"index": source.index, "source_id": source.source_id, "kind": source.kind, "offset": source.offset}


class CheckpointHook(CheckpointStorageHook):
    """Read the status, recent history and committed batches of a Structured Streaming checkpoint.

    Takes the arguments of :class:`~airflow_spark_streaming.hooks.checkpoint_storage.CheckpointStorageHook`:
    ``checkpoint`` (a path or URI) and ``storage_conn_id`` (``conn_id`` is its deprecated old name).
    """

    hook_name = "Structured Streaming checkpoint"

    def _log(self, folder: str) -> set[int]:
        """Batch ids in a log folder; ``.crc``, ``.tmp`` and other side files are skipped."""
        return {int(m.group("batch")) for m in map(BATCH_FILE.match, self.list_names(folder)) if m}

    def _root_entries(self) -> set[str]:
        try:
            exists = self.root.fs.exists(self.root.path)
        except OSError as err:
            raise CheckpointNotFoundError(f"Cannot read checkpoint {self.root}: {err}.") from err
        if not exists:
            raise CheckpointNotFoundError(
                f"Checkpoint {self.root} does not exist; check the path, or whether the query has ever started."
            )
        entries = set(self.list_names())
        if not entries:
            raise CheckpointNotFoundError(
                f"Checkpoint {self.root} is an empty directory: the query has not started yet, or the path is wrong."
            )
        if "metadata" not in entries:
            # Empty log folders (a query in its first moments) are not yet a checkpoint to restore.
            if any(self._log(folder) for folder in ("offsets", "commits") if folder in entries) or "state" in entries:
                raise CheckpointMetadataMissingError(
                    f"{self.describe('metadata')} is missing although the checkpoint has logs; Spark will refuse to "
                    "restart it. Restore the file (it holds the query id) or start a new checkpoint."
                )
            raise CheckpointNotFoundError(
                f"{self.root} is not a Structured Streaming checkpoint: it has no metadata, offsets/ or commits/."
            )
        return entries

    def get_offsets_entry(self, batch_id: int) -> OffsetsEntry:
        """The parsed ``offsets/<batch_id>`` file: the batch's source offsets, timestamp, watermark and conf.

        :raises CorruptCheckpointFileError: the file is torn (the newest one may still be written) or not Spark's.
        """
        path = self.describe("offsets", str(batch_id))
        return parse_offsets_file(self.read_metadata_text("offsets", str(batch_id)), path, batch_id)

    def get_status(self, *, include_state: bool = True) -> CheckpointStatus:
        """Read where the query stands.

        :param include_state: also size the state of each stateful operator,
            which walks ``state/<op>/`` (proportional to its files).
        """
        self.forget_listings()
        entries = self._root_entries()
        query_id = parse_query_metadata(self.read_metadata_text("metadata"), self.describe("metadata"))
        offsets = self._log("offsets") if "offsets" in entries else set()
        commits = self._log("commits") if "commits" in entries else set()
        planned_ids = contiguous_batches(offsets, self.describe("offsets"))
        committed_ids = contiguous_batches(commits, self.describe("commits"))
        latest_planned = planned_ids[-1] if planned_ids else None
        latest_committed = committed_ids[-1] if committed_ids else None

        planned, incomplete = None, False
        if latest_planned is not None:
            try:
                planned = self.get_offsets_entry(latest_planned)
            except CorruptCheckpointFileError:
                # Spark writes offsets before running a batch; a torn newest file is a
                # batch being planned (or killed while planning), not a corrupt checkpoint.
                if latest_committed is not None and latest_committed >= latest_planned:
                    raise
                incomplete = True
        committed = None
        if latest_committed is not None:
            if latest_committed not in offsets:
                raise CorruptCheckpointFileError(
                    f"{self.describe('commits', str(latest_committed))} has no matching offsets file "
                    f"{self.describe('offsets', str(latest_committed))}; the checkpoint is damaged."
                )
            committed = (
                planned
                if planned and planned.batch_id == latest_committed
                else self.get_offsets_entry(latest_committed)
            )
        previous = latest_planned - 1 if latest_planned is not None else None
        if previous is not None and previous in offsets and previous not in {latest_committed, latest_planned}:
            # Spark reads offsets/<N-1> too when it restarts (the previous batch's end offsets); garbage there
            # stops the restart, so it is not a healthy checkpoint.
            self.get_offsets_entry(previous)
        commits_version, commit_body = None, {}
        if latest_committed is not None:
            commits_version, commit_body = parse_commit_file(
                self.read_metadata_text("commits", str(latest_committed)),
                self.describe("commits", str(latest_committed)),
            )
        newest = planned or committed
        return CheckpointStatus(
            checkpoint=str(self.root),
            query_id=query_id,
            latest_planned_batch=latest_planned,
            latest_committed_batch=latest_committed,
            has_uncommitted_batch=latest_planned is not None
            and (latest_committed is None or latest_planned > latest_committed),
            incomplete_offsets_file=incomplete,
            oldest_retained_batch=planned_ids[0] if planned_ids else None,
            offsets_log_version=newest.version if newest else None,
            commits_log_version=commits_version,
            batch_timestamp_ms=newest.batch_timestamp_ms if newest else None,
            batch_watermark_ms=newest.batch_watermark_ms if newest else None,
            committed_batch_timestamp_ms=committed.batch_timestamp_ms if committed else None,
            next_watermark_ms=commit_body.get("nextBatchWatermarkMs"),
            last_commit_time=self.modified_time("commits", str(latest_committed))
            if latest_committed is not None
            else None,
            planned_sources=planned.sources if planned else [],
            committed_sources=committed.sources if committed else [],
            initial_offsets=self._initial_offsets() if "sources" in entries else {},
            stateful_operators=self._stateful_operators(include_state) if "state" in entries else [],
            conf=newest.conf if newest else {},
        )

    def get_history(self, last: int = 20) -> CheckpointHistory:
        """The newest ``last`` planned batches, with their timestamps and commit times."""
        self.forget_listings()
        self._root_entries()
        offsets = self._log("offsets")
        commits = self._log("commits")
        batches = contiguous_batches(offsets, self.describe("offsets"))[-last:] if last > 0 else []
        records = []
        for batch_id in batches:
            try:
                timestamp = self.get_offsets_entry(batch_id).batch_timestamp_ms
            except CorruptCheckpointFileError:
                if batch_id != batches[-1] or batch_id in commits:
                    raise
                timestamp = None  # the newest offsets file is still being written
            records.append(
                BatchRecord(
                    batch_id=batch_id,
                    batch_timestamp_ms=timestamp,
                    committed=batch_id in commits,
                    commit_time=self.modified_time("commits", str(batch_id)) if batch_id in commits else None,
                )
            )
        return CheckpointHistory(checkpoint=str(self.root), batches=records)

    def get_committed_batches(
        self,
        after_batch: int | None,
        *,
        up_to: int | None = None,
        progress_grace_seconds: float = 30.0,
        now: float | None = None,
    ) -> CommittedBatches:
        """The committed batches with ``after_batch < id <= up_to``, oldest first, and the checkpoint's query id.

        What the commit event trigger reports: built on :meth:`get_status`, :meth:`get_history` and
        the runner's progress events (:meth:`RunnerControlHook.get_progress`), plus one
        ``offsets/<batch>`` read per reported batch, so each batch carries the source offsets it
        committed. At most :data:`MAX_BATCHES_PER_READ` batches are returned per call.

        ``after_batch=None`` only reads the position (the newest committed batch). A
        runner-managed checkpoint (it has progress events) writes a batch's progress
        just after its commit; a batch whose progress is not there yet, within
        ``progress_grace_seconds`` of its commit, ends the list so it is reported on
        the next read with its row counts. ``position`` is the last batch returned
        (or ``after_batch`` when none), except with ``after_batch=None``.
        Batches Spark already purged (beyond ``minBatchesToRetain``) cannot be read and are left out.
        """
        status = self.get_status(include_state=False)
        latest = status.latest_committed_batch
        if after_batch is None or latest is None or latest <= after_batch:
            position = latest if after_batch is None else (latest if latest is not None else after_batch)
            return CommittedBatches(position, [], status.query_id)
        last = min(latest, up_to) if up_to is not None else latest
        last = min(last, after_batch + MAX_BATCHES_PER_READ)
        history = {b.batch_id: b for b in self.get_history(last=latest - after_batch + 1).batches}
        progress = {
            int(p["batchId"]): p
            for p in self.sibling(RunnerControlHook).get_progress(after_batch=after_batch)
            if "batchId" in p
        }
        runner_managed = bool(progress) or (self.root / PROGRESS_DIR).exists()
        sink_tables: dict[int, str] = {}
        now = time.time() if now is None else now
        batches: list[CommittedBatch] = []
        position = after_batch
        for batch_id in range(after_batch + 1, last + 1):
            record = history.get(batch_id)
            if record is None or not record.committed:
                position = batch_id
                continue  # purged by Spark's retention: nothing left to report it from
            event = progress.get(batch_id)
            if (
                event is None
                and runner_managed
                and record.commit_time
                and now - record.commit_time < progress_grace_seconds
            ):
                break  # its progress event is about to be written
            position = batch_id
            sources = status.committed_sources if batch_id == latest else self.get_offsets_entry(batch_id).sources
            sink = (event or {}).get("sink") or {}
            if not isinstance(sink, dict):
                sink = {}
            output_rows = sink.get("numOutputRows")
            if isinstance(output_rows, bool) or not isinstance(output_rows, int) or output_rows < 0:
                output_rows = None  # Spark's Delta sink reports -1: the table's commit has the count
                table = delta_sink_table(sink.get("description"))
                if table is not None:
                    sink_tables[batch_id] = table
            batches.append(
                CommittedBatch(
                    batch_id=batch_id,
                    query_id=status.query_id,
                    commit_time=record.commit_time,
                    batch_timestamp_ms=record.batch_timestamp_ms,
                    sources=[_source_summary(s) for s in sources],
                    rows=(event or {}).get("numInputRows"),
                    output_rows=output_rows,
                )
            )
        if sink_tables:
            self._delta_output_rows(batches, sink_tables, status.query_id, latest)
        return CommittedBatches(position, batches, status.query_id)

    def _delta_output_rows(
        self, batches: list[CommittedBatch], sink_tables: dict[int, str], query_id: str, latest: int
    ) -> None:
        """Fill in ``output_rows`` from the ``STREAMING UPDATE`` commit each batch wrote to its Delta sink.

        The table is the one the batch's progress event names, read only when it lies on the checkpoint's
        own store (the description comes from the lake); a commit counts only if it names this query and
        batch. Whatever cannot be read or found stays ``None``.
        """
        from deltalake.exceptions import DeltaError

        from airflow_spark_streaming.exceptions import SparkStreamingError
        from airflow_spark_streaming.hooks.delta_history import DeltaHistoryHook

        by_table: dict[str, list[CommittedBatch]] = {}
        for batch in batches:
            table = sink_tables.get(batch.batch_id)
            if table is not None and same_store(table, self.checkpoint):
                by_table.setdefault(table, []).append(batch)
        for table, wanting in by_table.items():
            hook = DeltaHistoryHook(table, storage_conn_id=self.storage_conn_id)
            newest = max(b.batch_id for b in wanting)
            try:
                commits = hook.streaming_commits(query_id, [b.batch_id for b in wanting],
                                                 newer_batches=latest - newest)  # fmt: skip
            except (SparkStreamingError, DeltaError, OSError) as err:
                self.log.warning("Cannot read the output rows of %s's batches from its Delta sink %s: %s",
                                 self.checkpoint, table, err)  # fmt: skip
                continue
            for batch in wanting:
                commit = commits.get(batch.batch_id)
                if commit is not None:
                    batch.output_rows = commit.rows_added

    def _initial_offsets(self) -> dict[str, Any]:
        found = {}
        for name in sorted(self.list_names("sources"), key=lambda n: (len(n), n)):
            try:
                head = self.read_bytes("sources", name, "0", limit=_SOURCE_HEAD_BYTES)
            except (FileNotFoundError, IsADirectoryError):
                continue
            value = parse_source_head(head)
            if value is not None:
                found[name] = value
        return found

    def _stateful_operators(self, include_size: bool) -> list[StatefulOperator]:
        operators = []
        for name in sorted((n for n in self.list_names("state") if n.isdigit()), key=int):
            try:
                text = self.read_metadata_text("state", name, "_metadata", "metadata")
            except FileNotFoundError:
                text = ""
            operator_name, stores, partitions = parse_operator_metadata(
                text, self.describe("state", name, "_metadata", "metadata")
            )
            size = files = None
            if include_size:
                found = self.root.fs.find(self.storage_path("state", name), detail=True)
                files = sum(1 for e in found.values() if not posixpath.basename(e["name"]).startswith("."))
                size = sum(e.get("size") or 0 for e in found.values())
            operators.append(StatefulOperator(int(name), operator_name, stores, partitions, size, files))
        return operators
