"""A bounded (``availableNow``) run of a stream spec on a warm Spark Connect server: no spark-submit.

The query is the stream runner's own (:mod:`airflow_spark_streaming.runner.query`, built with the
DataFrame API alone) started in a Connect session of its own. What the runner does on its driver
happens here, on the Airflow worker:

* **the checkpoint's lease** (:class:`~airflow_spark_streaming.runner.lease.RunnerLease`) is taken
  before the query starts and renewed by this process; it names the server, never a pid, so
  nothing ever kills a process because of it;
* **progress events** are read from the query (``recentProgress``) and written to
  ``<checkpoint>/_progress/`` like the runner's listener writes them, so the task log's batch
  lines, the sensors and the Streams page read a Connect run like any other;
* **a stop marker** (``_stop``) stops the query after its running batch; a batch it interrupts is
  finished with a one-batch run, as the runner does;
* **a lost lease** stops the query after its running batch (at most ``LEASE_LOST_GRACE_SECONDS``).

The query lives in the server's session: if this worker dies, the server finishes the bounded
run by itself (the lease expires after its TTL). A retry on the same server stops that
orphaned run when it starts the same checkpoint again (Spark's ``stopActiveRunOnRestart``),
and the Delta sink's idempotent commits keep every record exactly once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.exceptions import (
    CheckpointInUseError,
    InvalidStreamSpecError,
    SparkConnectError,
    StreamingRunIncompleteError,
)
from airflow_spark_streaming.hooks.spark_connect import SparkConnectSessionHook

if TYPE_CHECKING:
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

#: After the lease is lost, the running batch may commit for this long, then the query is stopped.
LEASE_LOST_GRACE_SECONDS = 10.0
#: How long a graceful stop waits for the running batch to commit.
STOP_GRACE_SECONDS = 120.0


@dataclass(frozen=True)
class ConnectStreamRun:
    """One bounded run of a stream spec on a Connect server.

    :param query_id: the query's id (stable across runs of one checkpoint).
    :param run_id: this run's id.
    :param server: the server's ``host:port`` (no token).
    :param seconds: wall time from connecting to the query's end.
    :param progress_events: progress events written to ``_progress/``.
    :param stopped: ``"marker"`` when a stop marker ended the run early, else ``None``.
    """

    query_id: str
    run_id: str
    server: str
    seconds: float
    progress_events: int
    stopped: str | None = None


class StreamConnectHook(SparkConnectSessionHook):
    """Run a stream spec's bounded query on the Spark Connect server of a ``spark_connect`` connection.

    :param spark_connect_conn_id: the ``spark_connect`` connection.
    :param poll_interval: seconds between reads of the query's progress and the checkpoint's stop marker.
    """

    hook_name = "Structured Streaming over Spark Connect"

    def __init__(self, spark_connect_conn_id: str = SparkConnectSessionHook.default_conn_name, *,
                 poll_interval: float = 0.5, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(spark_connect_conn_id, **kwargs)
        self.poll_interval = poll_interval
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop the running query (``on_kill``): it ends within one poll."""
        self._cancel.set()

    def run_bounded(self, spec: dict[str, Any], control: RunnerControlHook, *,
                    conf: dict[str, str] | None = None, lease_ttl_seconds: float | None = None) -> ConnectStreamRun:  # fmt: skip
        """Take the checkpoint's lease, run ``spec``'s ``availableNow`` query on the server, write its progress.

        :param spec: the validated spec with its Kafka options resolved (it may hold secrets; it is never logged).
        :param control: the checkpoint's side files (lease, ``_progress/``, ``_stop``).
        :raises CheckpointInUseError: another query holds the checkpoint's lease.
        :raises InvalidStreamSpecError: the server's parser refused ``transform_sql``.
        :raises SparkConnectUnreachableError: the server did not answer, or went away mid-run.
        :raises SparkConnectError: the query failed on the server (the message is free of the spec's secrets).
        """
        from airflow_spark_streaming.runner import lease as leases
        from airflow_spark_streaming.runner.protocol import DEFAULT_LEASE_TTL_SECONDS

        if not (spec.get("trigger") or {}).get("available_now"):
            raise SparkConnectError("only a bounded run (trigger available_now) runs over Spark Connect here.")
        started = time.monotonic()
        ttl_ms = int(float(lease_ttl_seconds or spec.get("lease_ttl_seconds") or DEFAULT_LEASE_TTL_SECONDS) * 1000)
        with self.session(conf) as spark:
            server = self.server or "?"
            identity = {"host": socket.gethostname(), "app_id": f"spark-connect {server} session {spark.session_id}"}
            lease = leases.RunnerLease(control.lease_store(), ttl_ms=ttl_ms, identity=identity)
            try:
                lease.acquire()
            except leases.CheckpointInUse as err:
                raise CheckpointInUseError(
                    f"checkpoint {control.checkpoint} is in use ({err}); a second query would corrupt it. Stop that "
                    "query first; a lease left by a dead process expires after its TTL."
                ) from None
            lease.start_renewing()
            try:
                return self._run(spark, spec, control, lease, started)
            finally:
                lease.release()

    def _run(self, spark, spec, control: RunnerControlHook, lease, started: float) -> ConnectStreamRun:
        from airflow_spark_streaming.runner.query import SpecError, start_query, transformed_without_parser

        writer = _ProgressWriter(control)
        stopped = None
        try:
            query = start_query(spark, spec, transformed_without_parser)
            while not query.awaitTermination(self.poll_interval):
                writer.write(query.recentProgress)
                if lease.lost.is_set():
                    self._stop_after_batch(query, writer, LEASE_LOST_GRACE_SECONDS)
                    raise StreamingRunIncompleteError(
                        f"lost the lease on {control.checkpoint}: {lease.lost_reason}. The query stopped after its "
                        "running batch; another runner may own the checkpoint now."
                    )
                if self._cancel.is_set():
                    query.stop()
                    raise StreamingRunIncompleteError(f"the run on {control.checkpoint} was killed; it stopped.")
                if control.stop_requested():
                    self._stop_after_batch(query, writer, STOP_GRACE_SECONDS)
                    control.clear_stop_request()
                    stopped = "marker"
                    if control.has_uncommitted_batch():  # the stop landed inside a batch: finish exactly that one
                        query = start_query(spark, spec, transformed_without_parser, {"once": True})
                        query.awaitTermination()
                    break
            writer.write(query.recentProgress)
            failure = query.exception()
        except SpecError as err:
            raise InvalidStreamSpecError(f"the Spark Connect server refused the spec: {err}") from None
        except Exception as err:
            if isinstance(err, SparkConnectError | StreamingRunIncompleteError | InvalidStreamSpecError):
                raise
            raise self._failed(err, spec, control) from None
        if failure is not None:
            raise self._failed(failure, spec, control)
        return ConnectStreamRun(query_id=str(query.id), run_id=str(query.runId), server=self.server or "?",
                                seconds=round(time.monotonic() - started, 3), progress_events=writer.written,
                                stopped=stopped)  # fmt: skip

    def _stop_after_batch(self, query, writer: _ProgressWriter, grace: float) -> None:
        """Stop ``query`` right after a batch commits (or once idle, or after ``grace`` seconds).

        A run that is behind has no idle gap between batches, so the stop follows the next progress
        event, as the runner's follows its listener's; a batch that starts in between is finished by
        the caller with a one-batch run.
        """
        done_before = writer.latest
        deadline = time.monotonic() + grace
        while query.isActive and time.monotonic() < deadline:
            if not query.status.get("isTriggerActive"):
                break
            writer.write(query.recentProgress)
            if writer.latest > done_before:
                break
            time.sleep(0.1)
        query.stop()
        writer.write(query.recentProgress)

    def _failed(self, err: BaseException, spec: dict[str, Any], control: RunnerControlHook) -> Exception:
        gone = self.unreachable_or_none(err, f"the run on {control.checkpoint}") or self._gone_after(err, control)
        if gone is not None:
            return gone
        return SparkConnectError(
            f"the query on {control.checkpoint} failed on the Spark Connect server: {_cause(str(err), spec)}"
        )

    def _gone_after(self, err: BaseException, control: RunnerControlHook) -> Exception | None:
        """:class:`SparkConnectUnreachableError` when the server no longer answers after the query failed: a
        server stopping fails its queries first, so the failure is the server's going, not the query's."""
        from pyspark.sql.connect.client import DefaultChannelBuilder

        from airflow_spark_streaming.exceptions import SparkConnectUnreachableError

        # A server whose SparkContext is stopped is shutting down (its gRPC port may answer a while longer):
        # no query of its own fails that way.
        stopping = STOPPED_CONTEXT in str(err)
        try:
            if not stopping:
                self._wait_for_channel(DefaultChannelBuilder(self._url()), self.server or "?", timeout=3.0)
        except SparkConnectUnreachableError:
            stopping = True
        if stopping:
            return SparkConnectUnreachableError(
                f"The Spark Connect server at {self.server or '?'} went away during the run on {control.checkpoint} "
                f"(the query ended with: {str(err).strip().splitlines()[0][:300] if str(err).strip() else '?'}); "
                "start it again and retry: the checkpoint resumes at its last committed batch."
            )
        return None


