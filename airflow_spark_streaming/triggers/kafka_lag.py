"""Deferrable wait on the Kafka lag of a Structured Streaming query."""

from __future__ import annotations

from typing import Any

from airflow_spark_streaming.checks.lag import LagCheck
from airflow_spark_streaming.triggers._base import VerdictTrigger
from airflow_spark_streaming.utils.deprecation import renamed_parameter


class KafkaLagTrigger(VerdictTrigger):
    """Poll a query's Kafka lag until it is low enough, stays too high for too long, or cannot be measured.

    Holds a :class:`~airflow_spark_streaming.checks.lag.LagCheck`, the check the
    sensor's ``poke`` evaluates, and evaluates it in a worker thread so the
    triggerer's event loop never waits on Kafka or storage. Between checks the
    check moves ``above_since`` on; ``serialize`` carries the value the trigger
    started with. Yields exactly one event (the verdict, with the ``LagReport``), then returns.

    :param checkpoint: the query's checkpoint location.
    :param pipeline_spec: instead of ``checkpoint``, an SDP pipeline's ``spark-pipeline.yml`` (read in the triggerer).
    :param pipeline_storage: instead of ``checkpoint``, an SDP pipeline's storage root.
    :param flow: with a pipeline, the flow or table name whose checkpoint to read.
    :param criteria: a :class:`~airflow_spark_streaming.conditions.lag.LagCriteria` as a dict.
    :param kafka_config_id: the ``kafka`` connection.
    :param storage_conn_id: the checkpoint's storage connection, if any (``checkpoint_conn_id``
        is its deprecated old name, still read from triggers serialized by an older release).
    :param poll_interval: seconds between checks.
    :param timeout: seconds each broker request may take.
    :param above_since: when the lag went over the ceiling, if it already had (epoch seconds).
    """

    check_class = LagCheck

    def __init__(
        self,
        checkpoint: str | None = None,
        criteria: dict[str, Any] | None = None,
        kafka_config_id: str = "kafka_default",
        storage_conn_id: str | None = None,
        poll_interval: float = 60.0,
        timeout: float = 15.0,
        above_since: float | None = None,
        *,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
        checkpoint_conn_id: str | None = None,
    ) -> None:
        storage_conn_id = renamed_parameter(
            "KafkaLagTrigger", "checkpoint_conn_id", "storage_conn_id", checkpoint_conn_id, storage_conn_id
        )
        super().__init__(
            checkpoint=checkpoint, criteria=criteria, pipeline_spec=pipeline_spec, pipeline_storage=pipeline_storage,
            flow=flow, kafka_config_id=kafka_config_id, storage_conn_id=storage_conn_id,
            timeout=timeout, above_since=above_since, poll_interval=poll_interval,
        )  # fmt: skip
