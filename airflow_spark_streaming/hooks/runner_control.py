"""The stream runner's side files next to a checkpoint, read and written from Airflow.

The runner (:mod:`airflow_spark_streaming.runner.jobs.stream_runner`) holds a lease while its
query runs, watches for a stop marker, and writes a progress event per batch; the
submit operator records its submission and stages files a cluster-mode driver reads.
The file names and the lease's JSON are :mod:`airflow_spark_streaming.runner.protocol`'s,
shared with the runner.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.checkpoint import mtime_of, parse_json
from airflow_spark_streaming.exceptions import CheckpointError, UntrustedControlRecordError
from airflow_spark_streaming.hooks.checkpoint_storage import CheckpointStorageHook
from airflow_spark_streaming.runner import control_auth
from airflow_spark_streaming.runner.protocol import (
    DEFAULT_LEASE_TTL_SECONDS,
    LEGACY_LEASE_FILE,
    PROGRESS_DIR,
    PROGRESS_KEEP,
    STAGING_DIR,
    STOP_FILE,
    SUBMISSION_FILE,
    is_submission_tag,
    location_key,
    progress_batch,
    progress_file,
)

if TYPE_CHECKING:
    from airflow_spark_streaming.runner.control_auth import ControlKey

#: A ``_submission`` record is a few hundred bytes; a larger one is not the provider's.
MAX_RECORD_BYTES = 64 * 1024


@dataclass
class CheckpointLease:
    """The stream runner's heartbeat: which live driver owns the checkpoint."""

    app_id: str | None
    host: str | None
    pid: int | None
    heartbeat_age_seconds: float
    ttl_seconds: float
    submission_tag: str | None = None  # matches the SparkSubmission that started this driver
    #: The lease file as read (with its MAC, if the runner signed it): see ``RunnerControlHook.verified_lease``.
    record: dict[str, Any] | None = field(default=None, repr=False, compare=False)


