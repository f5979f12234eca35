"""Parameter validators shared by the operators, sensors and triggers: bad values fail when the DAG is parsed.

Each validator takes ``owner`` (who is asking, e.g. ``"KafkaLagSensor(wait_lag)"``),
the parameter ``name`` and its ``value``, and returns the value normalised or
raises :class:`~airflow_spark_streaming.exceptions.InvalidParameterError` naming
the parameter, the problem and the fix. An error shows the value only when it
cannot be a credential (see :func:`shown`): a mapping's values never, so a
secret cannot reach a DAG import error. Values that are still Jinja templates
are checked after rendering by the caller (see :func:`is_template`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow_spark_streaming.exceptions import (
    InvalidCheckpointPathError,
    InvalidMavenCoordinateError,
    InvalidParameterError,
    PartitionFilterError,
)

_TEMPLATE = re.compile(r"\{\{|\{%")
_INTEGER_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")


def is_template(value: Any) -> bool:
    """Whether ``value`` is only known when the task runs: a Jinja template string, or an ``XComArg``
    (anything Airflow resolves at run time), so it is checked after rendering instead of at parse time."""
    if isinstance(value, str):
        return bool(_TEMPLATE.search(value))
    return callable(getattr(value, "resolve", None)) and callable(getattr(value, "iter_references", None))


def unless_template(check: Any, owner: str, name: str, value: Any, **kwargs: Any) -> Any:
    """``check(owner, name, value, **kwargs)`` now, or ``value`` as it is when it is only known once rendered."""
    return value if is_template(value) else check(owner, name, value, **kwargs)


#: Longest value text an error message repeats; longer values are described, not shown.
_SHOWN_CHARS = 120


def shown(name: str, value: Any) -> str:
    """``value`` as an error message may show it: never a credential.

    Numbers, booleans, durations and short plain strings are shown as written;
    a mapping is shown by its keys only (its values may be credentials, and the
    masker may not know them yet when the DAG is parsed), and anything under a
    secret-looking name, or holding a credential (a JSON string, a list holding
    a mapping), only by its type.
    """
    from airflow_spark_streaming.utils.redaction import is_secret_key, secret_values

    if isinstance(value, bool | int | float | timedelta) or value is None:
        return repr(value)
    kind = type(value).__name__
    if is_secret_key(name) or next(secret_values(value), None) is not None:
        return f"<a {kind}, not shown>"
    if isinstance(value, Mapping):
        keys = ", ".join(repr(k) if isinstance(k, str) else f"<a {type(k).__name__}>" for k in list(value)[:10])
        return f"<a {kind} with keys {keys}{', ...' if len(value) > 10 else ''}; values not shown>"
    if isinstance(value, str | list | tuple | set | frozenset) and not _holds_mapping(value):
        text = repr(value)
        if len(text) <= _SHOWN_CHARS:
            return text
        return f"<a {kind} of {len(value)} {'characters' if isinstance(value, str) else 'items'}>"
    return f"<a {kind}, not shown>"


def _holds_mapping(value: Any, depth: int = 0) -> bool:
    if isinstance(value, Mapping) or depth > 4:
        return True
    return isinstance(value, list | tuple | set | frozenset) and any(_holds_mapping(v, depth + 1) for v in value)


def _refuse(owner: str, name: str, value: Any, problem: str) -> InvalidParameterError:
    """The error naming the parameter and the problem; the value only as :func:`shown` allows."""
    return InvalidParameterError(f"{owner}: {name}={shown(name, value)} {problem}")


def seconds(owner: str, name: str, value: Any, *, optional: bool = False, allow_zero: bool = False) -> float | None:
    """A duration as positive finite seconds, from a number or a :class:`~datetime.timedelta`.

    Strings and booleans are refused: ``"30"`` hides a unit mistake and ``True`` is an accident.
    """
    if value is None and optional:
        return None
    if isinstance(value, timedelta):
        number = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise _refuse(owner, name, value, "is not a duration; pass a number of seconds or a datetime.timedelta.")
    if not math.isfinite(number):
        raise _refuse(owner, name, value, "is not finite; pass a positive number of seconds.")
    if number < 0 or (number == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise _refuse(owner, name, value, f"must be {bound} seconds.")
    return number


def integer(
    owner: str, name: str, value: Any, *, optional: bool = False, minimum: int | None = None, text: bool = True
) -> int | None:
    """An integer, from an ``int`` or the text of one (a rendered template); ``1.9`` and ``True`` are refused.

    ``None`` and ``""`` mean unset when ``optional``. ``text=False`` refuses text too, for a parameter that is
    not templated (``"2"`` there is a mistake, not a rendered value).
    """
    if optional and (value is None or value == ""):
        return None
    if isinstance(value, bool):
        raise _refuse(owner, name, value, "is a boolean; pass an integer.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and not text:
        raise _refuse(owner, name, value, "is text; pass an integer, e.g. 2, not '2'.")
    elif isinstance(value, str) and _INTEGER_TEXT.match(value):
        number = int(value)
    else:
        raise _refuse(owner, name, value, "is not an integer; pass a whole number (1.9 is not rounded).")
    if minimum is not None and number < minimum:
        raise _refuse(owner, name, value, f"must be at least {minimum}.")
    return number


def positive_integer(owner: str, name: str, value: Any, *, optional: bool = False, text: bool = True) -> int | None:
    """An integer of at least 1 (a size, a count); 0 is refused rather than read as "the default"."""
    return integer(owner, name, value, optional=optional, minimum=1, text=text)


def string_list(owner: str, name: str, value: Any, *, optional: bool = False) -> list[str] | None:
    """A list of non-empty strings; a single string is refused (it would be iterated character by character)."""
    if value is None and optional:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
        raise _refuse(owner, name, value, "must be a list of strings, e.g. ['a', 'b'], not a single string.")
    items = list(value)
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise _refuse(owner, name, value, "must hold only non-empty strings.")
    return items


def mapping(owner: str, name: str, value: Any, *, optional: bool = True) -> dict[str, Any]:
    """A mapping with string keys (``None`` is an empty one when ``optional``)."""
    if value is None and optional:
        return {}
    problem = "must be a mapping of string keys to values, e.g. {'key': 'value'}"
    if not isinstance(value, Mapping):  # a string may hold credentials too (JSON, properties): only its type is named
        raise InvalidParameterError(f"{owner}: {name}=<a {type(value).__name__}, not shown> {problem}.")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:  # the keys that are not strings are named, never a value
        keys = ", ".join(repr(k) if isinstance(k, int | float) else f"<a {type(k).__name__}>" for k in bad[:5])
        raise InvalidParameterError(
            f"{owner}: {name}=<a {type(value).__name__}, values not shown> {problem}; these keys are not strings: "
            f"{keys}."
        )
    return dict(value)


def choice(owner: str, name: str, value: Any, choices: Sequence[str], *, optional: bool = False) -> str | None:
    """One of ``choices`` (or ``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or value not in choices:
        raise _refuse(owner, name, value, f"is not one of {', '.join(map(repr, choices))}.")
    return value


def maven_coordinates(owner: str, name: str, value: Any) -> list[str]:
    """A list of ``group:artifact:version`` coordinates; raises :class:`InvalidMavenCoordinateError`."""
    from airflow_spark_streaming.spark.jvm import validate_coordinate

    items = string_list(owner, name, value) or []
    try:
        return [validate_coordinate(item) for item in items]
    except InvalidMavenCoordinateError as err:
        raise InvalidMavenCoordinateError(f"{owner}: {name}: {err}") from err


def strict_bool(owner: str, name: str, value: Any, *, optional: bool = False) -> bool | None:
    """``True`` or ``False`` (or ``None`` when ``optional``); ``"yes"`` and ``1`` are refused, not read as true."""
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        allowed = "True, False or None" if optional else "True or False"
        raise _refuse(owner, name, value, f"must be {allowed}.")
    return value


def duration(owner: str, name: str, value: Any) -> timedelta:
    """A positive duration as a :class:`~datetime.timedelta`, from one or from a number of seconds."""
    return timedelta(seconds=seconds(owner, name, value))


def location(owner: str, name: str, value: Any, *, checkpoint: bool = False, optional: bool = False) -> str | None:
    """A checkpoint or table location: a non-empty absolute path or URI (``/lake/t``, ``s3://b/t``, ``file:/t``).

    A relative path is refused: it resolves against the current directory, which differs between the worker,
    the triggerer and the Spark driver. The error names the value's type only when it is not plain text (a URI
    may carry credentials in its user part or query). Raises :class:`InvalidCheckpointPathError` for a
    ``checkpoint``, else :class:`InvalidParameterError`.
    """
    from airflow_spark_streaming.storage.locations import is_absolute_location

    if value is None and optional:
        return None
    error = InvalidCheckpointPathError if checkpoint else InvalidParameterError
    what, example = ("the query's checkpoint", "_checkpoints/orders") if checkpoint else ("the table's", "orders")
    if not isinstance(value, str) or not value.strip():
        kind = "empty" if isinstance(value, str) else f"of type {type(value).__name__}, not a string"
        raise error(f"{owner}: {name} is {kind}; pass {what} location as an absolute path or URI, e.g. "
                    f"'/lake/{example}' or 's3://bucket/{example}'.")  # fmt: skip
    if not is_absolute_location(value):
        plain = not any(c in value for c in ":@?#") and len(value) <= _SHOWN_CHARS
        text = repr(value) if plain else "<a str, not shown>"
        raise error(f"{owner}: {name}={text} is a relative path, which the Airflow worker and the Spark driver "
                    f"resolve against different directories; pass an absolute path ('/lake/{example}') or a URI "
                    f"with a scheme ('s3://bucket/{example}', 'file:///lake/{example}').")  # fmt: skip
    return value


def partition_filters(owner: str, name: str, value: Any) -> list[tuple[str, str, Any]] | None:
    """delta-rs style filters: a list of ``(column, operator, value)``; a string is refused, not iterated."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _refuse(
            owner, name, value, "must be a list of (column, operator, value) tuples, e.g. [('day', '=', '2026-01-31')]."
        )
    for item in value:
        if (
            isinstance(item, str | bytes)
            or not isinstance(item, Sequence)
            or len(item) != 3
            or not isinstance(item[0], str)
            or not isinstance(item[1], str)
        ):
            raise _refuse(
                owner, name, value, f"has {shown(name, item)}, which is not a (column, operator, value) tuple."
            )
    from airflow_spark_streaming.delta.sql import check_partition_filters

    try:  # the operators and values both engines accept, so a bad one fails here rather than in the task
        return check_partition_filters(value)
    except PartitionFilterError as err:
        raise PartitionFilterError(f"{owner}: {name}: {err}") from err


def absolute_locations(owner: str, name: str, value: Any) -> list[str]:
    """A list of absolute paths or URIs (``/lake/ckpt``, ``s3://lake/ckpt``); templated entries pass until rendered.

    Each entry is checked as :func:`location` checks one, so a relative path (which would resolve against
    whichever worker runs the task) is refused, and a URI that may carry credentials is never echoed.
    """
    if is_template(value):
        return value
    items = string_list(owner, name, value if value is not None else []) or []
    for index, item in enumerate(items):
        if not is_template(item):
            location(owner, f"{name}[{index}]", item)
    return items
