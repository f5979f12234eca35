"""Consumer lag of a Structured Streaming query: the broker's latest offsets minus the checkpoint's.

Spark's Kafka source commits no offsets to a consumer group, so lag tools that
read consumer groups cannot see a Spark stream. This hook reads the offsets
from the query's checkpoint (through :class:`CheckpointHook`) and asks the
brokers, through the Kafka provider's ``kafka`` connection, for the latest and
earliest offsets of every partition in three batched requests.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import (
    KafkaBrokerUnreachableError,
    KafkaConfigError,
    KafkaLagError,
    KafkaTopicDeletedError,
    NoKafkaSourceError,
    SparkStreamingError,
)
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.verdict import Verdict

BASES = ("committed", "planned")


@dataclass
class PartitionLag:
    """Lag of one topic-partition.

    ``lag`` counts the records the query can still read:
    ``latest - max(checkpoint offset, earliest)``. A partition the checkpoint has
    not seen yet (``new``) counts from its earliest offset. ``lost`` counts the
    records deleted (by retention or delete-records) before the query read them.
    """

    topic: str
    partition: int
    checkpoint_offset: int | None
    earliest_offset: int
    latest_offset: int
    lag: int
    lost: int = 0
    new: bool = False


@dataclass
class LagReport:
    """The lag of every Kafka partition a streaming query reads. JSON-serialisable."""

    checkpoint: str
    query_id: str
    basis: str
    batch_id: int | None
    partitions: list[PartitionLag]
    total_lag: int
    max_lag: int
    new_partitions: list[str]
    deleted_partitions: list[str]
    deleted_topics: list[str]
    data_loss_partitions: list[str]
    round_trips: int
    measured_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LagReport:
        return cls(**{**data, "partitions": [PartitionLag(**p) for p in data["partitions"]]})

    def lag_of(self, topic: str, partition: int) -> int:
        for p in self.partitions:
            if (p.topic, p.partition) == (topic, partition):
                return p.lag
        raise KeyError(f"{topic}:{partition}")


def _name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class KafkaLagHook(BaseHook):
    """Compute the Kafka lag of a Structured Streaming query from its checkpoint.

    The broker connection is the Kafka provider's ``kafka`` connection type:
    its extra is the confluent-kafka client config, so SASL, SSL, MSK IAM and
    Google Managed Kafka work as configured there.

    :param kafka_config_id: the ``kafka`` connection (default ``kafka_default``).
    :param timeout: seconds each broker request may take before the hook
        gives up with :class:`KafkaBrokerUnreachableError`.
    """

    conn_name_attr = "kafka_config_id"
    default_conn_name = "kafka_default"
    conn_type = "kafka"
    hook_name = "Kafka lag of a Structured Streaming query"

    def __init__(self, kafka_config_id: str = default_conn_name, *, timeout: float = 15.0) -> None:
        super().__init__()
        if timeout <= 0:
            raise KafkaLagError(f"KafkaLagHook timeout must be positive, got {timeout!r}.")
        self.kafka_config_id = kafka_config_id
        self.timeout = float(timeout)
        self._admin = None

    @property
    def admin(self):
        """The Kafka provider's AdminClient for this connection, built once."""
        if self._admin is None:
            from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
            from confluent_kafka import KafkaException

            try:
                self._admin = KafkaBaseHook(kafka_config_id=self.kafka_config_id).get_conn
            except (KafkaException, ValueError, TypeError) as err:
                raise KafkaConfigError(
                    f"Kafka connection {self.kafka_config_id!r} has an invalid client config: {err}. "
                    "Fix the connection's extra (confluent-kafka / librdkafka property names)."
                ) from err
        return self._admin

    def _result(self, future, what: str):
        from confluent_kafka import KafkaError, KafkaException

        try:
            return future.result(timeout=self.timeout + 5)
        except KafkaException as err:
            error = err.args[0] if err.args else None
            if isinstance(error, KafkaError) and error.code() in (
                KafkaError._TIMED_OUT,
                KafkaError._TRANSPORT,
                KafkaError._ALL_BROKERS_DOWN,
                KafkaError.REQUEST_TIMED_OUT,
            ):
                raise self._unreachable(what, error) from err
            raise
        except TimeoutError as err:
            raise self._unreachable(what, err) from err

    def _unreachable(self, what: str, cause: Any) -> KafkaBrokerUnreachableError:
        return KafkaBrokerUnreachableError(
            f"The brokers of Kafka connection {self.kafka_config_id!r} did not answer {what} within "
            f"{self.timeout:.0f}s ({cause}); check bootstrap.servers, the network and the security settings."
        )

    def get_lag(self, checkpoint: str, *, checkpoint_conn_id: str | None = None, basis: str = "committed") -> LagReport:
        """Lag of every Kafka partition the query reads.

        :param checkpoint: the query's checkpoint location (path or URI).
        :param checkpoint_conn_id: the storage connection of the checkpoint.
        :param basis: ``committed`` counts from the last committed batch (what
            the sink has durably written); ``planned`` from the newest planned
            batch (what the query has started to read).
        """
        if basis not in BASES:
            raise KafkaLagError(f"basis must be one of {BASES}, got {basis!r}.")
        status = CheckpointHook(checkpoint, conn_id=checkpoint_conn_id).get_status(include_state=False)
        sources = status.committed_sources if basis == "committed" else status.planned_sources
        batch_id = status.latest_committed_batch if basis == "committed" else status.latest_planned_batch
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
        return self._measure(status.checkpoint, status.query_id, basis, batch_id, topics, checkpoint_offsets)

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
                description = self._result(future, f"a metadata request for topic {topic!r}")
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
                return {(tp.topic, tp.partition): self._result(f, what).offset for tp, f in answers.items()}
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


