"""One check per sensor: read through a hook, decide with :mod:`airflow_spark_streaming.conditions`.

The sensor's ``poke`` calls these directly and its trigger through
``asyncio.to_thread``, so both modes decide the same way. Blocking; project
errors come back as an ``error`` verdict, which the sensor raises again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState
from airflow_spark_streaming.exceptions import CheckpointError, CheckpointNotFoundError, SparkStreamingError

if TYPE_CHECKING:
    from airflow_spark_streaming.conditions.lag import LagCriteria
    from airflow_spark_streaming.conditions.progress import ProgressCriteria


def check_progress(checkpoint: str, storage_conn_id: str | None, criteria: ProgressCriteria) -> Verdict:
    """Read the checkpoint and evaluate ``criteria``."""
    from airflow_spark_streaming.conditions.progress import evaluate_progress
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    try:
        status = CheckpointHook(checkpoint, storage_conn_id).get_status(include_state=False)
    except CheckpointNotFoundError as err:
        if criteria.wait_for_checkpoint:
            return Verdict(VerdictState.WAITING, f"{checkpoint}: not started yet ({err})")
        return Verdict.from_error(err)
    except CheckpointError as err:
        return Verdict.from_error(err)
    return evaluate_progress(status, criteria)


def check_lag(
    checkpoint: str,
    criteria: LagCriteria,
    *,
    kafka_config_id: str = "kafka_default",
    storage_conn_id: str | None = None,
    timeout: float = 15.0,
    above_since: float | None = None,
) -> tuple[Verdict, float | None]:
    """Measure the lag and evaluate ``criteria``; also returns when the lag went over the ceiling."""
    from airflow_spark_streaming.conditions.lag import evaluate_lag
    from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook

    try:
        report = KafkaLagHook(kafka_config_id, timeout=timeout).get_lag(
            checkpoint, storage_conn_id=storage_conn_id, basis=criteria.basis
        )
    except SparkStreamingError as err:
        return Verdict.from_error(err), above_since
    return evaluate_lag(report, criteria, above_since)
