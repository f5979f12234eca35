"""Waiting cost: 100 deferred progress sensors waiting at once in one triggerer event loop.

Deferred sensors hold no worker slot while they wait; what they cost is the
triggerer's CPU. This runs 100 ``CheckpointProgressTrigger`` instances (the
sensors' deferred half) in one asyncio loop, each polling its own real-layout
checkpoint every ``poll_interval`` seconds for a target batch that arrives at
the end, and measures the process CPU time spent, the checks made, and that
each trigger fired exactly one event.
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
import time
from pathlib import Path

from bench.checkpoint_status import build_checkpoint
from bench.common import bench_main

SENSORS, SMOKE_SENSORS = 100, 10
WAIT_SECONDS, SMOKE_WAIT_SECONDS = 30.0, 3.0
POLL_INTERVAL = 1.0
RETAINED_BATCHES = 100


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _wait_all(checkpoints: list[Path], wait_seconds: float) -> tuple[list, float, float]:
    from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger

    target = RETAINED_BATCHES  # one past the newest committed batch
    triggers = [
        CheckpointProgressTrigger(str(c), {"target_batch_id": target}, poll_interval=POLL_INTERVAL) for c in checkpoints
    ]

    async def first_event(trigger):
        return [event async for event in trigger.run()]

    async def commit_later():
        await asyncio.sleep(wait_seconds)
        for checkpoint in checkpoints:  # the streams make progress: batch `target` commits
            (checkpoint / "offsets" / str(target)).write_text((checkpoint / "offsets" / str(target - 1)).read_text())
            (checkpoint / "commits" / str(target)).write_text('v1\n{"nextBatchWatermarkMs":0}')

    cpu_before, started = _cpu_seconds(), time.monotonic()
    results = await asyncio.gather(*(first_event(t) for t in triggers), commit_later())
    return results[:-1], _cpu_seconds() - cpu_before, time.monotonic() - started


def run(smoke: bool = False) -> list[dict]:
    sensors = SMOKE_SENSORS if smoke else SENSORS
    wait_seconds = SMOKE_WAIT_SECONDS if smoke else WAIT_SECONDS
    with tempfile.TemporaryDirectory(prefix="bench-waiting-") as work:
        checkpoints = [build_checkpoint(Path(work) / f"ckpt-{i}", RETAINED_BATCHES) for i in range(sensors)]
        events, cpu, wall = asyncio.run(_wait_all(checkpoints, wait_seconds))
    assert all(len(e) == 1 and e[0].payload["state"] == "met" for e in events)
    checks = sensors * (int(wall / POLL_INTERVAL) + 1)
    return [{
        "deferred_sensors": sensors, "wait_s": round(wall, 1),
        "triggerer_cpu_s": round(cpu, 2), "triggerer_cpu_pct": round(100 * cpu / wall, 1),
        "checks_approx": checks, "cpu_ms_per_check": round(1000 * cpu / checks, 2), "cpus": os.cpu_count(),
    }]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, doc=__doc__, name="waiting_cost", title="100 deferred progress sensors in one triggerer loop",
                      run=lambda args: run(args.smoke),
                      notes=f"poll_interval {POLL_INTERVAL}s, local checkpoints of {RETAINED_BATCHES} batches")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
