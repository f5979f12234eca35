"""Deferrable wait on a Structured Streaming query's threshold-free status."""

from __future__ import annotations

from typing import Any

from airflow_spark_streaming.exceptions import StreamHealthError
from airflow_spark_streaming.triggers._base import KafkaCheckpointTrigger


class StreamHealthTrigger(KafkaCheckpointTrigger):
    """Poll a query's status until it is one to wait for or one to fail on.

    Each check is :func:`~airflow_spark_streaming.checks.check_stream_health`,
    the same function the sensor's ``poke`` calls, run in a worker thread.
    Between checks it keeps the previous check's mark, so a checkpoint
    replaced by an older copy is ``REWOUND``; ``serialize`` carries the mark
    the trigger started with.

    :param checkpoint: the query's checkpoint location.
    :param criteria: a :class:`~airflow_spark_streaming.conditions.health_wait.HealthCriteria` as a dict.
    :param kafka_config_id: the ``kafka`` connection.
    :param storage_conn_id: the checkpoint's storage connection, if any.
    :param poll_interval: seconds between checks.
    :param timeout: seconds each broker request may take.
    :param mark: what the sensor's last check saw (a ``HealthMark`` as a dict), if any.
    """

    error_class = StreamHealthError
    check_name = "check_stream_health"
    carried = "mark"

    def __init__(
        self,
        checkpoint: str,
        criteria: dict[str, Any],
        kafka_config_id: str = "kafka_default",
        storage_conn_id: str | None = None,
        poll_interval: float = 60.0,
        timeout: float = 15.0,
        mark: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(checkpoint, criteria, kafka_config_id, storage_conn_id, poll_interval, timeout)
        self._start_from(mark)
        if mark is not None and not {"query_id", "batch_id", "offsets"} <= set(mark):
            raise StreamHealthError(f"StreamHealthTrigger mark {mark!r} is not a HealthMark dict.")

    def _criteria_class(self) -> type:
        from airflow_spark_streaming.conditions.health_wait import HealthCriteria

        return HealthCriteria
