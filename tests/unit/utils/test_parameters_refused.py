"""Bad parameters are refused when the DAG is parsed (or at the first render when templated), with named errors.

Every case here was accepted at construction before issue 13 and failed later, or silently changed meaning.
"""

from __future__ import annotations

import copy
import math
from datetime import timedelta

import pytest

from airflow_spark_streaming.exceptions import (
    InvalidCheckpointPathError,
    InvalidMavenCoordinateError,
    InvalidParameterError,
    InvalidStreamSpecError,
    UnsafeRetentionError,
)
from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator
from airflow_spark_streaming.operators.stop import StopStreamingQueryOperator
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.runner.spec import validate_stream_spec
from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger
from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger

SPEC = {
    "query_name": "orders",
    "checkpoint_location": "/c",
    "source": {"format": "kafka", "options": {"kafka.bootstrap.servers": "b:9092", "subscribe": "t", "anyOption": 1}},
    "sink": {"format": "delta", "path": "/t", "partition_by": ["day"]},
    "trigger": {"available_now": True},
}


def _lag(**kwargs):
    return KafkaLagSensor(task_id="lag", checkpoint="/c", **{"max_total_lag": 10, **kwargs})


def _progress(**kwargs):
    return StreamingProgressSensor(task_id="progress", checkpoint="/c", **kwargs)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _progress(max_staleness=float("nan")), "max_staleness=nan is not finite"),
        (lambda: _progress(max_staleness=math.inf), "max_staleness=inf is not finite"),
        (lambda: _progress(max_staleness="600"), "max_staleness='600' is not a duration"),
        (lambda: _progress(max_staleness=timedelta(0)), "max_staleness=.* must be more than zero"),
        (lambda: _progress(target_batch_id=1.9), r"target_batch_id=1.9 is not an integer"),
        (lambda: _progress(target_batch_id=True), "target_batch_id=True is a boolean"),
        (lambda: _progress(target_batch_id="seven"), "target_batch_id='seven' is not an integer"),
        (lambda: _progress(committed_after="yesterday"), "committed_after='yesterday'"),
        (lambda: _progress(poke_interval=0), "poke_interval=0 must be more than zero"),
        (lambda: _progress(poke_interval=float("nan")), "poke_interval=nan is not finite"),
        (lambda: _progress(timeout=float("inf")), "timeout=inf is not finite"),
        (lambda: _lag(ceiling=100), "ceiling=100 and ceiling_for=None go together"),
        (lambda: _lag(ceiling=100, ceiling_for=0), "ceiling_for=0 must be more than zero"),
        (lambda: _lag(ceiling=100, ceiling_for=-5), "ceiling_for=-5 must be more than zero"),
        (lambda: _lag(ceiling=100, ceiling_for="10m"), "ceiling_for='10m' is not a duration"),
        (lambda: _lag(basis="latest"), "basis='latest' is not one of 'committed', 'planned'"),
        (lambda: _lag(request_timeout=0), "request_timeout=0 must be more than zero"),
        (lambda: _lag(request_timeout=float("nan")), "request_timeout=nan is not finite"),
        (lambda: _lag(max_total_lag=2.5), "max_total_lag=2.5 is not an integer"),
        (lambda: DeltaSmallFilesSensor(task_id="s", table_uri="/t", min_small_files=0), "min_small_files=0 must be"),
        (lambda: DeltaSmallFilesSensor(task_id="s", table_uri="/t", small_file_bytes=0), "small_file_bytes=0 must"),
        (lambda: DeltaSmallFilesSensor(task_id="s", table_uri="/t", target_file_bytes=0), "target_file_bytes=0"),
        (lambda: CheckpointProgressTrigger("/c", {"target_batch_id": 1.9}), "target_batch_id=1.9 is not an integer"),
        (lambda: CheckpointProgressTrigger("/c", {}, poll_interval=math.inf), "poll_interval=inf is not finite"),
        (lambda: KafkaLagTrigger("/c", {"max_total_lag": 1}, timeout=float("nan")), "timeout=nan is not finite"),
        (lambda: KafkaLagTrigger("/c", {"max_total_lag": True}), "max_total_lag=True is a boolean"),
        (
            lambda: DeltaOptimizeOperator(task_id="o", table_uri="/t", partition_filters="day = '2026-01-31'"),
            "partition_filters=.* must be a list of \\(column, operator, value\\) tuples",
        ),
        (lambda: DeltaOptimizeOperator(task_id="o", table_uri="/t", partition_filters=[("day", "=")]), "day"),
        (lambda: DeltaOptimizeOperator(task_id="o", table_uri="/t", zorder_by="user_id"), "zorder_by='user_id'"),
        (lambda: DeltaOptimizeOperator(task_id="o", table_uri="/t", target_file_bytes=0), "target_file_bytes=0"),
        (lambda: DeltaOptimizeOperator(task_id="o", table_uri="/t", storage_options=["k"]), "storage_options"),
        (lambda: DeltaVacuumOperator(task_id="v", table_uri="/t", retention=168), "retention=168 is not a"),
        (lambda: DeltaVacuumOperator(task_id="v", table_uri="/t", retention="7 days"), "retention='7 days' is not"),
        (lambda: DeltaVacuumOperator(task_id="v", table_uri="/t", min_retention=24), "min_retention=24 is not"),
        (lambda: _submit(poll_interval=0), "poll_interval=0 must be more than zero"),
        (lambda: _submit(startup_timeout=-1), "startup_timeout=-1 must be more than zero"),
        (lambda: _submit(startup_timeout=float("inf")), "startup_timeout=inf is not finite"),
        (lambda: _submit(conf=[("spark.x", "1")]), "conf=.* must be a mapping"),
        (lambda: _submit(conf="spark.x=1"), "conf=<a str, not shown> must be a mapping"),
        (lambda: _submit(extra_packages="org.x:y:1"), "extra_packages='org.x:y:1' must be a list"),
        (lambda: StopStreamingQueryOperator(task_id="s", checkpoint="/c", timeout=0), "timeout=0 must be more"),
        (lambda: StopStreamingQueryOperator(task_id="s", checkpoint="/c", poll_interval="1"), "poll_interval='1'"),
    ],
)
def test_refused_at_construction(build, message):
    with pytest.raises(InvalidParameterError, match=message):
        build()


