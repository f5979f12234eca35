"""The Kafka lag check: is a query's lag low enough, or has it stayed above the ceiling for too long."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.checks._base import KafkaCheck
from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState
from airflow_spark_streaming.exceptions import (
    CheckpointNotFoundError,
    InvalidParameterError,
    KafkaLagError,
    SparkStreamingError,
)
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from airflow_spark_streaming.conditions.lag import LagCriteria


@dataclass(kw_only=True)
class LagCheck(KafkaCheck):
    """Measure the query's Kafka lag and evaluate the lag criteria.

    Carries ``above_since`` from one evaluation to the next: the ceiling
    alert needs to know how long the lag has been above the ceiling.

    :param criteria: the lag thresholds and the ceiling.
    :param above_since: when the lag went over the ceiling, if it has (epoch seconds).
    """

    error_class = KafkaLagError

    criteria: LagCriteria
    above_since: float | None = None

    @classmethod
    def criteria_class(cls) -> type[LagCriteria]:
        from airflow_spark_streaming.conditions.lag import LagCriteria

        return LagCriteria

    @classmethod
    def _checked_criteria(cls, owner: str, criteria: dict[str, Any]) -> dict[str, Any]:
        for name in ("max_total_lag", "max_partition_lag", "ceiling"):
            if name in criteria:
                criteria[name] = params.integer(owner, f"criteria.{name}", criteria[name], optional=True, minimum=0)
        if not isinstance(criteria.get("fail_if_stopped", False), bool):
            raise InvalidParameterError(
                f"{owner}: criteria.fail_if_stopped must be true or false, got {criteria['fail_if_stopped']!r}."
            )
        if "ceiling_seconds" in criteria:
            criteria["ceiling_seconds"] = params.seconds(
                owner, "criteria.ceiling_seconds", criteria["ceiling_seconds"], optional=True
            )
        return criteria

    def evaluate(self) -> Verdict:
        from airflow_spark_streaming.conditions.lag import evaluate_lag
        from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook

        checkpoint = self.checkpoint or self.flow
        try:
            checkpoint = self.checkpoint_location()
            report = KafkaLagHook(self.kafka_config_id, timeout=self.timeout).get_lag(
                checkpoint,
                storage_conn_id=self.storage_conn_id,
                basis=self.criteria.basis,
                time_lag=self.criteria.needs_time_lag,
                liveness=self.criteria.fail_if_stopped,
            )
        except CheckpointNotFoundError as err:
            if self.flow_is_starting():  # a full refresh's next version, not written yet
                return Verdict(VerdictState.WAITING, f"{checkpoint}: not started yet ({err})")
            return Verdict.from_error(err)
        except SparkStreamingError as err:
            return Verdict.from_error(err)
        verdict, self.above_since = evaluate_lag(report, self.criteria, self.above_since)
        return verdict
