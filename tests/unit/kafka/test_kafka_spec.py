"""A spec's kafka_config_id: filled in by the operator, resolved from the connection, applied by the runner."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.exceptions import InvalidStreamSpecError, KafkaAuthenticationError
from airflow_spark_streaming.kafka.spec import KAFKA_CONNECTION_KEY, resolve_kafka_spec
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.runner.jobs.stream_runner import redact_secrets
from airflow_spark_streaming.runner.spec import validate_stream_spec, with_kafka_config_id

PASSWORD = 'Pw-"unique\\-41'
SCRAM = {"bootstrap.servers": "broker:9093", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
         "sasl.username": "alice", "sasl.password": PASSWORD}  # fmt: skip


@pytest.fixture
def connections(monkeypatch):
    for conn_id, extra in {"kafka_in": SCRAM, "kafka_out": {"bootstrap.servers": "other:9092"}}.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))


def _spec(**source_options) -> dict:
    return {
        "query_name": "q", "checkpoint_location": "/ckpt",
        "source": {"format": "kafka", "options": {"subscribe": "alice.orders", **source_options}},
        "sink": {"format": "kafka", "kafka_config_id": "kafka_out", "options": {"topic": "clean"}},
    }  # fmt: skip


def test_the_operator_fills_in_its_connection_and_validates_at_parse_time():
    operator = SparkStreamingSubmitOperator(task_id="ingest", spec=_spec(), kafka_config_id="kafka_in")
    spec = operator._validated_spec()
    assert (spec["source"]["kafka_config_id"], spec["sink"]["kafka_config_id"]) == ("kafka_in", "kafka_out")
    with pytest.raises(InvalidStreamSpecError, match="a kafka source needs kafka_config_id or"):
        SparkStreamingSubmitOperator(task_id="ingest", spec=_spec())
    with pytest.raises(InvalidStreamSpecError, match="kafka.sasl.mechanism would override kafka connection"):
        SparkStreamingSubmitOperator(task_id="ingest", spec=_spec(**{"kafka.sasl.mechanism": "PLAIN"}),
                                     kafka_config_id="kafka_in")  # fmt: skip


def test_each_section_gets_its_connection_with_bounded_timeouts_and_the_spec_timeouts_win(connections):
    from airflow.sdk.log import _secrets_masker

    spec = validate_stream_spec(with_kafka_config_id(_spec(**{"kafka.request.timeout.ms": "5000"}), "kafka_in"))
    resolved = resolve_kafka_spec(spec)

    source, sink = resolved.spec["source"][KAFKA_CONNECTION_KEY], resolved.spec["sink"][KAFKA_CONNECTION_KEY]
    assert source["conn_id"] == "kafka_in" and source["options"]["kafka.bootstrap.servers"] == "broker:9093"
    assert (
        source["options"]["kafka.default.api.timeout.ms"] == "30000" and "fetchOffset.numRetries" in source["options"]
    )
    assert "kafka.request.timeout.ms" not in source["options"]  # the spec's own 5000 applies
    assert sink["options"]["kafka.bootstrap.servers"] == "other:9092" and "kafka.max.block.ms" in sink["options"]
    assert source["secret_keys"] == ["kafka.sasl.jaas.config"] and PASSWORD in resolved.secret_values
    assert KAFKA_CONNECTION_KEY not in spec["source"]  # the input is not changed
    assert resolved.redacted_options()["source"]["kafka.sasl.jaas.config"] == "***"
    assert PASSWORD not in str(resolved) and PASSWORD not in json.dumps(resolved.redacted_options())
    assert PASSWORD not in str(_secrets_masker().redact(f"x {PASSWORD} y"))
    # The runner removes the secrets from what it prints; the operator names a refusal without them.
    jaas = source["options"]["kafka.sasl.jaas.config"]
    assert redact_secrets(f"failed with {jaas} / {PASSWORD}", resolved.spec) == "failed with *** / ***"
    refusal = resolved.classify(RuntimeError(f"SaslAuthenticationException: Authentication failed {PASSWORD}"))
    assert isinstance(refusal, KafkaAuthenticationError) and "'kafka_in, kafka_out'" in str(refusal)
    assert PASSWORD not in str(refusal)


def test_a_spec_option_that_the_connection_sets_is_refused(connections):
    spec = validate_stream_spec(with_kafka_config_id(_spec(), "kafka_in"))
    spec["sink"]["options"]["kafka.request.timeout.ms"] = "1"  # a timeout: the spec may set it
    spec["source"]["options"]["kafka.bootstrap.servers"] = "elsewhere:9092"  # added after validation
    with pytest.raises(InvalidStreamSpecError, match=r"source.options: kafka.bootstrap.servers would override"):
        resolve_kafka_spec(spec)


def test_rendering_masks_the_connection_secrets_first(connections):
    from airflow.sdk.log import _secrets_masker

    from airflow_spark_streaming.kafka.connection import mask_connection_secrets

    mask_connection_secrets("kafka_in")
    assert PASSWORD not in str(_secrets_masker().redact(f"rendered {PASSWORD}"))
