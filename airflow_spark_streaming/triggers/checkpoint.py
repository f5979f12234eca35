"""Deferrable wait on a Structured Streaming checkpoint."""

from __future__ import annotations

from typing import Any

from airflow_spark_streaming.checks.progress import ProgressCheck
from airflow_spark_streaming.triggers._base import VerdictTrigger
from airflow_spark_streaming.utils.deprecation import renamed_parameter


class CheckpointProgressTrigger(VerdictTrigger):
    """Poll a checkpoint until the progress criteria are met, the stream is stale, or it cannot be read.

    Holds a :class:`~airflow_spark_streaming.checks.progress.ProgressCheck`, the
    check the sensor's ``poke`` evaluates, and evaluates it in a worker thread
    so the triggerer's event loop never blocks on storage I/O. Yields exactly
    one event, the verdict as a dict, then returns.

    :param checkpoint: the checkpoint location (path or URI).
    :param pipeline_spec: instead of ``checkpoint``, an SDP pipeline's ``spark-pipeline.yml`` (read in the triggerer).
    :param pipeline_storage: instead of ``checkpoint``, an SDP pipeline's storage root.
    :param flow: with a pipeline, the flow or table name whose checkpoint to read.
    :param criteria: a :class:`~airflow_spark_streaming.conditions.progress.ProgressCriteria` as a dict.
    :param storage_conn_id: the storage connection, if any (``conn_id`` is its deprecated old name,
        still read from triggers serialized by an older release).
    :param poll_interval: seconds between checks.
    """

    check_class = ProgressCheck

    def __init__(
        self,
        checkpoint: str | None = None,
        criteria: dict[str, Any] | None = None,
        storage_conn_id: str | None = None,
        poll_interval: float = 30.0,
        *,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
        conn_id: str | None = None,
    ) -> None:
        storage_conn_id = renamed_parameter(
            "CheckpointProgressTrigger", "conn_id", "storage_conn_id", conn_id, storage_conn_id
        )
        super().__init__(
            checkpoint=checkpoint,
            criteria=criteria,
            pipeline_spec=pipeline_spec,
            pipeline_storage=pipeline_storage,
            flow=flow,
            storage_conn_id=storage_conn_id,
            poll_interval=poll_interval,
        )
