"""Delta maintenance beside a live stream on S3: decide whether it may run here, or hand it to the stream runner.

On S3, delta-spark commits atomically only within one driver JVM (see the
"Running on S3" docs). An OPTIMIZE or a committing VACUUM from another process
next to a live stream can overwrite a stream commit. So, for an ``s3://``,
``s3a://`` or ``s3n://`` table:

* ``stream_checkpoint`` given and its lease is live, and the runner holding it
  advertises the hand-off for this table: the request goes to that runner
  (:class:`MaintenanceRequestHook`), which runs it in the stream's driver;
* its lease is live but the hand-off is impossible (a user application, an
  older runner, another table, or ``engine="native"``): refused;
* no ``stream_checkpoint``: refused, unless the task states that nothing else
  writes the table (``no_concurrent_writers=True``); even then a streaming
  commit within :data:`RECENT_STREAM_WINDOW_SECONDS` refuses it (name the checkpoint);
* otherwise (no live lease on the named checkpoint, or no other writer stated
  and none seen): run here.

Every refusal happens before any file is written.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from airflow_spark_streaming.delta.concurrency import unknown_writer_refusal
from airflow_spark_streaming.exceptions import (
    CheckpointError,
    ControlKeyMissingError,
    MaintenanceHandoffError,
    MaintenanceHandoffTimeoutError,
    UnprotectedConcurrentWriteError,
    UntrustedControlRecordError,
)
from airflow_spark_streaming.hooks.runner_control import MAX_RECORD_BYTES, RunnerControlHook
from airflow_spark_streaming.runner import control_auth
from airflow_spark_streaming.runner.protocol import (
    MAINTENANCE_DIR,
    MAINTENANCE_HANDOFF_FILE,
    MAINTENANCE_PROTOCOL,
    maintenance_request_file,
    maintenance_result_file,
    same_table,  # noqa: F401 - re-exported
)

S3_SCHEMES = ("s3://", "s3a://", "s3n://")
#: A streaming commit this recent, with no ``stream_checkpoint`` named, counts as a live writer.
RECENT_STREAM_WINDOW_SECONDS = 3600
#: How many of the newest commits are searched for a streaming writer.
RECENT_COMMITS = 50
STREAMING_OPERATIONS = ("STREAMING UPDATE",)


def is_s3_table(table_uri: str) -> bool:
    return table_uri.startswith(S3_SCHEMES)


@dataclass(frozen=True)
class HandoffTarget:
    """The live stream runner a request goes to."""

    checkpoint: str
    app_id: str | None  # from the runner's signed hand-off record: requests are signed for it


class MaintenanceRequestHook(RunnerControlHook):
    """Requests and results in ``<checkpoint>/_maintenance/``; the runner side is ``jobs/maintenance_handoff.py``.

    Every file there is signed with the control key (``control_conn_id``): the hand-off record and
    results by the runner, requests by this hook. An unsigned or altered file is refused with
    :class:`UntrustedControlRecordError`, and nothing is done with it.
    """

    hook_name = "Stream runner maintenance hand-off"

    def _key(self):
        return self.control_key(required=True, purpose=f"The maintenance hand-off to the stream on {self.checkpoint}")

    def _signed_file(self, name: str, kind: str, *, scope: str = "", what: str) -> dict[str, Any] | None:
        """The body of a signed ``_maintenance/`` file, ``None`` when it is absent; refused when not signed."""
        from airflow_spark_streaming.utils.bounded_json import UntrustedJsonError, load_object

        try:
            data = self.read_bytes(MAINTENANCE_DIR, name, limit=MAX_RECORD_BYTES + 1)
            record = load_object(data, max_bytes=MAX_RECORD_BYTES)
        except FileNotFoundError:
            return None
        except (UntrustedJsonError, CheckpointError) as err:
            raise UntrustedControlRecordError(f"{what} is not a record the stream runner writes ({err})") from None
        try:
            return self._key().verify(kind, record, scope=scope, what=what)
        except control_auth.ControlRecordError as err:
            raise UntrustedControlRecordError(f"{err}. Nothing was done with it.") from None

    def get_handoff(self) -> dict[str, Any] | None:
        """What the live runner advertises (``protocol``, ``app_id``, ``table``, ``checkpoint``), signed by it;
        ``None`` when no runner takes requests. :class:`UntrustedControlRecordError` for an unsigned or copied one."""
        what = f"the maintenance hand-off record {self.describe(MAINTENANCE_DIR, MAINTENANCE_HANDOFF_FILE)}"
        body = self._signed_file(MAINTENANCE_HANDOFF_FILE, control_auth.HANDOFF, what=what)
        if body is not None:
            self._check_location(body, what)
        return body

    def submit(self, request: dict[str, Any], *, app_id: str | None = None, expires_in: float = 3600.0) -> str:
        """Create ``_maintenance/<id>.json`` exclusively (a fresh random id; never overwrites) and return the id.

        The request is signed for the runner ``app_id`` (by default the one the hand-off record names)
        and expires ``expires_in`` seconds from now; the runner refuses it after that, or once answered.
        """
        key = self._key()
        if app_id is None:
            handoff = self.get_handoff()
            if handoff is None or not isinstance(handoff.get("app_id"), str):
                raise MaintenanceHandoffError(f"No stream runner on {self.checkpoint} takes maintenance requests now.")
            app_id = handoff["app_id"]
        request_id = uuid.uuid4().hex
        body = {**request, "request_id": request_id, "expires_at_ms": int((time.time() + expires_in) * 1000)}
        path = self._path(MAINTENANCE_DIR, maintenance_request_file(request_id))
        self.root.fs.mkdirs(self._path(MAINTENANCE_DIR), exist_ok=True)
        with self.root.fs.open(path, "xb") as handle:  # s3fs: If-None-Match: *; local: O_EXCL
            handle.write(json.dumps(key.sign(control_auth.MAINTENANCE_REQUEST, body, scope=app_id)).encode())
        return request_id

    def get_result(self, request_id: str) -> dict[str, Any] | None:
        """The runner's signed answer to ``request_id``; ``None`` until it is written."""
        what = f"the result of maintenance request {request_id}"
        body = self._signed_file(maintenance_result_file(request_id), control_auth.MAINTENANCE_RESULT,
                                 scope=request_id, what=what)  # fmt: skip
        if body is not None and body.get("request_id") != request_id:
            raise UntrustedControlRecordError(f"{what} answers another request; nothing was done with it")
        return body

    def withdraw(self, request_id: str) -> None:
        """Remove a request that was not answered (a runner that already started it still finishes it)."""
        try:
            self.root.fs.rm_file(self._path(MAINTENANCE_DIR, maintenance_request_file(request_id)))
        except FileNotFoundError:
            pass

    def _poll(self, request_id: str) -> dict[str, Any] | bool | None:
        """The result; ``None`` while the runner is live; ``False`` once its lease ended unanswered."""
        result = self.get_result(request_id)
        if result is not None or self.get_lease() is not None:
            return result
        result = self.get_result(request_id)  # answered just before it stopped
        if result is None:
            self.withdraw(request_id)
            return False
        return result

    def _named(self, err: Exception) -> Exception:
        """A storage failure while waiting, as the named storage error when it is one (S3 connections)."""
        if not self.storage_conn_id:
            return err
        from airflow_spark_streaming.hooks.storage import StorageHook

        named = StorageHook(self.storage_conn_id).translate(err, self.checkpoint)
        if named is err:
            return err
        return type(named)(f"{named} The maintenance request's outcome is unknown; the table's Delta log shows it.")

    def wait_for_result(self, request_id: str, *, timeout: float, poll: float = 1.0) -> dict[str, Any]:
        """The runner's result; :class:`MaintenanceHandoffError` if it fails or its lease ends first,
        :class:`MaintenanceHandoffTimeoutError` after ``timeout`` seconds (the request is then withdrawn)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = self._poll(request_id)
            except UntrustedControlRecordError:
                self.withdraw(request_id)
                raise
            except (MaintenanceHandoffError, ControlKeyMissingError):
                raise
            except Exception as err:
                raise self._named(err) from err
            if result is False:
                raise MaintenanceHandoffError(
                    f"The stream on {self.checkpoint} stopped before it answered maintenance request {request_id}; "
                    "it was withdrawn (if the runner had started it, the table's history shows whether it committed). "
                    "Retry: with no live stream the maintenance runs directly."
                )
            if result is not None:
                if result.get("status") == "refused":
                    raise MaintenanceHandoffError(
                        f"The stream runner on {self.checkpoint} refused maintenance request {request_id}: "
                        f"{result.get('error')}. Nothing was changed."
                    )
                if result.get("status") != "succeeded":
                    raise MaintenanceHandoffError(
                        f"The stream runner on {self.checkpoint} ran maintenance request {request_id} and it "
                        f"failed: {result.get('error')}. The table is as the failed commit left it (Delta commits "
                        "are all or nothing); see the driver log."
                    )
                return result
            if time.monotonic() >= deadline:
                self.withdraw(request_id)
                raise MaintenanceHandoffTimeoutError(
                    f"The stream runner on {self.checkpoint} did not answer maintenance request {request_id} "
                    f"within {timeout:g}s; the request was withdrawn. Raise handoff_timeout, or check that the "
                    "stream is committing batches."
                )
            time.sleep(poll)


def _recent_stream_commit(table_hook, now_ms: float) -> dict[str, Any] | None:
    table = table_hook.get_table()
    for commit in table.history(RECENT_COMMITS):
        if commit.get("operation") in STREAMING_OPERATIONS:
            stamp = commit.get("timestamp") or 0
            if now_ms - float(stamp) < RECENT_STREAM_WINDOW_SECONDS * 1000:
                return commit
    return None


def plan_maintenance(
    *,
    table_uri: str,
    action: str,
    engine: str,
    stream_checkpoint: str | None,
    storage_conn_id: str | None,
    table_hook,
    task_id: str,
    control_conn_id: str | None = None,
    no_concurrent_writers: bool = False,
) -> HandoffTarget | None:
    """``None``: run here as before. A :class:`HandoffTarget`: hand the request to that runner.
    Raises :class:`UnprotectedConcurrentWriteError` (before anything is written) when neither is safe, and
    :class:`ControlKeyMissingError` or :class:`UntrustedControlRecordError` when the hand-off cannot be trusted."""
    if not is_s3_table(table_uri):
        return None  # HDFS, local disk, ABFS, GCS: the store's own create-if-absent makes commits atomic
    what = "OPTIMIZE" if action == "optimize" else "VACUUM"
    if stream_checkpoint and no_concurrent_writers:
        raise UnprotectedConcurrentWriteError(
            f"{task_id}: stream_checkpoint names the stream that writes {table_uri}, and no_concurrent_writers=True "
            "says nothing else writes it; give one of them. Nothing was written."
        )
    if not stream_checkpoint:
        if not no_concurrent_writers:
            raise UnprotectedConcurrentWriteError(unknown_writer_refusal(task_id, table_uri, what))
        commit = _recent_stream_commit(table_hook, time.time() * 1000)  # a tripwire against a mistaken statement
        if commit is None:
            return None
        raise UnprotectedConcurrentWriteError(
            f"{task_id}: no_concurrent_writers=True, but a stream committed to {table_uri} recently (version "
            f"{commit.get('version')}, operation {commit.get('operation')}); on S3 a {what} from this task could "
            "overwrite its commits (Delta's S3 log store is safe within one driver only). Set stream_checkpoint to "
            "that stream's checkpoint: a live stream runner then runs the maintenance itself, and a stopped one lets "
            "it run here. Nothing was written."
        )
    control = MaintenanceRequestHook(stream_checkpoint, storage_conn_id, control_conn_id=control_conn_id)
    lease = control.get_lease()
    if lease is None:
        return None
    holder = f"Spark application {lease.app_id} on {lease.host}"
    if engine == "native":
        raise UnprotectedConcurrentWriteError(
            f"{task_id}: {holder} is streaming into {table_uri} (live lease on {stream_checkpoint}); delta-rs "
            f"cannot commit safely beside a Spark writer on S3. Use engine='auto' or 'spark' so the stream runner "
            f"runs the {what}, or stop the stream first. Nothing was written."
        )
    handoff = control.get_handoff()
    reason = None
    if handoff is None:
        reason = "it does not take maintenance requests (a user application, or a runner without the hand-off)"
    elif handoff.get("protocol") != MAINTENANCE_PROTOCOL or (lease.app_id and handoff.get("app_id") != lease.app_id):
        reason = f"its hand-off record belongs to another runner ({handoff.get('app_id')}, protocol {handoff.get('protocol')})"
    elif not same_table(str(handoff.get("table", "")), table_uri):
        reason = f"it writes {handoff.get('table')}, not this table"
    if reason:
        raise UnprotectedConcurrentWriteError(
            f"{task_id}: {holder} holds the lease on {stream_checkpoint}, but {reason}. A {what} from this task "
            f"could overwrite its commits on S3. Run the stream with this provider's stream runner (it runs "
            f"maintenance requests between micro-batches), or stop the stream first. Nothing was written."
        )
    return HandoffTarget(stream_checkpoint, handoff.get("app_id"))
