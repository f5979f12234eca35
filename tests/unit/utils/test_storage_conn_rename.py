"""``storage_conn_id`` is the checkpoint storage's connection everywhere; the old names warn for one release."""

from __future__ import annotations

import json
import warnings

import pytest

from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook, get_kafka_lag
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger
from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger
from airflow_spark_streaming.utils.deprecation import ConflictingParametersError, ProviderDeprecationWarning

# (build with the old name, build with the new name, read the value back)
CASES = {
    "CheckpointHook": (
        lambda old: CheckpointHook("c", conn_id=old),
        lambda new, **old: CheckpointHook("c", storage_conn_id=new, **old),
        lambda made: made.storage_conn_id,
        "conn_id",
    ),
    "RunnerControlHook": (
        lambda old: RunnerControlHook("c", conn_id=old),
        lambda new, **old: RunnerControlHook("c", storage_conn_id=new, **old),
        lambda made: made.storage_conn_id,
        "conn_id",
    ),
    "StreamingProgressSensor": (
        lambda old: StreamingProgressSensor(task_id="t", checkpoint="/c", conn_id=old),
        lambda new, **old: StreamingProgressSensor(task_id="t", checkpoint="/c", storage_conn_id=new, **old),
        lambda made: made.storage_conn_id,
        "conn_id",
    ),
    "KafkaLagSensor": (
        lambda old: KafkaLagSensor(task_id="t", checkpoint="/c", max_total_lag=1, checkpoint_conn_id=old),
        lambda new, **old: KafkaLagSensor(task_id="t", checkpoint="/c", max_total_lag=1, storage_conn_id=new, **old),
        lambda made: made.storage_conn_id,
        "checkpoint_conn_id",
    ),
    "CheckpointProgressTrigger": (
        lambda old: CheckpointProgressTrigger("/c", {}, conn_id=old),
        lambda new, **old: CheckpointProgressTrigger("/c", {}, storage_conn_id=new, **old),
        lambda made: made.check.storage_conn_id,
        "conn_id",
    ),
    "KafkaLagTrigger": (
        lambda old: KafkaLagTrigger("/c", {"max_total_lag": 1}, checkpoint_conn_id=old),
        lambda new, **old: KafkaLagTrigger("/c", {"max_total_lag": 1}, storage_conn_id=new, **old),
        lambda made: made.check.storage_conn_id,
        "checkpoint_conn_id",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_the_old_name_still_works_with_a_warning_naming_the_new_one(name):
    with_old, _, read, old = CASES[name]
    with pytest.warns(ProviderDeprecationWarning, match=rf"{old} is deprecated .* pass storage_conn_id instead"):
        made = with_old("aws_lake")
    assert read(made) == "aws_lake"


@pytest.mark.parametrize("name", CASES)
def test_the_new_name_is_silent(name):
    _, with_new, read, _ = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProviderDeprecationWarning)
        assert read(with_new("aws_lake")) == "aws_lake"


@pytest.mark.parametrize("name", CASES)
def test_both_names_together_are_refused(name):
    _, with_new, _, old = CASES[name]
    with pytest.raises(ConflictingParametersError, match=rf"both {old}='aws_old' and storage_conn_id='aws_new'"):
        with_new("aws_new", **{old: "aws_old"})


@pytest.mark.parametrize(
    "trigger_class, old_kwargs",
    [
        (CheckpointProgressTrigger, {"checkpoint": "s3://b/c", "criteria": {}, "conn_id": "aws", "poll_interval": 5.0}),
        (
            KafkaLagTrigger,
            {"checkpoint": "s3://b/c", "criteria": {"max_total_lag": 1}, "kafka_config_id": "k",
             "checkpoint_conn_id": "aws", "poll_interval": 5.0, "timeout": 15.0, "above_since": None},
        ),
    ],
)  # fmt: skip
def test_a_trigger_serialized_by_the_previous_release_deserialises(trigger_class, old_kwargs):
    """The triggerer rebuilds a deferred task's trigger from the kwargs stored before the upgrade."""
    with pytest.warns(ProviderDeprecationWarning):
        revived = trigger_class(**json.loads(json.dumps(old_kwargs)))
    _, kwargs = revived.serialize()
    assert kwargs["storage_conn_id"] == "aws" and "conn_id" not in kwargs and "checkpoint_conn_id" not in kwargs
    assert trigger_class(**kwargs).serialize() == revived.serialize()


def test_kafka_lag_functions_take_the_old_name_with_a_warning(monkeypatch):
    seen = []
    monkeypatch.setattr(KafkaLagHook, "get_lag", lambda self, checkpoint, **kw: seen.append(kw) or _Report())
    with pytest.warns(ProviderDeprecationWarning, match="checkpoint_conn_id is deprecated"):
        assert get_kafka_lag("c", checkpoint_conn_id="aws") == {"total_lag": 0}
    assert seen[-1]["storage_conn_id"] == "aws"
    with pytest.raises(ConflictingParametersError):
        get_kafka_lag("c", checkpoint_conn_id="aws", storage_conn_id="gcs")
    monkeypatch.undo()
    hook = KafkaLagHook()
    with pytest.raises(ConflictingParametersError):
        hook.get_lag("c", checkpoint_conn_id="aws", storage_conn_id="gcs")


class _Report:
    def to_dict(self):
        return {"total_lag": 0}
