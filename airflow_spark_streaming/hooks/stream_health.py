"""The stream-health status of a Kafka query: its checkpoint's last batches, its lease, the brokers' offsets.

:class:`StreamHealthHook` gathers what a status needs and judges it with
:func:`~airflow_spark_streaming.conditions.stream_health.evaluate_stream_health`;
:func:`read_batch_window` gives the last batches of a Kafka query: end offsets,
commit times and the brokers' latest offsets when each was planned.

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

from airflow_spark_streaming.checkpoint import parse_offsets_file
from airflow_spark_streaming.conditions.stream_health import (
    DEFAULT_WINDOW,
    BatchOffsets,
    HealthInputs,
    HealthMark,
    StreamHealth,
    evaluate_stream_health,
)
from airflow_spark_streaming.exceptions import CorruptCheckpointFileError
from airflow_spark_streaming.hooks._kafka_client import KafkaClientHook
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.kafka_broker import FOUND, RESET_TO_EARLIEST, KafkaBrokerHook, partition_name
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook


def kafka_offsets(value: Any) -> dict[str, int]:
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
    try:
        events = hook.sibling(RunnerControlHook).get_progress(after_batch=first - 1)
    except CorruptCheckpointFileError:  # the runner is writing the newest event: judge without lag samples this time
        events = []
    for event in events:
        merged: dict[str, int] = {}
        for source in event.get("sources") or []:
            merged.update(kafka_offsets(source.get("latestOffset")))
        if merged and isinstance(event.get("batchId"), int):
            latest_by_batch[event["batchId"]] = merged
    batches = []
    for record in history.batches:
        name = str(record.batch_id)
        try:
            entry = parse_offsets_file(hook.read_metadata_text("offsets", name), hook.describe("offsets", name),
                                       record.batch_id)  # fmt: skip
        except (
            CorruptCheckpointFileError,
            FileNotFoundError,
        ):  # the newest file may be mid-write; get_history already judged it
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


class StreamHealthHook(KafkaClientHook):
    """Judge a Kafka query's threshold-free status (``OK``, ``LAGGING``, ``STALLED``, ``STOPPED``, ``REWOUND``).

    Reads the checkpoint's last batches and the runner's lease through
    :class:`CheckpointHook`, and the brokers through
    :class:`~airflow_spark_streaming.hooks.kafka_broker.KafkaBrokerHook`
    (sharing this hook's admin client).

    :param kafka_config_id: the ``kafka`` connection of the brokers the query reads (default ``kafka_default``).
    :param timeout: seconds each broker request may take.
    """

    hook_name = "Stream health of a Structured Streaming query"

    def get_health(
        self,
        checkpoint: str,
        *,
        storage_conn_id: str | None = None,
        window: int = DEFAULT_WINDOW,
        previous: HealthMark | None = None,
        now: float | None = None,
    ) -> StreamHealth:
        """Read the checkpoint, the lease and the brokers, and judge the query's health.

        Broker cost: one list-offsets request for the latest offsets, and one fetch
        for the first unprocessed record of the lagging partitions (it times a
        stall from when the data arrived).

        :param checkpoint: the query's checkpoint location (path or URI).
        :param storage_conn_id: the checkpoint's storage connection; none for local paths.
        :param window: how many of the newest batches to judge on.
        :param previous: the previous result's ``mark``, to detect a checkpoint replaced by an older copy.
        :param now: the time to judge at (epoch seconds); the current time by default.
        """
        import time

        hook = CheckpointHook(checkpoint, storage_conn_id=storage_conn_id)
        query_id, batches = read_batch_window(hook, window)
        running = hook.sibling(RunnerControlHook).query_running()
        if running is None and any(b.latest_offsets for b in batches):
            running = False  # only the provider's runner writes progress events: it ran here, and holds no lease
        broker = self.sibling(KafkaBrokerHook)
        committed = [b for b in batches if b.committed]
        positions = dict(committed[-1].end_offsets) if committed else {}
        keys = {tuple(name.rsplit(":", 1)) for name in positions}
        latest = broker.get_latest_offsets({(topic, int(partition)) for topic, partition in keys})
        lagging = {k: positions[partition_name(*k)] for k, end in latest.items()
                   if partition_name(*k) in positions and end > positions[partition_name(*k)]}  # fmt: skip
        arrived = {}
        if lagging:
            for record in broker.get_record_timestamps(lagging, latest=latest).records:
                if record.outcome in (FOUND, RESET_TO_EARLIEST) and record.timestamp_ms is not None:
                    arrived[record.name] = record.timestamp_ms
        return evaluate_stream_health(
            HealthInputs(
                query_id=query_id,
                batches=batches,
                latest_offsets={partition_name(*k): v for k, v in latest.items()},
                lease_alive=running,
                now=time.time() if now is None else now,
                window=window,
                oldest_unprocessed_ms=arrived,
                previous=previous,
            )
        )


def get_stream_health(
    checkpoint: str,
    *,
    kafka_config_id: str = "kafka_default",
    storage_conn_id: str | None = None,
    window: int = DEFAULT_WINDOW,
    previous: HealthMark | None = None,
    timeout: float = 15.0,
    now: float | None = None,
) -> StreamHealth:
    """The query's :class:`StreamHealth` (see :meth:`StreamHealthHook.get_health`).

    Pass the previous result's ``mark`` as ``previous`` to detect a checkpoint
    replaced by an older copy.
    """
    return StreamHealthHook(kafka_config_id, timeout=timeout).get_health(
        checkpoint, storage_conn_id=storage_conn_id, window=window, previous=previous, now=now
    )
