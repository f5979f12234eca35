"""The stream-health check: is a query's threshold-free status one to wait for, or one to fail on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.checks._base import KafkaCheck
from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState
from airflow_spark_streaming.exceptions import CheckpointNotFoundError, SparkStreamingError, StreamHealthError

if TYPE_CHECKING:
    from airflow_spark_streaming.conditions.health_wait import HealthCriteria

#: The keys of a ``HealthMark`` as a dict.
MARK_KEYS = frozenset({"query_id", "batch_id", "offsets"})


@dataclass(kw_only=True)
class HealthCheck(KafkaCheck):
    """Judge the query's status and evaluate the health criteria.

    Carries ``mark``, what the previous evaluation saw: with it, a checkpoint
    replaced by an older copy is ``REWOUND``. A missing checkpoint is ``waiting``.
    For a pipeline flow the mark also names the checkpoint it was taken on: after
    a full refresh (the next checkpoint version, a new query) it is not compared.

    :param criteria: the statuses that end the wait, and the window.
    :param mark: what the previous evaluation saw (a ``HealthMark`` as a dict), if any.
    """

    error_class = StreamHealthError

    criteria: HealthCriteria
    mark: dict[str, Any] | None = None

    @classmethod
    def criteria_class(cls) -> type[HealthCriteria]:
        from airflow_spark_streaming.conditions.health_wait import HealthCriteria

        return HealthCriteria

    @classmethod
    def _checked_kwargs(cls, owner: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = super()._checked_kwargs(owner, kwargs)
        mark = kwargs.get("mark")
        if mark is not None and not (isinstance(mark, dict) and MARK_KEYS <= set(mark)):
            raise StreamHealthError(f"{owner} mark {mark!r} is not a HealthMark dict.")
        return kwargs

    def evaluate(self) -> Verdict:
        from airflow_spark_streaming.conditions.health_wait import evaluate_health
        from airflow_spark_streaming.conditions.stream_health import HealthMark
        from airflow_spark_streaming.hooks.stream_health import StreamHealthHook

        checkpoint = self.checkpoint or self.flow
        try:
            checkpoint = self.checkpoint_location()
            mark = self.mark
            if mark and self.flow and mark.get("checkpoint") not in (None, checkpoint):
                mark = None  # a full refresh: another checkpoint and query, nothing to compare with
            health = StreamHealthHook(self.kafka_config_id, timeout=self.timeout).get_health(
                checkpoint, storage_conn_id=self.storage_conn_id, window=self.criteria.window,
                previous=HealthMark(**{key: mark[key] for key in MARK_KEYS}) if mark else None,
            )  # fmt: skip
        except CheckpointNotFoundError as err:
            return Verdict(VerdictState.WAITING, f"{checkpoint}: not started yet ({err})")
        except SparkStreamingError as err:
            return Verdict.from_error(err)
        self.mark = {**asdict(health.mark), "checkpoint": checkpoint} if self.flow else asdict(health.mark)
        return evaluate_health(checkpoint, health, self.criteria)
