"""Spark Kafka options from the Kafka provider's ``kafka`` connection, with every secret masked.

The same connection the lag hook and sensors use (a confluent-kafka config in
the connection's extra) is read here and translated by
:func:`airflow_spark_streaming.kafka.options.spark_kafka_options`. The
connection is only read, never changed. Secret values (the password, the JAAS
config, private keys) are registered with Airflow's secrets masker before they
are returned, so a log line or rendered field that holds one shows ``***``.
"""

from __future__ import annotations

from collections.abc import Iterable

from airflow_spark_streaming.kafka.options import KafkaTimeouts, SparkKafkaOptions, spark_kafka_options

DEFAULT_KAFKA_CONN_ID = "kafka_default"


def read_kafka_config(kafka_config_id: str = DEFAULT_KAFKA_CONN_ID) -> dict:
    """The confluent-kafka config held by the ``kafka`` connection (its extra), as the Kafka provider reads it."""
    from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook

    return dict(KafkaBaseHook(kafka_config_id=kafka_config_id).get_connection(kafka_config_id).extra_dejson)


def _mask(values: Iterable[str]) -> None:
    """Register ``values`` with the masker (task and supervisor), each also as a JSON string would escape it."""
    import json

    from airflow.sdk.log import mask_secret

    for value in dict.fromkeys(v for v in values if v):
        mask_secret(value)
        escaped = json.dumps(value)[1:-1]
        if escaped != value:
            mask_secret(escaped)


def mask_kafka_secrets(options: SparkKafkaOptions) -> None:
    """Register every secret of ``options`` with Airflow's secrets masker (task and supervisor).

    ``secret_values`` hold the whole JAAS config and its password alone (as given and as the config
    escapes it), the key passwords and the private key.
    """
    _mask(options.secret_values)


def get_spark_kafka_options(
    kafka_config_id: str = DEFAULT_KAFKA_CONN_ID,
    *,
    embed_files: bool = True,
    ignore_keys: Iterable[str] = (),
    timeouts: KafkaTimeouts | None = None,
) -> SparkKafkaOptions:
    """Spark ``kafka.*`` options for the ``kafka`` connection ``kafka_config_id``; secrets are masked first.

    :param kafka_config_id: the Kafka provider connection (``conn_type`` ``kafka``).
    :param embed_files: embed the PEM files the connection names (CA, client certificate and key) in
        the options, so Spark's driver and executors need no copy; ``False`` passes their paths.
    :param ignore_keys: connection keys that only matter to confluent-kafka clients.
    :param timeouts: bounds on how long a refusing or unreachable broker can stall the query.
    :raises KafkaConnectionConfigError: a key cannot be translated; the message names it and the fix.
    """
    options = spark_kafka_options(
        read_kafka_config(kafka_config_id),
        conn_id=kafka_config_id,
        embed_files=embed_files,
        ignore_keys=ignore_keys,
        timeouts=timeouts,
    )
    mask_kafka_secrets(options)
    return options


def mask_connection_secrets(kafka_config_id: str, *, ignore_keys: Iterable[str] = ()) -> None:
    """Register the secrets of ``kafka_config_id`` with the masker; a connection that cannot be translated is left
    for :func:`get_spark_kafka_options` to report where it is used."""
    from airflow_spark_streaming.exceptions import KafkaConnectionConfigError

    try:
        get_spark_kafka_options(kafka_config_id, ignore_keys=ignore_keys)
    except KafkaConnectionConfigError:
        from airflow_spark_streaming.kafka.options import jaas_quote
        from airflow_spark_streaming.utils.redaction import secret_values

        config = read_kafka_config(kafka_config_id)
        values = list(secret_values(config))  # every secret-looking key: sasl.password, ssl.key.pem, ...
        password = config.get("sasl.password")
        if isinstance(password, str | int | float) and not isinstance(password, bool) and str(password):
            values.append(jaas_quote(str(password))[1:-1])  # as a JAAS config would quote it
        _mask(values)
