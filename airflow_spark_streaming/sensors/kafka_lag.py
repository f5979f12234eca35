"""Wait until a Structured Streaming query's Kafka lag is low enough, or alert when it stays high."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_spark_streaming.exceptions import SparkStreamingError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.hooks.kafka_lag import LagCriteria
    from airflow_spark_streaming.verdict import Verdict


class KafkaLagSensor(BaseSensorOperator):
    """Succeed when a streaming query's Kafka lag is at or below a threshold.

    Lag is the broker's latest offset minus the offset in the query's
    checkpoint (Spark commits no consumer-group offsets). The
    :class:`~airflow_spark_streaming.hooks.kafka_lag.LagReport` is pushed to XCom.

    As an alert: with ``ceiling`` and ``ceiling_for``, the sensor fails with
    :class:`~airflow_spark_streaming.exceptions.KafkaLagCeilingError` when the
    total lag stays above ``ceiling`` for longer than ``ceiling_for`` (in
    ``poke`` mode and deferred; ``reschedule`` mode forgets between pokes).

    :param checkpoint: the query's checkpoint location (path or URI). (templated)
    :param kafka_config_id: the ``kafka`` connection of the brokers.
    :param checkpoint_conn_id: the storage connection of the checkpoint.
    :param max_total_lag: succeed when the total lag is at or below this. (templated)
    :param max_partition_lag: succeed when every partition's lag is at or below this. (templated)
    :param ceiling: alert threshold on the total lag.
    :param ceiling_for: how long (timedelta or seconds) the lag may stay above ``ceiling``.
    :param basis: ``committed`` (default: the last committed batch) or ``planned``
        (the newest planned batch).
    :param request_timeout: seconds each broker request may take.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("checkpoint", "max_total_lag", "max_partition_lag")

    def __init__(
        self,
        *,
        checkpoint: str,
        kafka_config_id: str = "kafka_default",
        checkpoint_conn_id: str | None = None,
        max_total_lag: int | str | None = None,
        max_partition_lag: int | str | None = None,
        ceiling: int | None = None,
        ceiling_for: timedelta | float | None = None,
        basis: str = "committed",
        request_timeout: float = 15.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_total_lag is None and max_partition_lag is None and ceiling is None:
            raise SparkStreamingError(
                f"{self.task_id}: give max_total_lag, max_partition_lag, or ceiling with ceiling_for; "
                "otherwise the sensor has nothing to wait for."
            )
        self.checkpoint = checkpoint
        self.kafka_config_id = kafka_config_id
        self.checkpoint_conn_id = checkpoint_conn_id
        self.max_total_lag = max_total_lag
        self.max_partition_lag = max_partition_lag
        self.ceiling = ceiling
        self.ceiling_for = ceiling_for.total_seconds() if isinstance(ceiling_for, timedelta) else ceiling_for
        self.basis = basis
        self.request_timeout = request_timeout
        self.deferrable = deferrable
        self._above_since: float | None = None

    def _criteria(self) -> LagCriteria:
        from airflow_spark_streaming.hooks.kafka_lag import LagCriteria

        def as_int(name: str) -> int | None:
            value = getattr(self, name)
            if value is None or value == "":
                return None
            try:
                return int(value)
            except (TypeError, ValueError) as err:
                raise SparkStreamingError(f"{self.task_id}: {name} {value!r} is not an integer.") from err

        return LagCriteria(
            max_total_lag=as_int("max_total_lag"),
            max_partition_lag=as_int("max_partition_lag"),
            ceiling=self.ceiling,
            ceiling_seconds=self.ceiling_for,
            basis=self.basis,
        )

    def _conclude(self, verdict: Verdict) -> PokeReturnValue:
        self.log.info("%s", verdict.message)
        verdict.raise_for_state()
        return PokeReturnValue(is_done=verdict.state == "met", xcom_value=verdict.payload)

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_spark_streaming.hooks.kafka_lag import check_lag

        verdict, self._above_since = check_lag(
            self.checkpoint,
            self._criteria(),
            kafka_config_id=self.kafka_config_id,
            checkpoint_conn_id=self.checkpoint_conn_id,
            timeout=self.request_timeout,
            above_since=self._above_since,
        )
        return self._conclude(verdict)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        outcome = self.poke(context)
        if outcome.is_done:
            return outcome.xcom_value
        from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger

        self.defer(
            trigger=KafkaLagTrigger(
                checkpoint=self.checkpoint,
                criteria=self._criteria().to_dict(),
                kafka_config_id=self.kafka_config_id,
                checkpoint_conn_id=self.checkpoint_conn_id,
                poll_interval=self.poke_interval,
                timeout=self.request_timeout,
                above_since=self._above_since,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow_spark_streaming.verdict import Verdict

        outcome = self._conclude(Verdict(**event))
        if not outcome.is_done:
            raise SparkStreamingError(f"{self.task_id}: the trigger ended before the lag threshold was met.")
        return outcome.xcom_value
