"""What every sensor check shares: one object with the criteria, the connections and the state it carries.

A check is built twice from the same values: by its sensor at the first poke
(from the rendered fields), and by its trigger from the trigger's kwargs
(:meth:`SensorCheck.from_kwargs`, validated; :meth:`SensorCheck.to_kwargs`
gives them back, JSON-able). :meth:`SensorCheck.evaluate` is blocking: the
sensor's ``poke`` calls it directly and the trigger through
``asyncio.to_thread``, so both modes decide alike.

Criteria classes and hooks are imported inside the methods, so importing a
check (every trigger module does) stays cheap.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow_spark_streaming.exceptions import SparkStreamingError
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from typing import Self

    from airflow_spark_streaming.conditions.verdict import Verdict

_Made = TypeVar("_Made")


def _json_able(value: Any) -> Any:
    """A dataclass with ``to_dict`` as that dict; anything else copied, so later changes do not reach it."""
    return value.to_dict() if hasattr(value, "to_dict") else copy.deepcopy(value)


@dataclass(kw_only=True)
class SensorCheck:
    """One sensor's check: what it waits for, and the state one evaluation hands to the next.

    Subclasses are keyword-only dataclasses: their fields are the kwargs of
    :meth:`from_kwargs` and :meth:`to_kwargs`. A field holding a dataclass with
    ``to_dict`` (criteria, a policy) goes to the kwargs as that dict.
    """

    #: The error raised for invalid kwargs.
    error_class: ClassVar[type[SparkStreamingError]] = SparkStreamingError

    def evaluate(self) -> Verdict:
        """One blocking check: read through a hook, decide, move the carried state on.

        A check whose sensor defers returns project errors as an ``error``
        verdict, so they travel in the trigger's event and the sensor raises
        them again.
        """
        raise NotImplementedError

    def to_kwargs(self) -> dict[str, Any]:
        """The fields as JSON-able values, copies: what :meth:`from_kwargs` takes back."""
        return {f.name: _json_able(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_kwargs(cls, *, owner: str, **kwargs: Any) -> Self:
        """The check from JSON-able kwargs (a trigger's), validated.

        :param owner: the name errors are reported under (the trigger's class).
        :param kwargs: the fields, as :meth:`to_kwargs` gives them.
        """
        raise NotImplementedError

    @classmethod
    def _location(cls, owner: str, what: str, value: Any) -> str:
        """A non-empty path or URI, else the check's error naming ``owner``.

        :param owner: the name errors are reported under.
        :param what: what the location is of, as errors name it.
        :param value: the location.
        """
        from airflow_spark_streaming.storage.locations import is_absolute_location

        if not value or not isinstance(value, str):
            kind = "an empty str" if isinstance(value, str) else f"a value of type {type(value).__name__}"
            raise cls.error_class(f"{owner} needs a {what} path or URI, got {kind}.")
        if not is_absolute_location(value):
            raise cls.error_class(
                f"{owner}: the {what} location is a relative path, which the triggerer and the worker resolve "
                "against different directories; pass an absolute path or a URI with a scheme."
            )
        return value

    @classmethod
    def _dataclass(
        cls,
        owner: str,
        name: str,
        made: type[_Made],
        value: Any,
        checked: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> _Made:
        """``made(**value)`` from a kwargs dict, else the check's error naming ``owner`` and ``name``.

        :param owner: the name errors are reported under.
        :param name: the kwarg, as errors name it.
        :param made: the dataclass to make.
        :param value: its fields, a dict.
        :param checked: type checks of the fields the dataclass does not make, run first.
        """
        if not isinstance(value, dict):
            raise cls.error_class(f"{owner} {name} {value!r} are invalid: not a dict.")
        value = checked(owner, dict(value)) if checked else value
        try:
            return made(**value)
        except TypeError as err:
            raise cls.error_class(f"{owner} {name} {value!r} are invalid: {err}.") from err


@dataclass(kw_only=True)
class CheckpointCheck(SensorCheck):
    """A check of a query's checkpoint against criteria (a dataclass of :mod:`airflow_spark_streaming.conditions`).

    The checkpoint is given as a path (``checkpoint``) or as a flow of a Spark Declarative Pipeline
    (``pipeline_spec`` or ``pipeline_storage``, and ``flow``), resolved at each evaluation by
    :func:`~airflow_spark_streaming.hooks.pipelines.resolve_flow_checkpoint` (a full refresh moves a flow to a
    new checkpoint version).

    :param checkpoint: the query's checkpoint location (path or URI).
    :param criteria: what the wait asks for.
    :param storage_conn_id: the checkpoint's storage connection; none for local paths.
    :param pipeline_spec: the SDP pipeline's ``spark-pipeline.yml`` (path or URI), instead of ``checkpoint``.
    :param pipeline_storage: the SDP pipeline's storage root, instead of ``checkpoint``.
    :param flow: the pipeline's flow or table name (``[catalog.][database.]name``).
    """

    checkpoint: str | None = None
    criteria: Any
    storage_conn_id: str | None = None
    pipeline_spec: str | None = None
    pipeline_storage: str | None = None
    flow: str | None = None

    @classmethod
    def criteria_class(cls) -> type:
        """The criteria dataclass."""
        raise NotImplementedError

    @classmethod
    def _checked_criteria(cls, owner: str, criteria: dict[str, Any]) -> dict[str, Any]:
        """Type checks of the criteria fields the dataclass does not make (1.9 is not a batch id)."""
        return criteria

    @classmethod
    def _checked_kwargs(cls, owner: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Checks of the other fields; subclasses add theirs."""
        return kwargs

    @classmethod
    def from_kwargs(
        cls, *, owner: str, checkpoint: Any = None, criteria: Any = None, pipeline_spec: Any = None,
        pipeline_storage: Any = None, flow: Any = None, **kwargs: Any,
    ) -> Self:  # fmt: skip
        from airflow_spark_streaming.pipelines.flows import flow_target

        pipeline = (pipeline_spec, pipeline_storage, flow)
        target = None  # no pipeline: the checkpoint's own checks and errors, as before pipelines were taken
        if any(value not in (None, "") for value in pipeline):
            target = flow_target(owner, checkpoint=checkpoint, pipeline_spec=pipeline_spec,
                                 pipeline_storage=pipeline_storage, flow=flow)  # fmt: skip
        return cls(
            checkpoint=cls._location(owner, "checkpoint", checkpoint) if target is None else None,
            criteria=cls._dataclass(owner, "criteria", cls.criteria_class(), criteria, cls._checked_criteria),
            **({} if target is None else target.to_kwargs()),
            **cls._checked_kwargs(owner, kwargs),
        )

    def checkpoint_location(self) -> str:
        """The checkpoint to read now: ``checkpoint``, or the pipeline flow's, resolved through the pipeline hook
        (raises the hook's :class:`~airflow_spark_streaming.exceptions.PipelineError` when it cannot be)."""
        if self.checkpoint:
            return self.checkpoint
        from airflow_spark_streaming.hooks.pipelines import PipelineHook
        from airflow_spark_streaming.pipelines.flows import FlowTarget

        target = FlowTarget(flow=str(self.flow), spec=self.pipeline_spec, storage=self.pipeline_storage)
        resolved = PipelineHook(self.storage_conn_id).resolve(target)
        self._flow_found = resolved.found
        return resolved.checkpoint

    def flow_is_starting(self) -> bool:
        """Whether the checkpoint last resolved is a pipeline flow's folder Spark created (the storage holds the
        flow) but has not written yet: a full refresh makes the next version empty before the flow runs. Such a
        checkpoint is waited for, where a name that matches no flow is an error."""
        return bool(self.flow and getattr(self, "_flow_found", False))


@dataclass(kw_only=True)
class KafkaCheck(CheckpointCheck):
    """A check of a query's checkpoint and of the Kafka brokers it reads.

    :param kafka_config_id: the ``kafka`` connection of the brokers.
    :param timeout: seconds each broker request may take.
    """

    kafka_config_id: str = "kafka_default"
    timeout: float = 15.0

    @classmethod
    def _checked_kwargs(cls, owner: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = super()._checked_kwargs(owner, kwargs)
        if "timeout" in kwargs:
            # Positive finite seconds: NaN and infinity would wait never or forever.
            kwargs["timeout"] = params.seconds(owner, "timeout", kwargs["timeout"])
        return kwargs
