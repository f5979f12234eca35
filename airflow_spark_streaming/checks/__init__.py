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
    from airflow_spark_streaming.conditions.health_wait import HealthCriteria
    from airflow_spark_streaming.conditions.lag import LagCriteria
    from airflow_spark_streaming.conditions.progress import ProgressCriteria


def check_progress(checkpoint: str, storage_conn_id: str | None, criteria: ProgressCriteria) -> Verdict:
    """Read the checkpoint and evaluate ``criteria``."""
    from airflow_spark_streaming.conditions.progress import evaluate_progress
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    hook = CheckpointHook(checkpoint, storage_conn_id)
    try:
        status = hook.get_status(include_state=False)
    except CheckpointNotFoundError as err:
        if criteria.wait_for_checkpoint:
            return Verdict(VerdictState.WAITING, f"{checkpoint}: not started yet ({err})")
        return Verdict.from_error(err)
    except CheckpointError as err:
        return Verdict.from_error(err)
    verdict = evaluate_progress(status, criteria)
    if verdict.state != VerdictState.MET and criteria.idle_is_progress and status.latest_committed_batch is not None:
        try:
            idle = runner_is_idle(hook, status.latest_committed_batch)
        except CheckpointError as err:
            return Verdict.from_error(err)
        if idle:
            verdict = evaluate_progress(status, criteria, idle=True)
    return verdict


def runner_is_idle(hook, last_committed: int) -> bool:
    """The provider's runner holds a live lease and its last committed batch read all its sources had.

    "All its sources had" is the batch's progress event: every source's
    ``endOffset`` equals its ``latestOffset`` (Kafka reports both). A source
    that reports no ``latestOffset``, or a query without progress events, is
    not judged idle. Newer data that arrived since then is a stall, which the
    lease (a paused driver stops renewing it) and ``StreamHealthSensor`` catch.
    """
    import json

    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    control = hook.sibling(RunnerControlHook)
    if control.get_lease() is None:
        return False
    from airflow_spark_streaming.exceptions import CorruptCheckpointFileError

    try:
        events = control.get_progress(after_batch=last_committed - 1)
    except CorruptCheckpointFileError:  # the newest event is being written: not idle, a batch just ran
        return False
    events = [e for e in events if e.get("batchId") == last_committed]
    if not events or not events[-1].get("sources"):
        return False

    def parsed(value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    return all(
        s.get("latestOffset") is not None and parsed(s.get("endOffset")) == parsed(s.get("latestOffset"))
        for s in events[-1]["sources"]
    )


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
            checkpoint,
            storage_conn_id=storage_conn_id,
            basis=criteria.basis,
            time_lag=criteria.needs_time_lag,
            liveness=criteria.fail_if_stopped,
        )
    except SparkStreamingError as err:
        return Verdict.from_error(err), above_since
    return evaluate_lag(report, criteria, above_since)


def check_stream_health(
    checkpoint: str,
    criteria: HealthCriteria,
    *,
    kafka_config_id: str = "kafka_default",
    storage_conn_id: str | None = None,
    timeout: float = 15.0,
    mark: dict | None = None,
) -> tuple[Verdict, dict | None]:
    """Judge the stream's status and evaluate ``criteria``; also returns the mark to pass to the next check.

    ``mark`` (a :class:`HealthMark` as a dict) is what the previous check saw:
    with it, a checkpoint replaced by an older copy is ``REWOUND``.
    """
    from dataclasses import asdict

    from airflow_spark_streaming.conditions.health_wait import evaluate_health
    from airflow_spark_streaming.conditions.stream_health import HealthMark
    from airflow_spark_streaming.hooks.stream_health import get_stream_health

    try:
        health = get_stream_health(
            checkpoint, kafka_config_id=kafka_config_id, storage_conn_id=storage_conn_id, window=criteria.window,
            previous=HealthMark(**mark) if mark else None, timeout=timeout,
        )  # fmt: skip
    except CheckpointNotFoundError as err:
        return Verdict(VerdictState.WAITING, f"{checkpoint}: not started yet ({err})"), mark
    except SparkStreamingError as err:
        return Verdict.from_error(err), mark
    return evaluate_health(checkpoint, health, criteria), asdict(health.mark)