class RunnerControlHook(CheckpointStorageHook):
    """The stream runner's lease, stop marker and progress events, and the submit operator's records.

    Records that lead to an action (``_submission``, the lease when a driver is killed by its pid)
    are signed with the control key and verified before anything is done with them
    (:mod:`airflow_spark_streaming.runner.control_auth`).

    :param checkpoint: the checkpoint location, a path or a URI.
    :param storage_conn_id: the Airflow connection for the storage; not needed for local paths.
        ``conn_id`` is its deprecated old name.
    :param control_conn_id: the connection holding the control key in its password (default
        ``spark_streaming_control_default``).
    """

    hook_name = "Stream runner control files"

    def __init__(
        self,
        checkpoint: str,
        storage_conn_id: str | None = None,
        *,
        conn_id: str | None = None,
        control_conn_id: str | None = None,
    ) -> None:
        super().__init__(checkpoint, storage_conn_id, conn_id=conn_id)
        self.control_conn_id = control_conn_id

    def control_key(self, *, required: bool = True, purpose: str = "") -> ControlKey | None:
        """The control key from ``control_conn_id`` (see :class:`~airflow_spark_streaming.hooks.control_key.ControlKeyHook`)."""
        from airflow_spark_streaming.hooks.control_key import get_control_key

        return get_control_key(self.control_conn_id, required=required, purpose=purpose)

    @property
    def location(self) -> str:
        """This checkpoint as signed records name it (``protocol.location_key``)."""
        return location_key(self.checkpoint)

    def get_lease(self, now: float | None = None) -> CheckpointLease | None:
        """The live lease on this checkpoint (a running stream runner), or ``None`` if free, released or stale.

        Judged by :func:`airflow_spark_streaming.runner.lease.read_lease_state`, the rule
        the runner itself applies: clock skew and TTL are bounded, and a lease that
        cannot be read (being written, or torn) counts as held for a TTL from when
        it was written.
        """
        from airflow_spark_streaming.runner.lease import generation_name, read_lease_state
        from airflow_spark_streaming.utils.bounded_json import UntrustedJsonError, load_object

        files = _LeaseFiles(self)
        state = read_lease_state(files, now=now, fallback_ttl_ms=int(DEFAULT_LEASE_TTL_SECONDS * 1000))
        if not state.held:
            return None
        record = state.record
        raw = None
        if record is not None:
            name = LEGACY_LEASE_FILE if state.generation == 0 else generation_name(state.generation)
            try:
                raw = load_object(files.seen.get(name) or b"")
            except UntrustedJsonError:
                raw = None
        return CheckpointLease(
            app_id=record.app_id if record else None,
            host=record.host if record else None,
            pid=record.pid if record else None,
            heartbeat_age_seconds=(state.heartbeat_age_ms or 0.0) / 1000,
            ttl_seconds=(state.ttl_ms or 0) / 1000,
            submission_tag=record.submission if record else None,
            record=raw,
        )

    def verified_lease(self, lease: CheckpointLease, key: ControlKey) -> dict[str, Any]:
        """The lease's body if the runner signed it (``control_auth.LEASE``, scoped to its submission tag) for
        this checkpoint; :class:`UntrustedControlRecordError` otherwise. Only then may its pid be acted on."""
        what = f"the lease on {self.checkpoint}"
        scope = lease.record.get("submission") if isinstance(lease.record, dict) else None
        try:
            body = key.verify(control_auth.LEASE, lease.record, scope=scope if isinstance(scope, str) else "",
                              what=what)  # fmt: skip
        except control_auth.ControlRecordError as err:
            raise UntrustedControlRecordError(
                f"{err}. Nothing was killed; if the application holding it is yours, kill it yourself."
            ) from None
        self._check_location(body, what)
        return body

    def _check_location(self, body: dict[str, Any], what: str) -> None:
        signed_for = body.get("checkpoint")
        if not isinstance(signed_for, str) or signed_for != self.location:
            raise UntrustedControlRecordError(
                f"{what} is signed for checkpoint {signed_for!r}, not this one: a copy from another stream, which "
                "is not acted on here. Nothing was done."
            )

    def request_stop(self) -> None:
        """Ask the stream runner's query to stop gracefully after its current micro-batch."""
        self.root.fs.pipe_file(self.storage_path(STOP_FILE), b"stop")

    def stop_requested(self) -> bool:
        """Whether a stop marker (``_stop``) waits for the query."""
        self.forget_listings()
        return STOP_FILE in self.list_names()

    def clear_stop_request(self) -> None:
        try:
            self.root.fs.rm_file(self.storage_path(STOP_FILE))
        except FileNotFoundError:
            pass

    def put_submission(self, record: dict[str, Any], key: ControlKey | None = None) -> None:
        """Record which driver the provider submitted on this checkpoint, so a stop can find and kill it.

        With ``key`` the record is signed (``control_auth.SUBMISSION``) for this checkpoint; a record
        without a valid MAC is never acted on (:meth:`get_signed_submission`).
        """
        body = {**record, "checkpoint": self.location}
        self.root.fs.mkdirs(self.root.path, exist_ok=True)
        signed = key.sign(control_auth.SUBMISSION, body) if key is not None else body
        self.root.fs.pipe_file(self.storage_path(SUBMISSION_FILE), json.dumps(signed).encode())

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
        """The ``_submission`` record as stored, *unverified*: to act on it, use :meth:`get_signed_submission`."""
        from airflow_spark_streaming.utils.bounded_json import UntrustedJsonError, load_object

        try:
            return load_object(self.read_bytes(SUBMISSION_FILE, limit=MAX_RECORD_BYTES + 1), max_bytes=MAX_RECORD_BYTES)
        except (FileNotFoundError, UntrustedJsonError, CheckpointError):
            return None

    def get_signed_submission(self, key: ControlKey) -> dict[str, Any] | None:
        """The ``_submission`` record's body if it carries a valid MAC for this checkpoint; ``None`` when there is
        none; :class:`UntrustedControlRecordError` (nothing acted on) for an unsigned, altered or copied record."""
        from airflow_spark_streaming.utils.bounded_json import UntrustedJsonError, load_object

        what = f"the submission record {self.describe(SUBMISSION_FILE)}"
        try:
            record = load_object(
                self.read_bytes(SUBMISSION_FILE, limit=MAX_RECORD_BYTES + 1), max_bytes=MAX_RECORD_BYTES
            )
        except FileNotFoundError:
            return None
        except (UntrustedJsonError, CheckpointError) as err:
            raise UntrustedControlRecordError(f"{what} is not a record the provider writes ({err})") from None
        try:
            body = key.verify(control_auth.SUBMISSION, record, what=what)
        except control_auth.ControlRecordError as err:
            raise UntrustedControlRecordError(
                f"{err}. Nothing was done with it (no kill, no log read, no clean-up). If the stream was started by "
                f"an earlier version of the provider, stop it with kill_on_timeout=False or remove {SUBMISSION_FILE}."
            ) from None
        self._check_location(body, what)
        if not is_submission_tag(body.get("tag")):
            raise UntrustedControlRecordError(f"{what} carries no submission tag the provider writes")
        return body

    def stage_file(self, name: str, data: bytes | Path) -> str:
        """Write ``data`` (bytes, or a local file) to ``_staging/name``; return its location as Spark names it.

        A cluster-mode driver runs on another host; it can read what sits next to
        its checkpoint, because it must reach the checkpoint anyway. A local file
        already staged with the same size is not copied again.
        """
        path = self.storage_path(STAGING_DIR, name)
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
            self.root.fs.rm_file(self.storage_path(STAGING_DIR, name))
        except FileNotFoundError:
            pass

    def put_progress(self, batch_id: int, event: bytes) -> None:
        """Write one progress event to ``_progress/`` as the runner's listener does; keep the newest ``PROGRESS_KEEP``."""
        self.root.fs.mkdirs(self.storage_path(PROGRESS_DIR), exist_ok=True)
        target = self.storage_path(PROGRESS_DIR, progress_file(batch_id))
        if _is_local(self.root.fs):  # a local file shows while it is written: write aside, then rename
            staged = self.storage_path(PROGRESS_DIR, f".{progress_file(batch_id)}.tmp")
            self.root.fs.pipe_file(staged, event)
            os.replace(staged, target)
        else:  # an object store publishes the whole object at once
            self.root.fs.pipe_file(target, event)
        if batch_id - PROGRESS_KEEP >= 0:
            try:
                self.root.fs.rm_file(self.storage_path(PROGRESS_DIR, progress_file(batch_id - PROGRESS_KEEP)))
            except FileNotFoundError:
                pass

    def has_uncommitted_batch(self) -> bool:
        """Whether the checkpoint's newest planned batch (``offsets/``) is not committed (``commits/``)."""
        from airflow_spark_streaming.exceptions import CheckpointNotFoundError
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        try:
            return self.sibling(CheckpointHook).get_status(include_state=False).has_uncommitted_batch
        except CheckpointNotFoundError:
            return False

    def lease_store(self):
        """The lease store a process on the Airflow side takes this checkpoint's lease with (Spark Connect runs).

        Local disk: :class:`~airflow_spark_streaming.runner.lease.LocalLeaseStore` (an atomic link). Object
        storage: a create with ``If-None-Match: *``, proven once to be refused for an existing key
        (:class:`~airflow_spark_streaming.exceptions.UnsafeLeaseStoreError` otherwise).
        """
        from airflow_spark_streaming.runner.lease import LocalLeaseStore

        if _is_local(self.root.fs):
            return LocalLeaseStore(self.storage_path())
        store = _ConditionalLeaseFiles(self)
        store.prove()
        return store

    def get_progress(self, *, after_batch: int = -1) -> list[dict[str, Any]]:
        """Progress events the stream runner wrote to ``_progress/`` for batches after ``after_batch``, oldest first.

        Each is Spark's ``StreamingQueryProgress`` JSON (``numInputRows``,
        ``durationMs``, ``sources``, ...). Empty for queries not run by the
        provider's runner (or a listener writing the same files).
        """
        self.forget_listings()
        batches = sorted(b for b in map(progress_batch, self.list_names(PROGRESS_DIR)) if b is not None)
        events = []
        # The runner keeps the newest PROGRESS_KEEP events; more files than that were not written by it.
        for batch_id in [b for b in batches if b > after_batch][-PROGRESS_KEEP:]:
            name = progress_file(batch_id)
            events.append(
                parse_json(
                    self.read_metadata_text(PROGRESS_DIR, name), self.describe(PROGRESS_DIR, name), "the progress event"
                )
            )
        return events


