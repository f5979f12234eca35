"""Deferrable wait on the Kafka lag of a Structured Streaming query."""

from __future__ import annotations

from typing import Any

from airflow_spark_streaming.exceptions import InvalidParameterError, KafkaLagError
from airflow_spark_streaming.triggers._base import KafkaCheckpointTrigger
from airflow_spark_streaming.utils import params
from airflow_spark_streaming.utils.deprecation import renamed_parameter


class KafkaLagTrigger(KafkaCheckpointTrigger):
    """Poll a query's Kafka lag until it is low enough, stays too high for too long, or cannot be measured.

    Each check is :func:`~airflow_spark_streaming.checks.check_lag`, the
    same function the sensor's ``poke`` calls, run in a worker thread so the
    triggerer's event loop never waits on Kafka or storage. Yields exactly one
    event (the verdict, with the ``LagReport``), then returns.

    :param checkpoint: the query's checkpoint location.
    :param criteria: a :class:`~airflow_spark_streaming.conditions.lag.LagCriteria` as a dict.
    :param kafka_config_id: the ``kafka`` connection.
    :param storage_conn_id: the checkpoint's storage connection, if any (``checkpoint_conn_id``
        is its deprecated old name, still read from triggers serialized by an older release).
    :param poll_interval: seconds between checks.
    :param timeout: seconds each broker request may take.
    :param above_since: when the lag went over the ceiling, if it already had (epoch seconds).
    """

    error_class = KafkaLagError
    check_name = "check_lag"
    carried = "above_since"

    def __init__(
        self,
        checkpoint: str,
        criteria: dict[str, Any],
        kafka_config_id: str = "kafka_default",
        storage_conn_id: str | None = None,
        poll_interval: float = 60.0,
        timeout: float = 15.0,
        above_since: float | None = None,
        *,
        checkpoint_conn_id: str | None = None,
    ) -> None:
        storage_conn_id = renamed_parameter(
            "KafkaLagTrigger", "checkpoint_conn_id", "storage_conn_id", checkpoint_conn_id, storage_conn_id
        )
        super().__init__(checkpoint, criteria, kafka_config_id, storage_conn_id, poll_interval, timeout)
        self._start_from(above_since)

    def _criteria_class(self) -> type:
        from airflow_spark_streaming.conditions.lag import LagCriteria

        return LagCriteria

    def _checked_criteria(self, criteria: dict[str, Any]) -> dict[str, Any]:
        owner = type(self).__name__
        for name in ("max_total_lag", "max_partition_lag", "ceiling"):
            if name in criteria:
                criteria[name] = params.integer(owner, f"criteria.{name}", criteria[name], optional=True, minimum=0)
        if not isinstance(criteria.get("fail_if_stopped", False), bool):
            raise InvalidParameterError(
                f"{owner}: criteria.fail_if_stopped must be true or false, got {criteria['fail_if_stopped']!r}."
            )
        if "ceiling_seconds" in criteria:
            criteria["ceiling_seconds"] = params.seconds(
                owner, "criteria.ceiling_seconds", criteria["ceiling_seconds"], optional=True
            )
        return criteria
