"""Every bad value of issue 23, item 8, is refused when the DAG is parsed (the constructor), with a project error
whose message names the parameter; relative checkpoint and table locations are refused everywhere one is taken.

Each of these was accepted at construction before, and failed later with a raw ``TypeError``/``AttributeError``,
or silently changed meaning (``partition_by="day"`` became ``['d', 'a', 'y']``).
"""

from __future__ import annotations

import copy
import re
from datetime import timedelta

import pytest

from airflow_spark_streaming.exceptions import (
    InvalidCheckpointPathError,
    InvalidEventTriggerError,
    InvalidParameterError,
    InvalidStreamSpecError,
    PartitionFilterError,
    SparkStreamingError,
)
from airflow_spark_streaming.operators.delta import (
    ConvertFileSinkToDeltaOperator,
    DeltaOptimizeOperator,
    DeltaVacuumOperator,
)
from airflow_spark_streaming.operators.stop import StopStreamingQueryOperator
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger
from airflow_spark_streaming.triggers.events import CheckpointCommitEventTrigger, DeltaVersionEventTrigger
from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger

SPEC = {
    "query_name": "orders",
    "checkpoint_location": "/lake/_checkpoints/orders",
    "source": {"format": "json", "path": "/lake/in", "schema": "id INT", "options": {}},
    "sink": {"format": "delta", "path": "/lake/orders"},
    "trigger": {"available_now": True},
}


def _spec(section: str | None, key: str, value):
    spec = copy.deepcopy(SPEC)
    (spec[section] if section else spec)[key] = value
    return spec


def _submit(**kwargs):
    kwargs.setdefault("spec", copy.deepcopy(SPEC))
    return SparkStreamingSubmitOperator(task_id="run", **kwargs)


def _app(**kwargs):
    return SparkStreamingSubmitOperator(task_id="run", application="/opt/jobs/app.py", **kwargs)


def _s3_writer(kwargs):
    """An S3 table needs a known writer (or none): state none, so the location itself is what is checked."""
    uri = kwargs.get("table_uri")
    if isinstance(uri, str) and uri.startswith("s3") and "stream_checkpoint" not in kwargs:
        return {"no_concurrent_writers": True, **kwargs}
    return kwargs


def _optimize(**kwargs):
    return DeltaOptimizeOperator(task_id="o", **{"table_uri": "/lake/orders", **_s3_writer(kwargs)})


def _vacuum(**kwargs):
    return DeltaVacuumOperator(task_id="v", **{"table_uri": "/lake/orders", **_s3_writer(kwargs)})


def _convert(**kwargs):
    return ConvertFileSinkToDeltaOperator(task_id="c", **{"table_uri": "/lake/raw", **kwargs})


def _lag(**kwargs):
    return KafkaLagSensor(task_id="lag", max_total_lag=10, **{"checkpoint": "/lake/_checkpoints/o", **kwargs})


def _health(**kwargs):
    return StreamHealthSensor(task_id="health", **{"checkpoint": "/lake/_checkpoints/o", **kwargs})


def _small_files(**kwargs):
    return DeltaSmallFilesSensor(task_id="small", **{"table_uri": "/lake/orders", **kwargs})


