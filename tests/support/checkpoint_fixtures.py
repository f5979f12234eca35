"""Real checkpoints written by real Spark 4.2 queries in the session's SparkSession."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


def write_json_files(folder: Path, files: int, rows_per_file: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(start, start + files):
        rows = [
            {"id": f * rows_per_file + i, "event_time": f"2026-01-01T00:{f:02d}:{i % 60:02d}"}
            for i in range(rows_per_file)
        ]
        (folder / f"part-{f:04d}.json").write_text("\n".join(json.dumps(r) for r in rows))


def run_file_to_delta(spark, base: Path):
    """``base/input`` → ``base/table`` (Delta), one file per micro-batch, until the input is consumed; the query."""
    query = (
        spark.readStream.schema("id LONG, event_time TIMESTAMP")
        .option("maxFilesPerTrigger", 1)
        .json(str(base / "input"))
        .writeStream.format("delta")
        .option("checkpointLocation", str(base / "checkpoint"))
        .trigger(availableNow=True)
        .start(str(base / "table"))
    )
    query.awaitTermination()
    return query


@pytest.fixture(scope="session")
def file_source_checkpoint(spark, tmp_path_factory):
    """A JSON file source → Delta query: 4 files at one file per trigger, so batches 0..3."""
    base = tmp_path_factory.mktemp("file-source")
    write_json_files(base / "input", files=4, rows_per_file=25)
    query = run_file_to_delta(spark, base)
    return {
        "checkpoint": base / "checkpoint",
        "query_id": str(query.id),
        "last_progress": json.loads(query.lastProgress.json),
    }


@pytest.fixture
def checkpoint_copy(file_source_checkpoint, tmp_path):
    """A private copy of the real file-source checkpoint to damage."""
    target = tmp_path / "checkpoint"
    shutil.copytree(file_source_checkpoint["checkpoint"], target)
    return target
