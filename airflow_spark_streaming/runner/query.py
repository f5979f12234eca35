"""A stream spec's query built with the DataFrame API alone: the same on a spark-submit driver and on Spark Connect.

The stream runner (:mod:`airflow_spark_streaming.runner.jobs.stream_runner`) builds its query
here on a classic SparkSession; ``hooks/stream_connect.py`` builds the same query on a Spark
Connect session. Nothing here touches the JVM (``sparkContext``, ``_jvm``), which a Connect
session does not have. Standard library only at import time.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_spark_streaming.runner import control_auth, protocol

FILE_FORMATS = protocol.FILE_FORMATS
SOURCE_FORMATS = protocol.SOURCE_FORMATS
SINK_FORMATS = protocol.SINK_FORMATS


class SpecError(ValueError):
    """The spec cannot describe a query; the message names the field and the fix."""


def require(section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section or section[key] in (None, ""):
        raise SpecError(f"{where}.{key} is required")
    return section[key]


def kafka_connection(section: dict[str, Any]) -> dict[str, Any]:
    """The options the operator resolved from the section's ``kafka_config_id`` (kafka/spec.py)."""
    return section.get("kafka_connection") or {}


def secret_values(spec: dict[str, Any]) -> list[str]:
    """Every secret value the spec carries: the control key and its resolved Kafka connections' secrets."""
    secrets = {spec.get(control_auth.SPEC_KEY) or ""}
    for name in ("source", "sink"):
        resolved = kafka_connection(spec.get(name) or {})
        secrets.update(resolved.get("secret_values", []))
        secrets.update(resolved.get("options", {}).get(k, "") for k in resolved.get("secret_keys", []))
    return sorted((s for s in secrets if s), key=len, reverse=True)


def redact_secrets(text: str, spec: dict[str, Any]) -> str:
    """``text`` without any secret value of the spec's resolved Kafka connections."""
    for secret in secret_values(spec):
        text = text.replace(secret, "***")
    return text


def build_reader(spark, source: dict[str, Any]):
    fmt = require(source, "format", "source")
    if fmt not in SOURCE_FORMATS:
        raise SpecError(f"source.format {fmt!r} is not one of {SOURCE_FORMATS}")
    reader = spark.readStream.format(fmt).options(**kafka_connection(source).get("options", {}))
    reader = reader.options(**{k: str(v) for k, v in source.get("options", {}).items()})
    if source.get("schema"):
        reader = reader.schema(source["schema"])
    elif fmt in FILE_FORMATS and fmt != "text":
        raise SpecError(
            f"source.schema is required for a {fmt} file source (a DDL string such as 'id INT, name STRING')"
        )
    if fmt in (*FILE_FORMATS, "delta"):
        return reader.load(require(source, "path", "source"))
    return reader.load()


def build_writer(frame, spec: dict[str, Any], trigger: dict[str, Any] | None = None):
    """The spec's stream writer and the sink path to start it with (``None`` for sinks without a path)."""
    sink = require(spec, "sink", "spec")
    fmt = require(sink, "format", "sink")
    if fmt not in SINK_FORMATS:
        raise SpecError(f"sink.format {fmt!r} is not one of {SINK_FORMATS}")
    writer = (
        frame.writeStream.format(fmt)
        .outputMode(sink.get("output_mode", "append"))
        .option("checkpointLocation", require(spec, "checkpoint_location", "spec"))
        .options(**kafka_connection(sink).get("options", {}))
        .options(**{k: str(v) for k, v in sink.get("options", {}).items()})
    )
    if spec.get("query_name"):
        writer = writer.queryName(spec["query_name"])
    if sink.get("partition_by"):
        writer = writer.partitionBy(*sink["partition_by"])
    if fmt == "delta" and sink.get("merge_schema"):
        writer = writer.option("mergeSchema", "true")
    trigger = trigger or spec.get("trigger", {"available_now": True})
    if trigger.get("available_now"):
        writer = writer.trigger(availableNow=True)
    elif trigger.get("once"):  # used only to finish a batch a graceful stop interrupted
        writer = writer.trigger(once=True)
    elif trigger.get("processing_time"):
        writer = writer.trigger(processingTime=trigger["processing_time"])
    else:
        raise SpecError("trigger must be {'available_now': true} or {'processing_time': '<interval>'}")
    if fmt in ("delta", "parquet", "json", "csv", "orc"):
        return writer, require(sink, "path", "sink")
    return writer, None


#: What ``transform_sql`` may not hold even as a query, as Spark prints its parsed plan: a script
#: (``TRANSFORM ... USING``) and the functions that call any static Java method.
OUTSIDE_SQL = (
    ("a script (TRANSFORM ... USING)", r"\bScriptTransformation\b"),
    ("Java reflection (reflect, java_method, try_reflect)", r"'(?:[\w`]+\.)*`?(?:reflect|java_method|try_reflect)`?\("),
)


def transform_refused(problem: str) -> SpecError:
    return SpecError(f"transform_sql must be exactly one SELECT query over 'source', without ';': {problem}")


def outside_sql(plan: str) -> str | None:
    """What in Spark's parsed ``plan`` text leaves SQL (a script, Java reflection), or ``None``."""
    for what, pattern in OUTSIDE_SQL:
        if re.search(pattern, plan, re.IGNORECASE):
            return what
    return None


def wrapped_query(sql: str) -> str:
    """``sql`` as a subquery: only a query parses there, so ``spark.sql`` of it never runs a command.

    Spark Connect has no parser to ask first (the runner asks the driver's); a command, a second
    statement or an INSERT cannot stand inside ``FROM ( ... )``, so they fail to parse and nothing runs.
    The line breaks keep a trailing ``--`` comment from swallowing the closing parenthesis.
    """
    if "${" in sql:
        raise transform_refused("it holds '${', which Spark would replace with settings or environment variables")
    if ";" in sql:
        raise transform_refused("it holds ';'")
    return f"SELECT * FROM (\n{sql}\n) AS transform_sql"


def transformed_without_parser(spark, sql: str):
    """``transform_sql`` over the view ``source`` where no parser can be asked first (Spark Connect).

    The query is lazy (``spark.sql`` of a query runs nothing); its parsed plan is then checked for a
    script and Java reflection, as the runner checks the driver's parse.
    """
    frame = spark.sql(wrapped_query(sql))
    problem = outside_sql(frame._explain_string(extended=True))
    if problem:
        raise transform_refused(f"it holds {problem}")
    return frame


def start_query(spark, spec: dict[str, Any], transformed, trigger: dict[str, Any] | None = None):
    """Start the spec's query on ``spark``; ``transformed(spark, sql)`` is the checked ``transform_sql`` frame."""
    frame = build_reader(spark, require(spec, "source", "spec"))
    if spec.get("transform_sql"):
        frame.createOrReplaceTempView("source")
        frame = transformed(spark, spec["transform_sql"])
    writer, path = build_writer(frame, spec, trigger)
    return writer.start(path) if path else writer.start()
