"""A stream spec's ``kafka_config_id``, resolved into Spark Kafka options, and a driver's Kafka refusal, named.

The operator resolves the ``kafka`` connection on the Airflow side (the driver
may not reach Airflow's connections); the options travel inside the spec, which
reaches the driver only as a private file (0600, deleted once read) or staged
beside the checkpoint, never on a command line. Each resolved Kafka section
gets a ``kafka_connection`` object the stream runner applies before the
section's own options::

    {"conn_id": "kafka_default", "options": {"kafka.bootstrap.servers": ..., "kafka.sasl.jaas.config": ...},
     "secret_keys": ["kafka.sasl.jaas.config"], "secret_values": [...]}
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_spark_streaming.exceptions import InvalidStreamSpecError, KafkaAccessError
from airflow_spark_streaming.kafka.connection import get_spark_kafka_options
from airflow_spark_streaming.kafka.options import KafkaTimeouts, classify_kafka_error
from airflow_spark_streaming.runner.spec import KAFKA_CONNECTION_OPTION_PREFIXES

#: The key of a resolved source/sink section that the stream runner reads.
KAFKA_CONNECTION_KEY = "kafka_connection"


@dataclass
class ResolvedKafkaSpec:
    """The spec with its Kafka connections resolved; ``secret_values`` are registered with the secrets masker."""

    spec: dict[str, Any]
    conn_ids: list[str] = field(default_factory=list)
    secret_values: list[str] = field(default_factory=list, repr=False)

    @property
    def uses_connections(self) -> bool:
        return bool(self.conn_ids)

    def redacted_options(self) -> dict[str, dict[str, str]]:
        """Per section, the options each connection contributed, with secret values shown as ``***``."""
        shown = {}
        for name in ("source", "sink"):
            resolved = (self.spec.get(name) or {}).get(KAFKA_CONNECTION_KEY)
            if resolved:
                shown[name] = {k: "***" if k in resolved["secret_keys"] else v for k, v in resolved["options"].items()}
        return shown

    def classify(self, failure: object) -> KafkaAccessError | None:
        """A named error for a broker's refusal in ``failure`` (an exception or driver output), without secrets."""
        conn_id = ", ".join(dict.fromkeys(self.conn_ids)) or None
        return classify_kafka_error(failure, conn_id=conn_id, secrets=self.secret_values)


def resolve_kafka_spec(
    spec: dict[str, Any], *, ignore_keys: Iterable[str] = (), timeouts: KafkaTimeouts | None = None
) -> ResolvedKafkaSpec:
    """Resolve each Kafka section's ``kafka_config_id`` of a validated ``spec`` (which is not changed).

    The connection's bounded timeouts apply unless the section's options set them; its connection and
    security settings (``KAFKA_CONNECTION_OPTION_PREFIXES``) may not be set there too.

    :raises InvalidStreamSpecError: an option of the section also comes from the connection.
    :raises KafkaConnectionConfigError: the connection cannot be translated; the message names the key.
    """
    spec = copy.deepcopy(spec)
    resolved = ResolvedKafkaSpec(spec)
    for name in ("source", "sink"):
        section = spec.get(name)
        if not isinstance(section, dict) or section.get("format") != "kafka" or not section.get("kafka_config_id"):
            continue
        conn_id = section["kafka_config_id"]
        connection = get_spark_kafka_options(conn_id, ignore_keys=ignore_keys, timeouts=timeouts)
        own = section.get("options", {})
        # The connection's settings may not be overridden; its bounded timeouts are defaults the spec may change.
        clash = sorted(k for k in own if k in connection.options and k.startswith(KAFKA_CONNECTION_OPTION_PREFIXES))
        if clash:
            raise InvalidStreamSpecError(
                f"stream spec {name}.options: {', '.join(clash)} would override kafka connection {conn_id!r}; "
                "set them in the connection's extra, or remove kafka_config_id."
            )
        options = connection.for_source() if name == "source" else connection.for_sink()
        section[KAFKA_CONNECTION_KEY] = {
            "conn_id": conn_id,
            "options": {k: v for k, v in options.items() if k not in own},  # the spec's own timeouts win
            "secret_keys": list(connection.secret_keys),
            "secret_values": list(connection.secret_values),
        }
        resolved.conn_ids.append(conn_id)
        resolved.secret_values.extend(v for v in connection.secret_values if v not in resolved.secret_values)
    return resolved
