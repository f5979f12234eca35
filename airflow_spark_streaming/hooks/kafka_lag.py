"""Consumer lag of a Structured Streaming query: the broker's latest offsets minus the checkpoint's.

Spark's Kafka source commits no offsets to a consumer group, so lag tools that
read consumer groups cannot see a Spark stream. This hook reads the offsets
from the query's checkpoint (through :class:`CheckpointHook`) and asks the
brokers, through the Kafka provider's ``kafka`` connection, for the latest and
earliest offsets of every partition in three batched requests.
"""

from __future__ import annotations

from typing import Any

from airflow_spark_streaming.checkpoint.models import BATCH_BASES as BASES
from airflow_spark_streaming.exceptions import (
    KafkaAuthorizationError,
    KafkaLagError,
    KafkaTopicDeletedError,
    NoKafkaSourceError,
)
from airflow_spark_streaming.hooks._kafka_client import KafkaClientHook
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.kafka.models import LagReport, PartitionLag  # their home; importable from here too
from airflow_spark_streaming.utils.deprecation import renamed_parameter


def _name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class KafkaLagHook(KafkaClientHook):
    """Compute the Kafka lag of a Structured Streaming query from its checkpoint.

    The broker connection is the Kafka provider's ``kafka`` connection type:
    its extra is the confluent-kafka client config, so SASL, SSL, MSK IAM and
    Google Managed Kafka work as configured there.

    :param kafka_config_id: the ``kafka`` connection (default ``kafka_default``).
    :param timeout: seconds each broker request may take before the hook
        gives up with :class:`~airflow_spark_streaming.exceptions.KafkaBrokerUnreachableError`.
        A broker that refuses the login or the TLS handshake fails sooner, as soon as the client
        reports it, with :class:`~airflow_spark_streaming.exceptions.KafkaAuthenticationError` or
        :class:`~airflow_spark_streaming.exceptions.KafkaTlsHandshakeError`.
    """

    hook_name = "Kafka lag of a Structured Streaming query"

    def get_lag(
        self,
        checkpoint: str,
        *,
        storage_conn_id: str | None = None,
        basis: str = "committed",
        checkpoint_conn_id: str | None = None,
        time_lag: bool = False,
        liveness: bool = False,
    ) -> LagReport:
        """Lag of every Kafka partition the query reads.

        :param checkpoint: the query's checkpoint location (path or URI).
        :param storage_conn_id: the storage connection of the checkpoint
            (``checkpoint_conn_id`` is its deprecated old name).
        :param basis: ``committed`` counts from the last committed batch (what
            the sink has durably written); ``planned`` from the newest planned
            batch (what the query has started to read).
        :param time_lag: also measure each partition's time lag and retention
            headroom (:meth:`KafkaBrokerHook.get_time_lag`: one more fetch and
            one describe-configs request, sent together).
        :param liveness: also say whether the query runs now (``query_running``:
            its runner's lease, one more read next to the checkpoint).
        """
        storage_conn_id = renamed_parameter(
            "KafkaLagHook.get_lag", "checkpoint_conn_id", "storage_conn_id", checkpoint_conn_id, storage_conn_id
        )
        if basis not in BASES:
            raise KafkaLagError(f"basis must be one of {BASES}, got {basis!r}.")
        status = CheckpointHook(checkpoint, storage_conn_id).get_status(include_state=False)
        batch_id, sources = status.sources_at(basis)
        kafka_sources = [s for s in sources if s.kind == "kafka"]
        if not kafka_sources:
            kinds = sorted({s.kind for s in sources}) or ["none yet"]
            raise NoKafkaSourceError(
                f"Checkpoint {status.checkpoint} has no Kafka source offsets in its {basis} batch {batch_id} "
                f"(its sources: {', '.join(kinds)}); Kafka lag needs a query that reads Kafka and has "
                f"{basis} at least one batch."
            )
        checkpoint_offsets: dict[tuple[str, int], int] = {}
        for source in kafka_sources:
            checkpoint_offsets.update(source.kafka_partitions())
        topics = sorted({topic for topic, _ in checkpoint_offsets})
        report = self._measure(status.checkpoint, status.query_id, basis, batch_id, topics, checkpoint_offsets)
        if time_lag:
            self._add_time_lag(report)
        if liveness:
            from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

            report.query_running = RunnerControlHook(checkpoint, storage_conn_id).query_running()
        return report

    def _add_time_lag(self, report: LagReport) -> None:
        from airflow_spark_streaming.hooks.kafka_broker import KafkaBrokerHook

        broker = self.sibling(KafkaBrokerHook)  # one AdminClient for both hooks: no second connection to the brokers
        measured = broker.get_time_lag(report.partitions)
        by_key = {(p.topic, p.partition): p for p in measured.partitions}
        for p in report.partitions:
            row = by_key.get((p.topic, p.partition))
            if row is None:
                continue
            p.time_lag_seconds, p.record_timestamp_ms = row.time_lag_seconds, row.record_timestamp_ms
            p.timestamp_type, p.headroom_seconds = row.timestamp_type, row.headroom_seconds
            p.retention_kind = row.retention_kind
        report.max_time_lag_seconds = measured.max_time_lag_seconds
        report.min_retention_headroom_seconds = measured.min_headroom_seconds
        report.unbounded_partitions = measured.unbounded_partitions
        report.size_bound_partitions = measured.size_bound_partitions
        report.unknown_time_lag_partitions = measured.unknown_partitions
        report.round_trips += 1  # the fetch; describe-configs is answered while it runs

    def _measure(self, checkpoint, query_id, basis, batch_id, topics, checkpoint_offsets) -> LagReport:
        from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        admin = self.admin
        round_trips = 1
        on_broker: dict[tuple[str, int], None] = {}
        deleted_topics = []
        descriptions = admin.describe_topics(TopicCollection(topics), request_timeout=self.timeout)
        for topic, future in descriptions.items():
            try:
                description = self.wait(future, f"a metadata request for topic {topic!r}")
            except KafkaAuthorizationError:
                self.refuse_denied_describe({topic}, "describing its partitions for the lag")
                raise
            except KafkaException as err:
                error = err.args[0] if err.args else None
                if isinstance(error, KafkaError) and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    deleted_topics.append(topic)
                    continue
                raise KafkaLagError(f"Describing topic {topic!r} failed: {err}") from err
            for info in description.partitions:
                on_broker[(topic, info.id)] = None
        if len(deleted_topics) == len(topics):
            raise KafkaTopicDeletedError(
                f"Checkpoint {checkpoint} reads {', '.join(topics)}, but no such topic exists on the brokers of "
                f"connection {self.kafka_config_id!r}; the topic was deleted or the connection points at "
                "another cluster."
            )

        def offsets(spec, what: str) -> dict[tuple[str, int], int]:
            request = {TopicPartition(t, p): spec for t, p in on_broker}
            answers = admin.list_offsets(request, request_timeout=self.timeout)
            try:
                return {(tp.topic, tp.partition): self.wait(f, what).offset for tp, f in answers.items()}
            except KafkaException as err:
                raise KafkaLagError(f"{what.capitalize()} of {', '.join(topics)} failed: {err}") from err

        latest = offsets(OffsetSpec.latest(), "a request for the latest offsets")
        earliest = offsets(OffsetSpec.earliest(), "a request for the earliest offsets")
        round_trips += 2

        partitions = []
        for topic, partition in sorted(on_broker):
            committed = checkpoint_offsets.get((topic, partition))
            first, last = earliest[(topic, partition)], latest[(topic, partition)]
            start = first if committed is None else max(committed, first)
            partitions.append(
                PartitionLag(
                    topic=topic,
                    partition=partition,
                    checkpoint_offset=committed,
                    earliest_offset=first,
                    latest_offset=last,
                    lag=max(0, last - start),
                    lost=0 if committed is None else max(0, first - committed),
                    new=committed is None,
                )
            )
        lags = [p.lag for p in partitions]
        return LagReport(
            checkpoint=checkpoint,
            query_id=query_id,
            basis=basis,
            batch_id=batch_id,
            partitions=partitions,
            total_lag=sum(lags),
            max_lag=max(lags, default=0),
            new_partitions=[_name(p.topic, p.partition) for p in partitions if p.new],
            deleted_partitions=[_name(t, p) for t, p in sorted(checkpoint_offsets) if (t, p) not in on_broker],
            deleted_topics=sorted(deleted_topics),
            data_loss_partitions=[_name(p.topic, p.partition) for p in partitions if p.lost],
            round_trips=round_trips,
        )


