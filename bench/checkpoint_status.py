"""Checkpoint status cost against retained batches: it must stay flat.

Builds checkpoints with 100 to 10,000 retained batches in Spark's layout
(offsets/ and commits/ with Hadoop .crc side files, sources/, metadata), then
times ``CheckpointHook.get_status()`` and counts the storage calls it makes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from bench.common import bench_main

SIZES = (100, 1_000, 10_000)
SMOKE_SIZES = (10, 100)
OFFSETS = 'v1\n{{"batchWatermarkMs":0,"batchTimestampMs":{ts},"conf":{{"spark.sql.shuffle.partitions":"2"}}}}\n{{"orders":{{"0":{o},"1":{o},"2":{o},"3":{o}}}}}'


def build_checkpoint(root: Path, batches: int) -> Path:
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    (root / "sources" / "0").mkdir(parents=True)
    (root / "metadata").write_text('{"id":"5f0e2c8e-bench"}')
    (root / "sources" / "0" / "0").write_bytes(b'\x00v1\n{"orders":{"0":0,"1":0,"2":0,"3":0}}')
    started = 1_795_000_000_000
    for batch in range(batches):
        (root / "offsets" / str(batch)).write_text(OFFSETS.format(ts=started + batch * 1000, o=batch * 100))
        (root / "offsets" / f".{batch}.crc").write_bytes(b"crc")
        (root / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')
        (root / "commits" / f".{batch}.crc").write_bytes(b"crc")
    return root


class CountingFs:
    """Wraps an fsspec file system and counts the calls the hook makes."""

    def __init__(self, fs):
        self._fs = fs
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name):
        attribute = getattr(self._fs, name)
        if not callable(attribute):
            return attribute

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


def measure(checkpoint: Path, repeats: int) -> dict:
    timings = []
    calls: Counter[str] = Counter()
    for _ in range(repeats):
        hook = CheckpointHook(str(checkpoint))
        counting = CountingFs(hook.root.fs)
        # ObjectStoragePath.fs is a property; the hook only reaches storage through root.fs.
        hook._root = type("Root", (), {"fs": counting, "path": hook.root.path, "__str__": lambda s: str(checkpoint)})()
        started = time.perf_counter()
        status = hook.get_status()
        timings.append(time.perf_counter() - started)
        calls = counting.calls
    assert status.latest_committed_batch is not None
    return {"median_ms": statistics.median(timings) * 1000, "storage_calls": sum(calls.values()),
            "calls": dict(sorted(calls.items()))}  # fmt: skip


def run(smoke: bool = False) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as work:
        for batches in SMOKE_SIZES if smoke else SIZES:
            checkpoint = build_checkpoint(Path(work) / f"ckpt-{batches}", batches)
            result = measure(checkpoint, repeats=3 if smoke else 15)
            rows.append({"retained_batches": batches, "median_ms": round(result["median_ms"], 3),
                         "storage_calls": result["storage_calls"], "calls": result["calls"]})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, doc=__doc__, name="checkpoint_status", title="CheckpointHook.get_status() vs retained batches",
                      run=lambda args: run(args.smoke), hidden_columns=("calls",),
                      notes="local file system; storage_calls counts fsspec calls per get_status()")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
