"""The stream runner spec is validated on the Airflow side, before anything is submitted."""

from __future__ import annotations

import copy

import pytest

from airflow_spark_streaming.exceptions import InvalidStreamSpecError, SparkStreamingError
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.runner.spec import is_secret_key, redact_spec, validate_stream_spec

VALID = {
    "query_name": "orders_to_delta",
    "checkpoint_location": "s3://lake/_checkpoints/orders",
    "source": {"format": "kafka", "options": {"kafka.bootstrap.servers": "b:9092", "subscribe": "orders",
                                              "maxOffsetsPerTrigger": 1000, "failOnDataLoss": False}},
    "transform_sql": "SELECT CAST(value AS STRING) AS value FROM source",
    "sink": {"format": "delta", "path": "s3://lake/orders", "partition_by": ["day"], "merge_schema": True},
}  # fmt: skip


def _with(path: str, value):
    spec = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    target = spec
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return spec


def test_valid_spec_is_normalised():
    spec = validate_stream_spec(VALID)
    assert spec["trigger"] == {"available_now": True} and spec["sink"]["output_mode"] == "append"
    assert spec["source"]["options"]["maxOffsetsPerTrigger"] == "1000"
    assert spec["source"]["options"]["failOnDataLoss"] == "false"
    assert VALID["source"]["options"]["maxOffsetsPerTrigger"] == 1000  # the input is not changed


@pytest.mark.parametrize(
    "spec, field",
    [
        (_with("query_name", "bad name!"), "query_name"),
        (_with("checkpoint_location", ""), "checkpoint_location"),
        (_with("source.format", "jdbc"), "source.format"),
        (_with("source.options", {"subscribe": "t"}), "source.options: a kafka source needs kafka_config_id or"),
        ({**VALID, "sink": {"format": "kafka", "options": {"topic": "t"}}}, "a kafka sink needs kafka_config_id"),
        (_with("source.kafka_config_id", ""), "source.kafka_config_id"),
        ({**VALID, "sink": {"format": "delta", "path": "/o", "kafka_config_id": "k"}}, "is for a kafka sink"),
        (_with("source.kafka_config_id", "k"), "kafka.bootstrap.servers would override kafka connection 'k'"),
        (_with("source.options", {"kafka.bootstrap.servers": "b", "subscribe": "t", "assign": "{}"}), "exactly one"),
        ({**VALID, "source": {"format": "json", "path": "/in"}}, "source.schema"),
        ({**VALID, "source": {"format": "delta"}}, "source.path"),
        (_with("transform_sql", "SELECT 1"), "transform_sql"),
        (_with("sink.format", "jdbc"), "sink.format"),
        (_with("sink.path", KeyError), "sink.path"),
        (_with("sink.output_mode", "overwrite"), "sink.output_mode"),
        ({**VALID, "sink": {"format": "parquet", "path": "/o", "output_mode": "complete"}}, "supports only 'append'"),
        ({**VALID, "sink": {"format": "kafka", "options": {}}}, "'topic'"),
        (_with("sink.partition_by", "day"), "sink.partition_by"),
        ({**VALID, "sink": {"format": "parquet", "path": "/o", "merge_schema": True}}, "sink.merge_schema"),
        ({**VALID, "trigger": {"once": True}}, "trigger"),
        ({**VALID, "trigger": {"processing_time": "soon"}}, "trigger.processing_time"),
        ({**VALID, "trigger": {"available_now": False}}, "trigger.available_now"),
        ({**VALID, "sinks": {}}, r"sinks: unknown key; did you mean .sink.\?"),
        ([], "must be a JSON object"),
    ],
)
def test_invalid_specs_name_the_field(spec, field):
    with pytest.raises(InvalidStreamSpecError, match=field.replace("(", r"\(").replace(")", r"\)")):
        validate_stream_spec(spec)


def test_operator_rejects_bad_input_when_the_dag_is_parsed():
    with pytest.raises(InvalidStreamSpecError, match="sink.format"):
        SparkStreamingSubmitOperator(task_id="t", spec=_with("sink.format", "jdbc"))
    long_running = SparkStreamingSubmitOperator(
        task_id="t", spec={**VALID, "trigger": {"processing_time": "10 seconds"}}
    )
    assert long_running._validated_spec()["trigger"] == {"processing_time": "10 seconds"}
    with pytest.raises(InvalidStreamSpecError, match="lease_ttl_seconds"):
        SparkStreamingSubmitOperator(task_id="t", spec={**VALID, "lease_ttl_seconds": 0})
    with pytest.raises(InvalidStreamSpecError, match="either spec .* or application"):
        SparkStreamingSubmitOperator(task_id="t")
    with pytest.raises(InvalidStreamSpecError, match="needs checkpoint"):
        SparkStreamingSubmitOperator(task_id="t", application="app.py")
    templated = SparkStreamingSubmitOperator(task_id="t", spec={**VALID, "query_name": "{{ params.name }}"})
    assert isinstance(templated.spec, dict)  # validated at run time, once rendered


