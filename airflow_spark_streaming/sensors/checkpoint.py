"""Wait for a Structured Streaming query to make progress, judged from its checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf

from airflow_spark_streaming.exceptions import InvalidParameterError
from airflow_spark_streaming.sensors._base import (
    CheckpointTargetSensor,
    VerdictSensor,
    check_unless_templated,
    optional_int,
)
from airflow_spark_streaming.utils import params
from airflow_spark_streaming.utils.deprecation import renamed_parameter

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.checks.progress import ProgressCheck
    from airflow_spark_streaming.conditions.progress import ProgressCriteria
    from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger

DAG_RUN_START = "dag_run_start"


class StreamingProgressSensor(CheckpointTargetSensor, VerdictSensor):
    """Wait until a streaming query's checkpoint shows the progress you ask for.

    Succeeds when the committed batch id reaches ``target_batch_id`` and/or a
    batch has committed after ``committed_after``; with neither, when any batch
    has committed. Fails at once, without waiting for the timeout, when the
    newest commit is older than ``max_staleness``. The
    :class:`~airflow_spark_streaming.checkpoint.CheckpointStatus` is
    pushed to XCom (``return_value``).

    :param checkpoint: the query's checkpoint location, a path or URI. (templated)
    :param pipeline_spec: instead of ``checkpoint``, the ``spark-pipeline.yml`` of a Spark Declarative
        Pipeline (path or URI, readable by the worker and, when deferred, the triggerer). (templated)
    :param pipeline_storage: instead of ``checkpoint``, the pipeline's storage root. (templated)
    :param flow: with ``pipeline_spec`` or ``pipeline_storage``: the flow or table name
        (``[catalog.][database.]name``) whose checkpoint to read (see docs/sdp-pipelines.md). (templated)
    :param storage_conn_id: the storage connection for the checkpoint; none for local paths.
        ``conn_id`` is its deprecated old name.
    :param target_batch_id: wait until this batch id has committed. (templated)
    :param committed_after: wait for a commit after this moment: ``"dag_run_start"``,
        a datetime, or an ISO-8601 string. (templated)
    :param max_staleness: fail when the last commit is older than this
        (a timedelta or seconds) and the criteria are not met yet.
    :param require_fully_committed: also require that no planned batch is left
        uncommitted, i.e. the last run committed everything it started.
    :param wait_for_checkpoint: treat a missing or empty checkpoint as "not started
        yet" and keep waiting; if False, fail at once.
    :param idle_is_progress: a long-running query that holds a live lease and whose
        last batch read everything its sources had (idle, caught up) meets the wait
        even without new batches: on a quiet topic Spark runs none. Default True.
    :param deferrable: wait in the triggerer instead of holding a worker slot;
        defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = (
        "checkpoint",
        "pipeline_spec",
        "pipeline_storage",
        "flow",
        "target_batch_id",
        "committed_after",
    )

    def __init__(
        self,
        *,
        checkpoint: str | None = None,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
        storage_conn_id: str | None = None,
        target_batch_id: int | str | None = None,
        committed_after: datetime | str | None = None,
        max_staleness: timedelta | float | None = None,
        wait_for_checkpoint: bool = True,
        require_fully_committed: bool = False,
        idle_is_progress: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_target(checkpoint, pipeline_spec, pipeline_storage, flow)
        self.storage_conn_id = renamed_parameter(
            "StreamingProgressSensor", "conn_id", "storage_conn_id", conn_id, storage_conn_id
        )
        check_unless_templated(self.task_id, "target_batch_id", target_batch_id)
        if not params.is_template(committed_after):
            self._committed_after(committed_after)
        self.target_batch_id = target_batch_id
        self.committed_after = committed_after
        self.max_staleness = params.seconds(self.task_id, "max_staleness", max_staleness, optional=True)
        self.wait_for_checkpoint = wait_for_checkpoint
        self.require_fully_committed = require_fully_committed
        self.idle_is_progress = idle_is_progress
        self.deferrable = deferrable

    def _criteria(self, context: Context) -> ProgressCriteria:
        from airflow_spark_streaming.conditions.progress import ProgressCriteria

        self._target_kwargs()  # the checkpoint or the pipeline flow, as rendered
        after = self._committed_after(self.committed_after)
        if after == DAG_RUN_START:
            after = context["dag_run"].start_date
        return ProgressCriteria(
            target_batch_id=optional_int(self.task_id, "target_batch_id", self.target_batch_id),
            committed_after=after.timestamp() if isinstance(after, datetime) else None,
            max_staleness_seconds=self.max_staleness,
            wait_for_checkpoint=self.wait_for_checkpoint,
            require_fully_committed=self.require_fully_committed,
            idle_is_progress=self.idle_is_progress,
        )

    def _committed_after(self, after: Any) -> datetime | str | None:
        """``committed_after`` checked: ``dag_run_start``, a datetime, an ISO-8601 string, or unset."""
        if after is None or after == "" or after == DAG_RUN_START or isinstance(after, datetime):
            return after or None
        if isinstance(after, str):
            try:
                return datetime.fromisoformat(after)
            except ValueError:
                pass
        raise InvalidParameterError(
            f"{self.task_id}: committed_after={after!r} is neither {DAG_RUN_START!r}, a datetime, nor an ISO-8601 "
            "time such as '2026-01-31T12:00:00+00:00'."
        )

    def _new_check(self, context: Context) -> ProgressCheck:
        from airflow_spark_streaming.checks.progress import ProgressCheck

        return ProgressCheck(
            **self._target_kwargs(), criteria=self._criteria(context), storage_conn_id=self.storage_conn_id
        )

    def _trigger_class(self) -> type[CheckpointProgressTrigger]:
        from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger

        return CheckpointProgressTrigger
