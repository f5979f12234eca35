"""Wait for a Structured Streaming query's threshold-free status: ``OK``, or fail on ``STALLED``/``STOPPED``/``REWOUND``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf

from airflow_spark_streaming.conditions.statuses import DEFAULT_FAIL_ON, DEFAULT_WAIT_FOR
from airflow_spark_streaming.exceptions import StreamHealthError
from airflow_spark_streaming.sensors._base import CheckpointTargetSensor, VerdictSensor
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.checks.stream_health import HealthCheck
    from airflow_spark_streaming.conditions.health_wait import HealthCriteria
    from airflow_spark_streaming.triggers.stream_health import StreamHealthTrigger


class StreamHealthSensor(CheckpointTargetSensor, VerdictSensor):
    """Succeed when the query's status is one of ``wait_for``; fail at once on one of ``fail_on``.

    The status (``OK``, ``LAGGING``, ``STALLED``, ``STOPPED``, ``REWOUND``) is
    judged without thresholds from the checkpoint's last ``window`` batches,
    the brokers' latest offsets and the runner's lease (see the stream-health
    guide). An idle query that is caught up and holds a live lease is ``OK``:
    waiting on the status, unlike waiting for new batches, ends on a quiet
    topic. The :class:`~airflow_spark_streaming.conditions.stream_health.StreamHealth`
    is pushed to XCom. Poke and deferred mode run the same check; between
    checks the sensor keeps what it saw last, so a checkpoint replaced by an
    older copy is ``REWOUND``.

    :param checkpoint: the query's checkpoint location, a path or URI. (templated)
    :param pipeline_spec: instead of ``checkpoint``, the ``spark-pipeline.yml`` of a Spark Declarative
        Pipeline (path or URI, readable by the worker and, when deferred, the triggerer). (templated)
    :param pipeline_storage: instead of ``checkpoint``, the pipeline's storage root. (templated)
    :param flow: with ``pipeline_spec`` or ``pipeline_storage``: the flow or table name
        (``[catalog.][database.]name``) whose checkpoint to read (see docs/sdp-pipelines.md). (templated)
    :param kafka_config_id: the ``kafka`` connection of the brokers the query reads.
    :param storage_conn_id: the checkpoint's storage connection; none for local paths.
    :param window: how many of the newest batches to judge on (at least 2).
    :param wait_for: statuses that end the wait successfully (default ``("OK",)``).
    :param fail_on: statuses that fail the task with ``StreamUnhealthyError``
        (default ``("STALLED", "STOPPED", "REWOUND")``); any other status keeps waiting.
    :param request_timeout: seconds each broker request may take.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("checkpoint", "pipeline_spec", "pipeline_storage", "flow")

    def __init__(
        self,
        *,
        checkpoint: str | None = None,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
        kafka_config_id: str = "kafka_default",
        storage_conn_id: str | None = None,
        window: int = 10,
        wait_for: Sequence[str] = DEFAULT_WAIT_FOR,
        fail_on: Sequence[str] = DEFAULT_FAIL_ON,
        request_timeout: float = 15.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_target(checkpoint, pipeline_spec, pipeline_storage, flow)
        self.kafka_config_id = kafka_config_id
        self.storage_conn_id = storage_conn_id
        self.window = window
        self.wait_for = tuple(wait_for) if not isinstance(wait_for, str) else wait_for
        self.fail_on = tuple(fail_on) if not isinstance(fail_on, str) else fail_on
        self.request_timeout = params.seconds(self.task_id, "request_timeout", request_timeout)
        self.deferrable = deferrable
        try:
            self._criteria()  # bad statuses fail when the DAG is parsed
        except StreamHealthError as err:
            raise StreamHealthError(f"{self.task_id}: {err}") from err

    def _criteria(self) -> HealthCriteria:
        from airflow_spark_streaming.conditions.health_wait import HealthCriteria

        wait_for = self.wait_for if isinstance(self.wait_for, str) else list(self.wait_for)
        fail_on = self.fail_on if isinstance(self.fail_on, str) else list(self.fail_on)
        return HealthCriteria(window=self.window, wait_for=wait_for, fail_on=fail_on)

    def _new_check(self, context: Context) -> HealthCheck:
        from airflow_spark_streaming.checks.stream_health import HealthCheck

        return HealthCheck(
            **self._target_kwargs(), criteria=self._criteria(), kafka_config_id=self.kafka_config_id,
            storage_conn_id=self.storage_conn_id, timeout=self.request_timeout,
        )  # fmt: skip

    def _trigger_class(self) -> type[StreamHealthTrigger]:
        from airflow_spark_streaming.triggers.stream_health import StreamHealthTrigger

        return StreamHealthTrigger
