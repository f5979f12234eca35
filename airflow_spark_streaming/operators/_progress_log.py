"""One task-log line per committed batch, read from the stream runner's progress events (not from Spark's log).

A bounded (``availableNow``) run fixes its end offsets when it starts: the
Kafka source reports them as ``latestOffset`` in every progress event of the
run. With them each line gives the share of that target done and an ETA::

    batch 3: 400 rows, 2,310 rows/s; 1,200 of 2,000 records (60%), ETA 1s

Sources that report no ``latestOffset`` get the batch, rows and rows/s only.
:class:`BatchProgressLog` polls ``RunnerControlHook.get_progress``;
``running()`` does so in a daemon thread while a blocking call (a
spark-submit in this process) works.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook


def _offsets(value: Any) -> dict[tuple[str, str], int] | None:
    """A Kafka source offset (``{"topic": {"0": 12}}`` or its JSON text) flattened; ``None`` for other sources."""
    if isinstance(value, str):
        from airflow_spark_streaming.utils.bounded_json import UntrustedJsonError, loads

        try:
            value = loads(value)
        except UntrustedJsonError:
            return None
    if not isinstance(value, dict) or not value:
        return None
    flat = {}
    for topic, parts in value.items():
        if not isinstance(parts, dict):
            return None
        for partition, offset in parts.items():
            if not isinstance(offset, int):
                return None
            flat[(topic, str(partition))] = offset
    return flat


def remaining_records(event: dict[str, Any]) -> int | None:
    """Records between the batch's end offsets and the sources' latest (the run's target); ``None`` if unknown."""
    sources = event.get("sources")
    if not isinstance(sources, list) or not all(isinstance(source, dict) for source in sources):
        return None  # progress files are lake input: a wrong shape is unknown, never a crash
    remaining = 0
    for source in sources:
        end, latest = _offsets(source.get("endOffset")), _offsets(source.get("latestOffset"))
        if end is None or latest is None:
            return None
        remaining += sum(max(0, offset - end.get(key, 0)) for key, offset in latest.items())
    return remaining if event.get("sources") else None


def rows_per_second(event: dict[str, Any]) -> float | None:
    rate = event.get("processedRowsPerSecond")
    if isinstance(rate, int | float) and rate == rate:  # NaN for a batch that took no time
        return float(rate)
    durations = event.get("durationMs")
    duration = durations.get("triggerExecution") if isinstance(durations, dict) else None
    rows = event.get("numInputRows")
    if isinstance(duration, int | float) and duration > 0 and isinstance(rows, int):
        return rows * 1000.0 / duration
    return None


class BatchProgressLog:
    """Logs each batch committed after ``after_batch`` once, in order, with the share of the target and an ETA.

    :param control: the runner's side files of the checkpoint.
    :param log: where the lines go (the task's logger).
    :param after_batch: the last batch committed before this run.
    """

    def __init__(self, control: RunnerControlHook, log: logging.Logger, after_batch: int) -> None:
        self.control = control
        self.log = log
        self.last_logged = after_batch
        self.rows_done = 0
        self.started = time.monotonic()
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def poll(self) -> int:
        """Log the batches committed since the last poll; returns how many. Never raises: logging is best effort."""
        with self._lock:
            try:
                events = self.control.get_progress(after_batch=self.last_logged)
            except Exception as err:  # noqa: BLE001 - an event being written, a storage hiccup: next poll
                self.log.debug("progress events not readable yet: %s", err)
                return 0
            logged = 0
            valid = (e for e in events if isinstance(e, dict) and type(e.get("batchId")) is int)
            for event in sorted(valid, key=lambda e: e["batchId"]):
                if event["batchId"] <= self.last_logged:
                    continue
                self._log_batch(event)
                self.last_logged = event["batchId"]
                logged += 1
            return logged

    def _log_batch(self, event: dict[str, Any]) -> None:
        rows = event.get("numInputRows") if type(event.get("numInputRows")) is int else 0
        self.rows_done += rows
        rate = rows_per_second(event)
        line = f"batch {event['batchId']}: {rows:,} rows" + (f", {rate:,.0f} rows/s" if rate is not None else "")
        remaining = remaining_records(event)
        if remaining is not None:
            target = self.rows_done + remaining
            share = self.rows_done / target if target else 1.0
            elapsed = time.monotonic() - self.started
            speed = self.rows_done / elapsed if elapsed > 0 else 0.0
            eta = "done" if remaining == 0 else (f"ETA {remaining / speed:,.0f}s" if speed > 0 else "ETA unknown")
            line += f"; {self.rows_done:,} of {target:,} records ({share:.0%}), {eta}"
        self.lines.append(line)
        self.log.info("%s", line)

    @contextmanager
    def running(self, interval: float) -> Iterator[BatchProgressLog]:
        """Poll in a daemon thread every ``interval`` seconds while the block runs, then once more."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                self.poll()

        thread = threading.Thread(target=loop, name="batch-progress-log", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=interval + 30)
            self.poll()
