"""The declarative stream runner: one Structured Streaming query described by a JSON spec.

spark-submit runs this file with ``--spec-file PATH`` (or ``--spec JSON``). The
spec names a source, an optional SQL transformation over a view called
``source``, a sink, a trigger and a checkpoint::

    {
      "query_name": "orders_to_delta",
      "checkpoint_location": "/lake/_checkpoints/orders",
      "source": {"format": "kafka", "options": {"kafka.bootstrap.servers": "...", "subscribe": "orders"}},
      "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value FROM source",
      "sink": {"format": "delta", "path": "/lake/orders", "output_mode": "append"},
      "trigger": {"available_now": true}
    }

Delta sinks are exactly-once across restarts: Delta's streaming sink records
the query id and batch id in the table log and skips a batch it already wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

try:
    from airflow_spark_streaming.runner import control_auth, protocol
except ImportError:  # spark-submit runs this file by path; a driver whose Python lacks the package finds it here
    sys.path.append(str(Path(__file__).resolve().parents[3]))
    from airflow_spark_streaming.runner import control_auth, protocol

# The query itself is built with the DataFrame API alone, shared with the Spark Connect route.
from airflow_spark_streaming.runner.query import (  # noqa: E402
    SpecError,
    outside_sql,
    redact_secrets,
    require,
    transform_refused,
)

_require = require  # the old private name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stream_runner")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(protocol.SPEC_FILE_ARG, help="local path of the JSON spec")
    given.add_argument(
        protocol.SPEC_URI_ARG, help="Hadoop URI of the JSON spec (cluster mode: staged beside the checkpoint)"
    )
    given.add_argument("--spec", help="the JSON spec itself")
    parser.add_argument(
        protocol.DELETE_SPEC_FILE_ARG, action="store_true", help="remove the spec file once read (it may hold secrets)"
    )
    return parser.parse_args(argv)


def load_spec(argv: list[str] | None = None, spark=None) -> dict[str, Any]:
    """The spec named by the arguments; ``--spec-uri`` needs ``spark`` to read through Hadoop."""
    args = parse_args(argv)
    if args.spec_uri:
        text = _read_hadoop_text(spark, args.spec_uri, delete=args.delete_spec_file)
    elif args.spec_file:
        text = open(args.spec_file, encoding="utf-8").read()
        if args.delete_spec_file:
            import os

            os.remove(args.spec_file)
    else:
        text = args.spec
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"the spec is not valid JSON ({err})") from err
    if not isinstance(spec, dict):
        raise SpecError("the spec must be a JSON object")
    return spec


def _read_hadoop_text(spark, uri: str, *, delete: bool) -> str:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        raise SpecError(f"the staged spec {uri} does not exist (was it already read by another driver?)")
    stream = fs.open(path)
    try:
        text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    if delete:
        fs.delete(path, False)
    return text


PROGRESS_KEEP = protocol.PROGRESS_KEEP


def progress_listener(spark, checkpoint: str, batch_done=None):
    """A listener writing each progress event as JSON to ``<checkpoint>/_progress/<batchId>.json``.

    It writes through Hadoop's FileSystem, so it works on every store the
    checkpoint does, and keeps the newest ``PROGRESS_KEEP`` files.
    """
    from pyspark.sql.streaming import StreamingQueryListener

    jvm = spark.sparkContext._jvm
    folder = jvm.org.apache.hadoop.fs.Path(checkpoint.rstrip("/") + "/" + protocol.PROGRESS_DIR)
    fs = folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    object_store = fs.getScheme() not in ("file", "hdfs", "viewfs")

    class ProgressWriter(StreamingQueryListener):
        def onQueryStarted(self, event):
            pass

        def onQueryProgress(self, event):
            # event.progress.json: json.dumps fails on PySpark 4's progress objects (they hold UUIDs).
            progress = event.progress
            target = jvm.org.apache.hadoop.fs.Path(folder, protocol.progress_file(progress.batchId))
            # An object store publishes a file whole when it closes; a file system shows it while it is
            # written, so there the event is written aside and renamed: readers never see half an event.
            staged = target if object_store else jvm.org.apache.hadoop.fs.Path(folder, "." + target.getName() + ".tmp")
            stream = fs.create(staged, True)
            try:
                stream.write(bytearray(progress.json.encode("utf-8")))
            finally:
                stream.close()
            if not object_store:
                fs.delete(target, False)  # a re-run batch's event replaces the old one; rename does not overwrite
                fs.rename(staged, target)
            if batch_done is not None:
                batch_done.set()
            old = progress.batchId - PROGRESS_KEEP
            if old >= 0:
                fs.delete(jvm.org.apache.hadoop.fs.Path(folder, protocol.progress_file(old)), False)

        def onQueryIdle(self, event):
            pass

        def onQueryTerminated(self, event):
            pass

    return ProgressWriter()


LEASE_TTL_MS = protocol.DEFAULT_LEASE_TTL_SECONDS * 1000
# After the lease is lost (noticed within a third of its TTL), the running batch may commit for this
# long, then the query is stopped; a query that does not stop in time ends the driver. So a runner
# that lost its lease writes nothing after TTL/3 + LEASE_LOST_GRACE_SECONDS + LEASE_LOST_STOP_SECONDS.
LEASE_LOST_GRACE_SECONDS = 10.0
LEASE_LOST_STOP_SECONDS = 15.0


# CheckpointInUse is re-exported; imported beside its user for merges.
from airflow_spark_streaming.runner.lease import CheckpointInUse, ConditionalCreateUnavailable  # noqa: E402


class SignedLeaseStore:
    """A lease store whose every record this runner writes carries ``extra`` and, with a key, a MAC.

    The MAC (``control_auth.LEASE``, scoped to the submission tag) is what lets Airflow kill a
    local driver by the pid its lease names; a lease without one is never acted on.
    """

    def __init__(self, store, key, *, scope: str, extra: dict[str, Any]):
        self._store, self._key, self._scope, self._extra = store, key, scope, extra

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def _record(self, data: bytes) -> bytes:
        body = {**json.loads(data), **self._extra}
        return json.dumps(self._key.sign(control_auth.LEASE, body, scope=self._scope) if self._key else body).encode()

    def create_exclusive(self, name: str, data: bytes) -> bool:
        return self._store.create_exclusive(name, self._record(data))

    def overwrite(self, name: str, data: bytes) -> None:
        self._store.overwrite(name, self._record(data))


class Lease:
    """The checkpoint's lease (``airflow_spark_streaming.runner.lease``): ``<checkpoint>/_leases/<generation>``.

    Taken with an atomic create-if-absent, renewed every third of its
    time-to-live after checking ownership. ``lost`` is set when another runner
    took over or renewal failed for a whole TTL; the query then stops after its
    current batch, like a stop marker.
    """

    def __init__(self, spark, checkpoint: str, ttl_ms: int = LEASE_TTL_MS, key=None, consistency: str = "conditional"):
        import os
        import socket

        from airflow_spark_streaming.runner import lease

        tag = spark.conf.get(protocol.SUBMISSION_CONF, None)
        identity = {"host": socket.gethostname(), "pid": os.getpid(), "app_id": spark.sparkContext.applicationId,
                    "submission": tag}  # fmt: skip
        # What a kill by pid checks besides the MAC: the process's start time, and the checkpoint it is for.
        extra = {"pid_start": control_auth.process_start_ticks(), "checkpoint": protocol.location_key(checkpoint)}
        store = SignedLeaseStore(lease.open_store(spark, checkpoint, consistency), key, scope=tag or "", extra=extra)
        self._lease = lease.RunnerLease(store, ttl_ms=ttl_ms, identity=identity)
        self.lost = self._lease.lost

    @property
    def lost_reason(self) -> str | None:
        return self._lease.lost_reason

    def acquire(self) -> None:
        self._lease.acquire()
        self._lease.start_renewing()

    def confirm(self) -> bool:
        return self._lease.confirm()

    def release(self) -> None:
        self._lease.release()


def _session(app_name: str | None):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    return (builder.appName(app_name) if app_name else builder).getOrCreate()


def run(spec: dict[str, Any], spark=None) -> int:
    try:
        key = control_auth.key_from_spec(spec)  # signs the lease and hand-off, verifies maintenance requests
    except control_auth.ControlKeyError as err:
        raise SpecError(str(err)) from None
    spark = spark or _session(spec.get("query_name") or "stream_runner")
    checkpoint = _require(spec, "checkpoint_location", "spec")
    ttl_ms = int(float(spec.get("lease_ttl_seconds", LEASE_TTL_MS / 1000)) * 1000)
    lease = Lease(spark, checkpoint, ttl_ms=ttl_ms, key=key, consistency=spec.get("lease_consistency", "conditional"))
    try:
        lease.acquire()
    except CheckpointInUse as err:
        print(f"stream_runner: refusing to start: {err}", file=sys.stderr)
        return 3
    except ConditionalCreateUnavailable as err:
        print(f"stream_runner: refusing to start: {err}", file=sys.stderr)
        return protocol.EXIT_UNSAFE_LEASE_STORE
    try:
        try:
            code = _run_query(spark, spec, checkpoint, lease.lost, key=key)
        except Exception:
            if lease.confirm():
                raise
            code = 1  # the query failed because another runner took over: say that below
        lease.confirm()  # a resumed driver's query can end before the renew thread notices
    finally:
        lease.release()
    if lease.lost.is_set():
        print(
            f"stream_runner: lost the checkpoint lease: {lease.lost_reason}. The query stopped after its current "
            f"batch; another runner may own {checkpoint} now. Start this stream again only once that one stopped.",
            file=sys.stderr,
        )
        return 4
    return code


def watch_stop_marker(spark, query, checkpoint: str, batch_done, interval: float = 1.0, stop_event=None):
    """Stop ``query`` gracefully once ``<checkpoint>/_stop`` appears: right after a batch has committed.

    ``batch_done`` is set by the progress listener after every batch, so the
    stop lands in the gap before the next trigger, never inside a batch.
    User applications can run this helper too. Returns an event set once the
    stop was requested. ``stop_event`` (the lease's ``lost``) stops the query the same way.
    """
    import threading

    requested = threading.Event()
    jvm = spark.sparkContext._jvm
    marker = jvm.org.apache.hadoop.fs.Path(checkpoint.rstrip("/") + "/" + protocol.STOP_FILE)
    fs = marker.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def watch():
        while query.isActive:
            lease_lost = stop_event is not None and stop_event.is_set()
            if lease_lost or fs.exists(marker):
                requested.set()
                batch_done.clear()
                # A batch running now commits first; an idle query stops at once. Without the lease
                # another runner may own the checkpoint: the batch gets a bounded grace, then is cut.
                deadline = time.monotonic() + LEASE_LOST_GRACE_SECONDS if lease_lost else None
                while query.isActive and query.status["isTriggerActive"] and not batch_done.wait(0.1):
                    if deadline is not None and time.monotonic() > deadline:
                        print("stream_runner: lease lost: interrupting the running batch", file=sys.stderr)
                        break
                if lease_lost:
                    _stop_within(query, LEASE_LOST_STOP_SECONDS)
                    return
                query.stop()
                if not lease_lost:  # a marker left for a newer owner is not ours to remove
                    fs.delete(marker, False)
                return
            if stop_event is not None:
                stop_event.wait(interval)
            else:
                time.sleep(interval)

    threading.Thread(target=watch, name="stop-marker", daemon=True).start()
    return requested


def _stop_within(query, seconds: float) -> None:
    """Stop ``query``; a driver whose query does not stop in ``seconds`` exits, so it writes nothing more."""
    import os
    import threading

    stopper = threading.Thread(target=query.stop, name="lease-lost-stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        print(f"stream_runner: lease lost and the query did not stop within {seconds:g}s: exiting", file=sys.stderr)
        sys.stderr.flush()
        os._exit(4)


def _start_query(spark, spec: dict[str, Any], trigger: dict[str, Any] | None = None):
    from airflow_spark_streaming.runner.query import start_query

    return start_query(spark, spec, lambda session, sql: session.sql(_checked_query(session, sql)), trigger)


def _checked_query(spark, sql: str) -> str:
    """``sql`` if Spark's parser reads all of it as exactly one query (no command, no INSERT, no second statement).

    ``spark.sql`` runs a command at once, so nothing else may reach it. ``parseQuery`` must read a
    query up to the end of the input, and ``parsePlan`` (what ``spark.sql`` parses with: one statement,
    then the end) must read the same kind of plan, so text after the query (``SELECT 1; DROP TABLE x``)
    fails even if one parser stopped at the query. As on the Airflow side, ``${`` (Spark substitutes
    settings, environment variables and JVM properties into the text), a script and Java reflection are
    refused.
    """
    refused = transform_refused
    if "${" in sql:
        raise refused("it holds '${', which Spark would replace with settings or environment variables")
    parser = spark._jsparkSession.sessionState().sqlParser()
    try:
        query = parser.parseQuery(sql)
        statement = parser.parsePlan(sql)
    except Exception as err:  # Py4J-wrapped ParseException
        detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise refused(detail) from None
    if statement.getClass().getName() != query.getClass().getName():
        raise refused(f"Spark reads it as {statement.nodeName()}, not as the query {query.nodeName()}")
    problem = outside_sql(query.toString())
    if problem:
        raise refused(f"it holds {problem}")
    return sql


def _has_uncommitted_batch(spark, checkpoint: str) -> bool:
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(checkpoint)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def newest(folder: str) -> int:
        path = jvm.org.apache.hadoop.fs.Path(root, folder)
        if not fs.exists(path):
            return -1
        names = [status.getPath().getName() for status in fs.listStatus(path)]
        return max((int(n) for n in names if n.isdigit()), default=-1)

    return newest("offsets") > newest("commits")


def _maintenance_handoff():
    """``airflow_spark_streaming.runner.jobs.maintenance_handoff``: the package, or the ``--py-files`` zip on YARN."""
    import importlib

    return importlib.import_module("airflow_spark_streaming.runner.jobs.maintenance_handoff")


def _run_query(spark, spec: dict[str, Any], checkpoint: str, lease_lost=None, key=None) -> int:
    import threading

    batch_done = threading.Event()
    spark.streams.addListener(progress_listener(spark, checkpoint, batch_done))
    query = _start_query(spark, spec)
    stop_requested = watch_stop_marker(spark, query, checkpoint, batch_done, stop_event=lease_lost)
    handoff = _maintenance_handoff().watch_maintenance_requests(
        spark, query, checkpoint, spec.get("sink") or {}, batch_done, lease_lost, key=key
    )
    try:
        query.awaitTermination()
    finally:
        if handoff is not None:
            handoff.withdraw()
    owned = lease_lost is None or not lease_lost.is_set()  # a runner without the lease writes nothing more
    if owned and stop_requested.is_set() and query.exception() is None and _has_uncommitted_batch(spark, checkpoint):
        # The stop landed inside a batch (a query that is behind has no idle gap). On restart Spark
        # re-runs exactly that planned batch; a one-batch run commits it, and the stop is clean.
        print("stream_runner: finishing the batch the stop interrupted", file=sys.stderr)
        query = _start_query(spark, spec, {"once": True})
        query.awaitTermination()
    try:  # let the listener write the last progress events before the driver exits
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(30_000)
    except Exception as err:  # noqa: BLE001 - best effort; the checkpoint itself is complete
        print(f"stream_runner: progress events may be incomplete: {err}", file=sys.stderr)
    failure = query.exception()
    if failure is not None:
        print(f"stream_runner: query {query.name or query.id} failed: {redact_secrets(str(failure), spec)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        spark = _session(None) if parse_args(argv).spec_uri else None  # spark-submit --name names it
        spec = load_spec(argv, spark)
        try:
            return run(spec, spark)
        except Exception as err:  # noqa: BLE001 - the cause goes last, where spark-submit's error tail shows it
            import traceback

            traceback.print_exc()
            cause = redact_secrets(" ".join(str(err).split()), spec)[:2000]
            print(f"stream_runner: the query failed: {cause}", file=sys.stderr)
            return 1
    except SpecError as err:
        print(f"stream_runner: invalid spec: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
