"""Deferrable wait on a Structured Streaming checkpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_spark_streaming.exceptions import SparkStreamingError


class CheckpointProgressTrigger(BaseTrigger):
    """Poll a checkpoint until the progress criteria are met, the stream is stale, or it cannot be read.

    The check is the same function the sensor's ``poke`` calls
    (:func:`~airflow_spark_streaming.hooks.checkpoint.check_progress`), run in a
    worker thread so the triggerer's event loop never blocks on storage I/O.
    Yields exactly one event, the verdict as a dict, then returns.

    :param checkpoint: the checkpoint location (path or URI).
    :param criteria: a :class:`~airflow_spark_streaming.hooks.checkpoint.ProgressCriteria` as a dict.
    :param conn_id: the storage connection, if any.
    :param poll_interval: seconds between checks.
    """

    def __init__(
        self, checkpoint: str, criteria: dict[str, Any], conn_id: str | None = None, poll_interval: float = 30.0
    ) -> None:
        super().__init__()
        from airflow_spark_streaming.hooks.checkpoint import ProgressCriteria

        if not checkpoint or not isinstance(checkpoint, str):
            raise SparkStreamingError(f"CheckpointProgressTrigger needs a checkpoint path or URI, got {checkpoint!r}.")
        if not isinstance(poll_interval, int | float) or poll_interval <= 0:
            raise SparkStreamingError(
                f"CheckpointProgressTrigger poll_interval must be > 0 seconds, got {poll_interval!r}."
            )
        try:
            self.criteria = ProgressCriteria(**criteria)
        except TypeError as err:
            raise SparkStreamingError(f"CheckpointProgressTrigger criteria {criteria!r} are invalid: {err}.") from err
        self.checkpoint = checkpoint
        self.conn_id = conn_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "checkpoint": self.checkpoint,
                "criteria": self.criteria.to_dict(),
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_spark_streaming.hooks.checkpoint import check_progress

        while True:
            verdict = await asyncio.to_thread(check_progress, self.checkpoint, self.conn_id, self.criteria)
            if verdict.state != "waiting":
                yield TriggerEvent(verdict.to_dict())
                return
            self.log.info("%s; checking again in %.0fs", verdict.message, self.poll_interval)
            await asyncio.sleep(self.poll_interval)
