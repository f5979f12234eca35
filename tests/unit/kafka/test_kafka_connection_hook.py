"""The kafka connection is read through the Kafka provider and its secrets reach the secrets masker."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.exceptions import KafkaAuthUnsupportedError
from airflow_spark_streaming.kafka.connection import get_spark_kafka_options


def _connection(monkeypatch, conn_id: str, extra: dict) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
    return conn_id


def test_options_come_from_the_connection_and_secrets_are_masked(monkeypatch):
    from airflow.sdk.log import _secrets_masker

    password = "Zq9-unique-pw"
    conn_id = _connection(monkeypatch, "kafka_scram", {
        "bootstrap.servers": "broker:9093", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "svc", "sasl.password": password, "group.id": "lag-readers",
    })  # fmt: skip
    options = get_spark_kafka_options(conn_id)
    assert options.options["kafka.bootstrap.servers"] == "broker:9093"
    assert options.options["kafka.sasl.mechanism"] == "SCRAM-SHA-256"
    assert options.ignored_keys == ["group.id"]
    masker = _secrets_masker()
    assert password not in str(masker.redact(f"login with {password}"))
    assert password not in str(masker.redact(options.options["kafka.sasl.jaas.config"]))


def test_refusal_names_the_connection(monkeypatch):
    conn_id = _connection(monkeypatch, "kafka_msk", {
        "bootstrap.servers": "b-1.x.kafka.us-east-1.amazonaws.com:9098", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
    })  # fmt: skip
    with pytest.raises(KafkaAuthUnsupportedError, match=r"'kafka_msk' uses sasl.mechanism=OAUTHBEARER"):
        get_spark_kafka_options(conn_id)
