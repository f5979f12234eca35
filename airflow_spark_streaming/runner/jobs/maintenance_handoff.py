"""Maintenance handed to the live stream runner: OPTIMIZE or VACUUM in the stream's own driver.

On S3, delta-spark's log store (``S3SingleDriverLogStore``) makes a commit
atomic only against other commits of the same JVM. A second process
committing OPTIMIZE next to a live stream can overwrite a stream commit (or
have its own overwritten). So the Airflow side drops a request under the
checkpoint (``protocol.MAINTENANCE_DIR``) and this watcher, a thread of the
stream's driver, runs it here: one JVM, one commit lock, one ``DeltaLog``.

The watcher starts a request right after a micro-batch committed (the
progress listener's ``batch_done``), while no trigger is active. OPTIMIZE
(``dataChange=false``) and the stream's blind appends never conflict in
Delta's optimistic concurrency check; a batch that commits while OPTIMIZE is
still rewriting is retried over by Delta inside this JVM, never overwritten.

Anyone who can write to the lake can write into ``_maintenance/``, so a request is run only if
it carries a MAC under the control key (``control_auth.MAINTENANCE_REQUEST``, scoped to this
driver's application id), names the file it sits in, has not expired and was not answered
before. Everything else gets a signed refusal and changes nothing. The job re-checks the
request's ``where``, ``zorder_by`` and retention again (``delta/spark_maintenance.py``, as the spark-submit
job and the Spark Connect hook do). A runner
without a control key takes no requests at all (it advertises no hand-off).

Files (stdlib JSON, written through Hadoop's FileSystem)::

    _maintenance/_handoff           this runner accepts requests (app id, table, checkpoint); signed
    _maintenance/<id>.json          a request (written and signed by the Airflow side)
    _maintenance/<id>.result.json   its outcome or refusal, signed, written once it ran
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from pathlib import Path

try:
    from airflow_spark_streaming.delta import spark_maintenance
    from airflow_spark_streaming.runner import control_auth, protocol
    from airflow_spark_streaming.utils import bounded_json
except ImportError:  # run inside a driver whose Python lacks the package
    sys.path.append(str(Path(__file__).resolve().parents[3]))
    from airflow_spark_streaming.delta import spark_maintenance
    from airflow_spark_streaming.runner import control_auth, protocol
    from airflow_spark_streaming.utils import bounded_json

#: A request is a few hundred bytes; anything larger is not the provider's.
MAX_REQUEST_BYTES = 64 * 1024
#: Requests looked at per pass: a folder flooded with planted files cannot stall the watcher.
MAX_REQUESTS_PER_PASS = 50


class RequestRefused(ValueError):
    """A maintenance request this runner will not run: unsigned, altered, expired, answered, or out of bounds."""


class MaintenanceWatcher:
    """Polls ``_maintenance/`` from a driver thread and runs each verified request between micro-batches."""

    def __init__(self, spark, query, checkpoint: str, table: str, batch_done, stop_event=None, interval: float = 1.0,
                 *, key):  # fmt: skip
        if key is None:
            raise ValueError("the maintenance hand-off needs the control key: it runs only signed requests")
        jvm = spark.sparkContext._jvm
        self.spark, self.query, self.table, self.batch_done = spark, query, table, batch_done
        self.stop_event, self.interval, self.key, self.checkpoint = stop_event, interval, key, checkpoint
        self.app_id = spark.sparkContext.applicationId
        self._path = jvm.org.apache.hadoop.fs.Path
        self.folder = self._path(checkpoint.rstrip("/") + "/" + protocol.MAINTENANCE_DIR)
        self.fs = self.folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        self.seen: set[str] = set()  # requests this runner answered or refused: never run twice

    def _write(self, name: str, body: dict) -> None:
        stream = self.fs.create(self._path(self.folder, name), True)
        try:
            stream.write(bytearray(json.dumps(body).encode("utf-8")))
        finally:
            stream.close()

    def _write_signed(self, name: str, kind: str, body: dict, scope: str = "") -> None:
        self._write(name, self.key.sign(kind, body, scope=scope))

    def _publish_signed(self, name: str, kind: str, body: dict, scope: str = "") -> None:
        """Write a file readers must never see half written (a result): a hidden temporary, then a rename."""
        import uuid

        temp = f".{name}.{uuid.uuid4().hex}.tmp"
        self._write_signed(temp, kind, body, scope)
        if not self.fs.rename(self._path(self.folder, temp), self._path(self.folder, name)):
            self.fs.delete(self._path(self.folder, temp), False)
            raise OSError(f"could not publish {name} in {self.folder}")

    def _read(self, name: str):
        """A file of ``_maintenance/`` as bounded JSON (``UntrustedJsonError`` when it is not)."""
        stream = self.fs.open(self._path(self.folder, name))
        try:
            data = bytes(stream.readNBytes(MAX_REQUEST_BYTES + 1))
        finally:
            stream.close()
        return bounded_json.loads(data, max_bytes=MAX_REQUEST_BYTES)

    def advertise(self) -> None:
        """Say, signed, that this driver takes requests for its sink table (the Airflow side checks the app id)."""
        body = {"protocol": protocol.MAINTENANCE_PROTOCOL, "app_id": self.app_id, "table": self.table,
                "checkpoint": protocol.location_key(self.checkpoint)}  # fmt: skip
        self._write_signed(protocol.MAINTENANCE_HANDOFF_FILE, control_auth.HANDOFF, body)

    def withdraw(self) -> None:
        try:
            self.fs.delete(self._path(self.folder, protocol.MAINTENANCE_HANDOFF_FILE), False)
        except Exception as err:  # noqa: BLE001 - the lease going stale tells the same
            print(f"stream_runner: could not withdraw the maintenance hand-off: {err}", file=sys.stderr)

    def _names(self) -> list[str]:
        try:
            return [s.getPath().getName() for s in self.fs.listStatus(self.folder)]
        except Exception:  # noqa: BLE001 - no folder yet
            return []

    def pending(self) -> list[str]:
        """Request ids with no result yet that this runner has not seen, at most ``MAX_REQUESTS_PER_PASS``."""
        names = self._names()
        done = {n.removesuffix(protocol.MAINTENANCE_RESULT_SUFFIX) for n in names}
        ids = sorted(i for i in map(protocol.maintenance_request_id, names) if i and i not in done)
        return [i for i in ids if i not in self.seen][:MAX_REQUESTS_PER_PASS]

    def verified(self, request_id: str) -> dict:
        """The request's body if it may run here; :class:`RequestRefused` or ``ControlRecordError`` if not."""
        what = f"maintenance request {request_id}"
        try:
            record = self._read(protocol.maintenance_request_file(request_id))
        except bounded_json.UntrustedJsonError as err:
            raise RequestRefused(f"{what} is not a request the provider writes ({err})") from None
        body = self.key.verify(control_auth.MAINTENANCE_REQUEST, record, scope=self.app_id, what=what)
        if body.get("request_id") != request_id:
            raise RequestRefused(f"{what} was signed for another request id: a copy, not the request itself")
        if control_auth.expired(body, time.time() * 1000):
            raise RequestRefused(f"{what} has expired (its signed expires_at_ms has passed)")
        if protocol.maintenance_result_file(request_id) in self._names():
            raise RequestRefused(f"{what} was already answered")
        if not protocol.same_table(str(body.get("table", "")), self.table):
            raise RequestRefused(f"this stream writes {self.table}, not {body.get('table')}")
        if body.get("action") not in ("optimize", "vacuum"):
            raise RequestRefused(f"unknown maintenance action {body.get('action')!r}")
        size = body.get("target_file_bytes")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise RequestRefused(f"target_file_bytes {size!r} is not a positive number of bytes")
        return body

    def _between_batches(self) -> None:
        """Wait (bounded) until no trigger runs, so the request starts right after a batch committed."""
        deadline = time.monotonic() + 30
        while self.query.isActive and self.query.status["isTriggerActive"] and time.monotonic() < deadline:
            self.batch_done.wait(0.1)

    def _run(self, request: dict) -> dict:
        action = request["action"]
        keys = ("where", "zorder_by", "max_attempts") if action == "optimize" else \
            ("retain_hours", "mode", "dry_run", "retention_override")  # fmt: skip
        spec = {"action": action, "table": self.table, **{k: request[k] for k in keys if k in request}}
        self._between_batches()
        conf = self.spark.conf
        size_key, saved, size = "spark.databricks.delta.optimize.maxFileSize", None, request.get("target_file_bytes")
        try:
            if action == "optimize" and size:
                saved = conf.get(size_key, None)
                conf.set(size_key, str(size))
            try:
                spark_maintenance.ACTIONS[action](self.spark, spec)
            finally:
                if action == "optimize" and size:
                    conf.unset(size_key) if saved is None else conf.set(size_key, saved)
        except spark_maintenance.MaintenanceRefused as err:
            return {"status": "refused", "error": f"{type(err).__name__}: {err}"[:4000]}
        except Exception as err:  # noqa: BLE001 - reported to the waiting operator
            traceback.print_exc()
            return {"status": "failed", "error": f"{type(err).__name__}: {err}"[:4000]}
        return {"status": "succeeded"}

    def run_request(self, request_id: str) -> dict:
        started = time.time()
        self.seen.add(request_id)
        try:
            outcome = self._run(self.verified(request_id))
        except (control_auth.ControlRecordError, RequestRefused) as err:
            outcome = {"status": "refused", "error": f"{type(err).__name__}: {err}"[:4000]}
        outcome.update(request_id=request_id, app_id=self.app_id, started=started, finished=time.time())
        self._publish_signed(protocol.maintenance_result_file(request_id), control_auth.MAINTENANCE_RESULT, outcome,
                             scope=request_id)  # fmt: skip
        print(f"stream_runner: maintenance request {request_id} {outcome['status']}"
              + (f": {outcome['error']}" if outcome["status"] != "succeeded" else ""), file=sys.stderr)  # fmt: skip
        return outcome

    def loop(self) -> None:
        while self.query.isActive and not (self.stop_event is not None and self.stop_event.is_set()):
            try:
                for request_id in self.pending():
                    if not self.query.isActive:
                        break
                    self.run_request(request_id)
            except Exception as err:  # noqa: BLE001 - a store hiccup; the next pass retries
                print(f"stream_runner: maintenance hand-off: {type(err).__name__}: {err}", file=sys.stderr)
            time.sleep(self.interval)

    def start(self) -> threading.Thread:
        self.advertise()
        thread = threading.Thread(target=self.loop, name="maintenance-handoff", daemon=True)
        thread.start()
        return thread


def watch_maintenance_requests(spark, query, checkpoint: str, sink: dict, batch_done, stop_event=None, key=None):
    """Start the watcher for a Delta sink with a path; ``None`` (nothing started) for any other sink, or without
    the control key (then Airflow refuses maintenance that would need this stream's driver)."""
    if sink.get("format") != "delta" or not sink.get("path"):
        return None
    if key is None:
        print("stream_runner: no control key in the spec: maintenance requests are not taken", file=sys.stderr)
        return None
    watcher = MaintenanceWatcher(spark, query, checkpoint, sink["path"], batch_done, stop_event, key=key)
    try:
        watcher.start()
    except Exception as err:  # noqa: BLE001 - the stream matters more; Airflow then refuses maintenance
        print(f"stream_runner: maintenance hand-off unavailable: {err}", file=sys.stderr)
        return None
    return watcher
