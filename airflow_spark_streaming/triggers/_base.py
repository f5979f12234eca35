"""What the provider's triggers share: one sensor check, repeated in a worker thread until it decides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_spark_streaming.exceptions import SparkStreamingError
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from airflow_spark_streaming.conditions.verdict import Verdict


class VerdictTrigger(BaseTrigger):
    """Repeat a blocking check (the sensor's ``poke``) every ``poll_interval`` seconds until it is not ``waiting``.

    The check runs through ``asyncio.to_thread``, so the triggerer's event loop
    never blocks on storage or Kafka. Yields exactly one event, the verdict as a
    dict, then returns. Subclasses give ``_check`` and the kwargs ``serialize``
    returns besides ``checkpoint``, ``criteria`` and ``poll_interval``.
    """

    #: The error raised for invalid arguments.
    error_class: ClassVar[type[SparkStreamingError]] = SparkStreamingError

    def _criteria_class(self) -> type:
        """The criteria dataclass; imported when needed, so importing a trigger stays cheap."""
        raise NotImplementedError

    def __init__(self, checkpoint: str, criteria: dict[str, Any], poll_interval: float) -> None:
        super().__init__()
        name = type(self).__name__
        if not checkpoint or not isinstance(checkpoint, str):
            raise self.error_class(f"{name} needs a checkpoint path or URI, got {checkpoint!r}.")
        self.poll_interval = self._require_positive("poll_interval", poll_interval)
        if not isinstance(criteria, dict):
            raise self.error_class(f"{name} criteria {criteria!r} are invalid: not a dict.")
        criteria = self._checked_criteria(dict(criteria))
        try:
            self.criteria = self._criteria_class()(**criteria)
        except TypeError as err:
            raise self.error_class(f"{name} criteria {criteria!r} are invalid: {err}.") from err
        self.checkpoint = checkpoint

    def _require_positive(self, name: str, value: Any) -> float:
        """Positive finite seconds (NaN and infinity would poll never or forever); raises InvalidParameterError."""
        return params.seconds(type(self).__name__, name, value)

    def _checked_criteria(self, criteria: dict[str, Any]) -> dict[str, Any]:
        """Type checks of the criteria fields the dataclass does not make (1.9 is not a batch id)."""
        return criteria

    def _kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _check(self) -> Verdict:
        """One blocking check; runs in a worker thread."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"checkpoint": self.checkpoint, "criteria": self.criteria.to_dict(), **self._kwargs(),
             "poll_interval": self.poll_interval},
        )  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_spark_streaming.conditions.verdict import VerdictState

        while True:
            verdict = await asyncio.to_thread(self._check)
            if verdict.state != VerdictState.WAITING:
                yield TriggerEvent(verdict.to_dict())
                return
            self.log.info("%s; checking again in %.0fs", verdict.message, self.poll_interval)
            await asyncio.sleep(self.poll_interval)


class KafkaCheckpointTrigger(VerdictTrigger):
    """A verdict trigger on a query's checkpoint and the brokers it reads, whose check carries state forward.

    The check is the function of :mod:`airflow_spark_streaming.checks` named
    ``check_name``; it takes and returns what the previous check saw under the
    keyword ``carried`` (``serialize`` keeps the value the trigger started with).
    The sensor's ``poke`` calls the same :meth:`check_once`.
    """

    #: The function of ``checks`` that decides.
    check_name: ClassVar[str]
    #: The keyword (and attribute) of the state one check hands to the next.
    carried: ClassVar[str]

    def __init__(
        self,
        checkpoint: str,
        criteria: dict[str, Any],
        kafka_config_id: str,
        storage_conn_id: str | None,
        poll_interval: float,
        timeout: float,
    ) -> None:
        super().__init__(checkpoint, criteria, poll_interval)
        self.timeout = self._require_positive("timeout", timeout)
        self.kafka_config_id = kafka_config_id
        self.storage_conn_id = storage_conn_id

    def _start_from(self, carried_value: Any) -> None:
        """What the sensor's last check saw; the subclass's ``__init__`` calls this with its ``carried`` argument."""
        setattr(self, self.carried, carried_value)
        self._carried_value = carried_value  # moves on between checks

    @classmethod
    def check_once(
        cls, checkpoint: str, criteria: Any, *, kafka_config_id: str, storage_conn_id: str | None, timeout: float,
        carried_value: Any,
    ) -> tuple[Verdict, Any]:  # fmt: skip
        """One blocking check; returns the verdict and the state to hand to the next check."""
        from airflow_spark_streaming import checks

        check = getattr(checks, cls.check_name)  # looked up per call, so a wrapped check is seen
        return check(checkpoint, criteria, kafka_config_id=kafka_config_id, storage_conn_id=storage_conn_id,
                     timeout=timeout, **{cls.carried: carried_value})  # fmt: skip

    def _kwargs(self) -> dict[str, Any]:
        return {"kafka_config_id": self.kafka_config_id, "storage_conn_id": self.storage_conn_id,
                "timeout": self.timeout, self.carried: getattr(self, self.carried)}  # fmt: skip

    def _check(self) -> Verdict:
        verdict, self._carried_value = self.check_once(
            self.checkpoint, self.criteria, kafka_config_id=self.kafka_config_id,
            storage_conn_id=self.storage_conn_id, timeout=self.timeout, carried_value=self._carried_value,
        )  # fmt: skip
        return verdict
