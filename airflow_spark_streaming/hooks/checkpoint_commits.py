"""The batches a checkpoint committed after a given batch: what the commit event trigger reports.

Built on :class:`~airflow_spark_streaming.hooks.checkpoint.CheckpointHook`'s public
reads (status, history, progress events) plus one ``offsets/<batch>`` read per
reported batch, so each event carries the source offsets that batch committed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_BATCHES_PER_READ = 1000


@dataclass
class CommittedBatch:
    """One committed micro-batch. ``rows`` and ``output_rows`` come from the progress event the
    provider's runner writes (``_progress/<batch>.json``); ``None`` for queries without them."""

    batch_id: int
    query_id: str
    commit_time: float | None
    batch_timestamp_ms: int | None
    sources: list[dict[str, Any]] = field(default_factory=list)
    rows: int | None = None
    output_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _source_summary(source) -> dict[str, Any]:
    return {"index": source.index, "source_id": source.source_id, "kind": source.kind, "offset": source.offset}


def read_committed_batches(
    checkpoint: str,
    storage_conn_id: str | None,
    after_batch: int | None,
    *,
    up_to: int | None = None,
    progress_grace_seconds: float = 30.0,
    now: float | None = None,
) -> tuple[int | None, list[CommittedBatch]]:
    """``(position, batches)``: committed batches with ``after_batch < id <= up_to``, oldest first.

    ``after_batch=None`` only reads the position (the newest committed batch). A
    runner-managed checkpoint (it has progress events) writes a batch's progress
    just after its commit; a batch whose progress is not there yet, within
    ``progress_grace_seconds`` of its commit, ends the list so it is reported on
    the next read with its row counts. ``position`` is the last batch returned
    (or ``after_batch`` when none), except with ``after_batch=None``.
    Batches Spark already purged (beyond ``minBatchesToRetain``) cannot be read and are left out.
    """
    from airflow_spark_streaming.checkpoint import parse_offsets_file
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.runner.protocol import PROGRESS_DIR

    hook = CheckpointHook(checkpoint, storage_conn_id)
    status = hook.get_status(include_state=False)
    latest = status.latest_committed_batch
    if after_batch is None or latest is None or latest <= after_batch:
        return (latest if after_batch is None else (latest if latest is not None else after_batch)), []
    last = min(latest, up_to) if up_to is not None else latest
    last = min(last, after_batch + MAX_BATCHES_PER_READ)
    history = {b.batch_id: b for b in hook.get_history(last=latest - after_batch + 1).batches}
    progress = {
        int(p["batchId"]): p
        for p in hook.sibling(RunnerControlHook).get_progress(after_batch=after_batch)
        if "batchId" in p
    }
    runner_managed = bool(progress) or (hook.root / PROGRESS_DIR).exists()
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
        if batch_id == latest:
            sources = status.committed_sources
        else:
            path = hook._describe("offsets", str(batch_id))
            sources = parse_offsets_file(hook.read_metadata_text("offsets", str(batch_id)), path, batch_id).sources
        sink = (event or {}).get("sink") or {}
        batches.append(
            CommittedBatch(
                batch_id=batch_id,
                query_id=status.query_id,
                commit_time=record.commit_time,
                batch_timestamp_ms=record.batch_timestamp_ms,
                sources=[_source_summary(s) for s in sources],
                rows=(event or {}).get("numInputRows"),
                output_rows=sink.get("numOutputRows") if sink.get("numOutputRows", -1) >= 0 else None,
            )
        )
    return position, batches
