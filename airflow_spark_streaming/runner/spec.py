"""The declarative stream runner's spec, validated on the Airflow side before anything is submitted.

The spec is a JSON object (see :mod:`airflow_spark_streaming.runner.jobs.stream_runner`)::

    {
      "query_name": "orders_to_delta",
      "checkpoint_location": "s3://lake/_checkpoints/orders",
      "source": {"format": "kafka", "kafka_config_id": "kafka_default", "options": {"subscribe": "orders"}},
      "transform_sql": "SELECT ... FROM source",
      "sink": {"format": "delta", "path": "s3://lake/orders", "output_mode": "append",
               "partition_by": ["day"], "merge_schema": true},
      "trigger": {"available_now": true}
    }
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

from airflow_spark_streaming.exceptions import InvalidStreamSpecError, TransformSqlError
from airflow_spark_streaming.runner.protocol import (
    DEFAULT_LEASE_TTL_SECONDS,
    FILE_FORMATS,
    LEASE_CONSISTENCY,
    PATH_SINKS,
    SINK_FORMATS,
    SOURCE_FORMATS,
)
from airflow_spark_streaming.runner.sql_check import transform_sql_problem
from airflow_spark_streaming.utils.redaction import SECRET_KEY, is_secret_key  # noqa: F401 - their home before 0.3

OUTPUT_MODES = ("append", "update", "complete")
_KAFKA_SUBSCRIPTIONS = ("subscribe", "subscribePattern", "assign")
_QUERY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
_INTERVAL = re.compile(r"^\s*\d+(\.\d+)?\s*(millisecond|second|minute|hour|day)s?\s*$", re.IGNORECASE)


#: The keys the stream runner reads, per object. ``options`` are Spark's own (free-form) and not checked here.
#: ``kafka_config_id`` names an Airflow ``kafka`` connection resolved into options before submission.
SPEC_KEYS = ("query_name", "checkpoint_location", "source", "transform_sql", "sink", "trigger", "lease_ttl_seconds",
             "lease_consistency", "control_key")  # fmt: skip
SOURCE_KEYS = ("format", "options", "path", "schema", "kafka_config_id")
SINK_KEYS = ("format", "options", "path", "output_mode", "partition_by", "merge_schema", "kafka_config_id")
TRIGGER_KEYS = ("available_now", "processing_time")


def _refuse_unknown_keys(section: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    """A misspelt key (``patition_by``, ``tigger``) is refused, with the nearest valid key suggested."""
    for key in sorted(map(str, set(section) - set(known))):
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else f"valid keys are {', '.join(known)}"
        field = f"{where}.{key}" if where else key
        raise _fail(field, f"unknown key; {hint}")


#: Spark options a ``kafka_config_id`` connection sets; the spec's options may not set them too.
KAFKA_CONNECTION_OPTION_PREFIXES = ("kafka.bootstrap.servers", "kafka.security.protocol", "kafka.sasl.", "kafka.ssl.")


def _fail(field: str, problem: str) -> InvalidStreamSpecError:
    return InvalidStreamSpecError(f"stream spec {field}: {problem}")


def _options(section: dict[str, Any], where: str) -> dict[str, str]:
    options = section.get("options", {})
    if not isinstance(options, dict):
        raise _fail(f"{where}.options", "must be an object of option names to values")
    return {str(k): v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in options.items()}  # fmt: skip


def _section(spec: dict[str, Any], name: str, formats: tuple[str, ...], shape: str) -> dict[str, Any]:
    """The ``source`` or ``sink`` object, with a known format and its options normalised."""
    section = spec.get(name)
    if not isinstance(section, dict):
        raise _fail(name, f"is required, {shape}")
    if section.get("format") not in formats:
        raise _fail(f"{name}.format", f"{section.get('format')!r} is not one of {', '.join(formats)}")
    _refuse_unknown_keys(section, SOURCE_KEYS if name == "source" else SINK_KEYS, name)
    section["options"] = _options(section, name)
    _check_kafka_config_id(section, name)
    return section


def _check_kafka_config_id(section: dict[str, Any], where: str) -> None:
    """``kafka_config_id`` names a ``kafka`` connection; its settings must not also be spelt out as options."""
    if "kafka_config_id" not in section:
        return
    conn_id = section["kafka_config_id"]
    if section["format"] != "kafka":
        raise _fail(f"{where}.kafka_config_id", f"is for a kafka {where}, not {section['format']!r}")
    if not isinstance(conn_id, str) or not conn_id.strip():
        raise _fail(f"{where}.kafka_config_id", "must name a 'kafka' connection")
    clash = sorted(k for k in section["options"] if k.startswith(KAFKA_CONNECTION_OPTION_PREFIXES))
    if clash:
        raise _fail(
            f"{where}.options",
            f"{', '.join(clash)} would override kafka connection {conn_id!r}; set them in the connection's extra, "
            "or remove kafka_config_id",
        )


def _check_location(section: dict[str, Any], key: str, field: str) -> None:
    """A location in the spec: text, and absolute (the worker reads what the driver writes, from another directory).

    Only the value's type is named: a URI may carry credentials.
    """
    from airflow_spark_streaming.storage.locations import is_absolute_location

    value = section.get(key)
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        kind = "empty" if isinstance(value, str) else f"of type {type(value).__name__}"
        raise _fail(field, f"is {kind}; it must be one path or URI, e.g. 's3://bucket/orders' or '/lake/orders'")
    if not is_absolute_location(value):
        raise _fail(
            field,
            "is a relative path, which the Airflow worker and the Spark driver resolve against different "
            "directories; use an absolute path ('/lake/orders') or a URI with a scheme ('s3://bucket/orders')",
        )


def validate_stream_spec(spec: Any) -> dict[str, Any]:
    """Return a normalised copy of ``spec``, or raise :class:`InvalidStreamSpecError` naming the field and the fix."""
    if not isinstance(spec, dict):
        raise InvalidStreamSpecError(
            f"stream spec must be a JSON object (a dict with query_name, checkpoint_location, source, sink, ...), "
            f"not a {type(spec).__name__}"
        )
    spec = copy.deepcopy(spec)
    _refuse_unknown_keys(spec, SPEC_KEYS, "")
    name = spec.get("query_name")
    if not isinstance(name, str) or not _QUERY_NAME.match(name):
        raise _fail("query_name", f"{name!r} must be 1-200 letters, digits, dots, dashes or underscores")
    if not isinstance(spec.get("checkpoint_location"), str) or not spec["checkpoint_location"].strip():
        raise _fail("checkpoint_location", "is required: every streaming query needs its own checkpoint")
    _check_location(spec, "checkpoint_location", "checkpoint_location")

    source = _section(spec, "source", SOURCE_FORMATS, "an object with 'format' and 'options'")
    if source["format"] == "kafka":
        if not source["options"].get("kafka.bootstrap.servers") and not source.get("kafka_config_id"):
            raise _fail("source.options", "a kafka source needs kafka_config_id or 'kafka.bootstrap.servers'")
        given = [k for k in _KAFKA_SUBSCRIPTIONS if k in source["options"]]
        if len(given) != 1:
            raise _fail("source.options", f"a kafka source needs exactly one of {', '.join(_KAFKA_SUBSCRIPTIONS)}")
    if source["format"] in (*FILE_FORMATS, "delta") and not source.get("path"):
        raise _fail("source.path", f"a {source['format']} source needs a path")
    _check_location(source, "path", "source.path")
    if source["format"] in FILE_FORMATS and source["format"] != "text" and not source.get("schema"):
        raise _fail(
            "source.schema", f"a {source['format']} file source needs a DDL schema, e.g. 'id BIGINT, name STRING'"
        )
    if "schema" in source and (not isinstance(source["schema"], str) or not source["schema"].strip()):
        kind = "empty" if isinstance(source["schema"], str) else f"of type {type(source['schema']).__name__}"
        raise _fail("source.schema", f"is {kind}; it must be a DDL schema string, e.g. 'id BIGINT, name STRING'")

    transform = spec.get("transform_sql")
    if transform is not None and (problem := transform_sql_problem(transform)):
        raise TransformSqlError(f"stream spec transform_sql: {problem}")

    sink = _section(spec, "sink", SINK_FORMATS, "an object with 'format'")
    sink.setdefault("output_mode", "append")
    if sink["output_mode"] not in OUTPUT_MODES:
        raise _fail("sink.output_mode", f"{sink['output_mode']!r} is not one of {', '.join(OUTPUT_MODES)}")
    if sink["format"] in PATH_SINKS and not sink.get("path"):
        raise _fail("sink.path", f"a {sink['format']} sink needs a path")
    _check_location(sink, "path", "sink.path")
    if sink["format"] in PATH_SINKS and sink["format"] != "delta" and sink["output_mode"] != "append":
        raise _fail("sink.output_mode", f"a {sink['format']} file sink supports only 'append'")
    if sink["format"] == "kafka" and "topic" not in sink["options"]:
        raise _fail("sink.options", "a kafka sink needs a 'topic' option")
    if (
        sink["format"] == "kafka"
        and not sink["options"].get("kafka.bootstrap.servers")
        and not sink.get("kafka_config_id")
    ):
        raise _fail("sink.options", "a kafka sink needs kafka_config_id or 'kafka.bootstrap.servers'")
    partition_by = sink.get("partition_by", [])
    if not isinstance(partition_by, list) or not all(isinstance(c, str) and c for c in partition_by):
        raise _fail("sink.partition_by", "must be a list of column names")
    if "merge_schema" in sink and not isinstance(sink["merge_schema"], bool):
        raise _fail(
            "sink.merge_schema",
            f"is of type {type(sink['merge_schema']).__name__}; it must be true or false (JSON booleans)",
        )
    if sink.get("merge_schema") and sink["format"] != "delta":
        raise _fail("sink.merge_schema", "schema merging is a Delta sink feature")

    # The operators put the control key here from its connection; the runner signs and verifies with it.
    if "control_key" in spec and (not isinstance(spec["control_key"], str) or len(spec["control_key"]) < 16):
        raise _fail("control_key", "must be the control key's text (16+ characters), as its connection holds it")

    ttl = spec.setdefault("lease_ttl_seconds", DEFAULT_LEASE_TTL_SECONDS)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 1 <= ttl <= 3600:
        raise _fail("lease_ttl_seconds", f"{ttl!r} must be a number of seconds from 1 to 3600")

    consistency = spec.setdefault("lease_consistency", "conditional")
    if consistency not in LEASE_CONSISTENCY:
        raise _fail(
            "lease_consistency",
            f"{consistency!r} is not one of {', '.join(LEASE_CONSISTENCY)}; 'conditional' (the default) needs an "
            "atomic create-if-absent for the lease, 'best_effort' accepts a double take found at the next renewal",
        )

    trigger = spec.setdefault("trigger", {"available_now": True})
    if not isinstance(trigger, dict) or len(trigger) != 1:
        raise _fail("trigger", "must be {'available_now': true} or {'processing_time': '<interval>'}")
    _refuse_unknown_keys(trigger, TRIGGER_KEYS, "trigger")
    if "available_now" in trigger:
        if trigger["available_now"] is not True:
            raise _fail("trigger.available_now", "must be true")
    elif "processing_time" in trigger:
        if not isinstance(trigger["processing_time"], str) or not _INTERVAL.match(trigger["processing_time"]):
            raise _fail(
                "trigger.processing_time", f"{trigger['processing_time']!r} is not an interval like '30 seconds'"
            )
    else:
        raise _fail("trigger", f"{trigger!r} is not available_now or processing_time")
    return spec


def with_kafka_config_id(spec: Any, kafka_config_id: str | None) -> Any:
    """``spec`` with ``kafka_config_id`` set on its Kafka source and sink that name no connection of their own."""
    if not kafka_config_id or not isinstance(spec, dict):
        return spec
    spec = copy.deepcopy(spec)
    for name in ("source", "sink"):
        section = spec.get(name)
        if isinstance(section, dict) and section.get("format") == "kafka":
            section.setdefault("kafka_config_id", kafka_config_id)
    return spec


def redact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` safe to log: every value under a secret-looking key, at any depth, is ``***``.

    That covers the source and sink options, a resolved Kafka connection's options and secret values,
    and the runner's ``control_key``.
    """
    from airflow_spark_streaming.utils.redaction import redact_mapping

    return redact_mapping(spec)
