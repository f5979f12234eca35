"""Deferrable wait on a Structured Streaming checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.triggers._base import VerdictTrigger
from airflow_spark_streaming.utils import params
from airflow_spark_streaming.utils.deprecation import renamed_parameter

if TYPE_CHECKING:
    from airflow_spark_streaming.conditions.verdict import Verdict


class CheckpointProgressTrigger(VerdictTrigger):
    """Poll a checkpoint until the progress criteria are met, the stream is stale, or it cannot be read.

    The check is the same function the sensor's ``poke`` calls
    (:func:`~airflow_spark_streaming.checks.check_progress`), run in a
    worker thread so the triggerer's event loop never blocks on storage I/O.
    Yields exactly one event, the verdict as a dict, then returns.

    :param checkpoint: the checkpoint location (path or URI).
    :param criteria: a :class:`~airflow_spark_streaming.conditions.progress.ProgressCriteria` as a dict.
    :param storage_conn_id: the storage connection, if any (``conn_id`` is its deprecated old name,
        still read from triggers serialized by an older release).
    :param poll_interval: seconds between checks.
    """

    def __init__(
        self,
        checkpoint: str,
        criteria: dict[str, Any],
        storage_conn_id: str | None = None,
        poll_interval: float = 30.0,
        *,
        conn_id: str | None = None,
    ) -> None:
        super().__init__(checkpoint, criteria, poll_interval)
        self.storage_conn_id = renamed_parameter(
            "CheckpointProgressTrigger", "conn_id", "storage_conn_id", conn_id, storage_conn_id
        )

    def _criteria_class(self) -> type:
        from airflow_spark_streaming.conditions.progress import ProgressCriteria

        return ProgressCriteria

    def _checked_criteria(self, criteria: dict[str, Any]) -> dict[str, Any]:
        owner = type(self).__name__
        if "target_batch_id" in criteria:
            criteria["target_batch_id"] = params.integer(
                owner, "criteria.target_batch_id", criteria["target_batch_id"], optional=True, minimum=0
            )
        if "max_staleness_seconds" in criteria:
            criteria["max_staleness_seconds"] = params.seconds(
                owner, "criteria.max_staleness_seconds", criteria["max_staleness_seconds"], optional=True
            )
        return criteria

    def _kwargs(self) -> dict[str, Any]:
        return {"storage_conn_id": self.storage_conn_id}

    def _check(self) -> Verdict:
        from airflow_spark_streaming.checks import check_progress

        return check_progress(self.checkpoint, self.storage_conn_id, self.criteria)