def get_kafka_lag(
    checkpoint: str,
    *,
    kafka_config_id: str = "kafka_default",
    checkpoint_conn_id: str | None = None,
    basis: str = "committed",
    timeout: float = 15.0,
) -> dict[str, Any]:
    """The :class:`LagReport` of a streaming query as a dict, for use in a ``@task``.

    .. code-block:: python

        @task
        def lag():
            return get_kafka_lag("s3://lake/_checkpoints/orders", checkpoint_conn_id="aws_default")
    """
    hook = KafkaLagHook(kafka_config_id, timeout=timeout)
    return hook.get_lag(checkpoint, checkpoint_conn_id=checkpoint_conn_id, basis=basis).to_dict()


# --- lag thresholds: one evaluation shared by the sensor's poke and its trigger ----------------


@dataclass
class LagCriteria:
    """When lag is low enough, and when it has been too high for too long.

    :param max_total_lag: met when the total lag is at or below this.
    :param max_partition_lag: met when every partition's lag is at or below this.
    :param ceiling: alert threshold on the total lag.
    :param ceiling_seconds: fail when the total lag stays above ``ceiling``
        for longer than this.
    :param basis: ``committed`` or ``planned`` (see :meth:`KafkaLagHook.get_lag`).
    """

    max_total_lag: int | None = None
    max_partition_lag: int | None = None
    ceiling: int | None = None
    ceiling_seconds: float | None = None
    basis: str = "committed"

    def __post_init__(self) -> None:
        if self.max_total_lag is None and self.max_partition_lag is None and self.ceiling is None:
            raise KafkaLagError(
                "Give max_total_lag, max_partition_lag or a ceiling: otherwise there is nothing to wait for."
            )
        for name in ("max_total_lag", "max_partition_lag", "ceiling", "ceiling_seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise KafkaLagError(f"{name} must be zero or more, got {value!r}.")
        if (self.ceiling is None) != (self.ceiling_seconds is None):
            raise KafkaLagError(
                "ceiling and ceiling_seconds go together: set both to alert on sustained lag, or neither."
            )
        if self.basis not in BASES:
            raise KafkaLagError(f"basis must be one of {BASES}, got {self.basis!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_lag(
    report: LagReport, criteria: LagCriteria, above_since: float | None, now: float | None = None
) -> tuple[Verdict, float | None]:
    """Decide on one report (pure). Returns the verdict and when the lag went over the ceiling."""
    now = time.time() if now is None else now
    total, worst = report.total_lag, report.max_lag
    summary = f"total lag {total:,}, max partition lag {worst:,} over {len(report.partitions)} partitions"
    if criteria.ceiling is not None and total > criteria.ceiling:
        above_since = above_since if above_since is not None else now
        if now - above_since > criteria.ceiling_seconds:
            return (
                Verdict(
                    "alert",
                    f"{report.checkpoint}: {summary}; above the ceiling {criteria.ceiling:,} for "
                    f"{now - above_since:.0f}s, longer than {criteria.ceiling_seconds:.0f}s.",
                    report.to_dict(),
                ),
                above_since,
            )
    else:
        above_since = None
    thresholds = [
        (criteria.max_total_lag, total, "total"),
        (criteria.max_partition_lag, worst, "max partition"),
    ]
    unmet = [
        f"{what} lag {value:,} > {limit:,}" for limit, value, what in thresholds if limit is not None and value > limit
    ]
    if criteria.max_total_lag is None and criteria.max_partition_lag is None:
        unmet.append("alert-only wait")  # only a ceiling: keep watching until the alert or the timeout
    if unmet:
        return Verdict("waiting", f"{report.checkpoint}: {summary}; {'; '.join(unmet)}", report.to_dict()), above_since
    return Verdict("met", f"{report.checkpoint}: {summary}", report.to_dict()), above_since


def check_lag(
    checkpoint: str,
    criteria: LagCriteria,
    *,
    kafka_config_id: str = "kafka_default",
    checkpoint_conn_id: str | None = None,
    timeout: float = 15.0,
    above_since: float | None = None,
) -> tuple[Verdict, float | None]:
    """Measure and evaluate; project errors come back as an ``error`` verdict. Blocking."""
    try:
        report = KafkaLagHook(kafka_config_id, timeout=timeout).get_lag(
            checkpoint, checkpoint_conn_id=checkpoint_conn_id, basis=criteria.basis
        )
    except SparkStreamingError as err:
        return Verdict.from_error(err), above_since
    return evaluate_lag(report, criteria, above_since)
