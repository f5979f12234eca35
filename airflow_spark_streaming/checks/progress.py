"""The progress check: has a query's checkpoint made the progress a wait asks for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.checks._base import CheckpointCheck
from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState
from airflow_spark_streaming.exceptions import (
    CheckpointError,
    CheckpointNotFoundError,
    CorruptCheckpointFileError,
    SparkStreamingError,
    StorageError,
)
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from airflow_spark_streaming.conditions.progress import ProgressCriteria
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook


@dataclass(kw_only=True)
class ProgressCheck(CheckpointCheck):
    """Read the checkpoint's status and evaluate the progress criteria.

    A missing checkpoint is ``waiting`` when the criteria wait for it to
    appear. When the criteria are not met and ``idle_is_progress`` is set, a
    query the provider's runner runs idle and caught up meets them
    (:func:`runner_is_idle`). Carries no state between evaluations.

    :param criteria: what progress the wait asks for.
    """

    criteria: ProgressCriteria

    @classmethod
    def criteria_class(cls) -> type[ProgressCriteria]:
        from airflow_spark_streaming.conditions.progress import ProgressCriteria

        return ProgressCriteria

    @classmethod
    def _checked_criteria(cls, owner: str, criteria: dict[str, Any]) -> dict[str, Any]:
        if "target_batch_id" in criteria:
            criteria["target_batch_id"] = params.integer(
                owner, "criteria.target_batch_id", criteria["target_batch_id"], optional=True, minimum=0
            )
        if "max_staleness_seconds" in criteria:
            criteria["max_staleness_seconds"] = params.seconds(
                owner, "criteria.max_staleness_seconds", criteria["max_staleness_seconds"], optional=True
            )
        return criteria

    def evaluate(self) -> Verdict:
        from airflow_spark_streaming.conditions.progress import evaluate_progress
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        criteria = self.criteria
        try:
            checkpoint = self.checkpoint_location()
        except SparkStreamingError as err:
            return Verdict.from_error(err)
        hook = CheckpointHook(checkpoint, self.storage_conn_id)
        try:
            status = hook.get_status(include_state=False)
        except CheckpointNotFoundError as err:
            if criteria.wait_for_checkpoint or self.flow_is_starting():
                return Verdict(VerdictState.WAITING, f"{checkpoint}: not started yet ({err})")
            return Verdict.from_error(err)
        except (CheckpointError, StorageError) as err:  # a hung or refusing store ends the wait, named
            return Verdict.from_error(err)
        verdict = evaluate_progress(status, criteria)
        if (
            verdict.state != VerdictState.MET
            and criteria.idle_is_progress
            and status.latest_committed_batch is not None
        ):
            try:
                idle = runner_is_idle(hook, status.latest_committed_batch)
            except (CheckpointError, StorageError) as err:
                return Verdict.from_error(err)
            if idle:
                verdict = evaluate_progress(status, criteria, idle=True)
        return verdict


def runner_is_idle(hook: CheckpointHook, last_committed: int) -> bool:
    """The provider's runner holds a live lease and its last committed batch read all its sources had.

    "All its sources had" is the batch's progress event: every source's
    ``endOffset`` equals its ``latestOffset`` (Kafka reports both). A source
    that reports no ``latestOffset``, or a query without progress events, is
    not judged idle. Newer data that arrived since then is a stall, which the
    lease (a paused driver stops renewing it) and ``StreamHealthSensor`` catch.

    :param hook: the checkpoint's hook.
    :param last_committed: the checkpoint's last committed batch id.
    """
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    control = hook.sibling(RunnerControlHook)
    if control.get_lease() is None:
        return False
    try:
        events = control.get_progress(after_batch=last_committed - 1)
    except CorruptCheckpointFileError:  # the newest event is being written: not idle, a batch just ran
        return False
    events = [e for e in events if e.get("batchId") == last_committed]
    if not events or not events[-1].get("sources"):
        return False
    return all(
        s.get("latestOffset") is not None and _parsed(s.get("endOffset")) == _parsed(s.get("latestOffset"))
        for s in events[-1]["sources"]
    )


def _parsed(value: Any) -> Any:
    """An offset as Spark reports it: a JSON text (Kafka's per-partition map) or a plain value."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
