"""Event triggers for ``AssetWatcher``: one asset event per committed micro-batch or Delta version.

Both fire once per commit, in order, and keep their cursor in the watched
asset's state store; see :mod:`airflow_spark_streaming.triggers._cursor` for the
exact guarantee and its limits. Watchers of the same location and poll interval
share one poll loop in the triggerer (``shared_stream_key``).
"""

from __future__ import annotations

import math
import posixpath
from typing import Any

from airflow_spark_streaming.exceptions import InvalidEventTriggerError
from airflow_spark_streaming.triggers._cursor import CommitEventTrigger, CommitRead

#: Delta operations that change a table's data; OPTIMIZE, VACUUM and property changes are left out.
DATA_OPERATIONS = (
    "WRITE",
    "STREAMING UPDATE",
    "MERGE",
    "UPDATE",
    "DELETE",
    "CREATE TABLE AS SELECT",
    "REPLACE TABLE AS SELECT",
    "CREATE OR REPLACE TABLE AS SELECT",
    "COPY INTO",
)


def _normalise_location(location: str) -> str:
    if "://" in location:
        return location.rstrip("/")
    return posixpath.abspath(location)


class CheckpointCommitEventTrigger(CommitEventTrigger):
    """Fire once per micro-batch a Structured Streaming query commits to its checkpoint.

    The event payload::

        {"checkpoint": ..., "query_id": ..., "batch_id": 7, "commit_time": 1795996555.1,
         "batch_timestamp_ms": ..., "sources": [{"index": 0, "kind": "kafka", "offset": {...}}],
         "rows": 120, "output_rows": 120, "previous_event_batch_id": 6}

    ``sources`` are the offsets the batch committed (from ``offsets/<batch>``);
    ``rows``/``output_rows`` come from the progress events the provider's runner
    writes (``None`` for other queries). Spark's Delta sink reports no output count:
    for it ``output_rows`` is the ``numOutputRows`` of the ``STREAMING UPDATE``
    commit the batch wrote to the table the progress event names, when that table
    is on the checkpoint's store and the commit names this query and batch
    (``None`` otherwise). The first start reports batches committed after it; a
    restart resumes after the last batch reported. A checkpoint deleted and
    created again (a new query id in its ``metadata``) is reported from batch 0.

    :param checkpoint: the checkpoint location, a path or a URI (``s3://...``).
    :param pipeline_spec: instead of ``checkpoint``, a Spark Declarative Pipeline's ``spark-pipeline.yml``
        (read in the triggerer at each poll).
    :param pipeline_storage: instead of ``checkpoint``, the pipeline's storage root.
    :param flow: with a pipeline, the flow or table name whose commits fire; each poll resolves it, so a full
        refresh (a new checkpoint version, batch ids from 0 again) is reported from its first batch, like a
        recreated checkpoint.
        Events then carry ``flow``, the resolved ``checkpoint`` and its ``checkpoint_version``.
    :param storage_conn_id: the Airflow connection for the checkpoint's storage; not needed for local paths.
    :param poll_interval: seconds between reads of the checkpoint.
    :param progress_grace_seconds: how long to wait for a runner-managed batch's progress event
        (its row counts) after its commit before reporting the batch without it.
    """

    kind = "checkpoint"
    position_field = "batch_id"
    location_param = "checkpoint"

    def __init__(
        self,
        checkpoint: str | None = None,
        storage_conn_id: str | None = None,
        poll_interval: float = 30.0,
        progress_grace_seconds: float = 30.0,
        *,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
    ) -> None:
        from airflow_spark_streaming.exceptions import InvalidPipelineFlowError
        from airflow_spark_streaming.pipelines.flows import flow_target

        try:
            self.target = flow_target("CheckpointCommitEventTrigger", checkpoint=checkpoint,
                                      pipeline_spec=pipeline_spec, pipeline_storage=pipeline_storage, flow=flow)  # fmt: skip
        except InvalidPipelineFlowError as err:
            raise InvalidEventTriggerError(str(err)) from err
        watched = checkpoint if self.target is None else (pipeline_spec or pipeline_storage)
        super().__init__(location=watched, storage_conn_id=storage_conn_id, poll_interval=poll_interval)
        if (
            isinstance(progress_grace_seconds, bool)
            or not isinstance(progress_grace_seconds, int | float)
            or not math.isfinite(progress_grace_seconds)
            or progress_grace_seconds < 0
        ):
            raise InvalidEventTriggerError(
                f"CheckpointCommitEventTrigger progress_grace_seconds must be >= 0, got {progress_grace_seconds!r}."
            )
        self.checkpoint = checkpoint if self.target is None else None
        self.progress_grace_seconds = float(progress_grace_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        pipeline = {} if self.target is None else self.target.to_kwargs()
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "checkpoint": self.checkpoint,
                "storage_conn_id": self.storage_conn_id,
                "poll_interval": self.poll_interval,
                "progress_grace_seconds": self.progress_grace_seconds,
                **pipeline,
            },
        )

    def location(self) -> str:
        if self.target is None:
            return _normalise_location(self.checkpoint)
        # One cursor per flow: the spec or storage it was named through, and the flow's name.
        return f"{_normalise_location(self.target.spec or self.target.storage)}#flow={self.target.flow}"

    def _checkpoint(self) -> tuple[str, int]:
        """The checkpoint and its version: a pipeline flow's as resolved now (a full refresh moves it to the next
        version); a checkpoint given by path is version 0."""
        if self.target is None:
            return self.checkpoint, 0
        from airflow_spark_streaming.hooks.pipelines import PipelineHook

        resolved = PipelineHook(self.storage_conn_id).resolve(self.target)
        return resolved.checkpoint, resolved.flow.version

    def read_after(self, after: int | None, up_to: int | None = None) -> CommitRead:
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        checkpoint, version = self._checkpoint()
        hook = CheckpointHook(checkpoint, self.storage_conn_id)
        read = hook.get_committed_batches(after, up_to=up_to, progress_grace_seconds=self.progress_grace_seconds)
        if self.target is None:
            # The query id in ``metadata`` is written once per checkpoint: a new one means deleted and created again.
            return CommitRead(read.position, [b.to_dict() for b in read.batches], read.query_id)
        # A pipeline flow's checkpoint is what it holds: a full refresh starts a new version of it.
        return CommitRead(read.position, [{"checkpoint": checkpoint, "checkpoint_version": version, **b.to_dict()}
                                          for b in read.batches], checkpoint)  # fmt: skip

    def payload(self, commit: dict[str, Any], previous_event: int | None) -> dict[str, Any]:
        if self.target is None:
            return {"checkpoint": self.checkpoint, **commit, "previous_event_batch_id": previous_event}
        return {"flow": self.target.flow, **commit, "previous_event_batch_id": previous_event}


