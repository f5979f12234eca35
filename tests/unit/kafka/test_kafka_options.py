"""Every translation from a confluent-kafka config to Spark kafka.* options, and every refusal."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.exceptions import (
    KafkaAuthenticationError,
    KafkaAuthorizationError,
    KafkaAuthUnsupportedError,
    KafkaConnectionConfigError,
    KafkaConnectionIncompleteError,
    KafkaConnectionKeyUnsupportedError,
    KafkaTlsFileError,
    KafkaTlsHandshakeError,
    SparkStreamingError,
)
from airflow_spark_streaming.kafka.options import (
    KafkaTimeouts,
    SparkKafkaOptions,
    classify_kafka_error,
    jaas_quote,
    spark_kafka_options,
)

CA = "-----BEGIN CERTIFICATE-----\nMIIca\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIclient\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIkey\n-----END PRIVATE KEY-----\n"
ENCRYPTED_KEY = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIenc\n-----END ENCRYPTED PRIVATE KEY-----\n"
SCRAM = {
    "bootstrap.servers": "b1:9093, b2:9093",
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "alice",
    "sasl.password": "s3cret",
}


def files(**contents):
    return lambda path: contents[path]


def test_plaintext_gives_bootstrap_protocol_and_bounded_timeouts():
    result = spark_kafka_options({"bootstrap.servers": "localhost:9092"})
    assert result.for_source() == {
        "kafka.bootstrap.servers": "localhost:9092",
        "kafka.security.protocol": "PLAINTEXT",
        "kafka.request.timeout.ms": "15000",
        "kafka.default.api.timeout.ms": "30000",
        "fetchOffset.numRetries": "2",
        "fetchOffset.retryIntervalMs": "500",
    }
    assert result.for_sink() == {
        "kafka.bootstrap.servers": "localhost:9092",
        "kafka.security.protocol": "PLAINTEXT",
        "kafka.request.timeout.ms": "15000",
        "kafka.max.block.ms": "30000",
        "kafka.delivery.timeout.ms": "45000",
    }
    assert result.secret_keys == [] and result.secret_values == []


def test_bootstrap_servers_are_normalised_like_librdkafka():
    options = spark_kafka_options({"metadata.broker.list": "SASL_SSL://a:1, b ,,c:3"}).options
    assert options["kafka.bootstrap.servers"] == "a:1,b:9092,c:3"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "scram-sha-256"])
def test_scram_builds_a_jaas_config_and_marks_it_secret(mechanism):
    config = {**SCRAM, "security.protocol": "sasl_plaintext", "sasl.mechanisms": mechanism}
    del config["sasl.mechanism"]
    result = spark_kafka_options(config)
    assert result.options["kafka.security.protocol"] == "SASL_PLAINTEXT"
    assert result.options["kafka.sasl.mechanism"] == mechanism.upper()
    assert result.options["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cret";'
    )
    assert result.options["kafka.bootstrap.servers"] == "b1:9093,b2:9093"
    assert result.secret_keys == ["kafka.sasl.jaas.config"]
    assert "s3cret" in result.secret_values and result.options["kafka.sasl.jaas.config"] in result.secret_values


def test_plain_over_tls_embeds_the_ca_by_default():
    config = {**SCRAM, "sasl.mechanism": "PLAIN", "ssl.ca.location": "/etc/ca.pem"}
    result = spark_kafka_options(config, read_text=files(**{"/etc/ca.pem": CA}))
    assert result.options["kafka.sasl.jaas.config"].startswith(
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="alice"'
    )
    assert result.options["kafka.ssl.truststore.type"] == "PEM"
    assert result.options["kafka.ssl.truststore.certificates"] == CA
    assert "kafka.ssl.truststore.location" not in result.options


def test_ca_by_path_when_not_embedding_and_inline_ca_pem():
    by_path = spark_kafka_options({**SCRAM, "ssl.ca.location": "/etc/ca.pem"}, embed_files=False).options
    assert (by_path["kafka.ssl.truststore.type"], by_path["kafka.ssl.truststore.location"]) == ("PEM", "/etc/ca.pem")
    inline = spark_kafka_options({**SCRAM, "ssl.ca.pem": CA}, embed_files=False).options
    assert inline["kafka.ssl.truststore.certificates"] == CA.strip()


def test_probe_ca_uses_the_jvm_truststore_and_none_turns_off_host_name_checks():
    options = spark_kafka_options(
        {**SCRAM, "ssl.ca.location": "probe", "ssl.endpoint.identification.algorithm": "none"}
    ).options
    assert not any(k.startswith("kafka.ssl.truststore") for k in options)
    assert options["kafka.ssl.endpoint.identification.algorithm"] == ""


@pytest.mark.parametrize(
    ("password", "quoted"),
    [('pa"ss', r'"pa\"ss"'), ("back\\slash", r'"back\\slash"'), ('\\"', r'"\\\""'), ("a\nb", r'"a\nb"')],
)
def test_jaas_values_escape_quotes_backslashes_and_line_breaks(password, quoted):
    assert jaas_quote(password) == quoted
    jaas = spark_kafka_options({**SCRAM, "sasl.password": password}).options["kafka.sasl.jaas.config"]
    assert jaas.endswith(f"password={quoted};")


@pytest.mark.parametrize("password", ['pa"ss-word', "back\\slash-pw", "plain-password"])
def test_the_jaas_password_is_a_secret_alone_as_given_and_as_quoted_besides_the_whole_config(password):
    result = spark_kafka_options({**SCRAM, "sasl.password": password})
    jaas = result.options["kafka.sasl.jaas.config"]
    assert jaas in result.secret_values  # the whole config
    assert password in result.secret_values  # the password alone, as given
    assert jaas_quote(password)[1:-1] in result.secret_values  # and as the config escapes it
    assert jaas_quote(password)[1:-1] in jaas


def test_mutual_tls_embeds_key_and_chain_as_a_pem_keystore():
    config = {
        "bootstrap.servers": "b:9094",
        "security.protocol": "SSL",
        "ssl.ca.location": "ca",
        "ssl.certificate.location": "crt",
        "ssl.key.location": "key",
    }
    result = spark_kafka_options(config, read_text=files(ca=CA, crt=CERT, key=KEY))
    assert result.options["kafka.ssl.keystore.type"] == "PEM"
    assert result.options["kafka.ssl.keystore.certificate.chain"] == CERT
    assert result.options["kafka.ssl.keystore.key"] == KEY
    assert "kafka.sasl.jaas.config" not in result.options
    assert result.secret_keys == ["kafka.ssl.keystore.key"] and KEY in result.secret_values


def test_encrypted_client_key_carries_its_password_as_a_secret():
    config = {"bootstrap.servers": "b:1", "security.protocol": "SSL", "ssl.certificate.pem": CERT,
              "ssl.key.pem": ENCRYPTED_KEY, "ssl.key.password": "kp"}  # fmt: skip
    result = spark_kafka_options(config)
    assert result.options["kafka.ssl.key.password"] == "kp"
    assert result.secret_keys == ["kafka.ssl.key.password", "kafka.ssl.keystore.key"]
    assert "kp" in result.secret_values


def test_client_files_by_path_need_one_file_for_key_and_chain():
    config = {"bootstrap.servers": "b:1", "security.protocol": "SSL", "ssl.certificate.location": "both.pem",
              "ssl.key.location": "both.pem"}  # fmt: skip
    options = spark_kafka_options(config, embed_files=False).options
    assert (options["kafka.ssl.keystore.type"], options["kafka.ssl.keystore.location"]) == ("PEM", "both.pem")
    with pytest.raises(KafkaTlsFileError, match=r"ONE file.*'crt'.*'key'"):
        spark_kafka_options({**config, "ssl.certificate.location": "crt", "ssl.key.location": "key"},
                            embed_files=False)  # fmt: skip


def test_pkcs12_keystore_is_passed_with_its_password_secret():
    config = {"bootstrap.servers": "b:1", "security.protocol": "SSL", "ssl.keystore.location": "/k.p12",
              "ssl.keystore.password": "ksp"}  # fmt: skip
    result = spark_kafka_options(config)
    assert result.options["kafka.ssl.keystore.type"] == "PKCS12"
    assert result.options["kafka.ssl.keystore.location"] == "/k.p12"
    assert result.secret_keys == ["kafka.ssl.keystore.password"]


def test_client_only_keys_are_ignored_by_name_and_reported():
    result = spark_kafka_options({"bootstrap.servers": "b:1", "group.id": "g", "client.id": "c", "debug": "all"})
    assert result.ignored_keys == ["client.id", "debug", "group.id"]
    assert not any("group" in k or "client" in k for k in result.options)
    custom = spark_kafka_options({"bootstrap.servers": "b:1", "queue.buffering.max.ms": 5},
                                 ignore_keys=["queue.buffering.max.ms"])  # fmt: skip
    assert custom.ignored_keys == ["queue.buffering.max.ms"]


def test_custom_timeouts_and_delivery_timeout_never_below_request_timeout():
    result = spark_kafka_options(
        {"bootstrap.servers": "b:1"}, timeouts=KafkaTimeouts(request_timeout_ms=50_000, fetch_offset_num_retries=0)
    )
    assert result.source_options["fetchOffset.numRetries"] == "0"
    assert result.sink_options["kafka.delivery.timeout.ms"] == "50000"


def test_options_round_trip_through_json_and_repr_hides_secrets():
    result = spark_kafka_options(SCRAM, read_text=files())
    assert SparkKafkaOptions.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert "s3cret" not in repr(result) and "s3cret" not in str(result.redacted())
    assert result.redacted()["kafka.sasl.jaas.config"] == "***"


# Refusals: each names the key and what to do, and is a SparkStreamingError.
@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ({}, KafkaConnectionIncompleteError, r"no 'bootstrap.servers'.*set it"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"}, KafkaAuthUnsupportedError,
         r"OAUTHBEARER.*kafka.sasl.login.callback.handler.class"),
        ({"oauth_cb": "my.module.token"}, KafkaAuthUnsupportedError, r"'oauth_cb'.*SCRAM, PLAIN or mutual TLS"),
        ({"sasl.oauthbearer.method": "oidc"}, KafkaAuthUnsupportedError, r"'sasl.oauthbearer.method'"),
        ({"sasl.kerberos.service.name": "kafka"}, KafkaAuthUnsupportedError, r"Kerberos.*--principal/--keytab"),
        ({"security.protocol": "SASL_SSL", "sasl.username": "u", "sasl.password": "p"}, KafkaAuthUnsupportedError,
         r"unset \(GSSAPI\).*Set sasl.mechanism to PLAIN"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "AWS_MSK_IAM", "sasl.username": "u",
          "sasl.password": "p"}, KafkaAuthUnsupportedError, r"'AWS_MSK_IAM'; supported are PLAIN"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "u"},
         KafkaConnectionIncompleteError, r"lacks sasl.password"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.mechanisms": "SCRAM-SHA-256"},
         KafkaConnectionIncompleteError, r"keep one"),
        ({"sasl.username": "u", "sasl.password": "p"}, KafkaConnectionIncompleteError,
         r"sasl.password, sasl.username but security.protocol is PLAINTEXT"),
        ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "u",
          "sasl.password": "p", "ssl.ca.location": "ca"}, KafkaConnectionIncompleteError,
         r"ssl.ca.location but security.protocol is SASL_PLAINTEXT"),
        ({"security.protocol": "TLS"}, KafkaConnectionIncompleteError, r"security.protocol='TLS'"),
        ({"queue.buffering.max.ms": 5}, KafkaConnectionKeyUnsupportedError,
         r"'queue.buffering.max.ms'.*kafka_ignore_keys"),
        ({"security.protocol": "SSL", "enable.ssl.certificate.verification": "false"},
         KafkaConnectionKeyUnsupportedError, r"always verifies.*ssl.ca.location"),
        ({"security.protocol": "SSL", "ssl.certificate.pem": CERT}, KafkaConnectionIncompleteError,
         r"half of a client certificate.*ssl.key.location"),
        ({"security.protocol": "SSL", "ssl.key.password": "x"}, KafkaConnectionIncompleteError,
         r"ssl.key.password but no client key"),
        ({"security.protocol": "SSL", "ssl.certificate.pem": CERT, "ssl.key.pem": KEY, "ssl.keystore.location": "k"},
         KafkaConnectionIncompleteError, r"keep one"),
        ({"security.protocol": "SSL", "ssl.certificate.pem": CERT, "ssl.key.pem": ENCRYPTED_KEY},
         KafkaConnectionIncompleteError, r"encrypted but ssl.key.password is missing"),
        ({"security.protocol": "SSL", "ssl.certificate.pem": CERT, "ssl.key.pem": KEY, "ssl.key.password": "x"},
         KafkaConnectionIncompleteError, r"not encrypted but ssl.key.password is set"),
        ({"security.protocol": "SSL", "ssl.certificate.pem": CERT,
          "ssl.key.pem": "-----BEGIN RSA PRIVATE KEY-----\nx\n"}, KafkaTlsFileError, r"PKCS#1.*openssl pkcs8 -topk8"),
        ({"security.protocol": "SSL", "ssl.ca.pem": "not a pem"}, KafkaTlsFileError, r"no 'BEGIN CERTIFICATE'"),
        ({"security.protocol": "SSL", "ssl.ca.location": "/missing/ca.pem"}, KafkaTlsFileError,
         r"cannot read ssl.ca.location='/missing/ca.pem'"),
        ({"security.protocol": ["SSL"]}, KafkaConnectionKeyUnsupportedError, r"'security.protocol' is a list"),
    ],
)  # fmt: skip
def test_refusals_name_the_key_and_the_fix(config, error, match):
    config = {"bootstrap.servers": "b:1", **config} if config else config

    def read(path):
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(error, match=match) as caught:
        spark_kafka_options(config, conn_id="kafka_prod", read_text=read)
    assert isinstance(caught.value, KafkaConnectionConfigError | SparkStreamingError)
    assert "kafka_prod" in str(caught.value)
    assert "'p'" not in str(caught.value)  # a password is never quoted back


class _FakeKafkaError:  # the shape of confluent_kafka.KafkaError
    def __init__(self, name, text):
        self._name, self._text = name, text

    def name(self):
        return self._name

    def __str__(self):
        return self._text


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("org.apache.kafka.common.errors.SaslAuthenticationException: Authentication failed during "
                      "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"),
         KafkaAuthenticationError),
        (RuntimeError("org.apache.kafka.common.errors.SslAuthenticationException: SSL handshake failed "
                      "Caused by: javax.net.ssl.SSLHandshakeException: PKIX path building failed"),
         KafkaTlsHandshakeError),
        (RuntimeError("org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized to access "
                      "topics: [bob.t]"), KafkaAuthorizationError),
        (Exception(_FakeKafkaError("_AUTHENTICATION", "SASL authentication error")), KafkaAuthenticationError),
        (_FakeKafkaError("_SSL", "SSL handshake failed: certificate verify failed"), KafkaTlsHandshakeError),
        (Exception(_FakeKafkaError("TOPIC_AUTHORIZATION_FAILED", "Broker: Topic authorization failed")),
         KafkaAuthorizationError),
        (Exception(_FakeKafkaError("_TRANSPORT", "security.protocol SASL_SSL: Broker transport failure")), None),
        (ValueError("division by zero"), None),
    ],
)  # fmt: skip
def test_classifier_names_broker_refusals(error, expected):
    classified = classify_kafka_error(error, conn_id="kafka_prod")
    if expected is None:
        assert classified is None
    else:
        assert type(classified) is expected and "kafka_prod" in str(classified)


def test_classifier_follows_causes_and_removes_secrets():
    try:
        try:
            raise RuntimeError('SaslAuthenticationException: bad login for password="hunter2"')
        except RuntimeError as inner:
            raise ValueError("query failed") from inner
    except ValueError as outer:
        classified = classify_kafka_error(outer, secrets=["hunter2"])
    assert isinstance(classified, KafkaAuthenticationError)
    assert "hunter2" not in str(classified) and "***" in str(classified)
