"""Time-lag and headroom criteria, the stream-health wait, idle progress and batch progress lines (no broker)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from airflow_spark_streaming.conditions.health_wait import HealthCriteria, evaluate_health
from airflow_spark_streaming.conditions.lag import LagCriteria, evaluate_lag
from airflow_spark_streaming.conditions.stream_health import (
    BatchOffsets,
    HealthInputs,
    evaluate_stream_health,
)
from airflow_spark_streaming.exceptions import (
    InvalidParameterError,
    KafkaRetentionHeadroomError,
    StreamHealthError,
    StreamUnhealthyError,
)
from airflow_spark_streaming.kafka.models import LagReport, PartitionLag
from airflow_spark_streaming.runner import protocol
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger
from airflow_spark_streaming.triggers.stream_health import StreamHealthTrigger


def _report(time_lag: float | None, headroom: float | None, unknown: list[str] | None = None) -> LagReport:
    return LagReport(
        checkpoint="file:///c", query_id="q", basis="committed", batch_id=3,
        partitions=[PartitionLag("t", 0, 100, 0, 110, 10, time_lag_seconds=time_lag, headroom_seconds=headroom)],
        total_lag=10, max_lag=10, new_partitions=[], deleted_partitions=[], deleted_topics=[],
        data_loss_partitions=[], round_trips=4, measured_at=0.0, max_time_lag_seconds=time_lag,
        min_retention_headroom_seconds=headroom, unbounded_partitions=[], size_bound_partitions=[],
        unknown_time_lag_partitions=unknown or [],
    )  # fmt: skip


@pytest.mark.parametrize(
    "criteria, time_lag, unknown, state",
    [
        (LagCriteria(max_time_lag_seconds=600), 480.0, None, "met"),
        (LagCriteria(max_time_lag_seconds=60), 480.0, None, "waiting"),
        (LagCriteria(max_time_lag_seconds=600), None, ["t:0"], "waiting"),  # unknown counts as waiting
        (LagCriteria(max_time_lag_seconds=600, max_total_lag=5), 10.0, None, "waiting"),
        (LagCriteria(min_retention_headroom_seconds=60), 480.0, None, "waiting"),  # watch-only: until it fails
    ],
)
def test_time_lag_criteria(criteria, time_lag, unknown, state):
    verdict, _ = evaluate_lag(_report(time_lag, 120.0, unknown), criteria, None, now=1.0)
    assert verdict.state == state, verdict.message


def test_headroom_below_the_minimum_fails_with_its_own_error():
    verdict, _ = evaluate_lag(_report(480.0, 120.0), LagCriteria(min_retention_headroom_seconds=300), None)
    assert verdict.state == "error" and verdict.error == "KafkaRetentionHeadroomError"
    assert "120s" in verdict.message and "retention.ms" in verdict.message
    with pytest.raises(KafkaRetentionHeadroomError):
        verdict.raise_for_state()
    ok, _ = evaluate_lag(_report(60.0, 540.0), LagCriteria(min_retention_headroom_seconds=300, max_total_lag=10), None)
    assert ok.state == "met"


def test_time_lag_is_measured_only_when_asked_for():
    assert not LagCriteria(max_total_lag=0).needs_time_lag
    assert (
        LagCriteria(max_time_lag_seconds=5).needs_time_lag
        and LagCriteria(min_retention_headroom_seconds=5).needs_time_lag
    )


def test_old_lag_report_dicts_still_load():
    old = _report(None, None).to_dict()
    for key in ("max_time_lag_seconds", "min_retention_headroom_seconds", "unbounded_partitions",
                "size_bound_partitions", "unknown_time_lag_partitions"):  # fmt: skip
        old.pop(key)
    for p in old["partitions"]:
        for key in ("time_lag_seconds", "record_timestamp_ms", "timestamp_type", "headroom_seconds", "retention_kind"):
            p.pop(key)
    loaded = LagReport.from_dict(old)
    assert loaded.max_time_lag_seconds is None and loaded.partitions[0].time_lag_seconds is None


def test_lag_sensor_takes_timedeltas_and_its_trigger_round_trips():
    sensor = KafkaLagSensor(task_id="s", checkpoint="/c", max_time_lag=timedelta(minutes=10),
                            min_retention_headroom=timedelta(minutes=5))  # fmt: skip
    criteria = sensor._criteria()
    assert (criteria.max_time_lag_seconds, criteria.min_retention_headroom_seconds) == (600.0, 300.0)
    trigger = sensor._trigger({})
    path, kwargs = trigger.serialize()
    again = KafkaLagTrigger(**json.loads(json.dumps(kwargs)))
    assert again.check.criteria == criteria and path.endswith("KafkaLagTrigger")
    with pytest.raises(InvalidParameterError, match="min_retention_headroom"):
        KafkaLagSensor(task_id="bad", checkpoint="/c", min_retention_headroom=-1)


def _health(status_rows, lease: bool | None, latest: dict[str, int], now: float = 100.0):
    batches = [BatchOffsets(i, True, float(10 * i), {"t:0": offset}) for i, offset in enumerate(status_rows)]
    return evaluate_stream_health(HealthInputs("q", batches, latest, lease, now))


def test_health_wait_meets_fails_or_waits():
    criteria = HealthCriteria()
    idle = _health([10, 20, 30], True, {"t:0": 30}, now=1000.0)  # idle for long, caught up, lease alive
    assert idle.status == "OK"
    assert evaluate_health("/c", idle, criteria).state == "met"
    stopped = _health([10, 20, 30], False, {"t:0": 30}, now=1000.0)
    verdict = evaluate_health("/c", stopped, criteria)
    assert stopped.status == "STOPPED" and verdict.error == "StreamUnhealthyError"
    with pytest.raises(StreamUnhealthyError, match="STOPPED"):
        verdict.raise_for_state()
    assert evaluate_health("/c", stopped, HealthCriteria(fail_on=["REWOUND"])).state == "waiting"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"wait_for": ["FINE"]}, "Unknown stream status FINE"),
        ({"wait_for": []}, "wait_for is empty"),
        ({"wait_for": ["OK"], "fail_on": ["OK"]}, "in both"),
        ({"wait_for": "OK"}, "sequences"),
        ({"window": 1}, "window"),
    ],
)
def test_health_criteria_reject_bad_statuses(kwargs, match):
    with pytest.raises(StreamHealthError, match=match):
        HealthCriteria(**kwargs)


def test_stream_health_sensor_fails_at_parse_time_and_its_trigger_keeps_the_mark():
    with pytest.raises(StreamHealthError, match="s: Unknown stream status"):
        StreamHealthSensor(checkpoint="/c", task_id="s", wait_for=("GREEN",))
    sensor = StreamHealthSensor(checkpoint="/c", task_id="s", wait_for=("ok", "lagging"), poke_interval=3)
    mark = {"query_id": "q", "batch_id": 4, "offsets": {"t:0": 12}}
    sensor._current_check({}).mark = mark  # what the last poke saw
    path, kwargs = sensor._trigger({}).serialize()
    again = StreamHealthTrigger(**json.loads(json.dumps(kwargs)))
    assert path == "airflow_spark_streaming.triggers.stream_health.StreamHealthTrigger"
    assert again.check.mark == mark and again.check.criteria.wait_for == ["OK", "LAGGING"]
    assert again.serialize() == (path, kwargs) and again.poll_interval == 3
    with pytest.raises(StreamHealthError, match="mark"):
        StreamHealthTrigger("/c", HealthCriteria().to_dict(), mark={"batch_id": 1})


def test_idle_meets_a_progress_wait_unless_turned_off():
    from airflow_spark_streaming.checkpoint.models import CheckpointStatus
    from airflow_spark_streaming.conditions.progress import ProgressCriteria, evaluate_progress

    status = CheckpointStatus(
        checkpoint="/c", query_id="q", latest_planned_batch=4, latest_committed_batch=4, has_uncommitted_batch=False,
        incomplete_offsets_file=False, oldest_retained_batch=0, offsets_log_version=1, commits_log_version=1,
        batch_timestamp_ms=None, batch_watermark_ms=None, committed_batch_timestamp_ms=None, next_watermark_ms=None,
        last_commit_time=10.0, planned_sources=[], committed_sources=[], initial_offsets={},
        stateful_operators=[], conf={},
    )  # fmt: skip
    wait = ProgressCriteria(target_batch_id=7, max_staleness_seconds=60)
    assert evaluate_progress(status, wait, now=1000.0).state == "stale"
    idle = evaluate_progress(status, wait, now=1000.0, idle=True)
    assert idle.state == "met" and "idle" in idle.message
    off = ProgressCriteria(target_batch_id=7, idle_is_progress=False)
    assert evaluate_progress(status, off, now=1000.0, idle=True).state == "waiting"


def _write_event(folder, batch_id: int, rows: int, end: int, latest: int, duration_ms: int = 500) -> None:
    source = {
        "description": "KafkaV2[Subscribe[t]]",
        "endOffset": {"t": {"0": end}},
        "latestOffset": {"t": {"0": latest}},
    }
    event = {"batchId": batch_id, "numInputRows": rows, "processedRowsPerSecond": rows * 1000.0 / duration_ms,
             "durationMs": {"triggerExecution": duration_ms}, "sources": [source]}  # fmt: skip
    (folder / protocol.PROGRESS_DIR).mkdir(exist_ok=True)
    (folder / protocol.PROGRESS_DIR / protocol.progress_file(batch_id)).write_text(json.dumps(event))


def test_batch_progress_log_writes_one_line_per_batch_with_share_and_eta(tmp_path, caplog):
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.operators._progress_log import BatchProgressLog

    log = logging.getLogger("test.progress")
    progress = BatchProgressLog(RunnerControlHook(str(tmp_path)), log, after_batch=1)
    _write_event(tmp_path, 1, 400, 400, 400)  # a batch of an earlier run: not logged
    _write_event(tmp_path, 2, 400, 800, 1600)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        assert progress.poll() == 1
        _write_event(tmp_path, 3, 400, 1200, 1600)
        _write_event(tmp_path, 4, 400, 1600, 1600)
        assert progress.poll() == 2 and progress.poll() == 0
    assert progress.lines[0].startswith("batch 2: 400 rows, 800 rows/s; 400 of 1,200 records (33%), ETA ")
    assert progress.lines[1].startswith("batch 3: 400 rows, 800 rows/s; 800 of 1,200 records (67%), ETA ")
    assert progress.lines[2] == "batch 4: 400 rows, 800 rows/s; 1,200 of 1,200 records (100%), done"
    assert [r.getMessage() for r in caplog.records] == progress.lines