class DeltaVersionEventTrigger(CommitEventTrigger):
    """Fire once per new version of a Delta table whose operation is one of ``operations``.

    The event payload::

        {"table_uri": ..., "version": 12, "operation": "WRITE", "timestamp_ms": ...,
         "rows_added": 500, "files_added": 2, "files_removed": 0, "bytes_added": 8123,
         "operation_parameters": {"mode": "Append"}, "previous_event_version": 10}

    Read from the commit info through delta-rs (``DeltaTable.history``). Versions
    whose operation is filtered out (``OPTIMIZE`` by default) move the cursor
    without an event. The first start on an existing table reports versions written
    after it; on a table that does not exist yet, every version from its first (0).
    A table deleted and created again at the location (a new table id) is reported
    from its first version too.

    :param table_uri: the table location: a local path or a URI (``s3://...``).
    :param storage_conn_id: an Airflow ``aws`` connection whose credentials delta-rs uses.
    :param storage_options: delta-rs object-store options (override the connection's); prefer
        ``storage_conn_id`` for credentials, as trigger kwargs are stored with the trigger.
    :param operations: the Delta operations that fire (case-insensitive), or ``None`` for every
        version. Defaults to :data:`DATA_OPERATIONS`, which leaves out OPTIMIZE and VACUUM.
    :param poll_interval: seconds between reads of the table's log.
    """

    kind = "delta"
    position_field = "version"
    location_param = "table_uri"

    def __init__(
        self,
        table_uri: str,
        storage_conn_id: str | None = None,
        storage_options: dict[str, str] | None = None,
        operations: list[str] | tuple[str, ...] | None = DATA_OPERATIONS,
        poll_interval: float = 30.0,
    ) -> None:
        super().__init__(location=table_uri, storage_conn_id=storage_conn_id, poll_interval=poll_interval)
        if storage_options is not None and (
            not isinstance(storage_options, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in storage_options.items())
        ):
            raise InvalidEventTriggerError(
                "DeltaVersionEventTrigger storage_options must be a dict of strings to strings."
            )
        if operations is not None:
            if isinstance(operations, str) or not all(isinstance(o, str) and o.strip() for o in operations):
                raise InvalidEventTriggerError(
                    f"DeltaVersionEventTrigger operations must be a list of operation names such as "
                    f"['WRITE', 'STREAMING UPDATE'], or None for all; got {operations!r}."
                )
            if not operations:
                raise InvalidEventTriggerError(
                    "DeltaVersionEventTrigger operations is empty, so it would never fire; pass None for all operations."
                )
        self.table_uri = table_uri
        self.storage_options = storage_options
        self.operations = None if operations is None else sorted({o.strip().upper() for o in operations})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "table_uri": self.table_uri,
                "storage_conn_id": self.storage_conn_id,
                "storage_options": self.storage_options,
                "operations": self.operations,
                "poll_interval": self.poll_interval,
            },
        )

    def location(self) -> str:
        return _normalise_location(self.table_uri)

    def shared_stream_key(self):
        # The operation filter is applied per subscriber, so it is not part of the key.
        options = tuple(sorted((self.storage_options or {}).items()))
        return (*super().shared_stream_key(), options)

    def read_after(self, after: int | None, up_to: int | None = None) -> CommitRead:
        from airflow_spark_streaming.exceptions import NotADeltaTableError
        from airflow_spark_streaming.hooks.delta_history import DeltaHistoryHook

        hook = DeltaHistoryHook(
            self.table_uri, storage_conn_id=self.storage_conn_id, storage_options=self.storage_options
        )
        try:
            read = hook.read_commits(after)
        except NotADeltaTableError:
            return CommitRead(None, [])  # not created yet, or deleted: its first version will be news
        if after is None:
            return CommitRead(read.version, [], read.table_id)
        commits = [c for c in read.commits if up_to is None or c.version <= up_to]
        latest = min(read.version, up_to) if up_to is not None else read.version
        position = commits[-1].version if commits else max(after, latest)
        if read.version < after:
            position = read.version  # the table was recreated: the caller starts again from its first version
        return CommitRead(position, [c.to_dict() for c in commits], read.table_id)

    def still_holds(self, position: int, identity: str) -> bool:
        """Spark's REPLACE TABLE gives the table a new id in the same log: version ``position`` still has the old
        one. A table deleted and created again has the new id from its version 0."""
        from airflow_spark_streaming.exceptions import SparkStreamingError
        from airflow_spark_streaming.hooks.delta_history import DeltaHistoryHook

        hook = DeltaHistoryHook(
            self.table_uri, storage_conn_id=self.storage_conn_id, storage_options=self.storage_options
        )
        try:
            return hook.table_id_at(position) == identity
        except SparkStreamingError as err:  # that version's log is gone (cleaned up): do not replay the table
            self.log.warning("Cannot read version %d of %s (%s); taking it as the same table", position,
                             self.table_uri, err)  # fmt: skip
            return True

    def wanted(self, commit: dict[str, Any]) -> bool:
        return self.operations is None or str(commit.get("operation") or "").upper() in self.operations

    def payload(self, commit: dict[str, Any], previous_event: int | None) -> dict[str, Any]:
        return {"table_uri": self.table_uri, **commit, "previous_event_version": previous_event}
