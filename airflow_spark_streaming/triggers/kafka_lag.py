"""Deferrable wait on the Kafka lag of a Structured Streaming query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_spark_streaming.exceptions import SparkStreamingError


class KafkaLagTrigger(BaseTrigger):
    """Poll a query's Kafka lag until it is low enough, stays too high for too long, or cannot be measured.

    Each check is :func:`~airflow_spark_streaming.hooks.kafka_lag.check_lag`, the
    same function the sensor's ``poke`` calls, run in a worker thread so the
    triggerer's event loop never waits on Kafka or storage. Yields exactly one
    event (the verdict, with the ``LagReport``), then returns.

    :param checkpoint: the query's checkpoint location.
    :param criteria: a :class:`~airflow_spark_streaming.hooks.kafka_lag.LagCriteria` as a dict.
    :param kafka_config_id: the ``kafka`` connection.
    :param checkpoint_conn_id: the checkpoint's storage connection, if any.
    :param poll_interval: seconds between checks.
    :param timeout: seconds each broker request may take.
    :param above_since: when the lag went over the ceiling, if it already had (epoch seconds).
    """

    def __init__(
        self,
        checkpoint: str,
        criteria: dict[str, Any],
        kafka_config_id: str = "kafka_default",
        checkpoint_conn_id: str | None = None,
        poll_interval: float = 60.0,
        timeout: float = 15.0,
        above_since: float | None = None,
    ) -> None:
        super().__init__()
        from airflow_spark_streaming.hooks.kafka_lag import LagCriteria

        if not checkpoint or not isinstance(checkpoint, str):
            raise SparkStreamingError(f"KafkaLagTrigger needs a checkpoint path or URI, got {checkpoint!r}.")
        for name, value in (("poll_interval", poll_interval), ("timeout", timeout)):
            if not isinstance(value, int | float) or value <= 0:
                raise SparkStreamingError(f"KafkaLagTrigger {name} must be > 0 seconds, got {value!r}.")
        try:
            self.criteria = LagCriteria(**criteria)
        except TypeError as err:
            raise SparkStreamingError(f"KafkaLagTrigger criteria {criteria!r} are invalid: {err}.") from err
        self.checkpoint = checkpoint
        self.kafka_config_id = kafka_config_id
        self.checkpoint_conn_id = checkpoint_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self.above_since = above_since

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "checkpoint": self.checkpoint,
                "criteria": self.criteria.to_dict(),
                "kafka_config_id": self.kafka_config_id,
                "checkpoint_conn_id": self.checkpoint_conn_id,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "above_since": self.above_since,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_spark_streaming.hooks.kafka_lag import check_lag

        above_since = self.above_since
        while True:
            verdict, above_since = await asyncio.to_thread(
                check_lag,
                self.checkpoint,
                self.criteria,
                kafka_config_id=self.kafka_config_id,
                checkpoint_conn_id=self.checkpoint_conn_id,
                timeout=self.timeout,
                above_since=above_since,
            )
            if verdict.state != "waiting":
                yield TriggerEvent(verdict.to_dict())
                return
            self.log.info("%s; checking again in %.0fs", verdict.message, self.poll_interval)
            await asyncio.sleep(self.poll_interval)
