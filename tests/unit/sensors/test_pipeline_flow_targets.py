"""Sensors, triggers and Delta operators take an SDP pipeline's flow instead of a checkpoint: exactly one, checked
when the DAG is parsed; triggers serialize the pipeline fields; and the check resolves the flow at each evaluation."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.checks.progress import ProgressCheck
from airflow_spark_streaming.exceptions import InvalidEventTriggerError, InvalidPipelineFlowError
from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator
from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger
from airflow_spark_streaming.triggers.events import CheckpointCommitEventTrigger
from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger
from airflow_spark_streaming.triggers.stream_health import StreamHealthTrigger

SENSORS = [
    (StreamingProgressSensor, {}),
    (KafkaLagSensor, {"max_total_lag": 0}),
    (StreamHealthSensor, {}),
]


@pytest.mark.parametrize("sensor, extra", SENSORS)
@pytest.mark.parametrize(
    "where, message",
    [
        ({"checkpoint": "/c", "pipeline_storage": "/s", "flow": "orders"}, "not both"),
        ({"pipeline_spec": "/p/spark-pipeline.yml", "pipeline_storage": "/s", "flow": "orders"}, "not both"),
        ({"pipeline_storage": "/s"}, "needs flow"),
        ({"flow": "orders"}, "give the pipeline too"),
        ({"pipeline_storage": "s", "flow": "orders"}, "absolute path"),
        ({"pipeline_storage": "/s", "flow": "or/ders"}, "not a plain name"),
    ],
)  # fmt: skip
def test_sensors_refuse_anything_but_one_checkpoint_or_one_pipeline_flow_when_parsed(sensor, extra, where, message):
    with pytest.raises(InvalidPipelineFlowError, match=f"^s: .*{message}"):
        sensor(task_id="s", **extra, **where)


@pytest.mark.parametrize("sensor, extra", SENSORS)
def test_neither_is_the_checkpoints_own_error_as_before_pipelines(sensor, extra):
    from airflow_spark_streaming.exceptions import InvalidCheckpointPathError

    with pytest.raises(InvalidCheckpointPathError, match="^s: checkpoint is of type NoneType"):
        sensor(task_id="s", **extra)


@pytest.mark.parametrize("sensor, extra", SENSORS)
def test_a_templated_pipeline_is_checked_once_rendered(sensor, extra):
    task = sensor(task_id="s", pipeline_spec="{{ ti.xcom_pull('stage') }}", flow="{{ params.table }}", **extra)
    assert {"pipeline_spec", "pipeline_storage", "flow"} <= set(task.template_fields)
    task.pipeline_spec, task.flow = "relative.yml", "orders"  # as a bad rendering would leave them
    with pytest.raises(InvalidPipelineFlowError, match="pipeline_spec must be an absolute path"):
        task._target_kwargs()
    task.pipeline_spec = "/p/spark-pipeline.yml"
    assert task._target_kwargs() == {
        "pipeline_spec": "/p/spark-pipeline.yml",
        "pipeline_storage": None,
        "flow": "orders",
    }


def test_a_sensor_given_a_checkpoint_hands_the_check_only_the_checkpoint():
    task = KafkaLagSensor(task_id="s", checkpoint="/c", max_total_lag=0)
    assert task._target_kwargs() == {"checkpoint": "/c"}


@pytest.mark.parametrize(
    "trigger, args",
    [
        (CheckpointProgressTrigger, {"criteria": {"target_batch_id": 1}}),
        (KafkaLagTrigger, {"criteria": {"max_total_lag": 0}}),
        (StreamHealthTrigger, {"criteria": {}}),
    ],
)
def test_triggers_serialize_the_pipeline_flow_and_rebuild_the_same_check(trigger, args):
    made = trigger(pipeline_storage="file:///lake/sdp/storage", flow="spark_catalog.default.orders", **args)
    path, kwargs = made.serialize()
    assert (kwargs["pipeline_storage"], kwargs["flow"], kwargs["checkpoint"], kwargs["pipeline_spec"]) == (
        "file:///lake/sdp/storage", "spark_catalog.default.orders", None, None
    )  # fmt: skip
    again = trigger(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert again.check.to_kwargs() == made.check.to_kwargs()
    with pytest.raises(InvalidPipelineFlowError, match="not both"):
        trigger(**{**kwargs, "checkpoint": "/c"})
    with pytest.raises(InvalidPipelineFlowError, match="flow"):
        trigger(**{**kwargs, "flow": "a.b.c.d"})


def test_the_check_resolves_the_flow_at_each_evaluation(tmp_path):
    # A full refresh starts version 1 between two evaluations: the second reads the new version.
    flow = tmp_path / "_checkpoints" / "spark_catalog" / "default" / "orders" / "orders"
    (flow / "0").mkdir(parents=True)
    check = ProgressCheck.from_kwargs(owner="T", pipeline_storage=str(tmp_path), flow="orders",
                                      criteria={"wait_for_checkpoint": True})  # fmt: skip
    assert check.checkpoint_location() == f"{flow}/0"
    first = check.evaluate()
    assert first.state.value == "waiting" and f"{flow}/0" in first.message
    (flow / "1").mkdir()
    assert check.checkpoint_location() == f"{flow}/1"
    assert f"{flow}/1" in check.evaluate().message


def test_a_missing_spec_is_an_error_verdict_not_an_exception(tmp_path):
    check = ProgressCheck.from_kwargs(owner="T", pipeline_spec=str(tmp_path / "spark-pipeline.yml"), flow="orders",
                                      criteria={})  # fmt: skip
    verdict = check.evaluate()
    assert verdict.state.value == "error" and "PipelineSpecError" in str(verdict.to_dict())


def test_the_commit_event_trigger_watches_a_flow_with_its_own_cursor(tmp_path):
    trigger = CheckpointCommitEventTrigger(pipeline_storage=str(tmp_path), flow="orders", poll_interval=5)
    assert trigger.location() == f"{tmp_path}#flow=orders"
    _, kwargs = trigger.serialize()
    assert (kwargs["checkpoint"], kwargs["pipeline_storage"], kwargs["flow"]) == (None, str(tmp_path), "orders")
    assert CheckpointCommitEventTrigger(**kwargs).serialize()[1] == kwargs
    with pytest.raises(InvalidEventTriggerError, match="not both"):
        CheckpointCommitEventTrigger(checkpoint="/c", pipeline_storage=str(tmp_path), flow="orders")
    with pytest.raises(InvalidEventTriggerError, match="needs flow"):
        CheckpointCommitEventTrigger(pipeline_storage=str(tmp_path))


@pytest.mark.parametrize("operator", [DeltaOptimizeOperator, DeltaVacuumOperator])
def test_delta_operators_take_the_pipeline_flow_as_the_tables_writer(operator, tmp_path):
    flow = tmp_path / "_checkpoints" / "spark_catalog" / "default" / "orders" / "orders" / "3"
    flow.mkdir(parents=True)
    task = operator(task_id="m", table_uri="/w/orders", pipeline_storage=str(tmp_path), flow="orders")
    assert task._names_writer() and task._writer_checkpoint() == str(flow)
    assert {"pipeline_spec", "pipeline_storage", "flow"} <= set(task.template_fields)
    with pytest.raises(InvalidPipelineFlowError, match="give stream_checkpoint .* or a pipeline with its flow"):
        operator(task_id="m", table_uri="/w/orders", stream_checkpoint="/c", pipeline_storage="/s", flow="orders")
    with pytest.raises(InvalidPipelineFlowError, match="pipeline_storage needs flow"):
        operator(task_id="m", table_uri="/w/orders", pipeline_storage="/s")
    plain = operator(task_id="m", table_uri="/w/orders")
    assert not plain._names_writer() and plain._writer_checkpoint() is None


def test_on_s3_a_pipeline_flow_names_the_writer_at_parse_time():
    # Without a writer an S3 OPTIMIZE is refused when parsed; the pipeline's flow is a writer.
    task = DeltaOptimizeOperator(task_id="m", table_uri="s3://lake/orders", pipeline_storage="s3://lake/sdp",
                                 flow="orders")  # fmt: skip
    assert task.flow == "orders" and not task.no_concurrent_writers


def test_the_commit_event_trigger_reports_a_full_refresh_and_a_restart_after_it(tmp_path):
    # Batch ids start from 0 again in version 1: the resolved checkpoint is the cursor's identity, so the refresh is
    # a recreated checkpoint whose batches fire, and a watcher revived from its stored cursor repeats none of them.
    import asyncio

    from tests.support.stream_checkpoints import write_kafka_checkpoint
    from tests.support.triggerer_harness import InMemoryAssetStateStore, TriggerLoop, revive

    flow = tmp_path / "_checkpoints" / "spark_catalog" / "default" / "orders" / "orders"

    def spark_writes(version: int, batches: int) -> None:  # SDP's queries write no runner progress events
        write_kafka_checkpoint(flow / str(version), batches=batches, progress=False)
        (flow / str(version) / "_progress").rmdir()

    spark_writes(0, batches=3)
    store = InMemoryAssetStateStore()
    trigger = CheckpointCommitEventTrigger(pipeline_storage=str(tmp_path), flow="orders", poll_interval=0.05)
    trigger.asset_state_store = store

    def cursor():
        (value,) = store.values.values() or [None]
        return None if value is None else value["position"]

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: cursor() == 2, what="the first poll")
        (flow / "1").mkdir()  # what Spark's State.reset does first: the next version, empty
        await asyncio.sleep(0.2)
        spark_writes(1, batches=2)
        await loop.until(lambda: len(loop.events) == 2, what="the refresh's two batches")
        await loop.stop()
        revived = TriggerLoop(revive(trigger, store)).start()
        spark_writes(1, batches=3)  # one more incremental run
        await revived.until(lambda: len(revived.events) == 1, what="batch 2 of version 1")
        await asyncio.sleep(0.2)
        await revived.stop()
        return loop.events, revived.events

    refreshed, after_restart = asyncio.run(scenario())
    assert [(e["checkpoint_version"], e["batch_id"]) for e in refreshed] == [(1, 0), (1, 1)]
    assert all(e["checkpoint"] == f"{flow}/1" and e["flow"] == "orders" for e in refreshed)
    assert [e["previous_event_batch_id"] for e in refreshed][1:] == [0]
    assert [(e["checkpoint_version"], e["batch_id"]) for e in after_restart] == [(1, 2)]
    assert cursor() == 2


def test_a_flows_next_version_not_written_yet_is_waited_for_and_a_name_matching_no_flow_is_an_error(
    tmp_path, monkeypatch
):
    # Between a full refresh's mkdirs of version 1 and its first commit, the sensors wait: the storage holds the flow.
    import json

    from airflow_spark_streaming.exceptions import SparkStreamingError
    from devstack.process import free_port
    from tests.support.stream_checkpoints import write_kafka_checkpoint

    closed = {"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{free_port()}"}}
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps(closed))  # the checkpoint is read first
    flow = tmp_path / "_checkpoints" / "spark_catalog" / "default" / "orders" / "orders"
    write_kafka_checkpoint(flow / "0", batches=1, progress=False)
    (flow / "1").mkdir()
    for sensor in (
        KafkaLagSensor(task_id="lag", pipeline_storage=str(tmp_path), flow="orders", max_total_lag=0, timeout=5),
        StreamingProgressSensor(task_id="progress", pipeline_storage=str(tmp_path), flow="orders", target_batch_id=0,
                                wait_for_checkpoint=False),
    ):  # fmt: skip
        assert sensor.poke({}).is_done is False, type(sensor).__name__
    for sensor in (
        KafkaLagSensor(task_id="lag", pipeline_storage=str(tmp_path), flow="ordrs", max_total_lag=0, timeout=5),
        StreamingProgressSensor(task_id="progress", pipeline_storage=str(tmp_path), flow="ordrs", target_batch_id=0,
                                wait_for_checkpoint=False),
    ):  # fmt: skip
        with pytest.raises(SparkStreamingError, match="ordrs/ordrs/0"):
            sensor.poke({})