def test_bad_json_spec_is_rejected_before_submission(monkeypatch):
    with pytest.raises(SparkStreamingError, match="spec is not valid JSON"):  # a literal one when the DAG is parsed
        SparkStreamingSubmitOperator(task_id="t", spec="{not json")
    operator = SparkStreamingSubmitOperator(task_id="t", spec="{{ params.spec }}")
    operator.spec = "{not json"  # what the template rendered to
    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    def fail_if_called(*args, **kwargs):
        raise AssertionError("spark-submit must not run for an invalid spec")

    monkeypatch.setattr(spark_submit.subprocess, "Popen", fail_if_called)
    with pytest.raises(SparkStreamingError, match="spec is not valid JSON"):
        operator.execute({})


def test_secrets_are_recognised_and_redacted():
    assert all(map(is_secret_key, ["kafka.sasl.jaas.config", "kafka.ssl.key.password", "fs.s3a.secret.key",
                                   "fs.s3a.access.key", "fs.azure.sas.token", "spark.token"]))  # fmt: skip
    assert not any(map(is_secret_key, ["subscribe", "kafka.bootstrap.servers", "maxOffsetsPerTrigger"]))
    spec = validate_stream_spec(VALID)
    spec["source"]["options"]["kafka.sasl.jaas.config"] = "PlainLoginModule password='hunter2';"
    shown = redact_spec(spec)
    assert shown["source"]["options"]["kafka.sasl.jaas.config"] == "***"
    assert spec["source"]["options"]["kafka.sasl.jaas.config"].endswith("'hunter2';")


def test_kafka_config_id_replaces_the_connection_options_and_the_operator_fills_it_in():
    from airflow_spark_streaming.runner.spec import with_kafka_config_id

    spec = {**VALID, "source": {"format": "kafka", "options": {"subscribe": "orders"}},
            "sink": {"format": "kafka", "kafka_config_id": "out", "options": {"topic": "clean"}}}  # fmt: skip
    filled = validate_stream_spec(with_kafka_config_id(spec, "kafka_in"))
    assert (filled["source"]["kafka_config_id"], filled["sink"]["kafka_config_id"]) == ("kafka_in", "out")
    assert "kafka_config_id" not in spec["source"]  # the input is not changed
    assert with_kafka_config_id(VALID, "k")["sink"] == VALID["sink"]  # only Kafka sections


def test_lease_consistency_is_conditional_unless_best_effort_is_chosen_by_name():
    assert validate_stream_spec(VALID)["lease_consistency"] == "conditional"
    assert validate_stream_spec({**VALID, "lease_consistency": "best_effort"})["lease_consistency"] == "best_effort"
    with pytest.raises(InvalidStreamSpecError, match="lease_consistency: 'eventual' is not one of"):
        validate_stream_spec({**VALID, "lease_consistency": "eventual"})

    chosen = SparkStreamingSubmitOperator(task_id="t", spec=VALID, lease_consistency="best_effort")
    assert chosen._validated_spec()["lease_consistency"] == "best_effort"  # what the runner's private spec gets
    same = SparkStreamingSubmitOperator(task_id="t", spec={**VALID, "lease_consistency": "best_effort"},
                                        lease_consistency="best_effort")  # fmt: skip
    assert same._validated_spec()["lease_consistency"] == "best_effort"
    for bad, match in (
        ({"spec": VALID, "lease_consistency": "best-effort"}, "lease_consistency must be one of 'conditional', "),
        ({"spec": VALID, "lease_consistency": True}, "lease_consistency must be one of"),
        ({"spec": {**VALID, "lease_consistency": "conditional"}, "lease_consistency": "best_effort"}, "contradicts"),
        ({"application": "app.py", "checkpoint": "/c", "lease_consistency": "best_effort"}, "an application takes no"),
    ):
        with pytest.raises(InvalidStreamSpecError, match=match):
            SparkStreamingSubmitOperator(task_id="t", **bad)  # at DAG parse time


def test_the_runners_refusal_of_a_store_without_conditional_create_becomes_its_named_error():
    from airflow_spark_streaming.exceptions import UnsafeLeaseStoreError
    from airflow_spark_streaming.operators.streaming import _raise_unsafe_lease_store
    from airflow_spark_streaming.runner.lease import conditional_create_refusal

    tail = ("... spark-submit output ...\nstream_runner: refusing to start: "
            + conditional_create_refusal("s3a://lake/_checkpoints/orders", "the store ignores If-None-Match: *")
            + "\nmore log\n")  # fmt: skip
    with pytest.raises(UnsafeLeaseStoreError, match="s3a://lake/_checkpoints/orders, but the store ignores") as err:
        _raise_unsafe_lease_store("t", tail)
    assert "lease_consistency='best_effort'" in str(err.value) and "more log" not in str(err.value)
    _raise_unsafe_lease_store("t", "stream_runner: the query failed: something else")  # not this refusal: no raise
