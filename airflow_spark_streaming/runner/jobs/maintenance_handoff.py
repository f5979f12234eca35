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

Files (stdlib JSON, written through Hadoop's FileSystem)::

    _maintenance/_handoff           this runner accepts requests (app id, table)
    _maintenance/<id>.json          a request (written by the Airflow side)
    _maintenance/<id>.result.json   its outcome, written once it ran
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from pathlib import Path

try:
    from airflow_spark_streaming.runner import protocol
except ImportError:  # run inside a driver whose Python lacks the package
    sys.path.append(str(Path(__file__).resolve().parents[2]))
    from airflow_spark_streaming.runner import protocol


def load_job(name: str):
    """A sibling job module (the ``jobs`` package imports only the standard library)."""
    import importlib

    return importlib.import_module(f"airflow_spark_streaming.runner.jobs.{name}")


class MaintenanceWatcher:
    """Polls ``_maintenance/`` from a driver thread and runs each request between micro-batches."""

    def __init__(self, spark, query, checkpoint: str, table: str, batch_done, stop_event=None, interval: float = 1.0):
        jvm = spark.sparkContext._jvm
        self.spark, self.query, self.table, self.batch_done = spark, query, table, batch_done
        self.stop_event, self.interval = stop_event, interval
        self._path = jvm.org.apache.hadoop.fs.Path
        self.folder = self._path(checkpoint.rstrip("/") + "/" + protocol.MAINTENANCE_DIR)
        self.fs = self.folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def _write(self, name: str, body: dict) -> None:
        stream = self.fs.create(self._path(self.folder, name), True)
        try:
            stream.write(bytearray(json.dumps(body).encode("utf-8")))
        finally:
            stream.close()

    def _read(self, name: str) -> dict:
        jvm = self.spark.sparkContext._jvm
        stream = self.fs.open(self._path(self.folder, name))
        try:
            return json.loads(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def advertise(self) -> None:
        """Say that this driver takes requests for its sink table (the Airflow side checks the app id)."""
        self._write(protocol.MAINTENANCE_HANDOFF_FILE, {"protocol": protocol.MAINTENANCE_PROTOCOL,
                    "app_id": self.spark.sparkContext.applicationId, "table": self.table})  # fmt: skip

    def withdraw(self) -> None:
        try:
            self.fs.delete(self._path(self.folder, protocol.MAINTENANCE_HANDOFF_FILE), False)
        except Exception as err:  # noqa: BLE001 - the lease going stale tells the same
            print(f"stream_runner: could not withdraw the maintenance hand-off: {err}", file=sys.stderr)

    def pending(self) -> list[str]:
        try:
            names = [s.getPath().getName() for s in self.fs.listStatus(self.folder)]
        except Exception:  # noqa: BLE001 - no folder yet
            return []
        done = {n.removesuffix(protocol.MAINTENANCE_RESULT_SUFFIX) for n in names}
        return sorted(i for i in map(protocol.maintenance_request_id, names) if i and i not in done)

    def _between_batches(self) -> None:
        """Wait (bounded) until no trigger runs, so the request starts right after a batch committed."""
        deadline = time.monotonic() + 30
        while self.query.isActive and self.query.status["isTriggerActive"] and time.monotonic() < deadline:
            self.batch_done.wait(0.1)

    def run_request(self, request_id: str) -> dict:
        started = time.time()
        try:
            request = self._read(protocol.maintenance_request_file(request_id))
            if not protocol.same_table(str(request.get("table", "")), self.table):
                raise ValueError(f"this stream writes {self.table}, not {request.get('table')}")
            action = request.get("action")
            if action not in ("optimize", "vacuum"):
                raise ValueError(f"unknown maintenance action {action!r}")
            spec = {**request, "table": self.table}
            self._between_batches()
            conf = self.spark.conf
            size_key, saved = "spark.databricks.delta.optimize.maxFileSize", None
            if action == "optimize" and request.get("target_file_bytes"):
                saved = conf.get(size_key, None)
                conf.set(size_key, str(int(request["target_file_bytes"])))
            try:
                jobs = load_job("delta_maintenance")
                (jobs.optimize if action == "optimize" else jobs.vacuum)(self.spark, spec)
            finally:
                if action == "optimize" and request.get("target_file_bytes"):
                    conf.unset(size_key) if saved is None else conf.set(size_key, saved)
            outcome = {"status": "succeeded"}
        except Exception as err:  # noqa: BLE001 - reported to the waiting operator
            outcome = {"status": "failed", "error": f"{type(err).__name__}: {err}"[:4000]}
            traceback.print_exc()
        outcome.update(request_id=request_id, app_id=self.spark.sparkContext.applicationId,
                       started=started, finished=time.time())  # fmt: skip
        self._write(protocol.maintenance_result_file(request_id), outcome)
        print(f"stream_runner: maintenance request {request_id} {outcome['status']}", file=sys.stderr)
        return outcome

    def loop(self) -> None:
        while self.query.isActive and not (self.stop_event is not None and self.stop_event.is_set()):
            for request_id in self.pending():
                if not self.query.isActive:
                    break
                self.run_request(request_id)
            time.sleep(self.interval)

    def start(self) -> threading.Thread:
        self.advertise()
        thread = threading.Thread(target=self.loop, name="maintenance-handoff", daemon=True)
        thread.start()
        return thread


def watch_maintenance_requests(spark, query, checkpoint: str, sink: dict, batch_done, stop_event=None):
    """Start the watcher for a Delta sink with a path; ``None`` (nothing started) for any other sink."""
    if sink.get("format") != "delta" or not sink.get("path"):
        return None
    watcher = MaintenanceWatcher(spark, query, checkpoint, sink["path"], batch_done, stop_event)
    try:
        watcher.start()
    except Exception as err:  # noqa: BLE001 - the stream matters more; Airflow then refuses maintenance
        print(f"stream_runner: maintenance hand-off unavailable: {err}", file=sys.stderr)
        return None
    return watcher
