"""Refusals by the authenticated broker fail in bounded time with a named error that holds no password.

Each case runs on both sides: confluent-kafka (what the lag hook and sensors use)
and Spark's Kafka source with the options translated from the connection.
The measured times and messages are printed (run with ``-s``) for the docs.
"""

from __future__ import annotations

import secrets
import time

import pytest

from airflow_spark_streaming.exceptions import (
    KafkaAuthenticationError,
    KafkaAuthorizationError,
    KafkaTlsHandshakeError,
)
from airflow_spark_streaming.kafka.options import classify_kafka_error, spark_kafka_options
from tests.integration.kafka_auth.conftest import produce

pytestmark = pytest.mark.kafka

# A refusal must surface within this bound (the translated timeouts allow ~15 s per request).
BOUND_SECONDS = 45


def _cases(broker, topic_of):
    alice = broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512")
    wrong = "wrong-" + secrets.token_hex(6)
    return {
        "wrong_password": ({**alice, "sasl.password": wrong}, topic_of("alice"), KafkaAuthenticationError, wrong),
        "unknown_user": (
            {**alice, "sasl.username": "mallory"},
            topic_of("alice"),
            KafkaAuthenticationError,
            alice["sasl.password"],
        ),  # fmt: skip
        "untrusted_ca": (
            {**broker.client_config("alice", "SASL_SSL", "PLAIN"), "ssl.ca.location": broker.other_ca_file},
            topic_of("alice"),
            KafkaTlsHandshakeError,
            alice["sasl.password"],
        ),  # fmt: skip
        "acl_denied": (alice, topic_of("bob"), KafkaAuthorizationError, alice["sasl.password"]),
    }


CASES = ("wrong_password", "unknown_user", "untrusted_ca", "acl_denied")


