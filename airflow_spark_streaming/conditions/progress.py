"""When a stream has made the progress a wait asks for (pure: decides on a status already read)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState

if TYPE_CHECKING:
    from airflow_spark_streaming.checkpoint.models import CheckpointStatus


@dataclass
class ProgressCriteria:
    """What "the stream has made progress" means for a wait.

    :param target_batch_id: the committed batch id must reach this.
    :param committed_after: a batch must have committed after this time
        (epoch seconds), for example the DAG run's start.
    :param max_staleness_seconds: fail instead of waiting when the newest
        commit is older than this.
    :param wait_for_checkpoint: a missing or empty checkpoint means "not
        started yet" (keep waiting) rather than an error.
    :param require_fully_committed: also require that no planned batch is
        left uncommitted (the last run committed everything it started).
    :param idle_is_progress: a query that holds a live lease and whose last
        batch read everything its sources had (an idle, caught-up query) meets
        the wait: on a quiet source Spark runs no batches, and that is healthy.
    """

    target_batch_id: int | None = None
    committed_after: float | None = None
    max_staleness_seconds: float | None = None
    wait_for_checkpoint: bool = True
    require_fully_committed: bool = False
    idle_is_progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_progress(
    status: CheckpointStatus, criteria: ProgressCriteria, now: float | None = None, idle: bool = False
) -> Verdict:
    """Decide whether ``status`` satisfies ``criteria`` (pure: no I/O).

    ``idle``: the query holds a live lease and its last batch was caught up
    (see :func:`airflow_spark_streaming.checks.progress.runner_is_idle`).
    """
    now = time.time() if now is None else now
    committed, last_commit = status.latest_committed_batch, status.last_commit_time
    unmet = []
    if committed is None:
        unmet.append("no batch has committed yet")
    if criteria.target_batch_id is not None and (committed is None or committed < criteria.target_batch_id):
        unmet.append(f"committed batch {committed} has not reached {criteria.target_batch_id}")
    if criteria.committed_after is not None and (last_commit is None or last_commit <= criteria.committed_after):
        unmet.append(
            f"no batch committed after {datetime.fromtimestamp(criteria.committed_after).astimezone().isoformat()}"
        )
    if criteria.require_fully_committed and status.has_uncommitted_batch:
        unmet.append(f"batch {status.latest_planned_batch} is planned but not committed (running, or killed)")
    if not unmet:
        return Verdict(VerdictState.MET, f"{status.checkpoint}: batch {committed} committed", status.to_dict())
    if idle and criteria.idle_is_progress and committed is not None and not criteria.require_fully_committed:
        return Verdict(
            VerdictState.MET,
            f"{status.checkpoint}: idle and caught up at batch {committed}, lease alive (an idle stream is healthy; "
            f"not yet: {'; '.join(unmet)})",
            status.to_dict(),
        )
    age = status.seconds_since_last_commit(now)
    if criteria.max_staleness_seconds is not None and age is not None and age > criteria.max_staleness_seconds:
        return Verdict(
            VerdictState.STALE,
            f"{status.checkpoint} is stale: its last commit (batch {committed}) was {age:.0f}s ago, longer than "
            f"max_staleness {criteria.max_staleness_seconds:.0f}s, and {'; '.join(unmet)}. "
            "Check that the query is running and that its source has data.",
            status.to_dict(),
        )
    return Verdict(VerdictState.WAITING, f"{status.checkpoint}: {'; '.join(unmet)}", status.to_dict())