def get_kafka_lag_report(
    checkpoint: str,
    *,
    kafka_config_id: str = "kafka_default",
    storage_conn_id: str | None = None,
    basis: str = "committed",
    timeout: float = 15.0,
    time_lag: bool = False,
) -> LagReport:
    """The :class:`LagReport` of a streaming query (see :meth:`KafkaLagHook.get_lag`)."""
    return KafkaLagHook(kafka_config_id, timeout=timeout).get_lag(
        checkpoint, storage_conn_id=storage_conn_id, basis=basis, time_lag=time_lag
    )


def get_kafka_lag(checkpoint: str, *, checkpoint_conn_id: str | None = None, **arguments: Any) -> dict[str, Any]:
    """The :class:`LagReport` of a streaming query in its XCom form, a JSON-serialisable dict, for a ``@task``.

    Takes the arguments of :func:`get_kafka_lag_report`, which returns the dataclass itself.
    ``checkpoint_conn_id`` is the deprecated old name of ``storage_conn_id``.

    .. code-block:: python

        @task
        def lag():
            return get_kafka_lag("s3://lake/_checkpoints/orders", storage_conn_id="aws_default")
    """
    arguments["storage_conn_id"] = renamed_parameter(
        "get_kafka_lag", "checkpoint_conn_id", "storage_conn_id", checkpoint_conn_id, arguments.get("storage_conn_id")
    )
    return get_kafka_lag_report(checkpoint, **arguments).to_dict()
