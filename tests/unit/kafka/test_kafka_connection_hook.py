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


def test_a_jaas_password_is_masked_alone_escaped_and_inside_the_whole_config(monkeypatch):
    from airflow.sdk.log import _secrets_masker

    from airflow_spark_streaming.kafka.options import jaas_quote

    password = 'Kq4"quoted\\pw'
    conn_id = _connection(monkeypatch, "kafka_quoted", {
        "bootstrap.servers": "broker:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
        "sasl.username": "svc", "sasl.password": password,
    })  # fmt: skip
    options = get_spark_kafka_options(conn_id)
    masker = _secrets_masker()
    escaped = jaas_quote(password)[1:-1]
    for text in (password, escaped, options.options["kafka.sasl.jaas.config"], json.dumps(password)):
        assert "Kq4" not in str(masker.redact(f"failed: {text}"))


def test_an_untranslatable_connection_still_has_every_secret_masked(monkeypatch):
    from airflow.sdk.log import _secrets_masker

    from airflow_spark_streaming.kafka.connection import mask_connection_secrets

    conn_id = _connection(monkeypatch, "kafka_oauth_pw", {
        "bootstrap.servers": "broker:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
        "sasl.password": 'Wv8"oauth-pw', "sasl.oauthbearer.client.secret": "Wv8-client-secret",
    })  # fmt: skip
    mask_connection_secrets(conn_id)  # cannot be translated: masked from the raw config
    masker = _secrets_masker()
    for text in ('Wv8"oauth-pw', 'Wv8\\"oauth-pw', "Wv8-client-secret"):
        assert "Wv8" not in str(masker.redact(f"failed: {text}"))