# (case id, the constructor call, the error class, the parameter the message must name)
ITEM_8 = [
    # spec given as a string or a list
    ("spec-str-not-json", lambda: _submit(spec="orders_to_delta"), InvalidStreamSpecError, "spec"),
    ("spec-str-json-list", lambda: _submit(spec='[{"query_name": "orders"}]'), InvalidStreamSpecError, "spec"),
    ("spec-list", lambda: _submit(spec=[copy.deepcopy(SPEC)]), InvalidStreamSpecError, "spec"),
    # source.schema as an int, sink.path as a list, merge_schema="yes"
    ("spec-schema-int", lambda: _submit(spec=_spec("source", "schema", 5)), InvalidStreamSpecError, "source.schema"),
    ("spec-sink-path-list", lambda: _submit(spec=_spec("sink", "path", ["/a", "/b"])), InvalidStreamSpecError,
     "sink.path"),
    ("spec-merge-schema-yes", lambda: _submit(spec=_spec("sink", "merge_schema", "yes")), InvalidStreamSpecError,
     "sink.merge_schema"),
    # partition_filters with LIKE, or with in and a string
    ("filters-like", lambda: _optimize(partition_filters=[("day", "LIKE", "2026-01%")]), PartitionFilterError,
     "partition_filters"),
    ("filters-in-str", lambda: _optimize(partition_filters=[("day", "in", "2026-01-31")]), PartitionFilterError,
     "partition_filters"),
    ("filters-not-in-str", lambda: _optimize(partition_filters=[("day", "not in", "x")]), PartitionFilterError,
     "partition_filters"),
    # handoff_timeout negative (30 as a number is accepted as seconds: see test_handoff_timeout_*)
    ("handoff-negative-optimize", lambda: _optimize(handoff_timeout=-30), InvalidParameterError, "handoff_timeout"),
    ("handoff-negative-vacuum", lambda: _vacuum(handoff_timeout=timedelta(seconds=-1)), InvalidParameterError,
     "handoff_timeout"),
    ("handoff-zero", lambda: _optimize(handoff_timeout=0), InvalidParameterError, "handoff_timeout"),
    ("handoff-text", lambda: _vacuum(handoff_timeout="30"), InvalidParameterError, "handoff_timeout"),
    ("handoff-nan", lambda: _optimize(handoff_timeout=float("nan")), InvalidParameterError, "handoff_timeout"),
    # ConvertFileSinkToDeltaOperator: partition_by="day", files_per_partition="2" and 1.5
    ("convert-partition-by-str", lambda: _convert(partition_by="day"), InvalidParameterError, "partition_by"),
    ("convert-files-text", lambda: _convert(files_per_partition="2"), InvalidParameterError, "files_per_partition"),
    ("convert-files-fraction", lambda: _convert(files_per_partition=1.5), InvalidParameterError,
     "files_per_partition"),
    ("convert-files-zero", lambda: _convert(files_per_partition=0), InvalidParameterError, "files_per_partition"),
    ("convert-files-bool", lambda: _convert(files_per_partition=True), InvalidParameterError, "files_per_partition"),
    # kafka_ignore_keys="abc", jvm_resolver="bogus", long_running="yes"
    ("kafka-ignore-keys-str", lambda: _submit(kafka_ignore_keys="abc"), InvalidParameterError, "kafka_ignore_keys"),
    ("jvm-resolver-bogus", lambda: _submit(jvm_resolver="bogus"), InvalidParameterError, "jvm_resolver"),
    ("long-running-yes", lambda: _app(checkpoint="/lake/_checkpoints/app", long_running="yes"), InvalidParameterError,
     "long_running"),
    # StreamHealthSensor(request_timeout="x")
    ("health-request-timeout-str", lambda: _health(request_timeout="x"), InvalidParameterError, "request_timeout"),
    ("health-request-timeout-zero", lambda: _health(request_timeout=0), InvalidParameterError, "request_timeout"),
    # checkpoint="" or 5 on the lag and health sensors
    ("lag-checkpoint-empty", lambda: _lag(checkpoint=""), InvalidCheckpointPathError, "checkpoint"),
    ("lag-checkpoint-int", lambda: _lag(checkpoint=5), InvalidCheckpointPathError, "checkpoint"),
    ("health-checkpoint-empty", lambda: _health(checkpoint=""), InvalidCheckpointPathError, "checkpoint"),
    ("health-checkpoint-int", lambda: _health(checkpoint=5), InvalidCheckpointPathError, "checkpoint"),
    # table_uri="" or 5 on the Delta operators and the small-files sensor
    ("optimize-table-empty", lambda: _optimize(table_uri=""), InvalidParameterError, "table_uri"),
    ("optimize-table-int", lambda: _optimize(table_uri=5), InvalidParameterError, "table_uri"),
    ("vacuum-table-empty", lambda: _vacuum(table_uri=""), InvalidParameterError, "table_uri"),
    ("vacuum-table-int", lambda: _vacuum(table_uri=5), InvalidParameterError, "table_uri"),
    ("convert-table-empty", lambda: _convert(table_uri=""), InvalidParameterError, "table_uri"),
    ("convert-table-int", lambda: _convert(table_uri=5), InvalidParameterError, "table_uri"),
    ("small-files-table-empty", lambda: _small_files(table_uri=""), InvalidParameterError, "table_uri"),
    ("small-files-table-int", lambda: _small_files(table_uri=5), InvalidParameterError, "table_uri"),
    # DeltaSmallFilesSensor(poke_interval=0)
    ("small-files-poke-zero", lambda: _small_files(poke_interval=0), InvalidParameterError, "poke_interval"),
    ("small-files-timeout-nan", lambda: _small_files(timeout=float("nan")), InvalidParameterError, "timeout"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "error", "parameter"), [c[1:] for c in ITEM_8], ids=[c[0] for c in ITEM_8])
