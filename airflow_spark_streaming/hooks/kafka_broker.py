"""What the brokers know beyond offsets: the timestamp of a partition's next record, and each topic's retention.

Two batched requests, each one broker round trip in the common case:

* :meth:`KafkaBrokerHook.get_record_timestamps` assigns one consumer at the
  given offsets of every partition and reads the first record at or after
  each offset (``max.partition.fetch.bytes`` of 64 KiB: the first record
  batch of every partition comes back in one fetch). Given a
  checkpoint's offsets this is the oldest record the query has not processed.
* :meth:`KafkaBrokerHook.get_retention` reads ``retention.ms``,
  ``retention.bytes``, ``cleanup.policy`` and ``message.timestamp.type`` of
  a set of topics in one describe-configs request.

The consumer reads with ``isolation.level=read_committed``: records of
aborted transactions and transaction markers (control records) are skipped,
so the record found is the first one a committed reader processes. A
partition whose next record sits in a transaction still open has no visible
record before the last stable offset; it is reported as ``open_transaction``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_spark_streaming.exceptions import (
    KafkaBrokerUnreachableError,
    KafkaLagError,
    KafkaTopicDeletedError,
)
from airflow_spark_streaming.hooks._kafka_client import KafkaClientHook, topics_denied
from airflow_spark_streaming.kafka.models import (
    CREATE_TIME,
    FOUND,
    LOG_APPEND_TIME,
    NO_RECORD,
    NO_TIMESTAMP,
    OFFSET_BEYOND_END,
    OPEN_TRANSACTION,
    RESET_TO_EARLIEST,
    TIMED_OUT,
    RecordTimestamp,
    RecordTimestamps,
    TopicRetention,
    partition_name,
    retention_kind,
)

_POLL_SECONDS = 0.05
_PARTITION_FETCH_BYTES = 64 * 1024
# A fetch answers in milliseconds; a partition still silent after this may be one the principal may not even
# DESCRIBE, which librdkafka never reports to an assigned consumer: its topic's metadata says so.
_SILENT_TOPIC_CHECK_SECONDS = 0.5
_READING = "reading the first unprocessed record (time lag)"


class KafkaBrokerHook(KafkaClientHook):
    """Record timestamps and topic retention from the brokers of a Kafka provider ``kafka`` connection.

    :param kafka_config_id: the ``kafka`` connection (default ``kafka_default``);
        its extra is the confluent-kafka client config.
    :param timeout: seconds a request may take before
        :class:`KafkaBrokerUnreachableError`; also the deadline of a timestamp fetch. A principal
        the broker denies READ on a topic fails the fetch at once, with
        :class:`~airflow_spark_streaming.exceptions.KafkaAuthorizationError` naming the topic and the grant.
    """

    hook_name = "Kafka record timestamps and retention"

    # --- clients (the admin client is KafkaClientHook's) -------------------------------------

    def _consumer(self, partitions: int, stats: list[int | None] | None):
        """An assigned, never subscribed, ``read_committed`` consumer sized to fetch ``partitions`` in one go."""
        from confluent_kafka import Consumer

        def make(config: dict[str, Any]):
            config = {
                **config,
                # Never joins a group or commits: the consumer is assigned, not subscribed.
                "group.id": f"airflow-spark-streaming-peek-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",  # a deleted offset resumes at the earliest retained record
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
                # The broker returns a batch larger than the per-partition limit whole only for the first
                # partition of a response; in the others it would be cut, and librdkafka would fetch that
                # partition again. 64 KiB holds a typical first batch, so all partitions come in one fetch.
                "max.partition.fetch.bytes": _PARTITION_FETCH_BYTES,
                "fetch.max.bytes": min(max(partitions, 1) * _PARTITION_FETCH_BYTES, 50 * 1024 * 1024),
                "fetch.wait.max.ms": 10,
                "fetch.error.backoff.ms": 10,
            }
            # librdkafka wants fetch.max.bytes >= message.max.bytes (a producer limit, unused here).
            config["message.max.bytes"] = min(config["fetch.max.bytes"], 1_000_000)
            config["receive.message.max.bytes"] = max(
                int(config.get("receive.message.max.bytes", 0) or 0), config["fetch.max.bytes"] + 64 * 1024
            )
            if stats is not None:
                import json

                config["statistics.interval.ms"] = 100

                def keep_fetch_count(text: str) -> None:  # keep one number: statistics of many partitions are large
                    stats[:] = [_fetch_requests(json.loads(text))]

                config["stats_cb"] = keep_fetch_count
            return Consumer(config)

        return self.build_client(make)

    # --- record timestamps --------------------------------------------------------------------

    def get_record_timestamps(
        self,
        offsets: Mapping[tuple[str, int], int],
        *,
        earliest: Mapping[tuple[str, int], int] | None = None,
        latest: Mapping[tuple[str, int], int] | None = None,
        count_requests: bool = False,
    ) -> RecordTimestamps:
        """Timestamp of the first committed record at or after each offset, for all partitions at once.

        :param offsets: ``{(topic, partition): offset}``, for example a
            checkpoint's offsets of its lagging partitions.
        :param earliest: the earliest retained offsets, if the caller has them
            (a lag report does); an offset below them is read from the earliest
            and its loss reported. Without them, a deleted offset is found by
            the consumer's out-of-range reset, with the same outcome.
        :param count_requests: count the fetch requests from the client's
            statistics (for benchmarks; adds a few milliseconds after the fetch).
        """
        from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

        started = time.perf_counter()
        if not offsets:
            return RecordTimestamps([], "read_committed", 0.0, 0 if count_requests else None)
        earliest, latest = dict(earliest or {}), dict(latest or {})
        wanted = {}
        for (topic, partition), offset in offsets.items():
            start = max(offset, earliest.get((topic, partition), offset))
            wanted[(topic, partition)] = (int(offset), start)
        stats: list[int | None] | None = [] if count_requests else None
        begun = time.monotonic()
        consumer = self._consumer(len(wanted), stats)
        found: dict[tuple[str, int], RecordTimestamp] = {}
        try:
            consumer.assign(
                [
                    TopicPartition(t, p, start if start >= 0 else OFFSET_BEGINNING)
                    for (t, p), (_, start) in wanted.items()
                ]
            )
            deadline = time.monotonic() + self.timeout
            check_silent_at = time.monotonic() + _SILENT_TOPIC_CHECK_SECONDS
            while len(found) < len(wanted) and time.monotonic() < deadline:
                batch = consumer.consume(num_messages=max(len(wanted), 1), timeout=_POLL_SECONDS)
                refused = self.broker_errors.access_error()  # consume() served the consumer's error_cb
                if refused is not None:
                    raise refused
                for message in batch:
                    key = (message.topic(), message.partition())
                    error = message.error()
                    if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                        denied = [key[0]] if key[0] else [topic for topic, _ in wanted]
                        raise self.broker_errors.read_denied(denied, error, _READING)
                    if key not in wanted or key in found:
                        continue
                    requested, start = wanted[key]
                    if error is None:
                        found[key] = self._record(consumer, key, requested, message)
                        consumer.pause([TopicPartition(*key)])
                    elif error.code() == KafkaError._PARTITION_EOF:
                        found[key] = self._at_end(consumer, key, requested, message.offset(), latest.get(key))
                        consumer.pause([TopicPartition(*key)])
                    elif error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION):
                        raise KafkaTopicDeletedError(
                            f"{partition_name(*key)} does not exist on the brokers of connection "
                            f"{self.kafka_config_id!r}: {error.str()}."
                        )
                    elif (named := self.broker_errors.named(error)) is not None:
                        raise named
                    elif error.fatal():
                        raise KafkaLagError(f"Reading {partition_name(*key)} failed: {error.str()}")
                if check_silent_at is not None and time.monotonic() >= check_silent_at and len(found) < len(wanted):
                    check_silent_at = None
                    self._refuse_undescribable(consumer, {t for t, p in wanted if (t, p) not in found}, deadline)
            if count_requests:
                self._settle_stats(consumer, stats)
        finally:
            consumer.close()
        for key, (requested, start) in wanted.items():
            if key not in found:
                found[key] = RecordTimestamp(key[0], key[1], requested, TIMED_OUT)
            record = found[key]
            if start > requested and record.outcome == FOUND:  # the caller's earliest offset was above it
                record.outcome, record.lost = RESET_TO_EARLIEST, start - requested
        if found and all(r.outcome == TIMED_OUT for r in found.values()):
            reported = self.broker_errors.connectivity(begun)
            servers = self.broker_errors.bootstrap_servers
            raise KafkaBrokerUnreachableError(
                f"The brokers of Kafka connection {self.kafka_config_id!r} returned no record and no end of "
                f"partition for {len(found)} partitions within {self.timeout:g}s"
                f"{f' ({reported})' if reported else ''}; check bootstrap.servers{f' ({servers})' if servers else ''}, "
                "the network and the security settings (the principal needs READ on the topics)."
            )
        return RecordTimestamps(
            records=[found[key] for key in sorted(found)],
            isolation_level="read_committed",
            elapsed_seconds=round(time.perf_counter() - started, 6),
            fetch_requests=stats[-1] if stats else None,
        )

    def _refuse_undescribable(self, consumer, topics: set[str], deadline: float) -> None:
        """Raise :class:`KafkaAuthorizationError` if the broker denies the principal any of ``topics`` (their
        metadata says ``TOPIC_AUTHORIZATION_FAILED``): an assigned consumer would wait for them until the deadline.
        One metadata request per topic, made only when a partition stays silent."""
        denied, cause = topics_denied(consumer, topics, lambda: max(deadline - time.monotonic(), 0.1))
        if denied:
            raise self.broker_errors.read_denied(denied, cause, _READING)

    @staticmethod
    def _record(consumer, key: tuple[str, int], requested: int, message) -> RecordTimestamp:
        from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, TopicPartition

        kind, value = message.timestamp()
        kinds = {TIMESTAMP_CREATE_TIME: CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME: LOG_APPEND_TIME}
        offset = message.offset()
        # The fetch response carries the log start offset: below it, the asked records were deleted.
        low, high = consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
        outcome, lost = FOUND, 0
        if offset < requested:  # the partition ends below the offset; the consumer fell back to the earliest
            outcome = OFFSET_BEYOND_END
        elif low is not None and low > requested and offset >= low:
            outcome, lost = RESET_TO_EARLIEST, low - requested
        return RecordTimestamp(
            topic=key[0],
            partition=key[1],
            requested_offset=requested,
            outcome=outcome,
            offset=offset,
            timestamp_ms=value if kind in kinds else None,
            timestamp_type=kinds.get(kind, NO_TIMESTAMP),
            lost=lost,
            end_offset=high if high is not None and high >= 0 else None,
        )

    @staticmethod
    def _at_end(consumer, key, requested: int, eof_offset: int, latest: int | None) -> RecordTimestamp:
        from confluent_kafka import TopicPartition

        low, high = consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
        # read_committed stops at the last stable offset: records above it belong to an open transaction.
        outcome = NO_RECORD
        if eof_offset < requested:
            outcome = OFFSET_BEYOND_END
        elif latest is not None and eof_offset < latest:
            outcome = OPEN_TRANSACTION
        return RecordTimestamp(
            topic=key[0], partition=key[1], requested_offset=requested, outcome=outcome,
            lost=max(0, low - requested) if low is not None and low >= 0 else 0, end_offset=eof_offset,
        )  # fmt: skip

    def get_latest_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The latest offset (high watermark) of each partition, in one list-offsets request."""
        from confluent_kafka import KafkaException, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        request = {TopicPartition(t, p): OffsetSpec.latest() for t, p in sorted(set(partitions))}
        if not request:
            return {}
        answers = self.admin.list_offsets(request, request_timeout=self.timeout)
        latest = {}
        for tp, future in answers.items():
            what = f"a request for the latest offset of {partition_name(tp.topic, tp.partition)}"
            try:
                latest[(tp.topic, tp.partition)] = self.wait(future, what).offset
            except KafkaException as err:
                self.refuse_denied_describe({t.topic for t in request}, "listing the latest offsets")
                raise KafkaLagError(
                    f"Listing the latest offset of {partition_name(tp.topic, tp.partition)} failed: {err}"
                ) from err
        return latest

    # --- both, for a lag report ---------------------------------------------------------------

    def get_time_lag(self, partitions: Iterable[Any], *, retention: bool = True, now: float | None = None):
        """Time lag and retention headroom of a lag report's partitions (``PartitionLag`` objects).

        Reads the first unprocessed record of every lagging partition in one
        fetch; the describe-configs request for retention is sent first and
        answered while the fetch runs, so both cost about one round trip.
        Returns a :class:`~airflow_spark_streaming.kafka.time_lag.TimeLagReport`.
        """
        from airflow_spark_streaming.kafka.time_lag import assess_time_lag

        partitions = list(partitions)
        lagging = [p for p in partitions if p.lag > 0]
        topics = sorted({p.topic for p in lagging})
        pending = None
        if retention and topics:
            from confluent_kafka.admin import ConfigResource, ResourceType

            pending = self.admin.describe_configs(
                [ConfigResource(ResourceType.TOPIC, t) for t in topics], request_timeout=self.timeout
            )
        records = self.get_record_timestamps(
            {(p.topic, p.partition): p.earliest_offset if p.checkpoint_offset is None else p.checkpoint_offset
             for p in lagging},
            earliest={(p.topic, p.partition): p.earliest_offset for p in lagging},
            latest={(p.topic, p.partition): p.latest_offset for p in lagging},
        )  # fmt: skip
        policies = self._collect_retention(pending) if pending is not None else {}
        return assess_time_lag(partitions, records.records, policies, time.time() if now is None else now)

    # --- retention ----------------------------------------------------------------------------

    def get_retention(self, topics: Iterable[str]) -> dict[str, TopicRetention]:
        """``retention.ms``, ``retention.bytes``, ``cleanup.policy`` of every topic, in one describe-configs call."""
        from confluent_kafka.admin import ConfigResource, ResourceType

        topics = sorted(set(topics))
        if not topics:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, topic) for topic in topics]
        return self._collect_retention(self.admin.describe_configs(resources, request_timeout=self.timeout))

    def _collect_retention(self, futures) -> dict[str, TopicRetention]:
        from confluent_kafka import KafkaError, KafkaException

        retention = {}
        for resource, future in futures.items():
            try:
                entries = self.wait(future, f"a request for the configs of topic {resource.name!r}")
            except KafkaException as err:
                error = err.args[0] if err.args else None
                code = error.code() if isinstance(error, KafkaError) else None
                if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaTopicDeletedError(
                        f"Topic {resource.name!r} does not exist on the brokers of connection "
                        f"{self.kafka_config_id!r}; it was deleted or the connection points at another cluster."
                    ) from err
                raise KafkaLagError(f"Describing the configs of topic {resource.name!r} failed: {err}") from err
            retention[resource.name] = _retention(resource.name, {name: e.value for name, e in entries.items()})
        return dict(sorted(retention.items()))

    @staticmethod
    def _settle_stats(consumer, stats: list[int | None]) -> None:
        stats.clear()
        deadline = time.monotonic() + 2.0
        while not stats and time.monotonic() < deadline:
            consumer.poll(0.02)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retention(topic: str, config: Mapping[str, str | None]) -> TopicRetention:
    policy = [p.strip() for p in (config.get("cleanup.policy") or "delete").split(",") if p.strip()]
    retention_ms, retention_bytes = _int(config.get("retention.ms")), _int(config.get("retention.bytes"))
    return TopicRetention(
        topic=topic,
        retention_ms=retention_ms,
        retention_bytes=retention_bytes,
        cleanup_policy=policy,
        message_timestamp_type=config.get("message.timestamp.type"),
        kind=retention_kind(retention_ms, retention_bytes, policy),
    )


def _fetch_requests(stats: dict[str, Any]) -> int:
    brokers = stats.get("brokers", {})
    return sum((b.get("req") or {}).get("Fetch", 0) for b in brokers.values() if b.get("nodeid", -1) >= 0)
