"""The stream runner's side files next to a checkpoint, read and written from Airflow.

The runner (:mod:`airflow_spark_streaming.jobs.stream_runner`) holds a lease while its
query runs, watches for a stop marker, and writes a progress event per batch; the
submit operator records its submission and stages files a cluster-mode driver reads.
The file names and the lease's JSON are :mod:`airflow_spark_streaming.protocol`'s,
shared with the runner.
"""

from __future__ import annotations

import json
import posixpath
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_spark_streaming.checkpoint import parse_json
from airflow_spark_streaming.hooks._storage import CheckpointStorageHook
from airflow_spark_streaming.protocol import (
    DEFAULT_LEASE_TTL_SECONDS,
    LEASE_FILE,
    PROGRESS_DIR,
    STAGING_DIR,
    STOP_FILE,
    SUBMISSION_FILE,
    LeaseRecord,
    progress_batch,
    progress_file,
)

_LEASE_READS, _LEASE_REREAD_SECONDS = 5, 0.05


@dataclass
class CheckpointLease:
    """The stream runner's heartbeat: which live driver owns the checkpoint."""

    app_id: str | None
    host: str | None
    pid: int | None
    heartbeat_age_seconds: float
    ttl_seconds: float
    submission_tag: str | None = None  # matches the SparkSubmission that started this driver


class RunnerControlHook(CheckpointStorageHook):
    """The stream runner's lease, stop marker and progress events, and the submit operator's records.

    :param checkpoint: the checkpoint location, a path or a URI.
    :param storage_conn_id: the Airflow connection for the storage; not needed for local paths.
        ``conn_id`` is its deprecated old name.
    """

    hook_name = "Stream runner control files"

    def get_lease(self, now: float | None = None) -> CheckpointLease | None:
        """The live lease on this checkpoint (a running stream runner), or ``None`` if free or stale.

        The runner rewrites the lease in place, so a read can land in the instant
        it is truncated; such a read is retried rather than taken for a free
        checkpoint. A lease that stays unreadable (torn by a dying driver) is
        judged by its age, against the default time-to-live.
        """
        record = None
        for attempt in range(_LEASE_READS):
            try:
                record = LeaseRecord.from_json(self._read(LEASE_FILE))
                break
            except FileNotFoundError:
                return None
            except (ValueError, TypeError):
                time.sleep(_LEASE_REREAD_SECONDS * (attempt + 1))
        now = time.time() if now is None else now
        if record is None:
            try:
                written = self._mtime(LEASE_FILE)
            except FileNotFoundError:
                return None
            age = max(0.0, now - (written or 0))
            return (
                CheckpointLease(None, None, None, age, DEFAULT_LEASE_TTL_SECONDS)
                if age < DEFAULT_LEASE_TTL_SECONDS
                else None
            )
        if not record.is_live(now * 1000):
            return None
        return CheckpointLease(
            app_id=record.app_id,
            host=record.host,
            pid=record.pid,
            heartbeat_age_seconds=record.age_ms(now * 1000) / 1000,
            ttl_seconds=(record.ttl_ms or 0) / 1000,
            submission_tag=record.submission,
        )

    def request_stop(self) -> None:
        """Ask the stream runner's query to stop gracefully after its current micro-batch."""
        self.root.fs.pipe_file(self._path(STOP_FILE), b"stop")

    def clear_stop_request(self) -> None:
        try:
            self.root.fs.rm_file(self._path(STOP_FILE))
        except FileNotFoundError:
            pass

    def put_submission(self, record: dict[str, Any]) -> None:
        """Record which driver the provider submitted on this checkpoint, so a stop can find and kill it."""
        self.root.fs.mkdirs(self.root.path, exist_ok=True)
        self.root.fs.pipe_file(self._path(SUBMISSION_FILE), json.dumps(record).encode())

    def get_submission(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._read(SUBMISSION_FILE))
        except (FileNotFoundError, ValueError):
            return None

    def stage_file(self, name: str, data: bytes | Path) -> str:
        """Write ``data`` (bytes, or a local file) to ``_staging/name``; return its location as Spark names it.

        A cluster-mode driver runs on another host; it can read what sits next to
        its checkpoint, because it must reach the checkpoint anyway. A local file
        already staged with the same size is not copied again.
        """
        path = self._path(STAGING_DIR, name)
        if isinstance(data, Path):
            try:
                unchanged = self.root.fs.size(path) == data.stat().st_size
            except (FileNotFoundError, OSError):
                unchanged = False
            if not unchanged:
                self.root.fs.mkdirs(posixpath.dirname(path), exist_ok=True)
                self.root.fs.put_file(str(data), path)
        else:
            self.root.fs.mkdirs(posixpath.dirname(path), exist_ok=True)
            self.root.fs.pipe_file(path, data)
        return posixpath.join(self.checkpoint.rstrip("/"), STAGING_DIR, name)

    def remove_staged(self, name: str) -> None:
        try:
            self.root.fs.rm_file(self._path(STAGING_DIR, name))
        except FileNotFoundError:
            pass

    def get_progress(self, *, after_batch: int = -1) -> list[dict[str, Any]]:
        """Progress events the stream runner wrote to ``_progress/`` for batches after ``after_batch``, oldest first.

        Each is Spark's ``StreamingQueryProgress`` JSON (``numInputRows``,
        ``durationMs``, ``sources``, ...). Empty for queries not run by the
        provider's runner (or a listener writing the same files).
        """
        batches = sorted(b for b in map(progress_batch, self._list(PROGRESS_DIR)) if b is not None)
        events = []
        for batch_id in (b for b in batches if b > after_batch):
            name = progress_file(batch_id)
            events.append(
                parse_json(self._text(PROGRESS_DIR, name), self._describe(PROGRESS_DIR, name), "the progress event")
            )
        return events