def _submit(**kwargs):
    return SparkStreamingSubmitOperator(task_id="run", spec=copy.deepcopy(SPEC), **kwargs)


def test_extra_packages_that_are_not_coordinates():
    with pytest.raises(InvalidMavenCoordinateError, match="run: extra_packages: .*'delta-spark'"):
        _submit(extra_packages=["delta-spark"])
    with pytest.raises(InvalidMavenCoordinateError, match="extra_packages"):
        DeltaOptimizeOperator(task_id="o", table_uri="/t", extra_packages=["io.delta:delta-spark"])


@pytest.mark.parametrize("checkpoint", ["", "  ", None])
def test_empty_checkpoint_refused_by_sensor_and_stop(checkpoint):
    with pytest.raises(InvalidCheckpointPathError, match="checkpoint"):
        StreamingProgressSensor(task_id="p", checkpoint=checkpoint)
    with pytest.raises(InvalidCheckpointPathError, match="checkpoint"):
        StopStreamingQueryOperator(task_id="s", checkpoint=checkpoint)


def test_valid_values_still_pass():
    assert _progress(target_batch_id="12", max_staleness=timedelta(minutes=5)).max_staleness == 300
    assert _progress(target_batch_id=4.0, committed_after="2026-01-31T12:00:00+00:00").target_batch_id == 4.0
    lag = _lag(ceiling=100, ceiling_for=timedelta(minutes=2), basis="planned", request_timeout=5)
    assert (lag.ceiling, lag.ceiling_for, lag.basis) == (100, 120.0, "planned")
    optimize = DeltaOptimizeOperator(task_id="o", table_uri="/t", partition_filters=[("day", "=", "x")],
                                     zorder_by=("a", "b"))  # fmt: skip
    assert optimize.zorder_by == ["a", "b"]
    submit = _submit(conf={"spark.sql.shuffle.partitions": "2"}, extra_packages=["org.x:y:1.0"])
    assert submit.extra_packages == ["org.x:y:1.0"] and submit.poll_interval == 2.0