def _confluent_refusal(config: dict, topic: str):
    """Describe ``topic`` with the connection's config until a refusal is classified or the bound passes."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient

    reported = []  # librdkafka reports authentication and TLS failures through error_cb
    admin = AdminClient({**config, "error_cb": reported.append})
    started = time.monotonic()
    future = admin.describe_topics(TopicCollection([topic]), request_timeout=15)[topic]
    while time.monotonic() - started < BOUND_SECONDS:
        admin.poll(0.2)
        candidates = list(reported)
        if future.done() and future.exception() is not None:
            candidates.append(future.exception())
        for candidate in candidates:
            classified = classify_kafka_error(candidate, conn_id="kafka_auth_test", secrets=[config["sasl.password"]])
            if classified is not None:
                return classified, candidate, time.monotonic() - started
    pytest.fail(f"no refusal classified within {BOUND_SECONDS}s; saw {reported} / {future}")


@pytest.mark.parametrize("case", CASES)
def test_confluent_side_refusal_is_named_and_bounded(auth_broker, auth_topic, case):
    config, topic, expected, password = _cases(auth_broker, auth_topic)[case]
    classified, raw, elapsed = _confluent_refusal(config, topic)
    print(
        f"\nconfluent {case}: {elapsed:.1f}s raw={type(raw).__name__}:{str(raw)[:160]} -> {type(classified).__name__}"
    )
    assert type(classified) is expected
    assert elapsed < BOUND_SECONDS
    assert password not in str(classified) and password not in str(raw)


@pytest.mark.parametrize("case", CASES)
def test_spark_side_refusal_is_named_and_bounded(spark, auth_broker, auth_topic, case):
    config, topic, expected, password = _cases(auth_broker, auth_topic)[case]
    options = spark_kafka_options(config, conn_id="kafka_auth_test")
    assert spark.range(3).count() == 3  # the session's start-up is not part of the measured time
    started = time.monotonic()
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    # What Spark raises for a refused client: a captured Spark error or the raw Java one, never anything else.
    with pytest.raises((PySparkException, Py4JJavaError)) as caught:
        spark.read.format("kafka").options(**options.for_source()).option("subscribe", topic).option(
            "startingOffsets", "earliest"
        ).load().collect()
    elapsed = time.monotonic() - started
    raw = caught.value
    classified = classify_kafka_error(raw, conn_id="kafka_auth_test", secrets=options.secret_values)
    first_line = next((line for line in str(raw).splitlines() if "Exception" in line), str(raw)[:160])
    print(f"\nspark {case}: {elapsed:.1f}s raw={type(raw).__name__}:{first_line[:200]} -> {type(classified).__name__}")
    assert type(classified) is expected
    assert elapsed < BOUND_SECONDS
    for text in (str(raw), str(classified)):
        assert password not in text and options.options.get("kafka.sasl.jaas.config", "\0") not in text


# --- the hooks: the refusal librdkafka reports through error_cb, well before the request timeout --------------

HOOK_TIMEOUT = 15.0  # the hooks' default request timeout
FAST_SECONDS = 5.0  # a refusal must surface well before it


def _kafka_checkpoint(root, topic: str):
    """A checkpoint of a query that read ``topic`` (written by hand in Spark's layout: no Spark needed)."""
    import json

    meta = '{"batchWatermarkMs":0,"batchTimestampMs":1795468736127,"conf":{"spark.sql.shuffle.partitions":"2"}}'
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    (root / "metadata").write_text('{"id":"5f0c1c9e-7c3b-4b8a-9d7e-2f3c0a1b2c3d"}')
    (root / "offsets" / "0").write_text(f"v1\n{meta}\n{json.dumps({topic: {'0': 0}})}")
    (root / "commits" / "0").write_text('v1\n{"nextBatchWatermarkMs":0}')
    return str(root)


def _hook_calls(topic: str, checkpoint: str):
    from airflow_spark_streaming.hooks.kafka_broker import KafkaBrokerHook
    from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook

    return {
        "lag": lambda conn: KafkaLagHook(conn).get_lag(checkpoint),  # admin client: describe topics
        "retention": lambda conn: KafkaBrokerHook(conn).get_retention([topic]),  # admin client: describe configs
        "record_timestamps": lambda conn: KafkaBrokerHook(conn).get_record_timestamps({(topic, 0): 0}),  # consumer
    }


def _raised(call):
    import traceback

    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        call()
    elapsed = time.monotonic() - started
    return raised.value, elapsed, "".join(traceback.format_exception(raised.value))


@pytest.mark.parametrize("call", ["lag", "retention", "record_timestamps"])
@pytest.mark.parametrize("case", ["wrong_password", "unknown_user"])
def test_hooks_name_the_rejected_login_at_once(auth_broker, auth_topic, kafka_connection, tmp_path, case, call):
    """A wrong SASL password over SASL_SSL: KafkaAuthenticationError naming mechanism, user and connection."""
    alice = auth_broker.client_config("alice", "SASL_SSL", "SCRAM-SHA-512")
    wrong = "wrong-" + secrets.token_hex(6)
    config = {**alice, "sasl.password": wrong} if case == "wrong_password" else {**alice, "sasl.username": "mallory"}
    conn_id = kafka_connection(f"kafka_{case}", config)
    topic = auth_topic("alice")
    err, elapsed, shown = _raised(
        lambda: _hook_calls(topic, _kafka_checkpoint(tmp_path / "ckpt", topic))[call](conn_id)
    )
    print(f"\nhook {call} {case}: {elapsed:.2f}s {type(err).__name__}: {err}")
    assert type(err) is KafkaAuthenticationError, shown
    user = "alice" if case == "wrong_password" else "mallory"
    assert str(err).startswith(
        f"Kafka connection 'kafka_{case}': authentication failed: the broker rejected the SASL login of user "
        f"'{user}' with mechanism SCRAM-SHA-512 over SASL_SSL"
    )
    assert "SASL authentication error" in str(err)  # librdkafka's own words, as the cause
    assert elapsed < FAST_SECONDS < HOOK_TIMEOUT
    for password in (wrong, alice["sasl.password"]):
        assert password not in shown  # nor in the causes the traceback shows


def test_hook_names_the_untrusted_broker_certificate_at_once(auth_broker, auth_topic, kafka_connection, tmp_path):
    config = {**auth_broker.client_config("alice", "SASL_SSL", "PLAIN"), "ssl.ca.location": auth_broker.other_ca_file}
    conn_id = kafka_connection("kafka_other_ca", config)
    topic = auth_topic("alice")
    err, elapsed, shown = _raised(
        lambda: _hook_calls(topic, _kafka_checkpoint(tmp_path / "ckpt", topic))["lag"](conn_id)
    )
    print(f"\nhook lag untrusted_ca: {elapsed:.2f}s {type(err).__name__}: {err}")
    assert type(err) is KafkaTlsHandshakeError, shown
    assert str(err).startswith(
        "Kafka connection 'kafka_other_ca': the TLS handshake over SASL_SSL with the broker failed"
    )
    assert "certificate verify failed" in str(err)
    assert elapsed < FAST_SECONDS
    assert config["sasl.password"] not in shown


# --- a principal without READ: the time-lag read names the topic and the grant at once -------------------------


def _assert_read_denied(err, shown: str, conn_id: str, topic: str, password: str) -> None:
    assert type(err) is KafkaAuthorizationError, shown
    assert str(err).startswith(
        f"Kafka connection {conn_id!r}: the broker's ACLs deny User:alice READ on topic {topic!r}, so reading the "
        f"first unprocessed record (time lag) failed. Grant READ (kafka-acls --add --allow-principal User:alice "
        f"--operation Read --topic {topic}); "
    )
    assert "Cause: TOPIC_AUTHORIZATION_FAILED: " in str(err)
    assert password not in shown


def test_lag_allowed_but_no_read_fails_the_time_lag_at_once(auth_broker, auth_topic, kafka_connection, grant_topic,
                                                            tmp_path):  # fmt: skip
    """DESCRIBE and DESCRIBE_CONFIGS but no READ: the lag is measured; the time lag, which reads a record, is refused
    by the fetch (before: the same refusal, named without the topic or the grant)."""
    from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook

    alice = auth_broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512")
    conn_id, topic = kafka_connection("kafka_no_read", alice), auth_topic("bob")
    produce({"bootstrap.servers": auth_broker.bootstrap_servers}, topic, 5)
    grant_topic("alice", topic, "DESCRIBE", "DESCRIBE_CONFIGS")
    checkpoint = _kafka_checkpoint(tmp_path / "ckpt", topic)
    lag = KafkaLagHook(conn_id).get_lag(checkpoint)
    assert [(p.topic, p.lag) for p in lag.partitions] == [(topic, 5)]  # DESCRIBE suffices for the lag
    err, elapsed, shown = _raised(lambda: KafkaLagHook(conn_id).get_lag(checkpoint, time_lag=True))
    print(f"\nhook time lag without READ: {elapsed:.2f}s {type(err).__name__}: {err}")
    _assert_read_denied(err, shown, conn_id, topic, alice["sasl.password"])
    assert elapsed < FAST_SECONDS < HOOK_TIMEOUT


def test_no_acl_at_all_fails_the_record_read_at_once_not_after_the_timeout(auth_broker, auth_topic,
                                                                           kafka_connection):  # fmt: skip
    """Without DESCRIBE the broker hides the topic's partitions and librdkafka reports nothing to an assigned
    consumer: the read waited out its 15 s timeout and called the brokers unreachable. The topic's metadata names
    the refusal."""
    from airflow_spark_streaming.hooks.kafka_broker import KafkaBrokerHook

    alice = auth_broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512")
    conn_id, topic = kafka_connection("kafka_no_acl", alice), auth_topic("bob", partitions=2)
    produce({"bootstrap.servers": auth_broker.bootstrap_servers}, topic, 4, partitions=2)
    hook = KafkaBrokerHook(conn_id)
    assert hook.timeout == HOOK_TIMEOUT
    err, elapsed, shown = _raised(lambda: hook.get_record_timestamps({(topic, 0): 0, (topic, 1): 0}))
    print(f"\nhook record timestamps without any ACL: {elapsed:.2f}s {type(err).__name__}: {err}")
    _assert_read_denied(err, shown, conn_id, topic, alice["sasl.password"])
    assert elapsed < FAST_SECONDS < HOOK_TIMEOUT


@pytest.mark.parametrize("call", ["latest_offsets", "lag"])
def test_no_describe_names_the_describe_grant_then_the_grant_fixes_it(auth_broker, auth_topic, kafka_connection,
                                                                      grant_topic, tmp_path, call):  # fmt: skip
    """Without DESCRIBE the broker hides the topic's partitions: librdkafka answered the latest-offsets request of
    the health hook with "No leaders found". The error names the DESCRIBE grant; once granted, the same call works."""
    from airflow_spark_streaming.hooks.kafka_broker import KafkaBrokerHook
    from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook

    alice = auth_broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512")
    conn_id, topic = kafka_connection(f"kafka_no_describe_{call}", alice), auth_topic("bob", partitions=2)
    produce({"bootstrap.servers": auth_broker.bootstrap_servers}, topic, 6, partitions=2)
    checkpoint = _kafka_checkpoint(tmp_path / "ckpt", topic)
    calls = {
        "latest_offsets": lambda: KafkaBrokerHook(conn_id).get_latest_offsets({(topic, 0), (topic, 1)}),
        "lag": lambda: KafkaLagHook(conn_id).get_lag(checkpoint),
    }
    err, elapsed, shown = _raised(calls[call])
    print(f"\n{call} without DESCRIBE: {elapsed:.2f}s {type(err).__name__}: {err}")
    assert type(err) is KafkaAuthorizationError, shown
    assert str(err).startswith(
        f"Kafka connection {conn_id!r}: the broker's ACLs deny User:alice DESCRIBE on topic {topic!r}, so "
    ), shown
    assert f"Grant DESCRIBE (kafka-acls --add --allow-principal User:alice --operation Describe --topic {topic})" in (
        str(err)
    )
    assert "No leaders found" not in str(err) and alice["sasl.password"] not in shown
    assert elapsed < FAST_SECONDS < HOOK_TIMEOUT

    grant_topic("alice", topic, "DESCRIBE")
    answer = calls[call]()
    if call == "latest_offsets":
        assert answer == {(topic, 0): 3, (topic, 1): 3}
    else:
        assert sorted((p.partition, p.latest_offset) for p in answer.partitions) == [(0, 3), (1, 3)]
