"""Wait until a Structured Streaming query's Kafka lag is low enough, or alert when it stays high."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf

from airflow_spark_streaming.exceptions import InvalidParameterError, KafkaLagError
from airflow_spark_streaming.runner.protocol import BATCH_BASES
from airflow_spark_streaming.sensors._base import (
    CheckpointTargetSensor,
    VerdictSensor,
    check_unless_templated,
    optional_int,
)
from airflow_spark_streaming.utils import params
from airflow_spark_streaming.utils.deprecation import renamed_parameter

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.checks.lag import LagCheck
    from airflow_spark_streaming.conditions.lag import LagCriteria
    from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger


class KafkaLagSensor(CheckpointTargetSensor, VerdictSensor):
    """Succeed when a streaming query's Kafka lag is at or below a threshold.

    Lag is the broker's latest offset minus the offset in the query's
    checkpoint (Spark commits no consumer-group offsets). The
    :class:`~airflow_spark_streaming.kafka.models.LagReport` is pushed to XCom.

    As an alert: with ``ceiling`` and ``ceiling_for``, the sensor fails with
    :class:`~airflow_spark_streaming.exceptions.KafkaLagCeilingError` when the
    total lag stays above ``ceiling`` for longer than ``ceiling_for`` (in
    ``poke`` mode and deferred; ``reschedule`` mode forgets between pokes).

    :param checkpoint: the query's checkpoint location (path or URI). (templated)
    :param pipeline_spec: instead of ``checkpoint``, the ``spark-pipeline.yml`` of a Spark Declarative
        Pipeline (path or URI, readable by the worker and, when deferred, the triggerer). (templated)
    :param pipeline_storage: instead of ``checkpoint``, the pipeline's storage root. (templated)
    :param flow: with ``pipeline_spec`` or ``pipeline_storage``: the flow or table name
        (``[catalog.][database.]name``) whose checkpoint to read (see docs/sdp-pipelines.md). (templated)
    :param kafka_config_id: the ``kafka`` connection of the brokers.
    :param storage_conn_id: the storage connection of the checkpoint (``checkpoint_conn_id``
        is its deprecated old name).
    :param max_total_lag: succeed when the total lag is at or below this. (templated)
    :param max_partition_lag: succeed when every partition's lag is at or below this. (templated)
    :param ceiling: alert threshold on the total lag.
    :param ceiling_for: how long (timedelta or seconds) the lag may stay above ``ceiling``.
    :param max_time_lag: succeed only when no partition's oldest unprocessed record is older
        than this (a timedelta or seconds); a time lag that cannot be measured counts as waiting.
    :param min_retention_headroom: fail with ``KafkaRetentionHeadroomError`` as soon as the
        topic's retention would delete unread records within less than this (a timedelta or seconds).
    :param fail_if_stopped: fail with ``LaggingQueryStoppedError`` instead of waiting while the
        lag is not low enough and the query is not running (the provider's runner holds no live
        lease on the checkpoint). Leave it off for scheduled ``availableNow`` runs, whose next run
        lowers the lag; turn it on beside a long-running query, so a dead query fails the wait
        at once rather than at the sensor's timeout.
    :param basis: ``committed`` (default: the last committed batch) or ``planned``
        (the newest planned batch).
    :param request_timeout: seconds each broker request may take.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = (
        "checkpoint",
        "pipeline_spec",
        "pipeline_storage",
        "flow",
        "max_total_lag",
        "max_partition_lag",
    )

    def __init__(
        self,
        *,
        checkpoint: str | None = None,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
        kafka_config_id: str = "kafka_default",
        storage_conn_id: str | None = None,
        max_total_lag: int | str | None = None,
        max_partition_lag: int | str | None = None,
        ceiling: int | None = None,
        ceiling_for: timedelta | float | None = None,
        max_time_lag: timedelta | float | None = None,
        min_retention_headroom: timedelta | float | None = None,
        fail_if_stopped: bool = False,
        basis: str = "committed",
        request_timeout: float = 15.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        checkpoint_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (max_total_lag is None and max_partition_lag is None and ceiling is None
                and max_time_lag is None and min_retention_headroom is None):  # fmt: skip
            raise KafkaLagError(
                f"{self.task_id}: give max_total_lag, max_partition_lag, max_time_lag, min_retention_headroom, "
                "or ceiling with ceiling_for; otherwise the sensor has nothing to wait for."
            )
        self._set_target(checkpoint, pipeline_spec, pipeline_storage, flow)
        self.kafka_config_id = kafka_config_id
        self.storage_conn_id = renamed_parameter(
            "KafkaLagSensor", "checkpoint_conn_id", "storage_conn_id", checkpoint_conn_id, storage_conn_id
        )
        check_unless_templated(self.task_id, "max_total_lag", max_total_lag)
        check_unless_templated(self.task_id, "max_partition_lag", max_partition_lag)
        if (ceiling is None) != (ceiling_for is None):
            raise InvalidParameterError(
                f"{self.task_id}: ceiling={ceiling!r} and ceiling_for={ceiling_for!r} go together: set both to alert "
                "when the lag stays above the ceiling for that long, or neither."
            )
        self.max_total_lag = max_total_lag
        self.max_partition_lag = max_partition_lag
        self.ceiling = params.integer(self.task_id, "ceiling", ceiling, optional=True, minimum=0)
        self.ceiling_for = params.seconds(self.task_id, "ceiling_for", ceiling_for, optional=True)
        self.basis = params.choice(self.task_id, "basis", basis, BATCH_BASES)
        self.request_timeout = params.seconds(self.task_id, "request_timeout", request_timeout)
        self.max_time_lag = params.seconds(self.task_id, "max_time_lag", max_time_lag, optional=True, allow_zero=True)
        self.min_retention_headroom = params.seconds(
            self.task_id, "min_retention_headroom", min_retention_headroom, optional=True, allow_zero=True
        )
        if not isinstance(fail_if_stopped, bool):
            raise InvalidParameterError(
                f"{self.task_id}: fail_if_stopped must be True or False, got {fail_if_stopped!r}."
            )
        self.fail_if_stopped = fail_if_stopped
        self.deferrable = deferrable

    def _criteria(self) -> LagCriteria:
        from airflow_spark_streaming.conditions.lag import LagCriteria

        return LagCriteria(
            max_total_lag=optional_int(self.task_id, "max_total_lag", self.max_total_lag),
            max_partition_lag=optional_int(self.task_id, "max_partition_lag", self.max_partition_lag),
            ceiling=self.ceiling,
            ceiling_seconds=self.ceiling_for,
            basis=self.basis,
            max_time_lag_seconds=self.max_time_lag,
            min_retention_headroom_seconds=self.min_retention_headroom,
            fail_if_stopped=self.fail_if_stopped,
        )

    def _new_check(self, context: Context) -> LagCheck:
        from airflow_spark_streaming.checks.lag import LagCheck

        return LagCheck(
            **self._target_kwargs(), criteria=self._criteria(), kafka_config_id=self.kafka_config_id,
            storage_conn_id=self.storage_conn_id, timeout=self.request_timeout,
        )  # fmt: skip

    def _trigger_class(self) -> type[KafkaLagTrigger]:
        from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger

        return KafkaLagTrigger
