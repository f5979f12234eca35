"""What the provider's deferrable sensors share: one check, used by ``poke`` and by the trigger."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_spark_streaming.exceptions import SparkStreamingError
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from airflow_spark_streaming.conditions.verdict import Verdict
    from airflow_spark_streaming.triggers._base import KafkaCheckpointTrigger


def optional_int(task_id: str, name: str, value: Any, *, minimum: int | None = 0) -> int | None:
    """A (possibly rendered-from-template) integer argument; ``None`` or ``""`` mean unset; ``1.9`` is refused."""
    return params.integer(task_id, name, value, optional=True, minimum=minimum)


def check_unless_templated(task_id: str, name: str, value: Any, *, minimum: int | None = 0) -> None:
    """Check an integer parameter when the DAG is parsed; a Jinja template is checked once rendered."""
    if not params.is_template(value):
        optional_int(task_id, name, value, minimum=minimum)


class VerdictSensor(BaseSensorOperator):
    """A sensor whose poke and deferred wait decide with the same check, returning a :class:`Verdict`.

    Subclasses implement ``_check`` (blocking, one verdict) and ``_trigger`` (the
    trigger that repeats that check in the triggerer). ``deferrable`` sensors
    check once in the worker first, so a wait that is already over never defers.
    """

    deferrable: bool = False

    def __init__(self, **kwargs: Any) -> None:
        # Checked before the base sensor sees them: it accepts 0 (a busy loop) and fails on NaN and
        # infinity with a raw ValueError or OverflowError.
        owner = kwargs.get("task_id", type(self).__name__)
        for name in ("poke_interval", "timeout"):
            if name in kwargs:
                params.seconds(owner, name, kwargs[name])
        super().__init__(**kwargs)

    def _check(self, context: Context) -> Verdict:
        raise NotImplementedError

    def _trigger(self, context: Context) -> BaseTrigger:
        raise NotImplementedError

    def _conclude(self, verdict: Verdict) -> PokeReturnValue:
        from airflow_spark_streaming.conditions.verdict import VerdictState

        self.log.info("%s", verdict.message)
        verdict.raise_for_state()
        return PokeReturnValue(is_done=verdict.state == VerdictState.MET, xcom_value=verdict.payload)

    def poke(self, context: Context) -> PokeReturnValue:
        return self._conclude(self._check(context))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        outcome = self.poke(context)
        if outcome.is_done:
            return outcome.xcom_value
        self.defer(
            trigger=self._trigger(context),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow_spark_streaming.conditions.verdict import Verdict

        outcome = self._conclude(Verdict(**event))
        if not outcome.is_done:
            raise SparkStreamingError(f"{self.task_id}: the trigger ended before the wait was over.")
        return outcome.xcom_value


class KafkaCheckpointSensor(VerdictSensor):
    """A verdict sensor on a query's checkpoint and the brokers it reads, whose check carries state forward.

    ``poke`` and the trigger both run the trigger class's ``check_once``. The
    state one check hands to the next is kept in ``_<carried>`` (for example
    ``_mark``), the trigger's keyword with a leading underscore, and is given to
    the trigger when the sensor defers. Subclasses set ``checkpoint``,
    ``kafka_config_id``, ``storage_conn_id`` and ``request_timeout`` and give
    ``_criteria`` and ``_trigger_class``.
    """

    checkpoint: str
    kafka_config_id: str
    storage_conn_id: str | None
    request_timeout: float

    def _criteria(self) -> Any:
        raise NotImplementedError

    def _trigger_class(self) -> type[KafkaCheckpointTrigger]:
        """Imported when needed, so importing the sensor stays cheap."""
        raise NotImplementedError

    def _check(self, context: Context) -> Verdict:
        trigger_class = self._trigger_class()
        state = f"_{trigger_class.carried}"
        verdict, carried_value = trigger_class.check_once(
            self.checkpoint, self._criteria(), kafka_config_id=self.kafka_config_id,
            storage_conn_id=self.storage_conn_id, timeout=self.request_timeout, carried_value=getattr(self, state),
        )  # fmt: skip
        setattr(self, state, carried_value)
        return verdict

    def _trigger(self, context: Context) -> KafkaCheckpointTrigger:
        trigger_class = self._trigger_class()
        return trigger_class(
            checkpoint=self.checkpoint,
            criteria=self._criteria().to_dict(),
            kafka_config_id=self.kafka_config_id,
            storage_conn_id=self.storage_conn_id,
            poll_interval=self.poke_interval,
            timeout=self.request_timeout,
            **{trigger_class.carried: getattr(self, f"_{trigger_class.carried}")},
        )