def test_item_8_values_are_refused_at_parse_time(build, error, parameter):
    with pytest.raises(error) as refused:
        build()
    assert re.search(rf"(?<![\w.]){re.escape(parameter)}(?![\w])", str(refused.value)), str(refused.value)
    assert isinstance(refused.value, SparkStreamingError)


# Every place a checkpoint or table location is taken, with a relative path.
RELATIVE = [
    ("progress-sensor", lambda p: StreamingProgressSensor(task_id="p", checkpoint=p), InvalidCheckpointPathError,
     "checkpoint"),
    ("lag-sensor", lambda p: _lag(checkpoint=p), InvalidCheckpointPathError, "checkpoint"),
    ("health-sensor", lambda p: _health(checkpoint=p), InvalidCheckpointPathError, "checkpoint"),
    ("stop", lambda p: StopStreamingQueryOperator(task_id="s", checkpoint=p), InvalidCheckpointPathError,
     "checkpoint"),
    ("submit-application", lambda p: _app(checkpoint=p), InvalidCheckpointPathError, "checkpoint"),
    ("spec-checkpoint", lambda p: _submit(spec=_spec(None, "checkpoint_location", p)), InvalidStreamSpecError,
     "checkpoint_location"),
    ("spec-sink-path", lambda p: _submit(spec=_spec("sink", "path", p)), InvalidStreamSpecError, "sink.path"),
    ("spec-source-path", lambda p: _submit(spec=_spec("source", "path", p)), InvalidStreamSpecError, "source.path"),
    ("optimize-table", lambda p: _optimize(table_uri=p), InvalidParameterError, "table_uri"),
    ("optimize-stream-checkpoint", lambda p: _optimize(stream_checkpoint=p), InvalidCheckpointPathError,
     "stream_checkpoint"),
    ("vacuum-table", lambda p: _vacuum(table_uri=p), InvalidParameterError, "table_uri"),
    ("vacuum-stream-checkpoint", lambda p: _vacuum(stream_checkpoint=p), InvalidCheckpointPathError,
     "stream_checkpoint"),
    ("convert-table", lambda p: _convert(table_uri=p), InvalidParameterError, "table_uri"),
    ("convert-target", lambda p: _convert(target_uri=p), InvalidParameterError, "target_uri"),
    ("small-files-table", lambda p: _small_files(table_uri=p), InvalidParameterError, "table_uri"),
    ("progress-trigger", lambda p: CheckpointProgressTrigger(p, {}), SparkStreamingError, "checkpoint"),
    ("lag-trigger", lambda p: KafkaLagTrigger(p, {"max_total_lag": 1}), SparkStreamingError, "checkpoint"),
    ("commit-event-trigger", lambda p: CheckpointCommitEventTrigger(p), InvalidEventTriggerError, "checkpoint"),
    ("delta-event-trigger", lambda p: DeltaVersionEventTrigger(p), InvalidEventTriggerError, "table_uri"),
]  # fmt: skip


@pytest.mark.parametrize("path", ["lake/orders", "./orders", "../lake/orders", "file:lake/orders"])
@pytest.mark.parametrize(("build", "error", "parameter"), [c[1:] for c in RELATIVE], ids=[c[0] for c in RELATIVE])
def test_relative_locations_are_refused_at_parse_time(build, error, parameter, path):
    with pytest.raises(error, match="relative path") as refused:
        build(path)
    assert parameter in str(refused.value)


@pytest.mark.parametrize(("build", "error", "parameter"), [c[1:] for c in RELATIVE], ids=[c[0] for c in RELATIVE])
def test_absolute_locations_and_uris_are_accepted(build, error, parameter):
    for location in ("/lake/orders", "file:/lake/orders", "file:///lake/orders", "s3a://lake/orders"):
        build(location)


def test_a_relative_location_that_may_hold_credentials_is_not_echoed():
    with pytest.raises(InvalidParameterError, match="relative path") as refused:
        _optimize(table_uri="user:s3cr3t@lake/orders")
    assert "s3cr3t" not in str(refused.value) and "<a str, not shown>" in str(refused.value)
    with pytest.raises(InvalidStreamSpecError) as refused:
        _submit(spec=_spec("sink", "path", "key:s3cr3t@lake/orders"))
    assert "s3cr3t" not in str(refused.value)


