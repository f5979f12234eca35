"""Delta maintenance in a SparkSession with delta-spark: OPTIMIZE, VACUUM, and converting file-sink output.

Each function takes any SparkSession, classic or Spark Connect, and the same spec dictionary, and
re-checks it before anything reaches ``spark.sql``: a ``where`` must be a partition predicate as the
provider writes it, Z-ORDER names are quoted, and a VACUUM never goes below the table's
``delta.deletedFileRetentionDuration`` without ``retention_override``. :class:`MaintenanceRefused` says no.

Three callers run them: the spark-submit job (``runner/jobs/delta_maintenance.py``), the stream
runner's maintenance hand-off (``runner/jobs/maintenance_handoff.py``, in the stream's own driver)
and the Spark Connect hook (``hooks/spark_connect.py``). So this module is standard library only
and imports nothing from Airflow: the drivers load it from the installed provider or from the
``--py-files`` zip on YARN (``runner.jobs.RUNNER_SUPPORT_MODULES``). It needs no pyspark import:
the session it is given brings Spark.

Spec::

    {"action": "optimize", "table": "s3://lake/orders", "where": "`day` = '2026-01-01'",
     "zorder_by": ["customer_id"], "max_attempts": 5, "table_files": 2000}
    {"action": "vacuum", "table": "s3://lake/orders", "retain_hours": 168, "mode": "lite", "dry_run": false}
    {"action": "convert", "table": "s3://lake/raw_orders", "target": "s3://lake/orders", "files_per_partition": 1}
"""

from __future__ import annotations

import math
import sys
import time


def quote_identifier(name: object) -> str:
    """``name`` as one backquoted Spark SQL identifier: an embedded backquote is doubled, so it cannot end it.

    ``airflow_spark_streaming.delta.sql`` has its own copy: that module raises the provider's errors, which
    import Airflow, and this one must import without it.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a column name must be a non-empty string, not {type(name).__name__}")
    return "`" + name.replace("`", "``") + "`"


def _quote(path: str) -> str:
    return "delta." + quote_identifier(path)


class MaintenanceRefused(ValueError):
    """A maintenance spec this job will not run: a ``where`` that is not a partition predicate, bad names or
    numbers, or a VACUUM below the table's retention without the explicit override."""


# --- the Airflow side's rules (``airflow_spark_streaming.delta.sql``), again, in the session; stdlib only here ---

#: The comparisons a partition filter may use, as on the Airflow side.
PARTITION_FILTER_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in")
_COMPARISONS = sorted((op for op in PARTITION_FILTER_OPERATORS if op[0] in "=!<>"), key=len, reverse=True)
_INTERVAL_UNITS = {"microsecond": 1e-6, "millisecond": 1e-3, "second": 1, "minute": 60, "hour": 3600,
                   "day": 86400, "week": 604800}  # fmt: skip
DEFAULT_RETENTION = "interval 1 weeks"


def _sql_literal(value) -> str:
    if value is None:
        return "NULL"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def partition_where_sql(filters: list) -> str:
    """``(column, operator, value)`` filters as the Airflow side writes them (``partition_filters_sql``)."""
    clauses = []
    for column, op, value in filters:
        if op in ("in", "not in"):
            clauses.append(f"{quote_identifier(column)} {op.upper()} ({', '.join(_sql_literal(v) for v in value)})")
        else:
            clauses.append(f"{quote_identifier(column)} {op} {_sql_literal(value)}")
    return " AND ".join(clauses)


def parse_partition_where(where: object) -> list:
    """The filters of a ``where`` written exactly as ``partition_where_sql`` writes them, or :class:`MaintenanceRefused`.

    Only a backquoted column, one of the operators and a quoted literal (or ``NULL``), or a column with
    ``IN``/``NOT IN`` and a list of literals, joined by `` AND ``, are read; a literal may hold any
    character, and a backslash only before a backslash or a quote. Anything else (a subquery, a
    function, ``OR``, a comment) is refused, so only a partition predicate reaches Spark.
    """
    if not isinstance(where, str) or not where:
        raise MaintenanceRefused("where must be a non-empty partition predicate")
    text, i, filters = where, 0, []

    def refuse(what: str):
        return MaintenanceRefused(f"where is not a partition predicate the provider writes: {what} at offset {i}")

    def expect(token: str) -> None:
        nonlocal i
        if not text.startswith(token, i):
            raise refuse(f"expected {token!r}")
        i += len(token)

    def identifier() -> str:
        nonlocal i
        expect("`")
        name = []
        while True:
            end = text.find("`", i)
            if end < 0:
                raise refuse("an unterminated column name")
            name.append(text[i:end])
            i = end + 1
            if not text.startswith("`", i):
                break
            name.append("`")
            i += 1
        if not "".join(name):
            raise refuse("an empty column name")
        return "".join(name)

    def literal():
        nonlocal i
        if text.startswith("NULL", i):
            i += 4
            return None
        expect("'")
        value = []
        while i < len(text):
            char = text[i]
            if char == "'":
                i += 1
                return "".join(value)
            if char == "\\":
                if i + 1 >= len(text) or text[i + 1] not in "\\'":
                    raise refuse("an escape other than \\\\ or \\'")
                value.append(text[i + 1])
                i += 2
                continue
            value.append(char)
            i += 1
        raise refuse("an unterminated string")

    while True:
        column = identifier()
        expect(" ")
        for op in ("NOT IN", "IN"):
            if text.startswith(op + " (", i):
                i += len(op) + 2
                values = []
                if not text.startswith(")", i):
                    values.append(literal())
                    while text.startswith(", ", i):
                        i += 2
                        values.append(literal())
                expect(")")
                filters.append((column, op.lower(), values))
                break
        else:
            op = next((c for c in _COMPARISONS if text.startswith(c + " ", i)), None)
            if op is None:
                raise refuse("an operator other than " + ", ".join(PARTITION_FILTER_OPERATORS))
            i += len(op) + 1
            filters.append((column, op, literal()))
        if i == len(text):
            return filters
        expect(" AND ")