def test_templated_values_are_checked_at_render_not_parse():
    sensor = _progress(target_batch_id="{{ params.batch }}")
    sensor.target_batch_id = "1.9"  # what the template rendered to
    with pytest.raises(InvalidParameterError, match="target_batch_id='1.9' is not an integer"):
        sensor._criteria({})
    optimize = DeltaOptimizeOperator(task_id="o", table_uri="/t", partition_filters="{{ params.filters }}")
    with pytest.raises(InvalidParameterError, match="partition_filters='day' must be a list"):
        optimize.render_template_fields({"params": {"filters": "day"}})
    submit = _submit(conf="{{ params.conf }}")
    with pytest.raises(InvalidParameterError, match="conf=<a str, not shown> must be a mapping"):
        submit.render_template_fields({"params": {"conf": "x=1"}})


def test_vacuum_zero_retention_needs_the_override():
    with pytest.raises(UnsafeRetentionError, match="i_understand_this_can_break_readers"):
        DeltaVacuumOperator(task_id="v", table_uri="/t", retention=timedelta(0))
    with pytest.raises(UnsafeRetentionError, match="never a negative"):
        DeltaVacuumOperator(task_id="v", table_uri="/t", retention=timedelta(hours=-1),
                            i_understand_this_can_break_readers=True)  # fmt: skip
    vacuum = DeltaVacuumOperator(task_id="v", table_uri="/t", retention=timedelta(0),
                                 i_understand_this_can_break_readers=True)  # fmt: skip

    class Table:
        def get_retention_seconds(self):
            return 7 * 24 * 3600

    assert vacuum._retention_hours(Table()) == 0


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("sink.patition_by", ["day"], "sink.patition_by: unknown key; did you mean 'partition_by'"),
        ("tigger", {"available_now": True}, "tigger: unknown key; did you mean 'trigger'"),
        ("source.shema", "id INT", "source.shema: unknown key; did you mean 'schema'"),
        ("source.startingOffsets", "earliest", "source.startingOffsets: unknown key; valid keys are"),
        ("trigger.processingTime", "1 minute", "trigger.processingTime: unknown key; did you mean 'processing_time'"),
        ("sink.outputMode", "append", "sink.outputMode: unknown key; did you mean 'output_mode'"),
    ],
)
def test_misspelt_spec_keys_are_refused_with_a_suggestion(path, value, message):
    spec = copy.deepcopy(SPEC)
    *parents, last = path.split(".")
    target = spec
    for key in parents:
        target = target[key]
    if last.lower() == "processingtime":
        target.clear()
    target[last] = value
    with pytest.raises(InvalidStreamSpecError, match=message):
        validate_stream_spec(spec)
    with pytest.raises(InvalidStreamSpecError, match=message):
        SparkStreamingSubmitOperator(task_id="run", spec=spec)


def test_every_key_the_runner_reads_is_accepted():
    spec = copy.deepcopy(SPEC)
    spec.update(transform_sql="SELECT * FROM source", lease_ttl_seconds=30)
    spec["source"].update(kafka_config_id="kafka_default")
    del spec["source"]["options"]["kafka.bootstrap.servers"]  # the connection gives it (a clash is refused)
    spec["sink"].update(output_mode="append", merge_schema=True, options={"any.spark.option": "x"})
    kafka_sink = copy.deepcopy(SPEC)
    kafka_sink["sink"] = {"format": "kafka", "kafka_config_id": "kafka_default", "options": {"topic": "out"}}
    assert validate_stream_spec(kafka_sink)["sink"]["kafka_config_id"] == "kafka_default"
    assert validate_stream_spec(spec)["source"]["options"]["anyOption"] == "1"
    file_source = copy.deepcopy(SPEC)
    file_source["source"] = {"format": "json", "path": "/in", "schema": "id INT", "options": {}}
    assert validate_stream_spec(file_source)["source"]["schema"] == "id INT"