def test_handoff_timeout_accepts_a_timedelta_or_seconds():
    assert _optimize(handoff_timeout=30).handoff_timeout == timedelta(seconds=30)
    assert _vacuum(handoff_timeout=1.5).handoff_timeout == timedelta(seconds=1.5)
    assert _vacuum(handoff_timeout=timedelta(minutes=5)).handoff_timeout == timedelta(minutes=5)
    assert _optimize().handoff_timeout == timedelta(minutes=30)  # the default


def test_good_values_still_pass():
    convert = _convert(partition_by=("day", "region"), files_per_partition=2, target_uri="/lake/compacted")
    assert (convert.partition_by, convert.files_per_partition) == (["day", "region"], 2)
    submit = _submit(kafka_ignore_keys=["group.id"], jvm_resolver="maven")
    assert (submit.kafka_ignore_keys, submit.jvm_resolver) == (("group.id",), "maven")
    assert _submit(spec='{"query_name": "o", "checkpoint_location": "s3://l/c", "source": {"format": "rate"}, '
                   '"sink": {"format": "console"}}').spec.startswith("{")  # fmt: skip
    assert _submit(spec=_spec("sink", "merge_schema", False)).spec["sink"]["merge_schema"] is False
    assert _app(checkpoint="/lake/_checkpoints/app", long_running=False).long_running is False
    assert _health(request_timeout=timedelta(seconds=5)).request_timeout == 5
    assert _small_files(poke_interval=30).poke_interval == 30
    optimize = _optimize(partition_filters=[("day", "IN", ["2026-01-30", "2026-01-31"]), ("region", "!=", "eu")])
    assert optimize.partition_filters[0][2] == ["2026-01-30", "2026-01-31"]


# --- templated values: not checkable when parsed, checked once rendered ------------------------------


@pytest.mark.parametrize(
    ("build", "field", "rendered", "error"),
    [
        (lambda: _optimize(table_uri="{{ params.t }}"), "table_uri", "lake/orders", InvalidParameterError),
        (lambda: _vacuum(stream_checkpoint="{{ params.c }}"), "stream_checkpoint", "chk", InvalidCheckpointPathError),
        (lambda: _convert(target_uri="{{ params.t }}"), "target_uri", "out", InvalidParameterError),
        (lambda: StopStreamingQueryOperator(task_id="s", checkpoint="{{ params.c }}"), "checkpoint", "chk",
         InvalidCheckpointPathError),
        (lambda: _app(checkpoint="{{ params.c }}"), "checkpoint", "chk", InvalidCheckpointPathError),
    ],
)  # fmt: skip
def test_templated_locations_are_checked_once_rendered(build, field, rendered, error):
    operator = build()  # parses: the template is not a location yet
    with pytest.raises(error, match=rf"{field}='{rendered}' is a relative path"):
        operator.render_template_fields({"params": {"t": rendered, "c": rendered}})
    operator = build()
    operator.render_template_fields({"params": {"t": "s3://lake/orders", "c": "s3://lake/_checkpoints/o"}})
    assert getattr(operator, field).startswith("s3://")


@pytest.mark.parametrize(
    ("build", "field", "first_poke"),
    [
        (lambda: StreamingProgressSensor(task_id="p", checkpoint="{{ params.c }}"), "checkpoint",
         lambda sensor: sensor._criteria({})),
        (lambda: _lag(checkpoint="{{ params.c }}"), "checkpoint", lambda sensor: sensor._new_check({})),
        (lambda: _health(checkpoint="{{ params.c }}"), "checkpoint", lambda sensor: sensor._new_check({})),
        (lambda: _small_files(table_uri="{{ params.t }}"), "table_uri", lambda sensor: sensor._new_check()),
    ],
    ids=["progress", "lag", "health", "small-files"],
)  # fmt: skip
def test_sensors_check_a_templated_location_at_the_first_poke(build, field, first_poke):
    sensor = build()  # parses: the template is not a location yet
    setattr(sensor, field, "lake/relative")  # what the template rendered to
    with pytest.raises(InvalidParameterError, match=rf"{field}='lake/relative' is a relative path"):
        first_poke(sensor)
    setattr(sensor, field, "s3://lake/orders")
    assert getattr(first_poke(sensor), field, "s3://lake/orders") == "s3://lake/orders"
