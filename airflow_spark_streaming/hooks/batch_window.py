"""The last batches of a Kafka query as stream-health inputs: end offsets, commit times, latest offsets when planned.

Reads through :class:`CheckpointHook`'s public API: ``get_history`` (batch ids
and commit times, from ``commits/`` file modification times), ``get_progress``
(the provider runner's progress events, which carry the Kafka source's
``latestOffset`` per batch) and ``get_lease``; each batch's ``offsets/<id>``
file is parsed with ``parse_offsets_file``. Cost: the history's reads plus
one file per batch in the window.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_spark_streaming.conditions.stream_health import DEFAULT_WINDOW, BatchOffsets
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook, parse_offsets_file
from airflow_spark_streaming.hooks.kafka_broker import partition_name


def _kafka_offsets(value: Any) -> dict[str, int]:
    """``{"topic": {"0": 12}}`` (or its JSON text) as ``{"topic:0": 12}``; empty for other sources."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    if not isinstance(value, dict):
        return {}
    found = {}
    for topic, parts in value.items():
        if not isinstance(parts, dict):
            return {}
        for partition, offset in parts.items():
            if isinstance(offset, int) and str(partition).lstrip("-").isdigit():
                found[partition_name(topic, int(partition))] = offset
    return found


def read_batch_window(hook: CheckpointHook, last: int = DEFAULT_WINDOW) -> tuple[str, list[BatchOffsets]]:
    """The query id and the newest ``last`` batches, oldest first, with their Kafka offsets."""
    status = hook.get_status(include_state=False)
    history = hook.get_history(last=last)
    first = history.batches[0].batch_id if history.batches else 0
    latest_by_batch: dict[int, dict[str, int]] = {}
    for event in hook.get_progress(after_batch=first - 1):
        merged: dict[str, int] = {}
        for source in event.get("sources") or []:
            merged.update(_kafka_offsets(source.get("latestOffset")))
        if merged and isinstance(event.get("batchId"), int):
            latest_by_batch[event["batchId"]] = merged
    batches = []
    for record in history.batches:
        path = hook.root / "offsets" / str(record.batch_id)
        try:
            entry = parse_offsets_file(path.read_text(), str(path), record.batch_id)
        except Exception:  # noqa: BLE001 - the newest file may be mid-write; get_history already judged it
            if record.committed:
                raise
            continue
        offsets: dict[str, int] = {}
        for source in entry.sources:
            offsets.update({partition_name(t, p): o for (t, p), o in source.kafka_partitions().items()})
        batches.append(
            BatchOffsets(
                batch_id=record.batch_id,
                committed=record.committed,
                commit_time=record.commit_time,
                end_offsets=offsets,
                latest_offsets=latest_by_batch.get(record.batch_id),
                planned_time_ms=record.batch_timestamp_ms,
            )
        )
    return status.query_id, batches
