"""Deferrable wait on a Structured Streaming query's threshold-free status."""

from __future__ import annotations

from typing import Any

from airflow_spark_streaming.checks.stream_health import HealthCheck
from airflow_spark_streaming.triggers._base import VerdictTrigger


class StreamHealthTrigger(VerdictTrigger):
    """Poll a query's status until it is one to wait for or one to fail on.

    Holds a :class:`~airflow_spark_streaming.checks.stream_health.HealthCheck`,
    the check the sensor's ``poke`` evaluates, and evaluates it in a worker
    thread. Between checks the check keeps the previous check's mark, so a
    checkpoint replaced by an older copy is ``REWOUND``; ``serialize`` carries
    the mark the trigger started with.

    :param checkpoint: the query's checkpoint location.
    :param pipeline_spec: instead of ``checkpoint``, an SDP pipeline's ``spark-pipeline.yml`` (read in the triggerer).
    :param pipeline_storage: instead of ``checkpoint``, an SDP pipeline's storage root.
    :param flow: with a pipeline, the flow or table name whose checkpoint to read.
    :param criteria: a :class:`~airflow_spark_streaming.conditions.health_wait.HealthCriteria` as a dict.
    :param kafka_config_id: the ``kafka`` connection.
    :param storage_conn_id: the checkpoint's storage connection, if any.
    :param poll_interval: seconds between checks.
    :param timeout: seconds each broker request may take.
    :param mark: what the sensor's last check saw (a ``HealthMark`` as a dict), if any.
    """

    check_class = HealthCheck

    def __init__(
        self,
        checkpoint: str | None = None,
        criteria: dict[str, Any] | None = None,
        kafka_config_id: str = "kafka_default",
        storage_conn_id: str | None = None,
        poll_interval: float = 60.0,
        timeout: float = 15.0,
        mark: dict[str, Any] | None = None,
        *,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
    ) -> None:
        super().__init__(
            checkpoint=checkpoint, criteria=criteria, pipeline_spec=pipeline_spec, pipeline_storage=pipeline_storage,
            flow=flow, kafka_config_id=kafka_config_id, storage_conn_id=storage_conn_id,
            timeout=timeout, mark=mark, poll_interval=poll_interval,
        )  # fmt: skip
