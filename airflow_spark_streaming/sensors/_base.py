"""What the provider's deferrable sensors share: one check object, evaluated by ``poke`` and by the trigger."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_spark_streaming.exceptions import SparkStreamingError
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.checks._base import SensorCheck
    from airflow_spark_streaming.conditions.verdict import Verdict
    from airflow_spark_streaming.triggers._base import VerdictTrigger


def optional_int(task_id: str, name: str, value: Any, *, minimum: int | None = 0) -> int | None:
    """A (possibly rendered-from-template) integer argument; ``None`` or ``""`` mean unset; ``1.9`` is refused."""
    return params.integer(task_id, name, value, optional=True, minimum=minimum)


def check_unless_templated(task_id: str, name: str, value: Any, *, minimum: int | None = 0) -> None:
    """Check an integer parameter when the DAG is parsed; a Jinja template is checked once rendered."""
    if not params.is_template(value):
        optional_int(task_id, name, value, minimum=minimum)


def check_sensor_timing(owner: str, kwargs: dict[str, Any]) -> None:
    """``poke_interval`` and ``timeout`` as positive finite seconds, before the base sensor sees them: it accepts
    0 (a busy loop) and fails on NaN and infinity with a raw ``ValueError`` or ``OverflowError``."""
    for name in ("poke_interval", "timeout"):
        if name in kwargs:
            params.seconds(owner, name, kwargs[name])


#: The parameters naming an SDP pipeline's flow, which a checkpoint sensor takes instead of ``checkpoint``.
PIPELINE_FIELDS = ("pipeline_spec", "pipeline_storage", "flow")


def check_stream_target(task_id: str, checkpoint: Any, pipeline: dict[str, Any], *, rendered: bool) -> None:
    """Exactly one of ``checkpoint`` and an SDP pipeline with its flow (``pipeline``: ``pipeline_spec`` or
    ``pipeline_storage``, and ``flow``), each well formed; templated values are checked once ``rendered``."""
    from airflow_spark_streaming.pipelines.flows import flow_target

    # No pipeline at all: the checkpoint's own checks and errors (an empty one is InvalidCheckpointPathError).
    if all(value in (None, "") for value in pipeline.values()) or (
        flow_target(task_id, checkpoint=checkpoint, rendered=rendered, **pipeline) is None
    ):
        if rendered:
            params.location(task_id, "checkpoint", checkpoint, checkpoint=True)
        else:
            params.unless_template(params.location, task_id, "checkpoint", checkpoint, checkpoint=True)


class CheckpointTargetSensor:
    """What a sensor reading one checkpoint adds to :class:`VerdictSensor`: the checkpoint, or an SDP pipeline's
    flow in its place (``pipeline_spec`` or ``pipeline_storage``, and ``flow``), checked when the DAG is parsed and
    again once rendered, and handed to the check, which resolves the flow at each evaluation."""

    task_id: str
    checkpoint: str | None
    pipeline_spec: str | None
    pipeline_storage: str | None
    flow: str | None

    def _set_target(self, checkpoint: Any, pipeline_spec: Any, pipeline_storage: Any, flow: Any) -> None:
        self.checkpoint = checkpoint or None
        self.pipeline_spec, self.pipeline_storage, self.flow = pipeline_spec, pipeline_storage, flow
        check_stream_target(self.task_id, checkpoint, self._pipeline(), rendered=False)

    def _pipeline(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PIPELINE_FIELDS}

    def _target_kwargs(self) -> dict[str, Any]:
        """The check's ``checkpoint`` and pipeline fields, as rendered and checked."""
        check_stream_target(self.task_id, self.checkpoint, self._pipeline(), rendered=True)
        if self.checkpoint:
            return {"checkpoint": self.checkpoint}
        return {name: value or None for name, value in self._pipeline().items()}


class VerdictSensor(BaseSensorOperator):
    """A sensor whose poke and deferred wait evaluate the same check object, returning a :class:`Verdict`.

    Subclasses give ``_new_check`` (the check, from the rendered fields) and
    ``_trigger_class``. The check is made at the first poke and kept, so the
    state it carries (for example when the lag went over the ceiling) moves on
    from poke to poke; ``reschedule`` mode starts each poke afresh. When the
    sensor defers, its trigger is built from the check's kwargs, so it starts
    from what the last poke saw. ``deferrable`` sensors check once in the worker
    first, so a wait that is already over never defers.
    """

    deferrable: bool = False

    def __init__(self, **kwargs: Any) -> None:
        check_sensor_timing(kwargs.get("task_id", type(self).__name__), kwargs)
        super().__init__(**kwargs)
        self._kept_check: SensorCheck | None = None

    def _new_check(self, context: Context) -> SensorCheck:
        """The check from the sensor's (rendered) fields."""
        raise NotImplementedError

    def _trigger_class(self) -> type[VerdictTrigger]:
        """Imported when needed, so importing the sensor stays cheap."""
        raise NotImplementedError

    def _current_check(self, context: Context) -> SensorCheck:
        """The check this sensor evaluates: made at the first call (templates are rendered by then), then kept."""
        if self._kept_check is None:
            self._kept_check = self._new_check(context)
        return self._kept_check

    def _trigger(self, context: Context) -> VerdictTrigger:
        return self._trigger_class()(**self._current_check(context).to_kwargs(), poll_interval=self.poke_interval)

    def _conclude(self, verdict: Verdict) -> PokeReturnValue:
        from airflow_spark_streaming.conditions.verdict import VerdictState

        self.log.info("%s", verdict.message)
        verdict.raise_for_state()
        return PokeReturnValue(is_done=verdict.state == VerdictState.MET, xcom_value=verdict.payload)

    def poke(self, context: Context) -> PokeReturnValue:
        return self._conclude(self._current_check(context).evaluate())

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