def parse_interval_hours(text: object) -> float:
    """Hours in a Delta interval property such as ``interval 7 days`` or ``interval 1 weeks``."""
    words = str(text).lower().replace("interval", " ").split()
    if not words or len(words) % 2:
        raise MaintenanceRefused(f"cannot read the interval {text!r}")
    seconds = 0.0
    for amount, unit in zip(words[::2], words[1::2], strict=True):
        if unit.rstrip("s") not in _INTERVAL_UNITS:
            raise MaintenanceRefused(f"unknown unit {unit!r} in the interval {text!r}")
        try:
            seconds += float(amount) * _INTERVAL_UNITS[unit.rstrip("s")]
        except ValueError:
            raise MaintenanceRefused(f"cannot read {amount!r} in the interval {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise MaintenanceRefused(f"the interval {text!r} is not a finite, positive duration")
    return seconds / 3600


def _detail(spark, table: str) -> dict:
    """``DESCRIBE DETAIL`` of the table: its ``partitionColumns`` and ``properties``."""
    return spark.sql(f"DESCRIBE DETAIL {_quote(table)}").collect()[0].asDict()


def table_retention_hours(spark, table: str) -> float:
    """The table's ``delta.deletedFileRetentionDuration`` in hours (one week when it sets none)."""
    properties = _detail(spark, table).get("properties") or {}
    return parse_interval_hours(properties.get("delta.deletedFileRetentionDuration", DEFAULT_RETENTION))


def optimize(spark, spec: dict) -> None:
    """OPTIMIZE ``spec["table"]``; ``where`` and ``zorder_by`` are checked here again (:class:`MaintenanceRefused`)."""
    statement = f"OPTIMIZE {_quote(spec['table'])}"
    if spec.get("where"):
        filters = parse_partition_where(spec["where"])
        partitions = _detail(spark, spec["table"]).get("partitionColumns") or []
        unknown = sorted({column for column, _, _ in filters} - set(partitions))
        if unknown:
            raise MaintenanceRefused(f"where names {unknown}, which are not partition columns ({partitions or 'none'})")
        statement += f" WHERE {partition_where_sql(filters)}"
    zorder = spec.get("zorder_by") or []
    if not isinstance(zorder, list) or not all(isinstance(c, str) and c for c in zorder):
        raise MaintenanceRefused("zorder_by must be a list of column names")
    if zorder:
        statement += " ZORDER BY (" + ", ".join(quote_identifier(c) for c in zorder) + ")"
    attempts = spec.get("max_attempts", 5)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise MaintenanceRefused(f"max_attempts {attempts!r} is not a number of attempts from 1 to 100")
    for attempt in range(1, attempts + 1):
        try:
            spark.sql(statement).collect()
            return
        except Exception as err:  # delta-spark raises Py4J-wrapped ConcurrentModificationException subclasses
            if "Concurrent" not in str(err) or attempt == attempts:
                raise
            print(f"delta maintenance: OPTIMIZE conflicted ({attempt}/{attempts}); retrying", file=sys.stderr)
            time.sleep(2 * attempt)


RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
VACUUM_LOGGING = "spark.databricks.delta.vacuum.logging.enabled"
#: delta-spark 4.x ignores ``RETAIN n HOURS`` unless n is 0 and uses the table's retention instead, while this is
#: on (its default): a longer retention asked for (the readers' positions) would silently not be kept.
RETENTION_WINDOW_IGNORE = "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled"


def vacuum(spark, spec: dict) -> None:
    """VACUUM ``spec["table"]``, never below the table's ``delta.deletedFileRetentionDuration`` unless the spec
    carries ``retention_override: true``; the session's retention check and logging settings are restored after."""
    hours = spec.get("retain_hours")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= 10**6:
        raise MaintenanceRefused(f"retain_hours {hours!r} is not a number of hours from 0 to 1000000")
    if spec.get("mode", "lite") not in ("lite", "full"):
        raise MaintenanceRefused(f"mode {spec.get('mode')!r} is not 'lite' or 'full'")
    if not isinstance(spec.get("dry_run", False), bool):
        raise MaintenanceRefused(f"dry_run {spec.get('dry_run')!r} is not true or false")
    override = spec.get("retention_override") is True
    if not override:
        floor = table_retention_hours(spark, spec["table"])
        if hours < floor:
            raise MaintenanceRefused(
                f"VACUUM with a retention of {hours:g}h is shorter than the table's delta.deletedFileRetentionDuration "
                f"({floor:g}h); only a request with retention_override (i_understand_this_can_break_readers) may do that"
            )
    mode = {"lite": " LITE", "full": " FULL"}[spec.get("mode", "lite")]
    dry = " DRY RUN" if spec.get("dry_run") else ""
    conf = spark.conf
    saved = {key: conf.get(key, None) for key in (RETENTION_CHECK, VACUUM_LOGGING, RETENTION_WINDOW_IGNORE)}
    try:
        conf.set(VACUUM_LOGGING, "true")
        conf.set(RETENTION_WINDOW_IGNORE, "false")  # honour RETAIN: it is never below the table's (checked above)
        if override:  # the floor was waived explicitly; otherwise Delta checks the retention once more
            conf.set(RETENTION_CHECK, "false")
        spark.sql(f"VACUUM {_quote(spec['table'])}{mode} RETAIN {float(hours)} HOURS{dry}").collect()
    finally:
        for key, value in saved.items():
            conf.unset(key) if value is None else conf.set(key, value)


def convert(spark, spec: dict) -> None:
    """Parquet file-sink output to Delta, reading through its _spark_metadata log.

    With a ``target``: copy-compact into a new Delta table (the source is not
    touched). Without: CONVERT TO DELTA in place, which adds a Delta log over the
    files the sink's log lists (``convert.useMetadataLog``) and rewrites nothing.
    """
    source = spec["table"]
    partition_by = spec.get("partition_by") or []
    if spec.get("target"):
        frame = spark.read.parquet(source)  # a single root path: Spark reads only the files in _spark_metadata
        per_partition = int(spec.get("files_per_partition", 1))
        frame = frame.repartition(per_partition, *partition_by) if partition_by else frame.repartition(per_partition)
        writer = frame.write.format("delta").mode("error")  # Connect knows "error", not its alias "errorifexists"
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(spec["target"])
        return
    # NO STATISTICS: Spark's converted-file stats carry -1 counts that delta-rs refuses to read.
    statement = f"CONVERT TO DELTA parquet.{quote_identifier(source)} NO STATISTICS"
    if partition_by:
        schema = spark.read.parquet(source).schema
        columns = ", ".join(f"{quote_identifier(c)} {schema[c].dataType.simpleString()}" for c in partition_by)
        statement += f" PARTITIONED BY ({columns})"
    spark.sql(statement).collect()


#: The session-level function of each maintenance action.
ACTIONS = {"optimize": optimize, "vacuum": vacuum, "convert": convert}

#: Delta rebuilds a table's state (its files) from the log in this many partitions. Its default, 50, suits logs of
#: hundreds of thousands of actions; on a table of a few thousand files the 50 tasks are most of a warm OPTIMIZE.
SNAPSHOT_PARTITIONS = "spark.databricks.delta.snapshotPartitions"
FILES_PER_SNAPSHOT_PARTITION = 5_000
MAX_SNAPSHOT_PARTITIONS = 50


def snapshot_partitions(table_files: int) -> int:
    """Partitions for rebuilding the state of a table of ``table_files`` files: one per 5,000, at most Delta's 50."""
    return min(MAX_SNAPSHOT_PARTITIONS, max(1, math.ceil(table_files / FILES_PER_SNAPSHOT_PARTITION)))


def run(spark, spec: dict) -> None:
    """Run ``spec`` with its action. ``table_files`` (the table's file count, when the caller knows it) sizes the
    state rebuild, unless the session or server sets ``spark.databricks.delta.snapshotPartitions`` itself."""
    action = ACTIONS.get(spec.get("action"))
    if action is None:
        raise MaintenanceRefused(f"action {spec.get('action')!r} is not one of {sorted(ACTIONS)}")
    files = spec.get("table_files")
    if files is None:
        return action(spark, spec)
    if isinstance(files, bool) or not isinstance(files, int) or not 0 <= files <= 10**9:
        raise MaintenanceRefused(f"table_files {files!r} is not a number of files from 0 to 1000000000")
    conf = spark.conf
    if conf.get(SNAPSHOT_PARTITIONS, None) is not None:  # the user's or the server's choice
        return action(spark, spec)
    conf.set(SNAPSHOT_PARTITIONS, str(snapshot_partitions(files)))
    try:
        return action(spark, spec)
    finally:
        conf.unset(SNAPSHOT_PARTITIONS)