class _LeaseFiles:
    """The lease store's read side over a hook's storage, for ``read_lease_state``."""

    def __init__(self, hook: RunnerControlHook) -> None:
        self.hook = hook
        self.seen: dict[str, bytes] = {}  # what each read returned: the lease judged is the lease verified

    def list_names(self, folder: str) -> list[str]:
        return self.hook.list_names(folder)

    def read(self, name: str, limit: int) -> tuple[bytes, float | None] | None:
        for attempt in range(1, 4):
            try:
                info = self.hook.root.fs.info(self.hook.storage_path(name))
                written = mtime_of(info)
                if info.get("type") != "file":
                    return b"", written * 1000 if written else None  # a FIFO or device: unreadable, never opened
                data = self.hook.read_bytes(name, limit=limit + 1)
            except FileNotFoundError:
                return None
            except OSError as err:
                # s3fs reads with If-Match on the ETag info() saw (or its listing cache held): the runner
                # renewed its lease in between. Forget the cached entry and look again.
                if type(err).__name__ == "FileExpired" and attempt < 3:
                    self.hook.root.fs.invalidate_cache(self.hook.storage_path(name))
                    continue
                raise
            self.seen[name] = data
            return data, written * 1000 if written else None
        raise AssertionError("unreachable")


class _ConditionalLeaseFiles(_LeaseFiles):
    """The whole lease store over object storage: create-if-absent is the store's conditional put."""

    PROBE = "_lease_probe"

    def _open_exclusive(self, name: str, data: bytes) -> bool:
        try:
            with self.hook.root.fs.open(self.hook.storage_path(name), "xb") as target:
                target.write(data)
            return True
        except FileExistsError:
            return False

    def prove(self) -> None:
        from airflow_spark_streaming.exceptions import UnsafeLeaseStoreError

        probe = f"{self.PROBE}.{uuid.uuid4().hex}"
        try:
            self._open_exclusive(probe, b"1")
            refused = not self._open_exclusive(probe, b"2")
        except (OSError, ValueError, NotImplementedError) as err:
            refused, cause = False, f"{type(err).__name__}: {str(err)[:200]}"
        else:
            cause = "a second create of one key succeeded"
        finally:
            self.delete(probe)
        if not refused:
            raise UnsafeLeaseStoreError(
                f"the store of {self.hook.checkpoint} does not refuse a create of an existing key ({cause}), so two "
                "runners could both take the checkpoint's lease; use a store with conditional writes (S3 and most "
                "S3-compatible servers have them)."
            )

    def create_exclusive(self, name: str, data: bytes) -> bool:
        self.hook.root.fs.mkdirs(posixpath.dirname(self.hook.storage_path(name)), exist_ok=True)
        return self._open_exclusive(name, data)

    def overwrite(self, name: str, data: bytes) -> None:
        self.hook.root.fs.pipe_file(self.hook.storage_path(name), data)

    def delete(self, name: str) -> None:
        try:
            self.hook.root.fs.rm_file(self.hook.storage_path(name))
        except FileNotFoundError:
            pass


def _is_local(fs) -> bool:
    protocol = fs.protocol
    return bool({"file", "local"} & set(protocol if isinstance(protocol, tuple | list) else (protocol,)))
