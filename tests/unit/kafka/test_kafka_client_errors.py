"""What librdkafka reports through error_cb becomes the named error, as soon as it is reported (no broker needed).

The authenticated broker itself is in tests/integration/kafka_auth/test_kafka_auth_failures.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time

import pytest

from airflow_spark_streaming.exceptions import (
    KafkaAuthenticationError,
    KafkaBrokerUnreachableError,
    KafkaTlsHandshakeError,
)
from airflow_spark_streaming.hooks._kafka_client import BrokerErrors, KafkaClientHook
from airflow_spark_streaming.kafka.options import classify_kafka_error

PASSWORD = "Pw-unit-7f3a9c"
LOGIN = {"bootstrap.servers": "broker:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
         "sasl.username": "alice", "sasl.password": PASSWORD}  # fmt: skip


def _error(name: str, text: str):
    from confluent_kafka import KafkaError

    return KafkaError(getattr(KafkaError, name), text)


AUTH_FAILED = (
    "sasl_ssl://broker:9093/bootstrap: SASL authentication error: Authentication failed during authentication "
    "due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 335ms in state AUTH_REQ)"
)


def test_the_recorder_keeps_the_first_refusal_and_calls_the_connections_own_callback():
    own = []
    errors = BrokerErrors("kafka_prod")
    config = errors.install({**LOGIN, "error_cb": own.append})
    assert config["error_cb"] is errors and config["sasl.password"] == PASSWORD
    for _ in range(3):
        errors(_error("_AUTHENTICATION", AUTH_FAILED))
    errors(_error("_ALL_BROKERS_DOWN", "1/1 brokers are down"))
    assert len(own) == 4  # the connection's callback still sees everything
    refused = errors.access_error()
    assert type(refused) is KafkaAuthenticationError
    text = str(refused)
    assert text.startswith("Kafka connection 'kafka_prod': authentication failed: the broker rejected the SASL "
                           "login of user 'alice' with mechanism SCRAM-SHA-512 over SASL_SSL")  # fmt: skip
    assert PASSWORD not in text and PASSWORD not in repr(errors)


def test_a_tls_handshake_failure_is_a_refusal_too():
    errors = BrokerErrors("kafka_prod")
    errors.install(LOGIN)
    errors(
        _error(
            "_TRANSPORT", "sasl_ssl://broker:9093/bootstrap: Connect to ipv4#10.0.0.1:9093 failed: Connection refused"
        )
    )
    assert errors.access_error() is None
    errors(_error("_SSL", "sasl_ssl://broker:9093/bootstrap: SSL handshake failed: certificate verify failed"))
    assert type(errors.access_error()) is KafkaTlsHandshakeError


def test_connectivity_names_what_was_reported_during_the_wait_only():
    errors = BrokerErrors("kafka_prod")
    errors(_error("_TRANSPORT", "old failure"))
    since = time.monotonic()
    assert errors.connectivity(since) is None
    errors(_error("_ALL_BROKERS_DOWN", "1/1 brokers are down"))
    errors(
        _error(
            "_TRANSPORT", "sasl_ssl://broker:9093/bootstrap: Connect to ipv4#10.0.0.1:9093 failed: Connection refused"
        )
    )
    assert errors.connectivity(since) == (
        "librdkafka reports 1/1 brokers are down; the last connection attempt: sasl_ssl://broker:9093/bootstrap: "
        "Connect to ipv4#10.0.0.1:9093 failed: Connection refused"
    )


class _ReportingAdmin:
    """An admin client whose queued error_cb events arrive at the first poll, as librdkafka serves them."""

    def __init__(self, errors: BrokerErrors, *events):
        self.errors, self.events, self.polls = errors, list(events), 0

    def poll(self, timeout):
        self.polls += 1
        while self.events:
            self.errors(self.events.pop(0))


def test_wait_fails_as_soon_as_the_refusal_is_reported_not_after_the_timeout():
    hook = KafkaClientHook("kafka_prod", timeout=15)
    hook.broker_errors.install(LOGIN)
    hook._admin = _ReportingAdmin(hook.broker_errors, _error("_AUTHENTICATION", AUTH_FAILED))
    pending = concurrent.futures.Future()  # the broker never answers a client it refused
    started = time.monotonic()
    with pytest.raises(KafkaAuthenticationError, match="user 'alice' with mechanism SCRAM-SHA-512") as raised:
        hook.wait(pending, "a metadata request for topic 'orders'")
    assert time.monotonic() - started < 1
    assert pending.cancelled() and PASSWORD not in str(raised.value)


def test_wait_names_the_refusal_when_the_request_times_out_first():
    from confluent_kafka import KafkaException

    hook = KafkaClientHook("kafka_prod", timeout=15)
    hook.broker_errors.install(LOGIN)
    hook._admin = _ReportingAdmin(hook.broker_errors)
    hook.broker_errors(_error("_AUTHENTICATION", AUTH_FAILED))
    timed_out = concurrent.futures.Future()
    timed_out.set_exception(
        KafkaException(_error("_TIMED_OUT", "Failed while waiting for controller: Local: Timed out"))
    )
    with pytest.raises(KafkaAuthenticationError):
        hook.wait(timed_out, "a metadata request for topic 'orders'")


def test_wait_says_why_the_brokers_did_not_answer():
    from confluent_kafka import KafkaException

    hook = KafkaClientHook("kafka_prod", timeout=3)
    hook.broker_errors.install(LOGIN)
    hook._admin = _ReportingAdmin(
        hook.broker_errors,
        _error(
            "_TRANSPORT", "sasl_ssl://broker:9093/bootstrap: Connect to ipv4#10.0.0.1:9093 failed: Connection refused"
        ),
        _error("_ALL_BROKERS_DOWN", "1/1 brokers are down"),
    )
    timed_out = concurrent.futures.Future()
    timed_out.set_exception(KafkaException(_error("_TIMED_OUT", "Local: Timed out")))
    with pytest.raises(KafkaBrokerUnreachableError) as raised:
        hook.wait(timed_out, "a metadata request for topic 'orders'")
    assert str(raised.value) == (
        "The brokers of Kafka connection 'kafka_prod' did not answer a metadata request for topic 'orders' within 3s "
        "(librdkafka reports 1/1 brokers are down; the last connection attempt: sasl_ssl://broker:9093/bootstrap: "
        "Connect to ipv4#10.0.0.1:9093 failed: Connection refused); check bootstrap.servers (broker:9093), the "
        "network and the security settings."
    )


def test_a_real_client_on_a_port_nobody_listens_on_names_the_refused_connection(monkeypatch):
    from airflow_spark_streaming.hooks.kafka_broker import KafkaBrokerHook

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_NOWHERE", json.dumps({"conn_type": "kafka", "extra": {
        "bootstrap.servers": f"127.0.0.1:{port}"}}))  # fmt: skip
    started = time.monotonic()
    with pytest.raises(KafkaBrokerUnreachableError) as raised:
        KafkaBrokerHook("kafka_nowhere", timeout=1).get_retention(["orders"])
    assert time.monotonic() - started < 10
    text = str(raised.value)
    assert "'kafka_nowhere' did not answer a request for the configs of topic 'orders' within 1s" in text
    assert f"127.0.0.1:{port} failed: Connection refused" in text and "brokers are down" in text


def test_the_classifier_names_the_login_when_given_it():
    refused = classify_kafka_error(
        Exception(_error("_AUTHENTICATION", AUTH_FAILED)), conn_id="kafka_prod", secrets=[PASSWORD],
        mechanism="PLAIN", username="svc", protocol="SASL_PLAINTEXT",
    )  # fmt: skip
    assert type(refused) is KafkaAuthenticationError
    assert "rejected the SASL login of user 'svc' with mechanism PLAIN over SASL_PLAINTEXT" in str(refused)
    anonymous = classify_kafka_error(Exception(_error("_AUTHENTICATION", AUTH_FAILED)), conn_id="kafka_prod")
    assert "authentication failed: the broker rejected the login" in str(anonymous)


def test_a_topic_the_principal_may_not_read_is_named_with_the_grant():
    from airflow_spark_streaming.exceptions import KafkaAuthorizationError

    errors = BrokerErrors("kafka_prod")
    errors.install(LOGIN)
    cause = _error("TOPIC_AUTHORIZATION_FAILED", f"Fetch from broker 1 failed: Topic authorization failed {PASSWORD}")
    denied = errors.read_denied(["orders", "payments", "orders"], cause, "reading the first unprocessed record")
    assert type(denied) is KafkaAuthorizationError
    assert str(denied) == (
        "Kafka connection 'kafka_prod': the broker's ACLs deny User:alice READ on topics 'orders', 'payments', so "
        "reading the first unprocessed record failed. Grant READ (kafka-acls --add --allow-principal User:alice "
        "--operation Read --topic orders); the reading consumer is assigned, not subscribed, so it needs no "
        "consumer group ACL. Cause: TOPIC_AUTHORIZATION_FAILED: Fetch from broker 1 failed: Topic authorization "
        "failed ***"
    )
    unnamed = BrokerErrors("kafka_mtls")
    unnamed.install({"bootstrap.servers": "broker:9094", "security.protocol": "SSL"})
    text = str(unnamed.read_denied(["orders"], cause, "reading"))
    assert "deny its principal READ on topic 'orders'" in text and "--allow-principal <principal>" in text
