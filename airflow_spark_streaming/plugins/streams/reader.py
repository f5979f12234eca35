"""What the Streams page shows of a query, read through the provider's hooks behind a short cache.

A card costs: the checkpoint's status (:class:`CheckpointHook`), its lease and newest progress event
(:class:`RunnerControlHook`), for a Kafka query its threshold-free status (:class:`StreamHealthHook`) and
its lag with time lag and retention headroom (:class:`KafkaLagHook`), and the sink table's small-files
statistics (:class:`DeltaTableHook`), with the queries on the page that read that table (matched by the
table id their Delta source offsets carry) and how far behind each is. A detail adds the retained progress
events. Each result is cached
for ``ttl`` seconds per query, and concurrent requests for the same query wait for one read, so ten open
browsers cost what one does. Only numbers, ids and locations reach the JSON: no connection, no spec.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from airflow_spark_streaming.plugins.streams.discovery import StreamRef, shown_location

#: Seconds a card or a history is served from the cache.
DEFAULT_TTL_SECONDS = 10.0
#: Batch-duration phases charted, in Spark's ``durationMs`` names.
PHASES = ("addBatch", "getBatch", "latestOffset", "queryPlanning", "walCommit", "commitOffsets")
#: Rows in the detail's table of the last batches.
LAST_BATCHES = 20
#: Queries read at once for a list.
READERS = 8


def _number(value: Any) -> float | None:
    """A finite number from an untrusted event, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _error(part: str, err: BaseException) -> dict[str, str]:
    """An error for the page: the provider's messages never hold secrets; other errors show only their type."""
    from airflow.exceptions import AirflowNotFoundException

    from airflow_spark_streaming.exceptions import SparkStreamingError

    # the provider's messages and a missing connection's name no secret; anything else shows only its type
    named = isinstance(err, SparkStreamingError | AirflowNotFoundException)
    message = str(err)[:500] if named else "the read failed"
    return {"part": part, "error": type(err).__name__, "message": message}


def _event_time(event: dict[str, Any]) -> float | None:
    stamp = event.get("timestamp")
    if not isinstance(stamp, str) or len(stamp) > 40:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _state(event: dict[str, Any]) -> tuple[float | None, float | None]:
    operators = event.get("stateOperators")
    if not isinstance(operators, list) or not operators:
        return None, None
    rows = [_number(o.get("numRowsTotal")) for o in operators if isinstance(o, dict)]
    memory = [_number(o.get("memoryUsedBytes")) for o in operators if isinstance(o, dict)]
    return (sum(r for r in rows if r is not None), sum(m for m in memory if m is not None))


def _partition_lag(event: dict[str, Any]) -> dict[str, float]:
    """Per Kafka partition: the newest offset when the batch was planned minus where the batch ended."""
    from airflow_spark_streaming.hooks.stream_health import kafka_offsets

    lag: dict[str, float] = {}
    for source in event.get("sources") or []:
        if not isinstance(source, dict):
            continue
        latest, end = kafka_offsets(source.get("latestOffset")), kafka_offsets(source.get("endOffset"))
        for name, offset in latest.items():
            if name in end:
                lag[name] = float(max(offset - end[name], 0))
    return lag


def batch_row(event: dict[str, Any]) -> dict[str, Any]:
    """One progress event as the page shows it."""
    durations = event.get("durationMs") if isinstance(event.get("durationMs"), dict) else {}
    rows, memory = _state(event)
    sink = event.get("sink") if isinstance(event.get("sink"), dict) else {}
    output_rows = _number(sink.get("numOutputRows"))  # Spark's Delta sink reports -1: not known, not a count
    return {
        "batch_id": event.get("batchId") if isinstance(event.get("batchId"), int) else None,
        "time": _event_time(event),
        "input_rows": _number(event.get("numInputRows")),
        "input_rows_per_second": _number(event.get("inputRowsPerSecond")),
        "processed_rows_per_second": _number(event.get("processedRowsPerSecond")),
        "duration_ms": _number(durations.get("triggerExecution")),
        "phases_ms": {phase: _number(durations.get(phase)) for phase in PHASES},
        "output_rows": None if output_rows is not None and output_rows < 0 else output_rows,
        "state_rows": rows,
        "state_memory_bytes": memory,
    }


