"""What the provider's sensor triggers share: one sensor check, repeated in a worker thread until it decides."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_spark_streaming.conditions.verdict import VerdictState
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from airflow_spark_streaming.checks._base import SensorCheck


class VerdictTrigger(BaseTrigger):
    """Evaluate a sensor's check every ``poll_interval`` seconds until its verdict is not ``waiting``.

    :attr:`check` is the check object the sensor's ``poke`` evaluates, built
    from the trigger's kwargs (validated by ``check_class.from_kwargs``). Each
    evaluation runs through ``asyncio.to_thread``, so the triggerer's event loop
    never blocks on storage or Kafka; the state the check carries moves on
    between evaluations, while ``serialize`` keeps the kwargs the trigger
    started with. Yields exactly one event, the verdict as a dict, then returns.

    :param poll_interval: seconds between checks.
    :param kwargs: the check's kwargs (see :meth:`SensorCheck.to_kwargs`).
    """

    #: The check this trigger repeats.
    check_class: ClassVar[type[SensorCheck]]

    def __init__(self, *, poll_interval: float, **kwargs: Any) -> None:
        super().__init__()
        name = type(self).__name__
        self.check = self.check_class.from_kwargs(owner=name, **kwargs)
        # Positive finite seconds: NaN and infinity would poll never or forever.
        self.poll_interval = params.seconds(name, "poll_interval", poll_interval)
        self._started_with = self.check.to_kwargs()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {**copy.deepcopy(self._started_with), "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            verdict = await asyncio.to_thread(self.check.evaluate)
            if verdict.state != VerdictState.WAITING:
                yield TriggerEvent(verdict.to_dict())
                return
            self.log.info("%s; checking again in %.0fs", verdict.message, self.poll_interval)
            await asyncio.sleep(self.poll_interval)
