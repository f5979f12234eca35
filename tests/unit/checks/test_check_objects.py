"""The sensor check objects: kwargs round trips and validation, the state they carry, and one check per sensor and trigger."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

from airflow_spark_streaming.checks.delta import SmallFilesCheck
from airflow_spark_streaming.checks.lag import LagCheck
from airflow_spark_streaming.checks.progress import ProgressCheck
from airflow_spark_streaming.checks.stream_health import HealthCheck
from airflow_spark_streaming.conditions.compaction import CompactionPolicy
from airflow_spark_streaming.conditions.health_wait import HealthCriteria
from airflow_spark_streaming.conditions.lag import LagCriteria
from airflow_spark_streaming.conditions.progress import ProgressCriteria
from airflow_spark_streaming.conditions.stream_health import BatchOffsets, HealthInputs, evaluate_stream_health
from airflow_spark_streaming.delta.models import DeltaTableStats, PartitionFileStats
from airflow_spark_streaming.exceptions import (
    CheckpointNotFoundError,
    InvalidParameterError,
    KafkaBrokerUnreachableError,
    KafkaLagCeilingError,
    KafkaLagError,
    NotADeltaTableError,
    SparkStreamingError,
    StreamHealthError,
)
from airflow_spark_streaming.hooks.delta import DeltaTableHook
from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook
from airflow_spark_streaming.hooks.stream_health import StreamHealthHook, get_stream_health
from airflow_spark_streaming.kafka.models import LagReport, PartitionLag
from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger
from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger
from airflow_spark_streaming.triggers.stream_health import StreamHealthTrigger

MARK = {"query_id": "q", "batch_id": 4, "offsets": {"t:0": 12}}

CHECKS = [
    ProgressCheck(checkpoint="s3://b/c", criteria=ProgressCriteria(target_batch_id=3), storage_conn_id="aws"),
    LagCheck(
        checkpoint="/c",
        criteria=LagCriteria(max_total_lag=0, ceiling=5, ceiling_seconds=60.0),
        kafka_config_id="k",
        timeout=5.0,
        above_since=3.0,
    ),  # fmt: skip
    HealthCheck(checkpoint="/c", criteria=HealthCriteria(wait_for=["OK", "LAGGING"]), mark=MARK),
    SmallFilesCheck(table_uri="/t", policy=CompactionPolicy.from_rule("iceberg"), storage_options={"k": "v"}),
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: type(c).__name__)
def test_the_kwargs_are_json_and_give_the_same_check_back(check):
    kwargs = check.to_kwargs()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert type(check).from_kwargs(owner="T", **json.loads(json.dumps(kwargs))) == check


def test_the_kwargs_are_copies():
    check = HealthCheck(checkpoint="/c", criteria=HealthCriteria(), mark={**MARK, "offsets": {"t:0": 12}})
    check.to_kwargs()["mark"]["offsets"]["t:0"] = 99
    assert check.mark["offsets"] == {"t:0": 12}


@pytest.mark.parametrize(
    "check_class, kwargs, error, message",
    [
        (ProgressCheck, {"checkpoint": "", "criteria": {}}, SparkStreamingError, "T needs a checkpoint path"),
        (ProgressCheck, {"checkpoint": "/c", "criteria": []}, SparkStreamingError, r"T criteria \[\] are invalid"),
        (ProgressCheck, {"checkpoint": "/c", "criteria": {"target": 3}}, SparkStreamingError, "unexpected keyword"),
        (ProgressCheck, {"checkpoint": "/c", "criteria": {"target_batch_id": 1.9}}, InvalidParameterError,
         "T: criteria.target_batch_id=1.9 is not an integer"),
        (LagCheck, {"checkpoint": None, "criteria": {"max_total_lag": 1}}, KafkaLagError, "T needs a checkpoint"),
        (LagCheck, {"checkpoint": "/c", "criteria": {}}, KafkaLagError, "nothing to wait for"),
        (LagCheck, {"checkpoint": "/c", "criteria": {"max_total_lag": 1}, "timeout": 0}, InvalidParameterError,
         "timeout=0 must be more than zero"),
        (LagCheck, {"checkpoint": "/c", "criteria": {"max_total_lag": 1, "fail_if_stopped": 1}}, InvalidParameterError,
         "T: criteria.fail_if_stopped must be true or false"),
        (HealthCheck, {"checkpoint": "/c", "criteria": {"wait_for": ["GREEN"]}}, StreamHealthError, "GREEN"),
        (HealthCheck, {"checkpoint": "/c", "criteria": {}, "mark": {"batch_id": 1}}, StreamHealthError,
         "T mark .* is not a HealthMark dict"),
        (SmallFilesCheck, {"table_uri": "", "policy": {}}, SparkStreamingError, "T needs a Delta table path"),
        (SmallFilesCheck, {"table_uri": "/t", "policy": {"rule": "delta"}}, SparkStreamingError, "policy"),
    ],
)  # fmt: skip
def test_bad_kwargs_are_refused_under_the_owners_name(check_class, kwargs, error, message):
    with pytest.raises(error, match=message):
        check_class.from_kwargs(owner="T", **kwargs)


def test_each_trigger_holds_its_sensors_check_and_serialises_it():
    for trigger, check_class in [
        (CheckpointProgressTrigger("/c", {"target_batch_id": 3}, poll_interval=5), ProgressCheck),
        (KafkaLagTrigger("/c", {"max_total_lag": 3}, above_since=2.0), LagCheck),
        (StreamHealthTrigger("/c", {}, mark=MARK), HealthCheck),
    ]:
        assert type(trigger.check) is check_class
        path, kwargs = trigger.serialize()
        assert kwargs == {**trigger.check.to_kwargs(), "poll_interval": trigger.poll_interval}
        assert type(trigger)(**json.loads(json.dumps(kwargs))).check == trigger.check


# --- the state a check carries ------------------------------------------------------------------------


def _report(total: int) -> LagReport:
    return LagReport(
        checkpoint="/c", query_id="q", basis="committed", batch_id=1, partitions=[PartitionLag("t", 0, 0, 0, total, total)],
        total_lag=total, max_lag=total, new_partitions=[], deleted_partitions=[], deleted_topics=[],
        data_loss_partitions=[], round_trips=3,
    )  # fmt: skip


@pytest.fixture
def lag_reports(monkeypatch):
    """``KafkaLagHook.get_lag`` answers with the queued reports (or raises the queued errors), in order."""
    queued: list = []
    seen: list[dict] = []

    def get_lag(hook, checkpoint, **kwargs):
        seen.append({"checkpoint": checkpoint, "kafka_config_id": hook.kafka_config_id, **kwargs})
        answer = queued.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(KafkaLagHook, "get_lag", get_lag)
    return queued, seen


def test_the_lag_check_carries_when_the_lag_went_over_the_ceiling(lag_reports, monkeypatch):
    queued, seen = lag_reports
    clock = iter([1000.0, 1061.0, 1070.0])  # an error reads no clock
    monkeypatch.setattr("airflow_spark_streaming.conditions.lag.time.time", lambda: next(clock))
    check = LagCheck(checkpoint="/c", criteria=LagCriteria(max_total_lag=0, ceiling=50, ceiling_seconds=60.0),
                     kafka_config_id="k", storage_conn_id="aws")  # fmt: skip
    queued += [_report(80), KafkaBrokerUnreachableError("no answer"), _report(90), _report(10)]
    assert check.evaluate().state == "waiting" and check.above_since == 1000.0
    failed = check.evaluate()
    assert (failed.state, failed.error, check.above_since) == ("error", "KafkaBrokerUnreachableError", 1000.0)
    alert = check.evaluate()
    assert alert.state == "alert" and "for 61s" in alert.message and check.above_since == 1000.0
    assert check.evaluate().state == "waiting" and check.above_since is None  # below the ceiling: reset
    assert seen[0] == {"checkpoint": "/c", "kafka_config_id": "k", "storage_conn_id": "aws", "basis": "committed",
                       "time_lag": False, "liveness": False}  # fmt: skip


def _health(latest: int):
    batches = [BatchOffsets(i, True, 100.0 + 10 * i, {"t:0": 10 * (i + 1)}) for i in range(3)]
    return evaluate_stream_health(HealthInputs("q", batches, {"t:0": latest}, True, 130.0))


def test_the_health_check_carries_the_mark_of_what_it_saw(monkeypatch):
    answers = [CheckpointNotFoundError("no checkpoint yet"), _health(30), _health(40), KafkaLagError("broken")]
    previous_marks = []

    def get_health(hook, checkpoint, *, storage_conn_id, window, previous, now=None):
        previous_marks.append(previous)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(StreamHealthHook, "get_health", get_health)
    check = HealthCheck(checkpoint="/c", criteria=HealthCriteria(wait_for=["LAGGING"]))
    assert check.evaluate().state == "waiting" and check.mark is None  # not started yet
    assert check.evaluate().state == "waiting"  # caught up: OK, not LAGGING
    assert check.mark == {"query_id": "q", "batch_id": 2, "offsets": {"t:0": 30}}
    check.evaluate()
    error = check.evaluate()
    assert (error.state, error.error) == ("error", "KafkaLagError")
    assert check.mark == {"query_id": "q", "batch_id": 2, "offsets": {"t:0": 30}}  # an error keeps the mark
    assert previous_marks[:2] == [None, None] and previous_marks[2].offsets == {"t:0": 30}


def test_get_stream_health_is_the_hooks_get_health(monkeypatch):
    calls = []
    monkeypatch.setattr(
        StreamHealthHook, "get_health", lambda hook, checkpoint, **kw: calls.append((hook, checkpoint, kw))
    )
    get_stream_health("/c", kafka_config_id="k", storage_conn_id="aws", window=5, timeout=3.0, now=9.0)
    ((hook, checkpoint, kwargs),) = calls
    assert (hook.kafka_config_id, hook.timeout, checkpoint) == ("k", 3.0, "/c")
    assert kwargs == {"storage_conn_id": "aws", "window": 5, "previous": None, "now": 9.0}


def test_the_progress_check_waits_for_a_missing_checkpoint_unless_told_not_to(tmp_path):
    missing = str(tmp_path / "nothing")
    assert ProgressCheck(checkpoint=missing, criteria=ProgressCriteria()).evaluate().state == "waiting"
    refused = ProgressCheck(checkpoint=missing, criteria=ProgressCriteria(wait_for_checkpoint=False)).evaluate()
    assert (refused.state, refused.error) == ("error", "CheckpointNotFoundError")


# --- one check per sensor and trigger ------------------------------------------------------------------


def test_poke_and_the_trigger_evaluate_the_same_check_in_their_own_threads(lag_reports, monkeypatch):
    queued, _ = lag_reports
    monkeypatch.setattr("airflow_spark_streaming.conditions.lag.time.time", lambda: 500.0)
    threads = []
    evaluate = LagCheck.evaluate

    def recording_evaluate(check):
        threads.append(threading.current_thread())
        return evaluate(check)

    monkeypatch.setattr(LagCheck, "evaluate", recording_evaluate)
    sensor = KafkaLagSensor(task_id="lag", checkpoint="/c", max_total_lag=0, ceiling=50, ceiling_for=600,
                            deferrable=True, poke_interval=0.01)  # fmt: skip
    queued += [_report(80)]
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, KafkaLagTrigger) and threads == [threading.main_thread()]
    assert sensor._current_check({}).above_since == 500.0 == trigger.check.above_since  # the poke's state goes on
    assert trigger.check == sensor._current_check({}) and trigger.check is not sensor._current_check({})
    started = trigger.serialize()

    queued += [_report(70), _report(0)]
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), timeout=10))
    assert event.payload["state"] == "met" and event.payload["payload"]["total_lag"] == 0
    assert len(threads) == 3 and all(t is not threading.main_thread() for t in threads[1:])
    assert trigger.check.above_since is None and trigger.serialize() == started  # moved on; serialised as started
    assert sensor.execute_complete({}, event.payload)["total_lag"] == 0


def test_the_sensor_keeps_its_check_between_pokes(lag_reports, monkeypatch):
    queued, _ = lag_reports
    clock = iter([1000.0, 1100.0])
    monkeypatch.setattr("airflow_spark_streaming.conditions.lag.time.time", lambda: next(clock))
    sensor = KafkaLagSensor(task_id="lag", checkpoint="/c", max_total_lag=0, ceiling=50, ceiling_for=60)
    queued += [_report(80), _report(80)]
    assert not sensor.poke({}).is_done
    with pytest.raises(KafkaLagCeilingError, match="above the ceiling 50 for 100s"):
        sensor.poke({})


def test_the_health_sensors_trigger_starts_from_the_mark_its_poke_saw(monkeypatch):
    monkeypatch.setattr(StreamHealthHook, "get_health", lambda hook, checkpoint, **kw: _health(40))
    sensor = StreamHealthSensor(task_id="h", checkpoint="/c", wait_for=("LAGGING",), deferrable=True, poke_interval=1)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert deferred.value.trigger.check.mark == {"query_id": "q", "batch_id": 2, "offsets": {"t:0": 30}}


# --- the small-files check ---------------------------------------------------------------------------


def _stats(small_file_bytes: int, small_files: int) -> DeltaTableStats:
    partition = PartitionFileStats({"day": "1"}, small_files + 1, 10**9, small_files, small_files * 1000)
    return DeltaTableStats(
        table_uri="/t", version=3, partition_columns=["day"], num_files=small_files + 1, total_bytes=10**9,
        num_records=None, small_file_bytes=small_file_bytes, small_files=small_files,
        small_file_share=small_files / (small_files + 1), size_histogram=[], partitions=[partition],
        min_reader_version=1, min_writer_version=2, reader_features=[], writer_features=[], properties={},
        last_optimize=None, last_vacuum=None, read_at=0.0,
    )  # fmt: skip


class _TaskInstance:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_the_small_files_check_decides_and_its_sensor_skips_or_succeeds(monkeypatch):
    small = {"files": 3}
    monkeypatch.setattr(
        DeltaTableHook, "get_stats", lambda hook, *, small_file_bytes: _stats(small_file_bytes, small["files"])
    )
    policy = CompactionPolicy.from_rule("delta", min_small_files=5)
    verdict = SmallFilesCheck(table_uri="/t", policy=policy).evaluate()
    assert verdict.state == "waiting" and verdict.payload["decision"]["warranted"] is False
    assert verdict.message.startswith("/t: 4 files, 3 small (75%); no partition holds 5 files")

    ti = _TaskInstance()
    with pytest.raises(AirflowSkipException, match="Compaction of /t is not needed: no partition holds 5 files"):
        DeltaSmallFilesSensor(task_id="s", table_uri="/t", min_small_files=5).poke({"ti": ti})
    assert ti.pushed["small_files"] == verdict.payload
    assert not DeltaSmallFilesSensor(task_id="s", table_uri="/t", min_small_files=5,
                                     skip_when_not_needed=False).poke({"ti": ti}).is_done  # fmt: skip
    small["files"] = 7
    done = DeltaSmallFilesSensor(task_id="s", table_uri="/t", min_small_files=5).poke({"ti": ti})
    assert done.is_done and done.xcom_value["decision"]["candidate_files"] == 7


def test_the_small_files_check_raises_what_the_table_read_raises(monkeypatch):
    def missing(hook, *, small_file_bytes):
        raise NotADeltaTableError("/t does not exist; check the table path.")

    monkeypatch.setattr(DeltaTableHook, "get_stats", missing)
    with pytest.raises(NotADeltaTableError, match="does not exist"):
        SmallFilesCheck(table_uri="/t", policy=CompactionPolicy.from_rule()).evaluate()