class _Cache:
    """Values for ``ttl`` seconds; one computation at a time per key (the others wait for it)."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl, self.clock = ttl, clock
        self._values: dict[Any, tuple[float, Any]] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] > self.clock():
                return hit[1]
            value = compute()
            self._values[key] = (self.clock() + self.ttl, value)
            return value


def _public(card: dict[str, Any]) -> dict[str, Any]:
    """The card without the private keys (``_...``) used to match readers to sinks."""
    shown = {k: v for k, v in card.items() if not k.startswith("_")}
    if isinstance(shown.get("sink"), dict):
        shown["sink"] = {k: v for k, v in shown["sink"].items() if not k.startswith("_")}
    return shown


def _commit_times(ref: StreamRef, versions: set[int], latest: int) -> dict[int, int]:
    from airflow_spark_streaming.hooks.delta import DeltaTableHook

    return DeltaTableHook(ref.sink_table, storage_conn_id=ref.storage_conn_id).commit_timestamps(
        versions, latest=latest
    )


class StreamReader:
    """Cards and histories of queries, cached per query.

    :param ttl: seconds a result is reused.
    :param kafka_timeout: seconds each broker request may take.
    :param clock: the cache's clock (monotonic seconds).
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        kafka_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kafka_timeout = kafka_timeout
        self._cache = _Cache(ttl, clock)

    def cards(self, refs: list[StreamRef]) -> list[dict[str, Any]]:
        """The cards of ``refs``, in their order, read ``READERS`` at a time; each sink table lists the
        queries among ``refs`` that read it."""
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="streams-page") as pool:
            found = list(pool.map(self._card, refs))
        self._place_readers(refs, found)
        return [_public(card) for card in found]

    def card(self, ref: StreamRef, *, among: list[StreamRef] | None = None) -> dict[str, Any]:
        """One query's card; its sink's readers are looked for among ``among`` (the queries the user may see)."""
        pool = [r for r in among or [] if r.stream_id != ref.stream_id]
        return self.cards([ref, *pool])[0]

    def _card(self, ref: StreamRef) -> dict[str, Any]:
        base = {
            "stream_id": ref.stream_id,
            "query_name": ref.query_name,
            "checkpoint": shown_location(ref.checkpoint) if ref.checkpoint else None,
            "unresolved": ref.checkpoint is None,
            "template": ref.template,
            "sink_table": shown_location(ref.sink_table) if ref.sink_table else None,
        }
        if ref.checkpoint is None:
            return {**base, "status": None, "reason": "the location is templated and no run has rendered it yet"}
        key = ("card", ref.checkpoint, ref.storage_conn_id, ref.kafka_config_id, ref.sink_table)
        return {**base, **self._cache.get(key, lambda: self._read_card(ref))}

    def history(self, ref: StreamRef) -> dict[str, Any]:
        """The retained progress events as chart series and the last batches."""
        if ref.checkpoint is None:
            return {"batches": [], "partitions": [], "series": {}, "last_batches": []}
        key = ("history", ref.checkpoint, ref.storage_conn_id)
        return self._cache.get(key, lambda: self._read_history(ref))

    def _read_card(self, ref: StreamRef) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
        from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

        card: dict[str, Any] = {"errors": [], "read_at": time.time()}
        hook = CheckpointHook(ref.checkpoint, storage_conn_id=ref.storage_conn_id)
        try:
            status = hook.get_status(include_state=False)
        except Exception as err:  # a card shows what failed; the page goes on with the others
            card["errors"].append(_error("checkpoint", err))
            return {**card, "status": None, "reason": card["errors"][0]["message"]}
        kafka = any(s.kind == "kafka" for s in status.committed_sources or status.planned_sources)
        # Where it reads Delta tables, as a restart would resume: matched to other cards' sinks, never shown.
        card["_delta_sources"] = [s for s in status.committed_sources or status.planned_sources if s.kind == "delta"]
        card.update(
            query_id=status.query_id,
            latest_planned_batch=status.latest_planned_batch,
            latest_committed_batch=status.latest_committed_batch,
            last_commit_time=status.last_commit_time,
            last_commit_age_seconds=time.time() - status.last_commit_time if status.last_commit_time else None,
            kafka=kafka,
        )
        control = hook.sibling(RunnerControlHook)
        try:
            lease = control.get_lease()
            card["lease"] = (
                None
                if lease is None
                else {
                    "holder": lease.app_id,
                    "host": lease.host,
                    "heartbeat_age_seconds": lease.heartbeat_age_seconds,
                    "ttl_seconds": lease.ttl_seconds,
                }  # fmt: skip
            )
        except Exception as err:
            card["lease"] = None
            card["errors"].append(_error("lease", err))
        card["last_batch"] = None
        if status.latest_committed_batch is not None:
            try:
                events = control.get_progress(after_batch=status.latest_committed_batch - 1)
                card["last_batch"] = batch_row(events[-1]) if events else None
            except Exception as err:
                card["errors"].append(_error("progress", err))
        card.update(self._status(ref, kafka, card))
        card["sink"] = self._sink(ref, card) if ref.sink_table else None
        return card

    def _status(self, ref: StreamRef, kafka: bool, card: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {"status": None, "reason": None, "lag": None}
        if not kafka:
            running = card.get("lease") is not None
            found["status"] = "OK" if running else "STOPPED"
            found["reason"] = (
                "the runner holds the lease (no Kafka source: no lag to judge)"
                if running
                else "no live lease on the checkpoint"
            )
            return found
        from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook
        from airflow_spark_streaming.hooks.stream_health import StreamHealthHook

        try:
            health = StreamHealthHook(ref.kafka_config_id, timeout=self.kafka_timeout).get_health(
                ref.checkpoint, storage_conn_id=ref.storage_conn_id
            )
            found["status"], found["reason"] = health.status, health.reason
        except Exception as err:
            card["errors"].append(_error("health", err))
            found["reason"] = card["errors"][-1]["message"]
        try:
            report = KafkaLagHook(ref.kafka_config_id, timeout=self.kafka_timeout).get_lag(
                ref.checkpoint, storage_conn_id=ref.storage_conn_id, time_lag=True
            )
            found["lag"] = {
                "total": report.total_lag,
                "max_partition": report.max_lag,
                "time_lag_seconds": report.max_time_lag_seconds,
                "retention_headroom_seconds": report.min_retention_headroom_seconds,
                "partitions": [
                    {
                        "partition": f"{p.topic}:{p.partition}",
                        "lag": p.lag,
                        "time_lag_seconds": p.time_lag_seconds,
                        "headroom_seconds": p.headroom_seconds,
                    }  # fmt: skip
                    for p in report.partitions
                ],
            }
        except Exception as err:
            card["errors"].append(_error("lag", err))
        return found

    def _sink(self, ref: StreamRef, card: dict[str, Any]) -> dict[str, Any] | None:
        from airflow_spark_streaming.hooks.delta import DeltaTableHook

        try:
            stats = DeltaTableHook(ref.sink_table, storage_conn_id=ref.storage_conn_id).get_stats(history=50)
        except Exception as err:
            card["errors"].append(_error("sink", err))
            return None
        return {
            "version": stats.version,
            "files": stats.num_files,
            "small_files": stats.small_files,
            "small_file_share": stats.small_file_share,
            "small_file_bytes": stats.small_file_bytes,
            "readers": [],
            "_table_id": stats.table_id,
        }

    def _place_readers(self, refs: list[StreamRef], cards: list[dict[str, Any]]) -> None:
        """Fill each sink's ``readers``: the other queries whose Delta source reads that table, with the version
        each reads next and how far behind the table that is, in versions and in time (its commit's age)."""
        from airflow_spark_streaming.conditions.reader_retention import next_version_to_read

        sinks = {}
        for card in cards:  # cached cards are shared between requests: fill copies
            if isinstance(card.get("sink"), dict):
                card["sink"] = {**card["sink"], "readers": []}
        for ref, card in zip(refs, cards, strict=True):
            table_id = (card.get("sink") or {}).get("_table_id")
            if table_id:
                sinks.setdefault(table_id, []).append((ref, card["sink"]))
        for ref, card in zip(refs, cards, strict=True):
            sources = card.get("_delta_sources") or []
            for table_id in {s.reservoir_id for s in sources}:
                for sink_ref, sink in sinks.get(table_id, []):
                    if sink_ref.stream_id == ref.stream_id:
                        continue
                    version = next_version_to_read(sources, table_id, ref.query_name or ref.stream_id)
                    sink["readers"].append({
                        "stream_id": ref.stream_id, "query_name": ref.query_name, "next_version": version,
                        "lag_versions": max(0, sink["version"] - version + 1), "lag_seconds": None,
                    })  # fmt: skip
        for ref, card in zip(refs, cards, strict=True):
            sink = card.get("sink") or {}
            behind = {r["next_version"] for r in sink.get("readers", []) if r["lag_versions"]}
            if not behind:
                continue
            try:
                stamps = self._cache.get(
                    ("commits", ref.sink_table, frozenset(behind), sink["version"]),
                    lambda ref=ref, behind=behind, latest=sink["version"]: _commit_times(ref, behind, latest),
                )
            except Exception as err:  # noqa: BLE001 - the card says what failed
                card["errors"] = [*card.get("errors", []), _error("readers", err)]
                continue
            now = time.time()
            for reader in sink["readers"]:
                stamp = stamps.get(reader["next_version"])
                reader["lag_seconds"] = max(0.0, now - stamp / 1000) if stamp is not None else None

    def _read_history(self, ref: StreamRef) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

        try:
            events = RunnerControlHook(ref.checkpoint, ref.storage_conn_id).get_progress()
        except Exception as err:
            return {
                "batches": [],
                "partitions": [],
                "series": {},
                "last_batches": [],
                "errors": [_error("progress", err)],
            }
        rows = [batch_row(e) for e in events if isinstance(e, dict)]
        lags = [_partition_lag(e) for e in events if isinstance(e, dict)]
        partitions = sorted({name for lag in lags for name in lag})
        series: dict[str, list] = {
            "time": [r["time"] for r in rows],
            "batch_id": [r["batch_id"] for r in rows],
            "input_rows_per_second": [r["input_rows_per_second"] for r in rows],
            "processed_rows_per_second": [r["processed_rows_per_second"] for r in rows],
            "state_rows": [r["state_rows"] for r in rows],
            "state_memory_bytes": [r["state_memory_bytes"] for r in rows],
        }
        for phase in PHASES:
            series[f"phase_{phase}"] = [r["phases_ms"][phase] for r in rows]
        for name in partitions:
            series[f"lag {name}"] = [lag.get(name) for lag in lags]
        return {
            "batches": len(rows),
            "partitions": partitions,
            "stateful": any(r["state_rows"] is not None for r in rows),
            "series": series,
            "last_batches": rows[-LAST_BATCHES:][::-1],
            "read_at": time.time(),
        }
