"""The stream runner's side files next to a checkpoint, read and written from Airflow.

The runner (:mod:`airflow_spark_streaming.runner.jobs.stream_runner`) holds a lease while its
query runs, watches for a stop marker, and writes a progress event per batch; the
submit operator records its submission and stages files a cluster-mode driver reads.
The file names and the lease's JSON are :mod:`airflow_spark_streaming.runner.protocol`'s,
shared with the runner.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_spark_streaming.checkpoint import mtime_of, parse_json
from airflow_spark_streaming.hooks.checkpoint_storage import CheckpointStorageHook
from airflow_spark_streaming.runner.protocol import (
    DEFAULT_LEASE_TTL_SECONDS,
    PROGRESS_DIR,
    STAGING_DIR,
    STOP_FILE,
    SUBMISSION_FILE,
    progress_batch,
    progress_file,
)


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
        """The live lease on this checkpoint (a running stream runner), or ``None`` if free, released or stale.

        Judged by :func:`airflow_spark_streaming.runner.lease.read_lease_state`, the rule
        the runner itself applies: clock skew and TTL are bounded, and a lease that
        cannot be read (being written, or torn) counts as held for a TTL from when
        it was written.
        """
        from airflow_spark_streaming.runner.lease import read_lease_state

        state = read_lease_state(_LeaseFiles(self), now=now, fallback_ttl_ms=int(DEFAULT_LEASE_TTL_SECONDS * 1000))
        if not state.held:
            return None
        record = state.record
        return CheckpointLease(
            app_id=record.app_id if record else None,
            host=record.host if record else None,
            pid=record.pid if record else None,
            heartbeat_age_seconds=(state.heartbeat_age_ms or 0.0) / 1000,
            ttl_seconds=(state.ttl_ms or 0) / 1000,
            submission_tag=record.submission if record else None,
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

    def query_running(self) -> bool | None:
        """Whether the provider's runner runs a query on this checkpoint now.

        ``True`` with a live lease; ``False`` when it was started here (a submission
        record stays) and holds no lease now; ``None`` for a checkpoint the provider
        never started a query on, whose liveness is unknown.
        """
        if self.get_lease() is not None:
            return True
        return False if self.get_submission() is not None else None

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
            if _is_local(self.root.fs):  # bytes are the spec, which may hold secrets: 0600 from its creation
                from airflow_spark_streaming.spark.submission.private_files import write_private

                self.remove_staged(name)
                write_private(path, data)
            else:
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
        self._forget_listings()
        batches = sorted(b for b in map(progress_batch, self._list(PROGRESS_DIR)) if b is not None)
        events = []
        for batch_id in (b for b in batches if b > after_batch):
            name = progress_file(batch_id)
            events.append(
                parse_json(self._text(PROGRESS_DIR, name), self._describe(PROGRESS_DIR, name), "the progress event")
            )
        return events


class _LeaseFiles:
    """The lease store's read side over a hook's storage, for ``read_lease_state``."""

    def __init__(self, hook: RunnerControlHook) -> None:
        self.hook = hook

    def list_names(self, folder: str) -> list[str]:
        return self.hook._list(folder)

    def read(self, name: str, limit: int) -> tuple[bytes, float | None] | None:
        for attempt in range(1, 4):
            try:
                info = self.hook.root.fs.info(self.hook._path(name))
                written = mtime_of(info)
                if info.get("type") != "file":
                    return b"", written * 1000 if written else None  # a FIFO or device: unreadable, never opened
                data = self.hook._read(name, limit=limit + 1)
            except FileNotFoundError:
                return None
            except OSError as err:
                # s3fs reads with If-Match on the ETag info() saw (or its listing cache held): the runner
                # renewed its lease in between. Forget the cached entry and look again.
                if type(err).__name__ == "FileExpired" and attempt < 3:
                    self.hook.root.fs.invalidate_cache(self.hook._path(name))
                    continue
                raise
            return data, written * 1000 if written else None
        raise AssertionError("unreachable")


def _is_local(fs) -> bool:
    protocol = fs.protocol
    return bool({"file", "local"} & set(protocol if isinstance(protocol, tuple | list) else (protocol,)))