#: What a Connect server says of a query it fails while it stops (``java.lang.IllegalStateException``).
STOPPED_CONTEXT = "Cannot call methods on a stopped SparkContext"


class _ProgressWriter:
    """Writes each new progress event of the query to ``_progress/`` once, as the runner's listener does."""

    def __init__(self, control: RunnerControlHook) -> None:
        self.control = control
        self.written = 0
        self._seen: dict[int, str] = {}

    @property
    def latest(self) -> int:
        """The newest batch a progress event was written for (-1 for none)."""
        return max(self._seen, default=-1)

    def write(self, progress: list[Any]) -> None:
        for event in progress:  # an idle query reports a batch again: the newest report of a batch wins
            batch, text = int(event.batchId), _with_totals(event.json)
            if self._seen.get(batch) == text:
                continue
            if batch not in self._seen:
                self.written += 1
            self.control.put_progress(batch, text.encode("utf-8"))
            self._seen[batch] = text


def _cause(text: str, spec: dict[str, Any]) -> str:
    """The failure's first line and its ``...Exception:`` lines (a Kafka refusal names its cause there), without
    Java stack frames or the spec's secrets, bounded."""
    from airflow_spark_streaming.runner.query import redact_secrets

    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    kept = lines[:1] + [line for line in lines[1:] if "Exception" in line and not line.startswith("at ")][:6]
    return redact_secrets(" | ".join(kept), spec)[:1500]


def _with_totals(text: str) -> str:
    """A progress event as the runner's listener writes it: Connect's JSON leaves out the totals over sources
    (``numInputRows``, ``inputRowsPerSecond``, ``processedRowsPerSecond``) that the driver's JSON carries."""
    event = json.loads(text)
    sources = [s for s in event.get("sources") or [] if isinstance(s, dict)]
    for total in ("numInputRows", "inputRowsPerSecond", "processedRowsPerSecond"):
        if total not in event:
            values = [s.get(total) for s in sources if isinstance(s.get(total), int | float)]
            event[total] = sum(values) if total == "numInputRows" else float(sum(values))
    return json.dumps(event, separators=(",", ":"))
