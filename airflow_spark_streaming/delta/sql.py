"""Delta table SQL helpers: interval properties, partition filters as checked triples and as a quoted ``WHERE`` (pure).

Shared by the delta-rs and the Spark maintenance engines, so both refuse the same filters.
"""

from __future__ import annotations

from typing import Any

from airflow_spark_streaming.exceptions import DeltaMaintenanceError, PartitionFilterError

_INTERVAL_UNITS = {
    "microsecond": 1e-6, "millisecond": 1e-3, "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800,
}  # fmt: skip

#: delta-rs partition filters: ``(column, operator, value)`` triples.
PartitionFilters = list[tuple[str, str, Any]]


def parse_interval(text: str) -> float:
    """Seconds in a Delta interval property such as ``interval 7 days`` or ``interval 1 week``."""
    words = text.lower().replace("interval", " ").split()
    if len(words) % 2 or not words:
        raise DeltaMaintenanceError(f"Cannot read the interval {text!r}; expected for example 'interval 7 days'.")
    seconds = 0.0
    for amount, unit in zip(words[::2], words[1::2], strict=True):
        unit = unit.rstrip("s")
        if unit not in _INTERVAL_UNITS:
            raise DeltaMaintenanceError(f"Unknown unit {unit!r} in interval {text!r}.")
        try:
            seconds += float(amount) * _INTERVAL_UNITS[unit]
        except ValueError as err:
            raise DeltaMaintenanceError(f"Cannot read {amount!r} in interval {text!r}.") from err
    return seconds


#: The comparisons ``partition_filters`` may use (delta-rs's own set); anything else is refused.
PARTITION_FILTER_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in")


def check_partition_filters(filters: Any) -> list[tuple[str, str, Any]]:
    """``filters`` as ``(column, operator, value)`` triples, or :class:`PartitionFilterError` naming the bad one."""
    checked = []
    for entry in filters or []:
        if not isinstance(entry, list | tuple) or len(entry) != 3:
            raise PartitionFilterError(f"partition filter {entry!r} must be a (column, operator, value) triple.")
        column, op, value = entry
        if not isinstance(column, str) or not column.strip():
            raise PartitionFilterError(f"partition filter {entry!r}: the column must be a non-empty name.")
        op = op.strip().lower() if isinstance(op, str) else op
        if op not in PARTITION_FILTER_OPERATORS:
            raise PartitionFilterError(
                f"partition filter {entry!r}: operator {entry[1]!r} is not one of "
                f"{', '.join(PARTITION_FILTER_OPERATORS)}."
            )
        if op in ("in", "not in") and (isinstance(value, str) or not isinstance(value, list | tuple | set)):
            raise PartitionFilterError(f"partition filter {entry!r}: {op!r} needs a list of values.")
        checked.append((column, op, value))
    return checked


def quote_identifier(name: str) -> str:
    """``name`` as one backquoted Spark SQL identifier (a column for ``ZORDER BY``, a partition column):
    an embedded backquote is doubled, so the name cannot end the quoting and add SQL of its own."""
    if not isinstance(name, str) or not name:
        raise DeltaMaintenanceError(f"a column name must be a non-empty string, not {type(name).__name__}.")
    return "`" + name.replace("`", "``") + "`"


def sql_string_literal(value: Any) -> str:
    """``value`` as a Spark SQL literal: ``NULL``, or a string literal that backslashes and quotes cannot end."""
    if value is None:
        return "NULL"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def partition_filters_sql(filters: PartitionFilters | None) -> str | None:
    """delta-rs partition filters as a Spark SQL ``WHERE`` over partition columns, operators checked, values quoted."""
    if not filters:
        return None
    clauses = []
    for column, op, value in check_partition_filters(filters):
        name = f"`{column.replace('`', '``')}`"
        if op in ("in", "not in"):
            clauses.append(f"{name} {op.upper()} ({', '.join(sql_string_literal(v) for v in value)})")
        else:
            clauses.append(f"{name} {op} {sql_string_literal(value)}")
    return " AND ".join(clauses)
