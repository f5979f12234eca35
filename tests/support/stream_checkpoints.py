"""Checkpoints of Kafka queries written in Spark's and the stream runner's formats, with known numbers.

What Spark writes (``metadata``, ``offsets/<n>``, ``commits/<n>``) and what the provider's runner writes
(``_progress/<n>.json``, Spark's ``StreamingQueryProgress`` JSON), without running Spark: for the Streams
page's tests and ``bench/streams_page.py``. Batch ``b`` reads ``rows(b)`` records, split over the partitions;
when it was planned, partition ``p`` had ``lag(b, p)`` more records than the batch ended at.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

#: Seconds between two batches' commits.
INTERVAL = 10.0


def rows(batch: int) -> int:
    return 10 + batch


def lag(batch: int, partition: int) -> int:
    return (batch + partition) % 3


def end_offsets(batch: int, partitions: int) -> list[int]:
    """Where batch ``batch`` ended in each partition (the rows of batches 0..batch, dealt round-robin)."""
    total = sum(rows(b) for b in range(batch + 1))
    return [total // partitions + (1 if p < total % partitions else 0) for p in range(partitions)]


def progress_event(query_id: str, batch: int, *, topic: str, partitions: int, start: float,
                   stateful: bool) -> dict:  # fmt: skip
    end = end_offsets(batch, partitions)
    begin = end_offsets(batch - 1, partitions) if batch else [0] * partitions
    latest = [e + lag(batch, p) for p, e in enumerate(end)]
    as_offsets = lambda values: {topic: {str(p): v for p, v in enumerate(values)}}  # noqa: E731
    event = {
        "id": query_id,
        "runId": str(uuid.uuid5(uuid.NAMESPACE_URL, query_id)),
        "name": f"query_{topic}",
        "timestamp": datetime.fromtimestamp(start + batch * INTERVAL, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "batchId": batch,
        "batchDuration": 400 + batch,
        "numInputRows": rows(batch),
        "inputRowsPerSecond": rows(batch) / INTERVAL,
        "processedRowsPerSecond": rows(batch) / 0.5,
        "durationMs": {
            "addBatch": 300 + batch,
            "getBatch": 2,
            "latestOffset": 5,
            "queryPlanning": 20,
            "walCommit": 30,
            "commitOffsets": 25,
            "triggerExecution": 400 + batch,
        },  # fmt: skip
        "stateOperators": [
            {"operatorName": "stateStoreSave", "numRowsTotal": 100 + batch, "memoryUsedBytes": 4096 + 64 * batch}
        ]
        if stateful
        else [],  # fmt: skip
        "sources": [
            {
                "description": f"KafkaV2[Subscribe[{topic}]]",
                "startOffset": as_offsets(begin),
                "endOffset": as_offsets(end),
                "latestOffset": as_offsets(latest),
                "numInputRows": rows(batch),
            }
        ],  # fmt: skip
        "sink": {"description": "DeltaSink", "numOutputRows": rows(batch)},
    }
    return event


def write_kafka_checkpoint(root: Path, *, batches: int, topic: str = "orders", partitions: int = 2,
                           start: float | None = None, stateful: bool = False, progress: bool = True,
                           query_id: str | None = None) -> str:  # fmt: skip
    """Write a checkpoint with ``batches`` committed batches (0..batches-1); its query id (by default one derived
    from ``root``, as Spark keeps one per checkpoint)."""
    import time

    root = Path(root)
    start = time.time() - batches * INTERVAL if start is None else start
    query_id = query_id or str(uuid.uuid5(uuid.NAMESPACE_URL, str(root)))
    for folder in ("offsets", "commits", "_progress"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "metadata").write_text(json.dumps({"id": query_id}))
    for batch in range(batches):
        planned_ms = int((start + batch * INTERVAL) * 1000)
        header = {"batchWatermarkMs": 0, "batchTimestampMs": planned_ms, "conf": {}}
        offsets = {topic: {str(p): v for p, v in enumerate(end_offsets(batch, partitions))}}
        (root / "offsets" / str(batch)).write_text(f"v1\n{json.dumps(header)}\n{json.dumps(offsets)}")
        commit = root / "commits" / str(batch)
        commit.write_text('v1\n{"nextBatchWatermarkMs":0}')
        os.utime(commit, (start + batch * INTERVAL + 0.5, start + batch * INTERVAL + 0.5))
        if progress:
            event = progress_event(query_id, batch, topic=topic, partitions=partitions, start=start, stateful=stateful)
            (root / "_progress" / f"{batch}.json").write_text(json.dumps(event))
    return query_id
